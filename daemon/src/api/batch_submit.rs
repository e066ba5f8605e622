//! `batch.submit`: journals a batch of applicant records and runs it in the background.
//!
//! Request: `{"method":"batch.submit","params":{"records":[{...},{...}],"readers":["sim:0"]}}`
//! (`readers` defaults to every configured reader; simulated readers take fresh cards from the
//! state directory's hopper). Reply: `{"batch_id":"B..","records":2,"readers":["sim:0"]}`.
//! Progress follows on the PUB socket (`batch.progress`, `card.personalized`,
//! `batch.finished`); `batch.status` and `batch.report` answer from the journal.
//!
//! Bounds (issue 18): at most [`MAX_BATCH_RECORDS`] records of at most [`MAX_RECORD_BYTES`]
//! each (`too_large`), configured reader names only (`reader_not_found`, quoting a short
//! prefix). Records may name no file: they are journaled without a base directory, and QC
//! refuses any `path` (`path_not_allowed`, nothing read).

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

/// Most records in one submitted batch (larger runs come as manifests or several batches).
pub const MAX_BATCH_RECORDS: usize = 10_000;

/// Largest record accepted (its JSON, bytes): a face and ten inline scans of
/// `issuance::scan::MAX_SCAN_BYTES` would not fit a message anyway; a record is normally far
/// smaller.
pub const MAX_RECORD_BYTES: usize = 8 * 1024 * 1024;

/// Journals the records as a new batch and starts it.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    if p.records.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidParams, "records is empty"));
    }
    if p.records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "{} records: at most {MAX_BATCH_RECORDS} in one batch",
                p.records.len()
            ),
        ));
    }
    let configured = svc.readers.names();
    let readers = p.readers.unwrap_or_else(|| configured.clone());
    if readers.len() > configured.len() {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!(
                "{} readers named; {} are configured",
                readers.len(),
                configured.len()
            ),
        ));
    }
    for r in &readers {
        super::configured_reader(svc, r)?;
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
    // No base directory: a record from the socket may not name files (issuance::applicant::
    // FileAccess::None); QC refuses any `path` in it.
    let records: Vec<(String, String)> = p
        .records
        .iter()
        .map(|r| (r.to_string(), String::new()))
        .collect();
    if let Some((i, (json, _))) = records
        .iter()
        .enumerate()
        .find(|(_, (json, _))| json.len() > MAX_RECORD_BYTES)
    {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "record {i} is {} bytes: at most {MAX_RECORD_BYTES}",
                json.len()
            ),
        ));
    }
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
