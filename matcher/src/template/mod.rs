//! Template formats: ISO/IEC 19794-2:2005 record and card formats, ANSI INCITS 378-2004.
//!
//! * [`iso19794`]: the ISO/IEC 19794-2:2005 finger minutiae record ([`IsoRecord`], multi-view).
//! * [`ansi378`]: the ANSI INCITS 378-2004 finger minutiae record ([`AnsiRecord`]).
//! * [`card`]: the headerless ISO/IEC 19794-2:2005 normal (5-byte) and compact (3-byte) card
//!   formats used for match-on-card.
//! * [`decode_any`] tells the two records apart (they share the "FMR\0 20\0" identifier) from
//!   the record length field, the way FingerprintIO does.
//! * [`CardFormat`] with [`encode`] / [`decode`] is what card personalization and the bench's
//!   `--card-format record|normal|compact` use: one [`Fingerprint`] in, bytes out, and back.
//!
//! One codec reads and writes both records, from a table of what differs. Their headers,
//! big-endian, are followed by finger views laid out alike ([`record`]):
//!
//! | field | ISO bytes | ANSI bytes |
//! |---|---|---|
//! | format identifier "FMR\0" | 4 | 4 |
//! | version " 20\0" | 4 | 4 |
//! | record length | 4 | 2, or 0x0000 followed by 4 when over 65535 |
//! | CBEFF product identifier: owner (2), type (2) | - | 4 |
//! | capture equipment: 4-bit compliance, 12-bit device id | 2 | 2 |
//! | image width, height in pixels | 2 + 2 | 2 + 2 |
//! | horizontal, vertical resolution, pixels per centimetre | 2 + 2 | 2 + 2 |
//! | number of finger views | 1 | 1 |
//! | reserved, 0 | 1 | 1 |
//! | header in all | 24 | 26 (30 in the long length form) |
//!
//! Minutia angles count counter-clockwise from the x axis in units of 360/256 degrees (ISO) or
//! of 2 degrees, 0-179 (ANSI). Reading a record checks the magic and version, a record length
//! equal to the input length, a non-zero image size, a plausible resolution, the reserved byte
//! zero, 1 to [`record::MAX_VIEWS`] views, every view and minutia field in range and inside the
//! image, and no trailing bytes. A view with zero minutiae is accepted (the standards allow it).
//!
//! Every decoder validates as it reads and never panics nor allocates from an untrusted count
//! before checking that the input is long enough; every failure is
//! [`Error::InvalidTemplate`] naming the format, the problem and the byte offset.
//!
//! ```
//! use matcher::template::{self, CardFormat};
//! use matcher::{Fingerprint, Minutia, MinutiaKind};
//!
//! let fp = Fingerprint {
//!     width: 300, height: 400, dpi_x: 500, dpi_y: 500, quality: 60,
//!     minutiae: vec![Minutia { x: 120.0, y: 200.0, direction: 1.0,
//!                              kind: MinutiaKind::Ending, quality: 70 }],
//! };
//! let bytes = template::encode(&fp, CardFormat::Record).unwrap();
//! let back = template::decode(&bytes, CardFormat::Record, 500).unwrap();
//! assert_eq!(back.minutiae.len(), 1);
//! ```

pub mod ansi378;
pub mod card;
mod fmr;
pub mod iso19794;
mod reader;
pub mod record;

pub use ansi378::AnsiRecord;
pub use iso19794::IsoRecord;
pub use record::{ExtendedArea, FingerView, RecordMinutia};

use crate::{Error, Fingerprint};

/// A finger minutiae record format with a header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// ISO/IEC 19794-2:2005 record.
    Iso19794_2_2005,
    /// ANSI INCITS 378-2004 record.
    Ansi378_2004,
}

/// A decoded record of either format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyRecord {
    /// An ISO/IEC 19794-2:2005 record.
    Iso(IsoRecord),
    /// An ANSI INCITS 378-2004 record.
    Ansi(AnsiRecord),
}

impl AnyRecord {
    /// Which format the record was read from.
    pub fn format(&self) -> Format {
        match self {
            AnyRecord::Iso(_) => Format::Iso19794_2_2005,
            AnyRecord::Ansi(_) => Format::Ansi378_2004,
        }
    }

    /// The finger views, in record order (angle units depend on the format).
    pub fn views(&self) -> &[FingerView] {
        match self {
            AnyRecord::Iso(r) => &r.views,
            AnyRecord::Ansi(r) => &r.views,
        }
    }

    /// Every view as a [`Fingerprint`].
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        match self {
            AnyRecord::Iso(r) => r.fingerprints(),
            AnyRecord::Ansi(r) => r.fingerprints(),
        }
    }
}

/// Tells an ISO/IEC 19794-2:2005 record from an ANSI INCITS 378-2004 one.
///
/// Both start with "FMR\0" " 20\0". ISO follows with a 4-byte length, ANSI with a 2-byte length
/// (at least 26) or with 0x0000 and a 4-byte length. So: bytes 8-9 at least 26 means ANSI;
/// 1-25 means ISO (a record of 64 KiB or more); 0 means ISO when bytes 10-11 are at least 24
/// (an ISO length under 64 KiB), ANSI's long form otherwise.
pub fn sniff(bytes: &[u8]) -> Result<Format, Error> {
    let fail = |offset: usize, m: &str| reader::invalid("finger minutiae record", offset, m);
    let head = bytes
        .get(..12)
        .ok_or_else(|| fail(bytes.len(), "truncated: fewer than 12 bytes"))?;
    if &head[..4] != iso19794::MAGIC {
        return Err(fail(0, "format identifier is not \"FMR\\0\""));
    }
    if &head[4..8] != iso19794::VERSION {
        return Err(fail(4, "version is not \" 20\\0\" (2004/2005 editions)"));
    }
    let first = u16::from_be_bytes([head[8], head[9]]);
    let second = u16::from_be_bytes([head[10], head[11]]);
    Ok(match first {
        26.. => Format::Ansi378_2004,
        1..=25 => Format::Iso19794_2_2005,
        0 if usize::from(second) >= iso19794::HEADER_LEN => Format::Iso19794_2_2005,
        0 => Format::Ansi378_2004,
    })
}

/// Decodes a record of either format, telling them apart with [`sniff`].
pub fn decode_any(bytes: &[u8]) -> Result<(Format, AnyRecord), Error> {
    let format = sniff(bytes)?;
    let record = match format {
        Format::Iso19794_2_2005 => AnyRecord::Iso(iso19794::decode(bytes)?),
        Format::Ansi378_2004 => AnyRecord::Ansi(ansi378::decode(bytes)?),
    };
    Ok((format, record))
}

/// How a fingerprint is written for a card (or for the bench).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CardFormat {
    /// A full ISO/IEC 19794-2:2005 record with one view (finger position 0, unknown).
    Record,
    /// The ISO/IEC 19794-2:2005 normal size card format (5 bytes per minutia, 0.01 mm).
    Normal,
    /// The ISO/IEC 19794-2:2005 compact size card format (3 bytes per minutia, 0.1 mm).
    Compact,
}

impl CardFormat {
    /// The name [`std::str::FromStr`] parses: `record`, `normal` or `compact`.
    pub fn name(self) -> &'static str {
        match self {
            CardFormat::Record => "record",
            CardFormat::Normal => "normal",
            CardFormat::Compact => "compact",
        }
    }
}

impl std::str::FromStr for CardFormat {
    type Err = Error;

    /// Parses `record`, `normal` or `compact` (the bench's `--card-format` values).
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "record" => Ok(CardFormat::Record),
            "normal" => Ok(CardFormat::Normal),
            "compact" => Ok(CardFormat::Compact),
            other => Err(Error::Encode(format!(
                "unknown card format {other:?}: expected record, normal or compact"
            ))),
        }
    }
}

/// Encodes `fp` in `format`.
///
/// Card formats keep at most [`card::DEFAULT_MAX_CARD_MINUTIAE`] (the highest-quality ones) and
/// sort them as [`card`] describes; use [`card::encode_normal`] / [`card::encode_compact`] for
/// another limit. A record keeps every minutia and fails above 255.
pub fn encode(fp: &Fingerprint, format: CardFormat) -> Result<Vec<u8>, Error> {
    match format {
        CardFormat::Record => iso19794::encode(&IsoRecord::from_fingerprint(fp, 0)?),
        CardFormat::Normal => card::encode_normal(fp, card::DEFAULT_MAX_CARD_MINUTIAE),
        CardFormat::Compact => card::encode_compact(fp, card::DEFAULT_MAX_CARD_MINUTIAE),
    }
}

/// Decodes a template written in `format`.
///
/// For card formats, coordinates are expressed as pixels at `dpi` and at most
/// [`card::DEFAULT_MAX_CARD_MINUTIAE`] are accepted. For [`CardFormat::Record`], `dpi` is not
/// used (the record states its resolution) and the record must hold exactly one view.
pub fn decode(bytes: &[u8], format: CardFormat, dpi: u32) -> Result<Fingerprint, Error> {
    match format {
        CardFormat::Record => {
            let record = iso19794::decode(bytes)?;
            match (record.views.len(), record.fingerprint(0)) {
                (1, Some(fp)) => Ok(fp),
                (n, _) => Err(reader::invalid(
                    fmr::ISO_19794_2_2005.name,
                    22,
                    format_args!("a card record holds exactly one finger view, not {n}"),
                )),
            }
        }
        CardFormat::Normal => card::decode_normal(bytes, dpi, card::DEFAULT_MAX_CARD_MINUTIAE),
        CardFormat::Compact => card::decode_compact(bytes, dpi, card::DEFAULT_MAX_CARD_MINUTIAE),
    }
}
