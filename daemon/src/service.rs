//! What every API method shares: configuration, the readers, the event publisher.
//!
//! [`Service`] is built once by `idcardd serve` (and by tests) and handed to every method by
//! reference. Card access goes through [`ReaderPool::with_card`], which gives one operation at
//! a time per reader and answers `busy` instead of queueing without bound.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use apdu::card::IdCard;
use apdu::sim::SimTransport;
use apdu::Transport;
use serde_json::Value;
use tokio::sync::broadcast;

use crate::api::{ApiError, ErrorCode};
use crate::sim_watch::{Changes, SimWatch};

/// A card opened on a reader for one operation.
pub type Card = IdCard<Box<dyn Transport>>;

/// Settings every method may need.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Where the daemon keeps its journal, audit log and simulated cards' state.
    pub state_dir: PathBuf,
    /// Where simulated cards (`sim:N`) keep their state.
    pub sim_dir: PathBuf,
    /// The readers the daemon serves, by name (`sim:N` or PC/SC names).
    pub readers: Vec<String>,
    /// How long an operation waits for a busy reader before answering `busy`.
    pub reader_wait: Duration,
    /// The Document Signer directory (`ds.key`, `ds.pem`, `csca.pem`, see `crate::pki`) used to
    /// sign EF.SOD at personalization; `None`: personalization is refused.
    pub pki_dir: Option<PathBuf>,
    /// Trusted CSCA certificates (PEM files) for passive authentication at delivery.
    pub trust: Vec<PathBuf>,
    /// Delivery policy.
    pub delivery: DeliveryPolicy,
}

/// How delivery decides and how long its steps stay valid.
#[derive(Debug, Clone)]
pub struct DeliveryPolicy {
    /// Target false-match rate of the fingerprint decision (e.g. 0.001).
    pub fmr: f64,
    /// Failed verification attempts allowed per card before a supervisor is needed.
    pub max_attempts: u32,
    /// How long after a successful verify `delivery.activate` is allowed.
    pub activate_window: Duration,
    /// How long a delivery session lives without activity.
    pub session_ttl: Duration,
}

impl Default for DeliveryPolicy {
    fn default() -> DeliveryPolicy {
        DeliveryPolicy {
            fmr: 0.001,
            max_attempts: 3,
            activate_window: Duration::from_secs(120),
            session_ttl: Duration::from_secs(600),
        }
    }
}

impl ServiceConfig {
    /// A configuration with `readers` under `state_dir` (simulated cards in `state_dir/sim`),
    /// no PKI, default limits and policy; tests and the demo start from this.
    pub fn new(state_dir: PathBuf, readers: Vec<String>) -> ServiceConfig {
        ServiceConfig {
            sim_dir: state_dir.join("sim"),
            state_dir,
            readers,
            reader_wait: Duration::from_secs(2),
            pki_dir: None,
            trust: Vec::new(),
            delivery: DeliveryPolicy::default(),
        }
    }
}

/// One event on the PUB socket: `topic` is the first frame, `body` (JSON) the second.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// E.g. `reader.attached`, `card.inserted`, `batch.progress`, `card.personalized`.
    pub topic: String,
    /// Event details (never personal data beyond identifiers such as serials and tracking codes).
    pub body: Value,
}

/// Publishes events to whoever listens (the PUB socket task, tests). Never blocks: a slow
/// listener loses old events rather than slowing card work.
#[derive(Debug, Clone)]
pub struct Events {
    sender: broadcast::Sender<Event>,
}

impl Events {
    /// A publisher keeping at most `capacity` undelivered events per listener.
    pub fn new(capacity: usize) -> Events {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Events { sender }
    }

    /// Publishes an event (dropped when nobody listens).
    pub fn publish(&self, topic: &str, body: Value) {
        let _ = self.sender.send(Event {
            topic: topic.to_string(),
            body,
        });
    }

    /// A new listener receiving events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

/// The configured readers, each usable by one operation at a time.
#[derive(Debug)]
pub struct ReaderPool {
    sim_dir: PathBuf,
    wait: Duration,
    busy: BTreeMap<String, AtomicBool>,
    /// Faults to inject into the next opening of a simulated reader (tests: a card pulled in
    /// the middle of an operation), taken once.
    sim_faults: std::sync::Mutex<BTreeMap<String, apdu::sim::Faults>>,
    /// Simulated readers kept open between operations, so that an operation does not reload
    /// and parse the card's state file when nothing else has changed it.
    kept: std::sync::Mutex<KeptSims>,
}

/// Simulated readers kept open, and the watch that tells when their state files change.
#[derive(Default)]
struct KeptSims {
    /// Kept readers (a handle to the reader, the card in memory) by name.
    cards: BTreeMap<String, SimTransport>,
    /// Changes in the simulated cards' directory; `None` until the directory exists (or after
    /// the watch lost track): nothing is kept without it.
    watch: Option<SimWatch>,
}

impl KeptSims {
    /// Forgets every kept card whose state file changed since the last look (all of them when
    /// that is not known) and returns the readers whose files changed; `None` when the watch
    /// had to be started now or lost track (anything may have changed).
    fn refresh(&mut self, sim_dir: &std::path::Path) -> Option<BTreeSet<usize>> {
        let Some(watch) = &self.watch else {
            self.cards.clear();
            self.watch = SimWatch::new(sim_dir).ok();
            return None;
        };
        match watch.changes() {
            Changes::Readers(changed) => {
                self.cards
                    .retain(|name, _| !sim_index(name).is_some_and(|n| changed.contains(&n)));
                Some(changed)
            }
            Changes::Unknown => {
                self.cards.clear();
                self.watch = None;
                None
            }
        }
    }
}

/// `N` of `sim:N`.
fn sim_index(name: &str) -> Option<usize> {
    crate::readers::parse_sim_name(name).ok().flatten()
}

impl std::fmt::Debug for KeptSims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptSims")
            .field("cards", &self.cards.keys())
            .field("watch", &self.watch)
            .finish()
    }
}

/// A simulated reader's handle to keep open after an operation.
struct ToKeep {
    /// The handle.
    transport: SimTransport,
    /// The card's [`SimTransport::commits`] when the operation began: a change of its state
    /// file during the operation is the card's own write only when this moved.
    commits_before: u64,
}

/// Releases a reader when the operation ends, even by panic.
struct Held<'a>(&'a AtomicBool);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl ReaderPool {
    /// A pool over `names`; simulated cards keep their state in `sim_dir`.
    pub fn new(names: &[String], sim_dir: PathBuf, wait: Duration) -> ReaderPool {
        ReaderPool {
            sim_dir,
            wait,
            busy: names
                .iter()
                .map(|n| (n.clone(), AtomicBool::new(false)))
                .collect(),
            sim_faults: Default::default(),
            kept: Default::default(),
        }
    }

    /// The reader names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.busy.keys().cloned().collect()
    }

    /// Whether an operation is running on `name` now.
    pub fn is_busy(&self, name: &str) -> bool {
        self.busy
            .get(name)
            .is_some_and(|b| b.load(Ordering::Acquire))
    }

    /// Injects `faults` into the next operation on simulated reader `name` (tests only: e.g. a
    /// card pulled after N APDUs). Taken by that one operation.
    pub fn inject_sim_faults(&self, name: &str, faults: apdu::sim::Faults) {
        let mut pending = self.sim_faults.lock().unwrap_or_else(|p| p.into_inner());
        pending.insert(name.to_string(), faults);
    }

    /// Opens reader `name`, applying faults injected for it. For a simulated reader also
    /// returns a second handle to keep open after the operation (none when faults were
    /// injected: such an operation may leave the card pulled).
    fn open_transport(&self, name: &str) -> anyhow::Result<(Box<dyn Transport>, Option<ToKeep>)> {
        let faults = {
            let mut pending = self.sim_faults.lock().unwrap_or_else(|p| p.into_inner());
            pending.remove(name)
        };
        let Some(n) = crate::readers::parse_sim_name(name)? else {
            return Ok((crate::readers::open(name, &self.sim_dir)?, None));
        };
        // Taken in every case: an operation with faults must not leave a kept card behind.
        let kept = self.take_kept(name);
        if let Some(faults) = faults {
            let sim = crate::readers::open_sim(&self.sim_dir, n)?;
            sim.faults().set(faults);
            return Ok((Box::new(sim), None));
        }
        if let Some((transport, keep)) = kept {
            return Ok((Box::new(transport), Some(keep)));
        }
        let sim = crate::readers::open_sim(&self.sim_dir, n)?;
        // What changed up to now (a card just created saved its file) is in the card loaded.
        self.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .refresh(&self.sim_dir);
        let keep = sim.reconnect().map(|transport| ToKeep {
            commits_before: transport.commits(),
            transport,
        });
        Ok((Box::new(sim), keep))
    }

    /// Takes the kept card of simulated reader `name` out of the pool: a connection to run an
    /// operation on and the handle to keep afterwards, or `None` when there is none, the card
    /// is out of the reader, or its state file changed since (then it is not the file's card
    /// any more). Also starts the watch on the directory, before any card is loaded from it.
    fn take_kept(&self, name: &str) -> Option<(SimTransport, ToKeep)> {
        let kept = {
            let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            kept.refresh(&self.sim_dir);
            kept.cards.remove(name)?
        };
        Some((
            kept.reconnect()?,
            ToKeep {
                commits_before: kept.commits(),
                transport: kept,
            },
        ))
    }

    /// Runs `op` on a connection, then keeps the simulated reader's handle, if any, open.
    fn run_op<R>(
        &self,
        name: &str,
        transport: Box<dyn Transport>,
        keep: Option<ToKeep>,
        op: impl FnOnce(&mut Card) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let mut card = IdCard::new(transport);
        let result = op(&mut card);
        drop(card);
        if let Some(keep) = keep {
            self.keep_open(name, keep);
        }
        result
    }

    /// Keeps simulated reader `name` open after an operation, unless its state file changed
    /// during the operation by another hand than its card's (or nobody can tell).
    fn keep_open(&self, name: &str, keep: ToKeep) {
        let Some(n) = sim_index(name) else {
            return;
        };
        let own_write = keep.transport.commits() != keep.commits_before;
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let Some(changed) = kept.refresh(&self.sim_dir) else {
            return;
        };
        if changed.contains(&n) && !own_write {
            return;
        }
        kept.cards.insert(name.to_string(), keep.transport);
    }

    /// Runs `op` at once on simulated reader `name` when it needs no waiting and no file
    /// loading: the reader is free and its card is kept open, unchanged since the last
    /// operation. `None` otherwise (the caller goes the [`ReaderPool::with_card`] way). Such an
    /// operation costs microseconds, less than handing it to a worker thread.
    pub fn try_with_kept_card<R>(
        &self,
        name: &str,
        op: impl FnOnce(&mut Card) -> Result<R, ApiError>,
    ) -> Option<Result<R, ApiError>> {
        sim_index(name)?;
        let flag = self.busy.get(name)?;
        flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        let _held = Held(flag);
        let faults_pending = self
            .sim_faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name);
        if faults_pending {
            return None;
        }
        let (transport, handle) = self.take_kept(name)?;
        Some(self.run_op(name, Box::new(transport), Some(handle), op))
    }

    /// Runs `op` with the card in reader `name`, alone on that reader. Waits up to the
    /// configured time for another operation on the same reader, then answers `busy`.
    pub fn with_card<R>(
        &self,
        name: &str,
        op: impl FnOnce(&mut Card) -> Result<R, ApiError>,
    ) -> Result<R, ApiError> {
        let flag = self.busy.get(name).ok_or_else(|| {
            ApiError::new(
                ErrorCode::ReaderNotFound,
                format!("no reader {name:?} is configured"),
            )
        })?;
        let deadline = Instant::now() + self.wait;
        while flag
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            if Instant::now() >= deadline {
                return Err(ApiError::new(
                    ErrorCode::Busy,
                    format!("reader {name:?} is busy with another operation"),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _held = Held(flag);
        let (transport, keep) = self.open_transport(name).map_err(open_error)?;
        self.run_op(name, transport, keep, op)
    }
}

/// Maps a failure to open a reader to a stable code.
fn open_error(e: anyhow::Error) -> ApiError {
    let code = match e.downcast_ref::<apdu::TransportError>() {
        Some(apdu::TransportError::NoService) => ErrorCode::NoService,
        Some(apdu::TransportError::NoReader(_)) => ErrorCode::ReaderNotFound,
        Some(apdu::TransportError::NoCard(_)) => ErrorCode::NoCard,
        Some(apdu::TransportError::CardRemoved | apdu::TransportError::CardReset) => {
            ErrorCode::CardRemoved
        }
        _ if e.to_string().contains("pcscd") => ErrorCode::NoService,
        _ => ErrorCode::CardError,
    };
    ApiError::new(code, format!("{e:#}"))
}

/// Everything the methods share.
#[derive(Debug)]
pub struct Service {
    /// Settings.
    pub config: ServiceConfig,
    /// The readers.
    pub readers: ReaderPool,
    /// The event publisher.
    pub events: Events,
    /// Batches and the production journal (`state_dir/journal.sqlite`).
    pub batches: std::sync::Arc<crate::batch::BatchManager>,
    /// Uptime and work in progress, for `system.health` (the server keeps them current).
    pub stats: Stats,
    /// The tamper-evident audit trail (`state_dir/audit.db`), shared with batch workers.
    pub audit: std::sync::Arc<crate::audit::AuditLog>,
    /// Delivery sessions and per-card delivery state (`state_dir/delivery.db`).
    pub delivery: crate::delivery::Delivery,
}

/// Counters the server keeps and `system.health` reports.
#[derive(Debug)]
pub struct Stats {
    /// When the service was opened.
    pub started: Instant,
    /// Requests being worked on now (admitted and not finished, including timed-out ones whose
    /// blocking work still runs).
    pub in_flight: std::sync::atomic::AtomicUsize,
    /// What `system.health` last saw on disk, reused for a second.
    pub setup: crate::api::system_health::SetupCache,
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            started: Instant::now(),
            in_flight: Default::default(),
            setup: Default::default(),
        }
    }
}

impl Service {
    /// Builds the service from its configuration, opening what it keeps in the state directory.
    pub fn open(config: ServiceConfig) -> anyhow::Result<Service> {
        std::fs::create_dir_all(&config.state_dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", config.state_dir.display()))?;
        let readers = ReaderPool::new(&config.readers, config.sim_dir.clone(), config.reader_wait);
        Ok(Service {
            readers,
            events: Events::new(1024),
            batches: std::sync::Arc::new(crate::batch::BatchManager::open(&config.state_dir)?),
            stats: Stats::default(),
            audit: std::sync::Arc::new(
                crate::audit::AuditLog::open(&config.state_dir)
                    .map_err(|e| anyhow::anyhow!("opening the audit log: {e}"))?,
            ),
            delivery: crate::delivery::Delivery::open(&config.state_dir)?,
            config,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(dir: &std::path::Path) -> Service {
        let mut config =
            ServiceConfig::new(dir.to_path_buf(), vec!["sim:0".into(), "sim:1".into()]);
        config.reader_wait = Duration::from_millis(20);
        Service::open(config).unwrap()
    }

    #[test]
    fn one_operation_per_reader_and_busy_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let serial = svc
            .readers
            .with_card("sim:0", |card| {
                assert!(svc.readers.is_busy("sim:0"));
                let nested = svc.readers.with_card("sim:0", |_| Ok(()));
                assert_eq!(nested.unwrap_err().code, ErrorCode::Busy);
                // Another reader is independent.
                svc.readers.with_card("sim:1", |_| Ok(()))?;
                Ok(card.serial()?)
            })
            .unwrap();
        assert!(!svc.readers.is_busy("sim:0"));
        let again = svc.readers.with_card("sim:0", |c| Ok(c.serial()?)).unwrap();
        assert_eq!(serial, again);
        let missing = svc.readers.with_card("sim:9", |_| Ok(()));
        assert_eq!(missing.unwrap_err().code, ErrorCode::ReaderNotFound);
    }

    /// A simulated card stays open between operations, yet a card moved into the reader (its
    /// state file replaced, as the demo and the tests do) or a write by another process is
    /// what the next operation sees; the non-waiting path only runs on a kept, unchanged card.
    #[test]
    fn kept_simulated_cards_follow_their_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let serial = |svc: &Service| svc.readers.with_card("sim:0", |c| Ok(c.serial()?));
        let quick = |svc: &Service| svc.readers.try_with_kept_card("sim:0", |c| Ok(c.serial()?));
        // Nothing kept before the first operation.
        assert!(quick(&svc).is_none());
        let first = serial(&svc).unwrap();
        assert_eq!(quick(&svc).unwrap().unwrap(), first);
        // A busy reader is not waited for.
        svc.readers
            .with_card("sim:0", |_| {
                assert!(quick(&svc).is_none());
                Ok(())
            })
            .unwrap();

        // The card's own write (a file created in a personalization session) leaves it kept.
        let master = apdu::sm::AesKey::test_perso_master();
        let wrote = svc.readers.try_with_kept_card("sim:0", |c| {
            Ok(c.authenticate_perso(&master)?
                .create_file(0x0101, Some(1), 64)?)
        });
        assert!(matches!(wrote, Some(Ok(()))), "{wrote:?}");
        assert_eq!(
            quick(&svc).unwrap().unwrap(),
            first,
            "kept after its own write"
        );
        assert_eq!(quick(&svc).unwrap().unwrap(), first);
        let path = crate::readers::sim_state_path(&svc.readers.sim_dir, 0);

        // The file rewritten in place with the same content (same length; an mtime a stat
        // might not tell apart): seen all the same, the card is loaded again.
        std::fs::write(&path, std::fs::read(&path).unwrap()).unwrap();
        assert!(quick(&svc).is_none(), "a rewritten file is loaded again");
        assert_eq!(serial(&svc).unwrap(), first);
        assert_eq!(quick(&svc).unwrap().unwrap(), first);

        // A card of its own made at `path`; its serial.
        let card_at = |path: &std::path::Path, seed: u64| {
            let config = apdu::sim::SimConfig {
                seed: Some(seed),
                ..Default::default()
            };
            apdu::sim::SimCard::create(Some(path.into()), config)
                .unwrap()
                .serial()
        };
        // Another card moved in by rename.
        let other_path = dir.path().join("other.json");
        let other = card_at(&other_path, 7);
        std::fs::rename(&other_path, &path).unwrap();
        assert!(quick(&svc).is_none(), "a replaced file is loaded again");
        assert_eq!(serial(&svc).unwrap(), other);
        assert_eq!(quick(&svc).unwrap().unwrap(), other);

        // A third card's state written over the file in place (same inode).
        let copy = dir.path().join("third.json");
        let third = card_at(&copy, 8);
        assert_ne!(third, other);
        std::fs::write(&path, std::fs::read(&copy).unwrap()).unwrap();
        assert_eq!(serial(&svc).unwrap(), third);

        // A removed card: the reader makes a new one, as before.
        std::fs::remove_file(&path).unwrap();
        let fresh = serial(&svc).unwrap();
        assert!(fresh != third && fresh != other && fresh != first);
    }

    #[test]
    fn events_reach_subscribers() {
        let events = Events::new(4);
        let mut rx = events.subscribe();
        events.publish("card.inserted", serde_json::json!({"reader": "sim:0"}));
        let e = rx.try_recv().unwrap();
        assert_eq!(e.topic, "card.inserted");
        assert_eq!(e.body["reader"], "sim:0");
    }
}
