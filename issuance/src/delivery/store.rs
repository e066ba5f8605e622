//! What delivery must remember across daemon restarts, per card serial: failed verification
//! attempts, an activation in progress, and the final state (delivered, terminated).
//!
//! SQLite `state_dir/delivery.db` (WAL). The audit log is the tamper-evident record; this table
//! is the fast, queryable state the methods decide from.

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

/// File name of the delivery state inside the state directory.
pub const DB_FILE: &str = "delivery.db";

/// Delivery state of one card.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CardRecord {
    /// Card serial, upper-case hex.
    pub serial: String,
    /// Failed fingerprint verifications since the last supervisor reset.
    pub failed_attempts: u32,
    /// An activation started and has not been seen to finish (card pulled, daemon killed):
    /// the session id that started it.
    pub activation_pending: Option<String>,
    /// When the card was delivered (Unix ms).
    pub delivered_ms: Option<i64>,
    /// When the card was terminated (Unix ms).
    pub terminated_ms: Option<i64>,
    /// Why it was terminated (`lost`, `stolen`, ...).
    pub terminated_reason: Option<String>,
    /// Document number read from the chip at the last delivery step (for status lookups).
    pub document_number: Option<String>,
}

/// The delivery state database.
#[derive(Debug)]
pub struct DeliveryStore {
    conn: Mutex<Connection>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl DeliveryStore {
    /// Opens (or creates) `state_dir/delivery.db`.
    pub fn open(state_dir: &Path) -> rusqlite::Result<DeliveryStore> {
        let conn = crate::store::open_sqlite(
            &state_dir.join(DB_FILE),
            "CREATE TABLE IF NOT EXISTS cards (
                 serial             TEXT PRIMARY KEY,
                 failed_attempts    INTEGER NOT NULL DEFAULT 0,
                 activation_pending TEXT,
                 delivered_ms       INTEGER,
                 terminated_ms      INTEGER,
                 terminated_reason  TEXT,
                 document_number    TEXT
             );",
        )?;
        Ok(DeliveryStore {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The card's record (a default one, with zero attempts, when it was never seen).
    pub fn card(&self, serial: &str) -> rusqlite::Result<CardRecord> {
        let found = self
            .conn()
            .query_row(
                "SELECT failed_attempts, activation_pending, delivered_ms, terminated_ms,
                        terminated_reason, document_number
                 FROM cards WHERE serial = ?1",
                [serial],
                |r| {
                    Ok(CardRecord {
                        serial: serial.to_string(),
                        failed_attempts: r.get(0)?,
                        activation_pending: r.get(1)?,
                        delivered_ms: r.get(2)?,
                        terminated_ms: r.get(3)?,
                        terminated_reason: r.get(4)?,
                        document_number: r.get(5)?,
                    })
                },
            )
            .optional()?;
        Ok(found.unwrap_or_else(|| CardRecord {
            serial: serial.to_string(),
            ..CardRecord::default()
        }))
    }

    /// The record of the card that carries `document_number` (status lookups).
    pub fn by_document_number(
        &self,
        document_number: &str,
    ) -> rusqlite::Result<Option<CardRecord>> {
        let serial: Option<String> = self
            .conn()
            .query_row(
                "SELECT serial FROM cards WHERE document_number = ?1
                 ORDER BY delivered_ms DESC LIMIT 1",
                [document_number],
                |r| r.get(0),
            )
            .optional()?;
        serial.map(|s| self.card(&s)).transpose()
    }

    fn ensure(conn: &Connection, serial: &str) -> rusqlite::Result<()> {
        conn.execute(
            "INSERT INTO cards (serial) VALUES (?1) ON CONFLICT(serial) DO NOTHING",
            [serial],
        )?;
        Ok(())
    }

    /// Records the document number read from the chip.
    pub fn set_document_number(&self, serial: &str, document_number: &str) -> rusqlite::Result<()> {
        let conn = self.conn();
        Self::ensure(&conn, serial)?;
        conn.execute(
            "UPDATE cards SET document_number = ?2 WHERE serial = ?1",
            params![serial, document_number],
        )?;
        Ok(())
    }

    /// Counts one failed verification and returns the new count.
    pub fn add_failed_attempt(&self, serial: &str) -> rusqlite::Result<u32> {
        let conn = self.conn();
        Self::ensure(&conn, serial)?;
        conn.query_row(
            "UPDATE cards SET failed_attempts = failed_attempts + 1 WHERE serial = ?1
             RETURNING failed_attempts",
            [serial],
            |r| r.get(0),
        )
    }

    /// A supervisor cleared the failed attempts (after checking the holder another way).
    pub fn reset_attempts(&self, serial: &str) -> rusqlite::Result<()> {
        let conn = self.conn();
        Self::ensure(&conn, serial)?;
        conn.execute(
            "UPDATE cards SET failed_attempts = 0 WHERE serial = ?1",
            [serial],
        )?;
        Ok(())
    }

    /// An activation is about to touch the card.
    pub fn set_pending(&self, serial: &str, session: &str) -> rusqlite::Result<()> {
        let conn = self.conn();
        Self::ensure(&conn, serial)?;
        conn.execute(
            "UPDATE cards SET activation_pending = ?2 WHERE serial = ?1",
            params![serial, session],
        )?;
        Ok(())
    }

    /// The activation ended without changing the card (PIN refused): nothing is pending.
    pub fn clear_pending(&self, serial: &str) -> rusqlite::Result<()> {
        self.conn().execute(
            "UPDATE cards SET activation_pending = NULL WHERE serial = ?1",
            [serial],
        )?;
        Ok(())
    }

    /// The card is activated: delivered, nothing pending, attempts cleared.
    pub fn mark_delivered(&self, serial: &str) -> rusqlite::Result<()> {
        let conn = self.conn();
        Self::ensure(&conn, serial)?;
        conn.execute(
            "UPDATE cards SET activation_pending = NULL, failed_attempts = 0, delivered_ms = ?2
             WHERE serial = ?1",
            params![serial, now_ms()],
        )?;
        Ok(())
    }

    /// The card is terminated.
    pub fn mark_terminated(&self, serial: &str, reason: &str) -> rusqlite::Result<()> {
        let conn = self.conn();
        Self::ensure(&conn, serial)?;
        conn.execute(
            "UPDATE cards SET activation_pending = NULL, terminated_ms = ?2, terminated_reason = ?3
             WHERE serial = ?1",
            params![serial, now_ms(), reason],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_and_states_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = DeliveryStore::open(dir.path()).unwrap();
        assert_eq!(store.card("AA").unwrap().failed_attempts, 0);
        assert_eq!(store.add_failed_attempt("AA").unwrap(), 1);
        assert_eq!(store.add_failed_attempt("AA").unwrap(), 2);
        store.set_pending("AA", "s1").unwrap();
        store.set_document_number("AA", "D1").unwrap();
        drop(store);
        let store = DeliveryStore::open(dir.path()).unwrap();
        let rec = store.card("AA").unwrap();
        assert_eq!(rec.failed_attempts, 2);
        assert_eq!(rec.activation_pending.as_deref(), Some("s1"));
        store.mark_delivered("AA").unwrap();
        let rec = store.by_document_number("D1").unwrap().unwrap();
        assert_eq!((rec.failed_attempts, rec.activation_pending), (0, None));
        assert!(rec.delivered_ms.is_some());
        store.mark_terminated("AA", "lost").unwrap();
        assert_eq!(
            store.card("AA").unwrap().terminated_reason.as_deref(),
            Some("lost")
        );
    }
}
