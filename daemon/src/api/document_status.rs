//! `document.status`: is this card valid? For verifiers (a bank, a border post) holding a card,
//! by its document number. Nothing personal comes back: not the holder, not the tracking code,
//! not the serial.
//!
//! Request: `{"method":"document.status","params":{"document_number":"D00000042"}}`
//! Reply: `{"document_number":"D00000042","status":"valid"}`. Statuses: `valid` (delivered and
//! usable), `not_delivered` (made, not yet handed to its holder: not valid in anyone's hands),
//! `revoked` (reported lost or stolen, or terminated), `superseded` (a newer card of the same
//! holder was delivered), `expired` (past its date of expiry), `unknown` (this issuer's journal
//! has no such document).

use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Call, Reply};
use crate::service::Service;
use issuance::journal::{CardRow, CardState};

/// Parameters of `document.status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The document number printed on the card and in its MRZ (at most 9 characters A-Z 0-9).
    document_number: String,
}

/// Longest document number accepted (ICAO 9303: 9 characters; some issuers extend it).
const MAX_DOCUMENT_NUMBER: usize = 20;

/// Today as `YYYYMMDD` (UTC), what card expiry dates are compared with.
pub fn today() -> String {
    let t = issuance::applicant::calendar::GregorianDate::today_utc();
    format!("{:04}{:02}{:02}", t.year, t.month, t.day)
}

/// The verifier-facing status of a card on `today` (`YYYYMMDD`).
pub fn verdict(card: &CardRow, today: &str) -> &'static str {
    match card.state {
        CardState::Revoked | CardState::Terminated => "revoked",
        CardState::Superseded => "superseded",
        _ if card.expired(today) => "expired",
        CardState::Delivered => "valid",
        CardState::Personalized
        | CardState::Dispatched
        | CardState::Received
        | CardState::Writing
        | CardState::Spoiled => "not_delivered",
    }
}

/// Answers the status of the document, and nothing else.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    let number = p.document_number.trim().to_ascii_uppercase();
    super::identifier("document_number", &number, MAX_DOCUMENT_NUMBER)?;
    let card = svc
        .batches
        .journal()
        .card_by_document(&number)
        .map_err(issuance::Error::from)?;
    let status = card.as_ref().map_or("unknown", |c| verdict(c, &today()));
    Ok(Reply::json(json!({
        "document_number": number,
        "status": status,
    })))
}
