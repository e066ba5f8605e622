//! Step 1, `delivery.begin`: read and authenticate the card, open a session.

use std::time::{Instant, SystemTime};

use apdu::fcp::LifeCycle;
use matcher::compare::prepare;
use serde::Serialize;
use serde_json::{json, Value};

use super::{
    date, db_error, journal, lcs_name, read, set_journal_state, CardRecord, ChipTemplate, Desk,
    Timing,
};
use crate::error::{Error, ErrorKind};
use crate::lds;

/// The holder as the operator sees it at begin.
#[derive(Debug, Clone, Serialize)]
pub struct HolderSummary {
    /// Document number (DG1).
    pub document_number: String,
    /// Surname in Latin characters (DG1 MRZ).
    pub surname_latin: String,
    /// Given names in Latin characters (DG1 MRZ).
    pub given_names_latin: String,
    /// Surname in national characters (DG11), when present.
    pub surname: Option<String>,
    /// Given names in national characters (DG11), when present.
    pub given_names: Option<String>,
    /// Date of birth, YYYY-MM-DD (DG11 full date when present, else the MRZ).
    pub birth_date: String,
    /// Date of expiry, YYYY-MM-DD (MRZ).
    pub expiry_date: String,
    /// Sex (MRZ character).
    pub sex: String,
    /// Nationality (MRZ).
    pub nationality: String,
    /// Finger positions the card holds templates for (ISO/IEC 19794-2: 1-5 right thumb to
    /// little, 6-10 left; 0 unknown).
    pub fingers: Vec<u8>,
    /// The face image (DG2), when present: format and size; the bytes travel in binary
    /// frame 0 of the reply.
    pub face: Option<FaceSummary>,
}

/// The face image's description (the bytes are a reply frame).
#[derive(Debug, Clone, Serialize)]
pub struct FaceSummary {
    /// `jpeg` or `jpeg2000`.
    pub format: &'static str,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Bytes of the encoded image.
    pub bytes: usize,
    /// Index of the binary frame that carries it.
    pub frame: usize,
}

/// What `delivery.begin` answers.
#[derive(Debug, Serialize)]
pub struct BeginResult {
    /// The delivery session for verify and activate.
    pub session: String,
    /// The reader.
    pub reader: String,
    /// Card serial (hex).
    pub serial: String,
    /// The holder.
    pub holder: HolderSummary,
    /// Passive authentication: who signed, which data groups were checked.
    pub passive_auth: Value,
    /// Verification attempts left on this card.
    pub attempts_left: u32,
    /// An earlier activation of this card was interrupted: activate completes it.
    pub activation_pending: bool,
    /// Time split.
    pub timing_ms: Timing,
}

/// The face image bytes to send as reply frame 0, if any.
pub type FaceFrame = Option<Vec<u8>>;

/// Reads and authenticates the card in `reader` and opens a delivery session.
pub fn begin(desk: &Desk<'_>, reader: &str) -> Result<(BeginResult, FaceFrame), Error> {
    let started = Instant::now();
    let delivery = &desk.delivery;
    let audit = desk.audit;
    let mut timing = Timing::default();
    let (serial, lcs, files) = desk.readers.with_card(reader, |card| {
        let lcs = card.open_application()?;
        let serial = hex::encode_upper(card.serial()?);
        let files = if lcs == LifeCycle::Deactivated {
            let mut session = card.authenticate_terminal(desk.keys.as_ref())?;
            Some(read::read_files(&mut session)?)
        } else {
            None
        };
        Ok((serial, lcs, files))
    })?;
    timing.card_io = read::ms_since(started);
    let record = delivery.store.card(&serial).map_err(db_error)?;
    let Some(files) = files else {
        return Err(refuse_state(desk, &serial, lcs, &record, None)?);
    };
    refuse_unusable(desk, &serial, reader)?;

    let pa_start = Instant::now();
    let trust = read::load_trust(desk.trust)?;
    let pa = read::passive_auth(&files, &trust, SystemTime::now());
    timing.passive_auth = read::ms_since(pa_start);
    let pa = match pa {
        Ok(pa) => pa,
        Err(e) => {
            let reason = e
                .data
                .as_ref()
                .and_then(|d| d.get("reason").cloned())
                .unwrap_or(Value::Null);
            journal(
                audit,
                "delivery.pa_failed",
                json!({"serial": serial, "reader": reader, "reason": reason}),
            )?;
            return Err(e);
        }
    };

    let summary_start = Instant::now();
    let (holder, face, templates) = summarize(&files)?;
    timing.extraction = read::ms_since(summary_start);
    delivery
        .store
        .set_document_number(&serial, &holder.document_number)
        .map_err(db_error)?;
    let session = delivery.sessions.open(
        reader,
        &serial,
        &holder.document_number,
        templates,
        desk.policy.session_ttl,
    )?;
    journal(
        audit,
        "delivery.begin",
        json!({
            "session": session,
            "serial": serial,
            "reader": reader,
            "document_number": holder.document_number,
            "pa": "ok",
            "ds": pa.ds_subject,
        }),
    )?;
    let max = desk.policy.max_attempts;
    timing.finish(started);
    Ok((
        BeginResult {
            session,
            reader: reader.to_string(),
            serial,
            holder,
            passive_auth: json!({
                "ds_subject": pa.ds_subject,
                "csca_subject": pa.csca_subject,
                "checked": pa.checked,
            }),
            attempts_left: max.saturating_sub(record.failed_attempts),
            activation_pending: record.activation_pending.is_some(),
            timing_ms: timing,
        },
        face,
    ))
}

/// The refusal for a card that is not waiting for delivery. An activated card whose
/// activation was pending gets its journal completed first (the card finished, the answer
/// was lost).
pub(super) fn refuse_state(
    desk: &Desk<'_>,
    serial: &str,
    lcs: LifeCycle,
    record: &CardRecord,
    session: Option<&str>,
) -> Result<Error, Error> {
    if lcs == LifeCycle::Activated && record.activation_pending.is_some() {
        complete_recovered(desk, serial, record, session)?;
    }
    let (code, message) = match lcs {
        LifeCycle::Activated => (ErrorKind::AlreadyDelivered, "the card is already activated"),
        l if l.is_terminated() => (ErrorKind::CardTerminated, "the card is terminated"),
        _ => (
            ErrorKind::WrongCardState,
            "the card is not personalized (nothing to deliver)",
        ),
    };
    Ok(Error::new(code, message).with_data(json!({"serial": serial, "life_cycle": lcs_name(lcs)})))
}

/// Journals `delivered` for a card found activated while its activation was pending.
pub(super) fn complete_recovered(
    desk: &Desk<'_>,
    serial: &str,
    record: &CardRecord,
    session: Option<&str>,
) -> Result<(), Error> {
    desk.delivery
        .store
        .mark_delivered(serial)
        .map_err(db_error)?;
    set_journal_state(desk, serial, crate::journal::CardState::Delivered, None)?;
    journal(
        desk.audit,
        "delivered",
        json!({
            "serial": serial,
            "session": session.or(record.activation_pending.as_deref()),
            "document_number": record.document_number,
            "recovered": true,
        }),
    )?;
    desk.events.publish(
        "card.delivered",
        json!({"serial": serial, "recovered": true}),
    );
    Ok(())
}

/// Holder summary, face frame and prepared templates from the (authenticated) files.
pub(super) fn summarize(
    files: &read::ChipFiles,
) -> Result<(HolderSummary, FaceFrame, Vec<ChipTemplate>), Error> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        Error::new(
            ErrorKind::CardError,
            format!("{what} on the chip is unreadable: {e}"),
        )
    };
    let dg1 = files
        .data_group(1)
        .ok_or_else(|| Error::new(ErrorKind::CardError, "the card has no DG1"))?;
    let mrz = lds::mrz::parse_dg1(dg1).map_err(|e| bad("DG1", &e))?;
    let details = files
        .data_group(11)
        .map(lds::details::parse_dg11)
        .transpose()
        .map_err(|e| bad("DG11", &e))?;
    let face = files
        .data_group(2)
        .map(lds::biometric::parse_dg2)
        .transpose()
        .map_err(|e| bad("DG2", &e))?
        .and_then(|faces| faces.into_iter().next());
    let fingers = files
        .data_group(3)
        .map(lds::biometric::parse_dg3)
        .transpose()
        .map_err(|e| bad("DG3", &e))?
        .unwrap_or_default();
    let mut templates = Vec::with_capacity(fingers.len());
    for f in &fingers {
        let (_, record) =
            matcher::template::decode_any(&f.iso_record).map_err(|e| bad("a DG3 template", &e))?;
        for print in record.fingerprints() {
            templates.push(ChipTemplate {
                position: f.position,
                minutiae: print.minutiae.len(),
                extractor: f.idcardd_extractor().map(str::to_string),
                prepared: prepare(&print),
            });
        }
    }
    let mut positions: Vec<u8> = fingers.iter().map(|f| f.position).collect();
    positions.sort_unstable();
    positions.dedup();
    let face_summary = face.as_ref().map(|f| FaceSummary {
        format: match f.format {
            lds::ImageFormat::Jpeg => "jpeg",
            lds::ImageFormat::Jpeg2000 => "jpeg2000",
        },
        width: f.width,
        height: f.height,
        bytes: f.data.len(),
        frame: 0,
    });
    let birth_date = details
        .as_ref()
        .map(|d| d.birth_date)
        .unwrap_or(mrz.birth_date);
    let holder = HolderSummary {
        document_number: mrz.document_number.clone(),
        surname_latin: mrz.surname.clone(),
        given_names_latin: mrz.given_names.clone(),
        surname: details.as_ref().map(|d| d.surname.clone()),
        given_names: details.as_ref().map(|d| d.given_names.clone()),
        birth_date: date(birth_date),
        expiry_date: date(mrz.expiry_date),
        sex: mrz.sex.mrz_char().to_string(),
        nationality: mrz.nationality.clone(),
        fingers: positions,
        face: face_summary,
    };
    Ok((holder, face.map(|f| f.data), templates))
}

/// Refuses a card the production journal says must not be handed over: revoked (reported lost
/// or stolen), superseded by a newer card of the same holder, or expired. A card the journal
/// does not know (made elsewhere) is not refused here; passive authentication still applies.
fn refuse_unusable(desk: &Desk<'_>, serial: &str, reader: &str) -> Result<(), Error> {
    use crate::journal::CardState;
    let Some(card) = desk
        .journal
        .card(serial)
        .map_err(|e| Error::internal(format!("production journal: {e}")))?
    else {
        return Ok(());
    };
    let today = {
        let t = crate::applicant::calendar::GregorianDate::today_utc();
        format!("{:04}{:02}{:02}", t.year, t.month, t.day)
    };
    let (kind, why) = match card.state {
        CardState::Revoked | CardState::Terminated => (
            ErrorKind::CardRevoked,
            format!(
                "the card was revoked ({})",
                card.reason.as_deref().unwrap_or("cancelled")
            ),
        ),
        CardState::Superseded => (
            ErrorKind::CardSuperseded,
            "a newer card of this holder was delivered".to_string(),
        ),
        _ if card.expired(&today) => (ErrorKind::CardExpired, "the card has expired".to_string()),
        state => match &desk.policy.office {
            Some(office)
                if state != CardState::Received || card.office.as_deref() != Some(office) =>
            {
                (
                    ErrorKind::CardNotAtOffice,
                    format!(
                        "the card was not received at office {office} ({}{})",
                        state.as_str(),
                        card.office
                            .as_deref()
                            .map(|o| format!(", sent to {o}"))
                            .unwrap_or_default()
                    ),
                )
            }
            _ => return Ok(()),
        },
    };
    journal(
        desk.audit,
        "delivery.refused",
        json!({"serial": serial, "reader": reader, "reason": kind.name()}),
    )?;
    Err(Error::new(kind, why))
}
