//! The tamper-evident audit trail of personalization and delivery events.
//!
//! Every entry is chained to the one before it with an HMAC-SHA256 under a key only the daemon
//! holds, so editing, removing or reordering an entry breaks the chain and
//! [`verify`] names the first bad entry.
//!
//! - [`AuditLog`]: the open log (`state_dir/audit.db`, SQLite in WAL mode) plus its key
//!   (`state_dir/audit.key`, 32 random bytes, mode 0600, created on first open, zeroized in
//!   memory on drop). [`AuditLog::append`] is thread-safe and safe across processes (the insert
//!   runs in an immediate transaction).
//! - [`AuditEntry`]: one row: `seq` (1, 2, 3, ...), `time_ms` (Unix milliseconds), `kind`
//!   (e.g. `personalized`, `delivery.verify`, `delivered`), `details` (JSON text as written),
//!   `prev_mac` (the previous entry's `mac`, 32 zero bytes for the first) and
//!   `mac = HMAC-SHA256(key, seq || time_ms || len+kind || len+details || prev_mac)`.
//! - [`AuditReport`]: what [`verify`] found: the entry count and, if the chain is broken, the
//!   first bad `seq` and what is wrong with it ([`Problem`]).
//!
//! A removed last entry cannot be seen from the chain alone, so the log also keeps its head
//! (`state_dir/audit.head`: seq and mac of the last entry) outside the database: an entry
//! removed from the end of `audit.db` shows as [`Problem::Truncated`]. Someone who can write
//! both files can still roll both back to an older consistent pair; catching that needs the
//! head published outside the machine (future work).
//!
//! Entries never carry PINs, PUKs, keys, scans or templates: callers pass identifiers
//! (serials, tracking codes, session ids), scores and decisions only.
//!
//! ```
//! # fn main() -> Result<(), issuance::audit::AuditError> {
//! let dir = tempfile::tempdir().unwrap();
//! let log = issuance::audit::AuditLog::open(dir.path())?;
//! log.append("delivered", serde_json::json!({"serial": "0102030405060708"}))?;
//! let report = issuance::audit::verify(dir.path())?;
//! assert!(report.is_intact() && report.entries == 1);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use serde_json::Value;

mod key;
mod verify;

pub use key::AuditKey;
pub use verify::{verify, AuditReport, Problem};

/// File name of the audit database inside the state directory.
pub const DB_FILE: &str = "audit.db";
/// File name of the HMAC key inside the state directory.
pub const KEY_FILE: &str = "audit.key";
/// File name of the head record (seq and mac of the last entry) inside the state directory.
pub const HEAD_FILE: &str = "audit.head";

/// Length of an entry MAC (HMAC-SHA256).
pub const MAC_LEN: usize = 32;

/// Why the audit log could not be opened, written or read.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The SQLite database failed.
    #[error("audit database: {0}")]
    Db(#[from] rusqlite::Error),
    /// The key file exists but is not a 32-byte key.
    #[error("{path}: not an audit key (expected {expected} bytes, found {found})")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// The database has entries but the key that chained them is gone: a new key would make
    /// every entry look forged, so the log refuses to open.
    #[error(
        "{path} is missing but {db} has entries: restore the key (a new key cannot verify them)"
    )]
    KeyMissing {
        /// The missing key file.
        path: PathBuf,
        /// The database that needs it.
        db: PathBuf,
    },
    /// The system random generator failed.
    #[error("system random generator failed")]
    Random,
    /// The details could not be serialized.
    #[error("serializing audit details: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored row does not have the expected shape (e.g. a MAC of the wrong length).
    #[error("audit entry {seq} is malformed: {what}")]
    Malformed {
        /// The entry.
        seq: i64,
        /// What is wrong.
        what: String,
    },
}

/// Wraps an I/O error with the path it concerns.
pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> AuditError + '_ {
    move |source| AuditError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// One entry of the audit trail as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When it was appended (Unix milliseconds, UTC).
    pub time_ms: i64,
    /// What happened (`personalized`, `delivery.begin`, `delivery.verify`, `delivered`,
    /// `terminated`, `unblocked`, ...).
    pub kind: String,
    /// Identifiers, scores and decisions (JSON text exactly as MACed).
    pub details: String,
    /// The previous entry's MAC (zeros for the first entry).
    #[serde(serialize_with = "hex_bytes")]
    pub prev_mac: Vec<u8>,
    /// HMAC-SHA256 over this entry and `prev_mac`.
    #[serde(serialize_with = "hex_bytes")]
    pub mac: Vec<u8>,
}

fn hex_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&hex::encode(bytes))
}

impl AuditEntry {
    /// The details parsed as JSON (`Value::Null` if the stored text is not JSON).
    pub fn details_json(&self) -> Value {
        serde_json::from_str(&self.details).unwrap_or(Value::Null)
    }
}

/// The bytes a MAC covers: every field length-prefixed so no two entries share an encoding.
pub(crate) fn mac_input(seq: i64, time_ms: i64, kind: &str, details: &str, prev: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(32 + kind.len() + details.len() + prev.len());
    m.extend_from_slice(&seq.to_be_bytes());
    m.extend_from_slice(&time_ms.to_be_bytes());
    m.extend_from_slice(&(kind.len() as u64).to_be_bytes());
    m.extend_from_slice(kind.as_bytes());
    m.extend_from_slice(&(details.len() as u64).to_be_bytes());
    m.extend_from_slice(details.as_bytes());
    m.extend_from_slice(prev);
    m
}

/// The open audit log. Cheap to share behind an `Arc`; `append` takes `&self`.
pub struct AuditLog {
    dir: PathBuf,
    key: AuditKey,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

/// Opens `audit.db` in WAL mode and creates the table when new.
pub(crate) fn open_db(path: &Path) -> Result<Connection, AuditError> {
    let conn = crate::store::open_sqlite(
        path,
        "CREATE TABLE IF NOT EXISTS entries (
             seq      INTEGER PRIMARY KEY,
             time_ms  INTEGER NOT NULL,
             kind     TEXT    NOT NULL,
             details  TEXT    NOT NULL,
             prev_mac BLOB    NOT NULL,
             mac      BLOB    NOT NULL
         );",
    )?;
    Ok(conn)
}

/// Reads every entry in `seq` order.
pub(crate) fn read_entries(conn: &Connection) -> Result<Vec<AuditEntry>, AuditError> {
    let mut stmt = conn
        .prepare("SELECT seq, time_ms, kind, details, prev_mac, mac FROM entries ORDER BY seq")?;
    let rows = stmt.query_map([], |r| {
        Ok(AuditEntry {
            seq: r.get(0)?,
            time_ms: r.get(1)?,
            kind: r.get(2)?,
            details: r.get(3)?,
            prev_mac: r.get(4)?,
            mac: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The last entry's seq and mac, or `None` for an empty log.
fn last_entry(conn: &Connection) -> Result<Option<(i64, Vec<u8>)>, AuditError> {
    Ok(conn
        .query_row(
            "SELECT seq, mac FROM entries ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?)
}

/// The head record kept outside the database.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Head {
    pub seq: i64,
    pub mac: String,
}

/// Reads `audit.head`; `Ok(None)` when absent.
pub(crate) fn read_head(dir: &Path) -> Result<Option<Head>, AuditError> {
    let path = dir.join(HEAD_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| AuditError::Malformed {
                seq: 0,
                what: format!("{} is not a head record: {e}", path.display()),
            }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(&path)(e)),
    }
}

/// Replaces `audit.head` atomically (write a temporary file, fsync, rename).
fn write_head(dir: &Path, head: &Head) -> Result<(), AuditError> {
    use std::io::Write as _;
    let path = dir.join(HEAD_FILE);
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io_error(dir))?;
    tmp.write_all(&serde_json::to_vec(head)?)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(io_error(&path))?;
    tmp.persist(&path).map_err(|e| io_error(&path)(e.error))?;
    Ok(())
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl AuditLog {
    /// Opens (or creates) the audit log in `state_dir`. The key is created on first use; if
    /// the database has entries but the key is missing, opening fails rather than start a
    /// chain nobody can verify. A head record left behind by a process killed mid-append is
    /// brought up to date.
    pub fn open(state_dir: &Path) -> Result<AuditLog, AuditError> {
        // Owner-only, an existing looser directory tightened (issue 18).
        crate::store::private_dir(state_dir).map_err(io_error(state_dir))?;
        for file in [KEY_FILE, HEAD_FILE] {
            let path = state_dir.join(file);
            crate::store::tighten_file(&path).map_err(io_error(&path))?;
        }
        let db_path = state_dir.join(DB_FILE);
        let conn = open_db(&db_path)?;
        let has_entries = last_entry(&conn)?.is_some();
        let key = AuditKey::load_or_create(&state_dir.join(KEY_FILE), !has_entries, &db_path)?;
        let log = AuditLog {
            dir: state_dir.to_path_buf(),
            key,
            conn: Mutex::new(conn),
        };
        log.repair_head()?;
        Ok(log)
    }

    /// The state directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends an entry and returns its seq. `details` must hold identifiers, scores and
    /// decisions only (never PINs, keys, scans or templates).
    pub fn append(&self, kind: &str, details: Value) -> Result<u64, AuditError> {
        let details = serde_json::to_string(&details)?;
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        // IMMEDIATE: another process appending at the same time waits here, so seq and
        // prev_mac are read and written under one lock.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (prev_seq, prev_mac) = last_entry(&tx)?.unwrap_or((0, vec![0; MAC_LEN]));
        let seq = prev_seq + 1;
        let time_ms = now_ms();
        let mac = self
            .key
            .sign(&mac_input(seq, time_ms, kind, &details, &prev_mac));
        tx.execute(
            "INSERT INTO entries (seq, time_ms, kind, details, prev_mac, mac)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![seq, time_ms, kind, details, prev_mac, mac],
        )?;
        tx.commit()?;
        // The head is written after the commit: a crash in between leaves the head one entry
        // behind, which `open` repairs and `verify` reports as harmless (only the key holder
        // can have made the entries past it).
        let head = last_entry(&conn)?.map(|(seq, mac)| Head {
            seq,
            mac: hex::encode(mac),
        });
        drop(conn);
        if let Some(head) = head {
            write_head(&self.dir, &head)?;
        }
        Ok(seq as u64)
    }

    /// Every entry, in order (for `idcardd audit show` and status lookups).
    pub fn entries(&self) -> Result<Vec<AuditEntry>, AuditError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        read_entries(&conn)
    }

    /// Entries of one `kind` whose details have `field` equal to `value` (e.g. every
    /// `delivered` entry of a serial), in order.
    pub fn find(
        &self,
        kind: &str,
        field: &str,
        value: &str,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn.prepare(
            "SELECT seq, time_ms, kind, details, prev_mac, mac FROM entries
             WHERE kind = ?1 AND json_extract(details, '$.' || ?2) = ?3 ORDER BY seq",
        )?;
        let rows = stmt.query_map(params![kind, field, value], |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                time_ms: r.get(1)?,
                kind: r.get(2)?,
                details: r.get(3)?,
                prev_mac: r.get(4)?,
                mac: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<Result<Vec<_>, _>>()?)
    }

    /// Moves the head forward when it lags behind a chain that verifies (a process killed
    /// between commit and head update). A head ahead of the database is left alone: that is
    /// what truncation looks like, and `verify` reports it.
    fn repair_head(&self) -> Result<(), AuditError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let Some((last_seq, last_mac)) = last_entry(&conn)? else {
            return Ok(());
        };
        let head = read_head(&self.dir)?;
        if head.as_ref().is_some_and(|h| h.seq >= last_seq) {
            return Ok(());
        }
        let entries = read_entries(&conn)?;
        drop(conn);
        let report = verify::check_chain(&self.key, &entries);
        if report.is_intact() {
            write_head(
                &self.dir,
                &Head {
                    seq: last_seq,
                    mac: hex::encode(last_mac),
                },
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn chain_links_each_entry_to_the_previous_mac() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        assert_eq!(log.append("a", json!({"n": 1})).unwrap(), 1);
        assert_eq!(log.append("b", json!({"n": 2})).unwrap(), 2);
        let e = log.entries().unwrap();
        assert_eq!(e[0].prev_mac, vec![0; MAC_LEN]);
        assert_eq!(e[1].prev_mac, e[0].mac);
        assert_ne!(e[0].mac, e[1].mac);
        assert_eq!(e[1].details_json()["n"], 2);
        let head = read_head(dir.path()).unwrap().unwrap();
        assert_eq!(head.seq, 2);
        assert_eq!(head.mac, hex::encode(&e[1].mac));
    }

    #[test]
    fn key_file_is_private_and_reused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        drop(AuditLog::open(dir.path()).unwrap().append("a", json!({})));
        let meta = std::fs::metadata(dir.path().join(KEY_FILE)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let key = std::fs::read(dir.path().join(KEY_FILE)).unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.append("b", json!({})).unwrap();
        assert_eq!(std::fs::read(dir.path().join(KEY_FILE)).unwrap(), key);
        assert!(verify(dir.path()).unwrap().is_intact());
    }

    #[test]
    fn refuses_to_start_a_new_key_over_existing_entries() {
        let dir = tempfile::tempdir().unwrap();
        AuditLog::open(dir.path())
            .unwrap()
            .append("a", json!({}))
            .unwrap();
        std::fs::remove_file(dir.path().join(KEY_FILE)).unwrap();
        let err = AuditLog::open(dir.path()).unwrap_err();
        assert!(matches!(err, AuditError::KeyMissing { .. }), "{err}");
    }

    #[test]
    fn lagging_head_is_repaired_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path()).unwrap();
        log.append("a", json!({})).unwrap();
        let old_head = std::fs::read(dir.path().join(HEAD_FILE)).unwrap();
        log.append("b", json!({})).unwrap();
        drop(log);
        // As if the daemon died between the commit of entry 2 and the head update.
        std::fs::write(dir.path().join(HEAD_FILE), old_head).unwrap();
        let report = verify(dir.path()).unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert!(report.head_behind);
        drop(AuditLog::open(dir.path()).unwrap());
        let report = verify(dir.path()).unwrap();
        assert!(report.is_intact() && !report.head_behind, "{report:?}");
    }

    #[test]
    fn concurrent_appends_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = std::sync::Arc::new(AuditLog::open(dir.path()).unwrap());
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let log = log.clone();
                std::thread::spawn(move || {
                    for i in 0..10 {
                        log.append("t", json!({"t": t, "i": i})).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let report = verify(dir.path()).unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.entries, 40);
    }
}
