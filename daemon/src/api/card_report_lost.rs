//! `card.report_lost`: the holder reports the card lost or stolen. The chip is out of reach, so
//! the card is revoked in the journal: the status lookup says `revoked`, the document-status
//! check says `revoked`, delivery refuses it, and the next application of the same person for
//! the same kind is a reissue whose delivery supersedes nothing usable. Audited as `revoked`;
//! event `card.revoked` (`{"tracking_code", "serial", "reason"}`) for the SMS gateway.
//!
//! Request: `{"method":"card.report_lost","params":{"document_number":"D00000042",
//! "reason":"lost"}}` (or `"serial"` instead of `"document_number"`).
//! Reply: `{"serial":"3F00A1B2C3D4E5F6","state":"revoked","reason":"lost"}`.
//! Errors: `not_found` (no such card), `wrong_card_state` (already revoked, terminated or
//! superseded), `invalid_params`.

use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;
use issuance::journal::JournalError;

/// Why the card is reported.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Reason {
    Lost,
    Stolen,
}

/// Parameters of `card.report_lost`: the card by serial or by document number.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    serial: Option<String>,
    #[serde(default)]
    document_number: Option<String>,
    reason: Reason,
}

/// Revokes the card in the journal.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    let journal = svc.batches.journal();
    let card = match (&p.serial, &p.document_number) {
        (Some(serial), None) => {
            super::identifier("serial", serial, 16)?;
            journal.card(&serial.to_ascii_uppercase())
        }
        (None, Some(doc)) => {
            super::identifier("document_number", doc, 20)?;
            journal.card_by_document(&doc.to_ascii_uppercase())
        }
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                "give serial or document_number",
            ))
        }
    }
    .map_err(issuance::Error::from)?
    .ok_or_else(|| ApiError::new(ErrorCode::NotFound, "no such card in this journal"))?;
    let reason = match p.reason {
        Reason::Lost => "lost",
        Reason::Stolen => "stolen",
    };
    journal.revoke(&card.serial, reason).map_err(|e| match e {
        JournalError::Conflict(m) => ApiError::new(ErrorCode::WrongCardState, m),
        other => issuance::Error::from(other).into(),
    })?;
    svc.audit
        .append(
            "revoked",
            json!({"serial": card.serial, "tracking_code": card.tracking_code, "reason": reason}),
        )
        .map_err(|e| issuance::Error::internal(format!("audit log: {e}")))?;
    svc.events.publish(
        "card.revoked",
        json!({"serial": card.serial, "tracking_code": card.tracking_code, "reason": reason}),
    );
    Ok(Reply::json(json!({
        "serial": card.serial,
        "state": "revoked",
        "reason": reason,
    })))
}
