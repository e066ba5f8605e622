//! Identity checks: codes, names, dates, addresses, and what each card kind adds (free-zone
//! group, foreign resident's household).

use super::{presence, Gender, QcCode, QcReport, MAX_ADDRESS_CHARS, MAX_NAME_CHARS};
use crate::applicant::calendar::{GregorianDate, SolarDate};
use crate::applicant::ids::{NationalCode, PostalCode};
use crate::applicant::Applicant;
use crate::profile::Profile;

/// National code: check digit, not repeated.
pub(super) fn check_national_code(
    a: &Applicant,
    profile: &Profile,
    r: &mut QcReport,
) -> Option<NationalCode> {
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
pub(super) fn is_persian(c: char) -> bool {
    matches!(c, '\u{0600}'..='\u{06FF}' | '\u{FB50}'..='\u{FDFF}' | '\u{FE70}'..='\u{FEFF}' | '\u{200C}')
}

/// Checks one name: non-blank when required, right script, not too long.
pub(super) fn check_name(text: &str, path: &str, persian: bool, required: bool, r: &mut QcReport) {
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
pub(super) fn check_names(a: &Applicant, profile: &Profile, r: &mut QcReport) {
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
pub(super) fn check_birth_date(
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
pub(super) fn check_gender(a: &Applicant, r: &mut QcReport) -> Option<Gender> {
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
pub(super) fn check_serial(a: &Applicant, profile: &Profile, r: &mut QcReport) {
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
pub(super) fn check_postal(
    a: &Applicant,
    profile: &Profile,
    r: &mut QcReport,
) -> Option<PostalCode> {
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
pub(super) fn check_address(a: &Applicant, profile: &Profile, r: &mut QcReport) {
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

/// Free-zone citizen group.
pub(super) fn check_free_zone(a: &Applicant, profile: &Profile, r: &mut QcReport) {
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
pub(super) fn check_foreign_resident(a: &Applicant, profile: &Profile, r: &mut QcReport) {
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

/// A renewal request: only for kinds renewed after an officer's review, naming the card it
/// renews, approved by an officer; a rejected one reports what is missing. (Whether the named
/// card exists and is this person's is the journal's to say, when the record is produced.)
pub(super) fn check_renewal(a: &Applicant, profile: &Profile, r: &mut QcReport) {
    use crate::profile::RenewalRule;
    let Some(renewal) = &a.renewal else {
        return;
    };
    if profile.renewal != RenewalRule::OfficerApproval {
        let msg = format!(
            "{} cards are not renewed by request: a new application is a reissue",
            profile.name
        );
        r.push("renewal", QcCode::UnexpectedField, msg);
        return;
    }
    if renewal.of_document.trim().is_empty() {
        let msg = "a renewal names the document number of the card it renews".to_string();
        r.push("renewal.of_document", QcCode::MissingField, msg);
    }
    if !renewal.approved {
        let missing: Vec<String> = renewal
            .missing
            .iter()
            .map(|m| m.chars().take(MAX_MISSING_CHARS).collect())
            .take(MAX_MISSING_ITEMS)
            .collect();
        let msg = if missing.is_empty() {
            "the officer did not approve the renewal".to_string()
        } else {
            format!(
                "the officer did not approve the renewal; missing: {}",
                missing.join(", ")
            )
        };
        r.push("renewal.approved", QcCode::RenewalRejected, msg);
    } else if renewal.officer.trim().is_empty() {
        let msg = "an approved renewal names the approving officer".to_string();
        r.push("renewal.officer", QcCode::MissingField, msg);
    }
}

/// Most items of a rejected renewal's `missing` list reported.
const MAX_MISSING_ITEMS: usize = 16;
/// Longest item reported, in characters.
const MAX_MISSING_CHARS: usize = 80;
