//! The card profile in numbers: what host and card agree on. The identifiers (AID, FIDs, data
//! objects), references (PIN, PUK) and limits of the national ID card; `docs/card-profile.md`
//! explains each one. The host client ([`crate::card`]) and the simulated card (the `cardsim`
//! crate) both use these constants instead of repeating the bytes.

/// The ICAO Doc 9303-10 LDS1 eMRTD application identifier (DF name of the application DF).
pub const LDS1_AID: [u8; 7] = [0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01];
/// FID of the master file.
pub const MF_FID: u16 = 0x3F00;
/// FID this profile gives the LDS1 application DF (ICAO 9303 leaves it to the issuer), so paths
/// from the MF can reach it: `3F00 / 5F01 / 011E`.
pub const APP_DF_FID: u16 = 0x5F01;

/// EF.COM: LDS version and the list of data groups present (ICAO 9303-10 §4.6.1).
pub const EF_COM: u16 = 0x011E;
/// EF.SOD: the document security object signed by the issuer (ICAO 9303-10 §4.6.2).
pub const EF_SOD: u16 = 0x011D;
/// DG1: the machine readable zone data.
pub const EF_DG1: u16 = 0x0101;
/// DG2: the encoded face image.
pub const EF_DG2: u16 = 0x0102;
/// DG3: the encoded fingerprint templates (extended access: terminal session only).
pub const EF_DG3: u16 = 0x0103;
/// DG4: the encoded iris images (extended access, like DG3).
pub const EF_DG4: u16 = 0x0104;

/// FID of data group `n` (1..=16): `0100 + n`.
pub const fn dg_fid(n: u8) -> u16 {
    0x0100 + n as u16
}

/// The short EF identifier a FID gets when CREATE FILE names none: the low 5 bits of the FID's
/// low byte (ISO/IEC 7816-4 §7.4.3), or `None` when that is 0 or 31 (not a valid SFI).
pub const fn default_sfi(fid: u16) -> Option<u8> {
    let sfi = (fid & 0x1F) as u8;
    if sfi >= 1 && sfi <= 30 {
        Some(sfi)
    } else {
        None
    }
}

/// GET DATA (00 CA 01 01): the 8-byte card serial, readable in plain in every state.
pub const DO_SERIAL: u16 = 0x0101;
/// GET DATA (00 CA 01 02): the application life-cycle status byte (1 byte).
pub const DO_LCS: u16 = 0x0102;
/// GET DATA (00 CA 01 03): the FIDs of the EFs in the application DF, 2 bytes each, ascending.
pub const DO_FILE_LIST: u16 = 0x0103;

/// Reference (P2) of the holder PIN; the transport PIN set at personalization is the same
/// reference until the holder replaces it.
pub const PIN_REF: u8 = 0x81;
/// Reference (P2) of the PUK (resetting code) used by RESET RETRY COUNTER.
pub const PUK_REF: u8 = 0x82;
/// Wrong PIN presentations before the PIN blocks.
pub const PIN_MAX_TRIES: u8 = 3;
/// Wrong PUK presentations before the PUK blocks (for good).
pub const PUK_MAX_TRIES: u8 = 10;
/// Shortest PIN (ASCII digits).
pub const PIN_MIN_LEN: usize = 4;
/// Shortest PUK (ASCII digits).
pub const PUK_MIN_LEN: usize = 8;
/// Longest PIN or PUK (ASCII digits).
pub const SECRET_MAX_LEN: usize = 12;
/// Failed MUTUAL AUTHENTICATE attempts in a row that block a key reference.
pub const KEY_MAX_FAILURES: u8 = 3;

/// Largest transparent EF (two-byte size in the FCP). Offsets beyond 32 767 need the odd-INS
/// READ/UPDATE BINARY (B1/D7 with offset data object 54).
pub const MAX_EF_SIZE: usize = 0xFFFF;
/// Bytes of EEPROM each file header costs on top of its data (counted against the capacity).
pub const FILE_OVERHEAD: usize = 32;
/// Deepest DF nesting below the MF.
pub const MAX_DF_DEPTH: usize = 4;
/// Length of GET CHALLENGE's answer (RND.IC).
pub const CHALLENGE_LEN: usize = 16;
