//! Issue 16: a journal written by the previous release (`fixtures/journals/journal-3a72818.sqlite`,
//! schema version 0) opens with this one, is migrated in place to version 2 and loses nothing;
//! a journal from a newer release is refused; two deliveries of the same person's cards at once
//! leave exactly one usable; one dispatch received at two desks at once is received once.

use std::sync::Arc;

use issuance::journal::{CardState, Journal, RecordState, SCHEMA_VERSION};
use test_support::paths;

fn old_journal() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("journal.sqlite");
    std::fs::copy(
        paths::repo().join("fixtures/journals/journal-3a72818.sqlite"),
        &path,
    )
    .unwrap();
    (dir, path)
}

fn user_version(path: &std::path::Path) -> i64 {
    rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn a_journal_of_the_previous_release_is_migrated_in_place_and_loses_nothing() {
    let (_dir, path) = old_journal();
    assert_eq!(user_version(&path), 0);
    let journal = Journal::open(&path).unwrap();
    assert_eq!(user_version(&path), SCHEMA_VERSION);
    let batches = journal.batches().unwrap();
    assert_eq!(batches.len(), 1);
    let rows = journal.records(&batches[0].id).unwrap();
    let states: Vec<_> = rows
        .iter()
        .map(|r| (r.tracking_code.as_str(), r.state))
        .collect();
    assert_eq!(
        states,
        [
            ("V1-0000", RecordState::Personalized),
            ("V1-0001", RecordState::Personalized),
            ("NID-1005", RecordState::QcFailed),
        ]
    );
    assert!(rows[2].qc_issues.is_some());
    // The cards now say whose they are, and have a history.
    let card = journal.card_by_document("D00000001").unwrap().unwrap();
    assert_eq!(card.serial, "DE3EDCFD0815EEB2");
    assert_eq!(card.state, CardState::Personalized);
    assert_eq!(card.person.as_deref(), Some("0012345679"));
    assert_eq!(card.kind.as_deref(), Some("national-id"));
    assert_eq!(
        card.date_of_expiry, None,
        "not journaled by the previous release"
    );
    let history = journal.card_history("D0217B5057A3CE61").unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, CardState::Personalized);
    // Delivering the migrated card works as for a new one.
    assert!(journal
        .set_card_state("DE3EDCFD0815EEB2", CardState::Delivered, None)
        .unwrap()
        .is_empty());
    drop(journal);
    // Opening again migrates nothing twice.
    let journal = Journal::open(&path).unwrap();
    assert_eq!(journal.card_history("DE3EDCFD0815EEB2").unwrap().len(), 2);
}

#[test]
fn a_journal_of_a_newer_release_is_refused_clearly() {
    let (_dir, path) = old_journal();
    drop(Journal::open(&path).unwrap());
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch(&format!("PRAGMA user_version = {};", SCHEMA_VERSION + 1))
        .unwrap();
    let e = Journal::open(&path).unwrap_err().to_string();
    assert!(e.contains("newer than this idcardd understands"), "{e}");
}

#[test]
fn two_cards_of_one_person_delivered_at_once_leave_exactly_one_usable() {
    for _ in 0..20 {
        let (_dir, path) = old_journal();
        // Both cards become the same person's national-id cards (a reissue made at once).
        drop(Journal::open(&path).unwrap());
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute_batch("UPDATE cards SET person = '0012345679';")
            .unwrap();
        let journal = Arc::new(Journal::open(&path).unwrap());
        let threads: Vec<_> = ["DE3EDCFD0815EEB2", "D0217B5057A3CE61"]
            .into_iter()
            .map(|serial| {
                let journal = Arc::clone(&journal);
                std::thread::spawn(move || {
                    journal.set_card_state(serial, CardState::Delivered, None)
                })
            })
            .collect();
        let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let usable: Vec<_> = ["DE3EDCFD0815EEB2", "D0217B5057A3CE61"]
            .into_iter()
            .filter(|s| journal.card(s).unwrap().unwrap().state.usable())
            .collect();
        assert_eq!(usable.len(), 1, "{results:?}");
        // The first delivery superseded the other card; the second was refused.
        let won: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
        assert_eq!(won.len(), 1, "{results:?}");
        assert_eq!(won[0].len(), 1, "{results:?}");
        assert!(
            results
                .iter()
                .any(|r| matches!(r, Err(issuance::journal::JournalError::Conflict(_)))),
            "{results:?}"
        );
    }
}

#[test]
fn one_dispatch_received_at_two_desks_at_once_is_received_once() {
    for _ in 0..20 {
        let (_dir, path) = old_journal();
        let journal = Arc::new(Journal::open(&path).unwrap());
        let serials = vec![
            "DE3EDCFD0815EEB2".to_string(),
            "D0217B5057A3CE61".to_string(),
        ];
        let dispatch = journal
            .create_dispatch("THR-12", &serials)
            .unwrap()
            .unwrap();
        let desks: Vec<_> = (0..2)
            .map(|_| {
                let (journal, id, serials) =
                    (Arc::clone(&journal), dispatch.id.clone(), serials.clone());
                std::thread::spawn(move || journal.receive_dispatch(&id, "THR-12", &serials))
            })
            .collect();
        let receipts: Vec<_> = desks
            .into_iter()
            .map(|t| t.join().unwrap().unwrap())
            .collect();
        let received: usize = receipts.iter().map(|r| r.received.len()).sum();
        let already: usize = receipts.iter().map(|r| r.already_received.len()).sum();
        assert_eq!((received, already), (2, 2), "{receipts:?}");
        for s in &serials {
            let events = journal.card_history(s).unwrap();
            let received = events
                .iter()
                .filter(|e| e.state == CardState::Received)
                .count();
            assert_eq!(received, 1, "{events:?}");
        }
    }
}
