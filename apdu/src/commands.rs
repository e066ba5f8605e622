//! Constructors for the card commands the host sends, each citing its clause of ISO/IEC 7816-4
//! (2013/2020 numbering, clause 11 "interindustry commands") or ISO/IEC 7816-9 (file life cycle).
//!
//! Every constructor returns a [`Command`] in the interindustry class (CLA 00); the
//! [`crate::transmit::Channel`] adds secure messaging, chaining and GET RESPONSE. Commands that
//! carry PINs, PUKs or authentication cryptograms are marked secret, so their data never appears
//! in logs. Constructors whose arguments can be out of range return [`Error::Usage`].
//!
//! ```
//! use apdu::commands::{self, Ins, SelectReturn};
//! let select = commands::select_fid(0x011E, SelectReturn::Fcp);
//! assert_eq!(select.to_bytes().unwrap(), [0x00, 0xA4, 0x00, 0x04, 0x02, 0x01, 0x1E, 0x00]);
//! assert_eq!(Ins::from(select.ins), Ins::Select);
//! ```

use crate::command::{Command, EXTENDED_MAX_NE, SHORT_MAX_NC};
use crate::error::Error;
use crate::fcp::Fcp;

/// Highest offset READ/UPDATE BINARY with an even INS (`B0`/`D6`) can address: P1 bit 8 is the
/// SFI flag, so the offset has 15 bits (32 KiB).
pub const MAX_EVEN_OFFSET: usize = 0x7FFF;

/// Highest offset the odd-INS forms (`B1`/`D7`, offset data object `54`) can address here.
pub const MAX_ODD_OFFSET: usize = 0xFF_FFFF;

/// The file identifier of the MF.
pub const MF_FID: u16 = 0x3F00;

/// Interindustry instruction bytes (ISO/IEC 7816-4 Table 4 and ISO/IEC 7816-9). Anything not
/// named is kept in [`Ins::Other`], so `u8 -> Ins -> u8` is the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ins {
    /// `04` DEACTIVATE FILE.
    DeactivateFile,
    /// `20` VERIFY.
    Verify,
    /// `22` MANAGE SECURITY ENVIRONMENT.
    ManageSecurityEnvironment,
    /// `24` CHANGE REFERENCE DATA.
    ChangeReferenceData,
    /// `2A` PERFORM SECURITY OPERATION.
    PerformSecurityOperation,
    /// `2C` RESET RETRY COUNTER.
    ResetRetryCounter,
    /// `44` ACTIVATE FILE.
    ActivateFile,
    /// `82` EXTERNAL / MUTUAL AUTHENTICATE.
    MutualAuthenticate,
    /// `84` GET CHALLENGE.
    GetChallenge,
    /// `86` GENERAL AUTHENTICATE.
    GeneralAuthenticate,
    /// `88` INTERNAL AUTHENTICATE.
    InternalAuthenticate,
    /// `A4` SELECT.
    Select,
    /// `B0` READ BINARY (offset in P1-P2).
    ReadBinary,
    /// `B1` READ BINARY, odd INS (offset in data object `54`).
    ReadBinaryOdd,
    /// `B2` READ RECORD.
    ReadRecord,
    /// `C0` GET RESPONSE.
    GetResponse,
    /// `CA` GET DATA.
    GetData,
    /// `D6` UPDATE BINARY (offset in P1-P2).
    UpdateBinary,
    /// `D7` UPDATE BINARY, odd INS (offset in data object `54`).
    UpdateBinaryOdd,
    /// `DA` PUT DATA.
    PutData,
    /// `E0` CREATE FILE.
    CreateFile,
    /// `E4` DELETE FILE.
    DeleteFile,
    /// `E6` TERMINATE DF.
    TerminateDf,
    /// `E8` TERMINATE EF.
    TerminateEf,
    /// `FE` TERMINATE CARD USAGE.
    TerminateCardUsage,
    /// Any other instruction byte, kept verbatim.
    Other(u8),
}

impl Ins {
    /// Every named variant, for tests and tables.
    pub const NAMED: [Ins; 25] = [
        Ins::DeactivateFile,
        Ins::Verify,
        Ins::ManageSecurityEnvironment,
        Ins::ChangeReferenceData,
        Ins::PerformSecurityOperation,
        Ins::ResetRetryCounter,
        Ins::ActivateFile,
        Ins::MutualAuthenticate,
        Ins::GetChallenge,
        Ins::GeneralAuthenticate,
        Ins::InternalAuthenticate,
        Ins::Select,
        Ins::ReadBinary,
        Ins::ReadBinaryOdd,
        Ins::ReadRecord,
        Ins::GetResponse,
        Ins::GetData,
        Ins::UpdateBinary,
        Ins::UpdateBinaryOdd,
        Ins::PutData,
        Ins::CreateFile,
        Ins::DeleteFile,
        Ins::TerminateDf,
        Ins::TerminateEf,
        Ins::TerminateCardUsage,
    ];
}

impl From<u8> for Ins {
    fn from(b: u8) -> Ins {
        match b {
            0x04 => Ins::DeactivateFile,
            0x20 => Ins::Verify,
            0x22 => Ins::ManageSecurityEnvironment,
            0x24 => Ins::ChangeReferenceData,
            0x2A => Ins::PerformSecurityOperation,
            0x2C => Ins::ResetRetryCounter,
            0x44 => Ins::ActivateFile,
            0x82 => Ins::MutualAuthenticate,
            0x84 => Ins::GetChallenge,
            0x86 => Ins::GeneralAuthenticate,
            0x88 => Ins::InternalAuthenticate,
            0xA4 => Ins::Select,
            0xB0 => Ins::ReadBinary,
            0xB1 => Ins::ReadBinaryOdd,
            0xB2 => Ins::ReadRecord,
            0xC0 => Ins::GetResponse,
            0xCA => Ins::GetData,
            0xD6 => Ins::UpdateBinary,
            0xD7 => Ins::UpdateBinaryOdd,
            0xDA => Ins::PutData,
            0xE0 => Ins::CreateFile,
            0xE4 => Ins::DeleteFile,
            0xE6 => Ins::TerminateDf,
            0xE8 => Ins::TerminateEf,
            0xFE => Ins::TerminateCardUsage,
            other => Ins::Other(other),
        }
    }
}

impl From<Ins> for u8 {
    fn from(ins: Ins) -> u8 {
        match ins {
            Ins::DeactivateFile => 0x04,
            Ins::Verify => 0x20,
            Ins::ManageSecurityEnvironment => 0x22,
            Ins::ChangeReferenceData => 0x24,
            Ins::PerformSecurityOperation => 0x2A,
            Ins::ResetRetryCounter => 0x2C,
            Ins::ActivateFile => 0x44,
            Ins::MutualAuthenticate => 0x82,
            Ins::GetChallenge => 0x84,
            Ins::GeneralAuthenticate => 0x86,
            Ins::InternalAuthenticate => 0x88,
            Ins::Select => 0xA4,
            Ins::ReadBinary => 0xB0,
            Ins::ReadBinaryOdd => 0xB1,
            Ins::ReadRecord => 0xB2,
            Ins::GetResponse => 0xC0,
            Ins::GetData => 0xCA,
            Ins::UpdateBinary => 0xD6,
            Ins::UpdateBinaryOdd => 0xD7,
            Ins::PutData => 0xDA,
            Ins::CreateFile => 0xE0,
            Ins::DeleteFile => 0xE4,
            Ins::TerminateDf => 0xE6,
            Ins::TerminateEf => 0xE8,
            Ins::TerminateCardUsage => 0xFE,
            Ins::Other(b) => b,
        }
    }
}

fn cmd(ins: Ins, p1: u8, p2: u8) -> Command {
    Command::new(0x00, ins.into(), p1, p2)
}

fn usage(msg: String) -> Error {
    Error::Usage(msg)
}

/// What SELECT asks the card to return (P2 bits 4-3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectReturn {
    /// P2 = `04`: return the FCP template (`62`), Le = 00.
    Fcp,
    /// P2 = `0C`: no response data.
    Nothing,
}

fn select(p1: u8, data: Vec<u8>, ret: SelectReturn) -> Command {
    match ret {
        SelectReturn::Fcp => cmd(Ins::Select, p1, 0x04).with_data(data).with_ne(256),
        SelectReturn::Nothing => cmd(Ins::Select, p1, 0x0C).with_data(data),
    }
}

/// ISO/IEC 7816-4 §11.2 SELECT the MF: P1 = `00`, data `3F00`, no response data.
pub fn select_mf() -> Command {
    select(0x00, MF_FID.to_be_bytes().to_vec(), SelectReturn::Nothing)
}

/// ISO/IEC 7816-4 §11.2 SELECT by file identifier (P1 = `00`: MF, DF or EF under the
/// current DF).
pub fn select_fid(fid: u16, ret: SelectReturn) -> Command {
    select(0x00, fid.to_be_bytes().to_vec(), ret)
}

/// ISO/IEC 7816-4 §11.2 SELECT by path from the MF (P1 = `08`): the file identifiers after
/// `3F00`, outermost first. An empty path, or one naming `3F00` itself, is a usage error.
pub fn select_path(path: &[u16], ret: SelectReturn) -> Result<Command, Error> {
    if path.is_empty() || path.len() * 2 > SHORT_MAX_NC {
        return Err(usage(format!(
            "SELECT by path: {} file identifiers",
            path.len()
        )));
    }
    if path.contains(&MF_FID) {
        return Err(usage("SELECT by path from the MF: leave out 3F00".into()));
    }
    let data: Vec<u8> = path.iter().flat_map(|fid| fid.to_be_bytes()).collect();
    Ok(select(0x08, data, ret))
}

/// ISO/IEC 7816-4 §11.2 SELECT by DF name (P1 = `04`): an application identifier of 1 to
/// 16 bytes.
pub fn select_df_name(aid: &[u8], ret: SelectReturn) -> Result<Command, Error> {
    if aid.is_empty() || aid.len() > 16 {
        return Err(usage(format!(
            "DF name of {} bytes (1-16 allowed)",
            aid.len()
        )));
    }
    Ok(select(0x04, aid.to_vec(), ret))
}

fn check_ne(ne: usize) -> Result<(), Error> {
    if ne == 0 || ne > EXTENDED_MAX_NE {
        return Err(usage(format!("Ne of {ne} (1-{EXTENDED_MAX_NE} allowed)")));
    }
    Ok(())
}

fn check_sfi(sfi: u8) -> Result<(), Error> {
    if !(1..=30).contains(&sfi) {
        return Err(usage(format!("short EF identifier {sfi} (1-30 allowed)")));
    }
    Ok(())
}

fn even_offset(offset: usize) -> Result<(u8, u8), Error> {
    if offset > MAX_EVEN_OFFSET {
        return Err(usage(format!(
            "offset {offset} beyond {MAX_EVEN_OFFSET}: needs the odd-INS form"
        )));
    }
    Ok(((offset >> 8) as u8, offset as u8))
}

/// ISO/IEC 7816-4 §11.3.3 READ BINARY (`B0`) of the current EF: 15-bit offset in P1-P2,
/// `ne` bytes expected (1-65 536).
pub fn read_binary(offset: usize, ne: usize) -> Result<Command, Error> {
    check_ne(ne)?;
    let (p1, p2) = even_offset(offset)?;
    Ok(cmd(Ins::ReadBinary, p1, p2).with_ne(ne))
}

/// ISO/IEC 7816-4 §11.3.3 READ BINARY (`B0`) with a short EF identifier: P1 = `80 | sfi`,
/// P2 = offset (0-255). The EF becomes the current EF.
pub fn read_binary_sfi(sfi: u8, offset: u8, ne: usize) -> Result<Command, Error> {
    check_ne(ne)?;
    check_sfi(sfi)?;
    Ok(cmd(Ins::ReadBinary, 0x80 | sfi, offset).with_ne(ne))
}

/// Offset data object `54`, minimal big-endian (at least one byte).
fn offset_do(offset: usize) -> Vec<u8> {
    let bytes = (offset as u32).to_be_bytes();
    let skip = ((offset as u32).leading_zeros() as usize / 8).min(3);
    let mut out = vec![0x54, (4 - skip) as u8];
    out.extend_from_slice(&bytes[skip..]);
    out
}

/// ISO/IEC 7816-4 §11.3.3 READ BINARY with odd INS (`B1`) of the current EF (P1-P2 = `0000`):
/// the offset travels in data object `54`, so files beyond 32 KiB can be read. The card answers
/// with the data in a discretionary data object `53`; `ne` must leave room for its header.
pub fn read_binary_odd(offset: usize, ne: usize) -> Result<Command, Error> {
    check_ne(ne)?;
    if offset > MAX_ODD_OFFSET {
        return Err(usage(format!("offset {offset} beyond {MAX_ODD_OFFSET}")));
    }
    Ok(cmd(Ins::ReadBinaryOdd, 0, 0)
        .with_data(offset_do(offset))
        .with_ne(ne))
}

/// ISO/IEC 7816-4 §11.3.5 UPDATE BINARY (`D6`) of the current EF: 15-bit offset in P1-P2.
pub fn update_binary(offset: usize, data: &[u8]) -> Result<Command, Error> {
    if data.is_empty() {
        return Err(usage("UPDATE BINARY with no data".into()));
    }
    let (p1, p2) = even_offset(offset)?;
    Ok(cmd(Ins::UpdateBinary, p1, p2).with_data(data))
}

/// ISO/IEC 7816-4 §11.3.5 UPDATE BINARY (`D6`) with a short EF identifier: P1 = `80 | sfi`,
/// P2 = offset (0-255).
pub fn update_binary_sfi(sfi: u8, offset: u8, data: &[u8]) -> Result<Command, Error> {
    if data.is_empty() {
        return Err(usage("UPDATE BINARY with no data".into()));
    }
    check_sfi(sfi)?;
    Ok(cmd(Ins::UpdateBinary, 0x80 | sfi, offset).with_data(data))
}

/// ISO/IEC 7816-4 §11.3.5 UPDATE BINARY with odd INS (`D7`) of the current EF: data field
/// `54 <offset>` then `53 <data>`, for offsets beyond 32 KiB.
pub fn update_binary_odd(offset: usize, data: &[u8]) -> Result<Command, Error> {
    if data.is_empty() {
        return Err(usage("UPDATE BINARY with no data".into()));
    }
    if offset > MAX_ODD_OFFSET {
        return Err(usage(format!("offset {offset} beyond {MAX_ODD_OFFSET}")));
    }
    let mut body = offset_do(offset);
    crate::tlv::Tlv::primitive(crate::tlv::Tag(0x53), data).encode_into(&mut body);
    Ok(cmd(Ins::UpdateBinaryOdd, 0, 0).with_data(body))
}

/// ISO/IEC 7816-9 CREATE FILE (`E0`): P1-P2 = `0000`, data = the FCP template (`62`) of the
/// new file, created under the current DF.
pub fn create_file(fcp: &Fcp) -> Command {
    cmd(Ins::CreateFile, 0, 0).with_data(fcp.to_bytes())
}

fn file_op(ins: Ins, fid: Option<u16>) -> Command {
    match fid {
        Some(fid) => cmd(ins, 0, 0).with_data(fid.to_be_bytes()),
        None => cmd(ins, 0, 0),
    }
}

/// ISO/IEC 7816-9 DELETE FILE (`E4`): the file `fid` under the current DF, or the current
/// file when `None`.
pub fn delete_file(fid: Option<u16>) -> Command {
    file_op(Ins::DeleteFile, fid)
}

/// ISO/IEC 7816-9 ACTIVATE FILE (`44`): moves `fid` (or the current file) to the operational,
/// activated state (LCS `05`).
pub fn activate_file(fid: Option<u16>) -> Command {
    file_op(Ins::ActivateFile, fid)
}

/// ISO/IEC 7816-9 DEACTIVATE FILE (`04`): moves `fid` (or the current file) to the operational,
/// deactivated state (LCS `04`).
pub fn deactivate_file(fid: Option<u16>) -> Command {
    file_op(Ins::DeactivateFile, fid)
}

/// ISO/IEC 7816-9 TERMINATE DF (`E6`): irreversibly terminates the current DF (LCS `0C`).
pub fn terminate_df() -> Command {
    cmd(Ins::TerminateDf, 0, 0)
}

/// ISO/IEC 7816-9 TERMINATE EF (`E8`): irreversibly terminates `fid` (or the current EF).
pub fn terminate_ef(fid: Option<u16>) -> Command {
    file_op(Ins::TerminateEf, fid)
}

/// ISO/IEC 7816-9 TERMINATE CARD USAGE (`FE`): irreversibly ends the card's life.
pub fn terminate_card_usage() -> Command {
    cmd(Ins::TerminateCardUsage, 0, 0)
}

/// ISO/IEC 7816-4 §11.6 GET CHALLENGE (`84`): `len` random bytes (1-256, e.g. 8 for BAC).
pub fn get_challenge(len: usize) -> Result<Command, Error> {
    if len == 0 || len > 256 {
        return Err(usage(format!("challenge of {len} bytes (1-256 allowed)")));
    }
    Ok(cmd(Ins::GetChallenge, 0, 0).with_ne(len))
}

/// ISO/IEC 7816-4 §11.6 EXTERNAL / MUTUAL AUTHENTICATE (`82`): the host's cryptogram (secret),
/// `ne` bytes of the card's cryptogram expected.
pub fn mutual_authenticate(cryptogram: &[u8], ne: usize) -> Result<Command, Error> {
    if cryptogram.is_empty() {
        return Err(usage("MUTUAL AUTHENTICATE with no cryptogram".into()));
    }
    check_ne(ne)?;
    Ok(cmd(Ins::MutualAuthenticate, 0, 0)
        .with_data(cryptogram)
        .with_ne(ne)
        .secret())
}

fn check_pin(what: &str, pin: &[u8]) -> Result<(), Error> {
    if pin.is_empty() || pin.len() > 64 {
        return Err(usage(format!(
            "{what} of {} bytes (1-64 allowed)",
            pin.len()
        )));
    }
    Ok(())
}

/// ISO/IEC 7816-4 §11.6 VERIFY (`20`): P1 = `00`, P2 = PIN reference, data = the PIN (secret).
pub fn verify(pin_ref: u8, pin: &[u8]) -> Result<Command, Error> {
    check_pin("PIN", pin)?;
    Ok(cmd(Ins::Verify, 0, pin_ref).with_data(pin).secret())
}

/// ISO/IEC 7816-4 §11.6 VERIFY (`20`) with no data: asks for the verification status; a
/// blocked or unverified PIN answers `63Cx` with the tries left.
pub fn verify_status(pin_ref: u8) -> Command {
    cmd(Ins::Verify, 0, pin_ref)
}

/// ISO/IEC 7816-4 §11.6 CHANGE REFERENCE DATA (`24`): P1 = `00` with old and new PIN
/// concatenated, or P1 = `01` with only the new PIN when `old` is empty (secret).
pub fn change_reference_data(pin_ref: u8, old: &[u8], new: &[u8]) -> Result<Command, Error> {
    check_pin("new PIN", new)?;
    let p1 = if old.is_empty() { 0x01 } else { 0x00 };
    if !old.is_empty() {
        check_pin("old PIN", old)?;
    }
    let data = [old, new].concat();
    Ok(cmd(Ins::ChangeReferenceData, p1, pin_ref)
        .with_data(data)
        .secret())
}

/// ISO/IEC 7816-4 §11.6 RESET RETRY COUNTER (`2C`): P1 = `00`, data = PUK then new PIN
/// (secret); P2 = PIN reference.
pub fn reset_retry_counter(pin_ref: u8, puk: &[u8], new_pin: &[u8]) -> Result<Command, Error> {
    check_pin("PUK", puk)?;
    check_pin("new PIN", new_pin)?;
    let data = [puk, new_pin].concat();
    Ok(cmd(Ins::ResetRetryCounter, 0, pin_ref)
        .with_data(data)
        .secret())
}

/// ISO/IEC 7816-4 §11.5 GET DATA (`CA`): P1-P2 = the tag of the data object, `ne` bytes
/// expected.
pub fn get_data(tag: u16, ne: usize) -> Result<Command, Error> {
    check_ne(ne)?;
    let [p1, p2] = tag.to_be_bytes();
    Ok(cmd(Ins::GetData, p1, p2).with_ne(ne))
}

/// ISO/IEC 7816-4 §11.7 GET RESPONSE (`C0`): fetches `ne` bytes left by a `61xx`; as with
/// SW2 of `61xx`, `0` (and anything above 256) means 256 (Le = `00`).
pub fn get_response(ne: usize) -> Command {
    let ne = if ne == 0 || ne > 256 { 256 } else { ne };
    cmd(Ins::GetResponse, 0, 0).with_ne(ne)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fcp::LifeCycle;

    fn bytes(c: Result<Command, Error>) -> Vec<u8> {
        c.unwrap().to_bytes().unwrap()
    }

    #[test]
    fn every_ins_round_trips() {
        for v in Ins::NAMED {
            assert_eq!(Ins::from(u8::from(v)), v, "{v:?}");
            assert!(!matches!(v, Ins::Other(_)));
        }
        for b in 0..=u8::MAX {
            assert_eq!(u8::from(Ins::from(b)), b);
        }
        let named: std::collections::HashSet<u8> = Ins::NAMED.iter().map(|&i| i.into()).collect();
        assert_eq!(named.len(), Ins::NAMED.len(), "two variants share a byte");
    }

    #[test]
    fn select_forms() {
        assert_eq!(
            select_mf().to_bytes().unwrap(),
            [0, 0xA4, 0, 0x0C, 2, 0x3F, 0]
        );
        let nothing = select_fid(0x011E, SelectReturn::Nothing);
        assert_eq!(
            nothing.to_bytes().unwrap(),
            [0, 0xA4, 0, 0x0C, 2, 0x01, 0x1E]
        );
        assert_eq!(
            bytes(select_path(&[0xDF01, 0x011E], SelectReturn::Fcp)),
            [0, 0xA4, 8, 4, 4, 0xDF, 1, 1, 0x1E, 0]
        );
        let aid = [0xA0, 0, 0, 2, 0x47, 0x10, 1];
        assert_eq!(
            bytes(select_df_name(&aid, SelectReturn::Nothing))[..5],
            [0, 0xA4, 4, 0x0C, 7]
        );
        assert!(select_path(&[], SelectReturn::Fcp).is_err());
        assert!(select_path(&[0x3F00, 1], SelectReturn::Fcp).is_err());
        assert!(select_df_name(&[0; 17], SelectReturn::Fcp).is_err());
        assert!(select_df_name(&[], SelectReturn::Fcp).is_err());
    }

    #[test]
    fn binary_addressing() {
        assert_eq!(bytes(read_binary(0x7FFF, 256)), [0, 0xB0, 0x7F, 0xFF, 0]);
        assert_eq!(bytes(read_binary(0x0102, 0x10)), [0, 0xB0, 1, 2, 0x10]);
        assert_eq!(bytes(read_binary(0, 1000)), [0, 0xB0, 0, 0, 0, 0x03, 0xE8]);
        assert!(matches!(read_binary(0x8000, 1), Err(Error::Usage(_))));
        assert!(read_binary(0, 0).is_err() && read_binary(0, 65_537).is_err());
        assert_eq!(bytes(read_binary_sfi(0x1E, 4, 8)), [0, 0xB0, 0x9E, 4, 8]);
        assert!(read_binary_sfi(0, 0, 1).is_err() && read_binary_sfi(31, 0, 1).is_err());
        assert_eq!(
            bytes(update_binary(0x0100, &[9, 9])),
            [0, 0xD6, 1, 0, 2, 9, 9]
        );
        assert_eq!(
            bytes(update_binary_sfi(1, 2, &[9])),
            [0, 0xD6, 0x81, 2, 1, 9]
        );
        assert!(update_binary(0x8000, &[1]).is_err() && update_binary(0, &[]).is_err());
        assert_eq!(
            bytes(read_binary_odd(0x8000, 0x20)),
            [0, 0xB1, 0, 0, 4, 0x54, 2, 0x80, 0, 0x20]
        );
        assert_eq!(
            bytes(read_binary_odd(0, 4)),
            [0, 0xB1, 0, 0, 3, 0x54, 1, 0, 4]
        );
        assert_eq!(
            bytes(update_binary_odd(0x01_0000, &[7, 8])),
            [0, 0xD7, 0, 0, 9, 0x54, 3, 1, 0, 0, 0x53, 2, 7, 8]
        );
        assert!(read_binary_odd(MAX_ODD_OFFSET + 1, 1).is_err());
    }

    #[test]
    fn file_life_cycle_commands() {
        let fcp = Fcp::transparent_ef(0x0101, 64).with_life_cycle(LifeCycle::Creation);
        let create = create_file(&fcp);
        assert_eq!(&create.to_bytes().unwrap()[..4], &[0, 0xE0, 0, 0]);
        assert_eq!(Fcp::parse(&create.data).unwrap(), fcp);
        assert_eq!(
            delete_file(Some(0x0101)).to_bytes().unwrap(),
            [0, 0xE4, 0, 0, 2, 1, 1]
        );
        assert_eq!(delete_file(None).to_bytes().unwrap(), [0, 0xE4, 0, 0]);
        assert_eq!(activate_file(None).ins, 0x44);
        assert_eq!(
            deactivate_file(Some(1)).to_bytes().unwrap(),
            [0, 0x04, 0, 0, 2, 0, 1]
        );
        assert_eq!(terminate_df().to_bytes().unwrap(), [0, 0xE6, 0, 0]);
        assert_eq!(terminate_ef(None).to_bytes().unwrap(), [0, 0xE8, 0, 0]);
        assert_eq!(terminate_card_usage().to_bytes().unwrap(), [0, 0xFE, 0, 0]);
    }

    #[test]
    fn security_commands_are_secret() {
        assert_eq!(bytes(get_challenge(8)), [0, 0x84, 0, 0, 8]);
        assert!(get_challenge(0).is_err() && get_challenge(257).is_err());
        let auth = mutual_authenticate(&[1; 40], 40).unwrap();
        assert!(auth.secret);
        assert_eq!(&auth.to_bytes().unwrap()[..5], &[0, 0x82, 0, 0, 40]);
        let v = verify(0x81, b"123456").unwrap();
        assert!(v.secret && !format!("{v:?}").contains("313233"));
        assert_eq!(&v.to_bytes().unwrap()[..5], &[0, 0x20, 0, 0x81, 6]);
        assert!(verify(0x81, b"").is_err());
        assert!(!verify_status(0x81).secret);
        let c = change_reference_data(0x81, b"1234", b"5678").unwrap();
        assert_eq!(
            (c.p1, c.data.as_slice(), c.secret),
            (0, &b"12345678"[..], true)
        );
        assert_eq!(change_reference_data(0x81, b"", b"5678").unwrap().p1, 1);
        let r = reset_retry_counter(0x81, b"87654321", b"0000").unwrap();
        assert_eq!(
            (r.ins, r.p2, r.data.len(), r.secret),
            (0x2C, 0x81, 12, true)
        );
        assert_eq!(bytes(get_data(0x5F2E, 256)), [0, 0xCA, 0x5F, 0x2E, 0]);
        assert_eq!(get_response(0).ne, Some(256));
        assert_eq!(
            get_response(0x20).to_bytes().unwrap(),
            [0, 0xC0, 0, 0, 0x20]
        );
        assert_eq!(get_response(300).to_bytes().unwrap(), [0, 0xC0, 0, 0, 0]);
    }
}
