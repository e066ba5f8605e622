//! The wire format: ZeroMQ multipart messages carrying JSON-RPC 2.0.
//!
//! A request as the ROUTER socket receives it is `[identity, (empty delimiter), json,
//! binary...]`: REQ clients put an empty delimiter frame before the JSON frame, DEALER clients
//! need not. The reply mirrors the envelope, `[identity, (delimiter), json, binary...]`, so both
//! kinds of client get what they expect. Everything here is a pure function of the frames so
//! the malformed-request rules can be tested without a socket.

use bytes::Bytes;
use serde_json::Value;

use crate::api::{ApiError, Call, ErrorCode, Reply};

/// Binary frames a request may carry after its JSON frame.
pub const MAX_BINARY_FRAMES: usize = 16;
/// Longest request `id` (as JSON text): a longer one is refused, so a reply cannot be made
/// larger than its request's id by sending a huge one.
pub const MAX_ID_BYTES: usize = 256;
/// Characters of a client's string (id, method) that reach the log.
pub const LOG_CHARS: usize = 64;
/// Characters of an error message in a reply.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 1024;

/// A client's string as it may be logged: at most [`LOG_CHARS`] characters, control and
/// non-ASCII characters escaped, and the full length in bytes when it was cut.
pub fn clip(text: &str) -> String {
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == LOG_CHARS {
            out.push_str(&format!("...({} bytes)", text.len()));
            break;
        }
        if c.is_ascii_graphic() || c == ' ' {
            out.push(c);
        } else {
            out.extend(c.escape_default());
        }
    }
    out
}

/// Where a reply goes: the peer's identity and whether it sent a REQ delimiter.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The identity frame the ROUTER socket put first.
    pub identity: Bytes,
    /// The client sent an empty delimiter frame (a REQ socket): echo it.
    pub delimiter: bool,
}

/// What to do with one request message.
#[derive(Debug)]
pub enum Incoming {
    /// A well-formed request: run `method`.
    Request {
        /// `Some(id)` for a call, `None` for a notification (run, never answered).
        id: Option<Value>,
        /// The method name.
        method: String,
        /// Params and binary frames.
        call: Call,
    },
    /// Refused before dispatch; answer with this error (id `null` when it could not be read).
    Refused {
        /// The request's id, or `null`.
        id: Value,
        /// Why.
        error: ApiError,
    },
}

/// Splits a received message into its envelope and body (`json, binary...`). `None` when
/// there is not even an identity frame (the socket never delivers that, but it costs nothing to
/// check).
pub fn split(frames: Vec<Bytes>) -> Option<(Envelope, Vec<Bytes>)> {
    let mut frames = frames.into_iter();
    let identity = frames.next()?;
    let mut body: Vec<Bytes> = frames.collect();
    let delimiter = body.first().is_some_and(|f| f.is_empty());
    if delimiter {
        body.remove(0);
    }
    Some((
        Envelope {
            identity,
            delimiter,
        },
        body,
    ))
}

/// Total size of a body, all frames together.
pub fn body_len(body: &[Bytes]) -> usize {
    body.iter().map(Bytes::len).sum()
}

/// The answer to a message larger than `max` bytes (not parsed at all).
pub fn too_large(len: usize, max: usize) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!("message of {len} bytes is larger than the limit of {max} bytes"),
    )
    .with_data(serde_json::json!({"limit": max, "size": len}))
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, message)
}

/// Parses and validates a body (the envelope already removed).
pub fn parse(body: Vec<Bytes>) -> Incoming {
    let mut frames = body.into_iter();
    let Some(json) = frames.next() else {
        return refused(Value::Null, invalid("the message has no JSON frame"));
    };
    let binary: Vec<Bytes> = frames.collect();
    let value: Value = match serde_json::from_slice(&json) {
        Ok(v) => v,
        Err(e) => {
            let what = if json.is_empty() {
                "the JSON frame is empty".to_string()
            } else {
                format!("the JSON frame is not valid JSON: {e}")
            };
            return refused(Value::Null, ApiError::new(ErrorCode::ParseError, what));
        }
    };
    let mut object = match value {
        Value::Object(o) => o,
        Value::Array(_) => {
            return refused(
                Value::Null,
                invalid("batch requests are not supported: send one request per message"),
            )
        }
        _ => return refused(Value::Null, invalid("a request must be a JSON object")),
    };
    let id = match object.remove("id") {
        None => None,
        Some(Value::String(s)) if s.len() + 2 > MAX_ID_BYTES => {
            return refused(
                Value::Null,
                invalid(format!("\"id\" is longer than {MAX_ID_BYTES} bytes")),
            )
        }
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => {
            return refused(
                Value::Null,
                invalid("\"id\" must be a string, a number or null"),
            )
        }
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    match object.get("jsonrpc") {
        Some(Value::String(v)) if v == "2.0" => {}
        Some(_) => return refused(reply_id, invalid("\"jsonrpc\" must be \"2.0\"")),
        None => return refused(reply_id, invalid("\"jsonrpc\": \"2.0\" is missing")),
    }
    let method = match object.remove("method") {
        Some(Value::String(m)) => m,
        Some(_) => return refused(reply_id, invalid("\"method\" must be a string")),
        None => return refused(reply_id, invalid("\"method\" is missing")),
    };
    let params = match object.remove("params") {
        None => Value::Null,
        Some(p @ (Value::Object(_) | Value::Array(_))) => p,
        Some(_) => {
            return refused(
                reply_id,
                invalid("\"params\" must be an object or an array when present"),
            )
        }
    };
    if let Some(extra) = object.keys().find(|k| k.as_str() != "jsonrpc") {
        return refused(reply_id, invalid(format!("unknown member {extra:?}")));
    }
    if binary.len() > MAX_BINARY_FRAMES {
        return refused(
            reply_id,
            invalid(format!(
                "{} binary frames after the JSON frame; at most {MAX_BINARY_FRAMES} are accepted",
                binary.len()
            )),
        );
    }
    Incoming::Request {
        id,
        method,
        call: Call {
            params,
            frames: binary.into_iter().map(|b| b.to_vec()).collect(),
        },
    }
}

/// [`reply_frames`], or an `internal` error in their place when they would be larger than
/// `max` bytes (the envelope not counted).
pub fn reply_frames_capped(
    envelope: &Envelope,
    id: &Value,
    outcome: Result<Reply, ApiError>,
    max: usize,
) -> Vec<Bytes> {
    let frames = reply_frames(envelope, id, outcome);
    let size: usize = frames.iter().skip(1).map(Bytes::len).sum();
    if size <= max {
        return frames;
    }
    tracing::error!(
        size,
        limit = max,
        "reply too large: sent as an internal error"
    );
    reply_frames(
        envelope,
        id,
        Err(ApiError::internal(format!(
            "the reply of {size} bytes is larger than the limit of {max} bytes"
        ))),
    )
}

fn refused(id: Value, error: ApiError) -> Incoming {
    Incoming::Refused { id, error }
}

/// The frames of a reply: envelope, the JSON-RPC response, then the reply's binary frames.
pub fn reply_frames(
    envelope: &Envelope,
    id: &Value,
    outcome: Result<Reply, ApiError>,
) -> Vec<Bytes> {
    /// The response object, serialized straight from its parts.
    #[derive(serde::Serialize)]
    struct Response<'a> {
        jsonrpc: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        result: Option<&'a Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        error: Option<Value>,
        id: &'a Value,
    }
    let (result, error, binary) = match outcome {
        Ok(reply) => (Some(reply.result), None, reply.frames),
        Err(mut error) => {
            if let Some((cut, _)) = error.message.char_indices().nth(MAX_ERROR_MESSAGE_CHARS) {
                error.message.truncate(cut);
                error.message.push_str("...");
            }
            (None, Some(error.to_json()), Vec::new())
        }
    };
    let response = Response {
        jsonrpc: "2.0",
        result: result.as_ref(),
        error,
        id,
    };
    let json = serde_json::to_vec(&response)
        .unwrap_or_else(|_| br#"{"jsonrpc":"2.0","error":{"code":-32603,"message":"cannot serialize the response","data":{"name":"internal"}},"id":null}"#.to_vec());
    let mut frames = Vec::with_capacity(3 + binary.len());
    frames.push(envelope.identity.clone());
    if envelope.delimiter {
        frames.push(Bytes::new());
    }
    frames.push(Bytes::from(json));
    frames.extend(binary.into_iter().map(Bytes::from));
    frames
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(frames: &[&[u8]]) -> Vec<Bytes> {
        frames.iter().map(|f| Bytes::copy_from_slice(f)).collect()
    }

    fn refusal(frames: &[&[u8]]) -> (Value, ErrorCode) {
        match parse(body(frames)) {
            Incoming::Refused { id, error } => (id, error.code),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn req_and_dealer_envelopes() {
        let (env, rest) = split(body(&[b"peer", b"", b"{}"])).unwrap();
        assert!(env.delimiter);
        assert_eq!(rest, body(&[b"{}"]));
        let (env, rest) = split(body(&[b"peer", b"{}", b"bin"])).unwrap();
        assert!(!env.delimiter);
        assert_eq!(rest.len(), 2);
        let frames = reply_frames(
            &Envelope {
                identity: "p".into(),
                delimiter: true,
            },
            &Value::from(7),
            Ok(Reply::json(Value::from(1))),
        );
        assert_eq!(frames[1], Bytes::new());
        let v: Value = serde_json::from_slice(&frames[2]).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"jsonrpc": "2.0", "result": 1, "id": 7})
        );
    }

    #[test]
    fn malformed_requests_get_the_right_code() {
        assert_eq!(refusal(&[b"{nope"]), (Value::Null, ErrorCode::ParseError));
        assert_eq!(refusal(&[b""]), (Value::Null, ErrorCode::ParseError));
        assert_eq!(refusal(&[]), (Value::Null, ErrorCode::InvalidRequest));
        assert_eq!(refusal(&[b"[1]"]).1, ErrorCode::InvalidRequest);
        assert_eq!(refusal(&[b"42"]).1, ErrorCode::InvalidRequest);
        assert_eq!(
            refusal(&[br#"{"jsonrpc":"1.0","id":3,"method":"m"}"#]),
            (Value::from(3), ErrorCode::InvalidRequest)
        );
        assert_eq!(
            refusal(&[br#"{"id":3,"method":"m"}"#]).1,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            refusal(&[br#"{"jsonrpc":"2.0","id":"a"}"#]),
            (Value::from("a"), ErrorCode::InvalidRequest)
        );
        assert_eq!(
            refusal(&[br#"{"jsonrpc":"2.0","id":1,"method":5}"#]).1,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            refusal(&[br#"{"jsonrpc":"2.0","id":1,"method":"m","params":3}"#]).1,
            ErrorCode::InvalidRequest
        );
        assert_eq!(
            refusal(&[br#"{"jsonrpc":"2.0","id":{},"method":"m"}"#]),
            (Value::Null, ErrorCode::InvalidRequest)
        );
        assert_eq!(
            refusal(&[br#"{"jsonrpc":"2.0","id":1,"method":"m","x":1}"#]).1,
            ErrorCode::InvalidRequest
        );
        let many: Vec<&[u8]> = std::iter::once(&br#"{"jsonrpc":"2.0","id":1,"method":"m"}"#[..])
            .chain(std::iter::repeat_n(&b"x"[..], MAX_BINARY_FRAMES + 1))
            .collect();
        assert_eq!(refusal(&many).1, ErrorCode::InvalidRequest);
    }

    #[test]
    fn long_ids_are_refused_and_logged_strings_clipped() {
        let long = "x".repeat(MAX_ID_BYTES);
        let request = format!(r#"{{"jsonrpc":"2.0","id":"{long}","method":"m"}}"#);
        assert_eq!(
            refusal(&[request.as_bytes()]),
            (Value::Null, ErrorCode::InvalidRequest)
        );
        let fits = "x".repeat(MAX_ID_BYTES - 2);
        let request = format!(r#"{{"jsonrpc":"2.0","id":"{fits}","method":"m"}}"#);
        assert!(matches!(
            parse(body(&[request.as_bytes()])),
            Incoming::Request { .. }
        ));
        assert_eq!(clip("system.health"), "system.health");
        assert_eq!(clip("a\nb\u{1b}[31m"), "a\\nb\\u{1b}[31m");
        let clipped = clip(&"y".repeat(100_000));
        assert!(clipped.starts_with(&"y".repeat(LOG_CHARS)), "{clipped}");
        assert!(clipped.ends_with("...(100000 bytes)"), "{clipped}");
        assert!(clipped.len() < 100);
    }

    #[test]
    fn oversized_replies_become_internal_errors() {
        let envelope = Envelope {
            identity: "p".into(),
            delimiter: false,
        };
        let big = Reply::json(Value::from("z".repeat(5000)));
        let frames = reply_frames_capped(&envelope, &Value::from(1), Ok(big), 1024);
        let v: Value = serde_json::from_slice(&frames[1]).unwrap();
        assert_eq!(v["error"]["data"]["name"], "internal", "{v}");
        let long = ApiError::new(ErrorCode::InvalidParams, "m".repeat(100_000));
        let frames = reply_frames(&envelope, &Value::from(1), Err(long));
        assert!(frames[1].len() < 2 * MAX_ERROR_MESSAGE_CHARS);
    }

    #[test]
    fn calls_and_notifications() {
        match parse(body(&[
            br#"{"jsonrpc":"2.0","id":"x","method":"m","params":{"a":1}}"#,
            b"bin",
        ])) {
            Incoming::Request { id, method, call } => {
                assert_eq!(id, Some(Value::from("x")));
                assert_eq!(method, "m");
                assert_eq!(call.params["a"], 1);
                assert_eq!(call.frames, vec![b"bin".to_vec()]);
            }
            other => panic!("{other:?}"),
        }
        match parse(body(&[br#"{"jsonrpc":"2.0","method":"m"}"#])) {
            Incoming::Request { id: None, .. } => {}
            other => panic!("{other:?}"),
        }
    }
}
