//! DG11 (additional personal details, ICAO 9303-10 §4.7.11, tag `6B`) and DG12 (additional
//! document details, §4.7.12, tag `6C`). Text is UTF-8; full dates are `YYYYMMDD`. Each group
//! starts with a tag list (`5C`) naming the elements present, and the parsers check that list
//! against the elements found.

use apdu::tlv::{Tag, Tlv};

use super::{
    decode_outer, optional_text, parse_tag_list, required, tag_list, Date, DocumentData, LdsError,
    PersonalData,
};

/// DG11 full name (`primary<<secondary`, national characters).
const FULL_NAME: u32 = 0x5F0E;
/// DG11 other names template; each name is a `5F0F` after a `02` count.
const OTHER_NAMES: u32 = 0xA0;
/// DG11 one other name.
const OTHER_NAME: u32 = 0x5F0F;
/// DG11 personal number.
const PERSONAL_NUMBER: u32 = 0x5F10;
/// DG11 full date of birth.
const FULL_BIRTH_DATE: u32 = 0x5F2B;
/// DG11 place of birth.
const PLACE_OF_BIRTH: u32 = 0x5F11;
/// DG11 personal summary (this profile: the father's name).
const PERSONAL_SUMMARY: u32 = 0x5F15;
/// DG12 issuing authority.
const ISSUING_AUTHORITY: u32 = 0x5F19;
/// DG12 date of issue.
const DATE_OF_ISSUE: u32 = 0x5F26;

/// DG11's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalDetails {
    /// Surname (national characters).
    pub surname: String,
    /// Given names (national characters).
    pub given_names: String,
    /// Other names.
    pub other_names: Vec<String>,
    /// Personal number (national code).
    pub personal_number: String,
    /// Full date of birth.
    pub birth_date: Date,
    /// Place of birth.
    pub place_of_birth: Option<String>,
    /// Father's name (personal summary).
    pub father_name: Option<String>,
}

/// DG12's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentDetails {
    /// Issuing authority.
    pub issuing_authority: String,
    /// Date of issue.
    pub date_of_issue: Date,
}

fn with_tag_list(outer: u32, elements: Vec<Tlv>) -> Vec<u8> {
    let tags: Vec<u32> = elements.iter().map(|e| e.tag.0).collect();
    let mut children = vec![Tlv::primitive(Tag(0x5C), tag_list(&tags))];
    children.extend(elements);
    Tlv::constructed(Tag(outer), children).encode()
}

fn text(tag: u32, s: &str) -> Tlv {
    Tlv::primitive(Tag(tag), s.as_bytes())
}

/// Builds DG11.
pub fn build_dg11(person: &PersonalData) -> Result<Vec<u8>, LdsError> {
    if person.surname.trim().is_empty() {
        return Err(LdsError::field("surname", "empty"));
    }
    if person.surname.contains("<<") || person.given_names.contains("<<") {
        return Err(LdsError::field("name", "contains the separator <<"));
    }
    if person.personal_number.is_empty()
        || !person.personal_number.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(LdsError::field("personal number", "not digits"));
    }
    let mut e = vec![text(
        FULL_NAME,
        &format!("{}<<{}", person.surname.trim(), person.given_names.trim()),
    )];
    if !person.other_names.is_empty() {
        let count = u8::try_from(person.other_names.len())
            .map_err(|_| LdsError::field("other names", "more than 255"))?;
        let mut names = vec![Tlv::primitive(Tag(0x02), [count])];
        names.extend(person.other_names.iter().map(|n| text(OTHER_NAME, n)));
        e.push(Tlv::constructed(Tag(OTHER_NAMES), names));
    }
    e.push(text(PERSONAL_NUMBER, &person.personal_number));
    e.push(text(FULL_BIRTH_DATE, &person.birth_date.yyyymmdd()));
    if !person.place_of_birth.is_empty() {
        e.push(text(PLACE_OF_BIRTH, &person.place_of_birth));
    }
    if !person.father_name.is_empty() {
        e.push(text(PERSONAL_SUMMARY, &person.father_name));
    }
    Ok(with_tag_list(0x6B, e))
}

/// Checks that the tag list names exactly the elements present (besides itself).
fn check_tag_list(group: &Tlv, what: &'static str) -> Result<(), LdsError> {
    let listed = parse_tag_list(required(group, 0x5C, what)?, what)?;
    let present: Vec<u32> = group
        .children()
        .iter()
        .map(|c| c.tag.0)
        .filter(|&t| t != 0x5C)
        .collect();
    let mut a = listed.clone();
    let mut b = present.clone();
    a.sort_unstable();
    b.sort_unstable();
    if a != b {
        return Err(LdsError::malformed(
            what,
            format!("tag list {listed:X?} does not match the elements {present:X?}"),
        ));
    }
    Ok(())
}

/// Parses and validates DG11.
pub fn parse_dg11(bytes: &[u8]) -> Result<PersonalDetails, LdsError> {
    const WHAT: &str = "DG11";
    let dg = decode_outer(bytes, 0x6B, WHAT)?;
    check_tag_list(&dg, WHAT)?;
    let full = optional_text(&dg, FULL_NAME, WHAT)?
        .ok_or_else(|| LdsError::malformed(WHAT, "missing full name 5F0E"))?;
    let (surname, given_names) = full.split_once("<<").unwrap_or((&full, ""));
    let mut other_names = Vec::new();
    if let Some(names) = dg.children().iter().find(|c| c.tag == Tag(OTHER_NAMES)) {
        let count = required(names, 0x02, WHAT)?;
        for n in names.children().iter().filter(|c| c.tag == Tag(OTHER_NAME)) {
            let n = n.as_bytes().unwrap_or_default();
            other_names.push(
                String::from_utf8(n.to_vec())
                    .map_err(|_| LdsError::malformed(WHAT, "other name is not UTF-8"))?,
            );
        }
        if count != [other_names.len() as u8] {
            return Err(LdsError::malformed(
                WHAT,
                "other names count does not match",
            ));
        }
    }
    let personal_number = optional_text(&dg, PERSONAL_NUMBER, WHAT)?
        .ok_or_else(|| LdsError::malformed(WHAT, "missing personal number 5F10"))?;
    let birth = optional_text(&dg, FULL_BIRTH_DATE, WHAT)?
        .ok_or_else(|| LdsError::malformed(WHAT, "missing date of birth 5F2B"))?;
    let birth_date = Date::parse_yyyymmdd(&birth)
        .ok_or_else(|| LdsError::malformed(WHAT, format!("invalid date of birth {birth:?}")))?;
    Ok(PersonalDetails {
        surname: surname.to_string(),
        given_names: given_names.to_string(),
        other_names,
        personal_number,
        birth_date,
        place_of_birth: optional_text(&dg, PLACE_OF_BIRTH, WHAT)?,
        father_name: optional_text(&dg, PERSONAL_SUMMARY, WHAT)?,
    })
}

/// Builds DG12.
pub fn build_dg12(doc: &DocumentData) -> Result<Vec<u8>, LdsError> {
    if doc.issuing_authority.trim().is_empty() {
        return Err(LdsError::field("issuing authority", "empty"));
    }
    Ok(with_tag_list(
        0x6C,
        vec![
            text(ISSUING_AUTHORITY, &doc.issuing_authority),
            text(DATE_OF_ISSUE, &doc.date_of_issue.yyyymmdd()),
        ],
    ))
}

/// Parses and validates DG12.
pub fn parse_dg12(bytes: &[u8]) -> Result<DocumentDetails, LdsError> {
    const WHAT: &str = "DG12";
    let dg = decode_outer(bytes, 0x6C, WHAT)?;
    check_tag_list(&dg, WHAT)?;
    let issuing_authority = optional_text(&dg, ISSUING_AUTHORITY, WHAT)?
        .ok_or_else(|| LdsError::malformed(WHAT, "missing issuing authority 5F19"))?;
    let issue = optional_text(&dg, DATE_OF_ISSUE, WHAT)?
        .ok_or_else(|| LdsError::malformed(WHAT, "missing date of issue 5F26"))?;
    let date_of_issue = Date::parse_yyyymmdd(&issue)
        .ok_or_else(|| LdsError::malformed(WHAT, format!("invalid date of issue {issue:?}")))?;
    Ok(DocumentDetails {
        issuing_authority,
        date_of_issue,
    })
}
