//! The tamper-evident audit trail of personalization and delivery events.
//!
//! Every entry is chained to the one before it with an HMAC-SHA256 under the token's audit key
//! (`CKM_SHA256_HMAC` through [`keystore::KeyStore::audit_mac`]; the key never leaves the
//! token), so editing, removing or reordering an entry breaks the chain and [`verify`] names
//! the first bad entry. Someone who rewrites `audit.db` and `audit.head` together cannot
//! recompute the MACs without the token: a chain recomputed under any other key fails at its
//! first rewritten entry ([`Problem::ForeignKey`] when no entry verifies at all).
//!
//! - [`AuditLog`]: the open log (`state_dir/audit.db`, SQLite in WAL mode) plus its key, an
//!   [`AuditKey`] handle on the token. [`AuditLog::append`] is thread-safe and safe across
//!   processes (the insert runs in an immediate transaction). A token that is unavailable makes
//!   `append` fail with [`AuditError::TokenUnavailable`] and writes nothing.
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
//! On a line of stations sharing a PostgreSQL journal (issue 17), the trail is one chain per
//! station in the shared database ([`Chain::Station`], table `audit_entries` keyed by station
//! and seq; [`AuditLog::open_on`]): a station appends to its own chain under a lock on that
//! chain only, so stations never wait on each other's appends, and each station's
//! `audit.head` anchors its own chain exactly as for a single station. Every entry's details
//! name its station (MACed with the rest), so an entry cannot be moved between chains.
//! [`verify_line`] checks every chain of the line (this station's against its head); the
//! line's trail in time order is the merge of the chains by `time_ms`, each of which verifies
//! on its own. One serialized chain for the whole line was the alternative: every append of
//! every station would wait on one lock across the network, and no station's head file could
//! anchor it.
//!
//! Earlier releases kept the key in a file, `state_dir/audit.key`. Such a chain cannot be
//! verified by the token's key, so a state directory that still has `audit.key` is refused
//! ([`AuditError::LegacyKeyFile`]) by [`AuditLog::open`] and [`verify`]: verify it with
//! [`verify_legacy`] (`idcardd audit verify --legacy-key-file`), archive `audit.db`, `audit.head` and `audit.key` together, and remove them
//! to start a token-keyed chain. Nothing is imported or deleted automatically.
//!
//! Entries never carry PINs, PUKs, keys, scans or templates: callers pass identifiers
//! (serials, tracking codes, session ids), scores and decisions only.
//!
//! ```
//! # fn main() -> Result<(), issuance::audit::AuditError> {
//! let dir = tempfile::tempdir().unwrap();
//! let store = test_support::hsm::shared();
//! let log = issuance::audit::AuditLog::open(dir.path(), store.clone())?;
//! log.append("delivered", serde_json::json!({"serial": "0102030405060708"}))?;
//! let report = issuance::audit::verify(dir.path(), &store)?;
//! assert!(report.is_intact() && report.entries == 1);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::Connection;

use crate::db::{args, Backend, Db, DbError, Row, Tx};
use serde::Serialize;
use serde_json::Value;

use keystore::{KeyStore, KeyStoreError};

mod key;
mod verify;

pub use key::AuditKey;
pub use verify::{verify, verify_legacy, verify_line, AuditReport, Problem};

/// File name of the audit database inside the state directory.
pub const DB_FILE: &str = "audit.db";
/// File name of the HMAC key of earlier releases inside the state directory: its presence
/// means a chain keyed by a file, which this release refuses ([`AuditError::LegacyKeyFile`]).
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
    Sql(#[from] rusqlite::Error),
    /// The database failed or is unavailable ([`DbError::Unavailable`]: nothing was written).
    #[error("audit database: {0}")]
    Db(#[from] DbError),
    /// The token holding the audit key is not reachable now (removed, HSM restarting):
    /// nothing was written or checked; retry once it is back.
    #[error("the audit key's token is unavailable (nothing was written or checked): {0}")]
    TokenUnavailable(#[source] KeyStoreError),
    /// The token answered but refused (the audit key is missing or has the wrong attributes,
    /// the mechanism is not supported). Not cured by retrying.
    #[error("the audit key's token refused: {0}")]
    Token(#[source] KeyStoreError),
    /// The key file of an earlier release is not a 32-byte key.
    #[error("{path}: not an audit key (expected {expected} bytes, found {found})")]
    BadKey {
        /// The key file.
        path: PathBuf,
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        found: usize,
    },
    /// The state directory still has the key file of an earlier release: its chain was keyed
    /// by that file and cannot be verified (or continued) with the token's key.
    #[error(
        "{path} exists: this audit trail was chained with a key file by an earlier release and \
         cannot be verified or continued with the token's audit key. Verify it with \
         `idcardd audit verify --legacy-key-file` (or the previous release), archive audit.db, audit.head and audit.key of {dir} \
         together, then remove them to start a token-keyed trail"
    )]
    LegacyKeyFile {
        /// The key file of the earlier release.
        path: PathBuf,
        /// The state directory.
        dir: PathBuf,
    },
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
    /// HMAC-SHA256 (the token's audit key) over this entry and `prev_mac`.
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
    db: Db,
    /// The chain this log appends to: the station's own file, or its chain in the line's
    /// shared database.
    chain: Chain,
    /// The highest seq this log wrote to `audit.head`. Appends commit one at a time but write
    /// the head after their commit: two threads may finish in the other order, and the head
    /// must not move back to the earlier entry (a removed last entry would then go unseen).
    head_written: Mutex<i64>,
}

/// Which chain: a station keeps one; on a line, every station keeps its own chain in the
/// shared database (table `audit_entries`, keyed by station and seq), so appends never wait on
/// another station and each station's `audit.head` anchors its own chain against truncation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chain {
    /// Table `entries` of `state_dir/audit.db`.
    Local,
    /// The rows of station `0` in table `audit_entries` of the line's database.
    Station(String),
}

impl Chain {
    /// `FROM .. WHERE ..` of this chain's rows; `?1` is the station when there is one.
    fn rows(&self) -> &'static str {
        match self {
            Chain::Local => "FROM entries WHERE ?1 = ?1",
            Chain::Station(_) => "FROM audit_entries WHERE station = ?1",
        }
    }

    fn station(&self) -> &str {
        match self {
            Chain::Local => "",
            Chain::Station(s) => s,
        }
    }
}

/// Creates the line's audit table if it is not there, under the schema lock: two stations
/// starting at once would otherwise both create it (PostgreSQL's `IF NOT EXISTS` is not safe
/// against a concurrent creation).
pub(crate) fn ensure_line_schema(db: &Db) -> Result<(), DbError> {
    db.write(|tx| {
        Db::lock_schema(tx)?;
        tx.batch(&Db::schema_sql(tx.backend(), LINE_SCHEMA))
    })
}

/// The shared database's table of every station's chain.
pub(crate) const LINE_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_entries (
    station  TEXT   NOT NULL,
    seq      BIGINT NOT NULL,
    time_ms  BIGINT NOT NULL,
    kind     TEXT   NOT NULL,
    details  TEXT   NOT NULL,
    prev_mac {blob} NOT NULL,
    mac      {blob} NOT NULL,
    PRIMARY KEY (station, seq)
);
";

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

/// An entry from `seq, time_ms, kind, details, prev_mac, mac`.
fn entry(r: &Row) -> Result<AuditEntry, DbError> {
    Ok(AuditEntry {
        seq: r.int(0)?,
        time_ms: r.int(1)?,
        kind: r.text(2)?,
        details: r.text(3)?,
        prev_mac: r.blob(4)?,
        mac: r.blob(5)?,
    })
}

/// Every entry of `chain`, in `seq` order.
pub(crate) fn chain_entries(tx: &mut dyn Tx, chain: &Chain) -> Result<Vec<AuditEntry>, DbError> {
    tx.query(
        &format!(
            "SELECT seq, time_ms, kind, details, prev_mac, mac {} ORDER BY seq",
            chain.rows()
        ),
        args![chain.station()],
    )?
    .iter()
    .map(entry)
    .collect()
}

/// The last entry's seq and mac, or `None` for an empty chain.
fn last_entry(tx: &mut dyn Tx, chain: &Chain) -> Result<Option<(i64, Vec<u8>)>, DbError> {
    tx.query_opt(
        &format!("SELECT seq, mac {} ORDER BY seq DESC LIMIT 1", chain.rows()),
        args![chain.station()],
    )?
    .map(|r| Ok((r.int(0)?, r.blob(1)?)))
    .transpose()
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

/// Refuses a state directory that still has the key file of an earlier release.
pub(crate) fn refuse_legacy_key(state_dir: &Path) -> Result<(), AuditError> {
    let path = state_dir.join(KEY_FILE);
    match std::fs::symlink_metadata(&path) {
        Ok(_) => Err(AuditError::LegacyKeyFile {
            path,
            dir: state_dir.to_path_buf(),
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error(&path)(e)),
    }
}

impl AuditLog {
    /// Opens (or creates) the audit log in `state_dir`, chained under the audit key of
    /// `store`. A state directory that still has the `audit.key` file of an earlier release is
    /// refused ([`AuditError::LegacyKeyFile`]). A head record left behind by a process killed
    /// mid-append is brought up to date (when the token is reachable).
    pub fn open(state_dir: &Path, store: Arc<KeyStore>) -> Result<AuditLog, AuditError> {
        let db_path = state_dir.join(DB_FILE);
        // Owner-only, an existing looser directory tightened (issue 18).
        crate::store::private_dir(state_dir).map_err(io_error(state_dir))?;
        refuse_legacy_key(state_dir)?;
        drop(open_db(&db_path)?);
        AuditLog::on(state_dir, Db::open_sqlite(&db_path)?, Chain::Local, store)
    }

    /// Opens station `station`'s chain in a line's shared database `db` (its head record in
    /// `state_dir`), chained under the audit key of `store`.
    pub fn open_on(
        state_dir: &Path,
        db: Db,
        station: &str,
        store: Arc<KeyStore>,
    ) -> Result<AuditLog, AuditError> {
        crate::store::private_dir(state_dir).map_err(io_error(state_dir))?;
        refuse_legacy_key(state_dir)?;
        ensure_line_schema(&db)?;
        AuditLog::on(state_dir, db, Chain::Station(station.to_string()), store)
    }

    fn on(
        state_dir: &Path,
        db: Db,
        chain: Chain,
        store: Arc<KeyStore>,
    ) -> Result<AuditLog, AuditError> {
        let head_path = state_dir.join(HEAD_FILE);
        crate::store::tighten_file(&head_path).map_err(io_error(&head_path))?;
        let log = AuditLog {
            dir: state_dir.to_path_buf(),
            key: AuditKey::new(store),
            db,
            chain,
            head_written: Mutex::new(0),
        };
        log.repair_head()?;
        Ok(log)
    }

    /// The database the log is in.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The audit key (a handle on the token).
    pub fn key(&self) -> &AuditKey {
        &self.key
    }

    /// The state directory the log lives in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends an entry and returns its seq. `details` must hold identifiers, scores and
    /// decisions only (never PINs, keys, scans or templates).
    pub fn append(&self, kind: &str, details: Value) -> Result<u64, AuditError> {
        let mut details = details;
        if let (Chain::Station(station), Value::Object(map)) = (&self.chain, &mut details) {
            // MACed with the rest: an entry cannot be moved to another station's chain.
            map.insert("station".into(), station.clone().into());
        }
        let details = serde_json::to_string(&details)?;
        let chain = &self.chain;
        let head = self.db.write(|tx| {
            // One append at a time per chain: SQLite's IMMEDIATE transaction; on PostgreSQL a
            // lock on the station's chain, held until commit (other stations append at once).
            if tx.backend() == Backend::Postgres {
                tx.query(
                    "SELECT pg_advisory_xact_lock(hashtext(?1))",
                    args![chain.station()],
                )?;
            }
            let (prev_seq, prev_mac) = last_entry(tx, chain)?.unwrap_or((0, vec![0; MAC_LEN]));
            let seq = prev_seq + 1;
            let time_ms = now_ms();
            // Signed before the insert: a token that is away fails here and the transaction is
            // rolled back (nothing written).
            let mac = self
                .key
                .sign(&mac_input(seq, time_ms, kind, &details, &prev_mac))?;
            match chain {
                Chain::Local => tx.execute(
                    "INSERT INTO entries (seq, time_ms, kind, details, prev_mac, mac)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    args![seq, time_ms, kind, details.as_str(), prev_mac.as_slice(), mac.as_slice()],
                )?,
                Chain::Station(station) => tx.execute(
                    "INSERT INTO audit_entries (station, seq, time_ms, kind, details, prev_mac, mac)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    args![
                        station.as_str(),
                        seq,
                        time_ms,
                        kind,
                        details.as_str(),
                        prev_mac.as_slice(),
                        mac.as_slice()
                    ],
                )?,
            };
            Ok::<_, AuditError>(Head {
                seq,
                mac: hex::encode(mac),
            })
        })?;
        // The head is written after the commit: a crash in between leaves the head one entry
        // behind, which `open` repairs and `verify` reports as harmless (only the key holder
        // can have made the entries past it).
        let seq = head.seq;
        self.publish_head(&head)?;
        Ok(seq as u64)
    }

    /// Every entry of this log's chain, in order (for `idcardd audit show` and status
    /// lookups).
    pub fn entries(&self) -> Result<Vec<AuditEntry>, AuditError> {
        Ok(self.db.read(|tx| chain_entries(tx, &self.chain))?)
    }

    /// Entries of one `kind` whose details have `field` equal to `value` (e.g. every
    /// `delivered` entry of a serial), in order; on a line, those of every station, in time
    /// order.
    pub fn find(
        &self,
        kind: &str,
        field: &str,
        value: &str,
    ) -> Result<Vec<AuditEntry>, AuditError> {
        let sql = match self.chain {
            Chain::Local => {
                "SELECT seq, time_ms, kind, details, prev_mac, mac FROM entries
                 WHERE kind = ?1 AND json_extract(details, '$.' || ?2) = ?3 ORDER BY seq"
            }
            Chain::Station(_) => {
                "SELECT seq, time_ms, kind, details, prev_mac, mac FROM audit_entries
                 WHERE kind = ?1 AND (CAST(details AS JSONB) ->> CAST(?2 AS TEXT)) = ?3
                 ORDER BY time_ms, station, seq"
            }
        };
        Ok(self.db.read(|tx| {
            tx.query(sql, args![kind, field, value])?
                .iter()
                .map(entry)
                .collect::<Result<Vec<_>, DbError>>()
        })?)
    }

    /// Writes `head` to `audit.head` unless this log already wrote a later one: appends commit
    /// one at a time but get here in any order.
    fn publish_head(&self, head: &Head) -> Result<(), AuditError> {
        // A poisoned lock only means another append failed while holding it; the seq in it
        // is still the last one written.
        let mut written = self
            .head_written
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if head.seq > *written {
            write_head(&self.dir, head)?;
            *written = head.seq;
        }
        Ok(())
    }

    /// Moves the head forward when it lags behind a chain that verifies (a process killed
    /// between commit and head update). A head ahead of the database is left alone: that is
    /// what truncation looks like, and `verify` reports it.
    fn repair_head(&self) -> Result<(), AuditError> {
        let Some((last_seq, last_mac)) = self.db.read(|tx| last_entry(tx, &self.chain))? else {
            return Ok(());
        };
        let head = read_head(&self.dir)?;
        if head.as_ref().is_some_and(|h| h.seq >= last_seq) {
            return Ok(());
        }
        let entries = self.entries()?;
        // A token that is away leaves the head as it is (verify reports it lagging).
        let Ok(report) = verify::check_chain(&self.key, &entries) else {
            return Ok(());
        };
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
    use rusqlite::params;
    use serde_json::json;

    fn store() -> Arc<KeyStore> {
        test_support::hsm::shared()
    }

    #[test]
    fn chain_links_each_entry_to_the_previous_mac() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), store()).unwrap();
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
        // The MAC is the token's: no key file is written.
        assert!(!dir.path().join(KEY_FILE).exists());
        assert!(store()
            .audit_mac_verify(
                &mac_input(2, e[1].time_ms, "b", &e[1].details, &e[0].mac),
                &e[1].mac
            )
            .unwrap());
    }

    /// Two appends that committed in one order and reach the head in the other (threads of
    /// one daemon): the head stays on the later entry, so a removed last entry is still seen.
    #[test]
    fn the_head_never_moves_back_when_appends_finish_out_of_order() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), store()).unwrap();
        assert_eq!(log.append("a", json!({"n": 1})).unwrap(), 1);
        let first = read_head(dir.path()).unwrap().unwrap();
        assert_eq!(log.append("b", json!({"n": 2})).unwrap(), 2);
        let second = read_head(dir.path()).unwrap().unwrap();
        assert_eq!(second.seq, 2);
        // The first append's head write arriving last.
        log.publish_head(&first).unwrap();
        assert_eq!(read_head(dir.path()).unwrap().unwrap(), second);
        // The last entry removed: caught against the head.
        log.db()
            .write(|tx| tx.execute("DELETE FROM entries WHERE seq = 2", args![]))
            .unwrap();
        let report = verify(dir.path(), &store()).unwrap();
        assert!(
            matches!(
                report.problem,
                Some(verify::Problem::Truncated { seq: 2, .. })
            ),
            "{report:?}"
        );
    }

    #[test]
    fn a_legacy_key_file_is_refused_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join(KEY_FILE);
        std::fs::write(&key, [7u8; 32]).unwrap();
        let err = AuditLog::open(dir.path(), store()).unwrap_err();
        assert!(matches!(err, AuditError::LegacyKeyFile { .. }), "{err}");
        assert!(err.to_string().contains("previous release"), "{err}");
        let err = verify(dir.path(), &store()).unwrap_err();
        assert!(matches!(err, AuditError::LegacyKeyFile { .. }), "{err}");
        assert_eq!(std::fs::read(&key).unwrap(), [7u8; 32]);
    }

    #[test]
    fn a_legacy_chain_verifies_with_its_key_file() {
        use ring::hmac;
        let dir = tempfile::tempdir().unwrap();
        // A chain as an earlier release wrote it: HMAC under the 32 bytes of audit.key.
        let raw = [9u8; 32];
        let soft = hmac::Key::new(hmac::HMAC_SHA256, &raw);
        let conn = open_db(&dir.path().join(DB_FILE)).unwrap();
        let mut prev = vec![0u8; MAC_LEN];
        for seq in 1..=3i64 {
            let details = json!({"n": seq}).to_string();
            let mac = hmac::sign(&soft, &mac_input(seq, 1000 + seq, "old", &details, &prev))
                .as_ref()
                .to_vec();
            conn.execute(
                "INSERT INTO entries (seq, time_ms, kind, details, prev_mac, mac)
                 VALUES (?1, ?2, 'old', ?3, ?4, ?5)",
                params![seq, 1000 + seq, details, prev, mac],
            )
            .unwrap();
            prev = mac;
        }
        write_head(
            dir.path(),
            &Head {
                seq: 3,
                mac: hex::encode(&prev),
            },
        )
        .unwrap();
        std::fs::write(dir.path().join(KEY_FILE), raw).unwrap();
        let report = verify_legacy(dir.path()).unwrap();
        assert!(report.is_intact() && report.entries == 3, "{report:?}");
        assert!(matches!(
            AuditLog::open(dir.path(), store()),
            Err(AuditError::LegacyKeyFile { .. })
        ));
        conn.execute("UPDATE entries SET details = '{}' WHERE seq = 2", [])
            .unwrap();
        let report = verify_legacy(dir.path()).unwrap();
        assert_eq!(
            report.problem,
            Some(Problem::Edited { seq: 2 }),
            "{report:?}"
        );
        // Archived and removed: the directory starts a token-keyed trail.
        drop(conn);
        for f in [KEY_FILE, DB_FILE, HEAD_FILE] {
            std::fs::remove_file(dir.path().join(f)).unwrap();
        }
        let log = AuditLog::open(dir.path(), store()).unwrap();
        log.append("new", json!({})).unwrap();
        assert!(verify(dir.path(), &store()).unwrap().is_intact());
        assert!(verify_legacy(dir.path()).is_err());
    }

    #[test]
    fn lagging_head_is_repaired_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), store()).unwrap();
        log.append("a", json!({})).unwrap();
        let old_head = std::fs::read(dir.path().join(HEAD_FILE)).unwrap();
        log.append("b", json!({})).unwrap();
        drop(log);
        // As if the daemon died between the commit of entry 2 and the head update.
        std::fs::write(dir.path().join(HEAD_FILE), old_head).unwrap();
        let report = verify(dir.path(), &store()).unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert!(report.head_behind);
        drop(AuditLog::open(dir.path(), store()).unwrap());
        let report = verify(dir.path(), &store()).unwrap();
        assert!(report.is_intact() && !report.head_behind, "{report:?}");
    }

    #[test]
    fn concurrent_appends_keep_one_chain() {
        let dir = tempfile::tempdir().unwrap();
        let log = Arc::new(AuditLog::open(dir.path(), store()).unwrap());
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
        let report = verify(dir.path(), &store()).unwrap();
        assert!(report.is_intact(), "{report:?}");
        assert_eq!(report.entries, 40);
    }

    #[test]
    fn a_chain_of_token_a_verifies_with_a_only() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), store()).unwrap();
        for n in 0..3 {
            log.append("a", json!({"n": n})).unwrap();
        }
        drop(log);
        assert!(verify(dir.path(), &store()).unwrap().is_intact());
        let other = test_support::hsm::token("other").0;
        let report = verify(dir.path(), &other).unwrap();
        assert_eq!(
            report.problem,
            Some(Problem::ForeignKey { seq: 1 }),
            "{report:?}"
        );
        assert_eq!(report.first_bad_seq(), Some(1));
        // Opening with the other token works (it is only a handle) but its appends do not
        // continue A's chain.
        let log = AuditLog::open(dir.path(), other.clone()).unwrap();
        log.append("b", json!({})).unwrap();
        drop(log);
        let report = verify(dir.path(), &store()).unwrap();
        assert_eq!(
            report.problem,
            Some(Problem::Edited { seq: 4 }),
            "{report:?}"
        );
    }

    #[test]
    fn a_chain_recomputed_with_a_software_key_is_caught() {
        use ring::hmac;
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(dir.path(), store()).unwrap();
        for n in 0..4 {
            log.append("personalized", json!({"n": n})).unwrap();
        }
        drop(log);
        // The attacker rewrites entry 2 and recomputes the rest of the chain and the head with
        // a key of their own, as they could when the key was a file.
        let soft = hmac::Key::new(hmac::HMAC_SHA256, &[0x42; 32]);
        let conn = open_db(&dir.path().join(DB_FILE)).unwrap();
        // Re-chains the entries from `from` on (the one before keeps its MAC) with `soft`,
        // rewriting entry 2's details when `edit`, and writes the matching head.
        let rechain = |from: usize, edit: bool| {
            let entries = Db::open_sqlite(&dir.path().join(DB_FILE))
                .unwrap()
                .read(|tx| chain_entries(tx, &Chain::Local))
                .unwrap();
            let mut prev = if from == 0 {
                vec![0u8; MAC_LEN]
            } else {
                entries[from - 1].mac.clone()
            };
            for e in &entries[from..] {
                let details = if edit && e.seq == 2 {
                    json!({"n": 99}).to_string()
                } else {
                    e.details.clone()
                };
                let mac = hmac::sign(
                    &soft,
                    &mac_input(e.seq, e.time_ms, &e.kind, &details, &prev),
                )
                .as_ref()
                .to_vec();
                conn.execute(
                    "UPDATE entries SET details = ?1, prev_mac = ?2, mac = ?3 WHERE seq = ?4",
                    params![details, prev, mac, e.seq],
                )
                .unwrap();
                prev = mac;
            }
            let head = Head {
                seq: 4,
                mac: hex::encode(&prev),
            };
            write_head(dir.path(), &head).unwrap();
        };
        rechain(1, true);
        let report = verify(dir.path(), &store()).unwrap();
        assert_eq!(
            report.problem,
            Some(Problem::Edited { seq: 2 }),
            "{report:?}"
        );

        // The whole chain recomputed with the software key: nothing verifies.
        rechain(0, false);
        let report = verify(dir.path(), &store()).unwrap();
        assert_eq!(
            report.problem,
            Some(Problem::ForeignKey { seq: 1 }),
            "{report:?}"
        );
    }
}
