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
use crate::batch::{self, BatchError, RunSettings};
use crate::journal::JournalError;
use crate::service::Service;

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

/// The stable error for a batch or journal failure.
pub(crate) fn batch_error(e: BatchError) -> ApiError {
    match e {
        BatchError::Journal(JournalError::NotFound(what)) => {
            ApiError::new(ErrorCode::NotFound, format!("{what} not found"))
        }
        BatchError::Reader { .. } => ApiError::new(ErrorCode::CardError, e.to_string()),
        other => ApiError::internal(other.to_string()),
    }
}

/// Where runs keep their files and find the Document Signer.
pub(crate) fn run_settings(svc: &Service) -> RunSettings {
    RunSettings {
        state_dir: svc.config.state_dir.clone(),
        pki_dir: svc.config.pki_dir.clone(),
    }
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
    if svc.config.pki_dir.is_none() {
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
    .map_err(batch_error)?;
    svc.batches
        .start(&id, readers.clone(), run_settings(svc), svc.events.clone())
        .map_err(|e| ApiError::internal(format!("{e:#}")))?;
    Ok(Reply::json(json!({
        "batch_id": id,
        "records": records.len(),
        "readers": readers,
    })))
}
