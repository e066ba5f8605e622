//! The applicant record: what registration collected for one card, as the production line gets it.
//!
//! * [`Applicant`] is the record as written (JSON). Formatted fields (codes, dates) stay text so
//!   that quality control can report every problem of a record at once.
//! * [`qc::check`] turns an [`Applicant`] and a [`crate::profile::Profile`] into a
//!   [`qc::ValidatedApplicant`] (typed, biometrics extracted and encoded for the card) or a
//!   [`qc::QcReport`] listing every problem with a field path and a stable code.
//! * [`calendar`] validates Solar Hijri dates and converts them; [`ids`] checks national and
//!   postal codes.
//!
//! ```
//! use issuance::applicant::ids::NationalCode;
//! use issuance::applicant::calendar::SolarDate;
//!
//! assert!(NationalCode::parse("0499370899").is_ok());
//! assert!(NationalCode::parse("1111111111").is_err());
//! let nowruz = SolarDate::parse("1403-01-01").unwrap();
//! assert_eq!(nowruz.to_gregorian().to_string(), "2024-03-20");
//! ```

pub mod calendar;
pub mod ids;
pub mod qc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use crate::finger::Finger;
pub use qc::{check, QcCode, QcIssue, QcReport, ValidatedApplicant};

/// Which files the `path` fields of a record may name. The caller decides it where the record
/// comes from, and QC ([`qc::check`]) holds every blob to it (issue 18).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum FileAccess {
    /// No files: the record came from a client (over the socket), so its data comes inline
    /// (base64) and any `path` is refused (`path_not_allowed`) without anything being read.
    /// The default: a record is untrusted until its caller says otherwise.
    #[default]
    None,
    /// Files in this folder only, as an operator's manifest or record file names them:
    /// relative paths without `..`, absolute ones inside the folder; regular files only (no
    /// FIFO, device or directory: the type is checked before anything is opened for reading),
    /// at most [`qc::MAX_SAMPLE_BYTES`].
    RelativeTo(PathBuf),
    /// A record file an operator named to a tool running as themself ([`Applicant::load`]:
    /// the test and benchmark set-ups, `idcardd demo`): relative paths resolve against this
    /// folder and may leave it (`../fingerprints/1_1.png` in `fixtures/applicants`), since the
    /// operator could read those files anyway. Still regular files only, size-limited. Never
    /// for a record that came from a client or a manifest.
    Local(PathBuf),
}

impl FileAccess {
    /// The folder files are read from, if any.
    pub fn dir(&self) -> Option<&Path> {
        match self {
            FileAccess::None => None,
            FileAccess::RelativeTo(dir) | FileAccess::Local(dir) => Some(dir),
        }
    }

    /// The access a batch journal's base directory stands for: none for an empty one (records
    /// from the socket), that folder otherwise (records from a manifest).
    pub fn from_base_dir(base_dir: &str) -> FileAccess {
        if base_dir.is_empty() {
            FileAccess::None
        } else {
            FileAccess::RelativeTo(PathBuf::from(base_dir))
        }
    }
}

/// A first and last name in one script.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonName {
    /// Given name.
    #[serde(default)]
    pub first: String,
    /// Family name.
    #[serde(default)]
    pub last: String,
}

/// The holder's names: Persian script for the card face, Latin for the MRZ and DG1.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Names {
    /// In Persian script (what the birth certificate says).
    #[serde(default)]
    pub fa: PersonName,
    /// In Latin script (transliteration, for machine-readable data).
    #[serde(default)]
    pub latin: PersonName,
}

/// An image or template given either as a file (relative to the record; only where the
/// record's [`FileAccess`] allows files) or inline as base64.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Blob {
    /// File path, resolved and checked against [`Applicant::files`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The bytes inline, standard base64 (for records that travel as one message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
}

/// One finger's biometric sample: a scan to extract, or a template to decode (exactly one).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FingerSample {
    /// A grayscale scan (PNG, TIFF, BMP) that the matcher extracts minutiae from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scan: Option<Blob>,
    /// Resolution of the scan in dpi (scans only; 500 when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpi: Option<u32>,
    /// An ISO/IEC 19794-2:2005 (or ANSI INCITS 378) finger minutiae record made elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<Blob>,
}

/// The iris images taken at enrolment (DG4 of kinds that carry it): PNG or JPEG, one per eye.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IrisSamples {
    /// The right eye's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub right: Option<Blob>,
    /// The left eye's image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left: Option<Blob>,
}

/// A renewal request: the card it renews and the officer's decision (issue 16).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenewalRequest {
    /// Document number of the card being renewed (same person, same kind, still usable).
    #[serde(default)]
    pub of_document: String,
    /// The reviewing officer's id.
    #[serde(default)]
    pub officer: String,
    /// The officer's decision.
    #[serde(default)]
    pub approved: bool,
    /// When rejected: what the applicant must bring (documents, fields).
    #[serde(default)]
    pub missing: Vec<String>,
}

/// Fields only the free-zone citizen card has.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FreeZoneFields {
    /// The citizen group the applicant applied under (a code listed in the profile).
    #[serde(default)]
    pub citizen_group: String,
}

/// Fields only the foreign-resident card has.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForeignResidentFields {
    /// Nationality, ISO 3166-1 alpha-3 (e.g. `AFG`): what the card says the holder is.
    #[serde(default)]
    pub nationality: String,
    /// Residence permit number: the document the card stands for.
    #[serde(default)]
    pub residence_permit_number: String,
    /// Household code: members of one household are identified and renewed together.
    #[serde(default)]
    pub household_code: String,
    /// This member is the household head, who collects the household's cards.
    #[serde(default)]
    pub household_head: bool,
}

/// One applicant record, as registration sends it to production.
///
/// Everything is optional or text at this stage: which fields a card needs depends on its
/// profile, and [`qc::check`] reports every missing or malformed one.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Applicant {
    /// The registration's tracking code: how the journal and the status lookup find the card.
    #[serde(default)]
    pub tracking_code: String,
    /// The card profile (card kind) to produce, e.g. `national-id`.
    #[serde(default)]
    pub profile: String,
    /// National code, 10 digits with check digit (absent for some foreign residents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub national_code: Option<String>,
    /// Names in Persian and Latin script.
    #[serde(default)]
    pub name: Names,
    /// Father's name (Persian script), printed on the card and in DG11.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub father_name: Option<String>,
    /// Birth date in the Solar Hijri calendar, `YYYY-MM-DD`.
    #[serde(default)]
    pub birth_date: String,
    /// `male` or `female`.
    #[serde(default)]
    pub gender: String,
    /// Birth-certificate serial (e.g. `12-345678`), used by the status lookup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_certificate_serial: Option<String>,
    /// Home postal code, 10 digits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Home address, free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Face photo, JPEG, for DG2 and the card face.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub face: Option<Blob>,
    /// Fingerprint samples by finger name (`right_index`, ...). Registration scans all ten;
    /// QC checks and enrols only the fingers the profile lists and ignores the others.
    #[serde(default)]
    pub fingers: BTreeMap<Finger, FingerSample>,
    /// Iris images (`right`, `left`), for kinds whose profile requires `iris` (DG4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iris: Option<IrisSamples>,
    /// Free-zone citizen card fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub free_zone: Option<FreeZoneFields>,
    /// Foreign-resident card fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_resident: Option<ForeignResidentFields>,
    /// A renewal request (kinds renewed after an officer's review, e.g. free-zone cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal: Option<RenewalRequest>,
    /// Which files `path` fields may name (not part of the JSON): none unless the caller says
    /// so; [`Applicant::load`] sets [`FileAccess::Local`].
    #[serde(skip)]
    pub files: FileAccess,
}

impl Applicant {
    /// Parses a JSON record. A malformed record is a [`QcReport`] (code `malformed_record`)
    /// like any other rejection, so a batch can journal it and go on.
    pub fn from_json(text: &str) -> Result<Applicant, QcReport> {
        let malformed = |e: String| {
            QcReport::single(QcIssue::new(
                "",
                QcCode::MalformedRecord,
                format!("record is not a valid applicant JSON: {e}"),
            ))
        };
        // Structs also deserialize from arrays; a record is an object.
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| malformed(e.to_string()))?;
        if !value.is_object() {
            return Err(malformed("not a JSON object".into()));
        }
        serde_json::from_value(value).map_err(|e| malformed(e.to_string()))
    }

    /// Reads a JSON record from a file an operator named; paths in it resolve against its
    /// folder ([`FileAccess::Local`]).
    pub fn load(path: impl AsRef<Path>) -> Result<Applicant, QcReport> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            QcReport::single(QcIssue::new(
                "",
                QcCode::MalformedRecord,
                format!("cannot read {}: {e}", path.display()),
            ))
        })?;
        let mut a = Applicant::from_json(&text)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        a.files = FileAccess::Local(dir);
        Ok(a)
    }
}
