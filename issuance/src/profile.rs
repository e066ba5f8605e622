//! Card profiles: what each kind of card carries, as data (TOML), not code.
//!
//! A profile names the data groups written to the chip, the applicant fields the card needs,
//! the fingers enrolled and the template format, the biometric quality floor, the validity
//! period, the PIN policy and the minimum age. The three built-in profiles
//! (`issuance/profiles/*.toml`) are embedded in the binary; [`ProfileSet::load`] lets a directory
//! of `<name>.toml` files override or add to them.
//!
//! Loading validates everything: unknown keys, impossible values (a PIN shorter than 4 digits,
//! a quality above 100, DG3 without fingers...) are [`ProfileError`]s naming the file and the
//! key.
//!
//! ```
//! use issuance::profile::ProfileSet;
//!
//! let set = ProfileSet::builtin().unwrap();
//! let national = set.get("national-id").unwrap();
//! assert_eq!(national.minimum_age, 15);
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use matcher::template::CardFormat;
use serde::Deserialize;

use crate::finger::Finger;

/// The built-in profiles: (name, TOML text).
pub const BUILTIN: [(&str, &str); 3] = [
    ("national-id", include_str!("../profiles/national-id.toml")),
    (
        "free-zone-citizen",
        include_str!("../profiles/free-zone-citizen.toml"),
    ),
    (
        "foreign-resident",
        include_str!("../profiles/foreign-resident.toml"),
    ),
];

/// Applicant fields a profile can require (paths as in the applicant record). The tracking
/// code, birth date and gender are always required.
pub const KNOWN_FIELDS: [&str; 11] = [
    "national_code",
    "name.fa",
    "name.latin",
    "father_name",
    "birth_certificate_serial",
    "postal_code",
    "address",
    "face",
    "iris",
    "free_zone.citizen_group",
    "foreign_resident",
];

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The file is not valid TOML or does not fit the profile schema (unknown key, wrong type).
    #[error("profile {source_name}: {message}")]
    Syntax {
        /// File or built-in name the text came from.
        source_name: String,
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// The file parses but a value is impossible.
    #[error("profile {source_name}: {key}: {message}")]
    Invalid {
        /// File or built-in name the text came from.
        source_name: String,
        /// The offending key, e.g. `pin.min_length`.
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// A profile directory or file could not be read.
    #[error("profile {source_name}: {error}")]
    Io {
        /// The path that failed.
        source_name: String,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// The TOML layout of a profile (before validation).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    /// See [`Profile::name`].
    name: String,
    /// See [`Profile::description`].
    description: String,
    /// See [`Profile::data_groups`].
    data_groups: Vec<String>,
    /// See [`Profile::required_fields`].
    required_fields: Vec<String>,
    /// See [`Profile::minimum_age`].
    minimum_age: u32,
    /// See [`Profile::validity_years`].
    validity_years: u32,
    /// See [`Profile::face_max_bytes`].
    face_max_bytes: usize,
    /// See [`FingerPolicy`].
    fingers: RawFingers,
    /// See [`PinPolicy`].
    pin: PinPolicy,
    /// See [`Profile::citizen_groups`].
    #[serde(default)]
    free_zone: Option<RawFreeZone>,
    /// See [`Profile::renewal`].
    #[serde(default)]
    renewal: RenewalRule,
    /// See [`Profile::household`].
    #[serde(default)]
    household: Option<RawHousehold>,
}

/// The `[household]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHousehold {
    /// See [`HouseholdRule::expires_on`]: `"MM-DD"`.
    expires_on: String,
    /// See [`HouseholdRule::member_activation`].
    member_activation: MemberActivation,
}

/// How a household member's card is activated at a household delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberActivation {
    /// On the household head's verification, in the head's delivery session.
    HeadVerification,
    /// Only on the member's own finger (an ordinary delivery of the member's card).
    OwnFinger,
}

/// The yearly household renewal of a kind (foreign-resident cards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HouseholdRule {
    /// Every card of the kind expires on this (Gregorian) month and day: the first one after
    /// its date of issue.
    pub expires_on: (u8, u8),
    /// How members' cards are activated when the head collects them.
    pub member_activation: MemberActivation,
}

/// How a card of a kind is renewed (issue 16): data of the profile, not code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenewalRule {
    /// A new application of a person who has (or lost) a card of the kind is a reissue: the
    /// new card supersedes the old one when it is delivered. No renewal request is taken.
    #[default]
    Reissue,
    /// The whole household renews every year (`[household]`): members are identified by
    /// household code, a person's cards stay in one household, every card ends on the fixed
    /// yearly date, the head collects the household's cards.
    HouseholdYearly,
    /// A renewal request names the card it renews and carries an officer's decision: approved
    /// (with the officer's id), or rejected with what is missing (the record is rejected with
    /// it, and the status lookup says so).
    OfficerApproval,
}

/// The `[fingers]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFingers {
    /// See [`FingerPolicy::positions`].
    positions: Vec<Finger>,
    /// See [`FingerPolicy::template_format`].
    template_format: String,
    /// See [`FingerPolicy::min_quality`].
    min_quality: u32,
    /// See [`FingerPolicy::min_minutiae`].
    min_minutiae: u32,
}

/// The `[free_zone]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFreeZone {
    /// See [`Profile::citizen_groups`].
    citizen_groups: Vec<CitizenGroup>,
}

/// A free-zone citizen group (DOMAIN.md): who may apply and under what title.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CitizenGroup {
    /// Stable code records use, e.g. `investor`.
    pub code: String,
    /// Title shown to officers and applicants.
    pub title: String,
}

/// Which fingers a card gets and how good they must be.
#[derive(Debug, Clone, PartialEq)]
pub struct FingerPolicy {
    /// Fingers enrolled on the card, in DG3 order (e.g. right index, left index).
    pub positions: Vec<Finger>,
    /// The on-card comparison format of the templates (record, normal or compact card
    /// format): enrollment QC encodes every enrolled finger in it and rejects what does not
    /// encode ([`crate::applicant::qc::EnrolledFinger::card_template`]), for a card that
    /// compares on the chip. DG3 itself always carries full ISO/IEC 19794-2 records (with
    /// minutia quality), and delivery compares the live scan against those, whatever this says.
    pub template_format: CardFormat,
    /// Lowest accepted image quality (0-100): poorer prints fail at delivery.
    pub min_quality: u8,
    /// Fewest accepted minutiae: fewer cannot be matched reliably.
    pub min_minutiae: usize,
}

/// How the holder's PIN is chosen and guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PinPolicy {
    /// Shortest PIN accepted (digits), at least 4.
    pub min_length: u8,
    /// Longest PIN accepted (digits), at most 12.
    pub max_length: u8,
    /// Wrong tries before the PIN blocks (1-15, the card's 4-bit retry counter).
    pub tries: u8,
}

/// A validated card profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    /// Name applicant records refer to (`profile` field), e.g. `national-id`.
    pub name: String,
    /// One line for people: what card this is.
    pub description: String,
    /// Data groups written to the chip, 1-16 in ascending order (DG1 always).
    pub data_groups: Vec<u8>,
    /// Applicant fields the card needs (see [`KNOWN_FIELDS`]); QC reports the missing ones.
    pub required_fields: Vec<String>,
    /// Youngest age (completed years) at which the card is issued.
    pub minimum_age: u32,
    /// Years the card is valid from issue.
    pub validity_years: u32,
    /// Largest face JPEG accepted (bytes), so DG2 fits the chip.
    pub face_max_bytes: usize,
    /// Fingerprint enrolment.
    pub fingers: FingerPolicy,
    /// Holder PIN policy.
    pub pin: PinPolicy,
    /// Free-zone citizen groups an applicant may choose (empty for other cards).
    pub citizen_groups: Vec<CitizenGroup>,
    /// How a card of this kind is renewed (`renewal = "reissue"`, `"officer_approval"` or
    /// `"household_yearly"`).
    pub renewal: RenewalRule,
    /// The household rule (`[household]`), for `renewal = "household_yearly"` only.
    pub household: Option<HouseholdRule>,
}

impl Profile {
    /// True when the profile requires applicant field `path` (one of [`KNOWN_FIELDS`]).
    pub fn requires(&self, path: &str) -> bool {
        self.required_fields.iter().any(|f| f == path)
    }

    /// Parses and validates a profile; `source_name` names the text in errors.
    pub fn from_toml(source_name: &str, text: &str) -> Result<Profile, ProfileError> {
        let raw: RawProfile = toml::from_str(text).map_err(|e| ProfileError::Syntax {
            source_name: source_name.to_owned(),
            message: e.to_string().trim_end().to_owned(),
        })?;
        let invalid = |key: &str, message: String| ProfileError::Invalid {
            source_name: source_name.to_owned(),
            key: key.to_owned(),
            message,
        };
        let name_ok = !raw.name.is_empty()
            && raw
                .name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-');
        if !name_ok {
            return Err(invalid(
                "name",
                format!(
                    "{:?} must be non-empty lowercase letters, digits and '-'",
                    raw.name
                ),
            ));
        }
        let mut data_groups = Vec::new();
        for dg in &raw.data_groups {
            let n = dg
                .strip_prefix("DG")
                .and_then(|n| n.parse::<u8>().ok())
                .filter(|n| (1..=16).contains(n))
                .ok_or_else(|| invalid("data_groups", format!("{dg:?} is not DG1..DG16")))?;
            if data_groups.contains(&n) {
                return Err(invalid("data_groups", format!("{dg} is listed twice")));
            }
            data_groups.push(n);
        }
        data_groups.sort_unstable();
        if !data_groups.contains(&1) {
            return Err(invalid(
                "data_groups",
                "DG1 (the MRZ data) is mandatory".into(),
            ));
        }
        for f in &raw.required_fields {
            if !KNOWN_FIELDS.contains(&f.as_str()) {
                return Err(invalid(
                    "required_fields",
                    format!("unknown field {f:?}; known: {}", KNOWN_FIELDS.join(", ")),
                ));
            }
        }
        let needs_face = raw.required_fields.iter().any(|f| f == "face");
        if data_groups.contains(&2) != needs_face {
            return Err(invalid(
                "data_groups",
                "DG2 (face) and the required field \"face\" go together".into(),
            ));
        }
        let needs_iris = raw.required_fields.iter().any(|f| f == "iris");
        if data_groups.contains(&4) != needs_iris {
            return Err(invalid(
                "data_groups",
                "DG4 (iris) and the required field \"iris\" go together".into(),
            ));
        }
        let fingers = &raw.fingers;
        if data_groups.contains(&3) == fingers.positions.is_empty() {
            return Err(invalid(
                "fingers.positions",
                "DG3 (fingerprints) needs at least one finger, and fingers need DG3".into(),
            ));
        }
        for (i, f) in fingers.positions.iter().enumerate() {
            if fingers.positions[..i].contains(f) {
                return Err(invalid("fingers.positions", format!("{f} is listed twice")));
            }
        }
        let template_format = fingers
            .template_format
            .parse::<CardFormat>()
            .map_err(|e| invalid("fingers.template_format", e.to_string()))?;
        if fingers.min_quality > 100 {
            return Err(invalid(
                "fingers.min_quality",
                format!("{} is above 100", fingers.min_quality),
            ));
        }
        let max_minutiae = matcher::template::card::DEFAULT_MAX_CARD_MINUTIAE as u32;
        if fingers.min_minutiae > max_minutiae {
            return Err(invalid(
                "fingers.min_minutiae",
                format!(
                    "{} is above the {max_minutiae} a card template holds",
                    fingers.min_minutiae
                ),
            ));
        }
        if raw.minimum_age > 120 {
            return Err(invalid(
                "minimum_age",
                format!("{} years is impossible", raw.minimum_age),
            ));
        }
        if !(1..=20).contains(&raw.validity_years) {
            return Err(invalid(
                "validity_years",
                format!("{} is outside 1..=20", raw.validity_years),
            ));
        }
        if !(1024..=65_000).contains(&raw.face_max_bytes) {
            return Err(invalid(
                "face_max_bytes",
                format!(
                    "{} is outside 1024..=65000 (an EF holds 65535 bytes)",
                    raw.face_max_bytes
                ),
            ));
        }
        let pin = raw.pin;
        if pin.min_length < 4 || pin.max_length > 12 || pin.min_length > pin.max_length {
            return Err(invalid(
                "pin",
                format!(
                    "length range {}..={} must lie within 4..=12",
                    pin.min_length, pin.max_length
                ),
            ));
        }
        if !(1..=15).contains(&pin.tries) {
            return Err(invalid(
                "pin.tries",
                format!("{} is outside 1..=15", pin.tries),
            ));
        }
        let citizen_groups = raw.free_zone.map(|z| z.citizen_groups).unwrap_or_default();
        for (i, g) in citizen_groups.iter().enumerate() {
            if g.code.is_empty() || g.title.trim().is_empty() {
                return Err(invalid(
                    "free_zone.citizen_groups",
                    format!("group {} needs a code and a title", i + 1),
                ));
            }
            if citizen_groups[..i].iter().any(|h| h.code == g.code) {
                return Err(invalid(
                    "free_zone.citizen_groups",
                    format!("{:?} is listed twice", g.code),
                ));
            }
        }
        let wants_group = raw
            .required_fields
            .iter()
            .any(|f| f == "free_zone.citizen_group");
        if wants_group == citizen_groups.is_empty() {
            return Err(invalid(
                "free_zone.citizen_groups",
                "the field free_zone.citizen_group and a list of citizen groups go together".into(),
            ));
        }
        let household = match (raw.renewal, raw.household) {
            (RenewalRule::HouseholdYearly, Some(h)) => {
                let parsed = h.expires_on.split_once('-').and_then(|(m, d)| {
                    let (m, d) = (m.parse::<u8>().ok()?, d.parse::<u8>().ok()?);
                    crate::lds::Date::new(2001, m, d).map(|_| (m, d))
                });
                let Some(expires_on) = parsed else {
                    return Err(invalid(
                        "household.expires_on",
                        format!(
                            "{:?} is not a month and day MM-DD (29 February is not allowed)",
                            h.expires_on
                        ),
                    ));
                };
                Some(HouseholdRule {
                    expires_on,
                    member_activation: h.member_activation,
                })
            }
            (RenewalRule::HouseholdYearly, None) => {
                return Err(invalid(
                    "household",
                    "renewal = \"household_yearly\" needs a [household] table".into(),
                ))
            }
            (_, Some(_)) => {
                return Err(invalid(
                    "household",
                    "a [household] table goes with renewal = \"household_yearly\"".into(),
                ))
            }
            (_, None) => None,
        };
        Ok(Profile {
            name: raw.name,
            description: raw.description,
            data_groups,
            required_fields: raw.required_fields,
            minimum_age: raw.minimum_age,
            validity_years: raw.validity_years,
            face_max_bytes: raw.face_max_bytes,
            fingers: FingerPolicy {
                template_format,
                min_quality: raw.fingers.min_quality as u8,
                min_minutiae: raw.fingers.min_minutiae as usize,
                positions: raw.fingers.positions,
            },
            pin,
            citizen_groups,
            renewal: raw.renewal,
            household,
        })
    }
}

/// The profiles a daemon knows, by name.
#[derive(Debug, Clone, Default)]
pub struct ProfileSet {
    /// Profiles by [`Profile::name`].
    profiles: BTreeMap<String, Profile>,
}

impl ProfileSet {
    /// The profiles embedded in the binary.
    pub fn builtin() -> Result<ProfileSet, ProfileError> {
        let mut set = ProfileSet::default();
        for (name, text) in BUILTIN {
            set.insert(&format!("built-in {name}.toml"), name, text)?;
        }
        Ok(set)
    }

    /// The built-in profiles, overridden and extended by every `*.toml` in `dir` (if given).
    /// A file's profile name must match its file name.
    pub fn load(dir: Option<&Path>) -> Result<ProfileSet, ProfileError> {
        let mut set = ProfileSet::builtin()?;
        let Some(dir) = dir else { return Ok(set) };
        let io = |p: &Path, error| ProfileError::Io {
            source_name: p.display().to_string(),
            error,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let path = entry.map_err(|e| io(dir, e))?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                paths.push(path);
            }
        }
        paths.sort();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(|e| io(&path, e))?;
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            set.insert(&path.display().to_string(), stem, &text)?;
        }
        Ok(set)
    }

    /// Parses `text` and adds it, checking its name is `expected_name`.
    fn insert(
        &mut self,
        source: &str,
        expected_name: &str,
        text: &str,
    ) -> Result<(), ProfileError> {
        let p = Profile::from_toml(source, text)?;
        if p.name != expected_name {
            return Err(ProfileError::Invalid {
                source_name: source.to_owned(),
                key: "name".into(),
                message: format!(
                    "{:?} does not match the file name {expected_name:?}",
                    p.name
                ),
            });
        }
        self.profiles.insert(p.name.clone(), p);
        Ok(())
    }

    /// The profile called `name`.
    pub fn get(&self, name: &str) -> Option<&Profile> {
        self.profiles.get(name)
    }

    /// Every profile, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Profile> {
        self.profiles.values()
    }
}
