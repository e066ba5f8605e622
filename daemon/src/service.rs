//! The composition root: [`Service::open`] turns a [`ServiceConfig`] into every part the
//! daemon works with, built once: the card profiles, the stores in the state directory
//! (journal, audit trail, delivery store), the reader pool, the event publisher, the batch
//! line. `idcardd serve`, `idcardd demo` and the tests all start from it; API methods get the
//! [`Service`] by reference and hand each workflow only the parts it needs (e.g.
//! [`Service::desk`] for delivery).

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use issuance::audit::AuditLog;
use issuance::batch::{BatchManager, RunSettings};
use issuance::delivery::{Delivery, DeliveryPolicy, Desk};
use issuance::events::Events;
use issuance::journal::{Journal, Retention};
use issuance::profile::ProfileSet;
use issuance::reader_pool::ReaderPool;

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
    /// The Document Signer directory (`ds.key`, `ds.pem`, `csca.pem`, see `issuance::pki`) used
    /// to sign EF.SOD at personalization; `None`: personalization is refused.
    pub pki_dir: Option<PathBuf>,
    /// Trusted CSCA certificates (PEM files) for passive authentication at delivery.
    pub trust: Vec<PathBuf>,
    /// A directory of card profiles (`<name>.toml`) overriding or adding to the built-in ones.
    pub profiles_dir: Option<PathBuf>,
    /// Delivery policy.
    pub delivery: DeliveryPolicy,
    /// How long the journal keeps applicants' faces and fingerprints (issue 18): removed once
    /// the card is personalized (`biometrics_after_personalized`, default 0s) or 30 days after
    /// a record failed (`failed_records_days`); a SHA-256 of each stays.
    pub retention: Retention,
}

impl ServiceConfig {
    /// A configuration with `readers` under `state_dir` (simulated cards in `state_dir/sim`),
    /// no PKI, the built-in profiles, default limits and policy; tests and the demo start from
    /// this.
    pub fn new(state_dir: PathBuf, readers: Vec<String>) -> ServiceConfig {
        ServiceConfig {
            sim_dir: state_dir.join("sim"),
            state_dir,
            readers,
            reader_wait: Duration::from_secs(2),
            pki_dir: None,
            trust: Vec::new(),
            profiles_dir: None,
            delivery: DeliveryPolicy::default(),
            retention: Retention::default(),
        }
    }
}

/// Makes every file and directory this process creates from now on owner-only (umask 077).
///
/// The state directory holds applicant records, PINs (the PIN mailer, simulated cards), keys
/// and reports: whatever part writes there (the stores set their modes themselves; reports,
/// the card hopper and a demo's test PKI rely on this) writes for the daemon's user alone
/// (issue 18). The ipc socket's own umask and chmod still give its group access.
pub fn owner_only_umask() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Creates the state directory `dir` (or one inside it) owner-only, tightening an existing
/// looser one with a warning.
pub fn private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    issuance::store::private_dir(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {} owner-only: {e}", dir.display()))
}

/// Everything the methods share.
#[derive(Debug)]
pub struct Service {
    /// Settings.
    pub config: ServiceConfig,
    /// The card profiles, loaded once.
    pub profiles: Arc<ProfileSet>,
    /// The readers.
    pub readers: ReaderPool,
    /// The event publisher.
    pub events: Events,
    /// Batches and the production journal (`state_dir/journal.sqlite`).
    pub batches: Arc<BatchManager>,
    /// Uptime and work in progress, for `system.health` (the server keeps them current).
    pub stats: Stats,
    /// The tamper-evident audit trail (`state_dir/audit.db`), shared with batch workers.
    pub audit: Arc<AuditLog>,
    /// Delivery sessions and per-card delivery state (`state_dir/delivery.db`).
    pub delivery: Delivery,
}

/// Counters the server keeps and `system.health` reports.
#[derive(Debug)]
pub struct Stats {
    /// When the service was opened.
    pub started: Instant,
    /// Requests being worked on now (admitted and not finished, including timed-out ones whose
    /// blocking work still runs).
    pub in_flight: AtomicUsize,
    /// What `system.health` last saw on disk, reused for a second.
    pub setup: SetupCache,
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

/// How long the file checks of one `system.health` reply are reused: a monitor polling many
/// times a second then costs no file-system lookups (they were half of that method's time).
pub const SETUP_CHECK_TTL: Duration = Duration::from_secs(1);

/// What is set up on disk: the journal, the signing PKI, the trust list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetupPresence {
    /// The journal file exists.
    pub journal: bool,
    /// The Document Signer's key and certificate exist.
    pub pki: bool,
    /// How many of the configured trust-list files exist.
    pub trust: usize,
}

impl SetupPresence {
    /// Looks at the files now.
    fn check(config: &ServiceConfig) -> SetupPresence {
        SetupPresence {
            journal: config
                .state_dir
                .join(issuance::journal::FILE_NAME)
                .is_file(),
            pki: config
                .pki_dir
                .as_ref()
                .is_some_and(|dir| issuance::pki::signer_present(dir)),
            trust: config.trust.iter().filter(|t| t.is_file()).count(),
        }
    }
}

/// The last [`SetupPresence`] and when it was looked at.
#[derive(Debug, Default)]
pub struct SetupCache(Mutex<Option<(Instant, SetupPresence)>>);

impl SetupCache {
    /// The presence seen within [`SETUP_CHECK_TTL`] before `now`, or a fresh look.
    pub fn get(&self, config: &ServiceConfig, now: Instant) -> SetupPresence {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match *seen {
            Some((at, presence)) if now.saturating_duration_since(at) < SETUP_CHECK_TTL => presence,
            _ => {
                let presence = SetupPresence::check(config);
                *seen = Some((now, presence));
                presence
            }
        }
    }
}

impl Service {
    /// Builds the service from its configuration: loads the profiles, opens what it keeps in
    /// the state directory, sets up the readers.
    ///
    /// The process umask becomes 077 ([`owner_only_umask`]); the state directory is made
    /// owner-only, and everything an older version left readable under it and under the
    /// simulated cards' directory (0755 folders, 0644 files) is tightened to 0700 / 0600 with
    /// a warning: nothing the daemon keeps there is readable by others (issue 18).
    pub fn open(config: ServiceConfig) -> anyhow::Result<Service> {
        owner_only_umask();
        private_dir(&config.state_dir)?;
        // What an older version left readable (0755 directories, 0644 files) is tightened.
        for dir in [&config.state_dir, &config.sim_dir] {
            let changed = issuance::store::tighten_tree(dir)
                .map_err(|e| anyhow::anyhow!("cannot tighten {}: {e}", dir.display()))?;
            if !changed.is_empty() {
                tracing::warn!(
                    "{} file(s) and folder(s) under {} were readable by others: made owner-only",
                    changed.len(),
                    dir.display()
                );
            }
        }
        let profiles = Arc::new(ProfileSet::load(config.profiles_dir.as_deref())?);
        let readers = ReaderPool::new(&config.readers, config.sim_dir.clone(), config.reader_wait);
        let audit = Arc::new(
            AuditLog::open(&config.state_dir)
                .map_err(|e| anyhow::anyhow!("opening the audit log: {e}"))?,
        );
        let journal = Arc::new(Journal::open_in_with(&config.state_dir, config.retention)?);
        let settings = RunSettings {
            state_dir: config.state_dir.clone(),
            pki_dir: config.pki_dir.clone(),
        };
        Ok(Service {
            readers,
            events: Events::new(1024),
            batches: Arc::new(BatchManager::new(
                journal,
                Arc::clone(&profiles),
                Arc::clone(&audit),
                settings,
            )),
            stats: Stats::default(),
            audit,
            delivery: Delivery::open(&config.state_dir)?,
            profiles,
            config,
        })
    }

    /// What the delivery workflows work with.
    pub fn desk(&self) -> Desk<'_> {
        Desk {
            readers: &self.readers,
            delivery: &self.delivery,
            audit: &self.audit,
            journal: self.batches.journal(),
            events: &self.events,
            policy: &self.config.delivery,
            trust: &self.config.trust,
            state_dir: &self.config.state_dir,
        }
    }
}
