//! What delivery must remember across daemon restarts, per card serial: failed verification
//! attempts, an activation in progress, and the final state (delivered, terminated).
//!
//! SQLite `state_dir/delivery.db` (WAL) for one station; on a line, table `delivery_cards` of
//! the shared PostgreSQL journal database (issue 17). The audit log is the tamper-evident
//! record; this table is the fast, queryable state the methods decide from.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::db::{args, Backend, Db, DbError, Value};

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

/// The delivery state: `state_dir/delivery.db` for one station, or table `delivery_cards` of a
/// line's shared PostgreSQL journal database, so that a holder's failed attempts count at every
/// station of the line.
#[derive(Debug)]
pub struct DeliveryStore {
    db: Db,
    /// `cards` in the station's own file, `delivery_cards` beside the journal's tables.
    table: &'static str,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl DeliveryStore {
    /// Opens (or creates) `state_dir/delivery.db`.
    pub fn open(state_dir: &Path) -> Result<DeliveryStore, DbError> {
        DeliveryStore::on(Db::open_sqlite(&state_dir.join(DB_FILE))?)
    }

    /// The store on `db`: its own SQLite file, or a line's shared database.
    pub fn on(db: Db) -> Result<DeliveryStore, DbError> {
        let table = match db.backend() {
            Backend::Sqlite => "cards",
            Backend::Postgres => "delivery_cards",
        };
        db.write(|tx| {
            // Two stations of a line starting at once must not both create it.
            Db::lock_schema(tx)?;
            tx.batch(&format!(
                "CREATE TABLE IF NOT EXISTS {table} (
                     serial             TEXT PRIMARY KEY,
                     failed_attempts    BIGINT NOT NULL DEFAULT 0,
                     activation_pending TEXT,
                     delivered_ms       BIGINT,
                     terminated_ms      BIGINT,
                     terminated_reason  TEXT,
                     document_number    TEXT
                 );"
            ))
        })?;
        Ok(DeliveryStore { db, table })
    }

    /// The card's record (a default one, with zero attempts, when it was never seen).
    pub fn card(&self, serial: &str) -> Result<CardRecord, DbError> {
        let found = self.db.read(|tx| {
            tx.query_opt(
                &format!(
                    "SELECT failed_attempts, activation_pending, delivered_ms, terminated_ms,
                            terminated_reason, document_number
                     FROM {} WHERE serial = ?1",
                    self.table
                ),
                args![serial],
            )
        })?;
        Ok(match found {
            Some(r) => CardRecord {
                serial: serial.to_string(),
                failed_attempts: u32::try_from(r.int(0)?).unwrap_or(u32::MAX),
                activation_pending: r.opt_text(1)?,
                delivered_ms: r.opt_int(2)?,
                terminated_ms: r.opt_int(3)?,
                terminated_reason: r.opt_text(4)?,
                document_number: r.opt_text(5)?,
            },
            None => CardRecord {
                serial: serial.to_string(),
                ..CardRecord::default()
            },
        })
    }

    /// The record of the card that carries `document_number` (status lookups).
    pub fn by_document_number(&self, document_number: &str) -> Result<Option<CardRecord>, DbError> {
        let serial = self.db.read(|tx| {
            tx.query_opt(
                &format!(
                    "SELECT serial FROM {} WHERE document_number = ?1
                     ORDER BY delivered_ms DESC LIMIT 1",
                    self.table
                ),
                args![document_number],
            )?
            .map(|r| r.text(0))
            .transpose()
        })?;
        serial.map(|s| self.card(&s)).transpose()
    }

    /// Makes sure the card has a row, then sets `update` (`?1` is the serial) in the same
    /// transaction; returns the failed attempts after it.
    fn update(&self, serial: &str, update: &str, params: &[Value]) -> Result<i64, DbError> {
        let table = self.table;
        self.db.write(|tx| {
            tx.execute(
                &format!(
                    "INSERT INTO {table} (serial) VALUES (?1) ON CONFLICT (serial) DO NOTHING"
                ),
                args![serial],
            )?;
            let mut all = vec![Value::from(serial)];
            all.extend_from_slice(params);
            tx.query_one(
                &format!("UPDATE {table} SET {update} WHERE serial = ?1 RETURNING failed_attempts"),
                &all,
            )?
            .int(0)
        })
    }

    /// Records the document number read from the chip.
    pub fn set_document_number(&self, serial: &str, document_number: &str) -> Result<(), DbError> {
        self.update(serial, "document_number = ?2", args![document_number])
            .map(drop)
    }

    /// Counts one failed verification and returns the new count (one count per card for the
    /// whole line: the increment is one statement under the row's lock).
    pub fn add_failed_attempt(&self, serial: &str) -> Result<u32, DbError> {
        let n = self.update(serial, "failed_attempts = failed_attempts + 1", &[])?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// A supervisor cleared the failed attempts (after checking the holder another way).
    pub fn reset_attempts(&self, serial: &str) -> Result<(), DbError> {
        self.update(serial, "failed_attempts = 0", &[]).map(drop)
    }

    /// An activation is about to touch the card.
    pub fn set_pending(&self, serial: &str, session: &str) -> Result<(), DbError> {
        self.update(serial, "activation_pending = ?2", args![session])
            .map(drop)
    }

    /// The activation ended without changing the card (PIN refused): nothing is pending.
    pub fn clear_pending(&self, serial: &str) -> Result<(), DbError> {
        self.update(serial, "activation_pending = NULL", &[])
            .map(drop)
    }

    /// The card is activated: delivered, nothing pending, attempts cleared.
    pub fn mark_delivered(&self, serial: &str) -> Result<(), DbError> {
        self.update(
            serial,
            "activation_pending = NULL, failed_attempts = 0, delivered_ms = ?2",
            args![now_ms()],
        )
        .map(drop)
    }

    /// The card is terminated.
    pub fn mark_terminated(&self, serial: &str, reason: &str) -> Result<(), DbError> {
        self.update(
            serial,
            "activation_pending = NULL, terminated_ms = ?2, terminated_reason = ?3",
            args![now_ms(), reason],
        )
        .map(drop)
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
