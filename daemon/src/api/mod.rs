//! The JSON-RPC 2.0 methods of the daemon, one module per method.
//!
//! A method is a plain blocking function `fn call(svc: &Service, call: Call) -> Result<Reply,
//! ApiError>`; the server (see `crate::server`) runs it on a worker thread, so card I/O and
//! extraction may block. [`dispatch`] is the only place that maps a method name to its module.
//!
//! - [`Call`]: the request's `params` plus any binary frames that came after the JSON frame of
//!   the same multipart message (images, templates), so they need not travel as base64.
//! - [`Reply`]: the `result` plus binary frames to send after the JSON frame.
//! - [`ApiError`]: a stable numeric code, a stable snake_case name a kiosk can act on, a
//!   human message, and optional structured `data` (e.g. every data-QC problem with its
//!   field path). Messages never contain PINs, PUKs, keys or biometric bytes.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::service::Service;

pub mod batch_cancel;
pub mod batch_report;
pub mod batch_status;
pub mod batch_submit;
pub mod card_info;
pub mod card_personalize;
pub mod card_terminate;
pub mod card_unblock;
pub mod delivery_activate;
pub mod delivery_begin;
pub mod delivery_verify;
mod error;
pub mod matcher_compare;
pub mod matcher_extract;
pub mod readers_list;
pub mod status_lookup;
pub mod system_health;
pub mod system_version;

pub use error::{ApiError, ErrorCode};

/// A request as a method sees it.
#[derive(Debug, Default)]
pub struct Call {
    /// `params` of the JSON-RPC request (`Value::Null` when absent).
    pub params: Value,
    /// Binary frames that followed the JSON frame, in order.
    pub frames: Vec<Vec<u8>>,
}

impl Call {
    /// A call with JSON params only.
    pub fn json(params: Value) -> Call {
        Call {
            params,
            frames: Vec::new(),
        }
    }

    /// Deserializes `params` into the method's parameter type; a missing field, a wrong type or
    /// an unknown field becomes `invalid_params` with serde's explanation (it names the field).
    pub fn params<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        let params = match &self.params {
            Value::Null => Value::Object(Default::default()),
            other => other.clone(),
        };
        serde_json::from_value(params)
            .map_err(|e| ApiError::new(ErrorCode::InvalidParams, format!("invalid params: {e}")))
    }

    /// Binary frame `index`, or `invalid_params` naming what was expected there.
    pub fn frame(&self, index: usize, what: &str) -> Result<&[u8], ApiError> {
        self.frames.get(index).map(Vec::as_slice).ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidParams,
                format!("expected {what} in binary frame {index} of the message"),
            )
        })
    }
}

/// A method's successful answer.
#[derive(Debug, Default)]
pub struct Reply {
    /// `result` of the JSON-RPC response.
    pub result: Value,
    /// Binary frames to send after the JSON frame.
    pub frames: Vec<Vec<u8>>,
}

impl Reply {
    /// A reply with a JSON result only.
    pub fn json(result: Value) -> Reply {
        Reply {
            result,
            frames: Vec::new(),
        }
    }

    /// Serializes any `Serialize` value as the result.
    pub fn of<T: serde::Serialize>(result: &T) -> Result<Reply, ApiError> {
        serde_json::to_value(result)
            .map(Reply::json)
            .map_err(|e| ApiError::internal(format!("serializing the result: {e}")))
    }
}

/// Every method the daemon serves, in the order `docs/api.md` documents them.
pub const METHODS: &[&str] = &[
    "system.version",
    "system.health",
    "readers.list",
    "card.info",
    "matcher.extract",
    "matcher.compare",
    "delivery.begin",
    "delivery.verify",
    "delivery.activate",
    "card.terminate",
    "card.unblock",
    "card.personalize",
    "batch.submit",
    "batch.status",
    "batch.cancel",
    "batch.report",
    "status.lookup",
];

/// Runs `method` with `call`; an unknown name is `method_not_found`.
pub fn dispatch(svc: &Service, method: &str, call: Call) -> Result<Reply, ApiError> {
    // One arm per method module; keep METHODS in step.
    match method {
        "system.version" => system_version::call(svc, call),
        "system.health" => system_health::call(svc, call),
        "readers.list" => readers_list::call(svc, call),
        "card.info" => card_info::call(svc, call),
        "matcher.extract" => matcher_extract::call(svc, call),
        "matcher.compare" => matcher_compare::call(svc, call),
        "delivery.begin" => delivery_begin::call(svc, call),
        "delivery.verify" => delivery_verify::call(svc, call),
        "delivery.activate" => delivery_activate::call(svc, call),
        "card.terminate" => card_terminate::call(svc, call),
        "card.unblock" => card_unblock::call(svc, call),
        "card.personalize" => card_personalize::call(svc, call),
        "batch.submit" => batch_submit::call(svc, call),
        "batch.status" => batch_status::call(svc, call),
        "batch.cancel" => batch_cancel::call(svc, call),
        "batch.report" => batch_report::call(svc, call),
        "status.lookup" => status_lookup::call(svc, call),
        _ => Err(ApiError::new(
            ErrorCode::MethodNotFound,
            format!("unknown method {method:?}"),
        )),
    }
}

/// What [`dispatch_without_blocking`] did with a call.
#[derive(Debug)]
pub enum Immediate {
    /// Answered at once.
    Answered(Result<Reply, ApiError>),
    /// Needs a worker thread: the call, untouched, for [`dispatch`].
    NeedsWorker(Call),
}

/// Answers `method` at once when that needs no waiting, file or card I/O, nor heavy work (the
/// server then answers on its I/O thread, saving two thread hand-offs); otherwise gives the
/// call back for [`dispatch`] on a worker.
pub fn dispatch_without_blocking(svc: &Service, method: &str, call: Call) -> Immediate {
    match method {
        // Memory only.
        "system.version" => Immediate::Answered(system_version::call(svc, call)),
        "system.health" => Immediate::Answered(system_health::call(svc, call)),
        "card.info" => card_info::call_without_blocking(svc, call),
        _ => Immediate::NeedsWorker(call),
    }
}
