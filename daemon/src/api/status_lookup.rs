//! `status.lookup`: where an applicant's card is, as the issuing authority's status service
//! answers it: by tracking code, or by national code + birth-certificate serial + birth date
//! (Solar Hijri `YYYY-MM-DD`).
//!
//! Request: `{"method":"status.lookup","params":{"tracking_code":"NID-0001"}}` or
//! `{"params":{"national_code":"0012345679","birth_certificate_serial":"12-345678",
//! "birth_date":"1370-01-01"}}`.
//! Reply: `{"matches":[{"tracking_code":"NID-0001","status":"produced","detail":null,
//! "updated_at_ms":...}]}`. Statuses: `in_production`, `rejected` (data QC; `detail` lists the
//! field paths and codes), `failed`, `produced` (personalized, on its way), `delivered`,
//! `dispatched` (`detail.office`), `ready_for_pickup` (received at `detail.office`),
//! `superseded` (a newer card of the holder was delivered), `revoked` (reported lost or
//! stolen; `detail.reason`), `terminated` (cancelled on the chip), `expired` (past its date of
//! expiry). No personal data comes back; nothing found is `not_found`.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;
use issuance::journal::{CardState, RecordRow, RecordState};

/// Parameters of `status.lookup`: a tracking code, or the three identity fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    #[serde(default)]
    tracking_code: Option<String>,
    #[serde(default)]
    national_code: Option<String>,
    #[serde(default)]
    birth_certificate_serial: Option<String>,
    #[serde(default)]
    birth_date: Option<String>,
}

/// The public status of a journal row on `today` (`YYYYMMDD`).
fn status(r: &RecordRow, today: &str) -> (&'static str, Value) {
    let expired = r.card_expiry.as_deref().is_some_and(|d| d < today);
    match (r.state, r.card_state) {
        (RecordState::Personalized, Some(CardState::Terminated)) => ("terminated", Value::Null),
        (RecordState::Personalized, Some(CardState::Superseded)) => ("superseded", Value::Null),
        (RecordState::Personalized, Some(CardState::Revoked)) => {
            ("revoked", json!({"reason": r.card_reason}))
        }
        (RecordState::Personalized, _) if expired => ("expired", Value::Null),
        (RecordState::Personalized, Some(CardState::Dispatched)) => {
            ("dispatched", json!({"office": r.card_office}))
        }
        (RecordState::Personalized, Some(CardState::Received)) => {
            ("ready_for_pickup", json!({"office": r.card_office}))
        }
        (RecordState::Personalized, Some(CardState::Delivered)) => ("delivered", Value::Null),
        (RecordState::Personalized, _) => ("produced", Value::Null),
        (RecordState::QcFailed, _) => (
            "rejected",
            r.qc_issues
                .as_ref()
                .and_then(Value::as_array)
                .map(|issues| {
                    issues
                        .iter()
                        .map(|i| json!({"path": i["path"], "code": i["code"]}))
                        .collect::<Vec<_>>()
                        .into()
                })
                .unwrap_or(Value::Null),
        ),
        (RecordState::Failed, _) => ("failed", Value::Null),
        _ => ("in_production", Value::Null),
    }
}

/// Longest lookup field accepted, in characters.
const MAX_LOOKUP_CHARS: usize = 64;

/// Looks the applicant up in the journal.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    // Bounded before they are looked up or quoted (issue 18): tracking codes are at most 40
    // characters (QC refuses longer ones), identity fields far shorter.
    for (field, value) in [
        ("tracking_code", &p.tracking_code),
        ("national_code", &p.national_code),
        ("birth_certificate_serial", &p.birth_certificate_serial),
        ("birth_date", &p.birth_date),
    ] {
        if let Some(v) = value {
            if v.chars().count() > MAX_LOOKUP_CHARS {
                return Err(ApiError::new(
                    ErrorCode::InvalidParams,
                    format!("{field} is longer than {MAX_LOOKUP_CHARS} characters"),
                ));
            }
        }
    }
    let journal = svc.batches.journal();
    let rows = match (
        &p.tracking_code,
        &p.national_code,
        &p.birth_certificate_serial,
        &p.birth_date,
    ) {
        (Some(code), None, None, None) => journal.lookup_tracking(code.trim()),
        (None, Some(n), Some(s), Some(d)) => journal.lookup_identity(n.trim(), s.trim(), d.trim()),
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                "give tracking_code, or national_code + birth_certificate_serial + birth_date",
            ))
        }
    }
    .map_err(issuance::Error::from)?;
    if rows.is_empty() {
        return Err(ApiError::new(ErrorCode::NotFound, "no application matches"));
    }
    let today = super::document_status::today();
    let matches: Vec<Value> = rows
        .iter()
        .map(|r| {
            let (status, detail) = status(r, &today);
            json!({
                "tracking_code": r.tracking_code,
                "status": status,
                "detail": detail,
                "updated_at_ms": r.updated_at_ms,
            })
        })
        .collect();
    Ok(Reply::json(json!({ "matches": matches })))
}
