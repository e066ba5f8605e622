//! Data quality control before a card is touched.
//!
//! [`check`] validates an [`Applicant`] against a [`Profile`] and either returns a
//! [`ValidatedApplicant`] (typed fields, fingerprints extracted and encoded in the profile's card
//! format) or a [`QcReport`] listing every problem found, each with the field path, a stable
//! [`QcCode`] and a message for people. It never panics and never stops at the first problem: a
//! batch journals the report and moves on to the next record.
//!
//! Biometrics go through [`BiometricCheck`] ([`MatcherCheck`] uses the project's matcher):
//! scans are extracted, templates decoded; quality and minutiae count must reach the profile's
//! minimums, and two enrolled fingers that match each other above
//! [`Threshold::FMR_0_01_PERCENT`] are the same finger twice (`duplicate_finger`).

use std::fmt;

use matcher::Fingerprint;
use serde::Serialize;

use super::calendar::{GregorianDate, SolarDate};
use super::ids::{NationalCode, PostalCode};
use super::{Applicant, Finger};
use crate::profile::Profile;

mod biometric;
mod files;
mod identity;

use biometric::{check_face, check_fingers, check_iris};
pub use biometric::{BiometricCheck, MatcherCheck, TemplatesBy, IRIS_MAX_BYTES};
use identity::{
    check_address, check_birth_date, check_foreign_resident, check_free_zone, check_gender,
    check_names, check_national_code, check_postal, check_renewal, check_serial,
};

/// Largest image or template file read for one sample: anything bigger is not a scan.
pub const MAX_SAMPLE_BYTES: u64 = 16 << 20;
/// Longest name, father's name or serial accepted, in characters.
const MAX_NAME_CHARS: usize = 64;
/// Longest address accepted, in characters.
const MAX_ADDRESS_CHARS: usize = 500;

/// Stable codes of QC problems; the journal and the daemon's replies carry them as
/// snake_case strings ([`QcCode::as_str`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QcCode {
    /// The record is not valid JSON or does not fit the applicant schema.
    MalformedRecord,
    /// The record names another profile than the one it is checked against.
    ProfileMismatch,
    /// A field the profile requires is absent or empty.
    MissingField,
    /// A field the profile does not use is present (e.g. free-zone fields on a national card).
    UnexpectedField,
    /// Two alternatives were both given (a file path and base64, a scan and a template).
    ConflictingFields,
    /// The national code is not 10 digits, is one repeated digit or has a wrong check digit.
    InvalidNationalCode,
    /// The birth date is malformed, does not exist in the Solar Hijri calendar, or is in the future.
    InvalidDate,
    /// The postal code is not 10 digits.
    InvalidPostalCode,
    /// A name has characters outside its script or is too long.
    InvalidName,
    /// Another field has an impossible value (gender, serial, tracking code, dpi...).
    InvalidValue,
    /// The applicant is younger than the profile's minimum age.
    TooYoung,
    /// A referenced file cannot be read, or base64 does not decode.
    UnreadableFile,
    /// A `path` where the record may not name files: a record from a client (data comes
    /// inline), or a path outside the folder an operator's manifest may read from (`..`, an
    /// absolute path elsewhere, a FIFO, device or directory). Nothing was read.
    PathNotAllowed,
    /// The face image is not a JPEG, or an iris image (`iris.right`, `iris.left`) is not a
    /// readable PNG or JPEG.
    InvalidImage,
    /// The face image is larger than the profile allows, or an iris image larger than
    /// [`IRIS_MAX_BYTES`] as DG4 stores it.
    ImageTooLarge,
    /// A scan gives no usable fingerprint or a template does not decode.
    FingerprintUnreadable,
    /// A fingerprint's quality is below the profile minimum.
    FingerprintQuality,
    /// A fingerprint has fewer minutiae than the profile minimum.
    FingerprintMinutiae,
    /// A template says it is another finger than the one it is filed under.
    FingerPositionMismatch,
    /// Two enrolled fingers are the same finger.
    DuplicateFinger,
    /// A fingerprint cannot be written in the profile's card template format.
    TemplateEncode,
    /// The free-zone citizen group is not one of the profile's.
    UnknownCitizenGroup,
    /// The nationality is not an ISO 3166-1 alpha-3 code of a foreign country.
    InvalidNationality,
    /// A renewal the officer did not approve (the message lists what is missing).
    RenewalRejected,
    /// A renewal that names no card of this person and kind that can be renewed.
    RenewalWithoutCard,
    /// A household member who holds a usable card of another household.
    HouseholdConflict,
}

impl QcCode {
    /// The stable snake_case name, e.g. `invalid_national_code`.
    pub fn as_str(self) -> &'static str {
        match self {
            QcCode::MalformedRecord => "malformed_record",
            QcCode::ProfileMismatch => "profile_mismatch",
            QcCode::MissingField => "missing_field",
            QcCode::UnexpectedField => "unexpected_field",
            QcCode::ConflictingFields => "conflicting_fields",
            QcCode::InvalidNationalCode => "invalid_national_code",
            QcCode::InvalidDate => "invalid_date",
            QcCode::InvalidPostalCode => "invalid_postal_code",
            QcCode::InvalidName => "invalid_name",
            QcCode::InvalidValue => "invalid_value",
            QcCode::TooYoung => "too_young",
            QcCode::UnreadableFile => "unreadable_file",
            QcCode::PathNotAllowed => "path_not_allowed",
            QcCode::InvalidImage => "invalid_image",
            QcCode::ImageTooLarge => "image_too_large",
            QcCode::FingerprintUnreadable => "fingerprint_unreadable",
            QcCode::FingerprintQuality => "fingerprint_quality",
            QcCode::FingerprintMinutiae => "fingerprint_minutiae",
            QcCode::FingerPositionMismatch => "finger_position_mismatch",
            QcCode::DuplicateFinger => "duplicate_finger",
            QcCode::TemplateEncode => "template_encode",
            QcCode::UnknownCitizenGroup => "unknown_citizen_group",
            QcCode::InvalidNationality => "invalid_nationality",
            QcCode::RenewalRejected => "renewal_rejected",
            QcCode::RenewalWithoutCard => "renewal_without_card",
            QcCode::HouseholdConflict => "household_conflict",
        }
    }
}

impl fmt::Display for QcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem of a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct QcIssue {
    /// Where: the field path in the record, e.g. `fingers.right_index.quality` (empty: the
    /// whole record).
    pub path: String,
    /// What, for programs.
    pub code: QcCode,
    /// What, for people.
    pub message: String,
}

/// Most characters of a QC message: messages quote the record's values, and a record's
/// strings are the client's (issue 18); a report is journaled and sent back.
pub const MAX_MESSAGE_CHARS: usize = 200;

/// Most characters of a tracking code kept in a report (valid ones have at most 40).
const MAX_REPORTED_TRACKING_CHARS: usize = 64;

/// `s` cut to `max` characters, `…` marking the cut.
fn clip(s: String, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s,
        Some((at, _)) => {
            let mut cut = s[..at].to_string();
            cut.push('…');
            cut
        }
    }
}

impl QcIssue {
    /// An issue at `path`; the message is cut to [`MAX_MESSAGE_CHARS`].
    pub fn new(path: impl Into<String>, code: QcCode, message: impl Into<String>) -> QcIssue {
        QcIssue {
            path: path.into(),
            code,
            message: clip(message.into(), MAX_MESSAGE_CHARS),
        }
    }
}

/// Every problem QC found in one record.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct QcReport {
    /// The record's tracking code (empty when it has none), so the journal can file the report.
    pub tracking_code: String,
    /// The problems, in the order the record's fields were checked.
    pub issues: Vec<QcIssue>,
}

impl QcReport {
    /// A report of one issue (a record that could not even be read).
    pub fn single(issue: QcIssue) -> QcReport {
        QcReport {
            tracking_code: String::new(),
            issues: vec![issue],
        }
    }

    /// True when the report has an issue with this path and code.
    pub fn has(&self, path: &str, code: QcCode) -> bool {
        self.issues.iter().any(|i| i.path == path && i.code == code)
    }

    /// Adds an issue.
    fn push(&mut self, path: impl Into<String>, code: QcCode, message: impl Into<String>) {
        self.issues.push(QcIssue::new(path, code, message));
    }
}

impl fmt::Display for QcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "record {:?} rejected:", self.tracking_code)?;
        for i in &self.issues {
            let path = if i.path.is_empty() {
                "(record)"
            } else {
                &i.path
            };
            write!(f, "\n  {path}: {}: {}", i.code, i.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for QcReport {}

/// The holder's gender as the card writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gender {
    /// `male` in records, `M` in DG1.
    Male,
    /// `female` in records, `F` in DG1.
    Female,
}

impl Gender {
    /// The ICAO 9303 sex code for DG1.
    pub fn icao_code(self) -> char {
        match self {
            Gender::Male => 'M',
            Gender::Female => 'F',
        }
    }
}

/// A fingerprint ready for the card.
#[derive(Debug, Clone, PartialEq)]
pub struct EnrolledFinger {
    /// Which finger, for DG3's finger position and for delivery's match.
    pub finger: Finger,
    /// The minutiae, as extracted or decoded.
    pub fingerprint: Fingerprint,
    /// The extractor that made `fingerprint` from a scan (`classical`, `leader`); `None` for
    /// a template submitted with the record. DG3 names it as the template's creator.
    pub extractor: Option<String>,
    /// The template in the profile's on-card comparison format
    /// ([`crate::profile::FingerPolicy::template_format`]): proof at enrollment that the
    /// finger encodes in it. Personalization writes DG3 from `fingerprint` as a full record.
    pub card_template: Vec<u8>,
}

/// A record that passed QC: every field the profile needs, typed and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedApplicant {
    /// The record as received (names, address and other free text come from here).
    pub record: Applicant,
    /// The profile it was checked against.
    pub profile: String,
    /// The national code, when the record has one.
    pub national_code: Option<NationalCode>,
    /// Birth date in the Solar Hijri calendar (card face, DG11).
    pub birth_date: SolarDate,
    /// The same date in the Gregorian calendar (DG1 MRZ).
    pub birth_date_gregorian: GregorianDate,
    /// Completed years on the day QC ran.
    pub age: u32,
    /// Gender.
    pub gender: Gender,
    /// Postal code, when the record has one.
    pub postal_code: Option<PostalCode>,
    /// The face JPEG for DG2, when the profile has DG2.
    pub face_jpeg: Option<Vec<u8>>,
    /// The profile's fingers in profile order, ready for DG3.
    pub fingers: Vec<EnrolledFinger>,
    /// The iris images (right, then left) as DG4 stores them, when the profile requires `iris`.
    pub iris: Vec<crate::lds::IrisImage>,
}

/// Checks `applicant` against `profile` as of today (UTC).
pub fn check(
    applicant: &Applicant,
    profile: &Profile,
    bio: &dyn BiometricCheck,
) -> Result<ValidatedApplicant, QcReport> {
    check_on(applicant, profile, bio, GregorianDate::today_utc())
}

/// Checks `applicant` against `profile` as of `today` (ages are computed on that day).
pub fn check_on(
    applicant: &Applicant,
    profile: &Profile,
    bio: &dyn BiometricCheck,
    today: GregorianDate,
) -> Result<ValidatedApplicant, QcReport> {
    let a = applicant;
    let mut r = QcReport {
        tracking_code: clip(a.tracking_code.clone(), MAX_REPORTED_TRACKING_CHARS),
        issues: Vec::new(),
    };
    check_tracking_and_profile(a, profile, &mut r);
    let national_code = check_national_code(a, profile, &mut r);
    check_names(a, profile, &mut r);
    let birth = check_birth_date(a, profile, today, &mut r);
    let gender = check_gender(a, &mut r);
    check_serial(a, profile, &mut r);
    let postal_code = check_postal(a, profile, &mut r);
    check_address(a, profile, &mut r);
    let face_jpeg = check_face(a, profile, &mut r);
    let iris = check_iris(a, profile, &mut r);
    check_free_zone(a, profile, &mut r);
    check_foreign_resident(a, profile, &mut r);
    check_renewal(a, profile, &mut r);
    let fingers = check_fingers(a, profile, bio, &mut r);
    match (birth, gender) {
        (Some((birth_date, age)), Some(gender)) if r.issues.is_empty() => Ok(ValidatedApplicant {
            record: a.clone(),
            profile: profile.name.clone(),
            national_code,
            birth_date,
            birth_date_gregorian: birth_date.to_gregorian(),
            age,
            gender,
            postal_code,
            face_jpeg,
            fingers,
            iris,
        }),
        _ => Err(r),
    }
}

/// Tracking code present and sane; record's profile is this one.
fn check_tracking_and_profile(a: &Applicant, profile: &Profile, r: &mut QcReport) {
    let t = &a.tracking_code;
    if t.is_empty() {
        r.push(
            "tracking_code",
            QcCode::MissingField,
            "the tracking code is missing",
        );
    } else if t.len() > 40 || !t.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-') {
        r.push(
            "tracking_code",
            QcCode::InvalidValue,
            format!("{t:?} is not 1-40 ASCII letters, digits and '-'"),
        );
    }
    if a.profile.is_empty() {
        r.push(
            "profile",
            QcCode::MissingField,
            "the card profile is missing",
        );
    } else if a.profile != profile.name {
        r.push(
            "profile",
            QcCode::ProfileMismatch,
            format!(
                "record asks for {:?}, checked against {:?}",
                a.profile, profile.name
            ),
        );
    }
}

/// Reports a required but absent field, or a present field the profile does not use; returns
/// the value when present and non-blank.
fn presence<'a>(
    value: Option<&'a str>,
    path: &str,
    profile: &Profile,
    r: &mut QcReport,
) -> Option<&'a str> {
    let value = value.filter(|v| !v.trim().is_empty());
    if value.is_none() && profile.requires(path) {
        r.push(
            path,
            QcCode::MissingField,
            format!("{path} is required by {}", profile.name),
        );
    }
    value
}
