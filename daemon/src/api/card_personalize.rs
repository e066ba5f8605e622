//! `card.personalize`: personalizes the card in one reader from one applicant record.
//!
//! Request: `{"method":"card.personalize","params":{"reader":"sim:0","record":{...}}}` where
//! `record` is an applicant record (the schema of `crate::applicant::Applicant`; images and
//! templates inline as base64, or as absolute paths on the daemon's machine).
//! Reply: `{"batch_id":"B..","tracking_code":"NID-0001","serial":"49..","document_number":
//! "D00000001","found":"fresh","apdus":27}`
//!
//! The record is journaled like a one-record batch, so the status lookup finds it and the same
//! tracking code is never personalized twice (`already_personalized`). Data QC failures answer
//! `qc_failed` with every problem in `data.problems`. The transport PIN and PUK go to the PIN
//! mailer file, never into the reply.

use serde::Deserialize;
use serde_json::{json, Value};

use super::batch_submit::{batch_error, run_settings};
use super::{ApiError, Call, ErrorCode, Reply};
use crate::batch::{self, LineSource, Prepared, Runner};
use crate::journal::RecordState;
use crate::personalize::{PersoError, PersoKeys};
use crate::pki::DocumentSigner;
use crate::profile::ProfileSet;
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

/// The stable error for a personalization failure.
pub(crate) fn perso_error(e: &PersoError) -> ApiError {
    let code = match e {
        _ if e.is_card_removed() => ErrorCode::CardRemoved,
        PersoError::AlreadyPersonalized { .. } => ErrorCode::AlreadyPersonalized,
        PersoError::Terminated { .. } => ErrorCode::WrongCardState,
        PersoError::Card(_) | PersoError::ReadBack { .. } => ErrorCode::CardError,
        PersoError::Plan(_) | PersoError::Hook(_) => ErrorCode::Internal,
    };
    ApiError::new(code, e.to_string())
}

/// Journals the record, checks it, writes the card and answers what was written.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    if !p.record.is_object() {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            "record must be a JSON object (an applicant record)",
        ));
    }
    if !svc.readers.names().contains(&p.reader) {
        return Err(ApiError::new(
            ErrorCode::ReaderNotFound,
            format!("no reader {:?} is configured", p.reader),
        ));
    }
    let settings = run_settings(svc);
    let pki_dir = settings.pki_dir.clone().ok_or_else(|| {
        ApiError::new(
            ErrorCode::Internal,
            "no Document Signer configured: personalization is refused",
        )
    })?;
    let signer = DocumentSigner::load(&pki_dir)
        .map_err(|e| ApiError::internal(format!("Document Signer: {e}")))?;
    let profiles = ProfileSet::builtin().map_err(|e| ApiError::internal(e.to_string()))?;
    let journal = svc.batches.journal();
    let readers = vec![p.reader.clone()];
    let id = batch::submit(
        journal,
        "api:card.personalize",
        &readers,
        &[(p.record.to_string(), String::new())],
    )
    .map_err(batch_error)?;
    let owner = batch::new_batch_id();
    journal
        .start_run(&id, &owner)
        .map_err(|e| batch_error(e.into()))?;
    let Some(claim) = journal
        .claim_next(&id, &owner, &p.reader)
        .map_err(|e| batch_error(e.into()))?
    else {
        // The only record was refused as a duplicate.
        let _ = journal.set_batch_state(&id, "finished");
        let rows = journal.records(&id).map_err(|e| batch_error(e.into()))?;
        let reason = rows
            .first()
            .and_then(|r| r.reason.clone())
            .unwrap_or_default();
        return Err(ApiError::new(ErrorCode::AlreadyPersonalized, reason));
    };
    let source = LineSource::new(&settings.state_dir);
    let audit = crate::audit::AuditLog::open(&settings.state_dir)
        .map_err(|e| ApiError::internal(format!("opening the audit log: {e}")))?;
    let audit_entry = |kind: &str, details: Value| {
        if let Err(e) = audit.append(kind, details) {
            tracing::error!("audit append failed: {e}");
        }
    };
    let runner = Runner {
        journal,
        state_dir: settings.state_dir.clone(),
        profiles: &profiles,
        signer: &signer,
        keys: PersoKeys::test(),
        source: &source,
        audit: Some(&audit_entry),
    };
    let finish = |result: Result<Reply, ApiError>| {
        let _ = journal.set_batch_state(&id, "finished");
        result
    };
    let (plan, issue) = match runner.prepare(&claim, &p.reader).map_err(batch_error)? {
        Prepared::Ready { plan, issue } => (plan, issue),
        Prepared::Finished(event) => {
            let rows = journal.records(&id).map_err(|e| batch_error(e.into()))?;
            let row = rows.first();
            let err = if event.state == RecordState::QcFailed {
                ApiError::new(ErrorCode::QcFailed, "the record failed data QC").with_data(json!({
                    "problems": row.and_then(|r| r.qc_issues.clone()).unwrap_or_default(),
                }))
            } else {
                ApiError::internal(event.reason.unwrap_or_default())
            };
            return finish(Err(err));
        }
    };
    let mailer = std::sync::Mutex::new(None);
    let written = svc.readers.with_card(&p.reader, |card| {
        match runner
            .write_card(&id, &claim, &p.reader, &plan, &issue, card, &mailer)
            .map_err(batch_error)?
        {
            Ok(event) => Ok(event),
            Err(e) => {
                runner
                    .settle_error(&claim, &p.reader, &e)
                    .map_err(batch_error)?;
                Err(perso_error(&e))
            }
        }
    });
    let event = match written {
        Ok(event) => event,
        Err(e) => {
            // The reader could not be used: the record never reached a card.
            let _ = journal.fail(claim.seq, &e.message);
            return finish(Err(e));
        }
    };
    finish(Ok(Reply::json(json!({
        "batch_id": id,
        "tracking_code": event.tracking_code,
        "serial": event.serial,
        "document_number": issue.document_number,
        "found": event.found,
        "apdus": event.apdus,
    }))))
}
