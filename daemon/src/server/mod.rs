//! `idcardd serve`: the ZeroMQ JSON-RPC server.
//!
//! - [`config`]: `idcardd.toml` and the flags that override it, resolved into [`Settings`].
//! - [`protocol`]: frames in, [`protocol::Incoming`] out; replies back to frames.
//! - [`socket`]: binding with safe permissions; tcp only on loopback unless allowed.
//! - [`serve`]: the receive loop. A ROUTER socket takes requests from REQ and DEALER clients;
//!   each well-formed request runs [`crate::api::dispatch`] on a blocking thread (the
//!   memory-only `system.version` and `system.health` run on the I/O task). At most
//!   `max_in_flight` requests run at once: one more is answered `busy` straight away (there is
//!   no queue to grow). A request that outlives `request_timeout` is answered `timeout`; its
//!   blocking work still finishes in the background and keeps its reader locked until then, and
//!   keeps its place in `max_in_flight`. A PUB socket publishes every [`issuance::events::Events`]
//!   event as `[topic, json]`. On the shutdown signal new requests are answered
//!   `shutting_down`, work in progress gets up to `shutdown_grace`, then the sockets close and
//!   the ipc socket files are removed.
//!
//! Each request is logged at info level with method, id, duration and outcome; never params.

pub mod config;
pub mod events;
pub mod protocol;
pub mod socket;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use zeromq::{RouterSendHalf, RouterSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

use crate::api::{self, ApiError, ErrorCode, Reply};
use crate::service::Service;
pub use config::{ServerSettings, Settings};
use protocol::{Envelope, Incoming};

/// How long one reply may wait for a client that does not read.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

/// Builds the service and the runtime, serves until SIGTERM or SIGINT, returns after a clean
/// shutdown.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    let runtime = io_runtime()?;
    let result = runtime.block_on(async move {
        let mut service_config = settings.service;
        service_config.readers = events::expand_pcsc(service_config.readers)?;
        let svc = Arc::new(Service::open(service_config)?);
        let signal = shutdown_signal()?;
        serve(settings.server, svc, signal).await
    });
    // Work still running after the grace period (a timed-out request) is not waited for
    // again: dropping the runtime would block on it without bound.
    runtime.shutdown_timeout(Duration::from_millis(200));
    result
}

/// The runtime of the socket side: one I/O thread. Parsing and answering a request takes
/// microseconds; all real work goes to the blocking pool. One thread keeps the ZeroMQ
/// connection tasks and the receive loop from waking each other across cores (together with
/// `api::dispatch_without_blocking`, system.health went from 58 % to 92 % of the bare echo on the 2-core
/// development VM; see docs/api.md).
pub fn io_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("idcardd-io")
        .build()
}

/// Resolves when SIGTERM or SIGINT arrives.
fn shutdown_signal() -> anyhow::Result<impl Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    })
}

/// Removes the ipc socket files when the server stops, however it stops.
struct SocketFiles(Vec<PathBuf>);

impl Drop for SocketFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cannot remove {}: {e}", path.display()),
            }
        }
    }
}

/// What every request task needs.
#[derive(Clone)]
struct Shared {
    /// The methods' shared state.
    svc: Arc<Service>,
    /// Where replies go (cloned per task).
    sender: RouterSendHalf,
    /// Limits.
    settings: Arc<ServerSettings>,
}

/// Serves on the configured endpoints until `shutdown` resolves, then drains and returns.
pub async fn serve(
    settings: ServerSettings,
    svc: Arc<Service>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let group = settings.socket_group.as_deref();
    let mut router = RouterSocket::new();
    let mut files = SocketFiles(Vec::new());
    files.0.extend(
        socket::bind(
            &mut router,
            &settings.endpoint,
            group,
            settings.allow_non_loopback,
        )
        .await?,
    );
    let mut publisher = zeromq::PubSocket::new();
    files.0.extend(
        socket::bind(
            &mut publisher,
            &settings.events,
            group,
            settings.allow_non_loopback,
        )
        .await?,
    );
    let publishing = tokio::spawn(events::publish(publisher, svc.events.subscribe()));
    let monitor = events::HotPlug::start(&svc);
    tracing::info!(
        endpoint = %settings.endpoint,
        events = %settings.events,
        readers = ?svc.readers.names(),
        "idcardd serving"
    );

    let max_in_flight = settings.max_in_flight;
    let grace = settings.shutdown_grace;
    let permits = Arc::new(Semaphore::new(max_in_flight));
    let (sender, mut receiver) = router.split();
    let shared = Shared {
        svc,
        sender,
        settings: Arc::new(settings),
    };
    tokio::pin!(shutdown);
    let mut stop_by: Option<tokio::time::Instant> = None;
    loop {
        let drained = async {
            match stop_by {
                Some(_) => permits
                    .acquire_many(max_in_flight as u32)
                    .await
                    .map(drop)
                    .ok(),
                None => std::future::pending().await,
            }
        };
        let deadline = async {
            match stop_by {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            message = receiver.recv() => match message {
                Ok(message) => on_message(&shared, &permits, message, stop_by.is_some()),
                Err(e) => {
                    tracing::warn!("receive failed: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            _ = &mut shutdown, if stop_by.is_none() => {
                stop_by = Some(tokio::time::Instant::now() + grace);
                shared.svc.events.publish(
                    "server.stopping",
                    serde_json::json!({"grace_ms": grace.as_millis() as u64}),
                );
            }
            _ = drained => {
                tracing::info!("all requests finished");
                break;
            }
            _ = deadline => {
                tracing::warn!(
                    in_flight = shared.svc.stats.in_flight.load(Ordering::Relaxed),
                    "shutdown grace elapsed with requests still running"
                );
                break;
            }
        }
    }
    drop(monitor);
    // Give the publisher a moment to send the last events (server.stopping).
    tokio::time::sleep(Duration::from_millis(50)).await;
    publishing.abort();
    let _ = publishing.await;
    drop(receiver);
    drop(shared);
    // Let the sockets' accept tasks stop; they remove their ipc files themselves, `files`
    // catches what they leave.
    tokio::time::sleep(Duration::from_millis(50)).await;
    drop(files);
    Ok(())
}

/// Handles one received message: refuse it at once or start its work.
fn on_message(shared: &Shared, permits: &Arc<Semaphore>, message: ZmqMessage, stopping: bool) {
    let Some((envelope, body)) = protocol::split(message.into_vec()) else {
        return;
    };
    let size = protocol::body_len(&body);
    let max = shared.settings.max_message_bytes;
    if size > max {
        log_outcome("-", &Value::Null, Duration::ZERO, Some(ErrorCode::TooLarge));
        return answer(
            shared,
            envelope,
            Value::Null,
            Err(protocol::too_large(size, max)),
        );
    }
    let (id, method, call) = match protocol::parse(body) {
        Incoming::Refused { id, error } => {
            log_outcome("-", &id, Duration::ZERO, Some(error.code));
            return answer(shared, envelope, id, Err(error));
        }
        Incoming::Request { id, method, call } => (id, method, call),
    };
    let refuse = |error: ApiError| {
        log_outcome(
            &method,
            id.as_ref().unwrap_or(&Value::Null),
            Duration::ZERO,
            Some(error.code),
        );
        if let Some(id) = &id {
            answer(shared, envelope.clone(), id.clone(), Err(error));
        }
    };
    if stopping {
        return refuse(ApiError::new(
            ErrorCode::ShuttingDown,
            "the daemon is shutting down",
        ));
    }
    let Ok(permit) = permits.clone().try_acquire_owned() else {
        return refuse(
            ApiError::new(
                ErrorCode::Busy,
                format!(
                    "{} requests are in progress, the limit: try again shortly",
                    shared.settings.max_in_flight
                ),
            )
            .with_data(serde_json::json!({"limit": shared.settings.max_in_flight})),
        );
    };
    tokio::spawn(work(shared.clone(), permit, envelope, id, method, call));
}

/// Runs one admitted request and answers it; the permit is held until the blocking work has
/// finished and the reply is sent.
async fn work(
    shared: Shared,
    permit: OwnedSemaphorePermit,
    envelope: Envelope,
    id: Option<Value>,
    method: String,
    call: api::Call,
) {
    let started = Instant::now();
    let in_flight = InFlight::enter(&shared.svc);
    // What needs no waiting, I/O or heavy work is answered on the I/O task itself (two thread
    // hand-offs saved); the rest runs on a blocking worker thread.
    let call = match api::dispatch_without_blocking(&shared.svc, &method, call) {
        api::Immediate::Answered(outcome) => {
            finish(&shared, &envelope, &id, &method, started, outcome).await;
            drop((in_flight, permit));
            return;
        }
        api::Immediate::NeedsWorker(call) => call,
    };
    let svc = shared.svc.clone();
    let name = method.clone();
    let mut job = tokio::task::spawn_blocking(move || api::dispatch(&svc, &name, call));
    let outcome = match tokio::time::timeout(shared.settings.request_timeout, &mut job).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(join)) => {
            tracing::error!(method = %method, "method panicked: {join}");
            Err(ApiError::internal("the method failed unexpectedly"))
        }
        Err(_) => {
            let limit = shared.settings.request_timeout.as_millis() as u64;
            let timeout = ApiError::new(
                ErrorCode::Timeout,
                format!("{method} did not finish within {limit} ms"),
            )
            .with_data(serde_json::json!({"limit_ms": limit}));
            finish(&shared, &envelope, &id, &method, started, Err(timeout)).await;
            // The work cannot be interrupted safely; it keeps its permit and its reader
            // until it ends.
            let _ = job.await;
            tracing::info!(method = %method, elapsed_ms = started.elapsed().as_millis() as u64, "timed-out request finished");
            drop((in_flight, permit));
            return;
        }
    };
    finish(&shared, &envelope, &id, &method, started, outcome).await;
    drop((in_flight, permit));
}

/// Logs and sends the outcome (nothing is sent for a notification).
async fn finish(
    shared: &Shared,
    envelope: &Envelope,
    id: &Option<Value>,
    method: &str,
    started: Instant,
    outcome: Result<Reply, ApiError>,
) {
    let code = outcome.as_ref().err().map(|e| e.code);
    if let Err(e) = &outcome {
        if e.code == ErrorCode::Internal {
            tracing::error!(method, "internal error: {}", e.message);
        }
    }
    log_outcome(
        method,
        id.as_ref().unwrap_or(&Value::Null),
        started.elapsed(),
        code,
    );
    if let Some(id) = id {
        let outcome = outcome.map_err(|e| match e.code {
            // Internals stay in the log.
            ErrorCode::Internal => ApiError::internal("internal error (see the daemon's log)"),
            _ => e,
        });
        send(
            shared.sender.clone(),
            protocol::reply_frames(envelope, id, outcome),
        )
        .await;
    }
}

/// Sends an immediate answer without holding up the receive loop.
fn answer(shared: &Shared, envelope: Envelope, id: Value, outcome: Result<Reply, ApiError>) {
    let frames = protocol::reply_frames(&envelope, &id, outcome);
    tokio::spawn(send(shared.sender.clone(), frames));
}

/// Sends a reply, giving up on a client that does not read.
async fn send(mut sender: RouterSendHalf, frames: Vec<Bytes>) {
    let Ok(message) = ZmqMessage::try_from(frames) else {
        return;
    };
    match tokio::time::timeout(SEND_TIMEOUT, sender.send(message)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!("reply not delivered: {e}"),
        Err(_) => {
            tracing::warn!("reply dropped: the client did not read it within {SEND_TIMEOUT:?}")
        }
    }
}

/// One log line per request: method, id, duration, outcome code. Never params.
fn log_outcome(method: &str, id: &Value, elapsed: Duration, code: Option<ErrorCode>) {
    let outcome = code.map_or("ok", ErrorCode::name);
    tracing::info!(
        method,
        id = %id,
        duration_us = elapsed.as_micros() as u64,
        outcome,
        "request"
    );
}

/// Counts a request in `Stats::in_flight` while it lives.
struct InFlight(Arc<Service>);

impl InFlight {
    fn enter(svc: &Arc<Service>) -> InFlight {
        svc.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(svc.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}
