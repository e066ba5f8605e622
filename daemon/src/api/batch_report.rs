//! `batch.report`: the batch report from the journal, one line per record (identifiers and
//! outcomes only: no names, no PINs).
//!
//! Request: `{"method":"batch.report","params":{"batch_id":"B..","format":"json"}}`
//! (`format`: `json`, the default, or `csv`). Reply: the report (`batch_id`, `state`,
//! `counts`, `records`), or `{"batch_id":"B..","csv":"tracking_code,state,..."}`.

use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;
use issuance::batch;

/// Parameters of `batch.report`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The batch.
    batch_id: String,
    /// `json` (default) or `csv`.
    #[serde(default)]
    format: Option<String>,
}

/// Builds the report.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    super::identifier(
        "batch_id",
        &p.batch_id,
        super::batch_status::MAX_BATCH_ID_CHARS,
    )?;
    let report =
        batch::report(svc.batches.journal(), &p.batch_id).map_err(issuance::Error::from)?;
    match p.format.as_deref().unwrap_or("json") {
        "json" => Reply::of(&report),
        "csv" => Ok(Reply::json(json!({
            "batch_id": p.batch_id,
            "csv": report.to_csv(),
        }))),
        other => Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!("format {}: json or csv", super::echo(other)),
        )),
    }
}
