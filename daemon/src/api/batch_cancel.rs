//! `batch.cancel`: no more records of the batch are claimed; cards being written finish.
//!
//! Request: `{"method":"batch.cancel","params":{"batch_id":"B.."}}`
//! Reply: `{"batch_id":"B..","state":"cancelled"}`. `idcardd batch resume` restarts it.

use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Call, Reply};
use crate::service::Service;
use issuance::batch;

/// Parameters of `batch.cancel`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The batch.
    batch_id: String,
}

/// Cancels the batch.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    super::identifier(
        "batch_id",
        &p.batch_id,
        super::batch_status::MAX_BATCH_ID_CHARS,
    )?;
    batch::cancel(svc.batches.journal(), &p.batch_id).map_err(issuance::Error::from)?;
    svc.batches.stop(&p.batch_id);
    Ok(Reply::json(
        json!({"batch_id": p.batch_id, "state": "cancelled"}),
    ))
}
