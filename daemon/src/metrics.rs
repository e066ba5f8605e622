//! Issue 17: metrics for whoever runs the line, on a loopback `/metrics` endpoint.
//!
//! [`Metrics`] holds a `prometheus-client` [`Registry`] and is fed from two places: the
//! service's [`issuance::events::Events`] ([`Metrics::on_event`], on the thread
//! [`Metrics::follow`] starts) and the server's one log line per request
//! ([`Metrics::api_request`]). [`MetricsServer`] answers `GET /metrics` in the Prometheus text
//! format (0.0.4), or OpenMetrics 1.0 when the scraper's `Accept` asks for it. It is started by
//! `idcardd serve` when `[metrics] listen` is set (loopback only: it has no authentication).
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `idcardd_cards_personalized_total` | counter | |
//! | `idcardd_cards_per_minute` | gauge | (cards personalized in the last 60 s) |
//! | `idcardd_record_failures_total` | counter | `reason` (one of [`FAILURE_REASONS`]) |
//! | `idcardd_reader_up` | gauge 0/1 | `reader` (configured readers only) |
//! | `idcardd_api_requests_total` | counter | `method` (a known method or `unknown`), `outcome` (`ok` or the error name) |
//! | `idcardd_api_request_seconds` | histogram | `method` |
//! | `idcardd_journal_up` | gauge 0/1 | ([`Metrics::set_journal_up`]) |
//! | `idcardd_batches_running` | gauge | |
//!
//! Every label value comes from a fixed set (method names, error names, reason classes,
//! configured readers), so the number of series is bounded whatever clients send.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::api::ErrorCode;
use crate::service::Service;
use issuance::events::Event;

/// Every value of the `reason` label of `idcardd_record_failures_total`.
pub const FAILURE_REASONS: &[&str] = &[
    "data_qc",
    "duplicate",
    "card_removed",
    "card_error",
    "key_store",
    "plan",
    "journal",
    "pin_mailer",
    "other",
];

/// Upper bounds (seconds) of the API latency histogram: 1 ms to 30 s (the default request
/// time limit); slower requests land in `+Inf`.
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
/// The window of `idcardd_cards_per_minute`.
const RATE_WINDOW: Duration = Duration::from_secs(60);
/// Personalization times kept for the rate (far above what a line of readers makes a minute).
const RATE_MAX_SAMPLES: usize = 100_000;
/// Batch ids remembered as running (a lost `batch.finished` event cannot grow the set beyond).
const MAX_RUNNING_BATCHES: usize = 10_000;

/// The largest HTTP request head the endpoint reads.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long one connection may take from accept to the last byte of the answer.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed straight away.
pub const MAX_CONNECTIONS: usize = 8;
/// How long a connection stays open after its answer, reading what the client still sends.
const LINGER: Duration = Duration::from_secs(1);
/// The most bytes read after the answer.
const LINGER_BYTES: usize = 64 * 1024;
/// `Content-Type` of an OpenMetrics answer.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `reason` of a record failure.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    /// One of [`FAILURE_REASONS`].
    reason: &'static str,
}

/// `reader` of a reader gauge.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReaderLabels {
    /// A configured reader's name.
    reader: String,
}

/// `method` and `outcome` of an API request.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// A known method name, or `unknown`.
    method: &'static str,
    /// `ok` or the error's snake_case name.
    outcome: &'static str,
}

/// `method` of the latency histogram.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    /// A known method name, or `unknown`.
    method: &'static str,
}

/// A latency histogram with [`LATENCY_BUCKETS`].
fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

/// The daemon's metrics; cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    /// What `/metrics` encodes.
    registry: Registry,
    /// `idcardd_cards_personalized_total`.
    cards_personalized: Counter,
    /// `idcardd_cards_per_minute`, set from `recent` at each scrape.
    cards_per_minute: Gauge,
    /// When the cards of the last [`RATE_WINDOW`] were personalized, oldest first.
    recent: Mutex<VecDeque<Instant>>,
    /// `idcardd_record_failures_total{reason}`.
    record_failures: Family<ReasonLabels, Counter>,
    /// `idcardd_reader_up{reader}`.
    reader_up: Family<ReaderLabels, Gauge>,
    /// The configured readers: the only `reader` label values.
    readers: Vec<String>,
    /// `idcardd_api_requests_total{method,outcome}`.
    api_requests: Family<RequestLabels, Counter>,
    /// `idcardd_api_request_seconds{method}`.
    api_seconds: Family<MethodLabels, Histogram, fn() -> Histogram>,
    /// `idcardd_journal_up`.
    journal_up: Gauge,
    /// `idcardd_batches_running`, the size of `running`.
    batches_running: Gauge,
    /// Batches seen running (`batch.progress`) and not finished yet (`batch.finished`).
    running: Mutex<HashSet<String>>,
}

impl Metrics {
    /// Metrics for a line of `readers` (each shown up until an event says otherwise); the
    /// journal is shown up.
    pub fn new(readers: &[String]) -> Metrics {
        let mut registry = Registry::with_prefix("idcardd");
        let cards_personalized = Counter::default();
        registry.register(
            "cards_personalized",
            "Cards personalized (batch records and card.personalize)",
            cards_personalized.clone(),
        );
        let cards_per_minute = Gauge::default();
        registry.register(
            "cards_per_minute",
            "Cards personalized in the last 60 seconds",
            cards_per_minute.clone(),
        );
        let record_failures = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "record_failures",
            "Records not personalized, by reason class (data_qc: rejected by data QC)",
            record_failures.clone(),
        );
        let reader_up = Family::<ReaderLabels, Gauge>::default();
        registry.register(
            "reader_up",
            "Whether a configured reader is attached (1) or not (0)",
            reader_up.clone(),
        );
        let api_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "api_requests",
            "API requests answered, by method and outcome (ok or the error name)",
            api_requests.clone(),
        );
        let api_seconds: Family<MethodLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register(
            "api_request_seconds",
            "Time from receiving an API request to its answer",
            api_seconds.clone(),
        );
        let journal_up = Gauge::default();
        journal_up.set(1);
        registry.register(
            "journal_up",
            "Whether the journal (system of record) answers (1) or not (0)",
            journal_up.clone(),
        );
        let batches_running = Gauge::default();
        registry.register(
            "batches_running",
            "Batches running in the background",
            batches_running.clone(),
        );
        for reason in FAILURE_REASONS {
            // Every class shows from the start (0), so a rate() over it has a baseline.
            let _ = record_failures.get_or_create(&ReasonLabels { reason });
        }
        let metrics = Metrics {
            registry,
            cards_personalized,
            cards_per_minute,
            recent: Mutex::new(VecDeque::new()),
            record_failures,
            reader_up,
            readers: readers.to_vec(),
            api_requests,
            api_seconds,
            journal_up,
            batches_running,
            running: Mutex::new(HashSet::new()),
        };
        for reader in readers {
            metrics.set_reader_up(reader, true);
        }
        metrics
    }

    /// Metrics for `svc`'s readers: simulated ones up, PC/SC ones up when pcscd lists them now
    /// (hot-plug events keep them current from then on).
    pub fn for_service(svc: &Service) -> Metrics {
        let names = svc.readers.names();
        let metrics = Metrics::new(&names);
        let sim = issuance::readers::SIM_PREFIX;
        if names.iter().any(|n| !n.starts_with(sim)) {
            let present = apdu::transport::pcsc::Pcsc::establish()
                .and_then(|p| p.list_readers())
                .map(|list| list.into_iter().map(|r| r.name).collect::<Vec<_>>())
                .unwrap_or_default();
            for name in names.iter().filter(|n| !n.starts_with(sim)) {
                metrics.set_reader_up(name, present.contains(name));
            }
        }
        metrics
    }

    /// Feeds `metrics` every event of `svc` on a thread of its own, until `metrics` is
    /// dropped (noticed at the next event) or the events' sender is gone.
    pub fn follow(metrics: &Arc<Metrics>, svc: &Service) -> std::io::Result<()> {
        let weak: Weak<Metrics> = Arc::downgrade(metrics);
        issuance::events::forward(svc.events.subscribe(), move |event| match weak.upgrade() {
            Some(m) => {
                m.on_event(&event);
                true
            }
            None => false,
        })
    }

    /// Counts what an event says: personalized cards and failed records (`batch.progress`),
    /// batches running (`batch.progress`, `batch.finished`), readers attached or removed.
    pub fn on_event(&self, event: &Event) {
        let body = &event.body;
        match event.topic.as_str() {
            "batch.progress" => {
                if let Some(id) = body["batch_id"].as_str() {
                    self.batch_running(id, true);
                }
                let record = &body["event"];
                match record["state"].as_str() {
                    // A card found already done (a resumed run) was counted when it was made.
                    Some("personalized") if record["found"] != "already_done" => {
                        self.card_personalized(Instant::now());
                    }
                    Some(state @ ("qc_failed" | "failed")) => {
                        self.record_failed(failure_reason(state, record["reason"].as_str()));
                    }
                    _ => {}
                }
            }
            "batch.finished" => {
                if let Some(id) = body["batch_id"].as_str() {
                    self.batch_running(id, false);
                }
            }
            // The service's journal lease thread publishes these (issue 17).
            "journal.unavailable" | "journal.available" => {
                self.set_journal_up(event.topic == "journal.available");
            }
            "reader.attached" | "reader.removed" => {
                if let Some(reader) = body["reader"].as_str() {
                    self.set_reader_up(reader, event.topic == "reader.attached");
                }
            }
            "pcsc.stopped" => {
                let sim = issuance::readers::SIM_PREFIX;
                for reader in self.readers.iter().filter(|r| !r.starts_with(sim)) {
                    self.set_reader_up(reader, false);
                }
            }
            _ => {}
        }
    }

    /// One card personalized at `at`.
    pub fn card_personalized(&self, at: Instant) {
        self.cards_personalized.inc();
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut recent, at);
        if recent.len() >= RATE_MAX_SAMPLES {
            recent.pop_front();
        }
        recent.push_back(at);
    }

    /// One record not personalized, for `reason` (a value of [`FAILURE_REASONS`]; anything
    /// else counts as `other`).
    pub fn record_failed(&self, reason: &str) {
        let reason = FAILURE_REASONS
            .iter()
            .find(|r| **r == reason)
            .copied()
            .unwrap_or("other");
        self.record_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Shows `reader` attached or not; a reader that is not configured is ignored (the label
    /// stays bounded by the configuration).
    pub fn set_reader_up(&self, reader: &str, up: bool) {
        if self.readers.iter().any(|r| r == reader) {
            self.reader_up
                .get_or_create(&ReaderLabels {
                    reader: reader.to_string(),
                })
                .set(i64::from(up));
        }
    }

    /// Shows the journal answering (`true`) or not; the journal's health check calls it.
    pub fn set_journal_up(&self, up: bool) {
        self.journal_up.set(i64::from(up));
    }

    /// One API request answered after `elapsed` (`code`: `None` for success). A
    /// `card.personalize` also counts its card, or its failure when the record or the card
    /// failed.
    pub fn api_request(&self, method: &str, elapsed: Duration, code: Option<ErrorCode>) {
        let method = method_label(method);
        let outcome = code.map_or("ok", ErrorCode::name);
        self.api_requests
            .get_or_create(&RequestLabels { method, outcome })
            .inc();
        self.api_seconds
            .get_or_create(&MethodLabels { method })
            .observe(elapsed.as_secs_f64());
        if method == "card.personalize" {
            match code {
                None => self.card_personalized(Instant::now()),
                Some(code) => {
                    if let Some(reason) = personalize_failure_reason(code) {
                        self.record_failed(reason);
                    }
                }
            }
        }
    }

    /// Notes batch `id` running or finished.
    fn batch_running(&self, id: &str, running: bool) {
        let mut set = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if running {
            if set.len() < MAX_RUNNING_BATCHES && !set.contains(id) {
                set.insert(id.to_string());
            }
        } else {
            set.remove(id);
        }
        self.batches_running.set(set.len() as i64);
    }

    /// Cards personalized in the last [`RATE_WINDOW`] before `now`.
    pub fn cards_last_minute(&self, now: Instant) -> usize {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        prune(&mut recent, now);
        recent.len()
    }

    /// The exposition: OpenMetrics 1.0 text when `openmetrics`, else the Prometheus text
    /// format 0.0.4.
    pub fn encode(&self, openmetrics: bool) -> String {
        self.cards_per_minute
            .set(self.cards_last_minute(Instant::now()) as i64);
        let mut out = String::new();
        let encoded = if openmetrics {
            prometheus_client::encoding::text::encode(&mut out, &self.registry)
        } else {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &self.registry)
        };
        if let Err(e) = encoded {
            // Writing into a String cannot fail; an encoder error would be a bug.
            tracing::error!("cannot encode the metrics: {e}");
        }
        out
    }
}

/// Drops the times before the window ending at `now`.
fn prune(recent: &mut VecDeque<Instant>, now: Instant) {
    while let Some(first) = recent.front() {
        if now.saturating_duration_since(*first) > RATE_WINDOW {
            recent.pop_front();
        } else {
            break;
        }
    }
}

/// The `method` label: the name of a known method, or `unknown` (clients choose method
/// strings; unknown ones must not grow the series).
pub fn method_label(method: &str) -> &'static str {
    crate::api::method(method).map_or("unknown", |m| m.name)
}

/// The reason class of a record that ended in `state` (`qc_failed` or `failed`) with the
/// free-text `reason` of its `batch.progress` event: always one of [`FAILURE_REASONS`].
pub fn failure_reason(state: &str, reason: Option<&str>) -> &'static str {
    if state == "qc_failed" {
        return "data_qc";
    }
    let reason = reason.unwrap_or("").trim_start();
    let has = |s: &str| reason.contains(s);
    if reason.starts_with("duplicate") {
        "duplicate"
    } else if reason.starts_with("data QC") {
        "data_qc"
    } else if has("key store unavailable") {
        "key_store"
    } else if has("card removed")
        || has("card reset")
        || has("no card in reader")
        || has("has no status word")
    {
        "card_removed"
    } else if reason.starts_with("card")
        || has("read-back")
        || has("already personalized")
        || has("terminated")
    {
        "card_error"
    } else if reason.starts_with("cannot build the card's files") {
        "plan"
    } else if reason.starts_with("journal") {
        "journal"
    } else if reason.starts_with("PIN mailer") {
        "pin_mailer"
    } else {
        "other"
    }
}

/// The reason class of a `card.personalize` that failed with `code`, when the record or the
/// card failed (`None` for refusals before any work: bad params, busy, no such reader).
fn personalize_failure_reason(code: ErrorCode) -> Option<&'static str> {
    Some(match code {
        ErrorCode::QcFailed => "data_qc",
        ErrorCode::AlreadyPersonalized => "duplicate",
        ErrorCode::CardRemoved => "card_removed",
        ErrorCode::CardError | ErrorCode::WrongCardState | ErrorCode::CardTerminated => {
            "card_error"
        }
        ErrorCode::KeyStoreUnavailable => "key_store",
        ErrorCode::Internal => "other",
        _ => return None,
    })
}

/// The `/metrics` endpoint: a thread with a small runtime serving HTTP/1.1, one request per
/// connection. Stops (and is joined) on drop.
#[derive(Debug)]
pub struct MetricsServer {
    /// Where it listens (the port chosen when `listen` had port 0).
    pub local_addr: SocketAddr,
    /// Dropped (or sent) to stop the accept loop.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    /// The serving thread.
    thread: Option<std::thread::JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `listen` (refused unless loopback: the endpoint has no authentication) and serves
    /// `metrics` there until dropped.
    pub fn start(listen: SocketAddr, metrics: Arc<Metrics>) -> anyhow::Result<MetricsServer> {
        if !listen.ip().is_loopback() {
            anyhow::bail!(
                "metrics.listen {listen} is not a loopback address: the metrics endpoint has no \
                 authentication (use 127.0.0.1:PORT or [::1]:PORT)"
            );
        }
        let listener = std::net::TcpListener::bind(listen)
            .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {listen}: {e}"))?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("idcardd-metrics".into())
            .spawn(move || {
                runtime.block_on(async move {
                    match tokio::net::TcpListener::from_std(listener) {
                        Ok(listener) => accept_loop(listener, metrics, stopped).await,
                        Err(e) => tracing::error!("metrics endpoint: {e}"),
                    }
                });
                // Connections still open are dropped with the runtime.
                runtime.shutdown_timeout(Duration::from_millis(100));
            })?;
        tracing::info!(listen = %local_addr, "metrics on http://{local_addr}/metrics");
        Ok(MetricsServer {
            local_addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections until `stopped`, each answered on a task of its own, at most
/// [`MAX_CONNECTIONS`] at once and each within [`CONNECTION_TIMEOUT`].
async fn accept_loop(
    listener: tokio::net::TcpListener,
    metrics: Arc<Metrics>,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait rather than spin.
                    tracing::warn!("metrics endpoint: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!("metrics endpoint: {MAX_CONNECTIONS} connections open, one closed");
            continue;
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            if tokio::time::timeout(CONNECTION_TIMEOUT, answer(stream, &metrics))
                .await
                .is_err()
            {
                tracing::debug!("metrics endpoint: a connection timed out");
            }
            drop(slot);
        });
    }
}

/// Reads one request head (at most [`MAX_REQUEST_BYTES`]) and answers it.
async fn answer(mut stream: tokio::net::TcpStream, metrics: &Metrics) {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            break true;
        }
        if head.len() >= MAX_REQUEST_BYTES {
            break false;
        }
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n.min(MAX_REQUEST_BYTES - head.len())]),
        }
    };
    let response = if complete {
        respond(&String::from_utf8_lossy(&head), metrics)
    } else {
        plain(
            431,
            "Request Header Fields Too Large",
            "request head too large\n",
        )
    };
    let _ = stream.write_all(&response).await;
    let _ = stream.shutdown().await;
    // Read what the client still sends (a refused head's rest) until it closes, briefly: a
    // close with unread input would reset the connection and lose the answer.
    let mut left = LINGER_BYTES;
    let linger = async {
        while left > 0 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, linger).await;
}

/// The answer to a request `head` (request line and headers).
fn respond(head: &str, metrics: &Metrics) -> Vec<u8> {
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or("");
    let mut parts = request_line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/1.")) {
        return plain(400, "Bad Request", "not an HTTP/1.x request\n");
    }
    let path = target.split('?').next().unwrap_or("");
    if path != "/metrics" {
        return plain(404, "Not Found", "only /metrics is served here\n");
    }
    if method != "GET" && method != "HEAD" {
        return plain(405, "Method Not Allowed", "use GET\n");
    }
    let openmetrics = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("accept")
                && value.contains("application/openmetrics-text")
        })
    });
    let body = metrics.encode(openmetrics);
    let content_type = if openmetrics {
        OPENMETRICS_CONTENT_TYPE
    } else {
        prometheus_client::encoding::prometheus_text::CONTENT_TYPE
    };
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if method == "GET" {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// A short plain-text answer.
fn plain(status: u16, reason: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn failure_reasons_stay_in_the_fixed_set() {
        let texts = [
            "duplicate: this tracking code is personalized in batch B1",
            "data QC: invalid_date",
            "key store unavailable: CKR_DEVICE_REMOVED",
            "card: transport error: card removed",
            "card: transport error: no card in reader sim:0",
            "card: card returned 6A82",
            "card 4944 is already personalized (life cycle activated); it was not overwritten",
            "read-back of EF 0101 differs from what was written",
            "cannot build the card's files: DG2 too large",
            "journal: database is locked",
            "PIN mailer record: bad",
            "",
            "\u{0}\u{7f} something nobody foresaw \"}\n",
        ];
        for text in texts {
            for state in ["failed", "qc_failed", "nonsense"] {
                let class = failure_reason(state, Some(text));
                assert!(FAILURE_REASONS.contains(&class), "{text:?} -> {class}");
            }
        }
        assert_eq!(
            failure_reason("qc_failed", Some("national_code")),
            "data_qc"
        );
        assert_eq!(failure_reason("failed", Some(texts[0])), "duplicate");
        assert_eq!(failure_reason("failed", Some(texts[2])), "key_store");
        assert_eq!(failure_reason("failed", Some(texts[3])), "card_removed");
        assert_eq!(failure_reason("failed", Some(texts[5])), "card_error");
        assert_eq!(failure_reason("failed", Some(texts[8])), "plan");
        assert_eq!(failure_reason("failed", Some(texts[9])), "journal");
        assert_eq!(failure_reason("failed", None), "other");

        // However many different reasons arrive, the series stay those of the fixed set.
        let m = Metrics::new(&["sim:0".into()]);
        for i in 0..500 {
            m.on_event(&Event {
                topic: "batch.progress".into(),
                body: json!({"batch_id": "B1", "event": {"state": "failed",
                             "reason": format!("card: unexpected {i}")}}),
            });
            m.record_failed(&format!("made-up-{i}"));
        }
        let text = m.encode(false);
        let series = text
            .lines()
            .filter(|l| l.starts_with("idcardd_record_failures_total{"))
            .count();
        assert_eq!(series, FAILURE_REASONS.len(), "{text}");
        assert!(text.contains("idcardd_record_failures_total{reason=\"card_error\"} 500"));
        assert!(text.contains("idcardd_record_failures_total{reason=\"other\"} 500"));
    }

    #[test]
    fn api_labels_are_bounded() {
        let m = Metrics::new(&[]);
        for i in 0..100 {
            m.api_request(&format!("no.such{i}"), Duration::from_millis(3), None);
        }
        m.api_request(
            "batch.submit",
            Duration::from_millis(20),
            Some(ErrorCode::Busy),
        );
        let text = m.encode(false);
        assert!(text.contains("idcardd_api_requests_total{method=\"unknown\",outcome=\"ok\"} 100"));
        assert!(
            text.contains("idcardd_api_requests_total{method=\"batch.submit\",outcome=\"busy\"} 1")
        );
        assert!(text.contains("idcardd_api_request_seconds_count{method=\"unknown\"} 100"));
        assert!(!text.contains("no.such"));

        // card.personalize counts its card, or the failure of its record or card.
        let ms = Duration::from_millis(800);
        m.api_request("card.personalize", ms, None);
        m.api_request("card.personalize", ms, Some(ErrorCode::QcFailed));
        m.api_request("card.personalize", ms, Some(ErrorCode::InvalidParams));
        let text = m.encode(false);
        assert!(
            text.contains("idcardd_cards_personalized_total 1\n"),
            "{text}"
        );
        assert!(text.contains("idcardd_record_failures_total{reason=\"data_qc\"} 1\n"));
        let failures = text
            .lines()
            .filter(|l| l.starts_with("idcardd_record_failures_total{") && !l.ends_with(" 0"))
            .count();
        assert_eq!(failures, 1, "{text}");
    }

    #[test]
    fn events_feed_cards_readers_and_batches() {
        let m = Metrics::new(&["sim:0".into(), "Reader A".into()]);
        let event = |topic: &str, body| Event {
            topic: topic.into(),
            body,
        };
        m.on_event(&event(
            "batch.progress",
            json!({"batch_id": "B1", "event": {"state": "personalized", "found": "fresh"}}),
        ));
        m.on_event(&event(
            "batch.progress",
            json!({"batch_id": "B1", "event": {"state": "personalized", "found": "already_done"}}),
        ));
        m.on_event(&event(
            "batch.progress",
            json!({"batch_id": "B1", "event": {"state": "qc_failed", "reason": "birth_date"}}),
        ));
        m.on_event(&event("reader.removed", json!({"reader": "Reader A"})));
        m.on_event(&event("reader.attached", json!({"reader": "Reader Z"})));
        let text = m.encode(false);
        assert!(
            text.contains("idcardd_cards_personalized_total 1\n"),
            "{text}"
        );
        assert!(text.contains("idcardd_cards_per_minute 1\n"), "{text}");
        assert!(text.contains("idcardd_record_failures_total{reason=\"data_qc\"} 1\n"));
        assert!(text.contains("idcardd_batches_running 1\n"));
        assert!(text.contains("idcardd_reader_up{reader=\"sim:0\"} 1\n"));
        assert!(text.contains("idcardd_reader_up{reader=\"Reader A\"} 0\n"));
        assert!(!text.contains("Reader Z"));
        assert!(text.contains("idcardd_journal_up 1\n"));
        m.on_event(&event("batch.finished", json!({"batch_id": "B1"})));
        m.set_journal_up(false);
        let text = m.encode(true);
        assert!(text.contains("idcardd_batches_running 0\n"));
        assert!(text.contains("idcardd_journal_up 0\n"));
        assert!(text.ends_with("# EOF\n"));
        // The rate forgets cards older than a minute.
        assert_eq!(
            m.cards_last_minute(Instant::now() + Duration::from_secs(61)),
            0
        );
    }

    #[test]
    fn requests_other_than_get_metrics_are_refused() {
        let m = Metrics::new(&[]);
        let status = |head: &str| {
            let out = String::from_utf8(respond(head, &m)).unwrap();
            out.split(' ').nth(1).unwrap().to_string()
        };
        assert_eq!(status("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), "200");
        assert_eq!(status("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), "200");
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), "404");
        assert_eq!(status("POST /metrics HTTP/1.1\r\n\r\n"), "405");
        assert_eq!(status("hello\r\n\r\n"), "400");
        let om = String::from_utf8(respond(
            "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
            &m,
        ))
        .unwrap();
        assert!(om.contains(OPENMETRICS_CONTENT_TYPE), "{om}");
    }

    #[test]
    fn a_non_loopback_listen_address_is_refused() {
        let m = Arc::new(Metrics::new(&[]));
        let e = MetricsServer::start("0.0.0.0:0".parse().unwrap(), m.clone()).unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), m).unwrap();
        assert!(server.local_addr.ip().is_loopback());
        drop(server);
    }
}
