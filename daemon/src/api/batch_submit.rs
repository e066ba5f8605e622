//! `batch.submit`: journals a batch of applicant records and runs it in the background.
//!
//! Request: `{"method":"batch.submit","params":{"records":[{...},{...}],"readers":["sim:0"]}}`
//! (`readers` defaults to every configured reader; simulated readers take fresh cards from the
//! state directory's hopper). Reply: `{"batch_id":"B..","records":2,"readers":["sim:0"]}`.
//! Progress follows on the PUB socket (`batch.progress`, `card.personalized`,
//! `batch.finished`); `batch.status` and `batch.report` answer from the journal.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;
use issuance::batch;

/// Parameters of `batch.submit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Applicant records (JSON objects).
    records: Vec<Value>,
    /// Readers to spread them over (configured names).
    #[serde(default)]
    readers: Option<Vec<String>>,
}

/// Journals the records as a new batch and starts it.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    if p.records.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidParams, "records is empty"));
    }
    let configured = svc.readers.names();
    let readers = p.readers.unwrap_or_else(|| configured.clone());
    if let Some(bad) = readers.iter().find(|r| !configured.contains(r)) {
        return Err(ApiError::new(
            ErrorCode::ReaderNotFound,
            format!("no reader {bad:?} is configured"),
        ));
    }
    if readers.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidParams, "no readers"));
    }
    if !svc.batches.can_personalize() {
        return Err(ApiError::internal(
            "no Document Signer configured: personalization is refused",
        ));
    }
    // A record that is not an object is kept: QC rejects it as malformed_record.
    let records: Vec<(String, String)> = p
        .records
        .iter()
        .map(|r| (r.to_string(), String::new()))
        .collect();
    let id = batch::submit(
        svc.batches.journal(),
        "api:batch.submit",
        &readers,
        &records,
    )
    .map_err(issuance::Error::from)?;
    svc.batches
        .start(&id, readers.clone(), svc.events.clone())?;
    Ok(Reply::json(json!({
        "batch_id": id,
        "records": records.len(),
        "readers": readers,
    })))
}
