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
use std::path::Path;

use base64::Engine as _;
use matcher::compare::{self, Scratch, Threshold};
use matcher::template::{self, CardFormat, IsoRecord};
use matcher::Fingerprint;
use serde::Serialize;

use super::calendar::{GregorianDate, SolarDate};
use super::ids::{NationalCode, PostalCode};
use super::{Applicant, Blob, Finger, FingerSample};
use crate::profile::Profile;

/// Largest image or template file read for one sample: anything bigger is not a scan.
pub const MAX_SAMPLE_BYTES: u64 = 16 << 20;
/// Scan resolution assumed when a record gives none.
pub const DEFAULT_SCAN_DPI: u32 = 500;
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
    /// The face image is not a JPEG.
    InvalidImage,
    /// The face image is larger than the profile allows.
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

impl QcIssue {
    /// An issue at `path`.
    pub fn new(path: impl Into<String>, code: QcCode, message: impl Into<String>) -> QcIssue {
        QcIssue {
            path: path.into(),
            code,
            message: message.into(),
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
    /// The template in the profile's card format, what personalization writes.
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
}

/// What QC needs from a fingerprint engine.
pub trait BiometricCheck {
    /// Extracts a fingerprint from an image file's bytes scanned at `dpi`.
    fn extract(&self, image: &[u8], dpi: u32) -> Result<Fingerprint, String>;

    /// Similarity of two fingerprints (higher: more alike).
    fn score(&self, a: &Fingerprint, b: &Fingerprint) -> f32;

    /// The score from which two enrolled fingers are taken to be one finger.
    fn duplicate_threshold(&self) -> Threshold {
        Threshold::FMR_0_01_PERCENT
    }
}

/// [`BiometricCheck`] with the project's matcher.
#[derive(Debug, Clone, Copy, Default)]
pub struct MatcherCheck;

impl BiometricCheck for MatcherCheck {
    fn extract(&self, image: &[u8], dpi: u32) -> Result<Fingerprint, String> {
        let img = matcher::image::GrayImage::decode(image).map_err(|e| e.to_string())?;
        matcher::extract::extract(&img, dpi).map_err(|e| e.to_string())
    }

    fn score(&self, a: &Fingerprint, b: &Fingerprint) -> f32 {
        let mut scratch = Scratch::new();
        compare::compare(&compare::prepare(a), &compare::prepare(b), &mut scratch)
    }
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
        tracking_code: a.tracking_code.clone(),
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
    check_free_zone(a, profile, &mut r);
    check_foreign_resident(a, profile, &mut r);
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

/// National code: check digit, not repeated.
fn check_national_code(a: &Applicant, profile: &Profile, r: &mut QcReport) -> Option<NationalCode> {
    let text = presence(a.national_code.as_deref(), "national_code", profile, r)?;
    match NationalCode::parse(text) {
        Ok(code) => Some(code),
        Err(e) => {
            r.push("national_code", QcCode::InvalidNationalCode, e.to_string());
            None
        }
    }
}

/// True for letters of the Persian (Arabic) script and the zero-width non-joiner.
fn is_persian(c: char) -> bool {
    matches!(c, '\u{0600}'..='\u{06FF}' | '\u{FB50}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFF}' | '\u{200C}')
}

/// Checks one name: non-blank when required, right script, not too long.
fn check_name(text: &str, path: &str, persian: bool, required: bool, r: &mut QcReport) {
    let t = text.trim();
    if t.is_empty() {
        if required {
            r.push(path, QcCode::MissingField, format!("{path} is required"));
        }
        return;
    }
    let ok_char = |c: char| {
        c == ' '
            || if persian {
                is_persian(c)
            } else {
                c.is_ascii_alphabetic() || matches!(c, '-' | '\'' | '.')
            }
    };
    let script = if persian { "Persian" } else { "Latin" };
    if let Some(bad) = t.chars().find(|&c| !ok_char(c)) {
        r.push(
            path,
            QcCode::InvalidName,
            format!("{t:?} has {bad:?}, not a {script}-script letter"),
        );
    } else if t.chars().count() > MAX_NAME_CHARS {
        r.push(
            path,
            QcCode::InvalidName,
            format!("longer than {MAX_NAME_CHARS} characters"),
        );
    }
}

/// Persian and Latin names, father's name.
fn check_names(a: &Applicant, profile: &Profile, r: &mut QcReport) {
    let fa = profile.requires("name.fa");
    let latin = profile.requires("name.latin");
    check_name(&a.name.fa.first, "name.fa.first", true, fa, r);
    check_name(&a.name.fa.last, "name.fa.last", true, fa, r);
    check_name(&a.name.latin.first, "name.latin.first", false, latin, r);
    check_name(&a.name.latin.last, "name.latin.last", false, latin, r);
    let father = a.father_name.as_deref().unwrap_or("");
    check_name(
        father,
        "father_name",
        true,
        profile.requires("father_name"),
        r,
    );
}

/// Birth date: a real Solar Hijri date, not in the future, old enough for the profile.
fn check_birth_date(
    a: &Applicant,
    profile: &Profile,
    today: GregorianDate,
    r: &mut QcReport,
) -> Option<(SolarDate, u32)> {
    if a.birth_date.trim().is_empty() {
        r.push(
            "birth_date",
            QcCode::MissingField,
            "the birth date is missing",
        );
        return None;
    }
    let date = match SolarDate::parse(&a.birth_date) {
        Ok(d) => d,
        Err(e) => {
            r.push("birth_date", QcCode::InvalidDate, e.to_string());
            return None;
        }
    };
    let today_sh = match SolarDate::from_gregorian(today) {
        Ok(d) => d,
        Err(e) => {
            r.push(
                "birth_date",
                QcCode::InvalidDate,
                format!("today ({today}): {e}"),
            );
            return None;
        }
    };
    let age = date.age_on(today_sh);
    if date > today_sh {
        r.push(
            "birth_date",
            QcCode::InvalidDate,
            format!("{date} is after today ({today_sh})"),
        );
        return None;
    }
    let age = age.max(0) as u32;
    if age < profile.minimum_age {
        r.push(
            "birth_date",
            QcCode::TooYoung,
            format!(
                "born {date}: {age} years old, {} needs {}",
                profile.name, profile.minimum_age
            ),
        );
    }
    Some((date, age))
}

/// Gender: `male` or `female`.
fn check_gender(a: &Applicant, r: &mut QcReport) -> Option<Gender> {
    match a.gender.as_str() {
        "male" => Some(Gender::Male),
        "female" => Some(Gender::Female),
        "" => {
            r.push("gender", QcCode::MissingField, "the gender is missing");
            None
        }
        other => {
            r.push(
                "gender",
                QcCode::InvalidValue,
                format!("{other:?} is not \"male\" or \"female\""),
            );
            None
        }
    }
}

/// Birth-certificate serial: letters, digits, '-' and '/'.
fn check_serial(a: &Applicant, profile: &Profile, r: &mut QcReport) {
    let path = "birth_certificate_serial";
    let Some(s) = presence(a.birth_certificate_serial.as_deref(), path, profile, r) else {
        return;
    };
    let ok = s.len() <= 20
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '/');
    if !ok {
        r.push(
            path,
            QcCode::InvalidValue,
            format!("{s:?} is not 1-20 ASCII letters, digits, '-' or '/'"),
        );
    }
}

/// Postal code: 10 digits.
fn check_postal(a: &Applicant, profile: &Profile, r: &mut QcReport) -> Option<PostalCode> {
    let text = presence(a.postal_code.as_deref(), "postal_code", profile, r)?;
    match PostalCode::parse(text) {
        Ok(p) => Some(p),
        Err(e) => {
            r.push("postal_code", QcCode::InvalidPostalCode, e.to_string());
            None
        }
    }
}

/// Address: free text of bounded length.
fn check_address(a: &Applicant, profile: &Profile, r: &mut QcReport) {
    if let Some(t) = presence(a.address.as_deref(), "address", profile, r) {
        if t.chars().count() > MAX_ADDRESS_CHARS {
            r.push(
                "address",
                QcCode::InvalidValue,
                format!("longer than {MAX_ADDRESS_CHARS} characters"),
            );
        }
    }
}

/// The bytes of a [`Blob`]: exactly one of path and base64.
fn read_blob(a: &Applicant, blob: &Blob, path: &str, r: &mut QcReport) -> Option<Vec<u8>> {
    match (&blob.path, &blob.base64) {
        (Some(_), Some(_)) => {
            r.push(
                path,
                QcCode::ConflictingFields,
                "give either path or base64, not both",
            );
            None
        }
        (None, None) => {
            r.push(path, QcCode::MissingField, "needs a path or base64");
            None
        }
        (Some(p), None) => read_file(&a.resolve(p), &format!("{path}.path"), r),
        (None, Some(b64)) => {
            let cleaned: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            match base64::engine::general_purpose::STANDARD.decode(cleaned) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    r.push(
                        format!("{path}.base64"),
                        QcCode::UnreadableFile,
                        format!("bad base64: {e}"),
                    );
                    None
                }
            }
        }
    }
}

/// Reads a sample file, refusing anything over [`MAX_SAMPLE_BYTES`].
fn read_file(file: &Path, path: &str, r: &mut QcReport) -> Option<Vec<u8>> {
    let result = std::fs::metadata(file).and_then(|m| {
        if m.len() > MAX_SAMPLE_BYTES {
            Err(std::io::Error::other(format!(
                "{} bytes is too large",
                m.len()
            )))
        } else {
            std::fs::read(file)
        }
    });
    match result {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            r.push(
                path,
                QcCode::UnreadableFile,
                format!("{}: {e}", file.display()),
            );
            None
        }
    }
}

/// Face photo: a JPEG within the profile's size.
fn check_face(a: &Applicant, profile: &Profile, r: &mut QcReport) -> Option<Vec<u8>> {
    let Some(blob) = &a.face else {
        if profile.requires("face") {
            r.push(
                "face",
                QcCode::MissingField,
                format!("face is required by {}", profile.name),
            );
        }
        return None;
    };
    let bytes = read_blob(a, blob, "face", r)?;
    if !(bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && bytes.ends_with(&[0xFF, 0xD9])) {
        r.push(
            "face",
            QcCode::InvalidImage,
            "not a JPEG (no SOI/EOI markers)",
        );
        return None;
    }
    if bytes.len() > profile.face_max_bytes {
        r.push(
            "face",
            QcCode::ImageTooLarge,
            format!(
                "{} bytes, {} allows {}",
                bytes.len(),
                profile.name,
                profile.face_max_bytes
            ),
        );
        return None;
    }
    Some(bytes)
}

/// Free-zone citizen group.
fn check_free_zone(a: &Applicant, profile: &Profile, r: &mut QcReport) {
    let path = "free_zone.citizen_group";
    match (&a.free_zone, profile.requires(path)) {
        (Some(_), false) => r.push(
            "free_zone",
            QcCode::UnexpectedField,
            format!("{} has no free-zone fields", profile.name),
        ),
        (None, true) => r.push(
            path,
            QcCode::MissingField,
            format!("{path} is required by {}", profile.name),
        ),
        (Some(z), true) => {
            if z.citizen_group.is_empty() {
                r.push(
                    path,
                    QcCode::MissingField,
                    format!("{path} is required by {}", profile.name),
                );
            } else if !profile
                .citizen_groups
                .iter()
                .any(|g| g.code == z.citizen_group)
            {
                let codes: Vec<&str> = profile
                    .citizen_groups
                    .iter()
                    .map(|g| g.code.as_str())
                    .collect();
                r.push(
                    path,
                    QcCode::UnknownCitizenGroup,
                    format!("{:?} is not one of {}", z.citizen_group, codes.join(", ")),
                );
            }
        }
        (None, false) => {}
    }
}

/// Foreign-resident nationality, residence permit and household code.
fn check_foreign_resident(a: &Applicant, profile: &Profile, r: &mut QcReport) {
    let required = profile.requires("foreign_resident");
    let f = match (&a.foreign_resident, required) {
        (Some(_), false) => {
            let msg = format!("{} has no foreign-resident fields", profile.name);
            r.push("foreign_resident", QcCode::UnexpectedField, msg);
            return;
        }
        (None, true) => {
            let msg = format!("foreign_resident is required by {}", profile.name);
            r.push("foreign_resident", QcCode::MissingField, msg);
            return;
        }
        (None, false) => return,
        (Some(f), true) => f,
    };
    let n = &f.nationality;
    if n.is_empty() {
        r.push(
            "foreign_resident.nationality",
            QcCode::MissingField,
            "nationality is missing",
        );
    } else if n.len() != 3 || !n.bytes().all(|c| c.is_ascii_uppercase()) || n == "IRN" {
        r.push(
            "foreign_resident.nationality",
            QcCode::InvalidNationality,
            format!("{n:?} is not an ISO 3166-1 alpha-3 code of a foreign country"),
        );
    }
    let fields = [
        (
            "foreign_resident.residence_permit_number",
            &f.residence_permit_number,
            false,
        ),
        ("foreign_resident.household_code", &f.household_code, true),
    ];
    for (path, value, digits_only) in fields {
        let ok_char = |c: u8| c.is_ascii_digit() || (!digits_only && c.is_ascii_alphanumeric());
        if value.is_empty() {
            r.push(path, QcCode::MissingField, format!("{path} is missing"));
        } else if value.len() > 20 || !value.bytes().all(ok_char) {
            let what = if digits_only {
                "digits"
            } else {
                "ASCII letters and digits"
            };
            r.push(
                path,
                QcCode::InvalidValue,
                format!("{value:?} is not 1-20 {what}"),
            );
        }
    }
}

/// The profile's fingers: present, readable, good enough, distinct, encodable.
fn check_fingers(
    a: &Applicant,
    profile: &Profile,
    bio: &dyn BiometricCheck,
    r: &mut QcReport,
) -> Vec<EnrolledFinger> {
    let policy = &profile.fingers;
    let mut good: Vec<(Finger, Fingerprint)> = Vec::new();
    for &finger in &policy.positions {
        let path = format!("fingers.{finger}");
        let Some(sample) = a.fingers.get(&finger) else {
            r.push(
                &path,
                QcCode::MissingField,
                format!("{finger} is required by {}", profile.name),
            );
            continue;
        };
        let Some(fp) = fingerprint_of(a, finger, sample, &path, bio, r) else {
            continue;
        };
        let mut ok = true;
        if fp.quality < policy.min_quality {
            r.push(
                format!("{path}.quality"),
                QcCode::FingerprintQuality,
                format!("quality {} is below {}", fp.quality, policy.min_quality),
            );
            ok = false;
        }
        if fp.minutiae.len() < policy.min_minutiae {
            r.push(
                format!("{path}.minutiae"),
                QcCode::FingerprintMinutiae,
                format!(
                    "{} minutiae, {} needs {}",
                    fp.minutiae.len(),
                    profile.name,
                    policy.min_minutiae
                ),
            );
            ok = false;
        }
        if ok {
            good.push((finger, fp));
        }
    }
    let threshold = bio.duplicate_threshold();
    let mut duplicate = vec![false; good.len()];
    for j in 1..good.len() {
        for i in 0..j {
            let score = bio
                .score(&good[i].1, &good[j].1)
                .max(bio.score(&good[j].1, &good[i].1));
            if threshold.accepts(score) {
                r.push(
                    format!("fingers.{}", good[j].0),
                    QcCode::DuplicateFinger,
                    format!(
                        "matches {} (score {score:.3} >= {:.3}): the same finger twice",
                        good[i].0, threshold.score
                    ),
                );
                duplicate[j] = true;
                break;
            }
        }
    }
    let mut enrolled = Vec::new();
    for ((finger, fp), dup) in good.into_iter().zip(duplicate) {
        if dup {
            continue;
        }
        match card_template(&fp, finger, policy.template_format) {
            Ok(card_template) => enrolled.push(EnrolledFinger {
                finger,
                fingerprint: fp,
                card_template,
            }),
            Err(e) => r.push(
                format!("fingers.{finger}"),
                QcCode::TemplateEncode,
                e.to_string(),
            ),
        }
    }
    enrolled
}

/// Encodes for the card; a record carries the finger position.
fn card_template(
    fp: &Fingerprint,
    finger: Finger,
    format: CardFormat,
) -> Result<Vec<u8>, matcher::Error> {
    match format {
        CardFormat::Record => {
            template::iso19794::encode(&IsoRecord::from_fingerprint(fp, finger.iso_position())?)
        }
        other => template::encode(fp, other),
    }
}

/// Extracts a scan or decodes a template; reports why not.
fn fingerprint_of(
    a: &Applicant,
    finger: Finger,
    sample: &FingerSample,
    path: &str,
    bio: &dyn BiometricCheck,
    r: &mut QcReport,
) -> Option<Fingerprint> {
    match (&sample.scan, &sample.template) {
        (Some(_), Some(_)) => {
            r.push(
                path,
                QcCode::ConflictingFields,
                "give either a scan or a template, not both",
            );
            None
        }
        (None, None) => {
            r.push(path, QcCode::MissingField, "needs a scan or a template");
            None
        }
        (Some(scan), None) => {
            let dpi = sample.dpi.unwrap_or(DEFAULT_SCAN_DPI);
            if !(250..=1000).contains(&dpi) {
                r.push(
                    format!("{path}.dpi"),
                    QcCode::InvalidValue,
                    format!("{dpi} dpi is outside 250..=1000"),
                );
                return None;
            }
            let bytes = read_blob(a, scan, &format!("{path}.scan"), r)?;
            match bio.extract(&bytes, dpi) {
                Ok(fp) => Some(fp),
                Err(e) => {
                    r.push(format!("{path}.scan"), QcCode::FingerprintUnreadable, e);
                    None
                }
            }
        }
        (None, Some(t)) => {
            if sample.dpi.is_some() {
                r.push(
                    format!("{path}.dpi"),
                    QcCode::UnexpectedField,
                    "a template states its own resolution",
                );
            }
            let tpath = format!("{path}.template");
            let bytes = read_blob(a, t, &tpath, r)?;
            let record = match template::decode_any(&bytes) {
                Ok((_, record)) => record,
                Err(e) => {
                    r.push(&tpath, QcCode::FingerprintUnreadable, e.to_string());
                    return None;
                }
            };
            let views = record.views();
            let want = finger.iso_position();
            let index = views
                .iter()
                .position(|v| v.finger_position == want)
                .or_else(|| (views.len() == 1 && views[0].finger_position == 0).then_some(0));
            match index.and_then(|i| record.fingerprints().into_iter().nth(i)) {
                Some(fp) => Some(fp),
                None => {
                    let found: Vec<String> = views
                        .iter()
                        .map(|v| match Finger::from_iso_position(v.finger_position) {
                            Some(f) => f.to_string(),
                            None => format!("position {}", v.finger_position),
                        })
                        .collect();
                    r.push(
                        &tpath,
                        QcCode::FingerPositionMismatch,
                        format!(
                            "no view of {finger} (position {want}); the record has: {}",
                            found.join(", ")
                        ),
                    );
                    None
                }
            }
        }
    }
}
