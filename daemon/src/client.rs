//! A small JSON-RPC client for the daemon's socket, in Rust (the demo and operator tools use
//! it; kiosk applications in other languages see `examples/idcardd_client.py`).
//!
//! [`Client`] is a ZeroMQ DEALER on libzmq (the engine the server uses): it sends
//! `[json, binary...]` and reads `[json, binary...]`, one call at a time, matching replies by
//! id. A refused call comes back as [`RpcError`] with the stable `code` and `name` of
//! `crate::api::ErrorCode`. libzmq is blocking: each call runs on tokio's blocking pool, so
//! the async callers (the demo drives a server on the same runtime) never stall it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};

/// A JSON-RPC error answer, or a failure to get any answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{method}: {message} ({name})")]
pub struct RpcError {
    /// The method that was called.
    pub method: String,
    /// `error.code` (0 when no answer came back).
    pub code: i64,
    /// `error.data.name`, e.g. `no_match` (`transport` when no answer came back).
    pub name: String,
    /// `error.message`.
    pub message: String,
    /// `error.data` (with `name`).
    pub data: Value,
}

impl RpcError {
    fn transport(method: &str, message: String) -> RpcError {
        RpcError {
            method: method.to_string(),
            code: 0,
            name: "transport".into(),
            message,
            data: Value::Null,
        }
    }
}

/// A successful answer: `result` and the binary frames after it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// `result`.
    pub result: Value,
    /// Binary frames that followed the JSON frame.
    pub frames: Vec<Bytes>,
}

/// A connection to the daemon's request socket.
pub struct Client {
    /// The DEALER socket; taken by the call in progress (it runs on a blocking thread).
    socket: Option<zmq::Socket>,
    /// Keeps libzmq's context alive as long as the socket.
    _context: zmq::Context,
    /// The id of the next request.
    next_id: u64,
    /// How long a call waits for its answer.
    timeout: Duration,
}

impl Client {
    /// Connects to `endpoint` (e.g. `ipc:///run/idcardd/idcardd.sock`). Calls wait up to
    /// `timeout` for their answer.
    pub async fn connect(endpoint: &str, timeout: Duration) -> anyhow::Result<Client> {
        let context = zmq::Context::new();
        let socket = context.socket(zmq::DEALER)?;
        // Unsent requests are dropped when the client goes away, not waited for.
        socket.set_linger(0)?;
        socket
            .connect(endpoint)
            .map_err(|e| anyhow::anyhow!("cannot connect to {endpoint}: {e}"))?;
        Ok(Client {
            socket: Some(socket),
            _context: context,
            next_id: 1,
            timeout,
        })
    }

    /// Calls `method` with JSON `params` and binary `frames`.
    pub async fn call(
        &mut self,
        method: &str,
        params: Value,
        frames: Vec<Vec<u8>>,
    ) -> Result<Answer, RpcError> {
        let id = self.next_id;
        self.next_id += 1;
        let socket = self.socket.take().ok_or_else(|| {
            RpcError::transport(
                method,
                "the previous call on this client was abandoned".into(),
            )
        })?;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut message = vec![request.to_string().into_bytes()];
        message.extend(frames);
        let (timeout, name) = (self.timeout, method.to_string());
        let (socket, result) = tokio::task::spawn_blocking(move || {
            let result = exchange(&socket, &name, id, message, timeout);
            (socket, result)
        })
        .await
        .map_err(|e| RpcError::transport(method, format!("the call's thread failed: {e}")))?;
        self.socket = Some(socket);
        result
    }
}

/// Sends one request and waits for the answer with its `id` (answers to earlier calls that
/// timed out on this side are skipped).
fn exchange(
    socket: &zmq::Socket,
    method: &str,
    id: u64,
    message: Vec<Vec<u8>>,
    timeout: Duration,
) -> Result<Answer, RpcError> {
    socket
        .send_multipart(message, 0)
        .map_err(|e| RpcError::transport(method, format!("sending: {e}")))?;
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ready = socket
            .poll(
                zmq::POLLIN,
                i64::try_from(left.as_millis()).unwrap_or(i64::MAX),
            )
            .map_err(|e| RpcError::transport(method, format!("waiting: {e}")))?;
        if ready == 0 {
            return Err(RpcError::transport(
                method,
                format!("no answer within {timeout:?}"),
            ));
        }
        let mut frames = socket
            .recv_multipart(0)
            .map_err(|e| RpcError::transport(method, format!("receiving: {e}")))?;
        if frames.is_empty() {
            continue;
        }
        let head = frames.remove(0);
        let response: Value = serde_json::from_slice(&head)
            .map_err(|e| RpcError::transport(method, format!("answer is not JSON: {e}")))?;
        if response["id"] != json!(id) {
            continue;
        }
        if let Some(error) = response.get("error") {
            return Err(RpcError {
                method: method.to_string(),
                code: error["code"].as_i64().unwrap_or(0),
                name: error["data"]["name"].as_str().unwrap_or("").to_string(),
                message: error["message"].as_str().unwrap_or("").to_string(),
                data: error["data"].clone(),
            });
        }
        return Ok(Answer {
            result: response["result"].clone(),
            frames: frames.into_iter().map(Bytes::from).collect(),
        });
    }
}
