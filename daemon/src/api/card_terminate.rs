//! `card.terminate`: end a lost, stolen, replaced or damaged card for good (TERMINATE CARD
//! USAGE), journaled.
//!
//! Request: `{"method":"card.terminate","params":{"reader":"sim:0","reason":"lost"}}`
//! (`reason`: `lost`, `stolen`, `replaced`, `damaged`).
//! Reply: `{"serial":"49..","was":"activated","life_cycle":"terminated","reason":"lost"}`;
//! event `card.terminated`. Refusals: `card_terminated` (already), `card_removed`, `busy`.

use serde::Deserialize;

use super::{ApiError, Call, Reply};
use crate::service::Service;
use issuance::delivery::TerminateReason;

/// Parameters of `card.terminate`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The reader holding the card.
    reader: String,
    /// Why.
    reason: TerminateReason,
}

/// Terminates the card in the reader.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    super::configured_reader(svc, &p.reader)?;
    Reply::of(&issuance::delivery::terminate(
        &svc.desk(),
        &p.reader,
        p.reason,
    )?)
}
