//! `delivery.activate`: set the holder's PIN and activate the card verified in the session.
//!
//! Request: `{"method":"delivery.activate","params":{"session":"9f..","new_pin":"482913"}}`
//! (optional `"transport_pin"` from the holder's PIN letter; otherwise the daemon takes it from
//! the personalization PIN mailer record of that card).
//! Reply: `{"delivered":true,"serial":"49..","life_cycle":"activated","pin_already_set":false,
//! "recovered":false,"timing_ms":{..}}`; event `card.delivered`.
//!
//! Allowed only for the same card (serial re-read from the reader) within the activate window
//! after a successful verify in that session. Refusals: `not_verified`,
//! `verify_window_passed`, `card_swapped`, `session_unknown` (unknown or already used),
//! `session_expired`, `pin_rejected`, `pin_blocked`, `transport_pin_unknown`,
//! `already_delivered`, `card_removed` (`data.activation_pending`: call again to complete).
//! PINs never appear in replies, errors, logs or the journal.

use serde::Deserialize;
use zeroize::Zeroizing;

use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;

/// Parameters of `delivery.activate` besides the PINs, which are taken out of the request
/// first (see [`take_secret`]) so they are never copied.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The delivery session.
    session: String,
}

/// Moves the string parameter `name` out of `params` into a buffer zeroized on drop;
/// `invalid_params` (without the value) when it is not a string.
pub(crate) fn take_secret(
    params: &mut serde_json::Value,
    name: &str,
) -> Result<Option<Zeroizing<String>>, ApiError> {
    let Some(map) = params.as_object_mut() else {
        return Ok(None);
    };
    match map.remove(name) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(serde_json::Value::String(s)) => Ok(Some(Zeroizing::new(s))),
        Some(_) => Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!("invalid params: {name} must be a string of digits"),
        )),
    }
}

/// Activates the session's card.
pub fn call(svc: &Service, mut call: Call) -> Result<Reply, ApiError> {
    let new_pin = take_secret(&mut call.params, "new_pin")?.ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidParams,
            "invalid params: missing field `new_pin`",
        )
    })?;
    let transport_pin = take_secret(&mut call.params, "transport_pin")?;
    let p: Params = call.params()?;
    let result = issuance::delivery::activate(&svc.desk(), &p.session, new_pin, transport_pin)?;
    Reply::of(&result)
}
