//! The JSON-RPC 2.0 methods of the daemon, one module per method.
//!
//! A method is a plain blocking function `fn call(svc: &Service, call: Call) -> Result<Reply,
//! ApiError>`; the server runs it on a worker thread, so card I/O and
//! extraction may block. [`METHODS`] is the only place that maps a method name to its module.
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
pub mod card_report_lost;
pub mod card_terminate;
pub mod card_unblock;
pub mod delivery_activate;
pub mod delivery_begin;
pub mod delivery_handover;
pub mod delivery_verify;
pub mod dispatch_create;
pub mod dispatch_receive;
pub mod document_status;
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
        serde_json::from_value(params).map_err(|e| {
            // serde quotes what it did not expect (an unknown field, a wrong value): bounded.
            ApiError::new(
                ErrorCode::InvalidParams,
                format!("invalid params: {}", clip(&e.to_string(), MAX_DETAIL_CHARS)),
            )
        })
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

/// Most characters of a client's string quoted back in an error (issue 18): a prefix to
/// recognize it by, never the whole of what a client sent.
pub const MAX_ECHO_CHARS: usize = 40;

/// Most characters of a library's explanation that may quote client input (serde's).
const MAX_DETAIL_CHARS: usize = 300;

/// `s` cut to `max` characters (`…` marks the cut), control characters replaced.
fn clip(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// A client's string as quoted in an error message: Debug-quoted, at most
/// [`MAX_ECHO_CHARS`] characters of it.
pub fn echo(s: &str) -> String {
    format!("{:?}", clip(s, MAX_ECHO_CHARS))
}

/// `reader_not_found` unless `name` is a configured reader: only configured names go further
/// (into the reader pool, the journal, replies).
pub fn configured_reader(svc: &Service, name: &str) -> Result<(), ApiError> {
    if svc.readers.names().iter().any(|r| r == name) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::ReaderNotFound,
            format!("no reader {} is configured", echo(name)),
        ))
    }
}

/// `invalid_params` unless `value` of `field` is 1 to `max` ASCII letters, digits, `-` or `_`
/// (batch ids, tracking codes): a bounded identifier, safe to look up and quote.
pub fn identifier(field: &str, value: &str, max: usize) -> Result<(), ApiError> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!(
                "{field} {} is not 1-{max} ASCII letters, digits, '-' or '_'",
                echo(value)
            ),
        ))
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

/// A method's blocking entry point: runs on a worker thread (card I/O, extraction).
pub type Handler = fn(&Service, Call) -> Result<Reply, ApiError>;

/// A method's answer on the I/O thread when it needs no waiting, file or card I/O, nor heavy
/// work; it gives the call back ([`Immediate::NeedsWorker`]) when it does.
pub type ImmediateHandler = fn(&Service, Call) -> Immediate;

/// One API method: its name on the wire and its module's entry points.
#[derive(Debug, Clone, Copy)]
pub struct Method {
    /// The JSON-RPC method name.
    pub name: &'static str,
    /// The blocking entry point.
    pub call: Handler,
    /// The non-blocking entry point, for methods that can often answer at once.
    pub immediate: Option<ImmediateHandler>,
}

/// A method that always runs on a worker.
const fn worker(name: &'static str, call: Handler) -> Method {
    Method {
        name,
        call,
        immediate: None,
    }
}

/// Answers in memory only: always at once.
fn system_version_now(svc: &Service, call: Call) -> Immediate {
    Immediate::Answered(system_version::call(svc, call))
}

/// Answers from memory and a once-a-second file look: always at once.
fn system_health_now(svc: &Service, call: Call) -> Immediate {
    Immediate::Answered(system_health::call(svc, call))
}

/// Every method the daemon serves, in the order `docs/api.md` documents them: the only place
/// that maps a method name to its module.
pub const METHODS: &[Method] = &[
    Method {
        name: "system.version",
        call: system_version::call,
        immediate: Some(system_version_now),
    },
    Method {
        name: "system.health",
        call: system_health::call,
        immediate: Some(system_health_now),
    },
    worker("readers.list", readers_list::call),
    Method {
        name: "card.info",
        call: card_info::call,
        immediate: Some(card_info::call_without_blocking),
    },
    worker("matcher.extract", matcher_extract::call),
    worker("matcher.compare", matcher_compare::call),
    worker("delivery.begin", delivery_begin::call),
    worker("delivery.verify", delivery_verify::call),
    worker("delivery.activate", delivery_activate::call),
    worker("delivery.handover", delivery_handover::call),
    worker("card.terminate", card_terminate::call),
    worker("card.unblock", card_unblock::call),
    worker("card.personalize", card_personalize::call),
    worker("batch.submit", batch_submit::call),
    worker("batch.status", batch_status::call),
    worker("batch.cancel", batch_cancel::call),
    worker("batch.report", batch_report::call),
    worker("status.lookup", status_lookup::call),
    worker("document.status", document_status::call),
    worker("card.report_lost", card_report_lost::call),
    worker("dispatch.create", dispatch_create::call),
    worker("dispatch.receive", dispatch_receive::call),
];

/// The method called `name`.
pub fn method(name: &str) -> Option<&'static Method> {
    METHODS.iter().find(|m| m.name == name)
}

/// The names of every method, in [`METHODS`] order.
pub fn method_names() -> impl Iterator<Item = &'static str> {
    METHODS.iter().map(|m| m.name)
}

/// Runs `method` with `call`; an unknown name is `method_not_found`.
pub fn dispatch(svc: &Service, method: &str, call: Call) -> Result<Reply, ApiError> {
    match self::method(method) {
        Some(m) => (m.call)(svc, call),
        None => Err(ApiError::new(
            ErrorCode::MethodNotFound,
            format!("unknown method {}", echo(method)),
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
    match self::method(method).and_then(|m| m.immediate) {
        Some(now) => now(svc, call),
        None => Immediate::NeedsWorker(call),
    }
}
