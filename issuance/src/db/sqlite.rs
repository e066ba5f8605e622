//! The embedded engine: one SQLite connection behind a mutex (journal writes are tiny next to
//! card I/O), opened by [`crate::store::open_sqlite`] (WAL, `synchronous=FULL`, owner-only).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use rusqlite::types::{Value as SqlValue, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use super::{dialect, Backend, DbError, Row, Tx, Value};

pub(super) struct Sqlite {
    conn: Mutex<Connection>,
    path: PathBuf,
}

struct SqliteTx<'a>(&'a Connection);

fn to_sql(v: &Value) -> SqlValue {
    match v {
        Value::Null => SqlValue::Null,
        Value::Int(i) => SqlValue::Integer(*i),
        Value::Text(t) => SqlValue::Text(t.clone()),
        Value::Blob(b) => SqlValue::Blob(b.clone()),
    }
}

fn from_sql(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        // No column of ours is REAL; a stray one reads as its integer part.
        ValueRef::Real(f) => Value::Int(f as i64),
        ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::Blob(b.to_vec()),
    }
}

impl Tx for SqliteTx<'_> {
    fn execute(&mut self, sql: &str, params: &[Value]) -> Result<u64, DbError> {
        let mut stmt = self.0.prepare_cached(&dialect(Backend::Sqlite, sql))?;
        let params: Vec<SqlValue> = params.iter().map(to_sql).collect();
        Ok(stmt.execute(rusqlite::params_from_iter(params))? as u64)
    }

    fn query(&mut self, sql: &str, params: &[Value]) -> Result<Vec<Row>, DbError> {
        let mut stmt = self.0.prepare_cached(&dialect(Backend::Sqlite, sql))?;
        let n = stmt.column_count();
        let params: Vec<SqlValue> = params.iter().map(to_sql).collect();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            out.push(Row((0..n)
                .map(|i| r.get_ref(i).map(from_sql))
                .collect::<Result<_, _>>()?));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        Ok(self.0.execute_batch(sql)?)
    }

    fn backend(&self) -> Backend {
        Backend::Sqlite
    }
}

impl Sqlite {
    pub(super) fn open(path: &Path) -> Result<Sqlite, DbError> {
        let conn = crate::store::open_sqlite(path, "")?;
        Ok(Sqlite {
            conn: Mutex::new(conn),
            path: path.to_path_buf(),
        })
    }

    pub(super) fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves no half transaction (SQLite rolls back).
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn write<T, E: From<DbError>>(
        &self,
        mut f: impl FnMut(&mut dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(DbError::from)?;
        let out = f(&mut SqliteTx(&tx))?;
        tx.commit().map_err(DbError::from)?;
        Ok(out)
    }

    pub(super) fn read<T, E: From<DbError>>(
        &self,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        let conn = self.conn();
        f(&mut SqliteTx(&conn))
    }

    /// Empties the WAL into the database, so frames that held removed data leave the disk.
    pub(super) fn checkpoint(&self) {
        if let Err(e) = self
            .conn()
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        {
            tracing::warn!("journal: checkpoint after removing biometrics failed: {e}");
        }
    }
}
