//! `card.personalize`: personalizes the card in one reader from one applicant record.
//!
//! Request: `{"method":"card.personalize","params":{"reader":"sim:0","record":{...}}}` where
//! `record` is an applicant record (the schema of `issuance::applicant::Applicant`; images and
//! templates inline as base64: a record from the socket may name no file, every `path` is a QC
//! problem `path_not_allowed` and nothing is read; at most 8 MiB).
//! Reply: `{"batch_id":"B..","tracking_code":"NID-0001","serial":"49..","document_number":
//! "D00000001","found":"fresh","apdus":27}`
//!
//! The record is journaled like a one-record batch, so the status lookup finds it and the same
//! tracking code is never personalized twice (`already_personalized`). Data QC failures answer
//! `qc_failed` with every problem in `data.problems`. The transport PIN and PUK go to the PIN
//! mailer file, never into the reply.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;

/// Parameters of `card.personalize`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The reader holding the blank card.
    reader: String,
    /// The applicant record.
    record: Value,
}

/// Journals the record, checks it, writes the card and answers what was written.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    super::configured_reader(svc, &p.reader)?;
    if !p.record.is_object() {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            "record must be a JSON object (an applicant record)",
        ));
    }
    let len = p.record.to_string().len();
    if len > super::batch_submit::MAX_RECORD_BYTES {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!(
                "the record is {len} bytes: at most {}",
                super::batch_submit::MAX_RECORD_BYTES
            ),
        ));
    }
    let one =
        svc.batches
            .personalize_one(&svc.readers, &p.reader, "api:card.personalize", &p.record)?;
    Ok(Reply::json(json!({
        "batch_id": one.batch_id,
        "tracking_code": one.event.tracking_code,
        "serial": one.event.serial,
        "document_number": one.issue.document_number,
        "found": one.event.found,
        "apdus": one.event.apdus,
    })))
}
