//! `idcardd.toml`: the daemon's configuration file, and the command-line overrides.
//!
//! [`FileConfig`] mirrors the file (every section optional, unknown keys refused with the key's
//! name); [`Overrides`] are the `idcardd serve` flags; [`Settings::resolve`] merges the two with
//! the defaults into a [`crate::service::ServiceConfig`] plus the [`ServerSettings`] of the
//! socket loop. `idcardd.example.toml` at the repository root documents every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde::Deserialize;

use crate::service::ServiceConfig;
use issuance::delivery::DeliveryPolicy;

/// Default largest request message (all frames together): 16 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// Default number of requests worked on at once, over all clients.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 32;
/// Default time a request may take before the client is answered `timeout`.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Default time shutdown waits for requests in progress.
pub const DEFAULT_SHUTDOWN_GRACE_MS: u64 = 10_000;
/// Default bound of each peer's queue, each way, in messages (libzmq's `ZMQ_SNDHWM` and
/// `ZMQ_RCVHWM`): replies to a peer whose queue is full are dropped.
pub const DEFAULT_PEER_QUEUE_MESSAGES: i32 = 1000;
/// Default largest reply, all frames together: 16 MiB.
pub const DEFAULT_MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

/// The file as written: every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where journal.sqlite, audit.db and the simulated cards (`sim/`) live.
    pub state_dir: Option<PathBuf>,
    /// A directory of card profiles (`<name>.toml`) overriding or adding to the built-in ones.
    pub profiles_dir: Option<PathBuf>,
    /// `[server]`: sockets and limits.
    #[serde(default)]
    pub server: ServerSection,
    /// `[readers]`: which readers to serve.
    #[serde(default)]
    pub readers: ReadersSection,
    /// `[pki]`: document signing and the trust list.
    #[serde(default)]
    pub pki: PkiSection,
    /// `[delivery]`: the delivery policy.
    #[serde(default)]
    pub delivery: DeliverySection,
    /// `[learned]`.
    #[serde(default)]
    pub learned: LearnedSection,
    /// `[retention]`: how long the journal keeps applicants' biometrics.
    #[serde(default)]
    pub retention: RetentionSection,
    /// `[keys]`: the issuer's PKCS#11 token (module, token_label, pin = { file = ".." } or
    /// { env = "VAR" }, labels, softhsm_conf); absent: the embedded SoftHSM token of the state
    /// directory.
    pub keys: Option<keystore::KeyStoreConfig>,
    /// `[metrics]`: the Prometheus endpoint (issue 17).
    #[serde(default)]
    pub metrics: MetricsSection,
    /// The journal: `postgres://user@host:port/database` for a line's shared journal (issue
    /// 17); absent: the station's own `<state_dir>/journal.sqlite`.
    pub journal: Option<String>,
    /// The journal's password: `{ file = ".." }` (its first line) or `{ env = "VAR" }`;
    /// never in the URL, never on the command line.
    pub journal_password: Option<issuance::db::Credentials>,
    /// This station's identity, recorded with every transition (default: the host name).
    pub station_id: Option<String>,
    /// `[line]`: how this station works with the others of its line.
    #[serde(default)]
    pub line: LineSection,
}

/// `[line]` of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LineSection {
    /// Seconds after its last lease renewal a silent station's claimed records move to the
    /// other stations (default 15).
    pub lease_s: Option<u64>,
    /// PostgreSQL connections this station keeps (default 4).
    pub pool_size: Option<u32>,
    /// Work on every running batch of the shared journal with this station's readers
    /// (default true with PostgreSQL).
    pub join_batches: Option<bool>,
}

impl FileConfig {
    /// The journal settings of the file (`journal`, `journal_password`, `station_id`,
    /// `[line]`).
    pub fn journal_config(&self) -> anyhow::Result<issuance::journal::JournalConfig> {
        if let Some(lease) = self.line.lease_s {
            if lease < 3 {
                anyhow::bail!("line.lease_s must be at least 3 seconds");
            }
        }
        if self.journal.is_some() && self.journal_password.is_none() {
            tracing::debug!("journal without journal_password: trust or peer authentication");
        }
        Ok(issuance::journal::JournalConfig {
            url: self.journal.clone(),
            password: self.journal_password.clone(),
            pool_size: self.line.pool_size,
            station_id: self.station_id.clone(),
            lease: self.line.lease_s.map(Duration::from_secs),
            join_batches: self.line.join_batches,
        })
    }
}

/// `[metrics]` of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// Loopback address and port of the `/metrics` endpoint (`"127.0.0.1:9187"`); absent: no
    /// endpoint. It has no authentication, so any other address is refused.
    pub listen: Option<SocketAddr>,
}

/// `[retention]` of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSection {
    /// Seconds a personalized record's face and fingers stay in the journal (default 0).
    pub biometrics_after_personalized_s: Option<u64>,
    /// Days the biometrics of a QC-failed or failed record stay (default 30).
    pub failed_records_days: Option<u32>,
}

/// `[server]` of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// ROUTER endpoint for requests (`ipc:///path` or `tcp://host:port`).
    pub endpoint: Option<String>,
    /// PUB endpoint for events.
    pub events: Option<String>,
    /// Group given the ipc socket files (mode 0660) and the runtime directory (mode 0750).
    pub socket_group: Option<String>,
    /// Accept a tcp endpoint on a non-loopback address (logged as a warning at start).
    pub allow_non_loopback: Option<bool>,
    /// Largest request message, all frames together, in bytes.
    pub max_message_bytes: Option<usize>,
    /// Requests worked on at once over all clients; more are answered `busy`.
    pub max_in_flight: Option<usize>,
    /// Time limit of one request in milliseconds.
    pub request_timeout_ms: Option<u64>,
    /// How long SIGTERM/SIGINT waits for requests in progress, in milliseconds.
    pub shutdown_grace_ms: Option<u64>,
    /// Replies queued for one peer before more are dropped (ZMQ_SNDHWM), in messages.
    pub send_queue: Option<i32>,
    /// Requests queued from one peer before libzmq stops reading it (ZMQ_RCVHWM).
    pub receive_queue: Option<i32>,
    /// Largest reply, all frames together, in bytes; a larger one becomes an `internal` error.
    pub max_reply_bytes: Option<usize>,
    /// The CURVE server key file (created 0600 at first start; refused when group or others may
    /// read it). Setting it puts CURVE on every tcp endpoint; tcp beyond loopback requires it.
    pub curve_key_file: Option<PathBuf>,
    /// Client public keys (z85, 40 characters) allowed to connect over CURVE.
    pub curve_clients: Option<Vec<String>>,
    /// A file of more client public keys, one z85 key a line (`#` comments).
    pub curve_clients_file: Option<PathBuf>,
}

/// `[readers]` of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadersSection {
    /// Reader names: `sim:N`, PC/SC names, or `pcsc` for every PC/SC reader present at start.
    pub names: Option<Vec<String>>,
}

/// `[pki]` of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PkiSection {
    /// The Document Signer directory (see `idcardd pki init`).
    pub dir: Option<PathBuf>,
    /// Trusted CSCA certificates (PEM), relative to `dir` when not absolute.
    pub trust: Option<Vec<PathBuf>>,
}

/// `[delivery]` of the file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySection {
    /// Target false-match rate of the fingerprint decision.
    pub fmr: Option<f64>,
    /// Failed verifications allowed per card.
    pub max_attempts: Option<u32>,
    /// Seconds after a successful verify during which activation is allowed.
    pub activate_window_s: Option<u64>,
    /// Seconds a delivery session lives without activity.
    pub session_ttl_s: Option<u64>,
    /// Whether activation without `transport_pin` looks the card's transport PIN up in the
    /// sealed PIN mailer (default true; false: only the mailer's print step reads it).
    pub transport_pin_from_mailer: Option<bool>,
    /// This station's office: cards are handed over only once received here.
    pub office: Option<String>,
}

/// `[learned]` of the file: the optional learned minutiae extractor (LEADER; docs/matcher.md).
/// Absent: never used.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LearnedSection {
    /// Folder of `LEADER.onnx` and the ONNX Runtime library (default: `$IDCARDD_LEARNED_DIR`,
    /// else `/usr/local/lib/idcardd`, where scripts/setup.sh installs them).
    pub dir: Option<PathBuf>,
    /// Threads of one learned extraction (default 2).
    pub threads: Option<usize>,
    /// Whether batch personalization extracts the card templates with it (enrollment QC's
    /// image quality stays the default extractor's). Default false.
    pub card_templates: Option<bool>,
    /// `[low, high]`: a delivery verification whose score lies from `low` to below `high`
    /// times the decision threshold is decided again on the learned extractor's minutiae of
    /// the live scans. Absent: no second opinion.
    pub second_opinion: Option<[f32; 2]>,
}

/// The learned extractor and what the daemon does with it.
struct Learned {
    /// Card templates at enrollment.
    card_templates: Option<std::sync::Arc<dyn matcher::extract::MinutiaeExtractor>>,
    /// The delivery desk's second opinion.
    second_opinion: Option<issuance::delivery::SecondOpinion>,
}

impl LearnedSection {
    /// Opens the learned extractor when anything asks for it: a missing or altered model or
    /// runtime stops the daemon's start with the reason.
    fn open(self) -> anyhow::Result<Learned> {
        let card_templates = self.card_templates.unwrap_or(false);
        if let Some([low, high]) = self.second_opinion {
            if !(low.is_finite() && high.is_finite() && 0.0 <= low && low < high) {
                anyhow::bail!("learned.second_opinion must be [low, high] with 0 <= low < high, e.g. [0.0, 1.5]");
            }
        }
        if !card_templates && self.second_opinion.is_none() {
            return Ok(Learned {
                card_templates: None,
                second_opinion: None,
            });
        }
        let dir = self
            .dir
            .unwrap_or_else(leader::LearnedExtractor::default_dir);
        let extractor: std::sync::Arc<dyn matcher::extract::MinutiaeExtractor> =
            std::sync::Arc::new(
                leader::LearnedExtractor::open(&dir, self.threads.unwrap_or(2)).with_context(
                    || format!("[learned]: the learned extractor in {}", dir.display()),
                )?,
            );
        Ok(Learned {
            card_templates: card_templates.then(|| extractor.clone()),
            second_opinion: self.second_opinion.map(|[low, high]| {
                issuance::delivery::SecondOpinion {
                    extractor,
                    low,
                    high,
                }
            }),
        })
    }
}

/// `idcardd serve` flags that win over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--endpoint`.
    pub endpoint: Option<String>,
    /// `--events`.
    pub events: Option<String>,
    /// `--readers`: `sim:N` (N simulated readers), `pcsc`, or a comma-separated list of names.
    pub readers: Option<String>,
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--profiles`.
    pub profiles_dir: Option<PathBuf>,
}

/// What the socket loop needs.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// ROUTER endpoint.
    pub endpoint: String,
    /// PUB endpoint.
    pub events: String,
    /// Group of the socket files and runtime directory, if any.
    pub socket_group: Option<String>,
    /// A tcp endpoint may listen on a non-loopback address.
    pub allow_non_loopback: bool,
    /// Largest request message in bytes.
    pub max_message_bytes: usize,
    /// Requests worked on at once.
    pub max_in_flight: usize,
    /// Time limit of one request.
    pub request_timeout: Duration,
    /// How long shutdown waits for requests in progress.
    pub shutdown_grace: Duration,
    /// Where `/metrics` is served (loopback only), if anywhere.
    pub metrics_listen: Option<SocketAddr>,
}

/// How the sockets protect themselves from their peers (kept apart from [`ServerSettings`] so
/// code that builds those by hand, `idcardd demo`, gets the defaults).
#[derive(Debug, Clone)]
pub struct TransportSettings {
    /// ZMQ_SNDHWM of the request socket: replies queued per peer before they are dropped.
    pub send_queue: i32,
    /// ZMQ_RCVHWM of the request socket: requests queued per peer.
    pub receive_queue: i32,
    /// Largest reply in bytes.
    pub max_reply_bytes: usize,
    /// CURVE on tcp endpoints, when configured.
    pub curve: Option<CurveSettings>,
}

impl Default for TransportSettings {
    fn default() -> TransportSettings {
        TransportSettings {
            send_queue: DEFAULT_PEER_QUEUE_MESSAGES,
            receive_queue: DEFAULT_PEER_QUEUE_MESSAGES,
            max_reply_bytes: DEFAULT_MAX_REPLY_BYTES,
            curve: None,
        }
    }
}

/// CURVE authentication and encryption of tcp endpoints.
#[derive(Debug, Clone)]
pub struct CurveSettings {
    /// The server's key pair (see [`super::curve::ServerKey`]).
    pub key_file: PathBuf,
    /// The client public keys allowed in, each 32 bytes (decoded from z85).
    pub clients: Vec<[u8; 32]>,
}

/// Decodes a z85 CURVE public key (40 characters).
pub fn decode_key(z85: &str) -> anyhow::Result<[u8; 32]> {
    let z85 = z85.trim();
    zmq::z85_decode(z85)
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{:?} is not a z85 CURVE key (40 characters)",
                z85.chars().take(48).collect::<String>()
            )
        })
}

/// The client keys of the file: `curve_clients` and the lines of `curve_clients_file`.
fn curve_clients(list: Vec<String>, file: Option<&Path>) -> anyhow::Result<Vec<[u8; 32]>> {
    let mut keys = Vec::new();
    for key in &list {
        keys.push(decode_key(key).context("server.curve_clients")?);
    }
    if let Some(path) = file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read server.curve_clients_file {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if !line.is_empty() {
                keys.push(
                    decode_key(line)
                        .with_context(|| format!("{} line {}", path.display(), n + 1))?,
                );
            }
        }
    }
    Ok(keys)
}

/// Everything `idcardd serve` starts from.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The sockets and limits.
    pub server: ServerSettings,
    /// Per-peer bounds and CURVE.
    pub transport: TransportSettings,
    /// What the methods share.
    pub service: ServiceConfig,
}

impl FileConfig {
    /// Reads and parses a file; unknown keys and wrong types are errors naming the key.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration {}", path.display()))?;
        FileConfig::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses the text of a file.
    pub fn parse(text: &str) -> anyhow::Result<FileConfig> {
        toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.to_string().trim_end()))
    }
}

/// Whether the process runs as root (system paths instead of per-user ones).
fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The directory of the default sockets: `$XDG_RUNTIME_DIR/idcardd`, else `/run/idcardd` for
/// root, else `/tmp/idcardd-<uid>`.
pub fn default_runtime_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("idcardd");
    }
    if is_root() {
        return PathBuf::from("/run/idcardd");
    }
    PathBuf::from(format!("/tmp/idcardd-{}", nix::unistd::geteuid()))
}

/// The default state directory: `/var/lib/idcardd` for root, else `$XDG_STATE_HOME/idcardd`,
/// else `~/.local/state/idcardd`, else `./idcardd-state`.
pub fn default_state_dir() -> PathBuf {
    if is_root() {
        return PathBuf::from("/var/lib/idcardd");
    }
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("idcardd");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/state/idcardd");
    }
    PathBuf::from("idcardd-state")
}

/// Expands a `--readers` value: `sim:N` is N simulated readers `sim:0..sim:N-1`, `pcsc` stays
/// `pcsc` (expanded at start), anything else is a comma-separated list of reader names.
pub fn parse_readers_flag(value: &str) -> anyhow::Result<Vec<String>> {
    let value = value.trim();
    if !value.contains(',') {
        if let Some(n) = value.strip_prefix(issuance::readers::SIM_PREFIX) {
            let n: usize = n.parse().map_err(|_| {
                anyhow::anyhow!("--readers {value:?}: expected sim:N (N simulated readers)")
            })?;
            if n == 0 {
                anyhow::bail!("--readers sim:0 serves no reader: use sim:1 or more");
            }
            return Ok((0..n).map(|i| format!("sim:{i}")).collect());
        }
    }
    let names: Vec<String> = value
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(String::from)
        .collect();
    if names.is_empty() {
        anyhow::bail!("--readers is empty");
    }
    Ok(names)
}

impl Settings {
    /// Merges `file` and `flags` with the defaults and checks the result.
    pub fn resolve(file: FileConfig, flags: &Overrides) -> anyhow::Result<Settings> {
        let journal = file.journal_config()?;
        let s = file.server;
        let runtime = default_runtime_dir();
        let endpoint = flags
            .endpoint
            .clone()
            .or(s.endpoint)
            .unwrap_or_else(|| format!("ipc://{}", runtime.join("idcardd.sock").display()));
        let events = flags
            .events
            .clone()
            .or(s.events)
            .unwrap_or_else(|| format!("ipc://{}", runtime.join("events.sock").display()));
        if endpoint == events {
            anyhow::bail!("the request endpoint and the events endpoint are both {endpoint}");
        }
        let max_in_flight = s.max_in_flight.unwrap_or(DEFAULT_MAX_IN_FLIGHT);
        if max_in_flight == 0 {
            anyhow::bail!("server.max_in_flight must be at least 1");
        }
        let max_message_bytes = s.max_message_bytes.unwrap_or(DEFAULT_MAX_MESSAGE_BYTES);
        if max_message_bytes < 1024 {
            anyhow::bail!("server.max_message_bytes must be at least 1024");
        }
        let request_timeout_ms = s.request_timeout_ms.unwrap_or(DEFAULT_REQUEST_TIMEOUT_MS);
        if request_timeout_ms == 0 {
            anyhow::bail!("server.request_timeout_ms must be at least 1");
        }
        let send_queue = s.send_queue.unwrap_or(DEFAULT_PEER_QUEUE_MESSAGES);
        let receive_queue = s.receive_queue.unwrap_or(DEFAULT_PEER_QUEUE_MESSAGES);
        if send_queue < 1 || receive_queue < 1 {
            anyhow::bail!("server.send_queue and server.receive_queue must be at least 1");
        }
        let max_reply_bytes = s.max_reply_bytes.unwrap_or(DEFAULT_MAX_REPLY_BYTES);
        if max_reply_bytes < 1024 {
            anyhow::bail!("server.max_reply_bytes must be at least 1024");
        }
        let clients = curve_clients(
            s.curve_clients.unwrap_or_default(),
            s.curve_clients_file.as_deref(),
        )?;
        let curve = match s.curve_key_file {
            Some(key_file) if clients.is_empty() => anyhow::bail!(
                "server.curve_key_file {} is set but no client may connect: list their public \
                 keys in server.curve_clients or server.curve_clients_file",
                key_file.display()
            ),
            Some(key_file) => Some(CurveSettings { key_file, clients }),
            None if !clients.is_empty() => {
                anyhow::bail!("server.curve_clients is set without server.curve_key_file")
            }
            None => None,
        };
        let metrics_listen = file.metrics.listen;
        if let Some(listen) = metrics_listen {
            if !listen.ip().is_loopback() {
                anyhow::bail!(
                    "metrics.listen {listen} is not a loopback address: the metrics endpoint \
                     has no authentication (use 127.0.0.1:PORT or [::1]:PORT)"
                );
            }
        }
        let transport = TransportSettings {
            send_queue,
            receive_queue,
            max_reply_bytes,
            curve,
        };
        let server = ServerSettings {
            endpoint,
            events,
            socket_group: s.socket_group,
            allow_non_loopback: s.allow_non_loopback.unwrap_or(false),
            max_message_bytes,
            max_in_flight,
            request_timeout: Duration::from_millis(request_timeout_ms),
            shutdown_grace: Duration::from_millis(
                s.shutdown_grace_ms.unwrap_or(DEFAULT_SHUTDOWN_GRACE_MS),
            ),
            metrics_listen,
        };

        let state_dir = flags
            .state_dir
            .clone()
            .or(file.state_dir)
            .unwrap_or_else(default_state_dir);
        let readers = match &flags.readers {
            Some(flag) => parse_readers_flag(flag)?,
            None => file.readers.names.unwrap_or_else(|| vec!["pcsc".into()]),
        };
        if readers.is_empty() {
            anyhow::bail!("readers.names is empty: name at least one reader, or \"pcsc\"");
        }
        for name in &readers {
            issuance::readers::parse_sim_name(name)?;
        }
        let mut service = ServiceConfig::new(state_dir, readers);
        service.journal = journal;
        service.trust = file
            .pki
            .trust
            .unwrap_or_default()
            .into_iter()
            .map(|t| match (&file.pki.dir, t.is_absolute()) {
                (Some(dir), false) => dir.join(t),
                _ => t,
            })
            .collect();
        service.pki_dir = file.pki.dir;
        service.keys = file.keys;
        service.profiles_dir = flags.profiles_dir.clone().or(file.profiles_dir);
        let retention = issuance::journal::Retention::default();
        service.retention = issuance::journal::Retention {
            biometrics_after_personalized: file
                .retention
                .biometrics_after_personalized_s
                .map_or(retention.biometrics_after_personalized, Duration::from_secs),
            failed_records_days: file
                .retention
                .failed_records_days
                .unwrap_or(retention.failed_records_days),
        };
        let learned = file.learned.open()?;
        let d = file.delivery;
        let defaults = DeliveryPolicy::default();
        service.delivery = DeliveryPolicy {
            fmr: d.fmr.unwrap_or(defaults.fmr),
            max_attempts: d.max_attempts.unwrap_or(defaults.max_attempts),
            activate_window: d
                .activate_window_s
                .map(Duration::from_secs)
                .unwrap_or(defaults.activate_window),
            session_ttl: d
                .session_ttl_s
                .map(Duration::from_secs)
                .unwrap_or(defaults.session_ttl),
            transport_pin_from_mailer: d
                .transport_pin_from_mailer
                .unwrap_or(defaults.transport_pin_from_mailer),
            office: d.office,
            second_opinion: learned.second_opinion,
        };
        service.template_extractor = learned.card_templates;
        if !(service.delivery.fmr > 0.0 && service.delivery.fmr < 1.0) {
            anyhow::bail!("delivery.fmr must be between 0 and 1, e.g. 0.001");
        }
        Ok(Settings {
            server,
            transport,
            service,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_file_parses_and_resolves() {
        let text = include_str!("../../../idcardd.example.toml");
        let file = FileConfig::parse(text).unwrap();
        let settings = Settings::resolve(file, &Overrides::default()).unwrap();
        assert_eq!(settings.server.max_in_flight, 32);
        assert_eq!(settings.service.readers, vec!["sim:0", "sim:1"]);
        assert_eq!(settings.service.delivery.max_attempts, 3);
        assert_eq!(settings.service.retention.failed_records_days, 30);
    }

    #[test]
    fn the_learned_extractor_opens_when_asked_for_or_says_why_not() {
        let resolve = |section: &str| {
            let text = format!("[readers]\nnames = [\"sim:0\"]\n[learned]\n{section}");
            Settings::resolve(FileConfig::parse(&text)?, &Overrides::default())
        };
        // Not asked for: not opened, even from a folder that does not exist.
        let s = resolve("dir = \"/nonexistent/learned\"\n").unwrap();
        assert!(s.service.delivery.second_opinion.is_none());
        assert!(s.service.template_extractor.is_none());
        let e = resolve("dir = \"/nonexistent/learned\"\ncard_templates = true\n").unwrap_err();
        let why = format!("{e:#}");
        assert!(
            why.contains("/nonexistent/learned") && why.contains("scripts/setup.sh"),
            "{why}"
        );
        let e = resolve("second_opinion = [1.5, 0.5]\n").unwrap_err();
        assert!(e.to_string().contains("second_opinion"), "{e}");
        assert!(resolve("second_opinions = [0.5, 1.5]\n").is_err());
        if test_support::learned::installed_dir().is_none() {
            return;
        }
        let s =
            resolve("second_opinion = [0.25, 2.0]\nthreads = 1\ncard_templates = true\n").unwrap();
        let so = s.service.delivery.second_opinion.unwrap();
        assert_eq!(
            (so.low, so.high, so.extractor.name()),
            (0.25, 2.0, "leader")
        );
        assert!(so.asks(0.1, 0.2) && !so.asks(0.4, 0.2) && !so.asks(0.04, 0.2));
        assert_eq!(s.service.template_extractor.unwrap().name(), "leader");
    }

    #[test]
    fn retention_comes_from_the_file() {
        let text = "[readers]\nnames = [\"sim:0\"]\n[retention]\nbiometrics_after_personalized_s = 3600\nfailed_records_days = 7\n";
        let s = Settings::resolve(FileConfig::parse(text).unwrap(), &Overrides::default()).unwrap();
        assert_eq!(
            s.service.retention.biometrics_after_personalized,
            Duration::from_secs(3600)
        );
        assert_eq!(s.service.retention.failed_records_days, 7);
        let e = FileConfig::parse("[retention]\nkeep_forever = true\n").unwrap_err();
        assert!(e.to_string().contains("keep_forever"), "{e}");
    }

    #[test]
    fn unknown_keys_are_refused_by_name() {
        let e = FileConfig::parse("[server]\nmax_inflight = 3\n").unwrap_err();
        assert!(e.to_string().contains("max_inflight"), "{e}");
        let e = FileConfig::parse("colour = \"red\"\n").unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = FileConfig::parse("[server]\nmax_in_flight = \"many\"\n").unwrap_err();
        assert!(e.to_string().contains("max_in_flight"), "{e}");
    }

    #[test]
    fn flags_win_over_the_file() {
        let file = FileConfig::parse(
            "state_dir = \"/a\"\n[server]\nendpoint = \"ipc:///x/s.sock\"\n[readers]\nnames = [\"pcsc\"]\n",
        )
        .unwrap();
        let flags = Overrides {
            endpoint: Some("tcp://127.0.0.1:5555".into()),
            readers: Some("sim:3".into()),
            state_dir: Some("/b".into()),
            ..Default::default()
        };
        let s = Settings::resolve(file, &flags).unwrap();
        assert_eq!(s.service.profiles_dir, None);
        assert_eq!(s.server.endpoint, "tcp://127.0.0.1:5555");
        assert_eq!(s.service.readers, vec!["sim:0", "sim:1", "sim:2"]);
        assert_eq!(s.service.state_dir, PathBuf::from("/b"));
        assert_eq!(s.service.sim_dir, PathBuf::from("/b/sim"));
    }

    /// `serve` takes custom profiles from the file, the flag winning, and the service built from
    /// them knows a profile the built-in set does not have.
    #[test]
    fn custom_profiles_from_the_file_or_the_flag_reach_the_service() {
        let dir = tempfile::tempdir().unwrap();
        let profiles = dir.path().join("profiles");
        std::fs::create_dir(&profiles).unwrap();
        let national = include_str!("../../../issuance/profiles/national-id.toml");
        let pilot = national.replace("name = \"national-id\"", "name = \"pilot-id\"");
        std::fs::write(profiles.join("pilot-id.toml"), pilot).unwrap();
        let text = format!(
            "state_dir = {:?}\nprofiles_dir = \"/nowhere\"\n[readers]\nnames = [\"sim:0\"]\n",
            dir.path().join("state")
        );
        let from_file = Settings::resolve(FileConfig::parse(&text).unwrap(), &Overrides::default());
        assert_eq!(
            from_file.unwrap().service.profiles_dir,
            Some(PathBuf::from("/nowhere"))
        );
        let flags = Overrides {
            profiles_dir: Some(profiles.clone()),
            ..Default::default()
        };
        let s = Settings::resolve(FileConfig::parse(&text).unwrap(), &flags).unwrap();
        assert_eq!(s.service.profiles_dir, Some(profiles));
        let svc =
            crate::service::Service::open(s.service.with_keys(test_support::hsm::shared_config()))
                .unwrap();
        assert!(svc.profiles.get("pilot-id").is_some());
        assert!(svc.profiles.get("national-id").is_some());
    }

    #[test]
    fn readers_flag_forms() {
        assert_eq!(parse_readers_flag("sim:2").unwrap(), vec!["sim:0", "sim:1"]);
        assert_eq!(parse_readers_flag("pcsc").unwrap(), vec!["pcsc"]);
        assert_eq!(
            parse_readers_flag("Reader A, Reader B").unwrap(),
            vec!["Reader A", "Reader B"]
        );
        assert_eq!(parse_readers_flag("sim:5,").unwrap(), vec!["sim:5"]);
        assert!(parse_readers_flag("sim:x").is_err());
        assert!(parse_readers_flag("sim:0").is_err());
        assert!(parse_readers_flag(" , ").is_err());
    }

    /// Issue 17: the metrics endpoint has no authentication, so it listens on loopback only.
    #[test]
    fn metrics_listen_must_be_loopback() {
        let resolve =
            |text: &str| Settings::resolve(FileConfig::parse(text)?, &Overrides::default());
        let s = resolve("[metrics]\nlisten = \"127.0.0.1:9187\"\n").unwrap();
        assert_eq!(
            s.server.metrics_listen,
            Some("127.0.0.1:9187".parse().unwrap())
        );
        let s = resolve("[metrics]\nlisten = \"[::1]:9187\"\n").unwrap();
        assert!(s.server.metrics_listen.unwrap().ip().is_loopback());
        assert_eq!(resolve("").unwrap().server.metrics_listen, None);
        for listen in ["0.0.0.0:9187", "192.168.1.10:9187", "[::]:9187"] {
            let e = resolve(&format!("[metrics]\nlisten = \"{listen}\"\n")).unwrap_err();
            assert!(
                e.to_string().contains("not a loopback address"),
                "{listen}: {e}"
            );
        }
        let e = FileConfig::parse("[metrics]\nlisten = \"localhost\"\n").unwrap_err();
        assert!(e.to_string().contains("listen"), "{e}");
        let e = FileConfig::parse("[metrics]\nport = 9187\n").unwrap_err();
        assert!(e.to_string().contains("port"), "{e}");
    }

    #[test]
    fn bad_limits_are_refused() {
        for text in [
            "[server]\nmax_in_flight = 0\n",
            "[server]\nrequest_timeout_ms = 0\n",
            "[delivery]\nfmr = 2.0\n",
            "[server]\nendpoint = \"ipc:///a\"\nevents = \"ipc:///a\"\n",
        ] {
            let file = FileConfig::parse(text).unwrap();
            assert!(
                Settings::resolve(file, &Overrides::default()).is_err(),
                "{text}"
            );
        }
    }
}
