//! The audit trail is tamper-evident: editing, removing, reordering or truncating entries in
//! `audit.db` directly (as someone with file access would) is caught by `audit::verify`, which
//! names the first bad entry.

use std::path::Path;

use issuance::audit::{verify, AuditLog, Problem, DB_FILE};
use rusqlite::Connection;
use serde_json::json;

/// A log with five entries, closed.
fn log_with_five(dir: &Path) {
    let log = AuditLog::open(dir, test_support::hsm::shared()).unwrap();
    for n in 1..=5 {
        log.append(
            "delivery.verify",
            json!({"serial": format!("00000000000000{n:02}"), "score": n * 10, "decision": "match"}),
        )
        .unwrap();
    }
    let report = verify(dir, &test_support::hsm::shared()).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(report.entries, 5);
}

fn db(dir: &Path) -> Connection {
    Connection::open(dir.join(DB_FILE)).unwrap()
}

#[test]
fn untouched_log_verifies_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    log_with_five(dir.path());
    let log = AuditLog::open(dir.path(), test_support::hsm::shared()).unwrap();
    assert_eq!(log.append("delivered", json!({"serial": "01"})).unwrap(), 6);
    let report = verify(dir.path(), &test_support::hsm::shared()).unwrap();
    assert!(report.is_intact(), "{report:?}");
    assert_eq!(
        (report.entries, report.last_seq, report.head_seq),
        (6, Some(6), Some(6))
    );
}

#[test]
fn edited_details_are_caught_at_that_entry() {
    let dir = tempfile::tempdir().unwrap();
    log_with_five(dir.path());
    db(dir.path())
        .execute(
            "UPDATE entries SET details = replace(details, 'match', 'nomatch') WHERE seq = 3",
            [],
        )
        .unwrap();
    let report = verify(dir.path(), &test_support::hsm::shared()).unwrap();
    assert_eq!(report.problem, Some(Problem::Edited { seq: 3 }));
    assert_eq!(report.first_bad_seq(), Some(3));
}

#[test]
fn edited_time_and_kind_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    log_with_five(dir.path());
    db(dir.path())
        .execute("UPDATE entries SET time_ms = time_ms - 1 WHERE seq = 2", [])
        .unwrap();
    assert_eq!(
        verify(dir.path(), &test_support::hsm::shared())
            .unwrap()
            .problem,
        Some(Problem::Edited { seq: 2 })
    );

    let dir = tempfile::tempdir().unwrap();
    log_with_five(dir.path());
    db(dir.path())
        .execute("UPDATE entries SET kind = 'delivered' WHERE seq = 5", [])
        .unwrap();
    assert_eq!(
        verify(dir.path(), &test_support::hsm::shared())
            .unwrap()
            .problem,
        Some(Problem::Edited { seq: 5 })
    );
}

#[test]
fn removed_entry_is_caught_as_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    log_with_five(dir.path());
    db(dir.path())
        .execute("DELETE FROM entries WHERE seq = 2", [])
        .unwrap();
    assert_eq!(
        verify(dir.path(), &test_support::hsm::shared())
            .unwrap()
            .problem,
        Some(Problem::Removed {
            seq: 3,
            missing_from: 2,
            missing_to: 2
        })
    );
}

#[test]
fn removed_and_renumbered_entries_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    log_with_five(dir.path());
    let conn = db(dir.path());
    conn.execute("DELETE FROM entries WHERE seq = 2", [])
        .unwrap();
    conn.execute("UPDATE entries SET seq = seq - 1 WHERE seq > 2", [])
        .unwrap();
    let report = verify(dir.path(), &test_support::hsm::shared()).unwrap();
    // Entry 3 now sits at 2: intact content at the wrong position.
    assert_eq!(
        report.problem,
        Some(Problem::Reordered {
            seq: 2,
            written_as: 3
        })
    );
}

#[test]
fn swapped_entries_are_caught_as_reordered() {
    let dir = tempfile::tempdir().unwrap();
    log_with_five(dir.path());
    let conn = db(dir.path());
    conn.execute_batch(
        "UPDATE entries SET seq = 100 WHERE seq = 3;
         UPDATE entries SET seq = 3 WHERE seq = 4;
         UPDATE entries SET seq = 4 WHERE seq = 100;",
    )
    .unwrap();
    let report = verify(dir.path(), &test_support::hsm::shared()).unwrap();
    assert_eq!(
        report.problem,
        Some(Problem::Reordered {
            seq: 3,
            written_as: 4
        })
    );
}

#[test]
fn removed_last_entry_is_caught_by_the_head() {
    let dir = tempfile::tempdir().unwrap();
    log_with_five(dir.path());
    db(dir.path())
        .execute("DELETE FROM entries WHERE seq >= 4", [])
        .unwrap();
    let report = verify(dir.path(), &test_support::hsm::shared()).unwrap();
    assert_eq!(
        report.problem,
        Some(Problem::Truncated {
            seq: 4,
            head_seq: 5
        })
    );
    // Opening the log does not paper over a truncation.
    drop(AuditLog::open(dir.path(), test_support::hsm::shared()).unwrap());
    assert!(!verify(dir.path(), &test_support::hsm::shared())
        .unwrap()
        .is_intact());
}

#[test]
fn removed_head_record_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    log_with_five(dir.path());
    std::fs::remove_file(dir.path().join(issuance::audit::HEAD_FILE)).unwrap();
    assert_eq!(
        verify(dir.path(), &test_support::hsm::shared())
            .unwrap()
            .problem,
        Some(Problem::HeadMissing { seq: 5 })
    );
}

#[test]
fn forged_entry_without_the_key_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    log_with_five(dir.path());
    let conn = db(dir.path());
    // A well-formed row with a made-up MAC appended after the last entry.
    let prev: Vec<u8> = conn
        .query_row("SELECT mac FROM entries WHERE seq = 5", [], |r| r.get(0))
        .unwrap();
    conn.execute(
        "INSERT INTO entries (seq, time_ms, kind, details, prev_mac, mac) VALUES (6, 0, 'delivered', '{}', ?1, ?2)",
        rusqlite::params![prev, vec![7u8; 32]],
    )
    .unwrap();
    assert_eq!(
        verify(dir.path(), &test_support::hsm::shared())
            .unwrap()
            .problem,
        Some(Problem::Edited { seq: 6 })
    );
}

#[test]
fn verify_without_a_log_is_an_error_not_a_new_log() {
    let dir = tempfile::tempdir().unwrap();
    assert!(verify(dir.path(), &test_support::hsm::shared()).is_err());
    assert!(!dir.path().join(DB_FILE).exists());
}
