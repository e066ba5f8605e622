//! The one way the issuance core opens a SQLite database (journal, delivery store, audit
//! trail): durable writes, waits instead of failing when another connection writes.

use std::path::Path;

use rusqlite::Connection;

/// Opens (creating) the database at `path` with the settings every store needs, then runs
/// `schema` (idempotent `CREATE ... IF NOT EXISTS` statements).
///
/// WAL lets readers go on while one connection writes; `synchronous=FULL` makes a committed
/// transaction survive a power cut (a journaled serial must never be lost); `busy_timeout`
/// makes a second process wait for the write lock instead of failing at once.
pub(crate) fn open_sqlite(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    // The pragma, not `Connection::busy_timeout`: that one needs SQLite 3.44
    // (sqlite3_set_clientdata) and Debian 12 ships 3.40.
    conn.pragma_update(None, "busy_timeout", 10_000)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.execute_batch(schema)?;
    Ok(conn)
}
