//! ISO/IEC 7816-4 §5.6 status words (SW1-SW2) as an enum.
//!
//! Status words that carry data are variants with fields; anything not named here is kept
//! verbatim in [`StatusWord::Other`], so `StatusWord::from(u16)` and `u16::from(StatusWord)`
//! round-trip for every value.

use std::fmt;

/// A decoded status word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusWord {
    /// 9000: normal processing.
    Success,
    /// 61xx: normal processing, `len` bytes still available with GET RESPONSE (0 means 256 or more).
    BytesRemaining {
        /// SW2: how many bytes the card holds for GET RESPONSE.
        len: u8,
    },
    /// 6282: end of file reached before reading Ne bytes.
    EndOfFile,
    /// 6283: selected file deactivated.
    FileDeactivated,
    /// 63Cx: verification failed, `tries_left` attempts remain.
    WrongPin {
        /// Remaining verification attempts (0..=15).
        tries_left: u8,
    },
    /// 6581: memory failure (e.g. a write torn by card removal).
    MemoryFailure,
    /// 6700: wrong length (Lc or Le).
    WrongLength,
    /// 6881: logical channel not supported.
    LogicalChannelNotSupported,
    /// 6882: secure messaging not supported.
    SecureMessagingNotSupported,
    /// 6883: last command of the chain expected.
    LastCommandOfChainExpected,
    /// 6884: command chaining not supported.
    ChainingNotSupported,
    /// 6981: command incompatible with file structure.
    IncompatibleFileStructure,
    /// 6982: security status not satisfied.
    SecurityStatusNotSatisfied,
    /// 6983: authentication method blocked (PIN blocked).
    AuthenticationBlocked,
    /// 6984: reference data not usable.
    ReferenceDataNotUsable,
    /// 6985: conditions of use not satisfied.
    ConditionsNotSatisfied,
    /// 6986: command not allowed (no current EF).
    CommandNotAllowed,
    /// 6987: expected secure messaging data objects missing.
    SmObjectsMissing,
    /// 6988: incorrect secure messaging data objects (bad MAC, bad padding).
    SmObjectsIncorrect,
    /// 6A80: incorrect parameters in the command data field.
    IncorrectData,
    /// 6A81: function not supported.
    FunctionNotSupported,
    /// 6A82: file or application not found.
    FileNotFound,
    /// 6A84: not enough memory space in the file.
    NotEnoughMemory,
    /// 6A86: incorrect parameters P1-P2.
    IncorrectP1P2,
    /// 6A88: referenced data or reference data not found.
    ReferenceDataNotFound,
    /// 6A89: file already exists.
    FileAlreadyExists,
    /// 6B00: wrong parameters P1-P2 (offset outside the EF).
    WrongP1P2,
    /// 6Cxx: wrong Le field; `exact_len` is the number of available bytes.
    WrongLe {
        /// SW2: the Le the card expects.
        exact_len: u8,
    },
    /// 6D00: instruction code not supported or invalid.
    InsNotSupported,
    /// 6E00: class not supported.
    ClaNotSupported,
    /// 6F00: no precise diagnosis.
    Unknown,
    /// Any other value, kept verbatim.
    Other(u16),
}

impl StatusWord {
    /// True for 9000 and 61xx (processing completed, maybe with more data to fetch).
    pub fn is_success(self) -> bool {
        matches!(
            self,
            StatusWord::Success | StatusWord::BytesRemaining { .. }
        )
    }

    /// Builds a status word from SW1 and SW2.
    pub fn from_bytes(sw1: u8, sw2: u8) -> Self {
        Self::from(u16::from_be_bytes([sw1, sw2]))
    }

    /// SW1 and SW2 in wire order.
    pub fn to_bytes(self) -> [u8; 2] {
        u16::from(self).to_be_bytes()
    }

    /// A short human description, as tools like opensc-tool print next to the hex.
    pub fn description(self) -> &'static str {
        use StatusWord::*;
        match self {
            Success => "success",
            BytesRemaining { .. } => "more response bytes available",
            EndOfFile => "end of file reached before Le bytes",
            FileDeactivated => "selected file deactivated",
            WrongPin { .. } => "verification failed",
            MemoryFailure => "memory failure",
            WrongLength => "wrong length",
            LogicalChannelNotSupported => "logical channel not supported",
            SecureMessagingNotSupported => "secure messaging not supported",
            LastCommandOfChainExpected => "last command of the chain expected",
            ChainingNotSupported => "command chaining not supported",
            IncompatibleFileStructure => "command incompatible with file structure",
            SecurityStatusNotSatisfied => "security status not satisfied",
            AuthenticationBlocked => "authentication method blocked",
            ReferenceDataNotUsable => "reference data not usable",
            ConditionsNotSatisfied => "conditions of use not satisfied",
            CommandNotAllowed => "command not allowed",
            SmObjectsMissing => "expected secure messaging data objects missing",
            SmObjectsIncorrect => "incorrect secure messaging data objects",
            IncorrectData => "incorrect parameters in the data field",
            FunctionNotSupported => "function not supported",
            FileNotFound => "file or application not found",
            NotEnoughMemory => "not enough memory space in the file",
            IncorrectP1P2 => "incorrect parameters P1-P2",
            ReferenceDataNotFound => "referenced data not found",
            FileAlreadyExists => "file already exists",
            WrongP1P2 => "wrong parameters P1-P2",
            WrongLe { .. } => "wrong Le field",
            InsNotSupported => "instruction not supported",
            ClaNotSupported => "class not supported",
            Unknown => "no precise diagnosis",
            Other(_) => "unrecognised status word",
        }
    }
}

impl From<u16> for StatusWord {
    fn from(sw: u16) -> Self {
        use StatusWord::*;
        let [sw1, sw2] = sw.to_be_bytes();
        match (sw1, sw2) {
            (0x90, 0x00) => Success,
            (0x61, len) => BytesRemaining { len },
            (0x62, 0x82) => EndOfFile,
            (0x62, 0x83) => FileDeactivated,
            (0x63, x) if x & 0xF0 == 0xC0 => WrongPin {
                tries_left: x & 0x0F,
            },
            (0x65, 0x81) => MemoryFailure,
            (0x67, 0x00) => WrongLength,
            (0x68, 0x81) => LogicalChannelNotSupported,
            (0x68, 0x82) => SecureMessagingNotSupported,
            (0x68, 0x83) => LastCommandOfChainExpected,
            (0x68, 0x84) => ChainingNotSupported,
            (0x69, 0x81) => IncompatibleFileStructure,
            (0x69, 0x82) => SecurityStatusNotSatisfied,
            (0x69, 0x83) => AuthenticationBlocked,
            (0x69, 0x84) => ReferenceDataNotUsable,
            (0x69, 0x85) => ConditionsNotSatisfied,
            (0x69, 0x86) => CommandNotAllowed,
            (0x69, 0x87) => SmObjectsMissing,
            (0x69, 0x88) => SmObjectsIncorrect,
            (0x6A, 0x80) => IncorrectData,
            (0x6A, 0x81) => FunctionNotSupported,
            (0x6A, 0x82) => FileNotFound,
            (0x6A, 0x84) => NotEnoughMemory,
            (0x6A, 0x86) => IncorrectP1P2,
            (0x6A, 0x88) => ReferenceDataNotFound,
            (0x6A, 0x89) => FileAlreadyExists,
            (0x6B, 0x00) => WrongP1P2,
            (0x6C, exact_len) => WrongLe { exact_len },
            (0x6D, 0x00) => InsNotSupported,
            (0x6E, 0x00) => ClaNotSupported,
            (0x6F, 0x00) => Unknown,
            _ => Other(sw),
        }
    }
}

impl From<StatusWord> for u16 {
    fn from(sw: StatusWord) -> u16 {
        use StatusWord::*;
        match sw {
            Success => 0x9000,
            BytesRemaining { len } => 0x6100 | len as u16,
            EndOfFile => 0x6282,
            FileDeactivated => 0x6283,
            WrongPin { tries_left } => 0x63C0 | (tries_left & 0x0F) as u16,
            MemoryFailure => 0x6581,
            WrongLength => 0x6700,
            LogicalChannelNotSupported => 0x6881,
            SecureMessagingNotSupported => 0x6882,
            LastCommandOfChainExpected => 0x6883,
            ChainingNotSupported => 0x6884,
            IncompatibleFileStructure => 0x6981,
            SecurityStatusNotSatisfied => 0x6982,
            AuthenticationBlocked => 0x6983,
            ReferenceDataNotUsable => 0x6984,
            ConditionsNotSatisfied => 0x6985,
            CommandNotAllowed => 0x6986,
            SmObjectsMissing => 0x6987,
            SmObjectsIncorrect => 0x6988,
            IncorrectData => 0x6A80,
            FunctionNotSupported => 0x6A81,
            FileNotFound => 0x6A82,
            NotEnoughMemory => 0x6A84,
            IncorrectP1P2 => 0x6A86,
            ReferenceDataNotFound => 0x6A88,
            FileAlreadyExists => 0x6A89,
            WrongP1P2 => 0x6B00,
            WrongLe { exact_len } => 0x6C00 | exact_len as u16,
            InsNotSupported => 0x6D00,
            ClaNotSupported => 0x6E00,
            Unknown => 0x6F00,
            Other(v) => v,
        }
    }
}

impl fmt::Display for StatusWord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04X} ({}", u16::from(*self), self.description())?;
        match self {
            StatusWord::BytesRemaining { len } => write!(f, ": {len} bytes)"),
            StatusWord::WrongPin { tries_left } => write!(f, ": {tries_left} tries left)"),
            StatusWord::WrongLe { exact_len } => write!(f, ": Le should be {exact_len})"),
            _ => write!(f, ")"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_u16_round_trips() {
        for v in 0..=u16::MAX {
            assert_eq!(u16::from(StatusWord::from(v)), v, "{v:04X}");
        }
    }

    #[test]
    fn named_variants_are_not_other() {
        for v in [
            0x9000u16, 0x6110, 0x63C2, 0x6A82, 0x6982, 0x6985, 0x6C20, 0x6282,
        ] {
            assert!(
                !matches!(StatusWord::from(v), StatusWord::Other(_)),
                "{v:04X}"
            );
        }
        assert_eq!(
            StatusWord::from(0x63C2),
            StatusWord::WrongPin { tries_left: 2 }
        );
        assert_eq!(
            StatusWord::from(0x6C20),
            StatusWord::WrongLe { exact_len: 0x20 }
        );
        assert_eq!(StatusWord::from(0x6310), StatusWord::Other(0x6310));
    }

    #[test]
    fn display_shows_hex_and_meaning() {
        assert_eq!(
            StatusWord::WrongPin { tries_left: 1 }.to_string(),
            "63C1 (verification failed: 1 tries left)"
        );
    }
}
