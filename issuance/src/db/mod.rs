//! The one way the issuance core talks to its database, whichever engine holds it: the
//! embedded SQLite file of one station, or a PostgreSQL server shared by the stations of a
//! line (issue 17).
//!
//! - [`Db`]: an open database. [`Db::write`] runs a closure in one transaction (SQLite:
//!   `BEGIN IMMEDIATE`, so writers queue; PostgreSQL: `READ COMMITTED` with explicit row
//!   locks, retried when the server reports a serialization failure or a deadlock);
//!   [`Db::read`] runs reads outside a transaction.
//! - [`Tx`]: what a closure gets: `execute` and `query` with positional parameters written
//!   `?1`, `?2`, ... in both dialects. The SQL is written once, in the subset both engines
//!   share; the differences are translated here and nowhere else: PostgreSQL gets `$1`
//!   placeholders; SQLite drops `FOR UPDATE [SKIP LOCKED]` (its writers are serialized
//!   anyway). Schema text uses [`ID_COLUMN`] and [`BLOB`] for the two types they spell
//!   differently ([`Db::schema_sql`]).
//! - [`Value`] and [`Row`]: parameters and result columns as plain values.
//! - [`DbError`]: [`DbError::Unavailable`] (the server went away: wait and retry, nothing was
//!   written), [`DbError::Constraint`] (a unique or foreign key rule refused the change), or
//!   anything else.
//!
//! Credentials never travel in the URL or on the command line: [`Credentials`] reads the
//! password from a file or an environment variable.

use std::fmt;

mod pg;
mod sqlite;

pub use pg::PgOptions;

/// The primary-key column of an append-only table, as the schema text writes it.
pub const ID_COLUMN: &str = "{id}";
/// A byte-string column, as the schema text writes it.
pub const BLOB: &str = "{blob}";

/// A database failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached (server down, connection lost, pool exhausted): nothing
    /// of the transaction was written. Wait and try again.
    #[error("the journal database is unavailable: {0}")]
    Unavailable(String),
    /// A unique, foreign-key or check rule refused the change.
    #[error("journal constraint: {0}")]
    Constraint(String),
    /// The database answered with an error (SQL, corruption, disk full, ...).
    #[error("journal: {0}")]
    Other(String),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> DbError {
        match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                DbError::Constraint(e.to_string())
            }
            _ => DbError::Other(e.to_string()),
        }
    }
}

/// A parameter or a column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// An integer (SQLite INTEGER, PostgreSQL BIGINT/INTEGER/SMALLINT/BOOLEAN).
    Int(i64),
    /// Text.
    Text(String),
    /// Bytes (SQLite BLOB, PostgreSQL BYTEA).
    Blob(Vec<u8>),
}

impl From<i64> for Value {
    fn from(v: i64) -> Value {
        Value::Int(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(i64::from(v))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Value {
        Value::Text(v.to_string())
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Value {
        Value::Text(v.clone())
    }
}
impl From<String> for Value {
    fn from(v: String) -> Value {
        Value::Text(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Value {
        Value::Blob(v.to_vec())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Value {
        v.map_or(Value::Null, Into::into)
    }
}

/// Parameters for [`Tx::execute`] and [`Tx::query`]: `args![a, b, c]`.
#[macro_export]
macro_rules! args {
    ($($v:expr),* $(,)?) => { &[$($crate::db::Value::from($v)),*][..] };
}
pub use args;

/// One result row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row(pub Vec<Value>);

impl Row {
    fn at(&self, i: usize) -> Result<&Value, DbError> {
        self.0
            .get(i)
            .ok_or_else(|| DbError::Other(format!("result has no column {i}")))
    }

    fn wrong(&self, i: usize, want: &str) -> DbError {
        DbError::Other(format!(
            "column {i}: expected {want}, found {:?}",
            self.0.get(i)
        ))
    }

    /// Column `i` as an integer.
    pub fn int(&self, i: usize) -> Result<i64, DbError> {
        self.opt_int(i)?.ok_or_else(|| self.wrong(i, "an integer"))
    }

    /// Column `i` as an integer or NULL.
    pub fn opt_int(&self, i: usize) -> Result<Option<i64>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Int(v) => Ok(Some(*v)),
            _ => Err(self.wrong(i, "an integer")),
        }
    }

    /// Column `i` as text.
    pub fn text(&self, i: usize) -> Result<String, DbError> {
        self.opt_text(i)?.ok_or_else(|| self.wrong(i, "text"))
    }

    /// Column `i` as text or NULL.
    pub fn opt_text(&self, i: usize) -> Result<Option<String>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Text(v) => Ok(Some(v.clone())),
            _ => Err(self.wrong(i, "text")),
        }
    }

    /// Column `i` as bytes.
    pub fn blob(&self, i: usize) -> Result<Vec<u8>, DbError> {
        match self.at(i)? {
            Value::Blob(v) => Ok(v.clone()),
            _ => Err(self.wrong(i, "bytes")),
        }
    }

    /// Column `i` as bytes or NULL.
    pub fn opt_blob(&self, i: usize) -> Result<Option<Vec<u8>>, DbError> {
        match self.at(i)? {
            Value::Null => Ok(None),
            Value::Blob(v) => Ok(Some(v.clone())),
            _ => Err(self.wrong(i, "bytes")),
        }
    }

    /// Column `i` as a boolean (an integer, 0 is false).
    pub fn bool(&self, i: usize) -> Result<bool, DbError> {
        Ok(self.int(i)? != 0)
    }
}

/// The engine behind a [`Db`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// The embedded SQLite file of one station.
    Sqlite,
    /// A PostgreSQL server shared by a line.
    Postgres,
}

impl Backend {
    /// `sqlite` or `postgres`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// Statements in one transaction (or, from [`Db::read`], outside one).
pub trait Tx {
    /// Runs `sql` (`?N` placeholders); returns the rows it changed.
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError>;
    /// Runs `sql` and returns every row.
    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError>;
    /// Runs several statements without parameters (schema text).
    fn batch(&mut self, sql: &str) -> Result<(), DbError>;
    /// The engine.
    fn backend(&self) -> Backend;

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[Value]) -> Result<Option<Row>, DbError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }

    /// The only row; none is [`DbError::Other`].
    fn query_one(&mut self, sql: &str, params: &[Value]) -> Result<Row, DbError> {
        self.query_opt(sql, params)?
            .ok_or_else(|| DbError::Other(format!("no row from {sql}")))
    }
}

/// Where a password comes from: never the URL, never argv.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Credentials {
    /// The first line of this file (owner-only).
    File(std::path::PathBuf),
    /// This environment variable.
    Env(String),
}

impl Credentials {
    /// Reads the password.
    pub fn read(&self) -> Result<String, DbError> {
        match self {
            Credentials::File(path) => std::fs::read_to_string(path)
                .map(|s| s.lines().next().unwrap_or("").to_string())
                .map_err(|e| {
                    DbError::Unavailable(format!(
                        "cannot read the journal password file {}: {e}",
                        path.display()
                    ))
                }),
            Credentials::Env(var) => std::env::var(var).map_err(|_| {
                DbError::Unavailable(format!("the journal password variable {var} is not set"))
            }),
        }
    }
}

/// An open database. A clone is the same database (the same SQLite connection, the same
/// PostgreSQL pool): the stores of a station on a line share one pool.
#[derive(Clone)]
pub struct Db {
    inner: std::sync::Arc<Inner>,
}

enum Inner {
    Sqlite(sqlite::Sqlite),
    Postgres(pg::Pg),
}

impl fmt::Debug for Db {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Db({})", self.describe())
    }
}

impl Db {
    /// Opens (creating, owner-only) the SQLite database at `path`.
    pub fn open_sqlite(path: &std::path::Path) -> Result<Db, DbError> {
        Ok(Db {
            inner: std::sync::Arc::new(Inner::Sqlite(sqlite::Sqlite::open(path)?)),
        })
    }

    /// Connects to the PostgreSQL database at `url` (`postgres://user@host:port/db`; a password
    /// in the URL is refused: give it in `options.password`).
    pub fn connect_postgres(url: &str, options: PgOptions) -> Result<Db, DbError> {
        Ok(Db {
            inner: std::sync::Arc::new(Inner::Postgres(pg::Pg::connect(url, options)?)),
        })
    }

    /// The engine.
    pub fn backend(&self) -> Backend {
        match &*self.inner {
            Inner::Sqlite(_) => Backend::Sqlite,
            Inner::Postgres(_) => Backend::Postgres,
        }
    }

    /// Where the database is, without credentials (logs, `system.health`).
    pub fn describe(&self) -> String {
        match &*self.inner {
            Inner::Sqlite(s) => s.describe(),
            Inner::Postgres(p) => p.describe(),
        }
    }

    /// Runs `f` in one transaction, committed when it returns `Ok`, rolled back otherwise. On
    /// PostgreSQL a transaction the server aborted for a serialization failure or a deadlock
    /// runs again (so `f` may run more than once: it must only touch the database).
    pub fn write<T, E: From<DbError>>(
        &self,
        f: impl FnMut(&mut dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        match &*self.inner {
            Inner::Sqlite(s) => s.write(f),
            Inner::Postgres(p) => p.write(f),
        }
    }

    /// Runs reads in `f` outside a transaction.
    pub fn read<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        match &*self.inner {
            Inner::Sqlite(s) => s.read(f),
            Inner::Postgres(p) => p.read(f),
        }
    }

    /// After personal data was removed from rows: SQLite empties its WAL so the old frames
    /// leave the disk (`secure_delete` already zeroes freed pages); PostgreSQL's dead row
    /// versions go with its (auto)vacuum.
    pub fn after_scrub(&self) {
        if let Inner::Sqlite(s) = &*self.inner {
            s.checkpoint();
        }
    }

    /// Schema text with [`ID_COLUMN`] and [`BLOB`] spelt for `backend`.
    pub fn schema_sql(backend: Backend, schema: &str) -> String {
        let (id, blob) = match backend {
            Backend::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB"),
            Backend::Postgres => ("BIGSERIAL PRIMARY KEY", "BYTEA"),
        };
        schema.replace(ID_COLUMN, id).replace(BLOB, blob)
    }

    /// The schema version recorded in the database (0: none yet).
    pub fn schema_version(tx: &mut dyn Tx) -> Result<i64, DbError> {
        match tx.backend() {
            Backend::Sqlite => tx.query_one("PRAGMA user_version", &[])?.int(0),
            Backend::Postgres => {
                tx.batch("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
                Ok(tx
                    .query_opt("SELECT MAX(version) FROM schema_version", &[])?
                    .map(|r| r.opt_int(0))
                    .transpose()?
                    .flatten()
                    .unwrap_or(0))
            }
        }
    }

    /// Records the schema version.
    pub fn set_schema_version(tx: &mut dyn Tx, version: i64) -> Result<(), DbError> {
        match tx.backend() {
            Backend::Sqlite => tx.batch(&format!("PRAGMA user_version = {version}")),
            Backend::Postgres => {
                tx.execute("DELETE FROM schema_version", &[])?;
                tx.execute(
                    "INSERT INTO schema_version (version) VALUES (?1)",
                    args![version],
                )
                .map(|_| ())
            }
        }
    }

    /// Serializes schema changes between processes: on PostgreSQL an advisory lock held until
    /// the transaction ends (several stations starting at once migrate once); SQLite's
    /// `BEGIN IMMEDIATE` already does.
    pub fn lock_schema(tx: &mut dyn Tx) -> Result<(), DbError> {
        if tx.backend() == Backend::Postgres {
            tx.query("SELECT pg_advisory_xact_lock(1717171717)", &[])?;
        }
        Ok(())
    }
}

/// SQL for `backend`: `?N` placeholders become `$N` on PostgreSQL; row locks are dropped on
/// SQLite.
pub(crate) fn dialect(backend: Backend, sql: &str) -> String {
    match backend {
        Backend::Sqlite => sql
            .replace(" FOR UPDATE SKIP LOCKED", "")
            .replace(" FOR UPDATE", ""),
        Backend::Postgres => {
            let mut out = String::with_capacity(sql.len());
            let mut chars = sql.chars().peekable();
            let mut quoted = false;
            while let Some(c) = chars.next() {
                if c == '\'' {
                    quoted = !quoted;
                }
                if c == '?' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
                    out.push('$');
                } else {
                    out.push(c);
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_and_row_locks_are_translated_once() {
        let sql = "SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12 FOR UPDATE SKIP LOCKED";
        assert_eq!(
            dialect(Backend::Postgres, sql),
            "SELECT a FROM t WHERE b = $1 AND c = '?2' AND d = $12 FOR UPDATE SKIP LOCKED"
        );
        assert_eq!(
            dialect(Backend::Sqlite, sql),
            "SELECT a FROM t WHERE b = ?1 AND c = '?2' AND d = ?12"
        );
    }

    #[test]
    fn rows_say_what_they_expected() {
        let row = Row(vec![Value::Int(3), Value::Null, Value::Text("x".into())]);
        assert_eq!(row.int(0).unwrap(), 3);
        assert_eq!(row.opt_text(1).unwrap(), None);
        assert!(row
            .int(2)
            .unwrap_err()
            .to_string()
            .contains("expected an integer"));
        assert!(row.text(7).is_err());
    }

    #[test]
    fn a_sqlite_transaction_rolls_back_on_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open_sqlite(&dir.path().join("t.db")).unwrap();
        db.write(|tx| tx.batch("CREATE TABLE t (v BIGINT)"))
            .unwrap();
        let r: Result<(), DbError> = db.write(|tx| {
            tx.execute("INSERT INTO t (v) VALUES (?1)", args![1i64])?;
            Err(DbError::Other("no".into()))
        });
        assert!(r.is_err());
        let n = db
            .read(|tx| tx.query_one("SELECT COUNT(*) FROM t", &[])?.int(0))
            .unwrap();
        assert_eq!(n, 0);
    }
}
