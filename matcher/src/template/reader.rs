//! A bounds-checked big-endian cursor over untrusted template bytes.
//!
//! Every read either succeeds or returns [`Error::InvalidTemplate`] naming the format, what was
//! being read and the byte offset, so no decoder ever indexes past the end of its input.

use crate::Error;

/// Cursor over a template being decoded.
pub(crate) struct Reader<'a> {
    /// The whole template, so that offsets in messages are absolute.
    data: &'a [u8],
    /// Offset of the next byte to read.
    pos: usize,
    /// Format name used as the prefix of every error message.
    format: &'static str,
}

impl<'a> Reader<'a> {
    /// Starts reading `data` at offset 0.
    pub(crate) fn new(data: &'a [u8], format: &'static str) -> Self {
        Reader {
            data,
            pos: 0,
            format,
        }
    }

    /// Offset of the next byte.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Bytes left after the cursor.
    pub(crate) fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// An `InvalidTemplate` error for something wrong at `offset`.
    pub(crate) fn error_at(&self, offset: usize, message: impl std::fmt::Display) -> Error {
        invalid(self.format, offset, message)
    }

    /// Takes the next `n` bytes, failing if fewer remain.
    pub(crate) fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], Error> {
        let start = self.pos;
        let end = start
            .checked_add(n)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| {
                self.error_at(
                    start,
                    format_args!(
                        "truncated: {what} needs {n} bytes but only {} remain",
                        self.remaining()
                    ),
                )
            })?;
        self.pos = end;
        Ok(self.data.get(start..end).unwrap_or_default())
    }

    /// Reads one byte.
    pub(crate) fn u8(&mut self, what: &str) -> Result<u8, Error> {
        let b = self.take(1, what)?;
        Ok(b.first().copied().unwrap_or_default())
    }

    /// Reads a big-endian 16-bit value.
    pub(crate) fn u16(&mut self, what: &str) -> Result<u16, Error> {
        let b = self.take(2, what)?;
        let mut a = [0u8; 2];
        a.copy_from_slice(b);
        Ok(u16::from_be_bytes(a))
    }

    /// Reads a big-endian 32-bit value.
    pub(crate) fn u32(&mut self, what: &str) -> Result<u32, Error> {
        let b = self.take(4, what)?;
        let mut a = [0u8; 4];
        a.copy_from_slice(b);
        Ok(u32::from_be_bytes(a))
    }
}

/// Builds the `InvalidTemplate` error every decoder returns: format, problem and byte offset.
pub(crate) fn invalid(format: &str, offset: usize, message: impl std::fmt::Display) -> Error {
    Error::InvalidTemplate(format!("{format}: {message} (at byte offset {offset})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_big_endian_and_reports_truncation_offset() {
        let mut r = Reader::new(&[0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07], "test");
        assert_eq!(r.u8("a").unwrap(), 1);
        assert_eq!(r.u16("b").unwrap(), 0x0203);
        assert_eq!(r.u32("c").unwrap(), 0x0405_0607);
        assert_eq!(r.remaining(), 0);
        let err = r.u8("d").unwrap_err().to_string();
        assert!(err.contains("offset 7"), "{err}");
        assert!(err.contains("truncated"), "{err}");
    }

    #[test]
    fn huge_take_does_not_overflow() {
        let mut r = Reader::new(&[0u8; 4], "test");
        r.u8("x").unwrap();
        assert!(r.take(usize::MAX, "all").is_err());
        assert_eq!(r.pos(), 1);
    }
}
