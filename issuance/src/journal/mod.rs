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
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;

/// File name of the journal in the state directory.
pub const FILE_NAME: &str = "journal.sqlite";

/// A journal failure.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// SQLite failed (I/O, corruption, constraint).
    #[error("journal: {0}")]
    Sql(#[from] rusqlite::Error),
    /// No such batch, record or card.
    #[error("{0} not found")]
    NotFound(String),
    /// The transition is not allowed from the current state.
    #[error("{0}")]
    Conflict(String),
    /// A dispatch received at an office it was not sent to.
    #[error("{0}")]
    WrongOffice(String),
}

impl From<JournalError> for crate::Error {
    fn from(e: JournalError) -> crate::Error {
        match e {
            JournalError::NotFound(what) => {
                crate::Error::new(crate::ErrorKind::NotFound, format!("{what} not found"))
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

/// Moves every committed page into the database and empties the WAL, so that the frames that
/// still held removed data are gone from disk. Best effort: a reader in another process may
/// keep part of it until the next checkpoint.
fn truncate_wal(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())) {
        tracing::warn!("journal: checkpoint after removing biometrics failed: {e}");
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS batches (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    readers TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL REFERENCES batches(id),
    tracking_code TEXT NOT NULL,
    record_json TEXT NOT NULL,
    base_dir TEXT NOT NULL,
    national_code TEXT,
    birth_certificate_serial TEXT,
    birth_date TEXT,
    state TEXT NOT NULL,
    owner TEXT,
    reader TEXT,
    card_serial TEXT,
    reason TEXT,
    qc_issues TEXT,
    document_number TEXT,
    date_of_issue TEXT,
    sod BLOB,
    attempts INTEGER NOT NULL DEFAULT 0,
    apdus INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    biometrics_removed_at INTEGER
);
CREATE INDEX IF NOT EXISTS records_batch_state ON records(batch_id, state, seq);
CREATE INDEX IF NOT EXISTS records_tracking ON records(tracking_code);
CREATE INDEX IF NOT EXISTS records_national ON records(national_code);
DROP INDEX IF EXISTS records_once;
-- Records without a tracking code (rejected by QC) are not identities: two may be checked at once.
CREATE UNIQUE INDEX IF NOT EXISTS records_once_by_code ON records(tracking_code)
    WHERE state IN ('checking', 'writing', 'personalized') AND tracking_code != '';
CREATE TABLE IF NOT EXISTS cards (
    serial TEXT PRIMARY KEY,
    tracking_code TEXT NOT NULL,
    record_seq INTEGER NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    updated_at INTEGER NOT NULL
);
";

/// The journal's schema version (`PRAGMA user_version`): 2 since issue 16 (card history). A
/// journal of a newer version is refused; an older one is migrated in place when opened.
pub const SCHEMA_VERSION: i32 = 2;

/// Version 2 (issue 16): whose card each card is (person and kind), its document number and
/// expiry, what superseded it, and every state it went through.
const SCHEMA_V2: &str = "
ALTER TABLE cards ADD COLUMN person TEXT;
ALTER TABLE cards ADD COLUMN kind TEXT;
ALTER TABLE cards ADD COLUMN document_number TEXT;
ALTER TABLE cards ADD COLUMN date_of_expiry TEXT;
ALTER TABLE cards ADD COLUMN superseded_by TEXT;
ALTER TABLE cards ADD COLUMN dispatch_id TEXT;
ALTER TABLE cards ADD COLUMN office TEXT;
ALTER TABLE cards ADD COLUMN household TEXT;
ALTER TABLE cards ADD COLUMN household_head INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS cards_household ON cards(household, kind);
CREATE TABLE IF NOT EXISTS dispatches (
    id TEXT PRIMARY KEY,
    office TEXT NOT NULL,
    manifest TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    received_at INTEGER
);
CREATE TABLE IF NOT EXISTS card_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    serial TEXT NOT NULL,
    state TEXT NOT NULL,
    reason TEXT,
    at_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS card_events_serial ON card_events(serial, id);
CREATE INDEX IF NOT EXISTS cards_person ON cards(person, kind);
CREATE INDEX IF NOT EXISTS cards_document ON cards(document_number);
-- Cards journaled by an earlier version: whose they are, from their records.
UPDATE cards SET
    person = (SELECT COALESCE(NULLIF(r.national_code, ''),
                  'FR:' || json_extract(r.record_json, '$.foreign_resident.residence_permit_number')
                  || ':' || r.birth_date || ':' || json_extract(r.record_json, '$.gender'))
              FROM records r WHERE r.seq = cards.record_seq),
    kind = (SELECT json_extract(r.record_json, '$.profile') FROM records r WHERE r.seq = cards.record_seq),
    document_number = (SELECT r.document_number FROM records r WHERE r.seq = cards.record_seq);
INSERT INTO card_events (serial, state, reason, at_ms)
    SELECT serial, state, reason, updated_at FROM cards;
PRAGMA user_version = 2;
";

/// Brings the journal on `conn` to [`SCHEMA_VERSION`] in one transaction, or refuses a newer one.
fn migrate(conn: &mut rusqlite::Connection) -> Result<(), JournalError> {
    let version: i32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > SCHEMA_VERSION {
        return Err(JournalError::Conflict(format!(
            "the journal has schema version {version}, newer than this idcardd understands \
             ({SCHEMA_VERSION}): it was written by a newer release; use that release or newer"
        )));
    }
    if version < 2 {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        // Another process may have migrated it meanwhile.
        let now: i32 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if now < 2 {
            tx.execute_batch(SCHEMA_V2)?;
        }
        tx.commit()?;
    }
    Ok(())
}

/// Two random bytes (dispatch ids: milliseconds plus these).
fn rand_u16() -> u16 {
    use ring::rand::SecureRandom as _;
    let mut r = [0u8; 2];
    let _ = ring::rand::SystemRandom::new().fill(&mut r);
    u16::from_be_bytes(r)
}

/// Appends a state to a card's history.
fn card_event(
    tx: &rusqlite::Transaction<'_>,
    serial: &str,
    state: &str,
    reason: Option<&str>,
    now: i64,
) -> rusqlite::Result<usize> {
    tx.execute(
        "INSERT INTO card_events (serial, state, reason, at_ms) VALUES (?1, ?2, ?3, ?4)",
        params![serial, state, reason, now],
    )
}

/// Run after [`SCHEMA`]: journals made before issue 18 lack the column.
const RETENTION_INDEX: &str = "
CREATE INDEX IF NOT EXISTS records_biometrics_kept ON records(state, updated_at)
    WHERE biometrics_removed_at IS NULL;
";

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
fn sweep(conn: &Connection, retention: &Retention, now: i64) -> rusqlite::Result<usize> {
    let (personalized, failed) = retention.cutoffs(now);
    let due: Vec<(i64, String)> = {
        let mut q = conn.prepare(
            "SELECT seq, record_json FROM records WHERE biometrics_removed_at IS NULL
               AND ((state = 'personalized' AND updated_at <= ?1)
                 OR (state IN ('qc_failed', 'failed') AND updated_at <= ?2))",
        )?;
        let rows = q.query_map(params![personalized, failed], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    let mut set = conn.prepare(
        "UPDATE records SET record_json = ?2, biometrics_removed_at = ?3 WHERE seq = ?1",
    )?;
    for (seq, json) in &due {
        set.execute(params![seq, strip_biometrics(json), now])?;
    }
    Ok(due.len())
}

/// The journal. Shared between threads (one connection behind a mutex: journal writes are
/// tiny next to card I/O).
#[derive(Debug)]
pub struct Journal {
    /// The one connection.
    conn: Mutex<Connection>,
    /// When biometrics leave the journal.
    retention: Retention,
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
        let conn = crate::store::open_sqlite(path, SCHEMA)?;
        let has_column: bool = conn.query_row(
            "SELECT COUNT(*) > 0 FROM pragma_table_info('records')
             WHERE name = 'biometrics_removed_at'",
            [],
            |r| r.get(0),
        )?;
        if !has_column {
            conn.execute_batch("ALTER TABLE records ADD COLUMN biometrics_removed_at INTEGER;")?;
        }
        conn.execute_batch(RETENTION_INDEX)?;
        let mut conn = conn;
        migrate(&mut conn)?;
        let journal = Journal {
            conn: Mutex::new(conn),
            retention,
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

    /// The retention rule this journal applies.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Applies the retention rule now (it is also applied at open and whenever a record
    /// reaches a final state); returns how many records lost their biometrics.
    pub fn sweep_retention(&self) -> Result<usize, JournalError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let n = sweep(&tx, &self.retention, now_ms())?;
        tx.commit()?;
        if n > 0 {
            truncate_wal(&conn);
        }
        Ok(n)
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half transaction (SQLite rolls back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
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
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        tx.execute(
            "INSERT INTO batches (id, source, readers, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, 'running', ?4, ?4)",
            params![id, source, readers.join(","), now],
        )?;
        {
            let mut insert = tx.prepare(
                "INSERT INTO records (batch_id, tracking_code, record_json, base_dir,
                    national_code, birth_certificate_serial, birth_date, state, created_at,
                    updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8, ?8)",
            )?;
            for (json, base_dir) in records {
                let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
                let text = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
                insert.execute(params![
                    id,
                    text("tracking_code").unwrap_or_default(),
                    json,
                    base_dir,
                    text("national_code"),
                    text("birth_certificate_serial"),
                    text("birth_date"),
                    now
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The batch row.
    pub fn batch(&self, id: &str) -> Result<BatchRow, JournalError> {
        self.conn()
            .query_row(
                "SELECT id, source, readers, state, created_at FROM batches WHERE id = ?1",
                [id],
                |r| {
                    Ok(BatchRow {
                        id: r.get(0)?,
                        source: r.get(1)?,
                        readers: r.get(2)?,
                        state: BatchState::parse(&r.get::<_, String>(3)?),
                        created_at_ms: r.get(4)?,
                    })
                },
            )
            .optional()?
            .ok_or_else(|| JournalError::NotFound(format!("batch {id:?}")))
    }

    /// Every batch, newest first.
    pub fn batches(&self) -> Result<Vec<BatchRow>, JournalError> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT id, source, readers, state, created_at FROM batches
             ORDER BY created_at DESC, id DESC",
        )?;
        let rows = q.query_map([], |r| {
            Ok(BatchRow {
                id: r.get(0)?,
                source: r.get(1)?,
                readers: r.get(2)?,
                state: BatchState::parse(&r.get::<_, String>(3)?),
                created_at_ms: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets the batch state.
    pub fn set_batch_state(&self, id: &str, state: BatchState) -> Result<(), JournalError> {
        let n = self.conn().execute(
            "UPDATE batches SET state = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, state.as_str(), now_ms()],
        )?;
        if n == 0 {
            return Err(JournalError::NotFound(format!("batch {id:?}")));
        }
        Ok(())
    }

    /// Starts a run of batch `id` by runner `owner`: claims left by a dead run are released
    /// (`checking` back to `pending`; `writing` kept, to be resumed on its card).
    pub fn start_run(&self, id: &str, owner: &str) -> Result<(), JournalError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE records SET state = 'pending', owner = NULL, updated_at = ?3
             WHERE batch_id = ?1 AND state = 'checking' AND owner IS NOT ?2",
            params![id, owner, now_ms()],
        )?;
        tx.execute(
            "UPDATE records SET owner = NULL WHERE batch_id = ?1 AND state = 'writing'
             AND owner IS NOT ?2",
            params![id, owner],
        )?;
        tx.execute(
            "UPDATE batches SET state = 'running', updated_at = ?2 WHERE id = ?1",
            params![id, now_ms()],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Atomically hands the next record of batch `id` to `owner` on `reader`: first a record a
    /// dead run left `writing` (to finish on its card), then the oldest `pending` one. A
    /// pending record whose tracking code is already claimed or personalized elsewhere is
    /// failed as a duplicate on the way. `None`: nothing left to claim.
    pub fn claim_next(
        &self,
        id: &str,
        owner: &str,
        reader: &str,
    ) -> Result<Option<Claim>, JournalError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let resumable = tx
            .query_row(
                "SELECT seq, tracking_code, record_json, base_dir, card_serial,
                        document_number, date_of_issue, sod
                 FROM records WHERE batch_id = ?1 AND state = 'writing' AND owner IS NULL
                 ORDER BY seq LIMIT 1",
                [id],
                |r| {
                    Ok(Claim {
                        seq: r.get(0)?,
                        tracking_code: r.get(1)?,
                        record_json: r.get(2)?,
                        base_dir: r.get(3)?,
                        resume: Some(ResumeWrite {
                            card_serial: r.get(4)?,
                            document_number: r.get(5)?,
                            date_of_issue: r.get(6)?,
                            sod: r.get(7)?,
                        }),
                    })
                },
            )
            .optional()?;
        if let Some(claim) = resumable {
            tx.execute(
                "UPDATE records SET owner = ?2, reader = ?3, updated_at = ?4 WHERE seq = ?1",
                params![claim.seq, owner, reader, now],
            )?;
            tx.commit()?;
            return Ok(Some(claim));
        }
        loop {
            let next = tx
                .query_row(
                    "SELECT seq, tracking_code, record_json, base_dir FROM records
                     WHERE batch_id = ?1 AND state = 'pending' ORDER BY seq LIMIT 1",
                    [id],
                    |r| {
                        Ok(Claim {
                            seq: r.get(0)?,
                            tracking_code: r.get(1)?,
                            record_json: r.get(2)?,
                            base_dir: r.get(3)?,
                            resume: None,
                        })
                    },
                )
                .optional()?;
            let Some(claim) = next else {
                tx.commit()?;
                return Ok(None);
            };
            let taken: Option<(String, String)> = tx
                .query_row(
                    "SELECT batch_id, state FROM records WHERE tracking_code = ?1
                     AND tracking_code != '' AND seq != ?2
                     AND state IN ('checking', 'writing', 'personalized') LIMIT 1",
                    params![claim.tracking_code, claim.seq],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            if let Some((batch, state)) = taken {
                tx.execute(
                    "UPDATE records SET state = 'failed', reason = ?2, reader = ?3,
                        updated_at = ?4 WHERE seq = ?1",
                    params![
                        claim.seq,
                        format!("duplicate: this tracking code is {state} in batch {batch}"),
                        reader,
                        now
                    ],
                )?;
                continue;
            }
            tx.execute(
                "UPDATE records SET state = 'checking', owner = ?2, reader = ?3, updated_at = ?4
                 WHERE seq = ?1",
                params![claim.seq, owner, reader, now],
            )?;
            tx.commit()?;
            return Ok(Some(claim));
        }
    }

    /// Puts a claimed record back to `pending` (its reader could not take it).
    pub fn release(&self, seq: i64) -> Result<(), JournalError> {
        self.conn().execute(
            "UPDATE records SET state = CASE state WHEN 'checking' THEN 'pending' ELSE state END,
                owner = NULL, updated_at = ?2 WHERE seq = ?1",
            params![seq, now_ms()],
        )?;
        Ok(())
    }

    /// `checking -> qc_failed` with every problem (JSON array).
    pub fn qc_failed(&self, seq: i64, issues: &serde_json::Value) -> Result<(), JournalError> {
        self.transition(seq, &["checking"], |tx, now| {
            tx.execute(
                "UPDATE records SET state = 'qc_failed', qc_issues = ?2, reason = 'data QC',
                    owner = NULL, updated_at = ?3 WHERE seq = ?1",
                params![seq, issues.to_string(), now],
            )
        })
    }

    /// `checking | writing -> writing` on card `serial`, journaling what the card will hold,
    /// and the card row, in one transaction, before the card is touched. Refused when the
    /// journal knows the card as personalized, delivered or terminated for another record.
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
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        let (state, tracking, old_serial): (String, String, Option<String>) = tx
            .query_row(
                "SELECT state, tracking_code, card_serial FROM records WHERE seq = ?1",
                [seq],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?
            .ok_or_else(|| JournalError::NotFound(format!("record {seq}")))?;
        if state != "checking" && state != "writing" {
            return Err(JournalError::Conflict(format!(
                "record {seq} is {state}, not checking or writing"
            )));
        }
        let card: Option<(i64, String)> = tx
            .query_row(
                "SELECT record_seq, state FROM cards WHERE serial = ?1",
                [serial],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        if let Some((other, cs)) = card {
            if other != seq && !matches!(cs.as_str(), "spoiled" | "writing") {
                return Err(JournalError::Conflict(format!(
                    "card {serial} is {cs} for another record"
                )));
            }
        }
        if let Some(old) = old_serial.filter(|s| s != serial) {
            tx.execute(
                "UPDATE cards SET state = 'spoiled', reason = 'replaced by another card',
                    updated_at = ?2 WHERE serial = ?1 AND state = 'writing'",
                params![old, now],
            )?;
        }
        tx.execute(
            "INSERT INTO cards (serial, tracking_code, record_seq, state, updated_at, person, kind,
                 document_number, date_of_expiry, household, household_head)
             VALUES (?1, ?2, ?3, 'writing', ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(serial) DO UPDATE SET tracking_code = ?2, record_seq = ?3,
                state = 'writing', reason = NULL, updated_at = ?4, person = ?5, kind = ?6,
                document_number = ?7, date_of_expiry = ?8, superseded_by = NULL,
                household = ?9, household_head = ?10",
            params![
                serial,
                tracking,
                seq,
                now,
                holder.person,
                holder.kind,
                document_number,
                holder.date_of_expiry,
                holder.household.as_ref().map(|(h, _)| h.as_str()),
                holder.household.as_ref().is_some_and(|(_, head)| *head),
            ],
        )?;
        card_event(&tx, serial, "writing", None, now)?;
        tx.execute(
            "UPDATE records SET state = 'writing', card_serial = ?2, document_number = ?3,
                date_of_issue = ?4, sod = ?5, attempts = attempts + 1, updated_at = ?6
             WHERE seq = ?1",
            params![seq, serial, document_number, date_of_issue, sod, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// `writing -> personalized` and the card `personalized`, in one transaction.
    pub fn finish(&self, seq: i64, serial: &str, apdus: u64) -> Result<(), JournalError> {
        self.transition(seq, &["writing"], |tx, now| {
            tx.execute(
                "UPDATE records SET state = 'personalized', reason = NULL, owner = NULL,
                    apdus = ?3, updated_at = ?4 WHERE seq = ?1 AND card_serial = ?2",
                params![seq, serial, apdus as i64, now],
            )?;
            tx.execute(
                "UPDATE cards SET state = 'personalized', updated_at = ?2 WHERE serial = ?1",
                params![serial, now],
            )?;
            card_event(tx, serial, "personalized", None, now)
        })
    }

    /// `checking | writing -> failed(reason)`; a card being written is marked `spoiled`.
    pub fn fail(&self, seq: i64, reason: &str) -> Result<(), JournalError> {
        self.transition(seq, &["checking", "writing", "pending"], |tx, now| {
            tx.execute(
                "INSERT INTO card_events (serial, state, reason, at_ms)
                 SELECT serial, 'spoiled', ?2, ?3 FROM cards
                 WHERE record_seq = ?1 AND state = 'writing'",
                params![seq, reason, now],
            )?;
            tx.execute(
                "UPDATE cards SET state = 'spoiled', reason = ?2, updated_at = ?3
                 WHERE record_seq = ?1 AND state = 'writing'",
                params![seq, reason, now],
            )?;
            tx.execute(
                "UPDATE records SET state = 'failed', reason = ?2, owner = NULL, updated_at = ?3
                 WHERE seq = ?1",
                params![seq, reason, now],
            )
        })
    }

    fn transition(
        &self,
        seq: i64,
        from: &[&str],
        f: impl FnOnce(&rusqlite::Transaction<'_>, i64) -> rusqlite::Result<usize>,
    ) -> Result<(), JournalError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let state: String = tx
            .query_row("SELECT state FROM records WHERE seq = ?1", [seq], |r| {
                r.get(0)
            })
            .optional()?
            .ok_or_else(|| JournalError::NotFound(format!("record {seq}")))?;
        if !from.contains(&state.as_str()) {
            return Err(JournalError::Conflict(format!(
                "record {seq} is {state}, expected one of {from:?}"
            )));
        }
        let now = now_ms();
        f(&tx, now)?;
        // A record reaching a final state may be due (at once, with the default retention).
        let swept = sweep(&tx, &self.retention, now)?;
        tx.commit()?;
        if swept > 0 {
            truncate_wal(&conn);
        }
        Ok(())
    }

    /// Delivery and cancellation: sets the card's state (`Delivered`, `Terminated`, ...) with
    /// an optional reason, so the status lookup reports it, and appends it to the card's
    /// history. Delivering a card supersedes, in the same transaction, every other usable card
    /// of the same person and kind (a reissue or renewal replacing the old card): per person
    /// and kind at most one card is usable. Returns the serials superseded now. Delivering a
    /// card that is no longer usable (superseded, revoked, terminated: another station
    /// delivered the holder's other card first) changes nothing and is a conflict.
    pub fn set_card_state(
        &self,
        serial: &str,
        state: CardState,
        reason: Option<&str>,
    ) -> Result<Vec<String>, JournalError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let now = now_ms();
        if state == CardState::Delivered {
            let current: Option<String> = tx
                .query_row("SELECT state FROM cards WHERE serial = ?1", [serial], |r| {
                    r.get(0)
                })
                .optional()?;
            if let Some(current) = current {
                let current = CardState::parse(&current);
                if !current.usable() && current != CardState::Writing {
                    return Err(JournalError::Conflict(format!(
                        "card {serial} is {}: it is not usable any more",
                        current.as_str()
                    )));
                }
            }
        }
        let n = tx.execute(
            "UPDATE cards SET state = ?2, reason = ?3, updated_at = ?4 WHERE serial = ?1",
            params![serial, state.as_str(), reason, now],
        )?;
        if n == 0 {
            return Err(JournalError::NotFound(format!("card {serial}")));
        }
        card_event(&tx, serial, state.as_str(), reason, now)?;
        let mut superseded = Vec::new();
        if state == CardState::Delivered {
            let mut q = tx.prepare(
                "SELECT o.serial FROM cards c JOIN cards o
                   ON o.person = c.person AND o.kind = c.kind AND o.serial != c.serial
                 WHERE c.serial = ?1 AND c.person IS NOT NULL
                   AND o.state IN ('personalized', 'dispatched', 'received', 'delivered')",
            )?;
            superseded = q
                .query_map([serial], |r| r.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            drop(q);
            for old in &superseded {
                tx.execute(
                    "UPDATE cards SET state = 'superseded', superseded_by = ?2,
                        reason = 'a newer card was delivered', updated_at = ?3 WHERE serial = ?1",
                    params![old, serial, now],
                )?;
                card_event(&tx, old, "superseded", Some(serial), now)?;
            }
        }
        tx.commit()?;
        Ok(superseded)
    }

    /// Revokes a card reported lost or stolen (`reason`) in the journal, the chip being out of
    /// reach: it is no longer usable, the status lookup and the document-status check say
    /// `revoked`. A card already terminated, superseded or revoked is a conflict; one the
    /// journal does not know is not found.
    pub fn revoke(&self, serial: &str, reason: &str) -> Result<(), JournalError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let state: Option<String> = tx
            .query_row("SELECT state FROM cards WHERE serial = ?1", [serial], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(state) = state else {
            return Err(JournalError::NotFound(format!("card {serial}")));
        };
        if !CardState::parse(&state).usable() {
            return Err(JournalError::Conflict(format!(
                "card {serial} is {state}: only a usable card can be revoked"
            )));
        }
        let now = now_ms();
        tx.execute(
            "UPDATE cards SET state = 'revoked', reason = ?2, updated_at = ?3 WHERE serial = ?1",
            params![serial, reason, now],
        )?;
        card_event(&tx, serial, "revoked", Some(reason), now)?;
        tx.commit()?;
        Ok(())
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
        let conn = self.conn();
        let sql = format!(
            "SELECT serial, tracking_code, state, reason, person, kind, document_number,
                    date_of_expiry, superseded_by, updated_at, dispatch_id, office, household,
                    household_head
             FROM cards WHERE {filter} ORDER BY updated_at DESC LIMIT 1"
        );
        Ok(conn
            .query_row(&sql, [arg], |r| {
                Ok(CardRow {
                    serial: r.get(0)?,
                    tracking_code: r.get(1)?,
                    state: CardState::parse(&r.get::<_, String>(2)?),
                    reason: r.get(3)?,
                    person: r.get(4)?,
                    kind: r.get(5)?,
                    document_number: r.get(6)?,
                    date_of_expiry: r.get(7)?,
                    superseded_by: r.get(8)?,
                    updated_at_ms: r.get(9)?,
                    dispatch_id: r.get(10)?,
                    office: r.get(11)?,
                    household: r.get(12)?,
                    household_head: r.get(13)?,
                })
            })
            .optional()?)
    }

    /// Sends the produced cards `serials` to `office` as one dispatch (id `Dnnn..`), with its
    /// manifest. Every card must be known, personalized and not yet dispatched: otherwise
    /// nothing is written and every card's problem comes back (`Ok(Err(problems))`).
    pub fn create_dispatch(
        &self,
        office: &str,
        serials: &[String],
    ) -> Result<Result<Dispatch, Vec<DispatchProblem>>, JournalError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut problems = Vec::new();
        let mut cards = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for serial in serials {
            if !seen.insert(serial.as_str()) {
                problems.push(DispatchProblem::new(serial, "named twice"));
                continue;
            }
            let row: Option<(String, String, Option<String>)> = tx
                .query_row(
                    "SELECT state, tracking_code, document_number FROM cards WHERE serial = ?1",
                    [serial],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
                .optional()?;
            match row {
                None => problems.push(DispatchProblem::new(serial, "unknown")),
                Some((state, tracking_code, document_number)) => match CardState::parse(&state) {
                    CardState::Personalized => cards.push(DispatchedCard {
                        serial: serial.clone(),
                        tracking_code,
                        document_number,
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
            return Ok(Err(problems));
        }
        let now = now_ms();
        let id = format!("D{now}-{:04x}", rand_u16());
        let manifest = serde_json::to_string(&cards).unwrap_or_default();
        tx.execute(
            "INSERT INTO dispatches (id, office, manifest, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![id, office, manifest, now],
        )?;
        for c in &cards {
            tx.execute(
                "UPDATE cards SET state = 'dispatched', dispatch_id = ?2, office = ?3,
                    updated_at = ?4 WHERE serial = ?1",
                params![c.serial, id, office, now],
            )?;
            card_event(&tx, &c.serial, "dispatched", Some(&id), now)?;
        }
        tx.commit()?;
        Ok(Ok(Dispatch {
            id,
            office: office.to_string(),
            cards,
            created_at_ms: now,
        }))
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
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (to, manifest): (String, String) = tx
            .query_row(
                "SELECT office, manifest FROM dispatches WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| JournalError::NotFound(format!("dispatch {id}")))?;
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
                "UPDATE cards SET state = 'received', updated_at = ?2
                 WHERE serial = ?1 AND state = 'dispatched'",
                params![card.serial, now],
            )?;
            if n == 1 {
                card_event(&tx, &card.serial, "received", Some(office), now)?;
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
                params![id, now],
            )?;
        }
        tx.commit()?;
        Ok(receipt)
    }

    /// The usable cards of `kind` whose holder is `person`, in other households than
    /// `household` (a member in two households is refused).
    pub fn other_households(
        &self,
        person: &str,
        kind: &str,
        household: &str,
    ) -> Result<Vec<String>, JournalError> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT DISTINCT household FROM cards WHERE person = ?1 AND kind = ?2
               AND household IS NOT NULL AND household != ?3
               AND state IN ('personalized', 'dispatched', 'received', 'delivered')",
        )?;
        let rows = q.query_map(params![person, kind, household], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The serials of the produced (not yet dispatched) cards of household `household` of
    /// `kind`: what goes to the office together.
    pub fn household_cards(&self, household: &str) -> Result<Vec<String>, JournalError> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT serial FROM cards WHERE household = ?1 AND state = 'personalized'
             ORDER BY household_head DESC, serial",
        )?;
        let rows = q.query_map([household], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every state card `serial` went through, oldest first.
    pub fn card_history(&self, serial: &str) -> Result<Vec<CardEvent>, JournalError> {
        let conn = self.conn();
        let mut q = conn.prepare(
            "SELECT state, reason, at_ms FROM card_events WHERE serial = ?1 ORDER BY id",
        )?;
        let rows = q.query_map([serial], |r| {
            Ok(CardEvent {
                state: CardState::parse(&r.get::<_, String>(0)?),
                reason: r.get(1)?,
                at_ms: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The card's state, if the journal knows the card.
    pub fn card_state(&self, serial: &str) -> Result<Option<CardState>, JournalError> {
        Ok(self
            .conn()
            .query_row("SELECT state FROM cards WHERE serial = ?1", [serial], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .map(|s| CardState::parse(&s)))
    }

    /// Counts per state of batch `id`.
    pub fn counts(&self, id: &str) -> Result<Counts, JournalError> {
        let conn = self.conn();
        let mut q =
            conn.prepare("SELECT state, COUNT(*) FROM records WHERE batch_id = ?1 GROUP BY state")?;
        let mut c = Counts::default();
        let rows = q.query_map([id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (state, n) = row?;
            let n = n as u64;
            c.total += n;
            match RecordState::parse(&state) {
                RecordState::Pending | RecordState::Checking => c.pending += n,
                RecordState::QcFailed => c.qc_failed += n,
                RecordState::Writing => c.writing += n,
                RecordState::Personalized => c.personalized += n,
                RecordState::Failed => c.failed += n,
            }
        }
        Ok(c)
    }

    fn rows(
        &self,
        filter: &str,
        args: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<RecordRow>, JournalError> {
        let conn = self.conn();
        let sql = format!(
            "SELECT r.batch_id, r.seq, r.tracking_code, r.state, r.reader, r.card_serial,
                    c.state, r.document_number, r.reason, r.qc_issues, r.attempts, r.apdus,
                    r.updated_at, c.date_of_expiry, c.reason, c.office
             FROM records r LEFT JOIN cards c
                ON c.serial = r.card_serial AND c.record_seq = r.seq
             WHERE {filter} ORDER BY r.seq"
        );
        let mut q = conn.prepare(&sql)?;
        let rows = q.query_map(args, |r| {
            let issues: Option<String> = r.get(9)?;
            Ok(RecordRow {
                batch_id: r.get(0)?,
                seq: r.get(1)?,
                tracking_code: r.get(2)?,
                state: RecordState::parse(&r.get::<_, String>(3)?),
                reader: r.get(4)?,
                card_serial: r.get(5)?,
                card_state: r.get::<_, Option<String>>(6)?.map(|s| CardState::parse(&s)),
                document_number: r.get(7)?,
                reason: r.get(8)?,
                qc_issues: issues.and_then(|s| serde_json::from_str(&s).ok()),
                attempts: r.get(10)?,
                apdus: r.get(11)?,
                updated_at_ms: r.get(12)?,
                card_expiry: r.get(13)?,
                card_reason: r.get(14)?,
                card_office: r.get(15)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every record of batch `id`, in submission order.
    pub fn records(&self, id: &str) -> Result<Vec<RecordRow>, JournalError> {
        self.rows("r.batch_id = ?1", &[&id])
    }

    /// Records with this tracking code (several when it was resubmitted), oldest first.
    pub fn lookup_tracking(&self, tracking_code: &str) -> Result<Vec<RecordRow>, JournalError> {
        self.rows("r.tracking_code = ?1", &[&tracking_code])
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
            &[&national_code, &birth_certificate_serial, &birth_date],
        )
    }
}
