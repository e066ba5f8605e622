//! Batch personalization: records spread over readers in parallel, each record a state machine
//! in the [`Journal`], resumable after a crash with nothing lost and nothing doubled.
//!
//! - [`submit`]: journals a batch (every record `pending`) in one transaction.
//! - [`run`]: one worker thread per reader. A worker claims the next record atomically
//!   ([`Journal::claim_next`]), runs data QC (a rejected record is journaled `qc_failed` with
//!   every problem and the batch goes on), builds the [`Plan`], takes a card from the
//!   [`CardSource`], and personalizes it; the serial is journaled (`writing`) before the first
//!   write and `personalized` after the card is deactivated. Progress goes to a callback (the
//!   CLI draws a bar, the server publishes `batch.progress` and `card.personalized` events).
//! - Resume is the same [`run`]: a record a dead run left `writing` is finished on the card its
//!   serial names (found incomplete and written again, or found finished with the journaled
//!   EF.SOD and only marked done).
//! - [`cancel`]: workers stop claiming; records already claimed finish.
//! - [`report`]: the batch as JSON and CSV ([`write_report`] puts both next to the journal).
//!
//! Transport PINs and PUKs go to the PIN mailer file (see [`crate::personalize::secrets`]),
//! never to the report, the journal or the logs.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keystore::KeyStore;

use serde::Serialize;

use crate::applicant::qc::{self, MatcherCheck, QcCode, QcIssue, QcReport};
use crate::applicant::Applicant;
use crate::journal::{BatchState, Claim, Counts, Journal, JournalError, RecordRow, RecordState};
use crate::lds::Date;
use crate::personalize::{
    self, CardSecrets, Found, Issue, PersoError, PersoHooks, PinMailer, Plan,
};
use crate::pki::DocumentSigner;
use crate::profile::ProfileSet;

pub mod manager;
pub mod source;

pub use manager::{BatchManager, OneCard, RunSettings};
pub use source::{CardSource, LineSource, PcscReaders, SimHopper};

/// Name of the PIN mailer file in the state directory.
pub const PIN_MAILER_FILE: &str = "pin-mailer.jsonl";
/// How many times a record is tried on a card that was pulled before it is failed.
const REMOVAL_RETRIES: u32 = 3;

/// Appends an audit entry: kind and non-personal details.
pub type AuditFn<'a> = dyn Fn(&str, serde_json::Value) + Sync + 'a;

/// What a batch run needs besides the journal.
pub struct Runner<'a> {
    /// The journal.
    pub journal: &'a Journal,
    /// State directory (PIN mailer, reports).
    pub state_dir: PathBuf,
    /// Card profiles records refer to.
    pub profiles: &'a ProfileSet,
    /// Signs EF.SOD.
    pub signer: &'a DocumentSigner,
    /// The issuer's key store: card keys, the PIN mailer's key.
    pub keys: &'a Arc<KeyStore>,
    /// Where cards come from.
    pub source: &'a dyn CardSource,
    /// Appends an audit entry (`personalized`, `perso_failed`) with non-personal details.
    pub audit: Option<&'a AuditFn<'a>>,
    /// Extracts the card templates instead of the default extractor (the learned one, so
    /// that the delivery desk's second opinion compares like with like); `None`: default.
    pub template_extractor: Option<&'a dyn matcher::extract::MinutiaeExtractor>,
}

/// One record's change, as progress reports it (identifiers only, no personal data).
#[derive(Debug, Clone, Serialize)]
pub struct RecordEvent {
    /// Tracking code.
    pub tracking_code: String,
    /// New state.
    pub state: RecordState,
    /// Reader.
    pub reader: String,
    /// Card serial, once known.
    pub serial: Option<String>,
    /// Why it failed (or which QC codes).
    pub reason: Option<String>,
    /// APDUs of the personalization.
    pub apdus: Option<u64>,
    /// What the card was (fresh, incomplete, already done).
    pub found: Option<Found>,
}

/// A progress report: the batch's counts after `event`.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// Batch id.
    pub batch_id: String,
    /// Counts per state.
    pub counts: Counts,
    /// What just happened.
    pub event: RecordEvent,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// Batch id.
    pub batch_id: String,
    /// Counts per state at the end of the run.
    pub counts: Counts,
    /// Cards personalized by this run.
    pub personalized_now: u64,
    /// Wall time of the run, seconds.
    pub wall_s: f64,
    /// Cards personalized by this run per minute of wall time.
    pub cards_per_minute: f64,
    /// Mean APDUs per card personalized by this run.
    pub apdus_per_card: Option<f64>,
    /// The run stopped because the batch was cancelled.
    pub cancelled: bool,
}

/// Why a batch could not be submitted or run.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The manifest could not be read.
    #[error("{0}")]
    Manifest(String),
    /// A reader failed in a way that stops its worker.
    #[error("reader {reader}: {message}")]
    Reader {
        /// The reader.
        reader: String,
        /// What happened.
        message: String,
    },
}

impl From<BatchError> for crate::Error {
    fn from(e: BatchError) -> crate::Error {
        match e {
            BatchError::Journal(e) => e.into(),
            BatchError::Reader { .. } => {
                crate::Error::new(crate::ErrorKind::CardError, e.to_string())
            }
            BatchError::Manifest(_) => crate::Error::internal(e.to_string()),
        }
    }
}

/// Reads a manifest: one applicant record (a JSON object) per line; blank lines and lines
/// starting with `#` are skipped. Records may name files in the manifest's folder
/// ([`crate::applicant::FileAccess::RelativeTo`] it: relative paths without `..`, regular
/// files only, size-limited); the folder is journaled with each record as its base directory.
/// A line that is not JSON is kept: QC rejects it as `malformed_record`.
pub fn read_manifest(path: &Path) -> Result<Vec<(String, String)>, BatchError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| BatchError::Manifest(format!("cannot read {}: {e}", path.display())))?;
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let base = parent
        .canonicalize()
        .map_err(|e| BatchError::Manifest(format!("cannot resolve {}: {e}", parent.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| (l.to_string(), base.display().to_string()))
        .collect())
}

/// A new batch id: `B` + milliseconds since the epoch + 4 random hex digits.
pub fn new_batch_id() -> String {
    use ring::rand::SecureRandom;
    let mut r = [0u8; 2];
    let _ = ring::rand::SystemRandom::new().fill(&mut r);
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("B{ms}-{}", hex::encode(r))
}

/// Journals a new batch of `records` (JSON, base directory) for `readers`; returns its id.
pub fn submit(
    journal: &Journal,
    source: &str,
    readers: &[String],
    records: &[(String, String)],
) -> Result<String, BatchError> {
    let id = new_batch_id();
    journal.create_batch(&id, source, readers, records)?;
    Ok(id)
}

/// Stops a batch: workers claim nothing more; claimed records finish.
pub fn cancel(journal: &Journal, id: &str) -> Result<(), BatchError> {
    journal.batch(id)?;
    journal.set_batch_state(id, BatchState::Cancelled)?;
    Ok(())
}

/// Journals the serial before writing and the secrets into the PIN mailer before setting them.
struct BatchHooks<'a> {
    journal: &'a Journal,
    seq: i64,
    tracking_code: &'a str,
    issue: &'a Issue,
    sod: &'a [u8],
    mailer: &'a std::sync::Mutex<Option<PinMailer>>,
    mailer_path: &'a Path,
    keys: &'a Arc<KeyStore>,
    holder: &'a crate::personalize::Holder,
    /// Why the journal refused the write (unavailable, taken over): not the card's fault.
    journal_error: Option<JournalError>,
}

impl PersoHooks for BatchHooks<'_> {
    fn before_write(&mut self, serial: &[u8; 8], _found: Found) -> Result<(), PersoError> {
        self.journal
            .begin_write(
                self.seq,
                &hex::encode_upper(serial),
                &self.issue.document_number,
                &self.issue.date_of_issue.yyyymmdd(),
                self.sod,
                self.holder,
            )
            .map_err(|e| {
                let message = e.to_string();
                if e.is_unavailable() || matches!(e, JournalError::TakenOver(_)) {
                    self.journal_error = Some(e);
                }
                PersoError::Hook(message)
            })
    }

    fn secrets_chosen(
        &mut self,
        serial: &[u8; 8],
        secrets: &CardSecrets,
    ) -> Result<(), PersoError> {
        let mut guard = self.mailer.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(PinMailer::open(self.mailer_path, Arc::clone(self.keys))?);
        }
        guard.as_mut().map_or(Ok(()), |m| {
            m.append(self.tracking_code, &hex::encode_upper(serial), secrets)
        })
    }
}

/// A claimed record after QC.
pub enum Prepared {
    /// Ready to write: the plan and what was decided for the card.
    Ready {
        /// The files.
        plan: Plan,
        /// Document number and issue date (journaled with the serial).
        issue: Issue,
    },
    /// Reached a final state without a card (QC rejected it, its files cannot be built).
    Finished(RecordEvent),
    /// The SOD could not be signed because the key store did not answer: nothing was journaled.
    KeyStoreAway(String),
}

/// Sleeps `wait`, waking early when `stop` is set.
fn sleep_unless_stopped(wait: Duration, stop: &AtomicBool) {
    let until = Instant::now() + wait;
    while !stop.load(Ordering::Relaxed) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

/// What one worker learned about one record.
enum Step {
    /// Nothing left to claim.
    Idle,
    /// One record reached a new state.
    Done(RecordEvent),
    /// The key store did not answer; the record was given back unchanged (a card being written
    /// stays journaled as such and is resumed): wait, then claim again.
    KeyStoreAway(String),
    /// The journal did not answer; the record claimed (if any) is given back once it is back
    /// (a card being written stays journaled as such and is resumed).
    JournalAway(Option<i64>, String),
    /// Another station took the record over (this one's lease ran out): claim another.
    TakenOver(String),
}

/// The first wait of a worker whose journal is away; it doubles up to [`KEY_STORE_RETRY_MAX`].
pub const JOURNAL_RETRY: Duration = Duration::from_millis(250);
/// How often a worker with nothing to claim looks again while records of its batch are held
/// by another station or another reader.
pub const LINE_POLL: Duration = Duration::from_millis(250);

/// The first wait of a worker whose key store is away; it doubles up to
/// [`KEY_STORE_RETRY_MAX`] while the token stays away.
pub const KEY_STORE_RETRY: Duration = Duration::from_millis(250);
/// The longest wait between two attempts while the key store is away.
pub const KEY_STORE_RETRY_MAX: Duration = Duration::from_secs(4);

impl Runner<'_> {
    /// Runs (or resumes) batch `id` on `readers` until every record reached a final state, the
    /// batch is cancelled, or `stop` is set. `progress` is called after every record.
    pub fn run(
        &self,
        id: &str,
        readers: &[String],
        stop: &AtomicBool,
        progress: &(dyn Fn(&Progress) + Sync),
    ) -> Result<RunSummary, BatchError> {
        let owner = new_batch_id();
        // A journal that is away when the run starts is waited for, as during the run.
        let mut wait = JOURNAL_RETRY;
        loop {
            match self.journal.start_run(id, &owner) {
                Err(e) if e.is_unavailable() && !stop.load(Ordering::Relaxed) => {
                    tracing::warn!("batch {id} waits for the journal: {e}");
                    sleep_unless_stopped(wait, stop);
                    wait = (wait * 2).min(KEY_STORE_RETRY_MAX);
                }
                other => break other?,
            }
        }
        let start = Instant::now();
        let mailer = std::sync::Mutex::new(None);
        let personalized = std::sync::atomic::AtomicU64::new(0);
        let apdus = std::sync::atomic::AtomicU64::new(0);
        let results: Vec<Result<(), BatchError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = readers
                .iter()
                .map(|reader| {
                    let (owner, mailer, personalized, apdus) =
                        (&owner, &mailer, &personalized, &apdus);
                    scope.spawn(move || -> Result<(), BatchError> {
                        let mut key_store_wait = KEY_STORE_RETRY;
                        let mut journal_wait = JOURNAL_RETRY;
                        // A record claimed when the journal went away: given back first.
                        let mut held: Option<i64> = None;
                        // The journal went away before this reader knew whether it holds a
                        // record (a claim may have been committed with its answer lost).
                        let mut unsure = false;
                        loop {
                            if stop.load(Ordering::Relaxed) {
                                return Ok(());
                            }
                            let step = held
                                .map_or(Ok(()), |seq| self.journal.release(seq).map_err(Into::into))
                                .and_then(|()| {
                                    held = None;
                                    if self.journal.batch(id)?.state == BatchState::Cancelled {
                                        return Ok(None);
                                    }
                                    self.step(id, owner, reader, mailer, unsure).map(Some)
                                });
                            let step = match step {
                                Ok(None) => return Ok(()),
                                Ok(Some(step)) => step,
                                Err(BatchError::Journal(e)) if e.is_unavailable() => {
                                    Step::JournalAway(None, e.to_string())
                                }
                                Err(e) => return Err(e),
                            };
                            unsure = matches!(step, Step::JournalAway(None, _));
                            match step {
                                Step::Idle => {
                                    // Records still held elsewhere (another station, another
                                    // reader of this one) may come back: wait for them.
                                    match self.journal.counts(id) {
                                        Ok(c) if c.pending + c.writing == 0 => return Ok(()),
                                        Ok(_) => sleep_unless_stopped(LINE_POLL, stop),
                                        Err(e) if e.is_unavailable() => {
                                            sleep_unless_stopped(journal_wait, stop)
                                        }
                                        Err(e) => return Err(e.into()),
                                    }
                                }
                                Step::JournalAway(seq, why) => {
                                    held = held.or(seq);
                                    if journal_wait == JOURNAL_RETRY {
                                        tracing::warn!(
                                            reader = %reader,
                                            "batch {id} pauses on this reader until the journal \
                                             is back: {why}"
                                        );
                                    }
                                    sleep_unless_stopped(journal_wait, stop);
                                    journal_wait = (journal_wait * 2).min(KEY_STORE_RETRY_MAX);
                                }
                                Step::TakenOver(why) => {
                                    tracing::warn!(reader = %reader, "batch {id}: {why}");
                                }
                                Step::KeyStoreAway(why) => {
                                    if key_store_wait == KEY_STORE_RETRY {
                                        tracing::warn!(
                                            reader = %reader,
                                            "batch {id} pauses on this reader until the key \
                                             store is back: {why}"
                                        );
                                    }
                                    sleep_unless_stopped(key_store_wait, stop);
                                    key_store_wait = (key_store_wait * 2).min(KEY_STORE_RETRY_MAX);
                                }
                                Step::Done(event) => {
                                    if key_store_wait != KEY_STORE_RETRY {
                                        tracing::info!(reader = %reader, "key store back: batch {id} goes on");
                                        key_store_wait = KEY_STORE_RETRY;
                                    }
                                    if journal_wait != JOURNAL_RETRY {
                                        tracing::info!(reader = %reader, "journal back: batch {id} goes on");
                                        journal_wait = JOURNAL_RETRY;
                                    }
                                    if event.state == RecordState::Personalized
                                        && event.found != Some(Found::AlreadyDone)
                                    {
                                        personalized.fetch_add(1, Ordering::Relaxed);
                                        apdus
                                            .fetch_add(event.apdus.unwrap_or(0), Ordering::Relaxed);
                                    }
                                    // Progress is best effort: the record is journaled already.
                                    if let Ok(counts) = self.journal.counts(id) {
                                        progress(&Progress {
                                            batch_id: id.to_string(),
                                            counts,
                                            event,
                                        });
                                    }
                                }
                            }
                        }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(BatchError::Reader {
                            reader: "?".into(),
                            message: "worker panicked".into(),
                        })
                    })
                })
                .collect()
        });
        let counts = self.journal.counts(id)?;
        let cancelled = self.journal.batch(id)?.state == BatchState::Cancelled;
        if !cancelled && counts.pending == 0 && counts.writing == 0 {
            self.journal.set_batch_state(id, BatchState::Finished)?;
        }
        // A reader error is reported after the other readers finished their work.
        for r in results {
            r?;
        }
        let wall_s = start.elapsed().as_secs_f64();
        let n = personalized.load(Ordering::Relaxed);
        Ok(RunSummary {
            batch_id: id.to_string(),
            counts,
            personalized_now: n,
            wall_s,
            cards_per_minute: if wall_s > 0.0 {
                n as f64 * 60.0 / wall_s
            } else {
                0.0
            },
            apdus_per_card: (n > 0).then(|| apdus.load(Ordering::Relaxed) as f64 / n as f64),
            cancelled,
        })
    }

    /// Claims and handles one record; `unsure`: the journal went away during this reader's
    /// last claim, which may hold a record already.
    fn step(
        &self,
        id: &str,
        owner: &str,
        reader: &str,
        mailer: &std::sync::Mutex<Option<PinMailer>>,
        unsure: bool,
    ) -> Result<Step, BatchError> {
        let held = match unsure {
            true => self.journal.claim_again(id, owner, reader)?,
            false => None,
        };
        let claim = match held {
            Some(claim) => Some(claim),
            None => self.journal.claim_next(id, owner, reader)?,
        };
        let Some(claim) = claim else {
            return Ok(Step::Idle);
        };
        match self.work(id, owner, reader, mailer, &claim) {
            Err(BatchError::Journal(e)) if e.is_unavailable() => {
                Ok(Step::JournalAway(Some(claim.seq), e.to_string()))
            }
            // Another station changed the record meanwhile (its state is not what this one
            // left): not this station's to finish.
            Err(BatchError::Journal(
                JournalError::TakenOver(why) | JournalError::Conflict(why),
            )) => Ok(Step::TakenOver(why)),
            other => other,
        }
    }

    /// Handles one claimed record.
    fn work(
        &self,
        id: &str,
        _owner: &str,
        reader: &str,
        mailer: &std::sync::Mutex<Option<PinMailer>>,
        claim: &Claim,
    ) -> Result<Step, BatchError> {
        let claim = claim.clone();
        let (plan, issue) = match self.prepare(&claim, reader)? {
            Prepared::Ready { plan, issue } => (plan, issue),
            Prepared::Finished(event) => return Ok(Step::Done(event)),
            Prepared::KeyStoreAway(why) => {
                self.journal.release(claim.seq)?;
                return Ok(Step::KeyStoreAway(why));
            }
        };
        let want_serial = claim.resume.as_ref().map(|r| r.card_serial.as_str());
        let mut attempt = 0;
        loop {
            attempt += 1;
            let transport = match self.source.card(reader, want_serial) {
                Ok(t) => t,
                Err(e) => {
                    self.journal.release(claim.seq)?;
                    return Err(BatchError::Reader {
                        reader: reader.to_string(),
                        message: format!("{e:#}"),
                    });
                }
            };
            let mut card = apdu::card::IdCard::new(transport);
            match self.write_card(id, &claim, reader, &plan, &issue, &mut card, mailer)? {
                Ok(event) => return Ok(Step::Done(event)),
                Err(e) if e.is_card_removed() && attempt < REMOVAL_RETRIES => continue,
                Err(e) if e.is_key_store_unavailable() => {
                    self.journal.release(claim.seq)?;
                    return Ok(Step::KeyStoreAway(e.to_string()));
                }
                Err(PersoError::AlreadyPersonalized { serial, state })
                    if claim.resume.is_none() =>
                {
                    // Not this record's fault: the card in the reader is used. Give the record
                    // back and stop this reader (an operator must take the card out).
                    self.journal.release(claim.seq)?;
                    return Err(BatchError::Reader {
                        reader: reader.to_string(),
                        message: format!(
                            "card {serial} is already personalized ({state}); it was not \
                             overwritten: replace it with a blank card"
                        ),
                    });
                }
                Err(e) => return Ok(Step::Done(self.settle_error(&claim, reader, &e)?)),
            }
        }
    }

    /// Data QC and the plan of a claimed record: [`Prepared::Finished`] when QC rejected it or
    /// its files cannot be built (journaled already).
    pub fn prepare(&self, claim: &Claim, reader: &str) -> Result<Prepared, BatchError> {
        let event = |state, reason: Option<String>| RecordEvent {
            tracking_code: claim.tracking_code.clone(),
            state,
            reader: reader.to_string(),
            serial: None,
            reason,
            apdus: None,
            found: None,
        };
        let (valid, profile) = match self.check(claim) {
            Ok(v) => v,
            Err(report) => {
                let issues = serde_json::to_value(&report.issues).unwrap_or_default();
                let codes: Vec<&str> = report.issues.iter().map(|i| i.code.as_str()).collect();
                let codes = codes.join(",");
                if claim.resume.is_some() {
                    // Only when the profiles changed between runs.
                    self.journal.fail(claim.seq, &format!("data QC: {codes}"))?;
                    return Ok(Prepared::Finished(event(RecordState::Failed, Some(codes))));
                }
                self.journal.qc_failed(claim.seq, &issues)?;
                return Ok(Prepared::Finished(event(
                    RecordState::QcFailed,
                    Some(codes),
                )));
            }
        };
        if let Some(why) = self.in_another_household(&valid, profile)? {
            let issues = serde_json::json!([{
                "path": "foreign_resident.household_code",
                "code": QcCode::HouseholdConflict.as_str(),
                "message": why,
            }]);
            self.journal.qc_failed(claim.seq, &issues)?;
            return Ok(Prepared::Finished(event(
                RecordState::QcFailed,
                Some(QcCode::HouseholdConflict.as_str().into()),
            )));
        }
        if let Some(renewal) = &valid.record.renewal {
            if let Err(why) = self.renewable(&valid, profile, &renewal.of_document) {
                let issues = serde_json::json!([{
                    "path": "renewal.of_document",
                    "code": QcCode::RenewalWithoutCard.as_str(),
                    "message": why,
                }]);
                self.journal.qc_failed(claim.seq, &issues)?;
                return Ok(Prepared::Finished(event(
                    RecordState::QcFailed,
                    Some(QcCode::RenewalWithoutCard.as_str().into()),
                )));
            }
        }
        let built = match &claim.resume {
            Some(r) => Date::parse_yyyymmdd(&r.date_of_issue)
                .ok_or_else(|| PersoError::Plan(format!("issue date {:?}", r.date_of_issue)))
                .and_then(|date_of_issue| {
                    let issue = Issue {
                        document_number: r.document_number.clone(),
                        date_of_issue,
                    };
                    Plan::rebuild_with_sod(&valid, profile, self.signer, &issue, r.sod.clone())
                        .map(|plan| (plan, issue))
                }),
            None => {
                let issue = Issue::today(format!("D{:08}", claim.seq));
                Plan::build(&valid, profile, self.signer, &issue).map(|plan| (plan, issue))
            }
        };
        match built {
            Ok((plan, issue)) => Ok(Prepared::Ready { plan, issue }),
            Err(e) if e.is_key_store_unavailable() => Ok(Prepared::KeyStoreAway(e.to_string())),
            Err(e) => Ok(Prepared::Finished(self.settle_error(claim, reader, &e)?)),
        }
    }

    /// Personalizes `card` for a prepared record and journals the result. The inner error is
    /// the card's: the caller decides (retry on a pulled card, [`Runner::settle_error`]).
    #[allow(clippy::too_many_arguments)]
    pub fn write_card<T: apdu::Transport>(
        &self,
        id: &str,
        claim: &Claim,
        reader: &str,
        plan: &Plan,
        issue: &Issue,
        card: &mut apdu::card::IdCard<T>,
        mailer: &std::sync::Mutex<Option<PinMailer>>,
    ) -> Result<Result<RecordEvent, PersoError>, BatchError> {
        let mut hooks = BatchHooks {
            journal: self.journal,
            seq: claim.seq,
            tracking_code: &claim.tracking_code,
            issue,
            sod: plan.sod(),
            mailer,
            mailer_path: &self.state_dir.join(PIN_MAILER_FILE),
            keys: self.keys,
            holder: &plan.holder,
            journal_error: None,
        };
        let outcome = match personalize::personalize(card, plan, self.keys.as_ref(), &mut hooks) {
            Ok(outcome) => outcome,
            Err(e) => {
                // Nothing was written: the journal refused before the card was touched.
                if let Some(refused) = hooks.journal_error.take() {
                    return Err(BatchError::Journal(refused));
                }
                return Ok(Err(e));
            }
        };
        let serial = outcome.serial_hex();
        self.journal.finish(claim.seq, &serial, outcome.apdus)?;
        if let Some(audit) = self.audit {
            audit(
                "personalized",
                serde_json::json!({
                    "tracking_code": claim.tracking_code,
                    "serial": serial,
                    "batch_id": id,
                    "reader": reader,
                    "found": outcome.found,
                }),
            );
        }
        Ok(Ok(RecordEvent {
            tracking_code: claim.tracking_code.clone(),
            state: RecordState::Personalized,
            reader: reader.to_string(),
            serial: Some(serial),
            reason: None,
            apdus: Some(outcome.apdus),
            found: Some(outcome.found),
        }))
    }

    /// Journals a claimed record as failed for `e` (a card being written for it is marked
    /// spoiled) and audits it.
    pub fn settle_error(
        &self,
        claim: &Claim,
        reader: &str,
        e: &PersoError,
    ) -> Result<RecordEvent, BatchError> {
        let reason = e.to_string();
        let serial = claim.resume.as_ref().map(|r| r.card_serial.clone());
        self.journal.fail(claim.seq, &reason)?;
        self.audit_failure(claim, serial.as_deref(), &reason);
        Ok(RecordEvent {
            tracking_code: claim.tracking_code.clone(),
            state: RecordState::Failed,
            reader: reader.to_string(),
            serial,
            reason: Some(reason),
            apdus: None,
            found: None,
        })
    }

    fn audit_failure(&self, claim: &Claim, serial: Option<&str>, reason: &str) {
        if let Some(audit) = self.audit {
            audit(
                "perso_failed",
                serde_json::json!({
                    "tracking_code": claim.tracking_code,
                    "serial": serial,
                    "reason": reason,
                }),
            );
        }
    }

    /// For household kinds: why the applicant cannot be in this household (the journal has a
    /// usable card of theirs in another one), if so.
    fn in_another_household(
        &self,
        applicant: &qc::ValidatedApplicant,
        profile: &crate::profile::Profile,
    ) -> Result<Option<String>, BatchError> {
        let (Some(_), Some(f), Some(person)) = (
            profile.household,
            applicant.record.foreign_resident.as_ref(),
            crate::personalize::Holder::person_of(applicant),
        ) else {
            return Ok(None);
        };
        let household = f.household_code.trim();
        let others = self
            .journal
            .other_households(&person, &profile.name, household)?;
        Ok((!others.is_empty()).then(|| {
            format!(
                "this member holds a usable card of household {} and cannot join household {household}",
                others.join(", ")
            )
        }))
    }

    /// Whether the card with document number `of_document` can be renewed by `applicant`: it
    /// exists, is this person's card of this kind, and is still usable.
    fn renewable(
        &self,
        applicant: &qc::ValidatedApplicant,
        profile: &crate::profile::Profile,
        of_document: &str,
    ) -> Result<(), String> {
        let number = of_document.trim().to_ascii_uppercase();
        let card = self
            .journal
            .card_by_document(&number)
            .map_err(|e| format!("journal: {e}"))?
            .ok_or_else(|| format!("no card with document number {number} was issued here"))?;
        let person = crate::personalize::Holder::person_of(applicant);
        if card.person.is_none()
            || card.person != person
            || card.kind.as_deref() != Some(&profile.name)
        {
            return Err(format!(
                "document {number} is not this person's {} card",
                profile.name
            ));
        }
        if !card.state.usable() {
            return Err(format!(
                "card {number} is {}: it cannot be renewed (apply for a new card)",
                card.state.as_str()
            ));
        }
        Ok(())
    }

    /// Parses and QC-checks a claimed record against its profile.
    fn check(
        &self,
        claim: &Claim,
    ) -> Result<(qc::ValidatedApplicant, &crate::profile::Profile), QcReport> {
        let mut applicant = Applicant::from_json(&claim.record_json)?;
        // Records from the socket are journaled without a base directory: they may name no
        // files. Manifest records may name files in the manifest's folder.
        applicant.files = crate::applicant::FileAccess::from_base_dir(&claim.base_dir);
        let profile = self.profiles.get(&applicant.profile).ok_or_else(|| {
            QcReport::single(QcIssue::new(
                "profile",
                QcCode::ProfileMismatch,
                format!("no card profile named {:?}", applicant.profile),
            ))
        })?;
        let valid = match self.template_extractor {
            Some(by) => qc::check(&applicant, profile, &qc::TemplatesBy(by))?,
            None => qc::check(&applicant, profile, &MatcherCheck)?,
        };
        Ok((valid, profile))
    }
}

/// One line of a batch report (identifiers and outcomes only: no names, no secrets).
#[derive(Debug, Clone, Serialize)]
pub struct ReportLine {
    /// Tracking code.
    pub tracking_code: String,
    /// Final (or current) state.
    pub state: RecordState,
    /// Reader.
    pub reader: String,
    /// Card serial.
    pub card_serial: String,
    /// Document number.
    pub document_number: String,
    /// QC codes (`path:code`, `;`-separated) or the failure reason.
    pub reason: String,
    /// Cards written for the record.
    pub attempts: i64,
    /// APDUs of the personalization.
    pub apdus: Option<i64>,
    /// The station that made the card (or last handled the record): on a line, which PC.
    pub station: String,
}

/// The report of batch `id`.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Batch id.
    pub batch_id: String,
    /// Batch state.
    pub state: BatchState,
    /// Counts per state.
    pub counts: Counts,
    /// One line per record, in submission order.
    pub records: Vec<ReportLine>,
}

fn line(r: RecordRow) -> ReportLine {
    let reason = match (&r.qc_issues, &r.reason) {
        (Some(serde_json::Value::Array(issues)), _) => issues
            .iter()
            .map(|i| {
                format!(
                    "{}:{}",
                    i["path"].as_str().unwrap_or(""),
                    i["code"].as_str().unwrap_or("")
                )
            })
            .collect::<Vec<_>>()
            .join(";"),
        (_, Some(reason)) => reason.clone(),
        _ => String::new(),
    };
    ReportLine {
        tracking_code: r.tracking_code,
        state: r.state,
        reader: r.reader.unwrap_or_default(),
        card_serial: r.card_serial.unwrap_or_default(),
        document_number: r.document_number.unwrap_or_default(),
        reason,
        attempts: r.attempts,
        apdus: r.apdus,
        station: r.station.unwrap_or_default(),
    }
}

/// Builds the report of batch `id` from the journal.
pub fn report(journal: &Journal, id: &str) -> Result<Report, BatchError> {
    let batch = journal.batch(id)?;
    Ok(Report {
        batch_id: id.to_string(),
        state: batch.state,
        counts: journal.counts(id)?,
        records: journal.records(id)?.into_iter().map(line).collect(),
    })
}

/// A CSV field, quoted when it needs to be.
fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

impl Report {
    /// The report as CSV (header line first).
    pub fn to_csv(&self) -> String {
        let mut out = String::from(
            "tracking_code,state,reader,card_serial,document_number,reason,attempts,apdus,station\n",
        );
        for r in &self.records {
            let fields = [
                csv_field(&r.tracking_code),
                r.state.as_str().to_string(),
                csv_field(&r.reader),
                csv_field(&r.card_serial),
                csv_field(&r.document_number),
                csv_field(&r.reason),
                r.attempts.to_string(),
                r.apdus.map(|a| a.to_string()).unwrap_or_default(),
                csv_field(&r.station),
            ];
            out.push_str(&fields.join(","));
            out.push('\n');
        }
        out
    }
}

/// Writes `<state_dir>/reports/<id>.json` and `.csv`; returns both paths.
pub fn write_report(state_dir: &Path, report: &Report) -> Result<(PathBuf, PathBuf), BatchError> {
    let dir = state_dir.join("reports");
    let io = |p: &Path, e: std::io::Error| BatchError::Manifest(format!("{}: {e}", p.display()));
    crate::store::private_dir(&dir).map_err(|e| io(&dir, e))?;
    let json = dir.join(format!("{}.json", report.batch_id));
    let csv = dir.join(format!("{}.csv", report.batch_id));
    let text = serde_json::to_string_pretty(report).unwrap_or_default();
    crate::store::write_private(&json, text.as_bytes()).map_err(|e| io(&json, e))?;
    crate::store::write_private(&csv, report.to_csv().as_bytes()).map_err(|e| io(&csv, e))?;
    Ok((json, csv))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_with_commas_and_quotes_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"x\""), "\"say \"\"x\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }
}
