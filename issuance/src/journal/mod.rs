//! The production journal: a SQLite database (WAL, `synchronous=FULL`) in the state directory
//! that records every batch, every record's state and every card, so that a crash or SIGKILL
//! loses nothing and doubles nothing.
//!
//! - `batches`: one row per batch (id, source, readers, `running` / `cancelled` / `finished`).
//! - `records`: one row per applicant record of a batch. State machine:
//!   `pending -> checking -> qc_failed | writing -> personalized | failed`. `checking` means a
//!   runner claimed it and runs QC (no card touched yet): a crash there puts it back to
//!   `pending`. `writing` is entered, in one transaction with the `cards` row, *before* the
//!   first byte goes to the card, with the card serial, the document number, the issue date
//!   and the signed EF.SOD, so a resumed run rebuilds exactly the same files and recognises a
//!   card that was finished just before the crash.
//! - `cards`: one row per card serial: `writing`, `personalized`, `spoiled` (left incomplete
//!   by a failed record, reusable), `delivered`, `terminated` ([`Journal::set_card_state`]).
//!
//! Every transition is one transaction. A tracking code is personalized at most once: a
//! partial unique index forbids two `writing`/`personalized` rows with the same code, and a
//! claim that finds the code taken fails the record as a duplicate.
//!
//! Personal data stored: the record JSON (needed to resume without the manifest) and the
//! identifiers the status lookup searches by. No PIN, PUK or key is ever stored here.
//!
//! Retention (issue 18): the face and finger images and templates inline in a record JSON
//! (`{"base64": ...}` blobs) are needed only until the card is written. Once a record is
//! `personalized` (after [`Retention::biometrics_after_personalized`], default at once, in the
//! same transaction), or `qc_failed` / `failed` for [`Retention::failed_records_days`], each
//! blob is replaced by the SHA-256 of its bytes ([`strip_biometrics`]), so the journal keeps
//! proof of what was written and nothing more. A record left `writing` keeps its blobs: a
//! resumed run must rebuild the same files. Opening a journal applies the rule to what is
//! already there (journals written before issue 18 held every record's images for ever), and
//! the file is opened with `secure_delete` and its WAL truncated after a scrub, so the removed
//! bytes do not linger in free pages or old WAL frames.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use serde::Serialize;

use crate::db::{args, Backend, Db, DbError, Row, Tx, Value};

mod schema;
pub use schema::SCHEMA_VERSION;

/// File name of the journal in the state directory.
pub const FILE_NAME: &str = "journal.sqlite";

/// A journal failure.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// The database failed or is unavailable ([`DbError::Unavailable`]: nothing was
    /// written; wait and try again).
    #[error(transparent)]
    Db(#[from] DbError),
    /// No such batch, record or card.
    #[error("{0} not found")]
    NotFound(String),
    /// The transition is not allowed from the current state.
    #[error("{0}")]
    Conflict(String),
    /// A dispatch received at an office it was not sent to.
    #[error("{0}")]
    WrongOffice(String),
    /// Another station holds the record now: this station's lease ran out (it was cut off
    /// from the database) and the line took its claims over. Drop the record and claim again.
    #[error("{0}")]
    TakenOver(String),
}

impl JournalError {
    /// The database could not be reached: nothing was written, the same call may pass later.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, JournalError::Db(DbError::Unavailable(_)))
    }
}

impl From<rusqlite::Error> for JournalError {
    fn from(e: rusqlite::Error) -> JournalError {
        JournalError::Db(e.into())
    }
}

impl From<JournalError> for crate::Error {
    fn from(e: JournalError) -> crate::Error {
        match e {
            JournalError::NotFound(what) => {
                crate::Error::new(crate::ErrorKind::NotFound, format!("{what} not found"))
            }
            JournalError::Db(e @ DbError::Unavailable(_)) => {
                crate::Error::new(crate::ErrorKind::JournalUnavailable, e.to_string())
            }
            other => crate::Error::internal(other.to_string()),
        }
    }
}

/// A record's state (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordState {
    /// Waiting for a reader.
    Pending,
    /// Claimed; data QC running; no card touched.
    Checking,
    /// Rejected by data QC (`qc_issues` lists every problem).
    QcFailed,
    /// A card is being written (its serial is journaled).
    Writing,
    /// Done: the card is personalized and deactivated.
    Personalized,
    /// Given up (`reason`).
    Failed,
}

impl RecordState {
    /// The name stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Pending => "pending",
            RecordState::Checking => "checking",
            RecordState::QcFailed => "qc_failed",
            RecordState::Writing => "writing",
            RecordState::Personalized => "personalized",
            RecordState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> RecordState {
        match s {
            "pending" => RecordState::Pending,
            "checking" => RecordState::Checking,
            "qc_failed" => RecordState::QcFailed,
            "writing" => RecordState::Writing,
            "personalized" => RecordState::Personalized,
            _ => RecordState::Failed,
        }
    }
}

/// A batch's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BatchState {
    /// Submitted, or a run claims its records (a batch whose run died stays `running` until
    /// it is resumed).
    Running,
    /// Cancelled: no record is claimed any more.
    Cancelled,
    /// Every record reached a final state.
    Finished,
}

impl BatchState {
    /// The name stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Running => "running",
            BatchState::Cancelled => "cancelled",
            BatchState::Finished => "finished",
        }
    }

    fn parse(s: &str) -> BatchState {
        match s {
            "cancelled" => BatchState::Cancelled,
            "finished" => BatchState::Finished,
            _ => BatchState::Running,
        }
    }
}

/// A card's state in the journal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CardState {
    /// Being written.
    Writing,
    /// Personalized and deactivated, on its way to the office.
    Personalized,
    /// Left incomplete by a failed record; may be written again for another record.
    Spoiled,
    /// Sent to an office in a dispatch.
    Dispatched,
    /// Received at the office it was sent to: ready for pickup.
    Received,
    /// Handed to the holder and activated.
    Delivered,
    /// Cancelled on the chip (lost and found, stolen, replaced, damaged).
    Terminated,
    /// A newer card of the same person and kind was delivered (`superseded_by` names it).
    Superseded,
    /// Reported lost or stolen: unusable although the chip is out of reach.
    Revoked,
}

impl CardState {
    /// The name stored in the journal.
    pub fn as_str(self) -> &'static str {
        match self {
            CardState::Writing => "writing",
            CardState::Personalized => "personalized",
            CardState::Spoiled => "spoiled",
            CardState::Dispatched => "dispatched",
            CardState::Received => "received",
            CardState::Delivered => "delivered",
            CardState::Terminated => "terminated",
            CardState::Superseded => "superseded",
            CardState::Revoked => "revoked",
        }
    }

    fn parse(s: &str) -> CardState {
        match s {
            "writing" => CardState::Writing,
            "personalized" => CardState::Personalized,
            "spoiled" => CardState::Spoiled,
            "dispatched" => CardState::Dispatched,
            "received" => CardState::Received,
            "delivered" => CardState::Delivered,
            "superseded" => CardState::Superseded,
            "revoked" => CardState::Revoked,
            _ => CardState::Terminated,
        }
    }

    /// Whether the card may still be used (produced and not yet replaced, on its way, at the
    /// office, or delivered).
    pub fn usable(self) -> bool {
        matches!(
            self,
            CardState::Personalized
                | CardState::Dispatched
                | CardState::Received
                | CardState::Delivered
        )
    }
}

/// A card as the journal knows it (issue 16).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardRow {
    /// Card serial, hex.
    pub serial: String,
    /// The tracking code of the application it was made for.
    pub tracking_code: String,
    /// Its state now.
    pub state: CardState,
    /// Why (termination, revocation, spoiling), if said.
    pub reason: Option<String>,
    /// Whose card (national code, or for a foreign resident `FR:<permit>:<birth date>:<gender>`);
    /// `None` for a card journaled before issue 16 whose record no longer says.
    pub person: Option<String>,
    /// Card kind (profile name).
    pub kind: Option<String>,
    /// Document number.
    pub document_number: Option<String>,
    /// Date of expiry, `YYYYMMDD` (`None` for cards made before issue 16).
    pub date_of_expiry: Option<String>,
    /// The card that superseded it.
    pub superseded_by: Option<String>,
    /// When its state last changed.
    pub updated_at_ms: i64,
    /// The dispatch it was sent in.
    pub dispatch_id: Option<String>,
    /// The office it was sent to.
    pub office: Option<String>,
    /// For household kinds: the household code.
    pub household: Option<String>,
    /// For household kinds: whether the holder is the household head.
    pub household_head: bool,
}

impl CardRow {
    /// Whether the card's validity ended before `today` (`YYYYMMDD`).
    pub fn expired(&self, today: &str) -> bool {
        self.date_of_expiry.as_deref().is_some_and(|d| d < today)
    }
}

/// A card in a dispatch manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DispatchedCard {
    /// Card serial.
    pub serial: String,
    /// The application's tracking code.
    pub tracking_code: String,
    /// Document number.
    pub document_number: Option<String>,
}

/// Produced cards sent to an office together.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dispatch {
    /// Dispatch id.
    pub id: String,
    /// The office the cards go to.
    pub office: String,
    /// The manifest.
    pub cards: Vec<DispatchedCard>,
    /// When it was made.
    pub created_at_ms: i64,
}

/// Why a card cannot be dispatched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DispatchProblem {
    /// The serial as given.
    pub serial: String,
    /// `unknown`, `not_produced`, `already_dispatched`, `named twice`, or the card's state
    /// (`delivered`, `revoked`, ...).
    pub problem: String,
}

impl DispatchProblem {
    fn new(serial: &str, problem: &str) -> DispatchProblem {
        DispatchProblem {
            serial: serial.to_string(),
            problem: problem.to_string(),
        }
    }
}

/// What an office's receipt of a dispatch found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Receipt {
    /// The dispatch.
    pub dispatch_id: String,
    /// The office.
    pub office: String,
    /// Cards of the manifest received now: ready for pickup.
    pub received: Vec<DispatchedCard>,
    /// Cards of the manifest received by an earlier scan.
    pub already_received: Vec<String>,
    /// Cards of the manifest not scanned in.
    pub missing: Vec<String>,
    /// Cards scanned in that the manifest does not list (not changed).
    pub unexpected: Vec<String>,
}

/// One state in a card's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CardEvent {
    /// The state the card entered.
    pub state: CardState,
    /// Why, or for `superseded` the card that superseded it.
    pub reason: Option<String>,
    /// When.
    pub at_ms: i64,
    /// The station that made the change (`None` before issue 17).
    pub station: Option<String>,
}

/// A record handed to a runner by [`Journal::claim_next`].
#[derive(Debug, Clone)]
pub struct Claim {
    /// Row id (also the source of the document number).
    pub seq: i64,
    /// Tracking code.
    pub tracking_code: String,
    /// The applicant record as submitted (JSON).
    pub record_json: String,
    /// Directory relative paths of the record resolve against.
    pub base_dir: String,
    /// `Some` when a previous run was writing a card for it: resume on that card.
    pub resume: Option<ResumeWrite>,
}

/// What a previous run journaled before writing a card.
#[derive(Debug, Clone)]
pub struct ResumeWrite {
    /// The card's serial (hex).
    pub card_serial: String,
    /// Document number used.
    pub document_number: String,
    /// Issue date used, `YYYYMMDD`.
    pub date_of_issue: String,
    /// The EF.SOD signed for it.
    pub sod: Vec<u8>,
}

/// A record's row, as reports and the status lookup show it (no personal data beyond
/// identifiers).
#[derive(Debug, Clone, Serialize)]
pub struct RecordRow {
    /// Batch id.
    pub batch_id: String,
    /// Row id.
    pub seq: i64,
    /// Tracking code.
    pub tracking_code: String,
    /// State.
    pub state: RecordState,
    /// Reader that handled it.
    pub reader: Option<String>,
    /// Card serial (hex) once a card was chosen.
    pub card_serial: Option<String>,
    /// The card's own state (delivered, terminated, ...) when it has one.
    pub card_state: Option<CardState>,
    /// Document number.
    pub document_number: Option<String>,
    /// Why it failed.
    pub reason: Option<String>,
    /// QC problems (JSON array of {path, code, message}).
    pub qc_issues: Option<serde_json::Value>,
    /// Cards written for it (more than 1 after an interrupted write).
    pub attempts: i64,
    /// APDUs of the last personalization.
    pub apdus: Option<i64>,
    /// Milliseconds since the epoch of the last change.
    pub updated_at_ms: i64,
    /// The card's date of expiry (`YYYYMMDD`), once the journal knows it.
    pub card_expiry: Option<String>,
    /// Why the card left service (termination, revocation), if it did.
    pub card_reason: Option<String>,
    /// The office the card was sent to, once dispatched.
    pub card_office: Option<String>,
    /// The station that claimed it last (and, once personalized, made its card).
    pub station: Option<String>,
}

/// Counts per state of a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Records in the batch.
    pub total: u64,
    /// Waiting (or being checked).
    pub pending: u64,
    /// Rejected by QC.
    pub qc_failed: u64,
    /// Being written.
    pub writing: u64,
    /// Done.
    pub personalized: u64,
    /// Given up.
    pub failed: u64,
}

impl Counts {
    /// Records that reached a final state.
    pub fn done(&self) -> u64 {
        self.qc_failed + self.personalized + self.failed
    }
}

/// A batch's row.
#[derive(Debug, Clone, Serialize)]
pub struct BatchRow {
    /// Batch id.
    pub id: String,
    /// Where the records came from (manifest path or `api`).
    pub source: String,
    /// Readers, comma separated.
    pub readers: String,
    /// Running, cancelled or finished.
    pub state: BatchState,
    /// Milliseconds since the epoch.
    pub created_at_ms: i64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Two random bytes (dispatch ids: milliseconds plus these).
fn rand_u16() -> u16 {
    use ring::rand::SecureRandom as _;
    let mut r = [0u8; 2];
    let _ = ring::rand::SystemRandom::new().fill(&mut r);
    u16::from_be_bytes(r)
}

/// How long the journal keeps applicants' biometrics (see the module documentation). The
/// daemon's `[retention]` settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long after a record is `personalized` its face and fingers stay in the journal
    /// (`biometrics_after_personalized`, default 0: removed as the record is finished).
    pub biometrics_after_personalized: Duration,
    /// How many days the biometrics of a `qc_failed` or `failed` record stay, for an operator
    /// to see what was wrong (`failed_records_days`, default 30).
    pub failed_records_days: u32,
}

impl Default for Retention {
    fn default() -> Retention {
        Retention {
            biometrics_after_personalized: Duration::ZERO,
            failed_records_days: 30,
        }
    }
}

impl Retention {
    /// Records finished at or before these times (ms since the epoch) lose their biometrics:
    /// `(personalized, qc_failed or failed)`.
    fn cutoffs(&self, now_ms: i64) -> (i64, i64) {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        let failed = Duration::from_secs(u64::from(self.failed_records_days) * 86_400);
        (
            now_ms.saturating_sub(ms(self.biometrics_after_personalized)),
            now_ms.saturating_sub(ms(failed)),
        )
    }
}

/// The record JSON with every inline blob (an object with a `base64` string: face, finger
/// scan, template) replaced by `{"sha256": <hex of its bytes>, "bytes": <length>}`; file
/// references (`path`) stay as they are. Any other string longer than [`LONG_TEXT`] (no
/// identity field is; a malformed record may carry an image under an unknown key, or be
/// submitted as one string) becomes `"sha256:<hex>"`. A record that is not JSON at all is
/// replaced by `{"record_sha256": ...}` when it holds anything that looks like inline data.
pub fn strip_biometrics(record_json: &str) -> String {
    fn sha256_hex(bytes: &[u8]) -> String {
        hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
    }
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                if let Some(serde_json::Value::String(text)) = map.get("base64") {
                    let bytes = base64::engine::general_purpose::STANDARD
                        .decode(text.trim())
                        .unwrap_or_else(|_| text.as_bytes().to_vec());
                    let digest = sha256_hex(&bytes);
                    map.remove("base64");
                    map.insert("sha256".into(), digest.into());
                    map.insert("bytes".into(), bytes.len().into());
                }
                map.values_mut().for_each(walk);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(walk),
            serde_json::Value::String(text) if text.len() > LONG_TEXT => {
                *text = format!("sha256:{}", sha256_hex(text.as_bytes()));
            }
            _ => {}
        }
    }
    match serde_json::from_str::<serde_json::Value>(record_json) {
        Ok(mut v) => {
            walk(&mut v);
            v.to_string()
        }
        Err(_) if record_json.contains("base64") || record_json.len() > LONG_TEXT => {
            serde_json::json!({ "record_sha256": sha256_hex(record_json.as_bytes()) }).to_string()
        }
        Err(_) => record_json.to_string(),
    }
}

/// Strings longer than this in a record are taken for inline data by [`strip_biometrics`].
pub const LONG_TEXT: usize = 1024;

/// Strips the biometrics of every record whose retention is over (see [`Retention`]); returns
/// how many records were rewritten.
fn sweep(tx: &mut dyn Tx, retention: &Retention, now: i64) -> Result<usize, DbError> {
    let (personalized, failed) = retention.cutoffs(now);
    let due = tx.query(
        "SELECT seq, record_json FROM records WHERE biometrics_removed_at IS NULL
           AND ((state = 'personalized' AND updated_at <= ?1)
             OR (state IN ('qc_failed', 'failed') AND updated_at <= ?2))",
        args![personalized, failed],
    )?;
    for row in &due {
        tx.execute(
            "UPDATE records SET record_json = ?2, biometrics_removed_at = ?3 WHERE seq = ?1",
            args![row.int(0)?, strip_biometrics(&row.text(1)?), now],
        )?;
    }
    Ok(due.len())
}

/// How a journal identifies its station and how long its claims outlive its silence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationSettings {
    /// This station's identity, recorded with every transition (config `station_id`).
    pub station_id: String,
    /// How long after its last renewal a station's claims move to other stations.
    pub lease: Duration,
}

impl Default for StationSettings {
    fn default() -> StationSettings {
        StationSettings {
            station_id: default_station_id(),
            lease: DEFAULT_LEASE,
        }
    }
}

/// The default lease of a station's claims (config `[line] lease_s`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(15);

/// The host name, the default station id.
pub fn default_station_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "station".into())
}

/// Where the journal lives and who this station is: the daemon's `journal`,
/// `journal_password`, `station_id` and `[line]` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalConfig {
    /// `postgres://user@host:port/database` for a line's shared journal; `None`: the
    /// station's own SQLite file, `<state_dir>/journal.sqlite`.
    pub url: Option<String>,
    /// Where the database password comes from (never the URL, never argv).
    pub password: Option<crate::db::Credentials>,
    /// PostgreSQL connections kept open (default 4).
    pub pool_size: Option<u32>,
    /// This station's identity (default: the host name).
    pub station_id: Option<String>,
    /// How long a silent station's claims stay its own (default [`DEFAULT_LEASE`]).
    pub lease: Option<Duration>,
    /// Whether this station works on every running batch of the journal with its own readers
    /// (default: yes on a shared journal, no on a station's own).
    pub join_batches: Option<bool>,
}

impl JournalConfig {
    /// Whether the journal is a line's shared database.
    pub fn is_shared(&self) -> bool {
        self.url.is_some()
    }

    /// Whether this station joins every running batch.
    pub fn joins_batches(&self) -> bool {
        self.join_batches.unwrap_or(self.is_shared())
    }

    /// The station's identity and lease.
    pub fn station(&self) -> StationSettings {
        StationSettings {
            station_id: self.station_id.clone().unwrap_or_else(default_station_id),
            lease: self.lease.unwrap_or(DEFAULT_LEASE),
        }
    }

    /// Opens the journal: the shared database, or `<state_dir>/journal.sqlite` (the directory
    /// made owner-only).
    pub fn open(&self, state_dir: &Path, retention: Retention) -> Result<Journal, JournalError> {
        Journal::on(self.db(state_dir, FILE_NAME)?, retention, self.station())
    }

    /// The database of a store of this station: the line's shared database (a pool of its
    /// own), or the station's own SQLite file `<state_dir>/<file_name>` (the directory made
    /// owner-only).
    pub fn db(&self, state_dir: &Path, file_name: &str) -> Result<Db, JournalError> {
        Ok(match &self.url {
            None => {
                crate::store::private_dir(state_dir).map_err(|e| {
                    JournalError::Conflict(format!("cannot create {}: {e}", state_dir.display()))
                })?;
                Db::open_sqlite(&state_dir.join(file_name))?
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let password = self.password.as_ref().map(|c| c.read()).transpose()?;
                Db::connect_postgres(
                    url,
                    crate::db::PgOptions {
                        password,
                        pool_size: self.pool_size,
                        connect_timeout: None,
                    },
                )?
            }
            Some(other) => {
                return Err(JournalError::Conflict(format!(
                    "journal {other:?}: give a postgres://user@host:port/database URL, or leave \
                     it out for the station's own SQLite journal"
                )))
            }
        })
    }
}

/// The journal: batches, records, cards and their history, dispatches, stations, on one
/// [`Db`] (the station's SQLite file or the line's PostgreSQL database).
#[derive(Debug)]
pub struct Journal {
    db: Db,
    /// When biometrics leave the journal.
    retention: Retention,
    station: StationSettings,
    /// When this station last renewed its lease (`None`: never).
    renewed: Mutex<Option<Instant>>,
    /// Since when the database has answered this station without a break (`None`: it is
    /// away now). Only a station connected for a whole lease takes others' claims over: after
    /// an outage every lease looks run out, and the stations must first renew their own.
    connected_since: Mutex<Option<Instant>>,
}

/// Brings the journal to [`SCHEMA_VERSION`] in one transaction, or refuses a newer one.
fn migrate(tx: &mut dyn Tx) -> Result<(), JournalError> {
    Db::lock_schema(tx)?;
    let version = Db::schema_version(tx)?;
    if version > SCHEMA_VERSION {
        return Err(JournalError::Conflict(format!(
            "the journal has schema version {version}, newer than this idcardd understands \
             ({SCHEMA_VERSION}): it was written by a newer release; use that release or newer"
        )));
    }
    if version == SCHEMA_VERSION {
        return Ok(());
    }
    let backend = tx.backend();
    let exists = match backend {
        Backend::Sqlite => {
            tx.query_one(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'batches'",
                &[],
            )?
            .int(0)?
                > 0
        }
        Backend::Postgres => version > 0,
    };
    if !exists {
        tx.batch(&Db::schema_sql(backend, schema::CURRENT))?;
    } else {
        // Only SQLite journals are older than the PostgreSQL backend.
        if version < 2 {
            tx.batch(schema::SQLITE_V1)?;
            let has_column = tx
                .query_one(
                    "SELECT COUNT(*) FROM pragma_table_info('records')
                     WHERE name = 'biometrics_removed_at'",
                    &[],
                )?
                .int(0)?
                > 0;
            if !has_column {
                tx.batch("ALTER TABLE records ADD COLUMN biometrics_removed_at INTEGER;")?;
            }
            tx.batch(schema::SQLITE_RETENTION_INDEX)?;
            tx.batch(schema::SQLITE_V2)?;
        }
        tx.batch(&Db::schema_sql(backend, schema::V3))?;
    }
    Db::set_schema_version(tx, SCHEMA_VERSION)?;
    Ok(())
}

/// Appends a state to a card's history.
fn card_event(
    tx: &mut dyn Tx,
    serial: &str,
    state: &str,
    reason: Option<&str>,
    station: &str,
    now: i64,
) -> Result<u64, DbError> {
    tx.execute(
        "INSERT INTO card_events (serial, state, reason, at_ms, station)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        args![serial, state, reason, now, station],
    )
}

/// Stations whose lease runs: `station NOT IN (..)` of this makes a claim of a silent station.
const LIVE_STATIONS: &str = "SELECT station_id FROM stations WHERE lease_until >= ?3";

/// The columns of a record that [`claim_of`] reads, in its order.
const CLAIM_COLUMNS: &str = "seq, tracking_code, record_json, base_dir, card_serial, \
    document_number, date_of_issue, sod";

/// A claim from a row that starts with [`CLAIM_COLUMNS`]; `resume`: the record is `writing`,
/// to be finished on its card.
fn claim_of(r: &Row, resume: bool) -> Result<Claim, DbError> {
    let resume = if resume {
        Some(ResumeWrite {
            card_serial: r.text(4)?,
            document_number: r.text(5)?,
            date_of_issue: r.text(6)?,
            sod: r.blob(7)?,
        })
    } else {
        None
    };
    Ok(Claim {
        seq: r.int(0)?,
        tracking_code: r.text(1)?,
        record_json: r.text(2)?,
        base_dir: r.text(3)?,
        resume,
    })
}

fn batch_row(r: &Row) -> Result<BatchRow, DbError> {
    Ok(BatchRow {
        id: r.text(0)?,
        source: r.text(1)?,
        readers: r.text(2)?,
        state: BatchState::parse(&r.text(3)?),
        created_at_ms: r.int(4)?,
    })
}

impl Journal {
    /// Opens (creating) the journal at `path`: WAL, `synchronous=FULL`, the schema, the
    /// default [`Retention`] (applied at once to what is there).
    pub fn open(path: &Path) -> Result<Journal, JournalError> {
        Journal::open_with(path, Retention::default())
    }

    /// Opens (creating) the journal at `path` with `retention`, applying it to the records
    /// already there (journals written before issue 18 kept every image).
    pub fn open_with(path: &Path, retention: Retention) -> Result<Journal, JournalError> {
        Journal::on(
            Db::open_sqlite(path)?,
            retention,
            StationSettings::default(),
        )
    }

    /// The journal on `db` (the line's PostgreSQL database or a station's SQLite file):
    /// migrated to [`SCHEMA_VERSION`] (a newer one is refused), `retention` applied, claims
    /// made as `station`.
    pub fn on(
        db: Db,
        retention: Retention,
        station: StationSettings,
    ) -> Result<Journal, JournalError> {
        db.write(|tx| migrate(tx))?;
        let journal = Journal {
            db,
            retention,
            station,
            renewed: Mutex::new(None),
            connected_since: Mutex::new(None),
        };
        journal.sweep_retention()?;
        Ok(journal)
    }

    /// Opens the journal of a state directory (`<state_dir>/journal.sqlite`), creating the
    /// directory owner-only (an existing looser one is tightened).
    pub fn open_in(state_dir: &Path) -> Result<Journal, JournalError> {
        Journal::open_in_with(state_dir, Retention::default())
    }

    /// [`Journal::open_in`] with `retention`.
    pub fn open_in_with(state_dir: &Path, retention: Retention) -> Result<Journal, JournalError> {
        crate::store::private_dir(state_dir).map_err(|e| {
            JournalError::Conflict(format!("cannot create {}: {e}", state_dir.display()))
        })?;
        Journal::open_with(&state_dir.join(FILE_NAME), retention)
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// This station's identity.
    pub fn station_id(&self) -> &str {
        &self.station.station_id
    }

    /// The retention rule this journal applies.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Renews this station's lease (every third of it, by [`Journal::keep_lease`]): its claims
    /// stay its own until `lease` after the last renewal.
    pub fn renew_lease(&self) -> Result<(), JournalError> {
        let now = now_ms();
        let until = now + self.station.lease.as_millis() as i64;
        let renewed = self.db.write(|tx| {
            tx.execute(
                "INSERT INTO stations (station_id, lease_until, started_at, seen_at)
                 VALUES (?1, ?2, ?3, ?3)
                 ON CONFLICT (station_id) DO UPDATE SET lease_until = ?2, seen_at = ?3",
                args![self.station_id(), until, now],
            )
        });
        self.saw(renewed.as_ref().map(|_| ()).map_err(Clone::clone))?;
        *self.renewed.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
        Ok(())
    }

    /// Keeps [`Journal::connected_since`] current from the outcome of a database call.
    fn saw<T>(&self, outcome: Result<T, DbError>) -> Result<T, DbError> {
        let mut since = self
            .connected_since
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        match &outcome {
            Ok(_) => {
                since.get_or_insert_with(Instant::now);
            }
            Err(DbError::Unavailable(_)) => *since = None,
            Err(_) => {}
        }
        outcome
    }

    /// Whether this station has been connected for a whole lease (it may take over claims of
    /// stations whose lease ran out).
    fn may_take_over(&self) -> bool {
        self.connected_since
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() >= self.station.lease)
    }

    /// Renews this station's lease unless it is held: claims are its own only while it runs.
    fn hold_lease(&self) -> Result<(), JournalError> {
        if !self.lease_held() {
            self.renew_lease()?;
        }
        Ok(())
    }

    /// Whether this station may take and write records now: its lease was renewed less than
    /// two thirds of a lease ago, so no other station can have taken its claims.
    pub fn lease_held(&self) -> bool {
        self.renewed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some_and(|at| at.elapsed() < self.station.lease * 2 / 3)
    }

    /// Renews the lease every third of it until `stop` is set, on a thread of its own; `up`
    /// is told each time whether the database answered.
    pub fn keep_lease(
        self: &std::sync::Arc<Self>,
        stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
        up: impl Fn(Result<(), &JournalError>) + Send + 'static,
    ) -> std::thread::JoinHandle<()> {
        let journal = std::sync::Arc::clone(self);
        std::thread::Builder::new()
            .name("journal-lease".into())
            .spawn(move || {
                let every = journal.station.lease / 3;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = journal.renew_lease();
                    up(r.as_ref().map(|_| ()));
                    let until = Instant::now() + every;
                    while Instant::now() < until && !stop.load(std::sync::atomic::Ordering::Relaxed)
                    {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                }
            })
            .expect("spawning the journal lease thread")
    }

    /// Applies the retention rule now (it is also applied at open and whenever a record
    /// reaches a final state); returns how many records lost their biometrics.
    pub fn sweep_retention(&self) -> Result<usize, JournalError> {
        let n = self.db.write(|tx| sweep(tx, &self.retention, now_ms()))?;
        if n > 0 {
            self.db.after_scrub();
        }
        Ok(n)
    }

    /// Creates batch `id` with its records (JSON text, base directory), all `pending`, in one
    /// transaction.
    pub fn create_batch(
        &self,
        id: &str,
        source: &str,
        readers: &[String],
        records: &[(String, String)],
    ) -> Result<(), JournalError> {
        self.db.write(|tx| {
            let now = now_ms();
            tx.execute(
                "INSERT INTO batches (id, source, readers, state, created_at, updated_at, station)
                 VALUES (?1, ?2, ?3, 'running', ?4, ?4, ?5)",
                args![id, source, readers.join(","), now, self.station_id()],
            )?;
            for (json, base_dir) in records {
                let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
                let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
                tx.execute(
                    "INSERT INTO records (batch_id, tracking_code, record_json, base_dir,
                        national_code, birth_certificate_serial, birth_date, state, created_at,
                        updated_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)",
                    args![
                        id,
                        text("tracking_code").unwrap_or_default(),
                        json,
                        base_dir,
                        text("national_code"),
                        text("birth_certificate_serial"),
                        text("birth_date"),
                        now
                    ],
                )?;
            }
            Ok::<_, JournalError>(())
        })
    }

    /// The batch row.
    pub fn batch(&self, id: &str) -> Result<BatchRow, JournalError> {
        self.db
            .read(|tx| {
                tx.query_opt(
                    "SELECT id, source, readers, state, created_at FROM batches WHERE id = ?1",
                    args![id],
                )?
                .as_ref()
                .map(batch_row)
                .transpose()
            })?
            .ok_or_else(|| JournalError::NotFound(format!("batch {id:?}")))
    }

    /// Every batch, newest first.
    pub fn batches(&self) -> Result<Vec<BatchRow>, JournalError> {
        Ok(self.db.read(|tx| {
            tx.query(
                "SELECT id, source, readers, state, created_at FROM batches
                 ORDER BY created_at DESC, id DESC",
                &[],
            )?
            .iter()
            .map(batch_row)
            .collect::<Result<Vec<_>, DbError>>()
        })?)
    }

    /// Sets the batch state.
    pub fn set_batch_state(&self, id: &str, state: BatchState) -> Result<(), JournalError> {
        let n = self.db.write(|tx| {
            tx.execute(
                "UPDATE batches SET state = ?2, updated_at = ?3 WHERE id = ?1",
                args![id, state.as_str(), now_ms()],
            )
        })?;
        if n == 0 {
            return Err(JournalError::NotFound(format!("batch {id:?}")));
        }
        Ok(())
    }

    /// Starts a run of batch `id` by runner `owner` of this station: claims left by an earlier
    /// run of this station, or by a station whose lease ran out, are released (`checking`
    /// back to `pending`; `writing` kept, to be resumed on its card). Claims of other live
    /// stations stay theirs.
    pub fn start_run(&self, id: &str, owner: &str) -> Result<(), JournalError> {
        self.db.write(|tx| {
            let now = now_ms();
            let stale =
                format!("(station IS NULL OR station = ?4 OR station NOT IN ({LIVE_STATIONS}))");
            tx.execute(
                &format!(
                    "UPDATE records SET state = 'pending', owner = NULL, station = NULL,
                        updated_at = ?3
                     WHERE batch_id = ?1 AND state = 'checking' AND owner IS DISTINCT FROM ?2
                       AND {stale}"
                ),
                args![id, owner, now, self.station_id()],
            )?;
            tx.execute(
                &format!(
                    "UPDATE records SET owner = NULL WHERE batch_id = ?1 AND state = 'writing'
                       AND owner IS DISTINCT FROM ?2 AND {stale}"
                ),
                args![id, owner, now, self.station_id()],
            )?;
            tx.execute(
                "UPDATE batches SET state = 'running', updated_at = ?2 WHERE id = ?1",
                args![id, now],
            )?;
            Ok::<_, JournalError>(())
        })
    }

    /// Releases the claims of stations whose lease ran out (`checking` back to `pending`,
    /// `writing` left for another station to resume); returns how many moved.
    fn take_over_silent(
        tx: &mut dyn Tx,
        id: &str,
        me: &str,
        now: i64,
        lease: Duration,
    ) -> Result<u64, DbError> {
        // A server that restarted was away for every station: their leases count from its
        // start, so each station first renews its own before the line takes anything over.
        let server_up_a_lease = match tx.backend() {
            Backend::Postgres => {
                "?4 <= CAST(EXTRACT(EPOCH FROM (clock_timestamp() - pg_postmaster_start_time()))
                    * 1000 AS BIGINT)"
            }
            Backend::Sqlite => "?4 = ?4",
        };
        let dead = format!(
            "station IS NOT NULL AND station != ?2 AND station NOT IN ({LIVE_STATIONS})
             AND {server_up_a_lease}"
        );
        let lease_ms = lease.as_millis() as i64;
        let a = tx.execute(
            &format!(
                "UPDATE records SET state = 'pending', owner = NULL, station = NULL,
                    updated_at = ?3
                 WHERE batch_id = ?1 AND state = 'checking' AND {dead}"
            ),
            args![id, me, now, lease_ms],
        )?;
        let b = tx.execute(
            &format!(
                "UPDATE records SET owner = NULL WHERE batch_id = ?1 AND state = 'writing'
                   AND owner IS NOT NULL AND {dead}"
            ),
            args![id, me, now, lease_ms],
        )?;
        if a + b > 0 {
            tracing::warn!(
                "batch {id}: {} record(s) of a silent station moved to the line",
                a + b
            );
        }
        Ok(a + b)
    }

    /// Atomically hands the next record of batch `id` to `owner` on `reader`: first a record a
    /// dead run left `writing` (to finish on its card), then the oldest `pending` one. A
    /// pending record whose tracking code is already claimed or personalized elsewhere is
    /// failed as a duplicate on the way. Records another station holds are skipped (row locks
    /// on PostgreSQL); those of a station whose lease ran out are taken over first. `None`:
    /// nothing left to claim now. Refused while this station's lease is not held (the
    /// database was away): its claims may have moved. After a claim that failed because the
    /// database went away, ask [`Journal::claim_again`] first.
    pub fn claim_next(
        &self,
        id: &str,
        owner: &str,
        reader: &str,
    ) -> Result<Option<Claim>, JournalError> {
        self.hold_lease()?;
        // Two stations claiming two records with the same tracking code at once: the second
        // one's claim breaks the unique index; it runs again and finds the code taken.
        let mut attempts = 0;
        let take_over = self.may_take_over();
        loop {
            attempts += 1;
            match self
                .db
                .write(|tx| self.claim_once(tx, id, owner, reader, take_over))
            {
                Err(JournalError::Db(DbError::Constraint(_))) if attempts < 5 => continue,
                Err(JournalError::Db(e)) => {
                    let _ = self.saw::<()>(Err(e.clone()));
                    return Err(e.into());
                }
                other => return other,
            }
        }
    }

    /// The record that `owner` holds on `reader` of batch `id` (`checking`, or `writing` to
    /// resume on its card), if any: after a [`Journal::claim_next`] that failed because the
    /// database went away, the claim may have been committed with only the answer lost, and no
    /// other station takes a live station's claims, so without this the record would wait
    /// forever (and the line with it). `None` when that claim never happened.
    pub fn claim_again(
        &self,
        id: &str,
        owner: &str,
        reader: &str,
    ) -> Result<Option<Claim>, JournalError> {
        // As for a new claim: what this station held is its own only while its lease runs.
        self.hold_lease()?;
        self.db.write(|tx| {
            let now = now_ms();
            let Some(r) = tx.query_opt(
                &format!(
                    "SELECT {CLAIM_COLUMNS}, state
                     FROM records WHERE batch_id = ?1 AND owner = ?2 AND reader = ?3
                       AND state IN ('checking', 'writing')
                     ORDER BY seq LIMIT 1 FOR UPDATE"
                ),
                args![id, owner, reader],
            )?
            else {
                return Ok(None);
            };
            let claim = claim_of(&r, r.text(8)? == RecordState::Writing.as_str())?;
            tx.execute(
                "UPDATE records SET updated_at = ?2 WHERE seq = ?1",
                args![claim.seq, now],
            )?;
            tracing::warn!(
                reader = %reader,
                "batch {id}: record {} was claimed on this reader as the journal went away; \
                 taken up again",
                claim.seq
            );
            Ok(Some(claim))
        })
    }

    fn claim_once(
        &self,
        tx: &mut dyn Tx,
        id: &str,
        owner: &str,
        reader: &str,
        take_over: bool,
    ) -> Result<Option<Claim>, JournalError> {
        let now = now_ms();
        let me = self.station_id();
        if take_over {
            Journal::take_over_silent(tx, id, me, now, self.station.lease)?;
        }
        // A card a live station left to resume (it restarted) is in that station's reader: it
        // takes it back itself.
        let resumable = tx.query_opt(
            &format!(
                "SELECT {CLAIM_COLUMNS}
             FROM records WHERE batch_id = ?1 AND state = 'writing' AND owner IS NULL
               AND (station IS NULL OR station = ?2 OR station NOT IN ({LIVE_STATIONS}))
             ORDER BY seq LIMIT 1 FOR UPDATE SKIP LOCKED"
            ),
            args![id, me, now],
        )?;
        if let Some(r) = resumable {
            let claim = claim_of(&r, true)?;
            tx.execute(
                "UPDATE records SET owner = ?2, reader = ?3, station = ?5, updated_at = ?4
                 WHERE seq = ?1",
                args![claim.seq, owner, reader, now, me],
            )?;
            return Ok(Some(claim));
        }
        loop {
            let Some(r) = tx.query_opt(
                "SELECT seq, tracking_code, record_json, base_dir FROM records
                 WHERE batch_id = ?1 AND state = 'pending' ORDER BY seq LIMIT 1
                 FOR UPDATE SKIP LOCKED",
                args![id],
            )?
            else {
                return Ok(None);
            };
            let claim = Claim {
                seq: r.int(0)?,
                tracking_code: r.text(1)?,
                record_json: r.text(2)?,
                base_dir: r.text(3)?,
                resume: None,
            };
            let taken = tx.query_opt(
                "SELECT batch_id, state FROM records WHERE tracking_code = ?1
                 AND tracking_code != '' AND seq != ?2
                 AND state IN ('checking', 'writing', 'personalized') LIMIT 1",
                args![&claim.tracking_code, claim.seq],
            )?;
            if let Some(t) = taken {
                tx.execute(
                    "UPDATE records SET state = 'failed', reason = ?2, reader = ?3,
                        station = ?5, updated_at = ?4 WHERE seq = ?1",
                    args![
                        claim.seq,
                        format!(
                            "duplicate: this tracking code is {} in batch {}",
                            t.text(1)?,
                            t.text(0)?
                        ),
                        reader,
                        now,
                        me
                    ],
                )?;
                continue;
            }
            tx.execute(
                "UPDATE records SET state = 'checking', owner = ?2, reader = ?3, station = ?5,
                    updated_at = ?4
                 WHERE seq = ?1",
                args![claim.seq, owner, reader, now, me],
            )?;
            return Ok(Some(claim));
        }
    }

    /// Puts a claimed record back: `checking` to `pending`; a `writing` one stays `writing`
    /// without an owner, for whichever run takes it next to resume on its card.
    pub fn release(&self, seq: i64) -> Result<(), JournalError> {
        self.db.write(|tx| {
            tx.execute(
                "UPDATE records SET state = CASE state WHEN 'checking' THEN 'pending' ELSE state END,
                    station = CASE state WHEN 'checking' THEN NULL ELSE station END,
                    owner = NULL, updated_at = ?2 WHERE seq = ?1 AND (station IS NULL OR station = ?3)",
                args![seq, now_ms(), self.station_id()],
            )
        })?;
        Ok(())
    }

    /// `checking -> qc_failed` with every problem (JSON array).
    pub fn qc_failed(&self, seq: i64, issues: &serde_json::Value) -> Result<(), JournalError> {
        self.transition(seq, &["checking"], |tx, now| {
            tx.execute(
                "UPDATE records SET state = 'qc_failed', qc_issues = ?2, reason = 'data QC',
                    owner = NULL, updated_at = ?3 WHERE seq = ?1",
                args![seq, issues.to_string(), now],
            )
        })
    }

    /// The record's state and station, locked for this transaction; a record another
    /// station holds is a conflict (its lease ran out and the line took it over).
    fn lock_record(&self, tx: &mut dyn Tx, seq: i64) -> Result<Row, JournalError> {
        let row = tx
            .query_opt(
                "SELECT state, tracking_code, card_serial, station FROM records WHERE seq = ?1
                 FOR UPDATE",
                args![seq],
            )?
            .ok_or_else(|| JournalError::NotFound(format!("record {seq}")))?;
        if let Some(other) = row.opt_text(3)?.filter(|s| s != self.station_id()) {
            return Err(JournalError::TakenOver(format!(
                "record {seq} is held by station {other}: this station's lease ran out and the \
                 line took it over"
            )));
        }
        Ok(row)
    }

    /// `checking | writing -> writing` on card `serial`, journaling what the card will hold,
    /// and the card row, in one transaction, before the card is touched. Refused when the
    /// journal knows the card as personalized, delivered or terminated for another record, or
    /// when another station holds the record now.
    #[allow(clippy::too_many_arguments)]
    pub fn begin_write(
        &self,
        seq: i64,
        serial: &str,
        document_number: &str,
        date_of_issue: &str,
        sod: &[u8],
        holder: &crate::personalize::Holder,
    ) -> Result<(), JournalError> {
        if !self.lease_held() {
            self.renew_lease()?;
        }
        let me = self.station_id();
        self.db.write(|tx| {
            let now = now_ms();
            let row = self.lock_record(tx, seq)?;
            let (state, tracking, old_serial) = (row.text(0)?, row.text(1)?, row.opt_text(2)?);
            if state != "checking" && state != "writing" {
                return Err(JournalError::Conflict(format!(
                    "record {seq} is {state}, not checking or writing"
                )));
            }
            if let Some(card) = tx.query_opt(
                "SELECT record_seq, state FROM cards WHERE serial = ?1 FOR UPDATE",
                args![serial],
            )? {
                let (other, cs) = (card.int(0)?, card.text(1)?);
                if other != seq && !matches!(cs.as_str(), "spoiled" | "writing") {
                    return Err(JournalError::Conflict(format!(
                        "card {serial} is {cs} for another record"
                    )));
                }
            }
            if let Some(old) = old_serial.filter(|s| s != serial) {
                let n = tx.execute(
                    "UPDATE cards SET state = 'spoiled', reason = 'replaced by another card',
                        updated_at = ?2 WHERE serial = ?1 AND state = 'writing'",
                    args![&old, now],
                )?;
                if n > 0 {
                    card_event(
                        tx,
                        &old,
                        "spoiled",
                        Some("replaced by another card"),
                        me,
                        now,
                    )?;
                }
            }
            tx.execute(
                "INSERT INTO cards (serial, tracking_code, record_seq, state, updated_at, person,
                     kind, document_number, date_of_expiry, household, household_head, station)
                 VALUES (?1, ?2, ?3, 'writing', ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                 ON CONFLICT (serial) DO UPDATE SET tracking_code = ?2, record_seq = ?3,
                    state = 'writing', reason = NULL, updated_at = ?4, person = ?5, kind = ?6,
                    document_number = ?7, date_of_expiry = ?8, superseded_by = NULL,
                    household = ?9, household_head = ?10, station = ?11",
                args![
                    serial,
                    &tracking,
                    seq,
                    now,
                    holder.person.as_str(),
                    holder.kind.as_str(),
                    document_number,
                    holder.date_of_expiry.as_str(),
                    holder.household.as_ref().map(|(h, _)| h.as_str()),
                    holder.household.as_ref().is_some_and(|(_, head)| *head),
                    me,
                ],
            )?;
            card_event(tx, serial, "writing", None, me, now)?;
            tx.execute(
                "UPDATE records SET state = 'writing', card_serial = ?2, document_number = ?3,
                    date_of_issue = ?4, sod = ?5, attempts = attempts + 1, updated_at = ?6,
                    station = ?7
                 WHERE seq = ?1",
                args![seq, serial, document_number, date_of_issue, sod, now, me],
            )?;
            Ok(())
        })
    }

    /// `writing -> personalized` and the card `personalized`, in one transaction.
    pub fn finish(&self, seq: i64, serial: &str, apdus: u64) -> Result<(), JournalError> {
        let me = self.station_id().to_string();
        self.transition(seq, &["writing"], |tx, now| {
            tx.execute(
                "UPDATE records SET state = 'personalized', reason = NULL, owner = NULL,
                    apdus = ?3, updated_at = ?4 WHERE seq = ?1 AND card_serial = ?2",
                args![seq, serial, apdus as i64, now],
            )?;
            tx.execute(
                "UPDATE cards SET state = 'personalized', updated_at = ?2 WHERE serial = ?1",
                args![serial, now],
            )?;
            card_event(tx, serial, "personalized", None, &me, now)
        })
    }

    /// `checking | writing -> failed(reason)`; a card being written is marked `spoiled`.
    pub fn fail(&self, seq: i64, reason: &str) -> Result<(), JournalError> {
        let me = self.station_id().to_string();
        self.transition(seq, &["checking", "writing", "pending"], |tx, now| {
            tx.execute(
                "INSERT INTO card_events (serial, state, reason, at_ms, station)
                 SELECT serial, 'spoiled', CAST(?2 AS TEXT), CAST(?3 AS BIGINT),
                        CAST(?4 AS TEXT) FROM cards
                 WHERE record_seq = ?1 AND state = 'writing'",
                args![seq, reason, now, &me],
            )?;
            tx.execute(
                "UPDATE cards SET state = 'spoiled', reason = ?2, updated_at = ?3
                 WHERE record_seq = ?1 AND state = 'writing'",
                args![seq, reason, now],
            )?;
            tx.execute(
                "UPDATE records SET state = 'failed', reason = ?2, owner = NULL, updated_at = ?3
                 WHERE seq = ?1",
                args![seq, reason, now],
            )
        })
    }

    fn transition(
        &self,
        seq: i64,
        from: &[&str],
        mut f: impl FnMut(&mut dyn Tx, i64) -> Result<u64, DbError>,
    ) -> Result<(), JournalError> {
        let swept = self.db.write(|tx| {
            let state = self.lock_record(tx, seq)?.text(0)?;
            if state == "pending" && !from.contains(&"pending") {
                // Released by the line while this station was cut off.
                return Err(JournalError::TakenOver(format!(
                    "record {seq} was given back to the line: this station's lease ran out"
                )));
            }
            if !from.contains(&state.as_str()) {
                return Err(JournalError::Conflict(format!(
                    "record {seq} is {state}, expected one of {from:?}"
                )));
            }
            let now = now_ms();
            f(tx, now)?;
            // A record reaching a final state may be due (at once, with the default retention).
            Ok(sweep(tx, &self.retention, now)?)
        })?;
        if swept > 0 {
            self.db.after_scrub();
        }
        Ok(())
    }

    /// Delivery and cancellation: sets the card's state (`Delivered`, `Terminated`, ...) with
    /// an optional reason, so the status lookup reports it, and appends it to the card's
    /// history. Delivering a card supersedes, in the same transaction, every other usable card
    /// of the same person and kind (a reissue or renewal replacing the old card): per person
    /// and kind at most one card is usable. Returns the serials superseded now. Delivering a
    /// card that is no longer usable (superseded, revoked, terminated: another station
    /// delivered the holder's other card first) changes nothing and is a conflict; so is
    /// delivering a card another station delivered meanwhile.
    pub fn set_card_state(
        &self,
        serial: &str,
        state: CardState,
        reason: Option<&str>,
    ) -> Result<Vec<String>, JournalError> {
        let me = self.station_id();
        self.db.write(|tx| {
            let now = now_ms();
            let current = tx
                .query_opt(
                    "SELECT state, person, kind FROM cards WHERE serial = ?1 FOR UPDATE",
                    args![serial],
                )?
                .ok_or_else(|| JournalError::NotFound(format!("card {serial}")))?;
            let (person, kind) = (current.opt_text(1)?, current.opt_text(2)?);
            if state == CardState::Delivered {
                let current = CardState::parse(&current.text(0)?);
                if current == CardState::Delivered {
                    return Err(JournalError::Conflict(format!(
                        "card {serial} is delivered already"
                    )));
                }
                if !current.usable() && current != CardState::Writing {
                    return Err(JournalError::Conflict(format!(
                        "card {serial} is {}: it is not usable any more",
                        current.as_str()
                    )));
                }
            }
            tx.execute(
                "UPDATE cards SET state = ?2, reason = ?3, updated_at = ?4, station = ?5
                 WHERE serial = ?1",
                args![serial, state.as_str(), reason, now, me],
            )?;
            card_event(tx, serial, state.as_str(), reason, me, now)?;
            let mut superseded = Vec::new();
            if let (CardState::Delivered, Some(person), Some(kind)) = (state, person, kind) {
                let others = tx.query(
                    "SELECT serial FROM cards
                     WHERE person = ?1 AND kind = ?2 AND serial != ?3
                       AND state IN ('personalized', 'dispatched', 'received', 'delivered')
                     ORDER BY serial FOR UPDATE",
                    args![&person, &kind, serial],
                )?;
                for old in others {
                    let old = old.text(0)?;
                    tx.execute(
                        "UPDATE cards SET state = 'superseded', superseded_by = ?2,
                            reason = 'a newer card was delivered', updated_at = ?3
                         WHERE serial = ?1",
                        args![&old, serial, now],
                    )?;
                    card_event(tx, &old, "superseded", Some(serial), me, now)?;
                    superseded.push(old);
                }
            }
            Ok(superseded)
        })
    }

    /// Revokes a card reported lost or stolen (`reason`) in the journal, the chip being out of
    /// reach: it is no longer usable, the status lookup and the document-status check say
    /// `revoked`. A card already terminated, superseded or revoked is a conflict; one the
    /// journal does not know is not found.
    pub fn revoke(&self, serial: &str, reason: &str) -> Result<(), JournalError> {
        let me = self.station_id();
        self.db.write(|tx| {
            let state = tx
                .query_opt(
                    "SELECT state FROM cards WHERE serial = ?1 FOR UPDATE",
                    args![serial],
                )?
                .ok_or_else(|| JournalError::NotFound(format!("card {serial}")))?
                .text(0)?;
            if !CardState::parse(&state).usable() {
                return Err(JournalError::Conflict(format!(
                    "card {serial} is {state}: only a usable card can be revoked"
                )));
            }
            let now = now_ms();
            tx.execute(
                "UPDATE cards SET state = 'revoked', reason = ?2, updated_at = ?3, station = ?4
                 WHERE serial = ?1",
                args![serial, reason, now, me],
            )?;
            card_event(tx, serial, "revoked", Some(reason), me, now)?;
            Ok(())
        })
    }

    /// The card with document number `document_number`, if the journal made one.
    pub fn card_by_document(&self, document_number: &str) -> Result<Option<CardRow>, JournalError> {
        self.card_where("document_number = ?1", document_number)
    }

    /// The card with serial `serial`, if the journal knows it.
    pub fn card(&self, serial: &str) -> Result<Option<CardRow>, JournalError> {
        self.card_where("serial = ?1", serial)
    }

    fn card_where(&self, filter: &str, arg: &str) -> Result<Option<CardRow>, JournalError> {
        let sql = format!(
            "SELECT serial, tracking_code, state, reason, person, kind, document_number,
                    date_of_expiry, superseded_by, updated_at, dispatch_id, office, household,
                    household_head
             FROM cards WHERE {filter} ORDER BY updated_at DESC LIMIT 1"
        );
        Ok(self.db.read(|tx| {
            tx.query_opt(&sql, args![arg])?
                .map(|r| {
                    Ok::<_, DbError>(CardRow {
                        serial: r.text(0)?,
                        tracking_code: r.text(1)?,
                        state: CardState::parse(&r.text(2)?),
                        reason: r.opt_text(3)?,
                        person: r.opt_text(4)?,
                        kind: r.opt_text(5)?,
                        document_number: r.opt_text(6)?,
                        date_of_expiry: r.opt_text(7)?,
                        superseded_by: r.opt_text(8)?,
                        updated_at_ms: r.int(9)?,
                        dispatch_id: r.opt_text(10)?,
                        office: r.opt_text(11)?,
                        household: r.opt_text(12)?,
                        household_head: r.bool(13)?,
                    })
                })
                .transpose()
        })?)
    }

    /// Sends the produced cards `serials` to `office` as one dispatch (id `Dnnn..`), with its
    /// manifest. Every card must be known, personalized and not yet dispatched: otherwise
    /// nothing is written and every card's problem comes back (`Ok(Err(problems))`). Two
    /// stations dispatching the same card at once: one dispatch takes it, the other reports
    /// it `already_dispatched`.
    pub fn create_dispatch(
        &self,
        office: &str,
        serials: &[String],
    ) -> Result<Result<Dispatch, Vec<DispatchProblem>>, JournalError> {
        let me = self.station_id();
        self.db.write(|tx| {
            let mut problems = Vec::new();
            let mut cards = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            // Locked in serial order: two dispatches of overlapping cards cannot deadlock.
            let mut order: Vec<&String> = serials.iter().collect();
            order.sort();
            let mut rows = std::collections::BTreeMap::new();
            for serial in order {
                if rows.contains_key(serial.as_str()) {
                    continue;
                }
                let row = tx.query_opt(
                    "SELECT state, tracking_code, document_number FROM cards WHERE serial = ?1
                     FOR UPDATE",
                    args![serial],
                )?;
                rows.insert(serial.as_str(), row);
            }
            for serial in serials {
                if !seen.insert(serial.as_str()) {
                    problems.push(DispatchProblem::new(serial, "named twice"));
                    continue;
                }
                match rows.get(serial.as_str()).cloned().flatten() {
                    None => problems.push(DispatchProblem::new(serial, "unknown")),
                    Some(r) => match CardState::parse(&r.text(0)?) {
                        CardState::Personalized => cards.push(DispatchedCard {
                            serial: serial.clone(),
                            tracking_code: r.text(1)?,
                            document_number: r.opt_text(2)?,
                        }),
                        CardState::Dispatched | CardState::Received => {
                            problems.push(DispatchProblem::new(serial, "already_dispatched"))
                        }
                        CardState::Writing | CardState::Spoiled => {
                            problems.push(DispatchProblem::new(serial, "not_produced"))
                        }
                        other => problems.push(DispatchProblem::new(serial, other.as_str())),
                    },
                }
            }
            if cards.is_empty() && problems.is_empty() {
                problems.push(DispatchProblem::new("", "no cards named"));
            }
            if !problems.is_empty() {
                return Ok::<_, JournalError>(Err(problems));
            }
            let now = now_ms();
            let id = format!("D{now}-{:04x}", rand_u16());
            let manifest = serde_json::to_string(&cards).unwrap_or_default();
            tx.execute(
                "INSERT INTO dispatches (id, office, manifest, created_at) VALUES (?1, ?2, ?3, ?4)",
                args![&id, office, manifest, now],
            )?;
            for c in &cards {
                tx.execute(
                    "UPDATE cards SET state = 'dispatched', dispatch_id = ?2, office = ?3,
                        updated_at = ?4, station = ?5 WHERE serial = ?1",
                    args![&c.serial, &id, office, now, me],
                )?;
                card_event(tx, &c.serial, "dispatched", Some(&id), me, now)?;
            }
            Ok(Ok(Dispatch {
                id,
                office: office.to_string(),
                cards,
                created_at_ms: now,
            }))
        })
    }

    /// The office `office` scans in the cards of dispatch `id`: those of the manifest become
    /// `received` (ready for pickup), the report says which were received now, which earlier,
    /// which are missing (in the manifest, not scanned) and which are unexpected (scanned, not
    /// in the manifest; left unchanged). A dispatch sent to another office is a conflict and
    /// changes nothing.
    pub fn receive_dispatch(
        &self,
        id: &str,
        office: &str,
        scanned: &[String],
    ) -> Result<Receipt, JournalError> {
        let me = self.station_id();
        self.db.write(|tx| {
            let row = tx
                .query_opt(
                    "SELECT office, manifest FROM dispatches WHERE id = ?1 FOR UPDATE",
                    args![id],
                )?
                .ok_or_else(|| JournalError::NotFound(format!("dispatch {id}")))?;
            let (to, manifest) = (row.text(0)?, row.text(1)?);
            if to != office {
                return Err(JournalError::WrongOffice(format!(
                    "dispatch {id} was sent to office {to}, not {office}"
                )));
            }
            let cards: Vec<DispatchedCard> = serde_json::from_str(&manifest)
                .map_err(|e| JournalError::Conflict(format!("dispatch {id} manifest: {e}")))?;
            let now = now_ms();
            let mut receipt = Receipt {
                dispatch_id: id.to_string(),
                office: office.to_string(),
                ..Receipt::default()
            };
            let scanned: std::collections::BTreeSet<&str> =
                scanned.iter().map(String::as_str).collect();
            for card in &cards {
                if !scanned.contains(card.serial.as_str()) {
                    receipt.missing.push(card.serial.clone());
                    continue;
                }
                let n = tx.execute(
                    "UPDATE cards SET state = 'received', updated_at = ?2, station = ?3
                     WHERE serial = ?1 AND state = 'dispatched'",
                    args![&card.serial, now, me],
                )?;
                if n == 1 {
                    card_event(tx, &card.serial, "received", Some(office), me, now)?;
                    receipt.received.push(card.clone());
                } else {
                    receipt.already_received.push(card.serial.clone());
                }
            }
            receipt.unexpected = scanned
                .iter()
                .filter(|s| !cards.iter().any(|c| c.serial == **s))
                .map(|s| s.to_string())
                .collect();
            if receipt.missing.is_empty() {
                tx.execute(
                    "UPDATE dispatches SET received_at = ?2 WHERE id = ?1 AND received_at IS NULL",
                    args![id, now],
                )?;
            }
            Ok(receipt)
        })
    }

    /// Text column 0 of every row of `sql`.
    fn texts(&self, sql: &str, params: &[Value]) -> Result<Vec<String>, JournalError> {
        Ok(self.db.read(|tx| {
            tx.query(sql, params)?
                .iter()
                .map(|r| r.text(0))
                .collect::<Result<Vec<_>, DbError>>()
        })?)
    }

    /// The usable cards of `kind` whose holder is `person`, in other households than
    /// `household` (a member in two households is refused).
    pub fn other_households(
        &self,
        person: &str,
        kind: &str,
        household: &str,
    ) -> Result<Vec<String>, JournalError> {
        self.texts(
            "SELECT DISTINCT household FROM cards WHERE person = ?1 AND kind = ?2
               AND household IS NOT NULL AND household != ?3
               AND state IN ('personalized', 'dispatched', 'received', 'delivered')",
            args![person, kind, household],
        )
    }

    /// The serials of the produced (not yet dispatched) cards of household `household` of
    /// `kind`: what goes to the office together.
    pub fn household_cards(&self, household: &str) -> Result<Vec<String>, JournalError> {
        self.texts(
            "SELECT serial FROM cards WHERE household = ?1 AND state = 'personalized'
             ORDER BY household_head DESC, serial",
            args![household],
        )
    }

    /// Every state card `serial` went through, oldest first, with the station that made each
    /// change.
    pub fn card_history(&self, serial: &str) -> Result<Vec<CardEvent>, JournalError> {
        Ok(self.db.read(|tx| {
            tx.query(
                "SELECT state, reason, at_ms, station FROM card_events WHERE serial = ?1
                 ORDER BY id",
                args![serial],
            )?
            .iter()
            .map(|r| {
                Ok::<_, DbError>(CardEvent {
                    state: CardState::parse(&r.text(0)?),
                    reason: r.opt_text(1)?,
                    at_ms: r.int(2)?,
                    station: r.opt_text(3)?,
                })
            })
            .collect::<Result<Vec<_>, _>>()
        })?)
    }

    /// The card's state, if the journal knows the card.
    pub fn card_state(&self, serial: &str) -> Result<Option<CardState>, JournalError> {
        Ok(self
            .texts("SELECT state FROM cards WHERE serial = ?1", args![serial])?
            .first()
            .map(|s| CardState::parse(s)))
    }

    /// Counts per state of batch `id`.
    pub fn counts(&self, id: &str) -> Result<Counts, JournalError> {
        let rows = self.db.read(|tx| {
            tx.query(
                "SELECT state, COUNT(*) FROM records WHERE batch_id = ?1 GROUP BY state",
                args![id],
            )
        })?;
        let mut c = Counts::default();
        for row in rows {
            let n = row.int(1)? as u64;
            c.total += n;
            match RecordState::parse(&row.text(0)?) {
                RecordState::Pending | RecordState::Checking => c.pending += n,
                RecordState::QcFailed => c.qc_failed += n,
                RecordState::Writing => c.writing += n,
                RecordState::Personalized => c.personalized += n,
                RecordState::Failed => c.failed += n,
            }
        }
        Ok(c)
    }

    /// The running batches (stations of a line join them).
    pub fn running_batches(&self) -> Result<Vec<String>, JournalError> {
        self.texts(
            "SELECT id FROM batches WHERE state = 'running' ORDER BY created_at, id",
            &[],
        )
    }

    fn rows(&self, filter: &str, params: &[Value]) -> Result<Vec<RecordRow>, JournalError> {
        let sql = format!(
            "SELECT r.batch_id, r.seq, r.tracking_code, r.state, r.reader, r.card_serial,
                    c.state, r.document_number, r.reason, r.qc_issues, r.attempts, r.apdus,
                    r.updated_at, c.date_of_expiry, c.reason, c.office, r.station
             FROM records r LEFT JOIN cards c
                ON c.serial = r.card_serial AND c.record_seq = r.seq
             WHERE {filter} ORDER BY r.seq"
        );
        Ok(self.db.read(|tx| {
            tx.query(&sql, params)?
                .iter()
                .map(|r| {
                    Ok::<_, DbError>(RecordRow {
                        batch_id: r.text(0)?,
                        seq: r.int(1)?,
                        tracking_code: r.text(2)?,
                        state: RecordState::parse(&r.text(3)?),
                        reader: r.opt_text(4)?,
                        card_serial: r.opt_text(5)?,
                        card_state: r.opt_text(6)?.map(|s| CardState::parse(&s)),
                        document_number: r.opt_text(7)?,
                        reason: r.opt_text(8)?,
                        qc_issues: r.opt_text(9)?.and_then(|s| serde_json::from_str(&s).ok()),
                        attempts: r.int(10)?,
                        apdus: r.opt_int(11)?,
                        updated_at_ms: r.int(12)?,
                        card_expiry: r.opt_text(13)?,
                        card_reason: r.opt_text(14)?,
                        card_office: r.opt_text(15)?,
                        station: r.opt_text(16)?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        })?)
    }

    /// Every record of batch `id`, in submission order.
    pub fn records(&self, id: &str) -> Result<Vec<RecordRow>, JournalError> {
        self.rows("r.batch_id = ?1", args![id])
    }

    /// Records with this tracking code (several when it was resubmitted), oldest first.
    pub fn lookup_tracking(&self, tracking_code: &str) -> Result<Vec<RecordRow>, JournalError> {
        self.rows("r.tracking_code = ?1", args![tracking_code])
    }

    /// Records matching national code, birth-certificate serial and birth date (Solar Hijri
    /// `YYYY-MM-DD`), as the authority's status service asks.
    pub fn lookup_identity(
        &self,
        national_code: &str,
        birth_certificate_serial: &str,
        birth_date: &str,
    ) -> Result<Vec<RecordRow>, JournalError> {
        self.rows(
            "r.national_code = ?1 AND r.birth_certificate_serial = ?2 AND r.birth_date = ?3",
            args![national_code, birth_certificate_serial, birth_date],
        )
    }
}
