//! Secure messaging (ISO/IEC 7816-4 §10, ICAO Doc 9303-11 §9.8 with AES), card key derivation
//! and the mutual authentication both sides perform.
//!
//! Everything here is used by the host *and* by the simulated card, so both sides run the same
//! crypto:
//! - [`kdf`]: NIST SP 800-108 counter-mode KDF with AES-CMAC as PRF.
//! - [`diversify`]: a per-card key from an issuer master key and the card serial.
//! - [`derive_auth`], [`host_authenticate_step`], [`card_authenticate_step`]: session keys and
//!   authentication cryptograms from RND.IFD || RND.IC.
//! - [`SmSession`]: S_ENC, S_MAC and the send sequence counter; wraps and unwraps commands and
//!   responses (host side: [`SmSession::wrap_command`], [`SmSession::unwrap_response`]; card side:
//!   [`SmSession::unwrap_command`], [`SmSession::wrap_response`]).
//! - [`HostSecureChannel`]: an [`SmSession`] behind the [`SecureChannel`] trait of the
//!   [`crate::transmit`] chokepoint.
//!
//! ```
//! use apdu::sm::{derive_auth, AesKey};
//! use apdu::{Command, StatusWord};
//!
//! let key = AesKey::Aes128([7; 16]);
//! let mut host = derive_auth(&key, &[1; 16], &[2; 16]).session;
//! let mut card = derive_auth(&key, &[1; 16], &[2; 16]).session;
//! let wrapped = host.wrap_command(&Command::new(0, 0xB0, 0, 0).with_ne(4)).unwrap();
//! let plain = card.unwrap_command(&wrapped).unwrap();
//! assert_eq!(plain.ne, Some(4));
//! let resp = card.wrap_response(&[1, 2, 3, 4], StatusWord::Success);
//! let resp = host.unwrap_response(&apdu::RawResponse::parse(&resp).unwrap()).unwrap();
//! assert_eq!(resp.data, [1, 2, 3, 4]);
//! ```

use std::fmt;

use aes::cipher::block_padding::NoPadding;
use aes::cipher::generic_array::GenericArray;
use aes::cipher::{BlockDecryptMut, BlockEncrypt, BlockEncryptMut, KeyInit, KeyIvInit};
use aes::{Aes128, Aes256};
use cmac::{Cmac, Mac};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::command::{Command, EXTENDED_MAX_NC, EXTENDED_MAX_NE, SHORT_MAX_NC, SHORT_MAX_NE};
use crate::error::Error;
use crate::response::RawResponse;
use crate::status::StatusWord;
use crate::tlv;
use crate::transmit::SecureChannel;

/// AES block size in bytes; also the size of the send sequence counter.
pub const BLOCK: usize = 16;
/// Length of the truncated MAC carried in DO8E.
pub const MAC_LEN: usize = 8;
/// Length of RND.IFD and RND.IC.
pub const RND_LEN: usize = 16;
/// Length of the host and card authentication cryptograms.
pub const CRYPTOGRAM_LEN: usize = 16;
/// The largest output [`kdf`] produces: 255 counter blocks of 16 bytes.
pub const KDF_MAX_OUT: usize = 255 * BLOCK;

/// KDF label: card key diversification.
pub const LABEL_DIVERSIFY: u8 = 0x10;
/// KDF label: session encryption key S_ENC.
pub const LABEL_S_ENC: u8 = 0x04;
/// KDF label: session MAC key S_MAC.
pub const LABEL_S_MAC: u8 = 0x06;
/// KDF label: host authentication cryptogram (under S_MAC).
pub const LABEL_HOST_CRYPTOGRAM: u8 = 0x01;
/// KDF label: card authentication cryptogram (under S_MAC).
pub const LABEL_CARD_CRYPTOGRAM: u8 = 0x00;

/// Status word the card returns for a wrong host cryptogram (6300, authentication failed).
pub const SW_AUTH_FAILED: StatusWord = StatusWord::Other(0x6300);

/// An AES key: the only key type of the card profile. Zeroized on drop; `Debug` prints REDACTED.
#[derive(Clone, PartialEq, Eq, Zeroize, ZeroizeOnDrop)]
pub enum AesKey {
    /// AES-128.
    Aes128([u8; 16]),
    /// AES-256.
    Aes256([u8; 32]),
}

impl AesKey {
    /// A key from 16 or 32 raw bytes; any other length is an error.
    pub fn from_slice(bytes: &[u8]) -> Result<AesKey, Error> {
        if let Ok(k) = <[u8; 16]>::try_from(bytes) {
            Ok(AesKey::Aes128(k))
        } else if let Ok(k) = <[u8; 32]>::try_from(bytes) {
            Ok(AesKey::Aes256(k))
        } else {
            Err(Error::Usage(format!(
                "an AES key has 16 or 32 bytes, not {}",
                bytes.len()
            )))
        }
    }

    /// The key length in bytes (16 or 32).
    pub fn len(&self) -> usize {
        self.as_bytes().len()
    }

    /// Always false: an AES key is never empty (present for API symmetry with `len`).
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The raw key bytes.
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            AesKey::Aes128(k) => k,
            AesKey::Aes256(k) => k,
        }
    }
}

impl fmt::Debug for AesKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AesKey::Aes128(_) => write!(f, "AesKey::Aes128(REDACTED)"),
            AesKey::Aes256(_) => write!(f, "AesKey::Aes256(REDACTED)"),
        }
    }
}

/// Which card key a mutual authentication uses (P2 of MUTUAL AUTHENTICATE).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum KeyRef {
    /// The personalization key: creating and writing files, setting the initial PINs.
    Personalization = 0x01,
    /// The terminal key: reading files and activating the card at delivery.
    Terminal = 0x02,
}

impl KeyRef {
    /// The key reference byte.
    pub fn byte(self) -> u8 {
        self as u8
    }
}

impl TryFrom<u8> for KeyRef {
    type Error = StatusWord;

    /// Unknown key references map to 6A88 (referenced data not found), as a card answers.
    fn try_from(b: u8) -> Result<Self, StatusWord> {
        match b {
            0x01 => Ok(KeyRef::Personalization),
            0x02 => Ok(KeyRef::Terminal),
            _ => Err(StatusWord::ReferenceDataNotFound),
        }
    }
}

/// AES-CMAC (NIST SP 800-38B) over the concatenation of `parts`.
pub fn cmac(key: &AesKey, parts: &[&[u8]]) -> [u8; BLOCK] {
    match key {
        AesKey::Aes128(k) => {
            let mut mac = <Cmac<Aes128> as KeyInit>::new(GenericArray::from_slice(k));
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes().into()
        }
        AesKey::Aes256(k) => {
            let mut mac = <Cmac<Aes256> as KeyInit>::new(GenericArray::from_slice(k));
            for p in parts {
                mac.update(p);
            }
            mac.finalize().into_bytes().into()
        }
    }
}

/// NIST SP 800-108 KDF in counter mode with AES-CMAC under `key` as PRF:
/// blocks `CMAC(K, [i] || [label] || 00 || context || [L]_16)` for i = 1, 2, ..., concatenated and
/// truncated to `out_len` bytes (L is `out_len` in bits, 2 bytes big-endian).
///
/// # Panics
/// When `out_len` exceeds [`KDF_MAX_OUT`] (the 1-byte counter would wrap). Callers in this crate
/// ask for 16 or 32 bytes; `out_len` never comes from card or user input.
pub fn kdf(key: &AesKey, label: u8, context: &[u8], out_len: usize) -> Zeroizing<Vec<u8>> {
    let prf = |block: &[u8]| Ok::<_, std::convert::Infallible>(cmac(key, &[block]));
    match kdf_with(prf, label, context, out_len) {
        Ok(out) => out,
        Err(never) => match never {},
    }
}

/// [`kdf`] with the CMAC computed by `prf`, which gets each whole PRF input block: the same
/// derivation when the key is in an HSM (`CKM_AES_CMAC` in the token) and never in this process.
///
/// # Panics
/// When `out_len` exceeds [`KDF_MAX_OUT`], as [`kdf`].
pub fn kdf_with<E>(
    mut prf: impl FnMut(&[u8]) -> Result<[u8; BLOCK], E>,
    label: u8,
    context: &[u8],
    out_len: usize,
) -> Result<Zeroizing<Vec<u8>>, E> {
    assert!(
        out_len <= KDF_MAX_OUT,
        "kdf output of {out_len} bytes exceeds {KDF_MAX_OUT}"
    );
    let bits = ((out_len * 8) as u16).to_be_bytes();
    let mut input = Zeroizing::new(Vec::with_capacity(3 + context.len() + 2));
    let mut out = Zeroizing::new(Vec::with_capacity(out_len.div_ceil(BLOCK) * BLOCK));
    let mut i: u8 = 1;
    while out.len() < out_len {
        input.clear();
        input.extend_from_slice(&[i, label, 0x00]);
        input.extend_from_slice(context);
        input.extend_from_slice(&bits);
        let mut block = prf(&input)?;
        out.extend_from_slice(&block);
        block.zeroize();
        i = i.wrapping_add(1);
    }
    out.truncate(out_len);
    Ok(out)
}

/// A key of the same size as `like` from KDF output of that length.
fn key_like(like: &AesKey, bytes: &[u8]) -> AesKey {
    match like {
        AesKey::Aes128(_) => {
            let mut k = [0u8; 16];
            k.copy_from_slice(&bytes[..16]);
            AesKey::Aes128(k)
        }
        AesKey::Aes256(_) => {
            let mut k = [0u8; 32];
            k.copy_from_slice(&bytes[..32]);
            AesKey::Aes256(k)
        }
    }
}

/// The card's own key for `key_ref`: `kdf(master, 0x10, [key_ref] || serial, len(master))`, a key
/// of the master's size. The issuer stores the masters; each card stores only its diversified keys.
pub fn diversify(master: &AesKey, key_ref: KeyRef, serial: &[u8; 8]) -> AesKey {
    let bytes = kdf(
        master,
        LABEL_DIVERSIFY,
        &diversify_context(key_ref, serial),
        master.len(),
    );
    key_like(master, &bytes)
}

/// The KDF context of [`diversify`]: the key reference then the card serial.
pub fn diversify_context(key_ref: KeyRef, serial: &[u8; 8]) -> [u8; 9] {
    let mut context = [0u8; 9];
    context[0] = key_ref.byte();
    context[1..].copy_from_slice(serial);
    context
}

/// [`diversify`] with the CMAC under a master of `master_len` bytes (16 or 32) computed by `prf`:
/// how a key store derives a card key without the master leaving it.
pub fn diversify_with<E>(
    prf: impl FnMut(&[u8]) -> Result<[u8; BLOCK], E>,
    master_len: usize,
    key_ref: KeyRef,
    serial: &[u8; 8],
) -> Result<AesKey, E> {
    let bytes = kdf_with(
        prf,
        LABEL_DIVERSIFY,
        &diversify_context(key_ref, serial),
        master_len,
    )?;
    Ok(match master_len {
        16 => key_like(&AesKey::Aes128([0; 16]), &bytes),
        _ => key_like(&AesKey::Aes256([0; 32]), &bytes),
    })
}

/// Where the host gets a card's own keys. The issuer's implementation is a key store that
/// derives them from master keys which never leave its HSM; the derived key is in host memory
/// only for the authentication (an [`AesKey`] is zeroized on drop).
pub trait CardKeys: Send + Sync {
    /// The key `key_ref` of the card with `serial`. A key store that cannot answer now (token
    /// removed, HSM unreachable) returns [`Error::KeyUnavailable`].
    fn card_key(&self, key_ref: KeyRef, serial: &[u8; 8]) -> Result<AesKey, Error>;
}

/// Constant-time equality for MACs and cryptograms: the time depends only on the lengths, which
/// are public.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// What both sides derive from the card key and the two challenges.
pub struct AuthMaterial {
    /// The fresh secure messaging session (S_ENC, S_MAC, SSC = 0).
    pub session: SmSession,
    /// `kdf(S_MAC, 0x01, ctx, 16)`: proves the host knows the card key.
    pub host_cryptogram: Zeroizing<[u8; CRYPTOGRAM_LEN]>,
    /// `kdf(S_MAC, 0x00, ctx, 16)`: proves the card knows the card key.
    pub card_cryptogram: Zeroizing<[u8; CRYPTOGRAM_LEN]>,
}

fn cryptogram(s_mac: &AesKey, label: u8, ctx: &[u8]) -> Zeroizing<[u8; CRYPTOGRAM_LEN]> {
    let bytes = kdf(s_mac, label, ctx, CRYPTOGRAM_LEN);
    let mut out = Zeroizing::new([0u8; CRYPTOGRAM_LEN]);
    out.copy_from_slice(&bytes);
    out
}

/// Session keys and both cryptograms for card key `card_key` and ctx = RND.IFD || RND.IC:
/// S_ENC = kdf(K, 0x04, ctx, len K), S_MAC = kdf(K, 0x06, ctx, len K),
/// host cryptogram = kdf(S_MAC, 0x01, ctx, 16), card cryptogram = kdf(S_MAC, 0x00, ctx, 16).
pub fn derive_auth(
    card_key: &AesKey,
    rnd_ifd: &[u8; RND_LEN],
    rnd_ic: &[u8; RND_LEN],
) -> AuthMaterial {
    let mut ctx = Zeroizing::new([0u8; 2 * RND_LEN]);
    ctx[..RND_LEN].copy_from_slice(rnd_ifd);
    ctx[RND_LEN..].copy_from_slice(rnd_ic);
    let s_enc = key_like(card_key, &kdf(card_key, LABEL_S_ENC, &*ctx, card_key.len()));
    let s_mac = key_like(card_key, &kdf(card_key, LABEL_S_MAC, &*ctx, card_key.len()));
    let host_cryptogram = cryptogram(&s_mac, LABEL_HOST_CRYPTOGRAM, &*ctx);
    let card_cryptogram = cryptogram(&s_mac, LABEL_CARD_CRYPTOGRAM, &*ctx);
    AuthMaterial {
        session: SmSession::new(s_enc, s_mac),
        host_cryptogram,
        card_cryptogram,
    }
}

/// The host's half of mutual authentication, between MUTUAL AUTHENTICATE and the card's answer.
pub struct HostAuth {
    material: AuthMaterial,
    command_data: Zeroizing<Vec<u8>>,
}

impl HostAuth {
    /// The MUTUAL AUTHENTICATE data field: RND.IFD || host cryptogram (32 bytes, secret).
    pub fn command_data(&self) -> &[u8] {
        &self.command_data
    }

    /// Checks the card cryptogram (constant time) and, when it matches, yields the session.
    pub fn verify_card(self, card_cryptogram: &[u8]) -> Result<SmSession, Error> {
        if ct_eq(card_cryptogram, &*self.material.card_cryptogram) {
            Ok(self.material.session)
        } else {
            Err(Error::SecureMessaging(format!(
                "card cryptogram of {} bytes does not match: the card does not hold the expected key",
                card_cryptogram.len()
            )))
        }
    }
}

/// Host side of step (2)-(3): derives the session for `card_key` (the diversified card key) and the
/// MUTUAL AUTHENTICATE data from RND.IFD (host random) and RND.IC (from GET CHALLENGE).
pub fn host_authenticate_step(
    card_key: &AesKey,
    rnd_ifd: &[u8; RND_LEN],
    rnd_ic: &[u8; RND_LEN],
) -> HostAuth {
    let material = derive_auth(card_key, rnd_ifd, rnd_ic);
    let mut command_data = Zeroizing::new(Vec::with_capacity(RND_LEN + CRYPTOGRAM_LEN));
    command_data.extend_from_slice(rnd_ifd);
    command_data.extend_from_slice(&*material.host_cryptogram);
    HostAuth {
        material,
        command_data,
    }
}

/// What the card gets from a successful MUTUAL AUTHENTICATE.
pub struct CardAuth {
    /// The secure messaging session now active on the card.
    pub session: SmSession,
    /// The response data: the card cryptogram.
    pub card_cryptogram: Zeroizing<[u8; CRYPTOGRAM_LEN]>,
}

/// Card side of MUTUAL AUTHENTICATE: `data` is RND.IFD || host cryptogram, `rnd_ic` the challenge
/// the card issued. A data field that is not 32 bytes gives 6700; a wrong host cryptogram (checked
/// in constant time) gives [`SW_AUTH_FAILED`] (6300). Retry counting is the card's business.
pub fn card_authenticate_step(
    card_key: &AesKey,
    rnd_ic: &[u8; RND_LEN],
    data: &[u8],
) -> Result<CardAuth, StatusWord> {
    if data.len() != RND_LEN + CRYPTOGRAM_LEN {
        return Err(StatusWord::WrongLength);
    }
    let mut rnd_ifd = [0u8; RND_LEN];
    rnd_ifd.copy_from_slice(&data[..RND_LEN]);
    let material = derive_auth(card_key, &rnd_ifd, rnd_ic);
    if !ct_eq(&data[RND_LEN..], &*material.host_cryptogram) {
        return Err(SW_AUTH_FAILED);
    }
    Ok(CardAuth {
        session: material.session,
        card_cryptogram: material.card_cryptogram,
    })
}

// ---------------------------------------------------------------------------------------------
// Block cipher helpers.

/// AES-ECB of one block (the IV derivation: IV = E(S_ENC, SSC)).
fn ecb_block(key: &AesKey, block: &[u8; BLOCK]) -> [u8; BLOCK] {
    let mut b = GenericArray::clone_from_slice(block);
    match key {
        AesKey::Aes128(k) => Aes128::new(GenericArray::from_slice(k)).encrypt_block(&mut b),
        AesKey::Aes256(k) => Aes256::new(GenericArray::from_slice(k)).encrypt_block(&mut b),
    }
    b.into()
}

/// AES-CBC encryption in place of a buffer whose length is a multiple of 16.
fn cbc_encrypt(key: &AesKey, iv: &[u8; BLOCK], buf: &mut [u8]) -> Result<(), Error> {
    let len = buf.len();
    let res = match key {
        AesKey::Aes128(k) => cbc::Encryptor::<Aes128>::new(k.into(), iv.into())
            .encrypt_padded_mut::<NoPadding>(buf, len)
            .map(|_| ()),
        AesKey::Aes256(k) => cbc::Encryptor::<Aes256>::new(k.into(), iv.into())
            .encrypt_padded_mut::<NoPadding>(buf, len)
            .map(|_| ()),
    };
    res.map_err(|_| Error::SecureMessaging(format!("{len} bytes are not whole AES blocks")))
}

/// AES-CBC decryption in place; the length must be a non-zero multiple of 16.
fn cbc_decrypt(key: &AesKey, iv: &[u8; BLOCK], buf: &mut [u8]) -> Result<(), ()> {
    if buf.is_empty() || !buf.len().is_multiple_of(BLOCK) {
        return Err(());
    }
    let res = match key {
        AesKey::Aes128(k) => cbc::Decryptor::<Aes128>::new(k.into(), iv.into())
            .decrypt_padded_mut::<NoPadding>(buf)
            .map(|_| ()),
        AesKey::Aes256(k) => cbc::Decryptor::<Aes256>::new(k.into(), iv.into())
            .decrypt_padded_mut::<NoPadding>(buf)
            .map(|_| ()),
    };
    res.map_err(|_| ())
}

/// ISO/IEC 9797-1 padding method 2: 0x80 then zeros up to a multiple of 16 (always adds a byte).
pub fn pad(data: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(padded_len(data.len())));
    out.extend_from_slice(data);
    out.push(0x80);
    out.resize(padded_len(data.len()), 0);
    out
}

/// The length of `pad(data)` for `n` bytes of data.
pub fn padded_len(n: usize) -> usize {
    (n / BLOCK + 1) * BLOCK
}

/// Removes ISO/IEC 9797-1 method 2 padding; `None` when it is not there.
pub fn unpad(data: &[u8]) -> Option<&[u8]> {
    let last = data.iter().rposition(|&b| b != 0)?;
    if data[last] != 0x80 || data.len() - last > BLOCK {
        return None;
    }
    Some(&data[..last])
}

// ---------------------------------------------------------------------------------------------
// BER-TLV for the secure messaging data objects (one-byte tags, lengths up to 82 xx xx; the
// length field is encoded and parsed by `crate::tlv`).

/// Longest value of a secure messaging data object: its length field stops at `82 xx xx`.
const MAX_DO_LEN: usize = 0xFFFF;

/// Appends a BER-TLV length (short form, 81 xx or 82 xx xx).
fn push_len(out: &mut Vec<u8>, len: usize) -> Result<(), Error> {
    if len > MAX_DO_LEN {
        return Err(Error::Usage(format!(
            "{len} bytes are too long for a secure messaging object"
        )));
    }
    tlv::write_length(len, out);
    Ok(())
}

/// One parsed data object: its tag, its value and the whole encoding.
struct Do<'a> {
    tag: u8,
    value: &'a [u8],
    /// Offset of the first byte after this object in the body.
    end: usize,
}

/// Reads one data object at `pos`; `None` for anything malformed.
fn read_do(body: &[u8], pos: usize) -> Option<Do<'_>> {
    let tag = *body.get(pos)?;
    if tag & 0x1F == 0x1F {
        return None; // multi-byte tags are not secure messaging objects
    }
    let (len, len_bytes) = tlv::parse_length(body.get(pos + 1..)?).ok()?;
    if len_bytes > tlv::length_size(MAX_DO_LEN) {
        return None; // 83 and 84 are BER but no secure messaging length
    }
    let start = pos + 1 + len_bytes;
    let end = start.checked_add(len)?;
    let value = body.get(start..end)?;
    Some(Do { tag, value, end })
}

/// The objects of a protected body, in the fixed order `[87] [97|99] 8E`.
#[derive(Default)]
struct SmObjects<'a> {
    do87: Option<&'a [u8]>,
    do97: Option<&'a [u8]>,
    do99: Option<&'a [u8]>,
    /// The MAC from DO8E.
    mac: Option<&'a [u8]>,
    /// Bytes covered by the MAC (everything before DO8E).
    macced: &'a [u8],
}

/// Why a protected body was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SmFault {
    /// A required object is absent (6987).
    Missing(&'static str),
    /// An object is malformed, misplaced or its MAC/padding is wrong (6988).
    Incorrect(&'static str),
}

impl SmFault {
    fn status(self) -> StatusWord {
        match self {
            SmFault::Missing(_) => StatusWord::SmObjectsMissing,
            SmFault::Incorrect(_) => StatusWord::SmObjectsIncorrect,
        }
    }

    fn into_error(self, side: &str) -> Error {
        let what = match self {
            SmFault::Missing(w) => format!("{side}: missing {w}"),
            SmFault::Incorrect(w) => format!("{side}: {w}"),
        };
        Error::SecureMessaging(what)
    }
}

/// Splits a protected body into its objects. `second` is the tag allowed after DO87 (0x97 in a
/// command, 0x99 in a response). DO8E must come last and be the only thing after the others.
fn parse_objects(body: &[u8], second: u8) -> Result<SmObjects<'_>, SmFault> {
    let mut objs = SmObjects::default();
    let mut pos = 0;
    let mut stage = 0; // 0: expect 87, 1: expect second, 2: expect 8E
    while pos < body.len() {
        let d =
            read_do(body, pos).ok_or(SmFault::Incorrect("malformed secure messaging object"))?;
        match d.tag {
            0x87 if stage == 0 => {
                objs.do87 = Some(d.value);
                stage = 1;
            }
            t if t == second && stage <= 1 => {
                if t == 0x97 {
                    objs.do97 = Some(d.value);
                } else {
                    objs.do99 = Some(d.value);
                }
                stage = 2;
            }
            0x8E => {
                if d.end != body.len() {
                    return Err(SmFault::Incorrect("data after DO8E"));
                }
                if d.value.len() != MAC_LEN {
                    return Err(SmFault::Incorrect("DO8E is not 8 bytes"));
                }
                objs.macced = &body[..pos];
                objs.mac = Some(d.value);
            }
            _ => {
                return Err(SmFault::Incorrect(
                    "unexpected or misplaced secure messaging object",
                ))
            }
        }
        pos = d.end;
    }
    if objs.mac.is_none() {
        return Err(SmFault::Missing("DO8E (MAC)"));
    }
    Ok(objs)
}

// ---------------------------------------------------------------------------------------------
// The session.

/// A secure messaging session: the session keys and the send sequence counter. Zeroized on drop;
/// `Debug` shows only the counter.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SmSession {
    /// S_ENC: encrypts DO87 (AES-CBC, IV = AES-ECB(S_ENC, SSC)).
    s_enc: AesKey,
    /// S_MAC: AES-CMAC of DO8E, truncated to 8 bytes.
    s_mac: AesKey,
    /// Send sequence counter, 16 bytes big-endian, incremented before each command and response.
    ssc: [u8; BLOCK],
}

impl fmt::Debug for SmSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SmSession {{ keys: REDACTED, ssc: {} }}",
            hex::encode_upper(self.ssc)
        )
    }
}

impl SmSession {
    /// A session with SSC = 0 (as after mutual authentication).
    pub fn new(s_enc: AesKey, s_mac: AesKey) -> SmSession {
        SmSession {
            s_enc,
            s_mac,
            ssc: [0; BLOCK],
        }
    }

    /// The current send sequence counter.
    pub fn ssc(&self) -> [u8; BLOCK] {
        self.ssc
    }

    /// The session key size in bytes (16 or 32).
    pub fn key_len(&self) -> usize {
        self.s_enc.len()
    }

    fn increment_ssc(&mut self) {
        for b in self.ssc.iter_mut().rev() {
            let (v, carry) = b.overflowing_add(1);
            *b = v;
            if !carry {
                break;
            }
        }
    }

    /// CMAC(S_MAC, SSC || pad(header) || pad(objects))[..8]; header and objects padded only when
    /// present.
    fn mac(&self, header: Option<&[u8; 4]>, objects: &[u8]) -> [u8; MAC_LEN] {
        let head = header.map(|h| pad(h));
        let body = if objects.is_empty() {
            None
        } else {
            Some(pad(objects))
        };
        let full = cmac(
            &self.s_mac,
            &[
                &self.ssc,
                head.as_deref().map_or(&[][..], |v| v),
                body.as_deref().map_or(&[][..], |v| v),
            ],
        );
        let mut out = [0u8; MAC_LEN];
        out.copy_from_slice(&full[..MAC_LEN]);
        out
    }

    /// Builds DO87 (87 L 01 || AES-CBC(S_ENC, IV = E(S_ENC, SSC), pad(data))) into `out`.
    fn push_do87(&self, out: &mut Vec<u8>, data: &[u8]) -> Result<(), Error> {
        let iv = ecb_block(&self.s_enc, &self.ssc);
        let mut buf = pad(data);
        cbc_encrypt(&self.s_enc, &iv, &mut buf)?;
        out.push(0x87);
        push_len(out, buf.len() + 1)?;
        out.push(0x01);
        out.extend_from_slice(&buf);
        Ok(())
    }

    /// Decrypts a DO87 value (01 || ciphertext) with the current SSC.
    fn open_do87(&self, value: &[u8]) -> Result<Zeroizing<Vec<u8>>, SmFault> {
        let (&indicator, ct) = value
            .split_first()
            .ok_or(SmFault::Incorrect("empty DO87"))?;
        if indicator != 0x01 {
            return Err(SmFault::Incorrect("DO87 padding indicator is not 01"));
        }
        let iv = ecb_block(&self.s_enc, &self.ssc);
        let mut buf = Zeroizing::new(ct.to_vec());
        cbc_decrypt(&self.s_enc, &iv, &mut buf)
            .map_err(|_| SmFault::Incorrect("DO87 is not a whole number of AES blocks"))?;
        let plain = unpad(&buf).ok_or(SmFault::Incorrect("bad padding in DO87"))?;
        Ok(Zeroizing::new(plain.to_vec()))
    }

    /// Host side: protects a plain command. Increments the SSC, then builds
    /// `[DO87] [DO97] DO8E` with CLA | 0x0C and Le 00 (or 0000 when extended length is needed).
    /// Chained or already protected commands are refused.
    pub fn wrap_command(&mut self, cmd: &Command) -> Result<Command, Error> {
        if cmd.is_chained() {
            return Err(Error::Usage(
                "command chaining is not combined with secure messaging; use extended length"
                    .into(),
            ));
        }
        if cmd.cla & 0x0C != 0 {
            return Err(Error::Usage(format!(
                "CLA {:02X} already indicates secure messaging",
                cmd.cla
            )));
        }
        // Checked before the counter moves, so a refused command leaves the session in step.
        let do97_len = match cmd.ne {
            None => 0,
            Some(ne) if ne <= SHORT_MAX_NE => 3,
            Some(_) => 4,
        };
        let protected_len = cmd.data.len() + do87_overhead(cmd.data.len()) + do97_len + 2 + MAC_LEN;
        if protected_len > EXTENDED_MAX_NC {
            return Err(Error::Usage(format!(
                "{} bytes of command data are too long once protected ({protected_len} bytes)",
                cmd.data.len()
            )));
        }
        self.increment_ssc();
        let cla = cmd.cla | 0x0C;
        let header = [cla, cmd.ins, cmd.p1, cmd.p2];
        let mut body = Zeroizing::new(Vec::with_capacity(cmd.data.len() + 48));
        if !cmd.data.is_empty() {
            self.push_do87(&mut body, &cmd.data)?;
        }
        match cmd.ne {
            Some(ne) if ne <= SHORT_MAX_NE => {
                body.extend_from_slice(&[0x97, 0x01, (ne % SHORT_MAX_NE) as u8])
            }
            Some(ne) => {
                body.extend_from_slice(&[0x97, 0x02]);
                body.extend_from_slice(
                    &((ne.min(EXTENDED_MAX_NE) % EXTENDED_MAX_NE) as u16).to_be_bytes(),
                );
            }
            None => {}
        }
        let mac = self.mac(Some(&header), &body);
        body.extend_from_slice(&[0x8E, MAC_LEN as u8]);
        body.extend_from_slice(&mac);
        debug_assert_eq!(body.len(), protected_len);
        let extended = body.len() > SHORT_MAX_NC || cmd.ne.is_some_and(|n| n > SHORT_MAX_NE);
        let mut out = Command::new(cla, cmd.ins, cmd.p1, cmd.p2).with_ne(if extended {
            EXTENDED_MAX_NE
        } else {
            SHORT_MAX_NE
        });
        out.data = body;
        out.secret = cmd.secret;
        Ok(out)
    }

    /// Card side: checks and decrypts a protected command. Increments the SSC first. Returns 6987
    /// when DO8E is missing (or the command is not protected at all) and 6988 for a wrong MAC,
    /// bad padding or malformed objects; the card should then close the session.
    pub fn unwrap_command(&mut self, cmd: &Command) -> Result<Command, StatusWord> {
        self.increment_ssc();
        self.open_command(cmd).map_err(SmFault::status)
    }

    fn open_command(&self, cmd: &Command) -> Result<Command, SmFault> {
        if cmd.cla & 0x0C != 0x0C {
            return Err(SmFault::Missing("secure messaging indication in CLA"));
        }
        let objs = parse_objects(&cmd.data, 0x97)?;
        let header = [cmd.cla, cmd.ins, cmd.p1, cmd.p2];
        let expected = self.mac(Some(&header), objs.macced);
        if !ct_eq(&expected, objs.mac.unwrap_or_default()) {
            return Err(SmFault::Incorrect("wrong MAC"));
        }
        let mut plain = Command::new(cmd.cla & !0x0C, cmd.ins, cmd.p1, cmd.p2);
        if let Some(v) = objs.do87 {
            plain.data = self.open_do87(v)?;
        }
        plain.ne = match objs.do97 {
            None => None,
            Some([0]) => Some(SHORT_MAX_NE),
            Some([b]) => Some(*b as usize),
            Some([0, 0]) => Some(EXTENDED_MAX_NE),
            Some([h, l]) => Some(u16::from_be_bytes([*h, *l]) as usize),
            Some(_) => return Err(SmFault::Incorrect("DO97 is not 1 or 2 bytes")),
        };
        plain.secret = cmd.secret;
        Ok(plain)
    }

    /// Card side: protects a response. Increments the SSC, then returns
    /// `[DO87] DO99 DO8E 90 00`. Data too long for a response (more than 65 519 bytes) is
    /// answered 6700 unprotected, which the host rejects as a secure messaging failure.
    pub fn wrap_response(&mut self, data: &[u8], sw: StatusWord) -> Vec<u8> {
        self.increment_ssc();
        let mut body = Vec::with_capacity(data.len() + 48);
        if !data.is_empty() && self.push_do87(&mut body, data).is_err() {
            return StatusWord::WrongLength.to_bytes().to_vec();
        }
        body.extend_from_slice(&[0x99, 0x02]);
        body.extend_from_slice(&sw.to_bytes());
        let mac = self.mac(None, &body);
        body.extend_from_slice(&[0x8E, MAC_LEN as u8]);
        body.extend_from_slice(&mac);
        body.extend_from_slice(&StatusWord::Success.to_bytes());
        body
    }

    /// Host side: checks and decrypts a protected response. Increments the SSC first. A plain
    /// status word (the card rejected the secure messaging: 6987/6988), a missing DO99 or DO8E, a
    /// wrong MAC or bad padding are all [`Error::SecureMessaging`]; the session is then unusable.
    pub fn unwrap_response(&mut self, resp: &RawResponse) -> Result<RawResponse, Error> {
        self.increment_ssc();
        if resp.data.is_empty() {
            return Err(Error::SecureMessaging(format!(
                "unprotected response {}: the card rejected secure messaging and closed the session",
                resp.sw
            )));
        }
        if resp.sw != StatusWord::Success {
            return Err(Error::SecureMessaging(format!(
                "protected response with outer status {} instead of 9000",
                resp.sw
            )));
        }
        self.open_response(&resp.data)
            .map_err(|f| f.into_error("response"))
    }

    fn open_response(&self, body: &[u8]) -> Result<RawResponse, SmFault> {
        let objs = parse_objects(body, 0x99)?;
        let expected = self.mac(None, objs.macced);
        if !ct_eq(&expected, objs.mac.unwrap_or_default()) {
            return Err(SmFault::Incorrect("wrong MAC"));
        }
        let sw = match objs.do99 {
            Some([sw1, sw2]) => StatusWord::from_bytes(*sw1, *sw2),
            Some(_) => return Err(SmFault::Incorrect("DO99 is not 2 bytes")),
            None => return Err(SmFault::Missing("DO99 (status word)")),
        };
        let data = match objs.do87 {
            Some(v) => self.open_do87(v)?.to_vec(),
            None => Vec::new(),
        };
        Ok(RawResponse { data, sw })
    }
}

/// Bytes DO87 adds around `n` bytes of data (tag, length, indicator and padding). A DO87 too
/// long to build ([`push_len`] refuses it) counts the longest length field, `82 xx xx`.
fn do87_overhead(n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    let content = padded_len(n) + 1;
    1 + tlv::length_size(content.min(MAX_DO_LEN)) + content - n
}

/// A host-side [`SmSession`] for the [`crate::transmit`] chokepoint. After any failure (a wrong
/// MAC, an unprotected error from the card) the channel stays closed: the card has dropped its
/// session too, so every further command is refused until the host authenticates again.
#[derive(Debug)]
pub struct HostSecureChannel {
    /// The session keys and counter.
    session: SmSession,
    /// Set after a failure; the card has closed its side and the counters are out of step.
    closed: bool,
}

impl HostSecureChannel {
    /// A channel over an authenticated session.
    pub fn new(session: SmSession) -> HostSecureChannel {
        HostSecureChannel {
            session,
            closed: false,
        }
    }

    /// True after a secure messaging failure: the session can no longer be used.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// The current send sequence counter.
    pub fn ssc(&self) -> [u8; BLOCK] {
        self.session.ssc()
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.closed {
            Err(Error::SecureMessaging(
                "session closed after an earlier failure; authenticate again".into(),
            ))
        } else {
            Ok(())
        }
    }
}

impl SecureChannel for HostSecureChannel {
    fn wrap(&mut self, cmd: &Command) -> Result<Command, Error> {
        self.check_open()?;
        self.session.wrap_command(cmd)
    }

    fn unwrap(&mut self, resp: &RawResponse) -> Result<RawResponse, Error> {
        self.check_open()?;
        let out = self.session.unwrap_response(resp);
        if out.is_err() {
            self.closed = true;
        }
        out
    }

    /// DO87 (with padding), DO97 (up to 4 bytes) and DO8E (10 bytes).
    fn command_overhead(&self, nc: usize) -> usize {
        do87_overhead(nc) + 4 + 2 + MAC_LEN
    }

    /// DO87 (with padding), DO99 (4 bytes) and DO8E (10 bytes).
    fn response_overhead(&self, ne: usize) -> usize {
        do87_overhead(ne) + 4 + 2 + MAC_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(key: &AesKey) -> (SmSession, SmSession) {
        let a = derive_auth(key, &[0x11; 16], &[0x22; 16]).session;
        let b = derive_auth(key, &[0x11; 16], &[0x22; 16]).session;
        (a, b)
    }

    #[test]
    fn rfc4493_cmac_vectors() {
        let key = AesKey::Aes128(hex_arr("2b7e151628aed2a6abf7158809cf4f3c"));
        let m = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        assert_eq!(
            hex::encode(cmac(&key, &[])),
            "bb1d6929e95937287fa37d129b756746"
        );
        assert_eq!(
            hex::encode(cmac(&key, &[&m])),
            "070a16b46b4d4144f79bdd9dd04a287c"
        );
        // Split input gives the same MAC as the concatenation.
        assert_eq!(cmac(&key, &[&m[..5], &m[5..]]), cmac(&key, &[&m]));
    }

    #[test]
    fn nist_cmac_aes256_vector() {
        // NIST SP 800-38B D.3, example 2 (AES-256, 16-byte message).
        let key = AesKey::from_slice(
            &hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
                .unwrap(),
        )
        .unwrap();
        let m = hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap();
        assert_eq!(
            hex::encode(cmac(&key, &[&m])),
            "28a7023f452e8f82bd4bf28d8c37c35c"
        );
    }

    fn hex_arr(s: &str) -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(&hex::decode(s).unwrap());
        out
    }

    #[test]
    fn kdf_matches_its_definition() {
        let key = AesKey::Aes128([3; 16]);
        let out = kdf(&key, 0x04, b"ctx", 20);
        let b1 = cmac(&key, &[&[1, 4, 0], b"ctx", &[0, 160]]);
        let b2 = cmac(&key, &[&[2, 4, 0], b"ctx", &[0, 160]]);
        assert_eq!(&out[..16], &b1);
        assert_eq!(&out[16..], &b2[..4]);
    }

    #[test]
    fn kdf_is_deterministic_and_sensitive() {
        let key = AesKey::Aes256([9; 32]);
        let a = kdf(&key, 1, b"context", 32);
        assert_eq!(a, kdf(&key, 1, b"context", 32));
        assert_ne!(a, kdf(&key, 2, b"context", 32));
        assert_ne!(a, kdf(&key, 1, b"contexu", 32));
        assert_ne!(a, kdf(&AesKey::Aes256([8; 32]), 1, b"context", 32));
        // L is part of the input: a 16-byte output is not a prefix of the 32-byte one.
        assert_ne!(&a[..16], &kdf(&key, 1, b"context", 16)[..]);
        assert_eq!(kdf(&key, 1, b"", 0).len(), 0);
    }

    #[test]
    fn diversify_keeps_size_and_separates_cards_and_refs() {
        let m = AesKey::Aes256([0x31; 32]);
        let k1 = diversify(&m, KeyRef::Personalization, &[1; 8]);
        assert!(matches!(k1, AesKey::Aes256(_)));
        assert_ne!(k1, diversify(&m, KeyRef::Terminal, &[1; 8]));
        assert_ne!(k1, diversify(&m, KeyRef::Personalization, &[2; 8]));
        assert_eq!(k1, diversify(&m, KeyRef::Personalization, &[1; 8]));
        let m128 = AesKey::Aes128([5; 16]);
        assert!(matches!(
            diversify(&m128, KeyRef::Terminal, &[0; 8]),
            AesKey::Aes128(_)
        ));
    }

    #[test]
    fn keys_and_sessions_are_redacted() {
        let k = AesKey::Aes128([0xAB; 16]);
        assert_eq!(format!("{k:?}"), "AesKey::Aes128(REDACTED)");
        let (s, _) = pair(&k);
        let shown = format!("{s:?}");
        assert!(
            shown.contains("REDACTED") && !shown.contains("ABAB"),
            "{shown}"
        );
    }

    #[test]
    fn from_slice_checks_length() {
        assert!(matches!(
            AesKey::from_slice(&[0; 16]),
            Ok(AesKey::Aes128(_))
        ));
        assert!(matches!(
            AesKey::from_slice(&[0; 32]),
            Ok(AesKey::Aes256(_))
        ));
        assert!(AesKey::from_slice(&[0; 24]).is_err());
    }

    #[test]
    fn mutual_authentication_both_sides() {
        let k = diversify(&AesKey::Aes256([0x32; 32]), KeyRef::Terminal, b"SERIAL01");
        let rnd_ic = [0x5A; 16];
        let host = host_authenticate_step(&k, &[0xA5; 16], &rnd_ic);
        assert_eq!(host.command_data().len(), 32);
        let card = card_authenticate_step(&k, &rnd_ic, host.command_data()).unwrap();
        let mut card_sm = card.session;
        let mut host_sm = host.verify_card(&*card.card_cryptogram).unwrap();
        assert_eq!(host_sm.ssc(), [0; 16]);
        let w = host_sm
            .wrap_command(&Command::new(0, 0xB0, 0, 0).with_ne(10))
            .unwrap();
        assert_eq!(card_sm.unwrap_command(&w).unwrap().ne, Some(10));
    }

    #[test]
    fn mutual_authentication_rejects_wrong_keys() {
        let k = AesKey::Aes128([1; 16]);
        let other = AesKey::Aes128([2; 16]);
        let rnd_ic = [7; 16];
        let host = host_authenticate_step(&other, &[3; 16], &rnd_ic);
        assert_eq!(
            card_authenticate_step(&k, &rnd_ic, host.command_data()).err(),
            Some(SW_AUTH_FAILED)
        );
        assert_eq!(
            card_authenticate_step(&k, &rnd_ic, &host.command_data()[..31]).err(),
            Some(StatusWord::WrongLength)
        );
        // A different challenge also fails (replay of an old MUTUAL AUTHENTICATE).
        let good = host_authenticate_step(&k, &[3; 16], &rnd_ic);
        assert!(card_authenticate_step(&k, &[8; 16], good.command_data()).is_err());
        // The host rejects a card cryptogram from a card with another key.
        let card = card_authenticate_step(&k, &rnd_ic, good.command_data()).unwrap();
        let wrong_host = host_authenticate_step(&other, &[3; 16], &rnd_ic);
        assert!(matches!(
            wrong_host.verify_card(&*card.card_cryptogram),
            Err(Error::SecureMessaging(_))
        ));
        assert!(host_authenticate_step(&k, &[3; 16], &rnd_ic)
            .verify_card(&[0; 15])
            .is_err());
    }

    #[test]
    fn padding_round_trips_and_rejects_garbage() {
        for n in 0..40 {
            let d = vec![0u8; n];
            let p = pad(&d);
            assert_eq!(p.len() % 16, 0);
            assert_eq!(unpad(&p), Some(&d[..]));
        }
        assert_eq!(unpad(&[0; 16]), None);
        assert_eq!(unpad(&[1; 16]), None);
        let mut long = vec![0x80];
        long.extend([0; 16]);
        assert_eq!(unpad(&long), None);
    }

    #[test]
    fn ct_eq_compares() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn ssc_carries_across_bytes() {
        let (mut s, _) = pair(&AesKey::Aes128([0; 16]));
        s.ssc = [0xFF; 16];
        s.ssc[0] = 0;
        s.increment_ssc();
        let mut want = [0u8; 16];
        want[0] = 1;
        assert_eq!(s.ssc(), want);
    }

    #[test]
    fn wrapped_command_layout() {
        let (mut host, _) = pair(&AesKey::Aes128([4; 16]));
        let w = host
            .wrap_command(&Command::new(0, 0xA4, 2, 0x0C).with_data([0x01, 0x1E]))
            .unwrap();
        assert_eq!(w.cla, 0x0C);
        assert_eq!(w.ne, Some(256));
        assert_eq!(&w.data[..3], &[0x87, 0x11, 0x01]);
        assert_eq!(&w.data[19..21], &[0x8E, 0x08]);
        assert_eq!(w.data.len(), 29);
        assert_eq!(w.to_bytes().unwrap().last(), Some(&0x00));
        let w = host
            .wrap_command(&Command::new(0, 0xB0, 0, 0).with_ne(1000))
            .unwrap();
        assert_eq!(&w.data[..4], &[0x97, 0x02, 0x03, 0xE8]);
        assert_eq!(w.ne, Some(65_536));
        let w = host
            .wrap_command(&Command::new(0, 0xB0, 0, 0).with_ne(256))
            .unwrap();
        assert_eq!(&w.data[..3], &[0x97, 0x01, 0x00]);
        assert!(!w.needs_extended());
        let w = host
            .wrap_command(&Command::new(0, 0xD6, 0, 0).with_data(vec![1; 300]))
            .unwrap();
        assert_eq!(&w.data[..5], &[0x87, 0x82, 0x01, 0x31, 0x01]);
        assert!(w.needs_extended());
        assert_eq!(host.ssc()[15], 4);
    }

    #[test]
    fn refuses_chained_and_already_protected_commands() {
        let (mut host, _) = pair(&AesKey::Aes128([4; 16]));
        assert!(matches!(
            host.wrap_command(&Command::new(0x10, 0xD6, 0, 0)),
            Err(Error::Usage(_))
        ));
        assert!(matches!(
            host.wrap_command(&Command::new(0x0C, 0xD6, 0, 0)),
            Err(Error::Usage(_))
        ));
        let huge = Command::new(0, 0xD6, 0, 0).with_data(vec![0; 65_530]);
        assert!(matches!(host.wrap_command(&huge), Err(Error::Usage(_))));
        // Refused commands leave the counter where it was.
        assert_eq!(host.ssc(), [0; 16]);
        // The largest command that still fits once protected: 65 519 bytes pad to 65 520, and
        // DO87 (87 82 FFF1 01 ..) plus DO8E make exactly 65 535 bytes.
        let largest = Command::new(0, 0xD6, 0, 0).with_data(vec![0; 65_519]);
        assert_eq!(host.wrap_command(&largest).unwrap().data.len(), 65_535);
        let one_more = Command::new(0, 0xD6, 0, 0).with_data(vec![0; 65_520]);
        assert!(host.wrap_command(&one_more).is_err());
    }

    #[test]
    fn overhead_is_an_upper_bound() {
        let (s, _) = pair(&AesKey::Aes128([4; 16]));
        let ch = HostSecureChannel::new(s);
        let (mut host, mut card) = pair(&AesKey::Aes128([4; 16]));
        for n in [0, 1, 15, 16, 100, 200, 239, 240, 1000] {
            let cmd = Command::new(0, 0xD6, 0, 0)
                .with_data(vec![1; n])
                .with_ne(300);
            let w = host.wrap_command(&cmd).unwrap();
            assert!(w.data.len() <= n + ch.command_overhead(n), "{n}");
            card.unwrap_command(&w).unwrap();
            let r = card.wrap_response(&vec![2; n], StatusWord::Success);
            assert!(r.len() - 2 <= n + ch.response_overhead(n), "{n}");
            host.unwrap_response(&RawResponse::parse(&r).unwrap())
                .unwrap();
        }
    }

    #[test]
    fn wrap_response_too_long_is_6700() {
        let (_, mut card) = pair(&AesKey::Aes128([4; 16]));
        assert_eq!(
            card.wrap_response(&vec![0; 70_000], StatusWord::Success),
            [0x67, 0x00]
        );
    }
}
