//! `batch.status`: counts per state of a batch, from the journal.
//!
//! Request: `{"method":"batch.status","params":{"batch_id":"B.."}}`
//! Reply: `{"batch_id":"B..","state":"running","running":true,"counts":{"total":200,
//! "pending":150,"qc_failed":1,"writing":4,"personalized":45,"failed":0}}`

use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Call, Reply};
use crate::service::Service;

/// Parameters of `batch.status`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The batch.
    batch_id: String,
}

/// Longest batch id accepted (ids are `B` + milliseconds + `-` + 4 hex digits).
pub const MAX_BATCH_ID_CHARS: usize = 64;

/// Answers the batch's state and counts.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    super::identifier("batch_id", &p.batch_id, MAX_BATCH_ID_CHARS)?;
    let journal = svc.batches.journal();
    let row = journal.batch(&p.batch_id).map_err(issuance::Error::from)?;
    let counts = journal.counts(&p.batch_id).map_err(issuance::Error::from)?;
    Ok(Reply::json(json!({
        "batch_id": row.id,
        "state": row.state,
        "running": svc.batches.is_running(&p.batch_id),
        "readers": row.readers,
        "counts": counts,
    })))
}
