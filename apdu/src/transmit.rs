//! The transmit chokepoint: every APDU the host sends goes through [`Channel::transmit`].
//!
//! In order, for one command:
//! 1. secure messaging: when a [`SecureChannel`] is set, the command is wrapped before encoding
//!    and the final response unwrapped;
//! 2. long data: a data field larger than one APDU can carry goes out in extended length when
//!    the card's [`Capabilities`] allow it, else as a command chain (CLA `| 0x10` on all but the
//!    last piece), else the command is refused with [`Error::Usage`];
//! 3. `6Cxx`: the same command is sent once more with Ne = `xx`;
//! 4. `61xx`: GET RESPONSE is sent until the card has nothing left (at most
//!    [`MAX_GET_RESPONSES`] times) and the pieces are concatenated;
//! 5. every APDU is logged with `tracing::trace!` (target `apdu::transmit`) in hex; the data of
//!    secret commands and the responses to them are logged as `REDACTED`, and so are the
//!    contents of files (READ BINARY / UPDATE BINARY data and answers, [`carries_file_contents`]:
//!    the data groups hold names, national codes, faces and fingerprints), in plain and under
//!    secure messaging (DO87 / DO99 / DO8E), with the GET RESPONSEs that follow; headers, Ne
//!    and status words stay.
//!
//! [`Channel::read_binary`] and [`Channel::update_binary`] split a transfer into as few APDUs as
//! the card and the secure messaging overhead allow.
//!
//! ```
//! use apdu::transmit::Channel;
//! use apdu::{Transport, TransportError, StatusWord};
//!
//! /// A card that answers every command with 9000.
//! struct Ok9000;
//! impl Transport for Ok9000 {
//!     fn transmit_raw(&mut self, _apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
//!         Ok(vec![0x90, 0x00])
//!     }
//!     fn atr(&self) -> Vec<u8> { vec![0x3B, 0x00] }
//!     fn reader_name(&self) -> &str { "doc" }
//!     fn reset(&mut self) -> Result<(), TransportError> { Ok(()) }
//! }
//!
//! let mut channel = Channel::new(Ok9000);
//! let resp = channel.transmit(&apdu::commands::select_mf()).unwrap();
//! assert_eq!(resp.sw, StatusWord::Success);
//! assert_eq!(channel.apdu_count(), 1);
//! ```

use tracing::trace;

use crate::command::{Command, EXTENDED_MAX_NC, EXTENDED_MAX_NE, SHORT_MAX_NC, SHORT_MAX_NE};
use crate::commands::{self, MAX_EVEN_OFFSET};
use crate::error::{Error, TransportError};
use crate::response::{RawResponse, Response};
use crate::status::StatusWord;
use crate::tlv::{Tag, Tlv};
use crate::transport::{Capabilities, Transport};

/// Secure messaging applied by the chokepoint to every command of a session
/// (ISO/IEC 7816-4 §10). Implemented by [`crate::sm`]; the chokepoint wraps each command before
/// encoding and unwraps each response after GET RESPONSE handling.
pub trait SecureChannel: Send {
    /// Protects a plain command (sets CLA 0x0C, builds DO87/DO97/DO8E).
    fn wrap(&mut self, cmd: &Command) -> Result<Command, Error>;
    /// Checks and decrypts a protected response (DO87/DO99/DO8E) back to a plain response.
    fn unwrap(&mut self, resp: &RawResponse) -> Result<RawResponse, Error>;
    /// Worst-case bytes secure messaging adds to a command data field of `nc` bytes, so large
    /// writes can be split into pieces that still fit the card after wrapping.
    fn command_overhead(&self, nc: usize) -> usize;
    /// Worst-case bytes secure messaging adds to a response data field of `ne` bytes.
    fn response_overhead(&self, ne: usize) -> usize;
}

/// Most GET RESPONSE commands sent for one command before the card is declared broken.
pub const MAX_GET_RESPONSES: usize = 256;

/// Bytes the odd-INS UPDATE BINARY adds around its data: `54 03 xx xx xx` and `53 82 xx xx`.
const ODD_UPDATE_OVERHEAD: usize = 5 + 4;
/// Bytes the odd-INS READ BINARY response adds around its data: `53 82 xx xx`.
const ODD_READ_OVERHEAD: usize = 4;

/// True for the commands whose data field or answer is a file's contents (ISO/IEC 7816-4
/// §11.3 READ BINARY `B0`/`B1`, WRITE BINARY `D0`/`D1`, UPDATE BINARY `D6`/`D7`): on an ID card
/// those are the data groups (DG1 MRZ, DG2 face, DG3 fingers, DG11 personal details), personal
/// data that trace logs must not carry (issue 18). Their data is logged like a secret's.
pub fn carries_file_contents(ins: u8) -> bool {
    matches!(ins, 0xB0 | 0xB1 | 0xD0 | 0xD1 | 0xD6 | 0xD7)
}

/// Whether the chokepoint logs `cmd`'s data, and the answers to it, as `REDACTED`.
fn redacted(cmd: &Command) -> bool {
    cmd.secret || carries_file_contents(cmd.ins)
}

/// The trace-log form of a command: header, data (or `<n bytes REDACTED>` when secret or a
/// file's contents, see [`carries_file_contents`]) and Ne.
pub fn log_command(cmd: &Command) -> String {
    log_command_as(cmd, redacted(cmd))
}

/// [`Command::log_hex`], with the data redacted when `redact` is set.
fn log_command_as(cmd: &Command, redact: bool) -> String {
    if !redact || cmd.secret || cmd.data.is_empty() {
        return cmd.log_hex();
    }
    let head = hex::encode_upper([cmd.cla, cmd.ins, cmd.p1, cmd.p2]);
    let data = format!("<{} bytes REDACTED>", cmd.data.len());
    match cmd.ne {
        Some(ne) => format!("{head} [{data}] Ne={ne}"),
        None => format!("{head} [{data}]"),
    }
}

/// The trace-log form of a response: data (or `<n bytes REDACTED>` when it answers a secret
/// command) and the status word.
pub fn log_response(resp: &RawResponse, secret: bool) -> String {
    let data = if secret && !resp.data.is_empty() {
        format!("<{} bytes REDACTED>", resp.data.len())
    } else {
        hex::encode_upper(&resp.data)
    };
    format!("[{data}] {:04X}", u16::from(resp.sw))
}

/// Largest `n <= limit` with `n + overhead(n) <= limit` (`overhead` non-decreasing); 0 if none.
fn fit(limit: usize, overhead: impl Fn(usize) -> usize) -> usize {
    let ok = |n: usize| {
        n.checked_add(overhead(n))
            .is_some_and(|total| total <= limit)
    };
    let (mut lo, mut hi) = (0usize, limit);
    if !ok(0) {
        return 0;
    }
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if ok(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// The transport and the APDU counter, apart from the secure channel so both can be borrowed.
struct Link<T: Transport> {
    /// Where the bytes go.
    transport: T,
    /// APDUs actually sent (GET RESPONSEs, re-sends and chain pieces included).
    apdus: u64,
}

impl<T: Transport> Link<T> {
    /// One APDU on the wire, logged.
    fn raw(&mut self, cmd: &Command, secret: bool) -> Result<RawResponse, Error> {
        let bytes = cmd.to_bytes()?;
        trace!(target: "apdu::transmit", reader = self.transport.reader_name(), "> {}",
            log_command_as(cmd, secret));
        self.apdus += 1;
        let answer = self.transport.transmit_raw(&bytes)?;
        let resp = RawResponse::parse(&answer)?;
        trace!(target: "apdu::transmit", reader = self.transport.reader_name(), "< {}",
            log_response(&resp, secret));
        Ok(resp)
    }

    /// One APDU, re-sent once with the right Ne on `6Cxx`.
    fn raw_6c(&mut self, cmd: &Command, secret: bool) -> Result<RawResponse, Error> {
        let resp = self.raw(cmd, secret)?;
        if let StatusWord::WrongLe { exact_len } = resp.sw {
            let ne = if exact_len == 0 {
                SHORT_MAX_NE
            } else {
                exact_len as usize
            };
            let mut again = cmd.clone();
            again.ne = Some(ne);
            return self.raw(&again, secret);
        }
        Ok(resp)
    }

    /// One command APDU with its `61xx` GET RESPONSE chain.
    fn exchange(&mut self, cmd: &Command, secret: bool) -> Result<RawResponse, Error> {
        let mut resp = self.raw_6c(cmd, secret)?;
        let mut rounds = 0;
        while let StatusWord::BytesRemaining { len } = resp.sw {
            if rounds == MAX_GET_RESPONSES {
                return Err(Error::Transport(TransportError::Other(format!(
                    "card still answers 61xx after {MAX_GET_RESPONSES} GET RESPONSE commands"
                ))));
            }
            rounds += 1;
            let mut get = commands::get_response(len as usize);
            get.cla = get_response_cla(cmd.cla);
            let next = self.raw_6c(&get, secret)?;
            resp.data.extend_from_slice(&next.data);
            resp.sw = next.sw;
        }
        Ok(resp)
    }

    /// One command, in extended length or as a chain when its data field is too long.
    fn send(&mut self, cmd: &Command, secret: bool) -> Result<RawResponse, Error> {
        let caps = self.transport.capabilities();
        let (max_nc, max_ne) = if caps.extended_length {
            (caps.max_command_data.min(EXTENDED_MAX_NC), EXTENDED_MAX_NE)
        } else {
            (caps.max_command_data.min(SHORT_MAX_NC), SHORT_MAX_NE)
        };
        let ne = cmd.ne.map(|ne| ne.min(max_ne));
        if cmd.data.len() <= max_nc {
            if ne == cmd.ne {
                return self.exchange(cmd, secret);
            }
            let mut capped = cmd.clone();
            capped.ne = ne;
            return self.exchange(&capped, secret);
        }
        if cmd.is_chained() || !caps.chaining || max_nc == 0 {
            return Err(Error::Usage(format!(
                "command data of {} bytes exceeds the card's {max_nc}-byte limit and cannot be \
                 chained (extended length: {}, chaining: {})",
                cmd.data.len(),
                caps.extended_length,
                caps.chaining
            )));
        }
        let pieces = cmd.data.chunks(max_nc).count();
        let mut last = None;
        for (i, piece) in cmd.data.chunks(max_nc).enumerate() {
            let is_last = i + 1 == pieces;
            let mut part = Command::new(cmd.cla, cmd.ins, cmd.p1, cmd.p2).with_data(piece);
            part.secret = cmd.secret;
            if is_last {
                part.ne = ne;
            } else {
                part.cla |= 0x10;
            }
            let resp = self.exchange(&part, secret)?;
            if !is_last && resp.sw != StatusWord::Success {
                return Ok(resp);
            }
            last = Some(resp);
        }
        last.ok_or_else(|| Error::Usage("empty command chain".into()))
    }
}

/// The class byte for GET RESPONSE: the command's logical channel, no SM or chaining bits.
fn get_response_cla(cla: u8) -> u8 {
    match cla {
        0x00..=0x3F => cla & 0x03,
        0x40..=0x7F => cla & 0x4F,
        _ => 0x00,
    }
}

/// The chokepoint: a transport, the APDU counter and the optional secure channel.
pub struct Channel<T: Transport> {
    /// Transport and counter.
    link: Link<T>,
    /// Secure messaging of the current session, if one is open.
    secure: Option<Box<dyn SecureChannel>>,
}

impl<T: Transport> Channel<T> {
    /// A channel over `transport`, without secure messaging.
    pub fn new(transport: T) -> Self {
        Channel {
            link: Link {
                transport,
                apdus: 0,
            },
            secure: None,
        }
    }

    /// Sends one command and returns the card's final answer, whatever its status word
    /// (see the module documentation for what happens on the way).
    pub fn transmit(&mut self, cmd: &Command) -> Result<RawResponse, Error> {
        let secret = redacted(cmd);
        let Some(sc) = self.secure.as_mut() else {
            return self.link.send(cmd, secret);
        };
        trace!(target: "apdu::transmit", "> (plain) {}", log_command_as(cmd, secret));
        let mut wrapped = sc.wrap(cmd)?;
        wrapped.secret |= secret;
        let protected = self.link.send(&wrapped, secret)?;
        let plain = sc.unwrap(&protected)?;
        trace!(target: "apdu::transmit", "< (plain) {}", log_response(&plain, secret));
        Ok(plain)
    }

    /// Like [`Channel::transmit`], but any status other than 9000 is [`Error::Status`].
    pub fn transmit_ok(&mut self, cmd: &Command) -> Result<Response, Error> {
        self.transmit(cmd)?.into_result()
    }

    /// Sets (or with `None` ends) secure messaging for the following commands.
    pub fn set_secure_channel(&mut self, sc: Option<Box<dyn SecureChannel>>) {
        self.secure = sc;
    }

    /// True while secure messaging is on.
    pub fn has_secure_channel(&self) -> bool {
        self.secure.is_some()
    }

    /// Largest plain response data one READ BINARY can ask for.
    fn read_chunk(&self) -> usize {
        let caps = self.capabilities();
        let wire = if caps.extended_length {
            caps.max_response_data.min(EXTENDED_MAX_NE)
        } else {
            caps.max_response_data.min(SHORT_MAX_NE)
        };
        match &self.secure {
            Some(sc) => fit(wire, |n| sc.response_overhead(n)),
            None => wire,
        }
    }

    /// Largest plain command data one UPDATE BINARY can carry without chaining.
    fn write_chunk(&self) -> usize {
        let caps = self.capabilities();
        let wire = if caps.extended_length {
            caps.max_command_data.min(EXTENDED_MAX_NC)
        } else {
            caps.max_command_data.min(SHORT_MAX_NC)
        };
        match &self.secure {
            Some(sc) => fit(wire, |n| sc.command_overhead(n)),
            None => wire,
        }
    }

    /// Reads `len` bytes from `offset` of the current EF with as few READ BINARY commands as
    /// the card allows. Stops early, returning what was read, at end of file (`6282`, an empty
    /// answer, or `6B00` once something has been read). Offsets beyond 32 KiB use the odd-INS
    /// form (`B1`, offset DO `54`, data in DO `53`). Any other status is [`Error::Status`]. A
    /// read of 0 bytes sends nothing and returns nothing, whatever the offset.
    pub fn read_binary(&mut self, offset: usize, len: usize) -> Result<Vec<u8>, Error> {
        let end = offset
            .checked_add(len)
            .ok_or_else(|| Error::Usage(format!("read of {len} bytes at {offset} overflows")))?;
        let chunk = self.read_chunk();
        let mut out = Vec::with_capacity(len.min(1 << 20));
        let mut pos = offset;
        while pos < end {
            let odd = pos > MAX_EVEN_OFFSET;
            let room = if odd {
                chunk.saturating_sub(ODD_READ_OVERHEAD)
            } else {
                chunk
            };
            if room == 0 {
                return Err(Error::Usage(format!(
                    "the card's response limit leaves no room for data: {:?}",
                    self.capabilities()
                )));
            }
            let want = (end - pos).min(room);
            let cmd = if odd {
                // Ne covers the `53` header exactly: the card cannot return more than `want`.
                commands::read_binary_odd(pos, want + 1 + crate::tlv::length_size(want))?
            } else {
                commands::read_binary(pos, want)?
            };
            let resp = self.transmit(&cmd)?;
            let eof = match resp.sw {
                StatusWord::Success => false,
                StatusWord::EndOfFile => true,
                StatusWord::WrongP1P2 if pos > offset => break,
                sw => return Err(Error::Status(sw)),
            };
            let data = if odd {
                odd_read_data(resp.data)?
            } else {
                resp.data
            };
            if data.len() > want {
                return Err(Error::Malformed(format!(
                    "READ BINARY at {pos}: card returned {} bytes for {want} asked",
                    data.len()
                )));
            }
            if data.is_empty() {
                break;
            }
            pos += data.len();
            out.extend_from_slice(&data);
            if eof {
                break;
            }
        }
        Ok(out)
    }

    /// Writes `data` at `offset` of the current EF with as few UPDATE BINARY commands as the
    /// card allows (never chained). Offsets beyond 32 KiB use the odd-INS form (`D7`). Any
    /// status other than 9000 is [`Error::Status`]; pieces already written stay written.
    pub fn update_binary(&mut self, offset: usize, data: &[u8]) -> Result<(), Error> {
        offset.checked_add(data.len()).ok_or_else(|| {
            Error::Usage(format!(
                "write of {} bytes at {offset} overflows",
                data.len()
            ))
        })?;
        let chunk = self.write_chunk();
        let mut done = 0;
        while done < data.len() {
            let pos = offset + done;
            let odd = pos > MAX_EVEN_OFFSET;
            let room = if odd {
                chunk.saturating_sub(ODD_UPDATE_OVERHEAD)
            } else {
                chunk
            };
            if room == 0 {
                return Err(Error::Usage(format!(
                    "the card's command limit leaves no room for data: {:?}",
                    self.capabilities()
                )));
            }
            let piece = &data[done..data.len().min(done + room)];
            let cmd = if odd {
                commands::update_binary_odd(pos, piece)?
            } else {
                commands::update_binary(pos, piece)?
            };
            self.transmit_ok(&cmd)?;
            done += piece.len();
        }
        Ok(())
    }

    /// The transport underneath.
    pub fn transport(&self) -> &T {
        &self.link.transport
    }

    /// The transport underneath, mutably (e.g. to reset the card).
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.link.transport
    }

    /// The card's capabilities, as the transport reports them.
    pub fn capabilities(&self) -> Capabilities {
        self.link.transport.capabilities()
    }

    /// How many APDUs went on the wire (GET RESPONSEs, re-sends and chain pieces included).
    pub fn apdu_count(&self) -> u64 {
        self.link.apdus
    }

    /// Gives the transport back, ending the channel (and any secure messaging session).
    pub fn into_transport(self) -> T {
        self.link.transport
    }
}

/// The data inside the `53` object of an odd-INS READ BINARY response (empty answer: no data).
fn odd_read_data(data: Vec<u8>) -> Result<Vec<u8>, Error> {
    if data.is_empty() {
        return Ok(data);
    }
    let tlv = Tlv::decode_one(&data)?;
    match (tlv.tag, tlv.value) {
        (Tag(0x53), crate::tlv::Value::Primitive(v)) => Ok(v),
        (tag, _) => Err(Error::Malformed(format!(
            "odd-INS READ BINARY answered with tag {tag}, expected 53"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_finds_the_largest_payload() {
        assert_eq!(fit(256, |_| 0), 256);
        // 16-byte padding plus 14 bytes of objects, as ISO SM with AES adds.
        let sm = |n: usize| (n / 16 + 1) * 16 - n + 14;
        let n = fit(256, sm);
        assert!(n + sm(n) <= 256 && n + 1 + sm(n + 1) > 256, "{n}");
        assert_eq!(fit(10, |_| 11), 0);
        assert_eq!(fit(0, |_| 0), 0);
    }

    #[test]
    fn get_response_keeps_the_logical_channel() {
        assert_eq!(get_response_cla(0x00), 0x00);
        assert_eq!(get_response_cla(0x0C), 0x00);
        assert_eq!(get_response_cla(0x1D), 0x01);
        assert_eq!(get_response_cla(0x61), 0x41);
        assert_eq!(get_response_cla(0x80), 0x00);
    }

    #[test]
    fn response_log_redacts_secret_answers() {
        let resp = RawResponse::parse(&[0xAB, 0xCD, 0x90, 0x00]).unwrap();
        assert_eq!(log_response(&resp, false), "[ABCD] 9000");
        assert_eq!(log_response(&resp, true), "[<2 bytes REDACTED>] 9000");
        let sw_only = RawResponse::status(StatusWord::WrongPin { tries_left: 2 });
        assert_eq!(log_response(&sw_only, true), "[] 63C2");
    }

    #[test]
    fn issue_18_file_contents_are_redacted_in_command_logs() {
        let dg11 = b"0012345679";
        let write = commands::update_binary(0x10, dg11).unwrap();
        assert_eq!(log_command(&write), "00D60010 [<10 bytes REDACTED>]");
        let odd = commands::update_binary_odd(0x9000, dg11).unwrap();
        assert!(
            log_command(&odd).contains("REDACTED"),
            "{}",
            log_command(&odd)
        );
        let read = commands::read_binary(0, 4).unwrap();
        assert_eq!(log_command(&read), "00B00000 [] Ne=4");
        // Other commands keep their data.
        let get = commands::get_data(0x0101, 8).unwrap();
        assert_eq!(log_command(&get), "00CA0101 [] Ne=8");
        let select = commands::select_fid(0x011E, commands::SelectReturn::Nothing);
        assert_eq!(log_command(&select), "00A4000C [011E]");
        for ins in [0xB0, 0xB1, 0xD0, 0xD1, 0xD6, 0xD7] {
            assert!(carries_file_contents(ins), "{ins:02X}");
        }
        for ins in [0xA4, 0xCA, 0xC0, 0x20, 0x82, 0x44] {
            assert!(!carries_file_contents(ins), "{ins:02X}");
        }
    }
}
