//! `card.unblock`: reset a blocked PIN with the PUK (RESET RETRY COUNTER), journaled without
//! the secrets.
//!
//! Request: `{"method":"card.unblock","params":{"reader":"sim:0","puk":"1234567890",
//! "new_pin":"482913"}}`. Reply: `{"serial":"49..","unblocked":true}`; event `card.unblocked`.
//! Refusals: `pin_rejected` (wrong PUK, `data.tries_left`), `pin_blocked` (PUK blocked),
//! `card_terminated`, `wrong_card_state`, `invalid_params` (lengths, digits).

use super::delivery_activate::take_secret;
use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;
use serde::Deserialize;

/// Parameters of `card.unblock` besides `puk` and `new_pin`, which are moved out of the
/// request into zeroized buffers first.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The reader holding the card.
    reader: String,
}

/// Unblocks the PIN of the card in the reader.
pub fn call(svc: &Service, mut call: Call) -> Result<Reply, ApiError> {
    let missing = |name: &str| {
        ApiError::new(
            ErrorCode::InvalidParams,
            format!("invalid params: missing field `{name}`"),
        )
    };
    let puk = take_secret(&mut call.params, "puk")?.ok_or_else(|| missing("puk"))?;
    let new_pin = take_secret(&mut call.params, "new_pin")?.ok_or_else(|| missing("new_pin"))?;
    let p: Params = call.params()?;
    super::configured_reader(svc, &p.reader)?;
    Ok(Reply::json(issuance::delivery::unblock(
        &svc.desk(),
        &p.reader,
        puk,
        new_pin,
    )?))
}
