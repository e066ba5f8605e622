//! The Logical Data Structure the chip carries (ICAO Doc 9303-10, LDS1): EF.COM and the data
//! groups idcardd writes, each with a builder and a validating parser.
//!
//! - [`com`]: EF.COM (tag `60`): LDS and Unicode versions and the list of data groups present.
//! - [`mrz`]: DG1 (tag `61`): the TD1 machine readable zone with ICAO 9303-3 check digits.
//! - [`biometric`]: DG2 (tag `75`, ISO/IEC 19794-5 face) and DG3 (tag `63`, ISO/IEC 19794-2
//!   finger minutiae) as ISO/IEC 7816-11 biometric information templates.
//! - [`iris`]: DG4 (tag `76`, ISO/IEC 19794-6:2005 iris images), built like DG3.
//! - [`details`]: DG11 (tag `6B`, personal details) and DG12 (tag `6C`, document details).
//!
//! Inputs are plain structs ([`PersonalData`], [`DocumentData`], [`FaceImage`],
//! [`FingerTemplate`]) so the applicant model maps onto them without knowing any tag. Every
//! parser rejects what it cannot read with an [`LdsError`]; none panics on bad input.
//!
//! ```
//! use issuance::lds::{self, Date, DocumentData, PersonalData, Sex};
//! let person = PersonalData {
//!     surname: "رضایی".into(),
//!     given_names: "علی".into(),
//!     surname_latin: "REZAEI".into(),
//!     given_names_latin: "ALI".into(),
//!     other_names: vec![],
//!     personal_number: "0012345679".into(),
//!     birth_date: Date::new(1990, 3, 21).unwrap(),
//!     place_of_birth: "تهران".into(),
//!     father_name: "حسن".into(),
//!     sex: Sex::Male,
//!     nationality: "IRN".into(),
//! };
//! let doc = DocumentData {
//!     document_number: "A12345678".into(),
//!     issuing_state: "IRN".into(),
//!     date_of_issue: Date::new(2026, 11, 1).unwrap(),
//!     date_of_expiry: Date::new(2033, 11, 1).unwrap(),
//!     issuing_authority: "سازمان ثبت احوال کشور".into(),
//! };
//! let dg1 = lds::mrz::build_dg1(&person, &doc).unwrap();
//! let mrz = lds::mrz::parse_dg1(&dg1).unwrap();
//! assert_eq!(mrz.document_number, "A12345678");
//! ```

use apdu::tlv::{Tag, Tlv};

pub mod biometric;
pub mod com;
pub mod details;
pub mod iris;
pub mod mrz;

pub use biometric::{FaceImage, FingerTemplate, ImageFormat};
pub use iris::{Eye, IrisImage, IrisImageFormat};

/// Why a data group could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LdsError {
    /// The bytes are not a well-formed data group of the expected kind.
    #[error("{what}: malformed: {reason}")]
    Malformed {
        /// Which file or element (e.g. "DG2", "EF.COM").
        what: &'static str,
        /// What is wrong, in words.
        reason: String,
    },
    /// An input field cannot be written (too long, characters the MRZ cannot carry, ...).
    #[error("invalid {field}: {reason}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// What is wrong, in words.
        reason: String,
    },
}

impl LdsError {
    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> LdsError {
        LdsError::Malformed {
            what,
            reason: reason.into(),
        }
    }

    pub(crate) fn field(field: &'static str, reason: impl Into<String>) -> LdsError {
        LdsError::InvalidField {
            field,
            reason: reason.into(),
        }
    }
}

/// A Gregorian calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    /// Year, 1900..=2099.
    pub year: u16,
    /// Month, 1..=12.
    pub month: u8,
    /// Day of the month, 1..=31 (checked against the month's length).
    pub day: u8,
}

impl Date {
    /// A checked date; `None` for a day the calendar does not have or a year outside
    /// 1900..=2099.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Date> {
        if !(1900..=2099).contains(&year) || !(1..=12).contains(&month) || day == 0 {
            return None;
        }
        let leap =
            (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400);
        let days = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        (day <= days).then_some(Date { year, month, day })
    }

    /// `YYMMDD` as the MRZ writes it.
    pub fn yymmdd(self) -> String {
        format!("{:02}{:02}{:02}", self.year % 100, self.month, self.day)
    }

    /// `YYYYMMDD` as DG11 and DG12 write full dates.
    pub fn yyyymmdd(self) -> String {
        format!("{:04}{:02}{:02}", self.year, self.month, self.day)
    }

    /// Parses `YYYYMMDD`.
    pub fn parse_yyyymmdd(s: &str) -> Option<Date> {
        if s.len() != 8 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        Date::new(
            s[..4].parse().ok()?,
            s[4..6].parse().ok()?,
            s[6..].parse().ok()?,
        )
    }

    /// Parses `YYMMDD`: a two-digit year above `century_cut` is 19YY, otherwise 20YY.
    pub(crate) fn parse_yymmdd(s: &str, century_cut: u16) -> Option<Date> {
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let yy: u16 = s[..2].parse().ok()?;
        let year = if yy > century_cut {
            1900 + yy
        } else {
            2000 + yy
        };
        Date::new(year, s[2..4].parse().ok()?, s[4..].parse().ok()?)
    }
}

/// Sex as the MRZ codes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sex {
    /// `M`.
    Male,
    /// `F`.
    Female,
    /// `<`: not specified.
    Unspecified,
}

impl Sex {
    /// The MRZ character.
    pub fn mrz_char(self) -> char {
        match self {
            Sex::Male => 'M',
            Sex::Female => 'F',
            Sex::Unspecified => '<',
        }
    }

    /// From the MRZ character.
    pub fn from_mrz_char(c: char) -> Option<Sex> {
        match c {
            'M' => Some(Sex::Male),
            'F' => Some(Sex::Female),
            '<' | 'X' => Some(Sex::Unspecified),
            _ => None,
        }
    }
}

/// The holder, as the data groups need them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalData {
    /// Surname in national characters (Persian, UTF-8): DG11 full name.
    pub surname: String,
    /// Given names in national characters: DG11 full name.
    pub given_names: String,
    /// Surname transliterated to Latin A-Z for the MRZ (DG1).
    pub surname_latin: String,
    /// Given names transliterated to Latin A-Z for the MRZ (DG1).
    pub given_names_latin: String,
    /// Other names the holder is known by (DG11 `A0`/`5F0F`).
    pub other_names: Vec<String>,
    /// The national code (10 digits): DG11 personal number and the MRZ optional data.
    pub personal_number: String,
    /// Date of birth (Gregorian).
    pub birth_date: Date,
    /// Place of birth in national characters (DG11 `5F11`).
    pub place_of_birth: String,
    /// Father's name in national characters. ICAO 9303 has no element for it; this profile
    /// carries it in DG11's personal summary (`5F15`).
    pub father_name: String,
    /// Sex (MRZ).
    pub sex: Sex,
    /// Nationality, ICAO three-letter code (`IRN`).
    pub nationality: String,
}

/// The document, as the data groups need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentData {
    /// Document number, at most 9 characters A-Z 0-9 (MRZ).
    pub document_number: String,
    /// Issuing state, ICAO three-letter code (`IRN`).
    pub issuing_state: String,
    /// Date of issue (DG12 `5F26`).
    pub date_of_issue: Date,
    /// Date of expiry (MRZ).
    pub date_of_expiry: Date,
    /// Issuing authority in national characters (DG12 `5F19`).
    pub issuing_authority: String,
}

/// Data group numbers and their LDS tags (ICAO 9303-10 §4.6, table of data groups).
pub const DG_TAGS: [(u8, u32); 16] = [
    (1, 0x61),
    (2, 0x75),
    (3, 0x63),
    (4, 0x76),
    (5, 0x65),
    (6, 0x66),
    (7, 0x67),
    (8, 0x68),
    (9, 0x69),
    (10, 0x6A),
    (11, 0x6B),
    (12, 0x6C),
    (13, 0x6D),
    (14, 0x6E),
    (15, 0x6F),
    (16, 0x70),
];

/// The LDS tag of data group `dg` (1..=16).
pub fn dg_tag(dg: u8) -> Option<u8> {
    DG_TAGS
        .iter()
        .find(|&&(n, _)| n == dg)
        .map(|&(_, t)| t as u8)
}

/// The data group number of an LDS tag.
pub fn dg_number(tag: u8) -> Option<u8> {
    DG_TAGS
        .iter()
        .find(|&&(_, t)| t == tag as u32)
        .map(|&(n, _)| n)
}

/// Decodes exactly one object with `tag` from a file's bytes.
pub(crate) fn decode_outer(bytes: &[u8], tag: u32, what: &'static str) -> Result<Tlv, LdsError> {
    let tlv = Tlv::decode_one(bytes).map_err(|e| LdsError::malformed(what, e.to_string()))?;
    if tlv.tag != Tag(tag) {
        return Err(LdsError::malformed(
            what,
            format!("outer tag {} where {:X} was expected", tlv.tag, tag),
        ));
    }
    Ok(tlv)
}

/// The bytes of the primitive child `tag` of `parent`, or an error naming it.
pub(crate) fn required<'a>(
    parent: &'a Tlv,
    tag: u32,
    what: &'static str,
) -> Result<&'a [u8], LdsError> {
    parent
        .children()
        .iter()
        .find(|c| c.tag == Tag(tag))
        .and_then(Tlv::as_bytes)
        .ok_or_else(|| LdsError::malformed(what, format!("missing element {tag:X}")))
}

/// The primitive child `tag` of `parent` as UTF-8 text, if present.
pub(crate) fn optional_text(
    parent: &Tlv,
    tag: u32,
    what: &'static str,
) -> Result<Option<String>, LdsError> {
    match parent.children().iter().find(|c| c.tag == Tag(tag)) {
        None => Ok(None),
        Some(c) => {
            let bytes = c
                .as_bytes()
                .ok_or_else(|| LdsError::malformed(what, format!("{tag:X} is constructed")))?;
            String::from_utf8(bytes.to_vec())
                .map(Some)
                .map_err(|_| LdsError::malformed(what, format!("{tag:X} is not UTF-8")))
        }
    }
}

/// Encodes a tag list (`5C`) value: every tag's wire bytes, concatenated.
pub(crate) fn tag_list(tags: &[u32]) -> Vec<u8> {
    let mut out = Vec::new();
    for &t in tags {
        Tag(t).write_to(&mut out);
    }
    out
}

/// Decodes a tag list (`5C`) value.
pub(crate) fn parse_tag_list(mut bytes: &[u8], what: &'static str) -> Result<Vec<u32>, LdsError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (tag, used) =
            Tag::parse(bytes).map_err(|e| LdsError::malformed(what, e.to_string()))?;
        out.push(tag.0);
        bytes = &bytes[used..];
    }
    Ok(out)
}

/// Width, height and component count from a JPEG's start-of-frame segment (SOF0-SOF15 except
/// DHT, JPG and DAC), read before the first scan.
pub fn jpeg_frame(jpeg: &[u8]) -> Option<(u16, u16, u8)> {
    let mut i = 2;
    while i + 4 <= jpeg.len() {
        if jpeg[i] != 0xFF {
            return None;
        }
        let marker = jpeg[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let len = usize::from(u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]));
        if (0xC0..=0xCF).contains(&marker) && !matches!(marker, 0xC4 | 0xC8 | 0xCC) {
            let seg = jpeg.get(i + 4..i + 2 + len)?;
            let height = u16::from_be_bytes([*seg.get(1)?, *seg.get(2)?]);
            let width = u16::from_be_bytes([*seg.get(3)?, *seg.get(4)?]);
            return Some((width, height, *seg.get(5)?));
        }
        if marker == 0xDA || len < 2 {
            return None;
        }
        i += 2 + len;
    }
    None
}
