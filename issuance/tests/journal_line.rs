//! Issue 17: the journal on both engines behaves the same for several stations at once: each
//! record claimed exactly once, a silent station's claims taken over after its lease, a card
//! delivered or dispatched once whichever station asks first, a newer schema refused, and (on
//! PostgreSQL) the database going away is "unavailable", not an error that loses anything.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use issuance::db::Db;
use issuance::journal::{
    CardState, Journal, JournalConfig, JournalError, Retention, StationSettings, SCHEMA_VERSION,
};
use issuance::personalize::Holder;
use test_support::pg;

/// One journal database, and a way to open it as any station.
enum Engine {
    Sqlite(tempfile::TempDir),
    Postgres { url: String, password: String },
}

impl Engine {
    fn all(name: &str) -> Vec<Engine> {
        let mut engines = vec![Engine::Sqlite(tempfile::tempdir().unwrap())];
        if pg::skip_unless_available() {
            let server = pg::shared();
            engines.push(Engine::Postgres {
                url: server.create_database(name),
                password: server.password().to_string(),
            });
        }
        engines
    }

    fn station(&self, id: &str, lease: Duration) -> Journal {
        let station = StationSettings {
            station_id: id.into(),
            lease,
        };
        let db = match self {
            Engine::Sqlite(dir) => Db::open_sqlite(&dir.path().join("journal.sqlite")).unwrap(),
            Engine::Postgres { url, password } => Db::connect_postgres(
                url,
                issuance::db::PgOptions {
                    password: Some(password.clone()),
                    pool_size: Some(8),
                    connect_timeout: None,
                },
            )
            .unwrap(),
        };
        Journal::on(db, Retention::default(), station).unwrap()
    }

    fn name(&self) -> &'static str {
        match self {
            Engine::Sqlite(_) => "sqlite",
            Engine::Postgres { .. } => "postgres",
        }
    }
}

fn records(n: usize, prefix: &str) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            (
                serde_json::json!({"tracking_code": format!("{prefix}-{i:04}")}).to_string(),
                String::new(),
            )
        })
        .collect()
}

fn holder(person: &str) -> Holder {
    Holder {
        person: person.into(),
        kind: "national-id".into(),
        date_of_expiry: "20361231".into(),
        household: None,
    }
}

const LEASE: Duration = Duration::from_secs(30);

#[test]
fn two_stations_with_four_workers_each_claim_every_record_exactly_once() {
    for engine in Engine::all("claims_once") {
        let stations: Vec<Arc<Journal>> = ["st-a", "st-b"]
            .iter()
            .map(|id| Arc::new(engine.station(id, LEASE)))
            .collect();
        let mut recs = records(80, "CL");
        // Two records with one tracking code: only one may be claimed, the other is a duplicate.
        recs.push(recs[0].clone());
        stations[0].create_batch("B1", "test", &[], &recs).unwrap();
        let claimed: Vec<(String, i64)> = std::thread::scope(|scope| {
            let handles: Vec<_> = stations
                .iter()
                .flat_map(|j| (0..4).map(move |w| (j, w)))
                .map(|(journal, w)| {
                    scope.spawn(move || {
                        let owner = format!("{}-run", journal.station_id());
                        let mut got = Vec::new();
                        while let Some(c) = journal
                            .claim_next("B1", &owner, &format!("sim:{w}"))
                            .unwrap()
                        {
                            // Held (`checking`) until every record is claimed.
                            got.push((journal.station_id().to_string(), c.seq));
                        }
                        got
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        for (station, seq) in &claimed {
            let journal = stations.iter().find(|j| j.station_id() == station).unwrap();
            journal.qc_failed(*seq, &serde_json::json!([])).unwrap();
        }
        let mut per_seq: BTreeMap<i64, Vec<&str>> = BTreeMap::new();
        for (station, seq) in &claimed {
            per_seq.entry(*seq).or_default().push(station);
        }
        assert_eq!(per_seq.len(), 80, "{}: {per_seq:?}", engine.name());
        assert!(per_seq.values().all(|s| s.len() == 1), "{}", engine.name());
        let rows = stations[1].records("B1").unwrap();
        let c = stations[1].counts("B1").unwrap();
        assert_eq!(
            (c.qc_failed, c.failed, c.pending),
            (80, 1, 0),
            "{}",
            engine.name()
        );
        // Every transition names its station; both stations worked.
        for r in rows
            .iter()
            .filter(|r| r.reason.as_deref() == Some("data QC"))
        {
            let who = per_seq[&r.seq][0];
            assert_eq!(r.station.as_deref(), Some(who), "{}", engine.name());
        }
    }
}

#[test]
fn a_silent_station_loses_its_claims_after_its_lease_and_cannot_finish_them() {
    let lease = Duration::from_secs(3);
    for engine in Engine::all("lease_takeover") {
        let a = engine.station("st-a", lease);
        let b = engine.station("st-b", lease);
        a.create_batch("B1", "test", &[], &records(4, "LE"))
            .unwrap();
        let writing = a.claim_next("B1", "a-run", "sim:0").unwrap().unwrap();
        a.begin_write(writing.seq, "AA01", "D1", "20261205", b"sod", &holder("P1"))
            .unwrap();
        let checking = a.claim_next("B1", "a-run", "sim:1").unwrap().unwrap();
        // While A's lease runs, B gets the other records only.
        let first = b.claim_next("B1", "b-run", "sim:0").unwrap().unwrap();
        assert!(first.seq != writing.seq && first.seq != checking.seq);
        b.release(first.seq).unwrap();
        // A falls silent; after its lease B takes over: the card being written first (to
        // resume), then A's checked record is pending again.
        std::thread::sleep(lease + Duration::from_millis(300));
        let resumed = b.claim_next("B1", "b-run", "sim:0").unwrap().unwrap();
        assert_eq!(resumed.seq, writing.seq, "{}", engine.name());
        assert_eq!(
            resumed.resume.as_ref().unwrap().card_serial,
            "AA01",
            "{}",
            engine.name()
        );
        // A wakes up: what it held is not its own any more.
        let late = a.finish(writing.seq, "AA01", 28).unwrap_err();
        assert!(
            matches!(late, JournalError::TakenOver(_)),
            "{}: {late}",
            engine.name()
        );
        assert!(a.qc_failed(checking.seq, &serde_json::json!([])).is_err());
        // B finishes the record on another card: the first one is spoiled, one card per record.
        b.begin_write(resumed.seq, "BB02", "D1", "20261205", b"sod", &holder("P1"))
            .unwrap();
        b.finish(resumed.seq, "BB02", 28).unwrap();
        assert_eq!(b.card_state("AA01").unwrap(), Some(CardState::Spoiled));
        assert_eq!(b.card_state("BB02").unwrap(), Some(CardState::Personalized));
        let history = b.card_history("AA01").unwrap();
        let stations: Vec<_> = history.iter().map(|e| e.station.as_deref()).collect();
        assert_eq!(stations, [Some("st-a"), Some("st-b")], "{}", engine.name());
        let row = b
            .records("B1")
            .unwrap()
            .into_iter()
            .find(|r| r.seq == resumed.seq)
            .unwrap();
        assert_eq!(row.station.as_deref(), Some("st-b"));
    }
}

#[test]
fn a_claim_whose_answer_was_lost_comes_back_to_the_same_reader() {
    for engine in Engine::all("lost_claim") {
        let a = engine.station("st-a", Duration::from_secs(30));
        a.create_batch("B1", "test", &[], &records(4, "LC"))
            .unwrap();
        // Nothing claimed yet: nothing to take up again.
        assert!(a.claim_again("B1", "run", "sim:0").unwrap().is_none());
        // The database commits a claim and goes away before the station hears of it: the
        // reader asks again and gets that record back.
        let lost = a.claim_next("B1", "run", "sim:0").unwrap().unwrap();
        let again = a.claim_again("B1", "run", "sim:0").unwrap().unwrap();
        assert_eq!(again.seq, lost.seq, "{}", engine.name());
        assert!(again.resume.is_none(), "{}", engine.name());
        // Another reader of the run, and another run on the same reader, hold nothing.
        assert!(a.claim_again("B1", "run", "sim:1").unwrap().is_none());
        assert!(a.claim_again("B1", "run-2", "sim:0").unwrap().is_none());
        // A card being written that the reader took to resume comes back with what it needs
        // to finish that card.
        let other = a.claim_next("B1", "run", "sim:1").unwrap().unwrap();
        assert_ne!(other.seq, lost.seq, "{}", engine.name());
        a.begin_write(other.seq, "AA01", "D1", "20261205", b"sod", &holder("P1"))
            .unwrap();
        a.release(other.seq).unwrap();
        let resumed = a.claim_next("B1", "run", "sim:2").unwrap().unwrap();
        assert_eq!(resumed.seq, other.seq, "{}", engine.name());
        let again = a.claim_again("B1", "run", "sim:2").unwrap().unwrap();
        assert_eq!(again.seq, other.seq, "{}", engine.name());
        let resume = again.resume.expect("a card to resume");
        assert_eq!(
            (resume.card_serial.as_str(), resume.sod.as_slice()),
            ("AA01", &b"sod"[..]),
            "{}",
            engine.name()
        );
        // Once finished or given back, it is not held any more.
        a.finish(again.seq, "AA01", 28).unwrap();
        assert!(a.claim_again("B1", "run", "sim:2").unwrap().is_none());
        a.release(lost.seq).unwrap();
        assert!(a.claim_again("B1", "run", "sim:0").unwrap().is_none());
    }
}

/// Two personalized cards of one person, made by the line.
fn two_cards(journal: &Journal) -> [&'static str; 2] {
    journal
        .create_batch("B1", "test", &[], &records(2, "RC"))
        .unwrap();
    for serial in ["C1", "C2"] {
        let c = journal.claim_next("B1", "run", "sim:0").unwrap().unwrap();
        journal
            .begin_write(c.seq, serial, serial, "20261205", b"sod", &holder("P9"))
            .unwrap();
        journal.finish(c.seq, serial, 28).unwrap();
    }
    ["C1", "C2"]
}

#[test]
fn stations_racing_for_the_same_delivery_and_dispatch_succeed_once() {
    for engine in Engine::all("races") {
        let a = Arc::new(engine.station("st-a", LEASE));
        let b = Arc::new(engine.station("st-b", LEASE));
        let serials = two_cards(&a);
        // The same dispatch asked at two stations at once: one makes it.
        let both: Vec<_> = [&a, &b]
            .map(|j| {
                let j = Arc::clone(j);
                let s: Vec<String> = serials.iter().map(|s| s.to_string()).collect();
                std::thread::spawn(move || j.create_dispatch("THR-1", &s).unwrap())
            })
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        assert_eq!(both.iter().filter(|d| d.is_ok()).count(), 1, "{both:?}");
        let dispatch = both.into_iter().find_map(Result::ok).unwrap();
        a.receive_dispatch(&dispatch.id, "THR-1", &serials.map(String::from))
            .unwrap();
        // The same card delivered at two stations at once; and the holder's other card at a
        // third moment: exactly one card stays usable.
        let results: Vec<_> = [(&a, "C1"), (&b, "C1"), (&b, "C2")]
            .map(|(j, s)| {
                let j = Arc::clone(j);
                std::thread::spawn(move || j.set_card_state(s, CardState::Delivered, None))
            })
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect();
        let ok = results.iter().filter(|r| r.is_ok()).count();
        assert!((1..=2).contains(&ok), "{}: {results:?}", engine.name());
        let usable: Vec<_> = serials
            .iter()
            .filter(|s| a.card(s).unwrap().unwrap().state.usable())
            .collect();
        assert_eq!(usable.len(), 1, "{}: {results:?}", engine.name());
        // C1 was delivered once, whichever station won.
        let delivered = a
            .card_history("C1")
            .unwrap()
            .iter()
            .filter(|e| e.state == CardState::Delivered)
            .count();
        assert!(delivered <= 1, "{}", engine.name());
    }
}

#[test]
fn a_postgres_journal_of_a_newer_version_is_refused_clearly() {
    if !pg::skip_unless_available() {
        return;
    }
    let server = pg::shared();
    let engine = Engine::Postgres {
        url: server.create_database("newer_schema"),
        password: server.password().to_string(),
    };
    drop(engine.station("st-a", LEASE));
    server.psql_in(
        "newer_schema",
        &format!(
            "UPDATE schema_version SET version = {};",
            SCHEMA_VERSION + 1
        ),
    );
    let Engine::Postgres { url, password } = &engine else {
        unreachable!()
    };
    let config = JournalConfig {
        url: Some(url.clone()),
        password: Some(issuance::db::Credentials::Env(
            "IDCARDD_TEST_NO_SUCH_VAR".into(),
        )),
        ..JournalConfig::default()
    };
    // No password: the clear error says so.
    let e = config
        .open(std::path::Path::new("/nonexistent"), Retention::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("IDCARDD_TEST_NO_SUCH_VAR"), "{e}");
    let pw = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(pw.path(), format!("{password}\n")).unwrap();
    let config = JournalConfig {
        password: Some(issuance::db::Credentials::File(pw.path().to_path_buf())),
        ..config
    };
    let e = config
        .open(std::path::Path::new("/nonexistent"), Retention::default())
        .unwrap_err()
        .to_string();
    assert!(e.contains("newer than this idcardd understands"), "{e}");
    // A password in the URL is refused: it would show in process lists and logs.
    let in_url = url.replace("idcardd@", &format!("idcardd:{password}@"));
    let e = Db::connect_postgres(&in_url, Default::default()).unwrap_err();
    assert!(e.to_string().contains("never in the URL"), "{e}");
}

#[test]
fn the_database_going_away_is_unavailable_and_work_goes_on_when_it_is_back() {
    if !pg::skip_unless_available() {
        return;
    }
    let server = pg::PgServer::start();
    let engine = Engine::Postgres {
        url: server.url(),
        password: server.password().to_string(),
    };
    let a = engine.station("st-a", LEASE);
    a.create_batch("B1", "test", &[], &records(3, "DB"))
        .unwrap();
    let first = a.claim_next("B1", "run", "sim:0").unwrap().unwrap();
    server.stop();
    let e = a.claim_next("B1", "run", "sim:0").unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    let e = a.qc_failed(first.seq, &serde_json::json!([])).unwrap_err();
    assert!(e.is_unavailable(), "{e}");
    let api_error: issuance::Error = e.into();
    assert_eq!(api_error.kind, issuance::ErrorKind::JournalUnavailable);
    server.start_again();
    // Connections broken by the restart are replaced; nothing was half-written.
    let mut ok = None;
    for _ in 0..20 {
        match a.qc_failed(first.seq, &serde_json::json!([])) {
            Ok(()) => {
                ok = Some(());
                break;
            }
            Err(e) if e.is_unavailable() => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => panic!("{e}"),
        }
    }
    assert!(ok.is_some());
    let c = a.counts("B1").unwrap();
    assert_eq!((c.qc_failed, c.pending), (1, 2));
}

#[test]
fn every_station_keeps_its_own_audit_chain_in_the_line_database() {
    use issuance::audit::{verify_line, AuditLog, Problem};
    if !pg::skip_unless_available() {
        return;
    }
    let server = pg::shared();
    let engine = Engine::Postgres {
        url: server.create_database("audit_chains"),
        password: server.password().to_string(),
    };
    let keys = test_support::hsm::shared();
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let logs: Vec<Arc<AuditLog>> = ["st-a", "st-b"]
        .iter()
        .zip(&dirs)
        .map(|(station, dir)| {
            let db = engine.station(station, LEASE).db().backend();
            assert_eq!(db, issuance::db::Backend::Postgres);
            let Engine::Postgres { url, password } = &engine else {
                unreachable!()
            };
            let db = Db::connect_postgres(
                url,
                issuance::db::PgOptions {
                    password: Some(password.clone()),
                    ..Default::default()
                },
            )
            .unwrap();
            Arc::new(AuditLog::open_on(dir.path(), db, station, keys.clone()).unwrap())
        })
        .collect();
    // Both stations append at once, two threads each: each chain stays one chain.
    std::thread::scope(|scope| {
        for log in &logs {
            for t in 0..2 {
                let log = Arc::clone(log);
                scope.spawn(move || {
                    for i in 0..15 {
                        log.append(
                            "delivered",
                            serde_json::json!({"serial": format!("S{t}-{i}")}),
                        )
                        .unwrap();
                    }
                });
            }
        }
    });
    let reports = verify_line(dirs[0].path(), logs[0].db(), "st-a", &keys).unwrap();
    let summary: Vec<_> = reports
        .iter()
        .map(|(s, r)| (s.as_str(), r.entries, r.is_intact()))
        .collect();
    assert_eq!(summary, [("st-a", 30, true), ("st-b", 30, true)]);
    // A status lookup finds an entry whichever station wrote it.
    assert_eq!(
        logs[1].find("delivered", "serial", "S1-7").unwrap().len(),
        2
    );
    // An entry edited in another station's chain, and one moved between chains, are caught.
    server.psql_in(
        "audit_chains",
        "UPDATE audit_entries SET details = replace(details, 'S0-3', 'S0-4')
         WHERE station = 'st-b' AND details LIKE '%S0-3%';",
    );
    let reports = verify_line(dirs[0].path(), logs[0].db(), "st-a", &keys).unwrap();
    assert!(reports[0].1.is_intact());
    assert!(
        matches!(reports[1].1.problem, Some(Problem::Edited { .. })),
        "{reports:?}"
    );
    // This station's chain cut at its end: its head record says so.
    server.psql_in(
        "audit_chains",
        "DELETE FROM audit_entries WHERE station = 'st-a' AND seq = 30;",
    );
    let reports = verify_line(dirs[0].path(), logs[0].db(), "st-a", &keys).unwrap();
    assert!(
        matches!(
            reports[0].1.problem,
            Some(Problem::Truncated { seq: 30, .. })
        ),
        "{reports:?}"
    );
}

#[test]
fn failed_delivery_attempts_count_for_the_whole_line() {
    use issuance::delivery::store::DeliveryStore;
    for engine in Engine::all("delivery_attempts") {
        let open = || match &engine {
            Engine::Sqlite(dir) => DeliveryStore::open(dir.path()).unwrap(),
            Engine::Postgres { url, password } => DeliveryStore::on(
                Db::connect_postgres(
                    url,
                    issuance::db::PgOptions {
                        password: Some(password.clone()),
                        ..Default::default()
                    },
                )
                .unwrap(),
            )
            .unwrap(),
        };
        let stations = [Arc::new(open()), Arc::new(open())];
        let counts: Vec<u32> = std::thread::scope(|scope| {
            let handles: Vec<_> = stations
                .iter()
                .flat_map(|s| [s, s])
                .map(|s| {
                    scope.spawn(move || {
                        (0..10)
                            .map(|_| s.add_failed_attempt("AB12").unwrap())
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        // 40 attempts at two stations: each got its own number, the last is 40.
        let mut sorted = counts.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=40).collect::<Vec<u32>>(), "{}", engine.name());
        assert_eq!(stations[1].card("AB12").unwrap().failed_attempts, 40);
        stations[0].mark_delivered("AB12").unwrap();
        assert!(stations[1].card("AB12").unwrap().delivered_ms.is_some());
    }
}
