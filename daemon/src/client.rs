//! A small JSON-RPC client for the daemon's socket, in Rust (the demo and operator tools use
//! it; kiosk applications in other languages see `examples/idcardd_client.py`).
//!
//! [`Client`] is a ZeroMQ DEALER: it sends `[json, binary...]` and reads `[json, binary...]`,
//! one call at a time, matching replies by id. A refused call comes back as [`RpcError`] with
//! the stable `code` and `name` of `crate::api::ErrorCode`.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use zeromq::{DealerSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

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
    socket: DealerSocket,
    next_id: u64,
    timeout: Duration,
}

impl Client {
    /// Connects to `endpoint` (e.g. `ipc:///run/idcardd/idcardd.sock`). Calls wait up to
    /// `timeout` for their answer.
    pub async fn connect(endpoint: &str, timeout: Duration) -> anyhow::Result<Client> {
        let mut socket = DealerSocket::new();
        socket
            .connect(endpoint)
            .await
            .map_err(|e| anyhow::anyhow!("cannot connect to {endpoint}: {e}"))?;
        Ok(Client {
            socket,
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
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        let mut all = vec![Bytes::from(request.to_string())];
        all.extend(frames.into_iter().map(Bytes::from));
        let message = ZmqMessage::try_from(all)
            .map_err(|e| RpcError::transport(method, format!("building the message: {e}")))?;
        self.socket
            .send(message)
            .await
            .map_err(|e| RpcError::transport(method, format!("sending: {e}")))?;
        loop {
            let reply = tokio::time::timeout(self.timeout, self.socket.recv())
                .await
                .map_err(|_| {
                    RpcError::transport(method, format!("no answer within {:?}", self.timeout))
                })?
                .map_err(|e| RpcError::transport(method, format!("receiving: {e}")))?;
            let mut frames = reply.into_vec();
            if frames.is_empty() {
                continue;
            }
            let head = frames.remove(0);
            let response: Value = serde_json::from_slice(&head)
                .map_err(|e| RpcError::transport(method, format!("answer is not JSON: {e}")))?;
            // An answer to an earlier call that timed out on our side: skip it.
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
                frames,
            });
        }
    }
}
