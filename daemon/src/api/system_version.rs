//! `system.version`: what is running, so a kiosk can log it and check compatibility.
//!
//! Request: `{"jsonrpc":"2.0","id":1,"method":"system.version"}`
//! Reply: `{"name":"idcardd","version":"0.1.0","api":1,"methods":[...]}`

use serde_json::json;

use super::{method_names, ApiError, Call, Reply};
use crate::service::Service;

/// Version of the JSON-RPC API: bumped only when a method changes incompatibly.
pub const API_VERSION: u32 = 1;

/// Answers the daemon's name, version, API version and the methods it serves.
pub fn call(_svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let _: serde::de::IgnoredAny = call.params()?;
    Ok(Reply::json(json!({
        "name": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "api": API_VERSION,
        "methods": method_names().collect::<Vec<_>>(),
    })))
}
