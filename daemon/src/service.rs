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
use issuance::journal::{JournalConfig, Retention};
use issuance::profile::ProfileSet;
use issuance::reader_pool::ReaderPool;
use keystore::{KeyStore, KeyStoreConfig};

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
    /// The Document Signer directory (`ds.pem`, `csca.pem`; the key is in the token; see `issuance::pki`) used
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
    /// The issuer's key store (`[keys]`); `None`: the embedded SoftHSM token of the state
    /// directory (`state_dir/hsm`, made on the first start of a fresh state directory).
    pub keys: Option<KeyStoreConfig>,
    /// Where the journal lives (the station's SQLite file, or a line's PostgreSQL database)
    /// and who this station is (`journal`, `journal_password`, `station_id`, `[line]`).
    pub journal: JournalConfig,
    /// Extracts the card templates at enrollment instead of the default extractor (`[learned]
    /// card_templates`); `None`: the default extractor.
    pub template_extractor: Option<Arc<dyn matcher::extract::MinutiaeExtractor>>,
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
            keys: None,
            journal: JournalConfig::default(),
            template_extractor: None,
        }
    }
}

impl ServiceConfig {
    /// The same configuration with the key store `keys` instead of the embedded token.
    pub fn with_keys(mut self, keys: KeyStoreConfig) -> ServiceConfig {
        self.keys = Some(keys);
        self
    }
}

/// Opens the key store `configured` names, or the embedded SoftHSM token of `state_dir`. A
/// fresh state directory (no journal yet) gets its embedded token made here; an existing one
/// without a token is refused (its cards were keyed by keys this start would not have).
pub fn open_key_store(
    state_dir: &std::path::Path,
    configured: Option<&KeyStoreConfig>,
) -> anyhow::Result<KeyStore> {
    if let Some(config) = configured {
        return KeyStore::open(config).map_err(|e| anyhow::anyhow!("key store: {e}"));
    }
    let embedded = KeyStoreConfig::embedded(state_dir);
    let hsm_dir = state_dir.join(keystore::EMBEDDED_DIR);
    if !hsm_dir.exists() {
        let fresh = !state_dir.join(issuance::journal::FILE_NAME).exists();
        if !fresh {
            anyhow::bail!(
                "key store: {} has a journal but no key store (made before the keys moved to \
                 a token): run `idcardd keys init --state-dir {}`, or configure [keys] for \
                 your HSM",
                state_dir.display(),
                state_dir.display()
            );
        }
        let (store, report) = keystore::init_embedded(state_dir)
            .map_err(|e| anyhow::anyhow!("key store: creating the embedded token: {e}"))?;
        tracing::info!(
            token = %report.token,
            dir = %hsm_dir.display(),
            "created the embedded SoftHSM token and its keys (configure [keys] for a production HSM)"
        );
        return Ok(store);
    }
    KeyStore::open(&embedded).map_err(|e| anyhow::anyhow!("key store: {e}"))
}

/// Opens the audit trail: the state directory's own, or on a line this station's chain in the
/// shared journal database (`line`: the station's pool of it; `None`: a pool of its own), its
/// head record staying in the state directory.
pub fn open_audit(
    config: &ServiceConfig,
    line: Option<issuance::db::Db>,
    keys: Arc<KeyStore>,
) -> anyhow::Result<AuditLog> {
    let opened = if config.journal.is_shared() {
        let db = match line {
            Some(db) => db,
            None => config
                .journal
                .db(&config.state_dir, issuance::audit::DB_FILE)
                .map_err(|e| anyhow::anyhow!("opening the audit log: {e}"))?,
        };
        AuditLog::open_on(
            &config.state_dir,
            db,
            &config.journal.station().station_id,
            keys,
        )
    } else {
        AuditLog::open(&config.state_dir, keys)
    };
    opened.map_err(|e| anyhow::anyhow!("opening the audit log: {e}"))
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
    /// The issuer's key store: every key operation goes through it.
    pub keys: Arc<KeyStore>,
    /// Set when the service is dropped: the journal lease and the line-join threads end.
    background_stop: Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.background_stop
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
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
    /// What `system.health` last learned of the key store, reused for a second.
    pub keys: KeysHealthCache,
    /// Whether the journal's database answered the last lease renewal.
    pub journal_up: Arc<std::sync::atomic::AtomicBool>,
}

/// The key store as `system.health` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeysHealth {
    /// The token's label.
    pub token: String,
    /// `ok`, `unavailable` (the token does not answer: operations wait or fail with
    /// `key_store_unavailable`) or `error` (a key missing or breaking the policy).
    pub status: &'static str,
    /// What is wrong, one line each (labels and reasons; never key material).
    pub problems: Vec<String>,
}

impl KeysHealth {
    /// Asks the token now: reachable, every configured key present and within the policy.
    pub fn check(keys: &KeyStore) -> KeysHealth {
        let token = keys.config().token_label.clone();
        match keys.check() {
            Ok(problems) if problems.is_empty() => KeysHealth {
                token,
                status: "ok",
                problems: Vec::new(),
            },
            Ok(problems) => KeysHealth {
                token,
                status: "error",
                problems: problems.iter().map(ToString::to_string).collect(),
            },
            Err(e) => KeysHealth {
                token,
                status: if e.is_unavailable() {
                    "unavailable"
                } else {
                    "error"
                },
                problems: vec![e.to_string()],
            },
        }
    }
}

/// The last [`KeysHealth`] and when it was asked.
#[derive(Debug, Default)]
pub struct KeysHealthCache(Mutex<Option<(Instant, KeysHealth)>>);

impl KeysHealthCache {
    /// The health seen within [`SETUP_CHECK_TTL`] before `now`, or a fresh look.
    pub fn get(&self, keys: &KeyStore, now: Instant) -> KeysHealth {
        let mut seen = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match &*seen {
            Some((at, health)) if now.saturating_duration_since(*at) < SETUP_CHECK_TTL => {
                health.clone()
            }
            _ => {
                let health = KeysHealth::check(keys);
                *seen = Some((now, health.clone()));
                health
            }
        }
    }
}

impl Default for Stats {
    fn default() -> Stats {
        Stats {
            started: Instant::now(),
            in_flight: Default::default(),
            setup: Default::default(),
            keys: Default::default(),
            journal_up: Arc::new(std::sync::atomic::AtomicBool::new(true)),
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
        let keys = Arc::new(open_key_store(&config.state_dir, config.keys.as_ref())?);
        let profiles = Arc::new(ProfileSet::load(config.profiles_dir.as_deref())?);
        let readers = ReaderPool::new(
            &config.readers,
            config.sim_dir.clone(),
            keys.clone(),
            config.reader_wait,
        );
        let journal = Arc::new(
            config
                .journal
                .open(&config.state_dir, config.retention)
                .map_err(|e| anyhow::anyhow!("opening the journal: {e}"))?,
        );
        // On a line the delivery state and the audit chain share the journal's pool; a station
        // on its own keeps them in files of their own.
        let line = config.journal.is_shared().then(|| journal.db().clone());
        let audit = Arc::new(open_audit(&config, line.clone(), Arc::clone(&keys))?);
        let delivery_db = match line {
            Some(db) => db,
            None => config
                .journal
                .db(&config.state_dir, issuance::delivery::store::DB_FILE)
                .map_err(|e| anyhow::anyhow!("opening the delivery store: {e}"))?,
        };
        let settings = RunSettings {
            state_dir: config.state_dir.clone(),
            pki_dir: config.pki_dir.clone(),
            keys: Arc::clone(&keys),
            template_extractor: config.template_extractor.clone(),
        };
        let svc = Service {
            readers,
            events: Events::new(1024),
            batches: Arc::new(BatchManager::new(
                Arc::clone(&journal),
                Arc::clone(&profiles),
                Arc::clone(&audit),
                settings,
            )),
            stats: Stats::default(),
            audit,
            delivery: Delivery::on(delivery_db)?,
            profiles,
            config,
            keys,
            background_stop: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        };
        svc.keep_journal_lease(&journal);
        if svc.config.journal.joins_batches() && !svc.config.readers.is_empty() {
            svc.batches.join_line(
                svc.config.readers.clone(),
                svc.events.clone(),
                Arc::clone(&svc.background_stop),
            );
        }
        Ok(svc)
    }

    /// Renews this station's lease in the journal in the background; the journal going away or
    /// coming back is published (`journal.unavailable`, `journal.available`) and kept for
    /// `system.health`.
    fn keep_journal_lease(&self, journal: &Arc<issuance::journal::Journal>) {
        let events = self.events.clone();
        let seen = Arc::clone(&self.stats.journal_up);
        let station = journal.station_id().to_string();
        journal.keep_lease(Arc::clone(&self.background_stop), move |result| {
            let now_up = result.is_ok();
            if seen.swap(now_up, std::sync::atomic::Ordering::Relaxed) != now_up {
                match result {
                    Ok(()) => {
                        tracing::info!("journal back: this station takes work again");
                        events.publish(
                            "journal.available",
                            serde_json::json!({"station_id": station}),
                        );
                    }
                    Err(e) => {
                        tracing::error!("journal unavailable: this station takes no work: {e}");
                        events.publish(
                            "journal.unavailable",
                            serde_json::json!({"station_id": station, "error": e.to_string()}),
                        );
                    }
                }
            }
        });
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
            keys: &self.keys,
            profiles: &self.profiles,
        }
    }
}
