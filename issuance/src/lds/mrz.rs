//! DG1 (ICAO 9303-10 §4.7.1): tag `61` { `5F1F` the machine readable zone }, here the TD1
//! layout of ICAO 9303-5 (three lines of 30 characters, 90 in all) with the check digits of
//! ICAO 9303-3 §4.9 (weights 7, 3, 1; `<` counts 0, `A`-`Z` count 10-35).

use apdu::tlv::{Tag, Tlv};

use super::{decode_outer, required, Date, DocumentData, LdsError, PersonalData, Sex};

/// Document code written in TD1 positions 1-2: `I` (identity card) and `D` (national ID).
pub const DOCUMENT_CODE: &str = "ID";

/// Characters per TD1 line.
pub const LINE_LEN: usize = 30;

/// The ICAO 9303-3 check digit of `data` (`0`-`9`, `A`-`Z`, `<`); `None` for any other
/// character.
pub fn check_digit(data: &str) -> Option<u8> {
    const WEIGHTS: [u32; 3] = [7, 3, 1];
    let mut sum = 0u32;
    for (i, c) in data.chars().enumerate() {
        let v = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'A'..='Z' => c as u32 - 'A' as u32 + 10,
            '<' => 0,
            _ => return None,
        };
        sum += v * WEIGHTS[i % 3];
    }
    Some((sum % 10) as u8)
}

fn digit_char(data: &str) -> char {
    // Only called on strings built from MRZ characters.
    char::from(b'0' + check_digit(data).unwrap_or(0))
}

/// A TD1 zone, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mrz {
    /// Document code (`ID`).
    pub document_code: String,
    /// Issuing state (`IRN`).
    pub issuing_state: String,
    /// Document number without filler.
    pub document_number: String,
    /// Optional data of line 1 without filler (this profile: the national code).
    pub optional_data: String,
    /// Date of birth.
    pub birth_date: Date,
    /// Sex.
    pub sex: Sex,
    /// Date of expiry.
    pub expiry_date: Date,
    /// Nationality.
    pub nationality: String,
    /// Primary identifier (surname), words separated by spaces.
    pub surname: String,
    /// Secondary identifier (given names), words separated by spaces.
    pub given_names: String,
    /// The 90 characters as written.
    pub zone: String,
}

fn mrz_field(field: &'static str, value: &str, len: usize) -> Result<String, LdsError> {
    let value = value.trim().to_ascii_uppercase();
    if value.len() > len {
        return Err(LdsError::field(
            field,
            format!("longer than {len} characters"),
        ));
    }
    if let Some(bad) = value.chars().find(|c| !c.is_ascii_alphanumeric()) {
        return Err(LdsError::field(
            field,
            format!("character {bad:?} not allowed in the MRZ"),
        ));
    }
    Ok(format!("{value:<<len$}"))
}

fn name_part(field: &'static str, value: &str) -> Result<String, LdsError> {
    let mut words = Vec::new();
    for word in value.split([' ', '-']).filter(|w| !w.is_empty()) {
        let word = word.to_ascii_uppercase();
        if let Some(bad) = word.chars().find(|c| !c.is_ascii_uppercase()) {
            return Err(LdsError::field(
                field,
                format!("character {bad:?}: the MRZ takes Latin A-Z only (transliterate first)"),
            ));
        }
        words.push(word);
    }
    Ok(words.join("<"))
}

/// Builds the 90-character TD1 zone.
pub fn build_zone(person: &PersonalData, doc: &DocumentData) -> Result<String, LdsError> {
    let state = mrz_field("issuing state", &doc.issuing_state, 3)?;
    let number = mrz_field("document number", &doc.document_number, 9)?;
    if doc.document_number.trim().is_empty() {
        return Err(LdsError::field("document number", "empty"));
    }
    let optional1 = mrz_field("personal number", &person.personal_number, 15)?;
    let line1 = format!(
        "{DOCUMENT_CODE}{state}{number}{}{optional1}",
        digit_char(&number)
    );
    let birth = person.birth_date.yymmdd();
    let expiry = doc.date_of_expiry.yymmdd();
    let nationality = mrz_field("nationality", &person.nationality, 3)?;
    let optional2 = "<".repeat(11);
    let mut line2 = format!(
        "{birth}{}{}{expiry}{}{nationality}{optional2}",
        digit_char(&birth),
        person.sex.mrz_char(),
        digit_char(&expiry)
    );
    let composite = format!(
        "{}{}{}{}",
        &line1[5..30],
        &line2[..7],
        &line2[8..15],
        &line2[18..29]
    );
    line2.push(digit_char(&composite));
    let surname = name_part("surname (Latin)", &person.surname_latin)?;
    if surname.is_empty() {
        return Err(LdsError::field("surname (Latin)", "empty"));
    }
    let given = name_part("given names (Latin)", &person.given_names_latin)?;
    let mut line3 = format!("{surname}<<{given}");
    // ICAO 9303-3 §4.6: names too long are truncated.
    line3.truncate(LINE_LEN);
    let line3 = format!("{line3:<<LINE_LEN$}");
    Ok(format!("{line1}{line2}{line3}"))
}

/// Builds DG1 for the holder and the document.
pub fn build_dg1(person: &PersonalData, doc: &DocumentData) -> Result<Vec<u8>, LdsError> {
    let zone = build_zone(person, doc)?;
    Ok(Tlv::constructed(
        Tag(0x61),
        vec![Tlv::primitive(Tag(0x5F1F), zone.into_bytes())],
    )
    .encode())
}

fn unfill(s: &str) -> String {
    s.trim_end_matches('<').replace('<', " ")
}

/// Parses a 90-character TD1 zone and checks every check digit.
pub fn parse_zone(zone: &str) -> Result<Mrz, LdsError> {
    const WHAT: &str = "DG1";
    if zone.len() != 3 * LINE_LEN
        || !zone
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'<')
    {
        return Err(LdsError::malformed(
            WHAT,
            "the zone is not 90 characters of A-Z, 0-9 and <",
        ));
    }
    let (line1, rest) = zone.split_at(LINE_LEN);
    let (line2, line3) = rest.split_at(LINE_LEN);
    let check = |what: &str, data: &str, digit: &str| -> Result<(), LdsError> {
        let expected = check_digit(data).map(|d| char::from(b'0' + d).to_string());
        if expected.as_deref() != Some(digit) {
            return Err(LdsError::malformed(
                WHAT,
                format!(
                    "check digit of the {what} is {digit}, expected {}",
                    expected.unwrap_or_default()
                ),
            ));
        }
        Ok(())
    };
    check("document number", &line1[5..14], &line1[14..15])?;
    check("date of birth", &line2[..6], &line2[6..7])?;
    check("date of expiry", &line2[8..14], &line2[14..15])?;
    let composite = format!(
        "{}{}{}{}",
        &line1[5..30],
        &line2[..7],
        &line2[8..15],
        &line2[18..29]
    );
    check("zone (composite)", &composite, &line2[29..30])?;
    // Birth dates never lie in the future: years above the current two-digit year are 19xx.
    let birth_date = Date::parse_yymmdd(&line2[..6], 30)
        .ok_or_else(|| LdsError::malformed(WHAT, "invalid date of birth"))?;
    let expiry_date = Date::parse_yymmdd(&line2[8..14], 99)
        .ok_or_else(|| LdsError::malformed(WHAT, "invalid date of expiry"))?;
    let sex = Sex::from_mrz_char(line2.as_bytes()[7] as char)
        .ok_or_else(|| LdsError::malformed(WHAT, "invalid sex"))?;
    let (surname, given) = line3.split_once("<<").unwrap_or((line3, ""));
    Ok(Mrz {
        document_code: unfill(&line1[..2]),
        issuing_state: unfill(&line1[2..5]),
        document_number: unfill(&line1[5..14]),
        optional_data: unfill(&line1[15..30]),
        birth_date,
        sex,
        expiry_date,
        nationality: unfill(&line2[15..18]),
        surname: unfill(surname),
        given_names: unfill(given),
        zone: zone.to_string(),
    })
}

/// Parses and validates DG1.
pub fn parse_dg1(bytes: &[u8]) -> Result<Mrz, LdsError> {
    let dg1 = decode_outer(bytes, 0x61, "DG1")?;
    let zone = required(&dg1, 0x5F1F, "DG1")?;
    let zone =
        std::str::from_utf8(zone).map_err(|_| LdsError::malformed("DG1", "zone is not ASCII"))?;
    parse_zone(zone)
}
