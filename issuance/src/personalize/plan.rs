//! [`Plan`]: the files one card receives, built from a validated applicant, its profile and the
//! Document Signer, before any card is touched.

use apdu::layout;

use super::PersoError;
use crate::applicant::calendar::GregorianDate;
use crate::applicant::qc::{Gender, ValidatedApplicant};
use crate::lds::biometric::CREATOR_PREFIX;
use crate::lds::{self, Date, DocumentData, FaceImage, FingerTemplate, PersonalData, Sex};
use crate::pki::{self, DocumentSigner};
use crate::profile::Profile;

/// Issuing state and nationality of citizens' cards.
const ISSUING_STATE: &str = "IRN";
/// DG12 issuing authority (national characters).
const ISSUING_AUTHORITY: &str = "سازمان ثبت احوال کشور";
/// PUK length in digits (the card takes 8-12).
pub const PUK_DIGITS: usize = 10;

/// What the issuing side decides per card, kept in the journal so that a resumed card gets
/// exactly the same data groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Document number (MRZ, at most 9 characters A-Z 0-9), unique per card.
    pub document_number: String,
    /// Date of issue (DG12); the expiry follows from the profile's validity.
    pub date_of_issue: Date,
}

impl Issue {
    /// An issue dated today (UTC).
    pub fn today(document_number: impl Into<String>) -> Issue {
        let t = GregorianDate::today_utc();
        Issue {
            document_number: document_number.into(),
            date_of_issue: Date::new(t.year as u16, t.month, t.day)
                .unwrap_or(Date::new(2026, 1, 1).expect("a valid date")),
        }
    }
}

/// One elementary file of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFile {
    /// File identifier under the application DF.
    pub fid: u16,
    /// Short EF identifier (used to read it back without SELECT).
    pub sfi: u8,
    /// Data group number, `None` for EF.COM and EF.SOD.
    pub dg: Option<u8>,
    /// The file's contents.
    pub data: Vec<u8>,
}

/// Everything one personalization writes, in write order: EF.COM, the data groups ascending,
/// EF.SOD last (so a card that has a complete EF.SOD had all its data groups written first).
#[derive(Debug, Clone)]
pub struct Plan {
    /// The record's tracking code (for logs and the journal; not written to the card).
    pub tracking_code: String,
    /// The files, in write order.
    pub files: Vec<PlanFile>,
    /// Transport PIN length in digits, from the profile's PIN policy.
    pub transport_pin_len: usize,
    /// Whose card of which kind it is, and until when: what the card history keeps.
    pub holder: Holder,
}

/// Whose card a plan makes (issue 16): the person, the card kind, the expiry. Per person and
/// kind at most one card is usable at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// The person: the national code, or for a foreign resident without one
    /// `FR:<residence permit>:<birth date>:<gender>` (household members share the permit
    /// number; the record carries no foreign-national identifier of its own yet).
    pub person: String,
    /// The card kind: the profile's name.
    pub kind: String,
    /// Date of expiry (MRZ), `YYYYMMDD`.
    pub date_of_expiry: String,
    /// For kinds renewed per household: the household code, and whether this is the head.
    pub household: Option<(String, bool)>,
}

impl Holder {
    /// The person an applicant is (see [`Holder::person`]), if the record says.
    pub fn person_of(applicant: &ValidatedApplicant) -> Option<String> {
        let r = &applicant.record;
        match (&r.national_code, &r.foreign_resident) {
            (Some(code), _) if !code.trim().is_empty() => Some(code.trim().to_string()),
            (_, Some(f)) => Some(format!(
                "FR:{}:{}:{}",
                f.residence_permit_number.trim(),
                r.birth_date.trim(),
                r.gender.trim()
            )),
            _ => None,
        }
    }

    /// The holder of `applicant`'s card of `profile`'s kind issued by `issue`.
    fn of(
        applicant: &ValidatedApplicant,
        profile: &Profile,
        issue: &Issue,
    ) -> Result<Holder, PersoError> {
        Ok(Holder {
            person: Holder::person_of(applicant)
                .ok_or_else(|| PersoError::Plan("the record names no person".into()))?,
            kind: profile.name.clone(),
            date_of_expiry: expiry(issue.date_of_issue, profile)?.yyyymmdd(),
            household: profile.household.and_then(|_| {
                applicant
                    .record
                    .foreign_resident
                    .as_ref()
                    .map(|f| (f.household_code.trim().to_string(), f.household_head))
            }),
        })
    }
}

/// FID and SFI of data group `dg` (ICAO 9303-10: `01 0n`, SFI n).
pub fn dg_file(dg: u8) -> (u16, u8) {
    (layout::dg_fid(dg), dg)
}

/// The FID and the SFI the card profile gives it (the FID's low 5 bits: EF.COM 1E, EF.SOD 1D).
fn file_ids(fid: u16) -> (u16, u8) {
    (fid, layout::default_sfi(fid).unwrap_or(0))
}

impl Plan {
    /// Builds the LDS for `applicant` under `profile` (the data groups it lists) and signs
    /// EF.SOD with `signer`.
    pub fn build(
        applicant: &ValidatedApplicant,
        profile: &Profile,
        signer: &DocumentSigner,
        issue: &Issue,
    ) -> Result<Plan, PersoError> {
        let groups = build_data_groups(applicant, profile, issue)?;
        let refs: Vec<(u8, &[u8])> = groups.iter().map(|(n, d)| (*n, d.as_slice())).collect();
        let sod = pki::sign_sod(signer, &refs).map_err(|e| {
            if e.is_unavailable() {
                PersoError::KeyStoreUnavailable(e.to_string())
            } else {
                PersoError::Plan(e.to_string())
            }
        })?;
        Plan::assemble(applicant, profile, issue, groups, sod)
    }

    /// Like [`Plan::build`] but with an EF.SOD signed earlier (a resumed card): the SOD must
    /// verify over the rebuilt data groups against the signer's CSCA, else
    /// [`PersoError::Plan`].
    pub fn rebuild_with_sod(
        applicant: &ValidatedApplicant,
        profile: &Profile,
        signer: &DocumentSigner,
        issue: &Issue,
        sod: Vec<u8>,
    ) -> Result<Plan, PersoError> {
        let groups = build_data_groups(applicant, profile, issue)?;
        let refs: Vec<(u8, &[u8])> = groups.iter().map(|(n, d)| (*n, d.as_slice())).collect();
        pki::verify_sod(
            &sod,
            &refs,
            std::slice::from_ref(signer.csca()),
            std::time::SystemTime::now(),
        )
        .map_err(|e| PersoError::Plan(format!("the journal's EF.SOD no longer fits: {e}")))?;
        Plan::assemble(applicant, profile, issue, groups, sod)
    }

    /// The plan of `applicant`'s card: EF.COM, `groups`, `sod`, and whose card it is.
    fn assemble(
        applicant: &ValidatedApplicant,
        profile: &Profile,
        issue: &Issue,
        groups: Vec<(u8, Vec<u8>)>,
        sod: Vec<u8>,
    ) -> Result<Plan, PersoError> {
        let holder = Holder::of(applicant, profile, issue)?;
        let numbers: Vec<u8> = groups.iter().map(|(n, _)| *n).collect();
        let com = lds::com::build_com(&numbers).map_err(|e| PersoError::Plan(e.to_string()))?;
        let mut files = vec![PlanFile {
            fid: file_ids(layout::EF_COM).0,
            sfi: file_ids(layout::EF_COM).1,
            dg: None,
            data: com,
        }];
        for (dg, data) in groups {
            let (fid, sfi) = dg_file(dg);
            files.push(PlanFile {
                fid,
                sfi,
                dg: Some(dg),
                data,
            });
        }
        files.push(PlanFile {
            fid: file_ids(layout::EF_SOD).0,
            sfi: file_ids(layout::EF_SOD).1,
            dg: None,
            data: sod,
        });
        let pin = profile.pin;
        let transport_pin_len = 6usize
            .clamp(usize::from(pin.min_length), usize::from(pin.max_length))
            .clamp(4, 12);
        Ok(Plan {
            tracking_code: applicant.record.tracking_code.clone(),
            files,
            transport_pin_len,
            holder,
        })
    }

    /// The signed EF.SOD.
    pub fn sod(&self) -> &[u8] {
        self.files.last().map_or(&[], |f| f.data.as_slice())
    }

    /// The data groups (number, bytes), ascending, as passive authentication takes them.
    pub fn data_groups(&self) -> Vec<(u8, &[u8])> {
        self.files
            .iter()
            .filter_map(|f| f.dg.map(|dg| (dg, f.data.as_slice())))
            .collect()
    }

    /// The bytes of data group `dg`, if the plan has it.
    pub fn data_group(&self, dg: u8) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|f| f.dg == Some(dg))
            .map(|f| f.data.as_slice())
    }

    /// Bytes written by the plan.
    pub fn total_bytes(&self) -> usize {
        self.files.iter().map(|f| f.data.len()).sum()
    }
}

fn lds_err(e: lds::LdsError) -> PersoError {
    PersoError::Plan(e.to_string())
}

/// `date` plus `years` (29 February becomes 28 February in a common year).
/// The date of expiry of a card of `profile` issued on `issued`: the first of the profile's
/// fixed yearly date after it (household kinds), else `validity_years` later.
fn expiry(issued: Date, profile: &Profile) -> Result<Date, PersoError> {
    let Some(rule) = profile.household else {
        return add_years(issued, profile.validity_years);
    };
    let (month, day) = rule.expires_on;
    let this_year = Date::new(issued.year, month, day)
        .ok_or_else(|| PersoError::Plan(format!("no {month:02}-{day:02} in {}", issued.year)))?;
    if this_year > issued {
        Ok(this_year)
    } else {
        Date::new(issued.year + 1, month, day).ok_or_else(|| {
            PersoError::Plan(format!("no {month:02}-{day:02} after {}", issued.year))
        })
    }
}

fn add_years(date: Date, years: u32) -> Result<Date, PersoError> {
    let year = u32::from(date.year) + years;
    let year = u16::try_from(year).map_err(|_| PersoError::Plan("expiry year overflows".into()))?;
    Date::new(year, date.month, date.day)
        .or_else(|| Date::new(year, date.month, date.day - 1))
        .ok_or_else(|| PersoError::Plan(format!("no expiry date in {year}")))
}

/// The data groups the profile lists, built from the applicant.
fn build_data_groups(
    a: &ValidatedApplicant,
    profile: &Profile,
    issue: &Issue,
) -> Result<Vec<(u8, Vec<u8>)>, PersoError> {
    let r = &a.record;
    let g = a.birth_date_gregorian;
    let birth_date = u16::try_from(g.year)
        .ok()
        .and_then(|y| Date::new(y, g.month, g.day))
        .ok_or_else(|| PersoError::Plan(format!("birth date {g} outside 1900-2099")))?;
    let foreign = r.foreign_resident.as_ref();
    let personal_number = match (&a.national_code, foreign) {
        (Some(code), _) => code.digits().iter().map(|d| char::from(b'0' + d)).collect(),
        (None, Some(f)) => f
            .residence_permit_number
            .chars()
            .filter(char::is_ascii_digit)
            .collect(),
        (None, None) => String::new(),
    };
    let nationality = foreign
        .map(|f| f.nationality.to_ascii_uppercase())
        .unwrap_or_else(|| ISSUING_STATE.to_string());
    let person = PersonalData {
        surname: r.name.fa.last.trim().to_string(),
        given_names: r.name.fa.first.trim().to_string(),
        surname_latin: mrz_name(&r.name.latin.last),
        given_names_latin: mrz_name(&r.name.latin.first),
        other_names: Vec::new(),
        personal_number,
        birth_date,
        place_of_birth: String::new(),
        father_name: r.father_name.clone().unwrap_or_default().trim().to_string(),
        sex: match a.gender {
            Gender::Male => Sex::Male,
            Gender::Female => Sex::Female,
        },
        nationality,
    };
    let doc = DocumentData {
        document_number: issue.document_number.clone(),
        issuing_state: ISSUING_STATE.to_string(),
        date_of_issue: issue.date_of_issue,
        date_of_expiry: expiry(issue.date_of_issue, profile)?,
        issuing_authority: ISSUING_AUTHORITY.to_string(),
    };
    let mut out = Vec::new();
    for &dg in &profile.data_groups {
        let bytes = match dg {
            1 => lds::mrz::build_dg1(&person, &doc).map_err(lds_err)?,
            2 => {
                let jpeg = a
                    .face_jpeg
                    .as_deref()
                    .ok_or_else(|| PersoError::Plan("DG2 needs a face image".into()))?;
                let (width, height) = jpeg_size(jpeg)
                    .ok_or_else(|| PersoError::Plan("the face JPEG has no frame header".into()))?;
                lds::biometric::build_dg2(&FaceImage {
                    data: jpeg.to_vec(),
                    format: lds::ImageFormat::Jpeg,
                    width,
                    height,
                })
                .map_err(lds_err)?
            }
            3 => {
                let mut fingers = Vec::with_capacity(a.fingers.len());
                for f in &a.fingers {
                    // DG3 carries full ISO/IEC 19794-2 records whatever the profile's on-card
                    // comparison format is.
                    let iso_record = matcher::template::encode(
                        &f.fingerprint,
                        matcher::template::CardFormat::Record,
                    )
                    .map_err(|e| PersoError::Plan(format!("{} template: {e}", f.finger)))?;
                    fingers.push(FingerTemplate {
                        position: f.finger.iso_position(),
                        iso_record,
                        creator: f
                            .extractor
                            .as_ref()
                            .map(|name| format!("{CREATOR_PREFIX}{name}").into_bytes()),
                    });
                }
                lds::biometric::build_dg3(&fingers).map_err(lds_err)?
            }
            4 => {
                if a.iris.is_empty() {
                    return Err(PersoError::Plan("DG4 needs iris images".into()));
                }
                lds::iris::build_dg4(&a.iris).map_err(lds_err)?
            }
            11 => lds::details::build_dg11(&person).map_err(lds_err)?,
            12 => lds::details::build_dg12(&doc).map_err(lds_err)?,
            other => {
                return Err(PersoError::Plan(format!(
                    "profile {} lists DG{other}, which idcardd cannot build",
                    profile.name
                )))
            }
        };
        out.push((dg, bytes));
    }
    Ok(out)
}

/// A Latin name as the MRZ takes it: A-Z words; apostrophes and dots dropped, other
/// characters become word breaks.
fn mrz_name(name: &str) -> String {
    name.chars()
        .filter(|c| !matches!(c, '\'' | '.'))
        .map(|c| {
            if c.is_ascii_alphabetic() {
                c.to_ascii_uppercase()
            } else {
                ' '
            }
        })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Width and height from a JPEG's start-of-frame segment.
fn jpeg_size(jpeg: &[u8]) -> Option<(u16, u16)> {
    crate::lds::jpeg_frame(jpeg).map(|(w, h, _)| (w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mrz_names_are_upper_case_words() {
        assert_eq!(mrz_name("Ali-Reza O'Neil"), "ALI REZA ONEIL");
        assert_eq!(mrz_name("  "), "");
    }

    #[test]
    fn jpeg_size_reads_the_frame_header_and_survives_garbage() {
        let jpeg = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../fixtures/applicants/face-8x8.jpg"
        ))
        .unwrap();
        assert_eq!(jpeg_size(&jpeg), Some((8, 8)));
        assert_eq!(jpeg_size(&jpeg[..20]), None);
        assert_eq!(jpeg_size(&[0xFF, 0xD8, 0xFF, 0xC0, 0xFF, 0xFF]), None);
        assert_eq!(jpeg_size(&[]), None);
    }

    #[test]
    fn expiry_of_a_leap_day_issue_falls_on_28_february() {
        let d = Date::new(2028, 2, 29).unwrap();
        assert_eq!(add_years(d, 7).unwrap(), Date::new(2035, 2, 28).unwrap());
    }
}
