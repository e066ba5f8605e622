//! `dispatch.receive`: the office scans in the cards of a dispatch. Cards of the manifest become
//! `received` (status lookup: `ready_for_pickup` at the office; event `card.ready_for_pickup`
//! `{"tracking_code","serial","office"}` per card, what an SMS gateway tells the applicant);
//! the reply reports what is missing and what was not expected.
//!
//! Request: `{"method":"dispatch.receive","params":{"dispatch_id":"D1796..-1a2b",
//! "serials":["3F00A1B2C3D4E5F6"],"office":"THR-12"}}` (`office` defaults to the station's
//! `[delivery] office`).
//! Reply: `{"dispatch_id","office","received":[{"serial","tracking_code","document_number"}],
//! "already_received":[serial],"missing":[serial],"unexpected":[serial]}`.
//! Errors: `not_found` (no such dispatch), `wrong_office` (sent to another office: nothing
//! changes), `invalid_params` (no office given or configured).

use serde::Deserialize;
use serde_json::json;

use super::dispatch_create::MAX_DISPATCH_CARDS;
use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;
use issuance::journal::JournalError;

/// Parameters of `dispatch.receive`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The dispatch.
    dispatch_id: String,
    /// The serials scanned in.
    serials: Vec<String>,
    /// The receiving office (default: this station's).
    #[serde(default)]
    office: Option<String>,
}

/// Journals the receipt.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    super::identifier("dispatch_id", &p.dispatch_id, 64)?;
    let office = p
        .office
        .or_else(|| svc.config.delivery.office.clone())
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParams,
                "give office (this station has no [delivery] office)",
            )
        })?;
    super::identifier("office", &office, 32)?;
    if p.serials.len() > MAX_DISPATCH_CARDS {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!("at most {MAX_DISPATCH_CARDS} serials"),
        ));
    }
    let mut serials = Vec::with_capacity(p.serials.len());
    for s in &p.serials {
        super::identifier("serial", s, 16)?;
        serials.push(s.to_ascii_uppercase());
    }
    let receipt = svc
        .batches
        .journal()
        .receive_dispatch(&p.dispatch_id, &office, &serials)
        .map_err(|e| match e {
            JournalError::WrongOffice(m) => ApiError::new(ErrorCode::WrongOffice, m),
            other => issuance::Error::from(other).into(),
        })?;
    svc.audit
        .append(
            "received",
            json!({"dispatch_id": receipt.dispatch_id, "office": receipt.office,
                   "received": receipt.received.iter().map(|c| &c.serial).collect::<Vec<_>>(),
                   "missing": receipt.missing, "unexpected": receipt.unexpected}),
        )
        .map_err(|e| issuance::Error::internal(format!("audit log: {e}")))?;
    for card in &receipt.received {
        svc.events.publish(
            "card.ready_for_pickup",
            json!({"tracking_code": card.tracking_code, "serial": card.serial,
                   "office": receipt.office}),
        );
    }
    Ok(Reply::json(
        serde_json::to_value(&receipt).unwrap_or_default(),
    ))
}
