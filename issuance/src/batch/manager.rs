//! [`BatchManager`]: the production line of one station: the journal, the batches running in
//! the background (one thread per batch, with its worker threads per reader), and one card
//! personalized on request. Both ways build their [`Runner`] in [`BatchManager::with_runner`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::{BatchError, LineSource, Prepared, Progress, RecordEvent, Runner};
use crate::audit::AuditLog;
use crate::error::{Error, ErrorKind};
use crate::events::Events;
use crate::journal::{BatchState, Journal, RecordState};
use crate::personalize::Issue;
use crate::pki::DocumentSigner;
use crate::profile::ProfileSet;
use crate::reader_pool::ReaderPool;
use keystore::KeyStore;

/// How often a station of a line looks for batches to join.
pub const JOIN_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Where runs keep their files and find the Document Signer and the keys.
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// State directory (simulated card hopper, PIN mailer, reports).
    pub state_dir: PathBuf,
    /// Document Signer directory; `None`: personalization is refused.
    pub pki_dir: Option<PathBuf>,
    /// The issuer's key store: card keys, the Document Signer's key, the mailer key.
    pub keys: Arc<KeyStore>,
    /// Extracts the card templates instead of the default extractor ([`Runner`]).
    pub template_extractor: Option<Arc<dyn matcher::extract::MinutiaeExtractor>>,
}

/// The journal and the batches running in the background.
#[derive(Debug)]
pub struct BatchManager {
    /// The journal (shared with the runs).
    journal: Arc<Journal>,
    /// Stop flags of the runs in progress, by batch id.
    running: Mutex<BTreeMap<String, Arc<AtomicBool>>>,
    /// The card profiles records refer to.
    profiles: Arc<ProfileSet>,
    /// The audit trail (`personalized`, `perso_failed` entries), shared with delivery.
    audit: Arc<AuditLog>,
    /// Where runs keep their files and find the Document Signer.
    settings: RunSettings,
}

/// What [`BatchManager::personalize_one`] wrote.
#[derive(Debug, Clone)]
pub struct OneCard {
    /// The one-record batch the record was journaled in.
    pub batch_id: String,
    /// The record's final event (tracking code, serial, APDUs, what the card was).
    pub event: RecordEvent,
    /// Document number and issue date given to the card.
    pub issue: Issue,
}

impl BatchManager {
    /// A line over `journal`, writing audit entries to `audit`.
    pub fn new(
        journal: Arc<Journal>,
        profiles: Arc<ProfileSet>,
        audit: Arc<AuditLog>,
        settings: RunSettings,
    ) -> BatchManager {
        BatchManager {
            journal,
            running: Mutex::new(BTreeMap::new()),
            profiles,
            audit,
            settings,
        }
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Whether a Document Signer is configured (personalization is refused without one).
    pub fn can_personalize(&self) -> bool {
        self.settings.pki_dir.is_some()
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

    /// Loads the Document Signer (and checks its certificate): loaded per run, so a signer
    /// rotated on disk is what the next run uses.
    fn signer(&self) -> Result<DocumentSigner, Error> {
        let pki_dir = self.settings.pki_dir.as_ref().ok_or_else(|| {
            Error::internal("no Document Signer configured: personalization is refused")
        })?;
        DocumentSigner::load(pki_dir, Arc::clone(&self.settings.keys)).map_err(Error::from)
    }

    /// Runs `f` with the runner every personalization of this station uses: the journal, the
    /// profiles, `signer`, the issuer keys, cards from the line's readers, the audit trail.
    fn with_runner<R>(&self, signer: &DocumentSigner, f: impl FnOnce(&Runner<'_>) -> R) -> R {
        let source = LineSource::new(&self.settings.state_dir, self.settings.keys.clone());
        let audit_entry = |kind: &str, details: Value| {
            if let Err(e) = self.audit.append(kind, details) {
                tracing::error!("audit append failed: {e}");
            }
        };
        let runner = Runner {
            journal: &self.journal,
            state_dir: self.settings.state_dir.clone(),
            profiles: &self.profiles,
            signer,
            keys: &self.settings.keys,
            source: &source,
            audit: Some(&audit_entry),
            template_extractor: self.settings.template_extractor.as_deref(),
        };
        f(&runner)
    }

    /// Runs (or resumes) batch `id` on `readers` in the calling thread until every record
    /// reached a final state, the batch is cancelled or `stop` is set; `progress` is called
    /// after every record (the CLI draws its bar from it).
    pub fn run(
        &self,
        id: &str,
        readers: &[String],
        stop: &AtomicBool,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<super::RunSummary, Error> {
        let signer = self.signer()?;
        Ok(self.with_runner(&signer, |runner| runner.run(id, readers, stop, progress))?)
    }

    /// Starts (or resumes) batch `id` on `readers` in the background. The Document Signer is
    /// loaded (and its certificate checked) first: an error here means nothing started.
    /// Progress goes to `events` as `batch.progress`, finished cards as `card.personalized`,
    /// the end as `batch.finished`.
    pub fn start(
        self: &Arc<Self>,
        id: &str,
        readers: Vec<String>,
        events: Events,
    ) -> Result<(), Error> {
        let signer = self.signer()?;
        let stop = Arc::new(AtomicBool::new(false));
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.contains_key(id) {
                return Err(Error::internal(format!("batch {id} is already running")));
            }
            running.insert(id.to_string(), Arc::clone(&stop));
        }
        let me = Arc::clone(self);
        let id = id.to_string();
        std::thread::spawn(move || {
            let progress = |p: &Progress| {
                events.publish(
                    "batch.progress",
                    serde_json::to_value(p).unwrap_or_default(),
                );
                if p.event.state == RecordState::Personalized {
                    events.publish(
                        "card.personalized",
                        json!({
                            "batch_id": p.batch_id,
                            "tracking_code": p.event.tracking_code,
                            "serial": p.event.serial,
                            "reader": p.event.reader,
                        }),
                    );
                }
            };
            let result = me.with_runner(&signer, |runner| {
                runner.run(&id, &readers, &stop, &progress)
            });
            let body = match &result {
                Ok(summary) => serde_json::to_value(summary).unwrap_or_default(),
                Err(e) => json!({"batch_id": id, "error": e.to_string()}),
            };
            if let Ok(report) = super::report(&me.journal, &id) {
                let _ = super::write_report(&me.settings.state_dir, &report);
            }
            events.publish("batch.finished", body);
            me.running
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
        Ok(())
    }

    /// Joins every running batch of the journal with `readers`, until `stop` is set: on a
    /// line, a batch submitted at any station is worked on by every station's readers. Looks
    /// again every [`JOIN_POLL`]; a journal that does not answer is tried again later.
    pub fn join_line(
        self: &Arc<Self>,
        readers: Vec<String>,
        events: Events,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<()> {
        let me = Arc::clone(self);
        std::thread::Builder::new()
            .name("line-join".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match me.journal.running_batches() {
                        Ok(ids) => {
                            for id in ids.iter().filter(|id| !me.is_running(id)) {
                                match me.start(id, readers.clone(), events.clone()) {
                                    Ok(()) => tracing::info!("joined batch {id}"),
                                    Err(e) => tracing::debug!("joining batch {id}: {e}"),
                                }
                            }
                        }
                        Err(e) => tracing::debug!("looking for batches to join: {e}"),
                    }
                    let until = std::time::Instant::now() + JOIN_POLL;
                    while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                }
                // Runs in progress stop claiming; records they hold are finished.
                for flag in me
                    .running
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .values()
                {
                    flag.store(true, Ordering::Relaxed);
                }
            })
            .expect("spawning the line-join thread")
    }

    /// Personalizes the card in `reader` from one applicant `record`, journaled as a one-record
    /// batch (`source` says who asked), so the status lookup finds it and the same tracking
    /// code is never personalized twice (`AlreadyPersonalized`). Data QC failures are
    /// `QcFailed` with every problem in `data.problems`.
    pub fn personalize_one(
        &self,
        readers: &ReaderPool,
        reader: &str,
        source: &str,
        record: &Value,
    ) -> Result<OneCard, Error> {
        if !readers.names().iter().any(|r| r == reader) {
            return Err(Error::new(
                ErrorKind::ReaderNotFound,
                format!("no reader {reader:?} is configured"),
            ));
        }
        let signer = self.signer()?;
        let journal = &*self.journal;
        let one_reader = vec![reader.to_string()];
        let id = super::submit(
            journal,
            source,
            &one_reader,
            &[(record.to_string(), String::new())],
        )?;
        let owner = super::new_batch_id();
        journal.start_run(&id, &owner).map_err(BatchError::from)?;
        let Some(claim) = journal
            .claim_next(&id, &owner, reader)
            .map_err(BatchError::from)?
        else {
            // The only record was refused as a duplicate.
            let _ = journal.set_batch_state(&id, BatchState::Finished);
            let rows = journal.records(&id).map_err(BatchError::from)?;
            let reason = rows
                .first()
                .and_then(|r| r.reason.clone())
                .unwrap_or_default();
            return Err(Error::new(ErrorKind::AlreadyPersonalized, reason));
        };
        let finish = |result: Result<OneCard, Error>| {
            let _ = journal.set_batch_state(&id, BatchState::Finished);
            result
        };
        self.with_runner(&signer, |runner| {
            let (plan, issue) = match runner.prepare(&claim, reader)? {
                Prepared::Ready { plan, issue } => (plan, issue),
                Prepared::Finished(event) => {
                    let rows = journal.records(&id).map_err(BatchError::from)?;
                    let row = rows.first();
                    let err = if event.state == RecordState::QcFailed {
                        Error::new(ErrorKind::QcFailed, "the record failed data QC").with_data(
                            json!({
                                "problems": row.and_then(|r| r.qc_issues.clone()).unwrap_or_default(),
                            }),
                        )
                    } else {
                        Error::internal(event.reason.unwrap_or_default())
                    };
                    return finish(Err(err));
                }
                Prepared::KeyStoreAway(why) => {
                    // One card on request is not waited for: the caller retries.
                    let _ = journal.fail(claim.seq, &why);
                    return finish(Err(Error::new(ErrorKind::KeyStoreUnavailable, why)));
                }
            };
            let mailer = Mutex::new(None);
            let written = readers.with_card(reader, |card| {
                match runner.write_card(&id, &claim, reader, &plan, &issue, card, &mailer)? {
                    Ok(event) => Ok(event),
                    Err(e) => {
                        runner.settle_error(&claim, reader, &e)?;
                        Err(Error::from(e))
                    }
                }
            });
            match written {
                Ok(event) => finish(Ok(OneCard {
                    batch_id: id.clone(),
                    event,
                    issue,
                })),
                Err(e) => {
                    // The reader could not be used: the record never reached a card.
                    let _ = journal.fail(claim.seq, &e.message);
                    finish(Err(e))
                }
            }
        })
    }
}
