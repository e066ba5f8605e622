//! [`BatchManager`]: the daemon's batches: the journal, and the runs going on in the
//! background (one thread per batch, with its worker threads per reader).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::{LineSource, Progress, Runner};
use crate::journal::{Journal, JournalError, RecordState};
use crate::personalize::PersoKeys;
use crate::pki::DocumentSigner;
use crate::profile::ProfileSet;
use crate::service::Events;

/// What a background run needs to load.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// State directory (simulated card hopper, PIN mailer, reports).
    pub state_dir: PathBuf,
    /// Document Signer directory.
    pub pki_dir: Option<PathBuf>,
}

/// The journal and the batches running in the background.
#[derive(Debug)]
pub struct BatchManager {
    /// The journal (shared with the runs).
    journal: Arc<Journal>,
    /// Stop flags of the runs in progress, by batch id.
    running: Mutex<BTreeMap<String, Arc<AtomicBool>>>,
}

impl BatchManager {
    /// Opens the journal of `state_dir`.
    pub fn open(state_dir: &std::path::Path) -> Result<BatchManager, JournalError> {
        Ok(BatchManager {
            journal: Arc::new(Journal::open_in(state_dir)?),
            running: Mutex::new(BTreeMap::new()),
        })
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Whether batch `id` has a run in progress in this process.
    pub fn is_running(&self, id: &str) -> bool {
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(id)
    }

    /// Asks the run of batch `id` (if any) to stop claiming records.
    pub fn stop(&self, id: &str) {
        if let Some(flag) = self
            .running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
        {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// Starts (or resumes) batch `id` on `readers` in the background. The Document Signer is
    /// loaded (and its certificate checked) first: an error here means nothing started.
    /// Progress goes to `events` as `batch.progress`, finished cards as `card.personalized`,
    /// the end as `batch.finished`.
    pub fn start(
        self: &Arc<Self>,
        id: &str,
        readers: Vec<String>,
        settings: RunSettings,
        events: Events,
    ) -> anyhow::Result<()> {
        let pki_dir = settings
            .pki_dir
            .clone()
            .ok_or_else(|| anyhow::anyhow!("no Document Signer configured (pki_dir)"))?;
        let signer = DocumentSigner::load(&pki_dir)?;
        let profiles = ProfileSet::builtin()?;
        let audit = crate::audit::AuditLog::open(&settings.state_dir)
            .map_err(|e| anyhow::anyhow!("opening the audit log: {e}"))?;
        let stop = Arc::new(AtomicBool::new(false));
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.contains_key(id) {
                anyhow::bail!("batch {id} is already running");
            }
            running.insert(id.to_string(), Arc::clone(&stop));
        }
        let me = Arc::clone(self);
        let id = id.to_string();
        std::thread::spawn(move || {
            let source = LineSource::new(&settings.state_dir);
            let audit_entry = |kind: &str, details: serde_json::Value| {
                if let Err(e) = audit.append(kind, details) {
                    tracing::error!("audit append failed: {e}");
                }
            };
            let runner = Runner {
                journal: &me.journal,
                state_dir: settings.state_dir.clone(),
                profiles: &profiles,
                signer: &signer,
                keys: PersoKeys::test(),
                source: &source,
                audit: Some(&audit_entry),
            };
            let progress = |p: &Progress| {
                events.publish(
                    "batch.progress",
                    serde_json::to_value(p).unwrap_or_default(),
                );
                if p.event.state == RecordState::Personalized {
                    events.publish(
                        "card.personalized",
                        serde_json::json!({
                            "batch_id": p.batch_id,
                            "tracking_code": p.event.tracking_code,
                            "serial": p.event.serial,
                            "reader": p.event.reader,
                        }),
                    );
                }
            };
            let result = runner.run(&id, &readers, &stop, &progress);
            let body = match &result {
                Ok(summary) => serde_json::to_value(summary).unwrap_or_default(),
                Err(e) => serde_json::json!({"batch_id": id, "error": e.to_string()}),
            };
            if let Ok(report) = super::report(&me.journal, &id) {
                let _ = super::write_report(&settings.state_dir, &report);
            }
            events.publish("batch.finished", body);
            me.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
        Ok(())
    }
}
