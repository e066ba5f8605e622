//! The delivery office: check the holder against the chip, then activate the card; terminate
//! lost cards; unblock PINs.
//!
//! The flow a kiosk drives (each step is an API method of the daemon):
//!
//! 1. [`begin`]: under a terminal session, reads EF.COM, every data group it lists and EF.SOD,
//!    runs passive authentication ([`read::passive_auth`]: data group hashes, SOD signature,
//!    DS certificate chained to a trusted CSCA, validity dates), checks the card is
//!    personalized and not yet activated, and opens a [`session::Session`] bound to the reader,
//!    the card serial and the DG3 templates. Returns a [`HolderSummary`].
//! 2. [`verify`]: quality check of the live scan (`rescan` when too poor), extraction,
//!    comparison with the chip's template(s) of that finger, fusion over several fingers, the
//!    decision at the configured false-match rate. Failed attempts are counted per card serial
//!    in [`store::DeliveryStore`] (they survive a restart); at the limit the card needs a
//!    supervisor (`attempts_exhausted`).
//! 3. [`activate`]: only for the same card (serial re-read from the reader), within the
//!    activate window after a successful verify in that session. Replaces the transport PIN
//!    with the holder's PIN (CHANGE REFERENCE DATA) and activates the card (ACTIVATE FILE).
//!
//! **The transport PIN.** Personalization (`crate::personalize`) gives every card a random
//! transport PIN and records it in the PIN mailer file (`state_dir/pin-mailer.jsonl`, see
//! [`crate::personalize::PinMailer`]). `delivery.activate` takes it from the `transport_pin`
//! parameter when the kiosk has it (the holder's PIN letter), else looks it up in the mailer
//! file by serial; without either it refuses with `transport_pin_unknown`.
//!
//! **A card pulled during activation.** Before touching the card, activation records
//! `activation_pending` (store and audit). If the card goes away, the card is still
//! deactivated (possibly with the holder's PIN already set) and the journal says "pending, not
//! delivered": they agree. The activation is completed by calling `delivery.activate` again
//! (same session within the window, or a new begin + verify): ACTIVATE FILE is tried first, so
//! a PIN changed by the interrupted attempt is not asked for again; if the card turns out to
//! be activated already (the card finished but the answer was lost), the journal is completed
//! with `delivered` (`recovered: true`).
//!
//! Every step is journaled in the tamper-evident [`crate::audit`] log with identifiers, scores
//! and decisions only: never names, PINs, scans or templates.

use std::time::{Duration, Instant};

use apdu::fcp::LifeCycle;
use serde::Serialize;
use serde_json::Value;

use crate::audit::AuditLog;
use crate::error::Error;
use crate::events::Events;
use crate::journal::Journal;
use crate::lds;
use crate::reader_pool::ReaderPool;

mod activate;
mod begin;
mod handover;
pub mod read;
pub mod session;
pub mod store;
mod terminate;
mod verify;

pub use activate::{activate, ActivateResult};
use begin::refuse_state;
pub use begin::{begin, BeginResult, FaceFrame, FaceSummary, HolderSummary};
pub use handover::handover;
pub use terminate::{terminate, unblock, TerminateReason, TerminateResult};
pub use verify::{
    check_session, is_session_id, scan_from_base64, verify, FingerScore, LiveScan, VerifyResult,
    MAX_LIVE_SCANS, SESSION_ID_LEN,
};

pub use session::{ChipTemplate, Session, Sessions};
pub use store::{CardRecord, DeliveryStore};

/// Scans below this image quality (0-100, `matcher` quality) are refused with `rescan`.
pub const MIN_SCAN_QUALITY: u8 = 20;
/// Scans with fewer reliable minutiae are refused with `rescan`. Issue 19 (`idcardd bench
/// calibrate`, rescan table in `docs/matcher.md`): below 8 every genuine comparison of the pool
/// failed; between 8 and 11 as many good scans as failing ones would be rescanned (12 before).
pub const MIN_SCAN_MINUTIAE: usize = 8;
/// PIN mailer file (written by batch personalization) inside the state directory.
pub const PIN_MAILER_FILE: &str = crate::batch::PIN_MAILER_FILE;

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
    /// Whether activation without a `transport_pin` opens the card's PIN letter in the PIN
    /// mailer (through the token) to find it. `false`: the PIN mailer is read by its printing
    /// step only, and the kiosk gives the transport PIN from the holder's letter.
    pub transport_pin_from_mailer: bool,
    /// This station's office. When set, a card the journal knows is handed over only once it
    /// was received here (`dispatch.receive`); unset (one station doing everything), not asked.
    pub office: Option<String>,
    /// The optional learned extractor's second opinion on decisions close to the threshold.
    pub second_opinion: Option<SecondOpinion>,
}

/// A second opinion on close decisions: when the fused score of a verification lies within
/// `low`..`high` times the decision threshold, the live scans are extracted again by
/// `extractor` (the learned one, about 100 times slower than the default path) and the
/// decision is taken on that comparison instead: on the thresholds of the extractor's score
/// scale when every card template names `extractor` as its creator in DG3, on the classical
/// ones otherwise (a mixed comparison was never calibrated; the classical thresholds are the
/// higher ones).
#[derive(Debug, Clone)]
pub struct SecondOpinion {
    /// Extracts the live scans again.
    pub extractor: std::sync::Arc<dyn matcher::extract::MinutiaeExtractor>,
    /// Lower end of the band, times the threshold (e.g. 0.5).
    pub low: f32,
    /// Upper end of the band, times the threshold (e.g. 1.5): scores from here up are
    /// accepted without asking again.
    pub high: f32,
}

impl SecondOpinion {
    /// Whether a fused `score` decided against `threshold` is close enough to ask again.
    pub fn asks(&self, score: f32, threshold: f32) -> bool {
        score >= self.low * threshold && score < self.high * threshold
    }
}

impl Default for DeliveryPolicy {
    fn default() -> DeliveryPolicy {
        DeliveryPolicy {
            fmr: 0.001,
            max_attempts: 3,
            activate_window: Duration::from_secs(120),
            session_ttl: Duration::from_secs(600),
            transport_pin_from_mailer: true,
            office: None,
            second_opinion: None,
        }
    }
}

/// What the delivery workflows work with, each borrowed from whoever assembled them (the
/// daemon's service, a test): the readers, this office's delivery state, the audit trail and
/// the production journal, where events go, the policy and the trusted CSCAs.
#[derive(Debug, Clone, Copy)]
pub struct Desk<'a> {
    /// The readers a card is read from and activated in.
    pub readers: &'a ReaderPool,
    /// Open sessions and the per-card delivery store.
    pub delivery: &'a Delivery,
    /// The tamper-evident audit trail every step is written to.
    pub audit: &'a AuditLog,
    /// The production journal, told each card's new state (what `status.lookup` answers from).
    pub journal: &'a Journal,
    /// Where `card.delivered`-style events go.
    pub events: &'a Events,
    /// How delivery decides and how long its steps stay valid.
    pub policy: &'a DeliveryPolicy,
    /// Trusted CSCA certificates (PEM files) for passive authentication.
    pub trust: &'a [std::path::PathBuf],
    /// The state directory (the PIN mailer file is read from it).
    pub state_dir: &'a std::path::Path,
    /// The issuer's key store: the terminal key of each card, the PIN mailer's key.
    pub keys: &'a std::sync::Arc<keystore::KeyStore>,
    /// The card profiles (a household kind's rule for its members' cards).
    pub profiles: &'a crate::profile::ProfileSet,
}

/// Delivery state the service keeps: open sessions and the per-card store.
#[derive(Debug)]
pub struct Delivery {
    /// Open delivery sessions (memory only).
    pub sessions: Sessions,
    /// Per-card attempts, pending activations, delivered/terminated (SQLite).
    pub store: DeliveryStore,
}

impl Delivery {
    /// Delivery state of a card for status lookups: `delivered`, `terminated`,
    /// `activation_pending`, `in_delivery` (attempts made) or `None` when delivery never saw it.
    pub fn card_status(&self, serial: &str) -> Result<Option<CardRecord>, Error> {
        let rec = self.store.card(serial).map_err(db_error)?;
        let seen = rec.failed_attempts > 0
            || rec.activation_pending.is_some()
            || rec.delivered_ms.is_some()
            || rec.terminated_ms.is_some()
            || rec.document_number.is_some();
        Ok(seen.then_some(rec))
    }

    /// Opens the store in `state_dir`.
    pub fn open(state_dir: &std::path::Path) -> Result<Delivery, Error> {
        Ok(Delivery {
            sessions: Sessions::default(),
            store: DeliveryStore::open(state_dir).map_err(|e| {
                Error::internal(format!(
                    "opening {}: {e}",
                    state_dir.join(store::DB_FILE).display()
                ))
            })?,
        })
    }

    /// The delivery state on `db` (a line's shared journal database, or a station's file).
    pub fn on(db: crate::db::Db) -> Result<Delivery, Error> {
        Ok(Delivery {
            sessions: Sessions::default(),
            store: DeliveryStore::on(db).map_err(db_error)?,
        })
    }
}

fn db_error(e: crate::db::DbError) -> Error {
    match e {
        crate::db::DbError::Unavailable(_) => {
            Error::new(crate::ErrorKind::JournalUnavailable, e.to_string())
        }
        e => Error::internal(format!("delivery store: {e}")),
    }
}

/// Tells the production journal (what `status.lookup` answers from) the card's new state. A
/// card this daemon did not produce is not in its journal: that is not an error here.
fn set_journal_state(
    desk: &Desk<'_>,
    serial: &str,
    state: crate::journal::CardState,
    reason: Option<&str>,
) -> Result<(), Error> {
    let superseded = match desk.journal.set_card_state(serial, state, reason) {
        Ok(superseded) => superseded,
        Err(crate::journal::JournalError::NotFound(_)) => return Ok(()),
        // Another station delivered the holder's other card first: this one stays superseded.
        Err(crate::journal::JournalError::Conflict(why)) => {
            return Err(Error::new(crate::ErrorKind::CardSuperseded, why))
        }
        Err(e) => return Err(Error::internal(format!("production journal: {e}"))),
    };
    // A reissued or renewed card delivered: the holder's older card is no longer usable.
    for old in superseded {
        journal(
            desk.audit,
            "superseded",
            serde_json::json!({"serial": old, "superseded_by": serial}),
        )?;
        let tracking = desk
            .journal
            .card(&old)
            .ok()
            .flatten()
            .map(|c| c.tracking_code);
        desk.events.publish(
            "card.superseded",
            serde_json::json!({"serial": old, "tracking_code": tracking, "superseded_by": serial}),
        );
    }
    Ok(())
}

/// Appends to the audit log; a journal that cannot be written stops the operation.
fn journal(audit: &AuditLog, kind: &str, details: Value) -> Result<(), Error> {
    audit
        .append(kind, details)
        .map(|_| ())
        .map_err(|e| Error::internal(format!("audit log: {e}")))
}

fn lcs_name(lcs: LifeCycle) -> &'static str {
    match lcs {
        LifeCycle::Creation => "creation",
        LifeCycle::Initialisation => "initialisation",
        LifeCycle::Deactivated => "deactivated",
        LifeCycle::Activated => "activated",
        l if l.is_terminated() => "terminated",
        _ => "unknown",
    }
}

/// Times of one step, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timing {
    /// APDUs: authentication and reading (begin) or PIN change and activation (activate).
    pub card_io: f64,
    /// Passive authentication (begin).
    pub passive_auth: f64,
    /// Decoding and preparing templates (begin), or decoding the scan and extracting it
    /// (verify).
    pub extraction: f64,
    /// Comparisons and fusion (verify).
    pub comparison: f64,
    /// The learned extractor's second opinion, extraction and comparison (verify; 0 when it
    /// was not asked).
    pub second_opinion: f64,
    /// The rest: audit journal appends (fsynced), delivery store, sessions, trust list
    /// loading.
    pub other: f64,
    /// The whole method.
    pub total: f64,
}

impl Timing {
    /// Sets `total` from `started` and `other` as what the named parts do not cover.
    fn finish(&mut self, started: Instant) {
        self.total = read::ms_since(started);
        let parts = self.card_io
            + self.passive_auth
            + self.extraction
            + self.comparison
            + self.second_opinion;
        self.other = (self.total - parts).max(0.0);
    }
}

fn date(d: lds::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}
