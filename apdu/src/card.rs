//! The host-side client of the national ID card: what personalization, delivery and the
//! `idcardd card` commands do with a card, as typed methods over a [`Channel`].
//!
//! Authorization lives in types. Personalization operations exist only on a [`PersoSession`] and
//! terminal operations only on a [`TerminalSession`]; both are returned by a successful mutual
//! authentication ([`IdCard::authenticate_perso`], [`IdCard::authenticate_terminal`]), borrow
//! the card mutably, and run every command under secure messaging. Dropping a session removes
//! the secure channel from the host side. [`IdCard::open_application`] selects the application
//! and reads its life cycle from the FCP in one APDU; an authentication right after it (GET DATA
//! in between allowed) needs no SELECT of its own.
//!
//! ```no_run
//! use apdu::card::IdCard;
//! use apdu::sm::AesKey;
//! # fn demo<T: apdu::Transport>(transport: T) -> Result<(), apdu::Error> {
//! let mut card = IdCard::new(transport);
//! let mut perso = card.authenticate_perso(&cardsim::fixtures::TestMasters)?;
//! perso.create_file(0x0101, Some(1), 90)?;
//! perso.write_file(0x0101, b"P<UTO...")?;
//! perso.deactivate()?;
//! # Ok(()) }
//! ```

use std::ops::RangeInclusive;

use rand::RngCore;
use zeroize::Zeroizing;

use crate::command::Command;
use crate::commands::{self, SelectReturn};
use crate::error::Error;
use crate::fcp::{Fcp, LifeCycle};
use crate::layout;
use crate::response::RawResponse;
use crate::sm::{self, CardKeys, HostSecureChannel, KeyRef, CRYPTOGRAM_LEN, RND_LEN};
use crate::status::StatusWord;
use crate::transmit::Channel;
use crate::transport::Transport;

/// The application identifier of the card application (ICAO Doc 9303-10 LDS1 AID).
pub const APPLICATION_AID: [u8; 7] = layout::LDS1_AID;
/// GET DATA tag of the 8-byte card serial (readable in plain).
pub const TAG_SERIAL: u16 = layout::DO_SERIAL;
/// GET DATA tag of the application life-cycle status byte.
pub const TAG_LIFE_CYCLE: u16 = layout::DO_LCS;
/// GET DATA tag of the list of the application's EFs (2-byte FIDs, concatenated).
pub const TAG_FILE_LIST: u16 = layout::DO_FILE_LIST;
/// Reference (P2) of the PIN: the transport PIN after personalization, then the holder's PIN.
pub const PIN_REF: u8 = layout::PIN_REF;
/// Reference (P2) of the PUK used by RESET RETRY COUNTER.
pub const PUK_REF: u8 = layout::PUK_REF;
/// Shortest and longest PIN (ASCII digits).
pub const PIN_LEN: RangeInclusive<usize> = layout::PIN_MIN_LEN..=layout::SECRET_MAX_LEN;
/// Shortest and longest PUK (ASCII digits).
pub const PUK_LEN: RangeInclusive<usize> = layout::PUK_MIN_LEN..=layout::SECRET_MAX_LEN;

/// What a PIN operation can end with besides success.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    /// The card refused the PIN (or PUK); `tries_left` presentations remain.
    #[error("wrong PIN: {tries_left} tries left")]
    Wrong {
        /// Remaining presentations before the reference blocks.
        tries_left: u8,
    },
    /// The PIN (or PUK) is blocked: no presentation is accepted.
    #[error("PIN blocked")]
    Blocked,
    /// Anything else: transport, secure messaging, another status word, a malformed PIN.
    #[error(transparent)]
    Card(#[from] Error),
}

/// A summary of a card, as `idcardd card info` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardInfo {
    /// The answer-to-reset.
    pub atr: Vec<u8>,
    /// The 8-byte card serial (GET DATA 0101).
    pub serial: [u8; 8],
    /// The application life-cycle state (GET DATA 0102).
    pub life_cycle: LifeCycle,
    /// The application's EFs: file identifier and size in bytes (`None` when the FCP gives none).
    pub files: Vec<(u16, Option<u32>)>,
}

/// The ID card behind a [`Channel`]: plain operations here, authenticated ones on the sessions.
pub struct IdCard<T: Transport> {
    /// The transmit chokepoint every command goes through.
    channel: Channel<T>,
    /// The serial last read on this connection: authentication diversifies its key from it
    /// without reading it again (one APDU less per session). A card cannot change under one
    /// connection without a transport error.
    serial_read: Option<[u8; 8]>,
    /// The APDU count right after [`IdCard::open_application`] selected the application with no
    /// session open, kept while only GET DATA follows: authentication then needs no SELECT of
    /// its own (one APDU less per card). Cleared by raw access through [`IdCard::channel`].
    selected_at: Option<u64>,
}

/// Maps the status word of a PIN command to [`PinError`].
fn pin_result(resp: RawResponse) -> Result<(), PinError> {
    match resp.sw {
        StatusWord::Success => Ok(()),
        StatusWord::WrongPin { tries_left: 0 } | StatusWord::AuthenticationBlocked => {
            Err(PinError::Blocked)
        }
        StatusWord::WrongPin { tries_left } => Err(PinError::Wrong { tries_left }),
        sw => Err(PinError::Card(Error::Status(sw))),
    }
}

/// Checks a PIN or PUK before it goes to the card (never echoing it).
fn check_secret(what: &str, value: &[u8], len: RangeInclusive<usize>) -> Result<(), Error> {
    if !len.contains(&value.len()) || !value.iter().all(u8::is_ascii_digit) {
        return Err(Error::Usage(format!(
            "{what} must be {} to {} ASCII digits ({} bytes given)",
            len.start(),
            len.end(),
            value.len()
        )));
    }
    Ok(())
}

/// Status word of SELECT for a file in the termination state (6285).
const SW_SELECTED_TERMINATED: StatusWord = StatusWord::Other(0x6285);

/// Sends a SELECT and accepts 9000, 6283 (selected file deactivated) and 6285 (selected file in
/// termination state), returning the data.
fn transmit_select<T: Transport>(
    channel: &mut Channel<T>,
    cmd: &Command,
) -> Result<Vec<u8>, Error> {
    let resp = channel.transmit(cmd)?;
    match resp.sw {
        StatusWord::Success | StatusWord::FileDeactivated | SW_SELECTED_TERMINATED => Ok(resp.data),
        sw => Err(Error::Status(sw)),
    }
}

/// SELECT the EF `fid` of the current DF and return its size from the FCP.
fn ef_size<T: Transport>(channel: &mut Channel<T>, fid: u16) -> Result<Option<u32>, Error> {
    let data = transmit_select(channel, &commands::select_fid(fid, SelectReturn::Fcp))?;
    if data.is_empty() {
        return Ok(None);
    }
    Ok(Fcp::parse(&data)?.size)
}

/// SELECT an EF of the application and read all of it (size from its FCP).
fn read_ef<T: Transport>(channel: &mut Channel<T>, fid: u16) -> Result<Vec<u8>, Error> {
    let size = ef_size(channel, fid)?
        .ok_or_else(|| Error::Malformed(format!("the FCP of EF {fid:04X} gives no size")))?;
    channel.read_binary(0, size as usize)
}

fn select_app<T: Transport>(channel: &mut Channel<T>) -> Result<(), Error> {
    let cmd = commands::select_df_name(&APPLICATION_AID, SelectReturn::Nothing)?;
    transmit_select(channel, &cmd).map(|_| ())
}

impl<T: Transport> IdCard<T> {
    /// A client over a new chokepoint on `transport`.
    pub fn new(transport: T) -> IdCard<T> {
        IdCard {
            channel: Channel::new(transport),
            serial_read: None,
            selected_at: None,
        }
    }

    /// A client over an existing chokepoint (e.g. one with logging already set up).
    pub fn from_channel(channel: Channel<T>) -> IdCard<T> {
        IdCard {
            channel,
            serial_read: None,
            selected_at: None,
        }
    }

    /// The chokepoint, for raw commands and counters. A raw command may change what is
    /// selected, so the next authentication selects the application again.
    pub fn channel(&mut self) -> &mut Channel<T> {
        self.selected_at = None;
        &mut self.channel
    }

    /// APDUs sent on this connection so far (GET RESPONSEs included).
    pub fn apdu_count(&self) -> u64 {
        self.channel.apdu_count()
    }

    /// Gives the chokepoint back.
    pub fn into_channel(self) -> Channel<T> {
        self.channel
    }

    /// SELECT the card application by its AID (ISO/IEC 7816-4 §11.2.2, P1 = 04). A deactivated
    /// application (6283) counts as selected.
    pub fn select_application(&mut self) -> Result<(), Error> {
        select_app(&mut self.channel)
    }

    /// SELECT the card application asking for its FCP (P2 = 04) and return the application's
    /// life-cycle status from it (tag `8A`), so that one APDU both resets the card's security
    /// state and says what the card is; a card whose FCP has no `8A` is asked with GET DATA
    /// 0102, and so is one that refuses the SELECT (a terminated card may). A deactivated
    /// (6283) or terminated (6285) application that answers counts as selected.
    /// Authentication right after this (GET DATA in between allowed) sends no SELECT again.
    pub fn open_application(&mut self) -> Result<LifeCycle, Error> {
        self.selected_at = None;
        let cmd = commands::select_df_name(&APPLICATION_AID, SelectReturn::Fcp)?;
        let data = match transmit_select(&mut self.channel, &cmd) {
            Ok(data) => data,
            Err(Error::Status(_)) => return self.life_cycle(),
            Err(e) => return Err(e),
        };
        let fcp = Fcp::parse(&data)?;
        self.selected_at = (!self.channel.has_secure_channel()).then(|| self.channel.apdu_count());
        match fcp.life_cycle {
            Some(lcs) => Ok(lcs),
            None => self.life_cycle(),
        }
    }

    /// Keeps [`IdCard::selected_at`] across a command that leaves selection and security
    /// state alone (GET DATA), sent when the count was `before`.
    fn still_selected(&mut self, before: u64) {
        if self.selected_at == Some(before) {
            self.selected_at = Some(self.channel.apdu_count());
        }
    }

    /// GET DATA 0101: the card serial, the input of key diversification. Always asks the
    /// card (a caller checking for a swapped card gets a fresh answer).
    pub fn serial(&mut self) -> Result<[u8; 8], Error> {
        let before = self.channel.apdu_count();
        let resp = self
            .channel
            .transmit_ok(&commands::get_data(TAG_SERIAL, 8)?)?;
        self.still_selected(before);
        let serial = <[u8; 8]>::try_from(&resp.data[..]).map_err(|_| {
            Error::Malformed(format!(
                "card serial of {} bytes (8 expected)",
                resp.data.len()
            ))
        })?;
        self.serial_read = Some(serial);
        Ok(serial)
    }

    /// GET DATA 0102: the application life-cycle state.
    pub fn life_cycle(&mut self) -> Result<LifeCycle, Error> {
        let before = self.channel.apdu_count();
        let resp = self
            .channel
            .transmit_ok(&commands::get_data(TAG_LIFE_CYCLE, 1)?)?;
        self.still_selected(before);
        match resp.data[..] {
            [b] => Ok(LifeCycle::from(b)),
            _ => Err(Error::Malformed(format!(
                "life-cycle status of {} bytes (1 expected)",
                resp.data.len()
            ))),
        }
    }

    /// GET DATA 0103: the file identifiers of the application's EFs.
    pub fn file_list(&mut self) -> Result<Vec<u16>, Error> {
        let resp = self
            .channel
            .transmit_ok(&commands::get_data(TAG_FILE_LIST, 256)?)?;
        if !resp.data.len().is_multiple_of(2) {
            return Err(Error::Malformed(format!(
                "file list of {} bytes is not a list of 2-byte FIDs",
                resp.data.len()
            )));
        }
        Ok(resp
            .data
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect())
    }

    /// ATR, serial, life cycle and the application's files with their sizes (plain commands).
    /// A terminated card answers only its serial and life cycle, so its file list is empty.
    pub fn info(&mut self) -> Result<CardInfo, Error> {
        let atr = self.channel.transport().atr();
        let selected = self.select_application();
        let serial = self.serial()?;
        let life_cycle = self.life_cycle()?;
        let mut files = Vec::new();
        if !life_cycle.is_terminated() {
            selected?;
            for fid in self.file_list()? {
                files.push((fid, ef_size(&mut self.channel, fid)?));
            }
        }
        Ok(CardInfo {
            atr,
            serial,
            life_cycle,
            files,
        })
    }

    /// VERIFY the PIN in plain (ISO/IEC 7816-4 §11.6.6). The PIN is never logged.
    pub fn verify_pin(&mut self, pin: &[u8]) -> Result<(), PinError> {
        check_secret("PIN", pin, PIN_LEN)?;
        let resp = self.channel.transmit(&commands::verify(PIN_REF, pin)?)?;
        pin_result(resp)
    }

    /// How many PIN presentations remain (VERIFY without data): `Ok(None)` when the PIN is
    /// already verified in this session.
    pub fn pin_tries_left(&mut self) -> Result<Option<u8>, Error> {
        let resp = self.channel.transmit(&commands::verify_status(PIN_REF))?;
        match resp.sw {
            StatusWord::Success => Ok(None),
            StatusWord::WrongPin { tries_left } => Ok(Some(tries_left)),
            StatusWord::AuthenticationBlocked => Ok(Some(0)),
            sw => Err(Error::Status(sw)),
        }
    }

    /// RESET RETRY COUNTER with the PUK and a new PIN (ISO/IEC 7816-4 §11.6.10): unblocks the
    /// PIN. A wrong PUK answers [`PinError::Wrong`] with the PUK's tries left.
    pub fn unblock(&mut self, puk: &[u8], new_pin: &[u8]) -> Result<(), PinError> {
        check_secret("PUK", puk, PUK_LEN)?;
        check_secret("new PIN", new_pin, PIN_LEN)?;
        let resp = self
            .channel
            .transmit(&commands::reset_retry_counter(PIN_REF, puk, new_pin)?)?;
        pin_result(resp)
    }

    /// Mutual authentication with the card key `key_ref` that `keys` gives for this card's
    /// serial; on success
    /// the chokepoint protects every further command with secure messaging.
    ///
    /// Steps: SELECT the application (unless [`IdCard::open_application`] just did), GET DATA
    /// serial (unless read on this connection), diversify, GET CHALLENGE (RND.IC), MUTUAL
    /// AUTHENTICATE with RND.IFD || host cryptogram, check the card cryptogram.
    fn authenticate(&mut self, key_ref: KeyRef, keys: &dyn CardKeys) -> Result<(), Error> {
        let selected = self.selected_at.take() == Some(self.channel.apdu_count())
            && !self.channel.has_secure_channel();
        self.channel.set_secure_channel(None);
        if !selected {
            self.select_application()?;
        }
        let serial = match self.serial_read {
            Some(serial) => serial,
            None => self.serial()?,
        };
        let card_key = keys.card_key(key_ref, &serial)?;

        let challenge = self
            .channel
            .transmit_ok(&commands::get_challenge(RND_LEN)?)?;
        let rnd_ic = <[u8; RND_LEN]>::try_from(&challenge.data[..]).map_err(|_| {
            Error::Malformed(format!(
                "challenge of {} bytes ({RND_LEN} expected)",
                challenge.data.len()
            ))
        })?;
        let mut rnd_ifd = Zeroizing::new([0u8; RND_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut *rnd_ifd);

        let auth = sm::host_authenticate_step(&card_key, &rnd_ifd, &rnd_ic);
        let mut cmd = commands::mutual_authenticate(auth.command_data(), CRYPTOGRAM_LEN)?;
        cmd.p2 = key_ref.byte();
        let resp = self.channel.transmit_ok(&cmd)?;
        let session = auth.verify_card(&resp.data)?;
        self.channel
            .set_secure_channel(Some(Box::new(HostSecureChannel::new(session))));
        Ok(())
    }

    /// Authenticates with the personalization key (reference 01) of this card, from `keys`.
    pub fn authenticate_perso(
        &mut self,
        keys: &dyn CardKeys,
    ) -> Result<PersoSession<'_, T>, Error> {
        self.authenticate(KeyRef::Personalization, keys)?;
        Ok(PersoSession { card: self })
    }

    /// Authenticates with the terminal key (reference 02) of this card, from `keys`.
    pub fn authenticate_terminal(
        &mut self,
        keys: &dyn CardKeys,
    ) -> Result<TerminalSession<'_, T>, Error> {
        self.authenticate(KeyRef::Terminal, keys)?;
        Ok(TerminalSession { card: self })
    }
}

/// Transmits a command of a session and requires 9000.
fn ok<T: Transport>(card: &mut IdCard<T>, cmd: &Command) -> Result<(), Error> {
    card.channel.transmit_ok(cmd).map(|_| ())
}

/// A personalization session: exists only after mutual authentication with the personalization
/// key; every command runs under secure messaging.
pub struct PersoSession<'a, T: Transport> {
    /// The authenticated card (borrowed so no plain command can interleave).
    card: &'a mut IdCard<T>,
}

impl<T: Transport> PersoSession<'_, T> {
    /// CREATE FILE of a transparent EF `fid` of `size` bytes under the application, with an
    /// optional short EF identifier.
    pub fn create_file(&mut self, fid: u16, sfi: Option<u8>, size: u32) -> Result<(), Error> {
        if let Some(sfi) = sfi.filter(|s| !(1..=30).contains(s)) {
            return Err(Error::Usage(format!(
                "short EF identifier {sfi} (1-30 allowed)"
            )));
        }
        let mut fcp = Fcp::transparent_ef(fid, size);
        if let Some(sfi) = sfi {
            fcp = fcp.with_sfi(sfi);
        }
        ok(self.card, &commands::create_file(&fcp))
    }

    /// SELECT the EF `fid` and write `data` from offset 0 in as few UPDATE BINARY commands as the
    /// card's capabilities and the secure messaging overhead allow.
    pub fn write_file(&mut self, fid: u16, data: &[u8]) -> Result<(), Error> {
        transmit_select(
            &mut self.card.channel,
            &commands::select_fid(fid, SelectReturn::Nothing),
        )?;
        self.card.channel.update_binary(0, data)
    }

    /// SELECT the EF `fid` and read all of it.
    pub fn read_file(&mut self, fid: u16) -> Result<Vec<u8>, Error> {
        read_ef(&mut self.card.channel, fid)
    }

    /// CREATE FILE of a transparent EF `fid` sized for `data`, then UPDATE BINARY with `data`.
    /// CREATE FILE leaves the new EF selected (ISO/IEC 7816-9 §8.1), so no SELECT is sent: one
    /// APDU per file plus one per write chunk.
    pub fn create_and_write(
        &mut self,
        fid: u16,
        sfi: Option<u8>,
        data: &[u8],
    ) -> Result<(), Error> {
        let size = u32::try_from(data.len())
            .map_err(|_| Error::Usage(format!("{} bytes do not fit an EF", data.len())))?;
        self.create_file(fid, sfi, size)?;
        if data.is_empty() {
            return Ok(());
        }
        self.card.channel.update_binary(0, data)
    }

    /// READ BINARY of `len` bytes of the EF with short identifier `sfi` (ISO/IEC 7816-4
    /// §11.3.3, P1 = `80 | sfi`): the first chunk needs no SELECT; the rest, if the card's
    /// response limit cuts it, is read from the now current EF.
    pub fn read_file_sfi(&mut self, sfi: u8, len: usize) -> Result<Vec<u8>, Error> {
        if len == 0 {
            return Ok(Vec::new());
        }
        let caps = self.card.channel.capabilities();
        // With extended length, ask at least 257 bytes: the Le goes out in extended form, so
        // a secure messaging response a little over 256 bytes needs no GET RESPONSE (a
        // shorter file answers its bytes with the end-of-file warning 6282).
        let ne = if caps.extended_length {
            len.max(257).min(caps.max_response_data.max(1)).min(65_536)
        } else {
            len.min(caps.max_response_data.max(1)).min(256)
        };
        let resp = self
            .card
            .channel
            .transmit(&commands::read_binary_sfi(sfi, 0, ne)?)?;
        let eof = match resp.sw {
            StatusWord::Success => false,
            StatusWord::EndOfFile => true,
            sw => return Err(Error::Status(sw)),
        };
        let mut out = resp.data;
        if out.len() > len {
            return Err(Error::Malformed(format!(
                "READ BINARY of SFI {sfi}: {} bytes for {len} asked",
                out.len()
            )));
        }
        if out.len() < len && !out.is_empty() && !eof {
            let rest = self.card.channel.read_binary(out.len(), len - out.len())?;
            out.extend_from_slice(&rest);
        }
        Ok(out)
    }

    /// GET DATA 0103 under the session: the FIDs of the application's EFs.
    pub fn file_list(&mut self) -> Result<Vec<u16>, Error> {
        self.card.file_list()
    }

    /// SELECT the application, then DELETE FILE (ISO/IEC 7816-9 §8.3) for each EF in `fids`:
    /// how an incompletely personalized card is emptied before it is written again.
    pub fn delete_files(&mut self, fids: &[u16]) -> Result<(), Error> {
        if fids.is_empty() {
            return Ok(());
        }
        select_app(&mut self.card.channel)?;
        for &fid in fids {
            ok(self.card, &commands::delete_file(Some(fid)))?;
        }
        Ok(())
    }

    /// Sets the initial secrets: the transport PIN (handed to the holder with the card) and the
    /// PUK, with CHANGE REFERENCE DATA P1 = 01 (new value only) on [`PIN_REF`] and [`PUK_REF`].
    pub fn set_pins(&mut self, transport_pin: &[u8], puk: &[u8]) -> Result<(), Error> {
        check_secret("transport PIN", transport_pin, PIN_LEN)?;
        check_secret("PUK", puk, PUK_LEN)?;
        ok(
            self.card,
            &commands::change_reference_data(PIN_REF, &[], transport_pin)?,
        )?;
        ok(
            self.card,
            &commands::change_reference_data(PUK_REF, &[], puk)?,
        )
    }

    /// DEACTIVATE FILE on the application DF: personalization is over and the card travels in
    /// the operational, deactivated state until delivery activates it.
    pub fn deactivate(&mut self) -> Result<(), Error> {
        select_app(&mut self.card.channel)?;
        ok(self.card, &commands::deactivate_file(None))
    }

    /// DEACTIVATE FILE naming the application by its DF name (ISO/IEC 7816-9, P1 = `04`):
    /// the same transition as [`PersoSession::deactivate`] in one APDU instead of two.
    pub fn deactivate_by_name(&mut self) -> Result<(), Error> {
        let cmd = Command::new(0x00, 0x04, 0x04, 0x00).with_data(APPLICATION_AID.to_vec());
        ok(self.card, &cmd)
    }

    /// The application life-cycle state, read under secure messaging.
    pub fn life_cycle(&mut self) -> Result<LifeCycle, Error> {
        self.card.life_cycle()
    }

    /// The chokepoint, for commands this type does not name (still under secure messaging).
    pub fn channel(&mut self) -> &mut Channel<T> {
        &mut self.card.channel
    }
}

impl<T: Transport> Drop for PersoSession<'_, T> {
    fn drop(&mut self) {
        self.card.channel.set_secure_channel(None);
    }
}

/// A terminal session (delivery, inspection): exists only after mutual authentication with the
/// terminal key; every command runs under secure messaging.
pub struct TerminalSession<'a, T: Transport> {
    /// The authenticated card (borrowed so no plain command can interleave).
    card: &'a mut IdCard<T>,
}

impl<T: Transport> TerminalSession<'_, T> {
    /// SELECT the EF `fid` and read all of it (fingerprint templates included).
    pub fn read_file(&mut self, fid: u16) -> Result<Vec<u8>, Error> {
        read_ef(&mut self.card.channel, fid)
    }

    /// CHANGE REFERENCE DATA P1 = 00 on [`PIN_REF`]: replaces `old` (at delivery, the transport
    /// PIN) with the holder's `new` PIN.
    pub fn change_pin(&mut self, old: &[u8], new: &[u8]) -> Result<(), PinError> {
        check_secret("current PIN", old, PIN_LEN)?;
        check_secret("new PIN", new, PIN_LEN)?;
        let resp = self
            .card
            .channel
            .transmit(&commands::change_reference_data(PIN_REF, old, new)?)?;
        pin_result(resp)
    }

    /// VERIFY the PIN under secure messaging.
    pub fn verify_pin(&mut self, pin: &[u8]) -> Result<(), PinError> {
        self.card.verify_pin(pin)
    }

    /// ACTIVATE FILE on the application DF: the card is delivered and usable.
    pub fn activate(&mut self) -> Result<(), Error> {
        select_app(&mut self.card.channel)?;
        ok(self.card, &commands::activate_file(None))
    }

    /// TERMINATE DF on the application: irreversible (a lost or cancelled card).
    pub fn terminate(&mut self) -> Result<(), Error> {
        select_app(&mut self.card.channel)?;
        ok(self.card, &commands::terminate_df())
    }

    /// The application life-cycle state, read under secure messaging.
    pub fn life_cycle(&mut self) -> Result<LifeCycle, Error> {
        self.card.life_cycle()
    }

    /// The chokepoint, for commands this type does not name (still under secure messaging).
    pub fn channel(&mut self) -> &mut Channel<T> {
        &mut self.card.channel
    }
}

impl<T: Transport> Drop for TerminalSession<'_, T> {
    fn drop(&mut self) {
        self.card.channel.set_secure_channel(None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pin_status_words_map_to_pin_errors() {
        let r = |sw| pin_result(RawResponse::status(sw));
        assert!(r(StatusWord::Success).is_ok());
        assert!(matches!(
            r(StatusWord::WrongPin { tries_left: 2 }),
            Err(PinError::Wrong { tries_left: 2 })
        ));
        assert!(matches!(
            r(StatusWord::WrongPin { tries_left: 0 }),
            Err(PinError::Blocked)
        ));
        assert!(matches!(
            r(StatusWord::AuthenticationBlocked),
            Err(PinError::Blocked)
        ));
        assert!(matches!(
            r(StatusWord::SecurityStatusNotSatisfied),
            Err(PinError::Card(Error::Status(
                StatusWord::SecurityStatusNotSatisfied
            )))
        ));
    }

    #[test]
    fn malformed_pins_are_refused_without_echo() {
        assert!(check_secret("PIN", b"1234", PIN_LEN).is_ok());
        for bad in [&b"123"[..], b"12a4", b"1234567890123"] {
            let err = check_secret("PIN", bad, PIN_LEN).unwrap_err().to_string();
            assert!(!err.contains(std::str::from_utf8(bad).unwrap()), "{err}");
        }
        assert!(check_secret("PUK", b"1234567", PUK_LEN).is_err());
    }
}
