//! `idcardd serve`: the ZeroMQ JSON-RPC server, on libzmq (the `zmq` crate).
//!
//! - [`config`]: `idcardd.toml` and the flags that override it, resolved into [`Settings`].
//! - [`protocol`]: frames in, [`protocol::Incoming`] out; replies back to frames.
//! - [`socket`]: binding with safe permissions; tcp only on loopback unless allowed, and then
//!   only with CURVE.
//! - [`curve`]: the CURVE server key file and the ZAP handler that admits listed client keys.
//! - [`serve_blocking`]: the I/O thread. It alone owns the ROUTER (requests) and PUB (events)
//!   sockets, as libzmq sockets are not thread-safe, and never waits on a peer: it polls the
//!   ROUTER, a wake-up socket pair (replies from workers and events arrive by a channel) and
//!   the shutdown signal. Each peer's queue is bounded each way (`server.send_queue`,
//!   `server.receive_queue` messages); replies to a peer that does not read are dropped when
//!   its queue is full (ROUTER without ROUTER_MANDATORY); no frame larger than
//!   `max_message_bytes` is buffered (ZMQ_MAXMSGSIZE drops the connection of a peer sending
//!   one), and a message whose frames together exceed it is answered `too_large` unparsed.
//!   `system.health` and `system.version` are answered on the I/O thread and take no
//!   `max_in_flight` slot, so a monitor gets an answer however loaded the daemon is. Other
//!   requests run [`crate::api::dispatch_without_blocking`] on the I/O thread and, when they
//!   need to, [`crate::api::dispatch`] on the blocking pool. At most `max_in_flight` requests
//!   are worked on at once: one more is answered `busy` straight away (there is no queue to
//!   grow). A request that outlives `request_timeout` is answered `timeout`; its blocking work
//!   still finishes in the background and keeps its reader locked until then, and keeps its
//!   place in `max_in_flight`. On the shutdown signal new requests are answered
//!   `shutting_down`, work in progress gets up to `shutdown_grace`, then the sockets close and
//!   the ipc socket files are removed.
//!
//! Each request is logged at info level with method, id, duration and outcome; never params.
//! With `[metrics] listen` set, the same outcome feeds [`crate::metrics::Metrics`], served on
//! that loopback address as `/metrics` for as long as the sockets are.
//! Method names and ids are the client's strings: at most [`protocol::LOG_CHARS`] characters
//! of them are logged, escaped ([`protocol::clip`]).

mod background;
pub mod config;
pub mod curve;
pub mod events;
pub mod protocol;
pub mod socket;

use std::collections::HashMap;
use std::future::Future;
use std::io::{Read as _, Write as _};
use std::os::unix::io::AsRawFd as _;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::Value;

use crate::api::{self, ApiError, ErrorCode, Reply};
use crate::metrics::{Metrics, MetricsServer};
use crate::service::Service;
pub use config::{ServerSettings, Settings, TransportSettings};
use issuance::events::Event;
use protocol::{clip, Envelope, Incoming};

/// Messages read from the ROUTER before the I/O thread looks at its mail and timers again.
const RECEIVE_BATCH: usize = 256;
/// How long closing sockets may still deliver what is queued (replies, `server.stopping`).
const LINGER_MS: i32 = 500;
/// Events queued per subscriber before they are dropped.
const PUB_QUEUE: i32 = 1024;
/// Largest message a subscriber may send the PUB socket (subscriptions are topic prefixes).
const PUB_MAX_INBOUND: i64 = 4096;
/// Methods answered from memory on the I/O thread without a `max_in_flight` slot.
const UNLIMITED: &[&str] = &["system.health", "system.version"];

/// Builds the service and the worker pool, serves until SIGTERM or SIGINT, returns after a
/// clean shutdown.
pub fn run(settings: Settings) -> anyhow::Result<()> {
    let pool = worker_pool()?;
    let mut service_config = settings.service;
    service_config.readers = events::expand_pcsc(service_config.readers)?;
    let svc = Arc::new(Service::open(service_config)?);
    let stop = shutdown_signal()?;
    let result = serve_blocking(
        settings.server,
        &settings.transport,
        svc,
        &stop,
        pool.handle().clone(),
    );
    // Work still running after the grace period (a timed-out request) is not waited for
    // again: dropping the pool would block on it without bound.
    pool.shutdown_timeout(Duration::from_millis(200));
    result
}

/// The blocking pool the methods run on (`spawn_blocking`; no async task runs on it).
pub fn worker_pool() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_name("idcardd-worker")
        .build()
}

/// A socket that becomes readable when SIGTERM or SIGINT arrives.
fn shutdown_signal() -> anyhow::Result<UnixStream> {
    let (read, write) = UnixStream::pair()?;
    read.set_nonblocking(true)?;
    write.set_nonblocking(true)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGTERM, write.try_clone()?)?;
    signal_hook::low_level::pipe::register(signal_hook::consts::SIGINT, write)?;
    Ok(read)
}

/// Serves on the configured endpoints until `shutdown` resolves, then drains and returns: the
/// I/O loop on its own thread, with the default [`TransportSettings`], the methods on the
/// current runtime's blocking pool (what `idcardd demo` runs in process).
pub async fn serve(
    settings: ServerSettings,
    svc: Arc<Service>,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let (stop, mut trigger) = UnixStream::pair()?;
    stop.set_nonblocking(true)?;
    let pool = tokio::runtime::Handle::current();
    let (done, finished) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("idcardd-io".into())
        .spawn(move || {
            let result = serve_blocking(settings, &TransportSettings::default(), svc, &stop, pool);
            let _ = done.send(result);
        })?;
    let gone = || anyhow::anyhow!("the I/O thread ended without a result");
    tokio::pin!(shutdown, finished);
    tokio::select! {
        result = &mut finished => return result.unwrap_or_else(|_| Err(gone())),
        _ = &mut shutdown => {}
    }
    trigger.write_all(b"x")?;
    finished.await.unwrap_or_else(|_| Err(gone()))
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

/// What workers and the event forwarder hand to the I/O thread.
enum ToIo {
    /// A job's work ended: its reply (none for a notification) and outcome code.
    Finished {
        /// The job's number.
        job: u64,
        /// The reply's frames, ready to send.
        frames: Option<Vec<Bytes>>,
        /// `None` for success.
        code: Option<ErrorCode>,
    },
    /// An event for the PUB socket.
    Event(Event),
}

/// The I/O thread's mail: a channel plus a socket pair whose readable end the thread polls
/// next to the ROUTER, so a post wakes it.
#[derive(Clone)]
struct Mailbox {
    /// The mail.
    tx: mpsc::Sender<ToIo>,
    /// One byte per post (a full buffer means a wake-up is pending already).
    bell: Arc<UnixStream>,
}

impl Mailbox {
    /// Posts `mail`; false once the I/O thread is gone.
    fn post(&self, mail: ToIo) -> bool {
        if self.tx.send(mail).is_err() {
            return false;
        }
        let _ = (&*self.bell).write(&[1]);
        true
    }
}

/// A request on the blocking pool.
struct Job {
    /// Where its reply goes.
    envelope: Envelope,
    /// Its id (`None`: a notification).
    id: Option<Value>,
    /// The method (a known name).
    method: &'static str,
    /// When it was admitted.
    started: Instant,
    /// When it is answered `timeout` if still running.
    deadline: Instant,
    /// Answered `timeout` already; its late result is only logged.
    timed_out: bool,
}

/// A message as read from the ROUTER, bounded.
struct Received {
    /// The identity frame, then at most [`MAX_FRAMES_KEPT`] - 1 frames of the body.
    frames: Vec<Bytes>,
    /// Bytes of the body (every frame after the identity, kept or not).
    size: usize,
}

/// Frames of one message the daemon keeps: identity, delimiter, JSON, the binary frames
/// allowed and one more, so the protocol sees there were too many.
const MAX_FRAMES_KEPT: usize = protocol::MAX_BINARY_FRAMES + 4;

/// Reads one message if one is waiting, keeping at most [`MAX_FRAMES_KEPT`] frames and,
/// once the body is over `max_bytes`, no more frames (only their sizes are counted).
fn receive_bounded(router: &zmq::Socket, max_bytes: usize) -> zmq::Result<Option<Received>> {
    let identity = match router.recv_bytes(zmq::DONTWAIT) {
        Ok(frame) => frame,
        Err(zmq::Error::EAGAIN) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut frames = vec![Bytes::from(identity)];
    let mut size = 0;
    let mut part = zmq::Message::new();
    // The parts of a message arrive together: none of these waits. An interrupted call is
    // retried, or the next message would start in the middle of this one.
    while router.get_rcvmore()? {
        loop {
            match router.recv(&mut part, 0) {
                Err(zmq::Error::EINTR) => continue,
                other => break other?,
            }
        }
        size += part.len();
        if frames.len() < MAX_FRAMES_KEPT && size <= max_bytes {
            frames.push(Bytes::copy_from_slice(&part));
        }
    }
    Ok(Some(Received { frames, size }))
}

/// Reads whatever is in a non-blocking socket pair's end.
fn drain(stream: &UnixStream) {
    let mut buf = [0u8; 256];
    while matches!((&*stream).read(&mut buf), Ok(n) if n > 0) {}
}

/// The reply's frames (none for a notification) and the outcome code; internal errors are
/// logged and reach the client without their details.
fn prepare(
    envelope: &Envelope,
    id: &Option<Value>,
    method: &str,
    outcome: Result<Reply, ApiError>,
    max_reply_bytes: usize,
) -> (Option<ErrorCode>, Option<Vec<Bytes>>) {
    let code = outcome.as_ref().err().map(|e| e.code);
    if let Err(e) = &outcome {
        if e.code == ErrorCode::Internal {
            tracing::error!(method, "internal error: {}", e.message);
        }
    }
    let frames = id.as_ref().map(|id| {
        let outcome = outcome.map_err(|e| match e.code {
            ErrorCode::Internal => ApiError::internal("internal error (see the daemon's log)"),
            _ => e,
        });
        protocol::reply_frames_capped(envelope, id, outcome, max_reply_bytes)
    });
    (code, frames)
}

/// The I/O thread's state.
struct Io {
    /// Requests in, replies out.
    router: zmq::Socket,
    /// Events out.
    publisher: zmq::Socket,
    /// The methods' shared state.
    svc: Arc<Service>,
    /// Limits.
    settings: ServerSettings,
    /// Largest reply.
    max_reply_bytes: usize,
    /// Handed to workers for their results.
    mailbox: Mailbox,
    /// Where the blocking work runs.
    pool: tokio::runtime::Handle,
    /// Requests on the pool (their number is what `max_in_flight` bounds).
    jobs: HashMap<u64, Job>,
    /// The next job's number.
    next_job: u64,
    /// The shutdown signal came: new requests are refused.
    stopping: bool,
    /// What each answered request is counted in, when the metrics endpoint is configured.
    metrics: Option<Arc<Metrics>>,
}

/// Serves on the configured endpoints until `stop` becomes readable, then drains and
/// returns. Runs on the calling thread, which alone touches the sockets; `pool` runs the
/// blocking methods.
pub fn serve_blocking(
    settings: ServerSettings,
    transport: &TransportSettings,
    svc: Arc<Service>,
    stop: &UnixStream,
    pool: tokio::runtime::Handle,
) -> anyhow::Result<()> {
    let ctx = zmq::Context::new();
    let key = match &transport.curve {
        Some(curve) => Some(curve::ServerKey::load_or_create(&curve.key_file)?),
        None => None,
    };
    // Bound before any CURVE socket, which asks it about every handshake.
    let zap = match &transport.curve {
        Some(curve) => Some(curve::Zap::start(&ctx, &curve.clients)?),
        None => None,
    };
    if let (Some(key), Some(curve)) = (&key, &transport.curve) {
        tracing::info!(
            public_key = %key.public,
            clients = curve.clients.len(),
            "CURVE on tcp endpoints"
        );
    }
    // Before the sockets: a metrics port in use stops the start, and once the sockets are
    // bound the endpoint answers.
    let (metrics, metrics_server) = match settings.metrics_listen {
        Some(listen) => {
            let metrics = Arc::new(Metrics::for_service(&svc));
            Metrics::follow(&metrics, &svc)?;
            let server = MetricsServer::start(listen, metrics.clone())?;
            (Some(metrics), Some(server))
        }
        None => (None, None),
    };
    let group = settings.socket_group.as_deref();
    let mut files = SocketFiles(Vec::new());
    let router = ctx.socket(zmq::ROUTER)?;
    router.set_sndhwm(transport.send_queue)?;
    router.set_rcvhwm(transport.receive_queue)?;
    router.set_maxmsgsize(settings.max_message_bytes as i64)?;
    router.set_linger(LINGER_MS)?;
    files.0.extend(socket::bind(
        &router,
        &settings.endpoint,
        group,
        settings.allow_non_loopback,
        key.as_ref(),
    )?);
    let publisher = ctx.socket(zmq::PUB)?;
    publisher.set_sndhwm(PUB_QUEUE)?;
    publisher.set_maxmsgsize(PUB_MAX_INBOUND)?;
    publisher.set_linger(LINGER_MS)?;
    files.0.extend(socket::bind(
        &publisher,
        &settings.events,
        group,
        settings.allow_non_loopback,
        key.as_ref(),
    )?);

    let (bell_rx, bell_tx) = UnixStream::pair()?;
    bell_rx.set_nonblocking(true)?;
    bell_tx.set_nonblocking(true)?;
    let (tx, rx) = mpsc::channel();
    let mailbox = Mailbox {
        tx,
        bell: Arc::new(bell_tx),
    };
    let events_mailbox = mailbox.clone();
    events::forward(svc.events.subscribe(), move |event| {
        events_mailbox.post(ToIo::Event(event))
    })?;
    let monitor = events::HotPlug::start(&svc);
    tracing::info!(
        endpoint = %settings.endpoint,
        events = %settings.events,
        readers = ?svc.readers.names(),
        "idcardd serving"
    );
    let mut io = Io {
        router,
        publisher,
        svc,
        settings,
        max_reply_bytes: transport.max_reply_bytes,
        mailbox,
        pool,
        jobs: HashMap::new(),
        next_job: 0,
        stopping: false,
        metrics,
    };
    let result = io.run(&rx, &bell_rx, stop);
    drop(monitor);
    // The last events (server.stopping) reach the PUB socket before it closes.
    io.take_mail_for(&rx, &bell_rx, Duration::from_millis(50));
    drop(io);
    drop(metrics_server);
    drop(zap);
    // Closing the context delivers what the sockets still hold, for up to LINGER_MS.
    drop(ctx);
    drop(files);
    result
}

impl Io {
    /// The poll loop: requests, mail, timeouts, the shutdown signal.
    fn run(
        &mut self,
        rx: &mpsc::Receiver<ToIo>,
        bell: &UnixStream,
        stop: &UnixStream,
    ) -> anyhow::Result<()> {
        let mut stop_by: Option<Instant> = None;
        loop {
            let now = Instant::now();
            let wait = self
                .next_deadline()
                .into_iter()
                .chain(stop_by)
                .min()
                .map_or(-1, |at| {
                    at.saturating_duration_since(now).as_millis() as i64 + 1
                });
            let (requests, mail, signal) = {
                let mut items = [
                    self.router.as_poll_item(zmq::POLLIN),
                    zmq::PollItem::from_fd(bell.as_raw_fd(), zmq::POLLIN),
                    zmq::PollItem::from_fd(stop.as_raw_fd(), zmq::POLLIN),
                ];
                match zmq::poll(&mut items, wait) {
                    Ok(_) | Err(zmq::Error::EINTR) => {}
                    Err(e) => return Err(e.into()),
                }
                (
                    items[0].is_readable(),
                    items[1].is_readable(),
                    items[2].is_readable(),
                )
            };
            if signal {
                drain(stop);
                if stop_by.is_none() {
                    tracing::info!("shutting down");
                    let grace = self.settings.shutdown_grace;
                    stop_by = Some(Instant::now() + grace);
                    self.stopping = true;
                    self.svc.events.publish(
                        "server.stopping",
                        serde_json::json!({"grace_ms": grace.as_millis() as u64}),
                    );
                }
            }
            if mail {
                drain(bell);
            }
            self.take_mail(rx);
            if requests {
                self.receive();
            }
            self.expire(Instant::now());
            if let Some(at) = stop_by {
                if self.jobs.is_empty() {
                    tracing::info!("all requests finished");
                    return Ok(());
                }
                if Instant::now() >= at {
                    tracing::warn!(
                        in_flight = self.jobs.len(),
                        "shutdown grace elapsed with requests still running"
                    );
                    return Ok(());
                }
            }
        }
    }

    /// The earliest deadline of a job not yet answered `timeout`.
    fn next_deadline(&self) -> Option<Instant> {
        self.jobs
            .values()
            .filter(|j| !j.timed_out)
            .map(|j| j.deadline)
            .min()
    }

    /// Handles every piece of mail waiting.
    fn take_mail(&mut self, rx: &mpsc::Receiver<ToIo>) {
        while let Ok(mail) = rx.try_recv() {
            match mail {
                ToIo::Event(event) => events::publish(&self.publisher, &event),
                ToIo::Finished { job, frames, code } => {
                    let Some(job) = self.jobs.remove(&job) else {
                        continue;
                    };
                    if job.timed_out {
                        tracing::info!(
                            method = job.method,
                            elapsed_ms = job.started.elapsed().as_millis() as u64,
                            "timed-out request finished"
                        );
                        continue;
                    }
                    log_outcome(
                        self.metrics.as_deref(),
                        job.method,
                        job.id.as_ref().unwrap_or(&Value::Null),
                        job.started.elapsed(),
                        code,
                    );
                    if let Some(frames) = frames {
                        self.send(&frames);
                    }
                }
            }
        }
    }

    /// Takes mail as it comes for `time` (at shutdown).
    fn take_mail_for(&mut self, rx: &mpsc::Receiver<ToIo>, bell: &UnixStream, time: Duration) {
        let until = Instant::now() + time;
        loop {
            self.take_mail(rx);
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let mut items = [zmq::PollItem::from_fd(bell.as_raw_fd(), zmq::POLLIN)];
            let _ = zmq::poll(&mut items, left.as_millis() as i64 + 1);
            drain(bell);
        }
    }

    /// Answers `timeout` for every job past its deadline.
    fn expire(&mut self, now: Instant) {
        let limit = self.settings.request_timeout.as_millis() as u64;
        let mut late = Vec::new();
        for job in self.jobs.values_mut() {
            if !job.timed_out && job.deadline <= now {
                job.timed_out = true;
                let timeout = ApiError::new(
                    ErrorCode::Timeout,
                    format!("{} did not finish within {limit} ms", job.method),
                )
                .with_data(serde_json::json!({"limit_ms": limit}));
                log_outcome(
                    self.metrics.as_deref(),
                    job.method,
                    job.id.as_ref().unwrap_or(&Value::Null),
                    job.started.elapsed(),
                    Some(ErrorCode::Timeout),
                );
                let (_, frames) = prepare(
                    &job.envelope,
                    &job.id,
                    job.method,
                    Err(timeout),
                    self.max_reply_bytes,
                );
                late.extend(frames);
            }
        }
        for frames in late {
            self.send(&frames);
        }
    }

    /// Reads up to [`RECEIVE_BATCH`] waiting messages.
    fn receive(&mut self) {
        for _ in 0..RECEIVE_BATCH {
            match receive_bounded(&self.router, self.settings.max_message_bytes) {
                Ok(Some(message)) => self.on_message(message),
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!("receive failed: {e}");
                    return;
                }
            }
        }
    }

    /// Sends a reply without waiting: a peer whose queue is full (or gone) loses it.
    fn send(&self, frames: &[Bytes]) {
        if let Err(e) = self
            .router
            .send_multipart(frames.iter().map(|f| &f[..]), zmq::DONTWAIT)
        {
            tracing::debug!("reply not delivered: {e}");
        }
    }

    /// Logs and sends an answer given on the I/O thread.
    fn answer(
        &self,
        envelope: &Envelope,
        id: &Option<Value>,
        method: &str,
        started: Instant,
        outcome: Result<Reply, ApiError>,
    ) {
        let (code, frames) = prepare(envelope, id, method, outcome, self.max_reply_bytes);
        log_outcome(
            self.metrics.as_deref(),
            method,
            id.as_ref().unwrap_or(&Value::Null),
            started.elapsed(),
            code,
        );
        if let Some(frames) = frames {
            self.send(&frames);
        }
    }

    /// Handles one received message: answer it, refuse it, or start its work.
    fn on_message(&mut self, message: Received) {
        let started = Instant::now();
        let Some((envelope, body)) = protocol::split(message.frames) else {
            return;
        };
        let max = self.settings.max_message_bytes;
        if message.size > max {
            let error = protocol::too_large(message.size, max);
            return self.answer(&envelope, &Some(Value::Null), "-", started, Err(error));
        }
        let (id, method, call) = match protocol::parse(body) {
            Incoming::Refused { id, error } => {
                return self.answer(&envelope, &Some(id), "-", started, Err(error));
            }
            Incoming::Request { id, method, call } => (id, method, call),
        };
        let Some(known) = api::method(&method) else {
            let error = ApiError::new(
                ErrorCode::MethodNotFound,
                format!("unknown method \"{}\"", clip(&method)),
            );
            return self.answer(&envelope, &id, &method, started, Err(error));
        };
        let name = known.name;
        if self.stopping {
            let error = ApiError::new(ErrorCode::ShuttingDown, "the daemon is shutting down");
            return self.answer(&envelope, &id, name, started, Err(error));
        }
        let unlimited = UNLIMITED.contains(&name);
        if !unlimited && self.jobs.len() >= self.settings.max_in_flight {
            let limit = self.settings.max_in_flight;
            let error = ApiError::new(
                ErrorCode::Busy,
                format!("{limit} requests are in progress, the limit: try again shortly"),
            )
            .with_data(serde_json::json!({"limit": limit}));
            return self.answer(&envelope, &id, name, started, Err(error));
        }
        let in_flight = InFlight::enter(&self.svc);
        // What needs no waiting, I/O or heavy work is answered here (two thread hand-offs
        // saved); the rest runs on the blocking pool.
        let call = match api::dispatch_without_blocking(&self.svc, name, call) {
            api::Immediate::Answered(outcome) => {
                self.answer(&envelope, &id, name, started, outcome);
                drop(in_flight);
                return;
            }
            api::Immediate::NeedsWorker(call) => call,
        };
        let job = self.next_job;
        self.next_job += 1;
        let svc = self.svc.clone();
        let mailbox = self.mailbox.clone();
        let (reply_envelope, reply_id) = (envelope.clone(), id.clone());
        let max_reply_bytes = self.max_reply_bytes;
        self.jobs.insert(
            job,
            Job {
                envelope,
                id,
                method: name,
                started,
                deadline: started + self.settings.request_timeout,
                timed_out: false,
            },
        );
        self.pool.spawn_blocking(move || {
            let work = std::panic::AssertUnwindSafe(|| api::dispatch(&svc, name, call));
            let outcome = std::panic::catch_unwind(work).unwrap_or_else(|_| {
                tracing::error!(method = name, "method panicked");
                Err(ApiError::internal("the method failed unexpectedly"))
            });
            drop(in_flight);
            let (code, frames) =
                prepare(&reply_envelope, &reply_id, name, outcome, max_reply_bytes);
            mailbox.post(ToIo::Finished { job, frames, code });
        });
    }
}

/// One log line per request: method, id (both clipped), duration, outcome code. Never params.
/// Counted in `metrics` too, when the endpoint is configured.
fn log_outcome(
    metrics: Option<&Metrics>,
    method: &str,
    id: &Value,
    elapsed: Duration,
    code: Option<ErrorCode>,
) {
    if let Some(metrics) = metrics {
        metrics.api_request(method, elapsed, code);
    }
    let outcome = code.map_or("ok", ErrorCode::name);
    tracing::info!(
        method = %clip(method),
        id = %clip(&id.to_string()),
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
