//! ISO/IEC 7816-4 §5.1 command APDUs: cases 1-4 in short and extended length.
//!
//! `Ne` (the maximum response length the host expects) is kept as a number; the wire form of Le
//! follows the standard: in short form `00` means 256, in extended form `0000` means 65 536.

use std::fmt;
use zeroize::Zeroizing;

use crate::error::Error;

/// The largest Ne a short APDU can ask for (Le = 00).
pub const SHORT_MAX_NE: usize = 256;
/// The largest Ne an extended APDU can ask for (Le = 0000).
pub const EXTENDED_MAX_NE: usize = 65_536;
/// The largest Nc a short APDU can carry.
pub const SHORT_MAX_NC: usize = 255;
/// The largest Nc an extended APDU can carry.
pub const EXTENDED_MAX_NC: usize = 65_535;

/// A command APDU. The data field is zeroized on drop; a command marked secret (PIN, key,
/// cryptogram) prints its data as REDACTED in `Debug` and in trace logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Command {
    /// Class byte: channel, secure messaging indication (0x0C) and chaining bit (0x10).
    pub cla: u8,
    /// Instruction byte.
    pub ins: u8,
    /// First parameter byte.
    pub p1: u8,
    /// Second parameter byte.
    pub p2: u8,
    /// Command data field (Nc bytes); zeroized on drop because it may hold a PIN or a key.
    pub data: Zeroizing<Vec<u8>>,
    /// Expected response length Ne (`None`: no Le field, cases 1 and 3).
    pub ne: Option<usize>,
    /// True when `data` must never be logged (PINs, keys, authentication cryptograms).
    pub secret: bool,
}

impl Command {
    /// A case 1 command (no data, no Le).
    pub fn new(cla: u8, ins: u8, p1: u8, p2: u8) -> Self {
        Command {
            cla,
            ins,
            p1,
            p2,
            data: Zeroizing::new(Vec::new()),
            ne: None,
            secret: false,
        }
    }

    /// Sets the data field (cases 3 and 4).
    pub fn with_data(mut self, data: impl Into<Vec<u8>>) -> Self {
        self.data = Zeroizing::new(data.into());
        self
    }

    /// Sets Ne (cases 2 and 4). `0` is normalised to "no Le".
    pub fn with_ne(mut self, ne: usize) -> Self {
        self.ne = if ne == 0 {
            None
        } else {
            Some(ne.min(EXTENDED_MAX_NE))
        };
        self
    }

    /// Marks the data field as secret: never logged, REDACTED in `Debug`.
    pub fn secret(mut self) -> Self {
        self.secret = true;
        self
    }

    /// True when the command cannot be sent in short form.
    pub fn needs_extended(&self) -> bool {
        self.data.len() > SHORT_MAX_NC || self.ne.is_some_and(|n| n > SHORT_MAX_NE)
    }

    /// Encodes the command, in short form when it fits, else in extended form.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        self.encode(self.needs_extended())
    }

    /// Encodes the command in the requested form (ISO/IEC 7816-4 §5.1).
    pub fn encode(&self, extended: bool) -> Result<Vec<u8>, Error> {
        let nc = self.data.len();
        if nc > EXTENDED_MAX_NC || (!extended && self.needs_extended()) {
            return Err(Error::Malformed(format!(
                "command does not fit: Nc={nc}, Ne={:?}, extended={extended}",
                self.ne
            )));
        }
        let mut out = Vec::with_capacity(4 + 3 + nc + 3);
        out.extend_from_slice(&[self.cla, self.ins, self.p1, self.p2]);
        if extended {
            if nc > 0 {
                out.push(0);
                out.extend_from_slice(&(nc as u16).to_be_bytes());
                out.extend_from_slice(&self.data);
            }
            if let Some(ne) = self.ne {
                if nc == 0 {
                    out.push(0);
                }
                out.extend_from_slice(&((ne % EXTENDED_MAX_NE) as u16).to_be_bytes());
            }
        } else {
            if nc > 0 {
                out.push(nc as u8);
                out.extend_from_slice(&self.data);
            }
            if let Some(ne) = self.ne {
                out.push((ne % SHORT_MAX_NE) as u8);
            }
        }
        Ok(out)
    }

    /// Parses a command APDU (the card side of the codec). Accepts every case of
    /// ISO/IEC 7816-4 §5.1 in short and extended form and rejects anything else.
    pub fn parse(bytes: &[u8]) -> Result<Command, Error> {
        let bad = |why: &str| Err(Error::Malformed(format!("{why} ({} bytes)", bytes.len())));
        if bytes.len() < 4 {
            return bad("command shorter than the 4-byte header");
        }
        let mut cmd = Command::new(bytes[0], bytes[1], bytes[2], bytes[3]);
        let body = &bytes[4..];
        match body.len() {
            0 => {}
            1 => {
                cmd.ne = Some(if body[0] == 0 {
                    SHORT_MAX_NE
                } else {
                    body[0] as usize
                })
            }
            _ if body[0] != 0 => {
                // Short case 3 or 4.
                let nc = body[0] as usize;
                let rest = &body[1..];
                if rest.len() == nc {
                    cmd.data = Zeroizing::new(rest.to_vec());
                } else if rest.len() == nc + 1 {
                    cmd.data = Zeroizing::new(rest[..nc].to_vec());
                    let le = rest[nc];
                    cmd.ne = Some(if le == 0 { SHORT_MAX_NE } else { le as usize });
                } else {
                    return bad("Lc does not match the data length");
                }
            }
            3 => {
                // Extended case 2: 00 Le1 Le2.
                let le = u16::from_be_bytes([body[1], body[2]]) as usize;
                cmd.ne = Some(if le == 0 { EXTENDED_MAX_NE } else { le });
            }
            n if n > 3 => {
                let nc = u16::from_be_bytes([body[1], body[2]]) as usize;
                if nc == 0 {
                    return bad("extended Lc of zero");
                }
                let rest = &body[3..];
                if rest.len() == nc {
                    cmd.data = Zeroizing::new(rest.to_vec());
                } else if rest.len() == nc + 2 {
                    cmd.data = Zeroizing::new(rest[..nc].to_vec());
                    let le = u16::from_be_bytes([rest[nc], rest[nc + 1]]) as usize;
                    cmd.ne = Some(if le == 0 { EXTENDED_MAX_NE } else { le });
                } else {
                    return bad("extended Lc does not match the data length");
                }
            }
            _ => return bad("invalid body length"),
        }
        Ok(cmd)
    }

    /// Parses a hex string (spaces and colons allowed), as typed on a command line.
    pub fn from_hex(text: &str) -> Result<Command, Error> {
        let clean: String = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != ':')
            .collect();
        let bytes = hex::decode(&clean)
            .map_err(|e| Error::Malformed(format!("invalid hex {text:?}: {e}")))?;
        Command::parse(&bytes)
    }

    /// True when the chaining bit (CLA b5, 0x10) is set.
    pub fn is_chained(&self) -> bool {
        self.cla & 0x10 != 0
    }

    /// True when the class byte indicates ISO secure messaging with an authenticated header.
    pub fn is_secure_messaging(&self) -> bool {
        self.cla & 0x0C == 0x0C
    }

    /// Hex for logs: the header and, unless secret, the data.
    pub fn log_hex(&self) -> String {
        let head = hex::encode_upper([self.cla, self.ins, self.p1, self.p2]);
        let data = if self.secret {
            format!("<{} bytes REDACTED>", self.data.len())
        } else {
            hex::encode_upper(&*self.data)
        };
        match self.ne {
            Some(ne) => format!("{head} [{data}] Ne={ne}"),
            None => format!("{head} [{data}]"),
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({})", self.log_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_1_to_4_short() {
        let c1 = Command::new(0, 0xA4, 0, 0x0C);
        assert_eq!(c1.to_bytes().unwrap(), [0, 0xA4, 0, 0x0C]);
        let c2 = Command::new(0, 0xB0, 0, 0).with_ne(256);
        assert_eq!(c2.to_bytes().unwrap(), [0, 0xB0, 0, 0, 0]);
        let c3 = Command::new(0, 0xD6, 0, 0).with_data([1, 2]);
        assert_eq!(c3.to_bytes().unwrap(), [0, 0xD6, 0, 0, 2, 1, 2]);
        let c4 = Command::new(0, 0xA4, 4, 0).with_data([0xA0]).with_ne(10);
        assert_eq!(c4.to_bytes().unwrap(), [0, 0xA4, 4, 0, 1, 0xA0, 10]);
        for c in [c1, c2, c3, c4] {
            assert_eq!(Command::parse(&c.to_bytes().unwrap()).unwrap(), c);
        }
    }

    #[test]
    fn case_2_to_4_extended() {
        let c2 = Command::new(0, 0xB0, 0, 0).with_ne(65_536);
        assert_eq!(c2.to_bytes().unwrap(), [0, 0xB0, 0, 0, 0, 0, 0]);
        let c3 = Command::new(0, 0xD6, 0, 0).with_data(vec![7; 300]);
        let b3 = c3.to_bytes().unwrap();
        assert_eq!(&b3[4..7], &[0, 1, 44]);
        let c4 = Command::new(0, 0xB0, 0, 0).with_data([1]).with_ne(1000);
        assert_eq!(
            c4.encode(true).unwrap(),
            [0, 0xB0, 0, 0, 0, 0, 1, 1, 0x03, 0xE8]
        );
        for c in [c2, c3, c4] {
            assert_eq!(Command::parse(&c.encode(true).unwrap()).unwrap(), c);
        }
    }

    #[test]
    fn rejects_inconsistent_lengths() {
        assert!(Command::parse(&[0, 0xA4, 0]).is_err());
        assert!(Command::parse(&[0, 0xA4, 0, 0, 5, 1, 2]).is_err());
        assert!(Command::parse(&[0, 0xA4, 0, 0, 0, 0]).is_err());
        assert!(Command::parse(&[0, 0xA4, 0, 0, 0, 0, 0, 1]).is_err());
        assert!(Command::new(0, 0xD6, 0, 0)
            .with_data(vec![0; 300])
            .encode(false)
            .is_err());
        assert!(Command::from_hex("00A4zz").is_err());
    }

    #[test]
    fn secret_data_is_redacted() {
        let c = Command::new(0, 0x20, 0, 0x81).with_data(*b"1234").secret();
        let shown = format!("{c:?}");
        assert!(
            shown.contains("REDACTED") && !shown.contains("31323334"),
            "{shown}"
        );
    }
}
