//! Issue 17: a production line of several station processes (`idcardd batch resume` with a
//! station configuration naming one PostgreSQL journal, two simulated readers each) working
//! through one batch. Stations are SIGKILLed at random points and restarted or not; the
//! database is restarted mid-batch. Every record is personalized exactly once, journal and
//! cards agree, and the report names the station of each card.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use apdu::fcp::LifeCycle;
use issuance::batch::{self, SimHopper};
use issuance::journal::{CardState, Journal, JournalConfig, RecordState, Retention};
use issuance::pki::{self, DocumentSigner};
use serde_json::Value;
use test_support::perso::generated_record;
use test_support::{fixtures, pg};

/// The Document Signer of every line of this file, made once: SoftHSM's file store is not
/// safe against a process creating objects while another opens the token (SoftHSM #573), so
/// no test creates keys while another test's stations start.
fn pki_dir() -> &'static std::path::Path {
    static PKI: std::sync::OnceLock<(tempfile::TempDir, PathBuf)> = std::sync::OnceLock::new();
    &PKI.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki");
        pki::init(&pki, &test_support::hsm::shared()).unwrap();
        (dir, pki)
    })
    .1
}

/// The line: its database, the stations' folders and configurations.
struct Line {
    dir: tempfile::TempDir,
    url: String,
    password_file: PathBuf,
    lease_s: u64,
}

impl Line {
    fn new(server: &pg::PgServer, url: String, lease_s: u64) -> Line {
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("journal.password");
        std::fs::write(&password_file, format!("{}\n", server.password())).unwrap();
        Line {
            dir,
            url,
            password_file,
            lease_s,
        }
    }

    fn station_dir(&self, k: usize) -> PathBuf {
        self.dir.path().join(format!("st-{k}"))
    }

    /// Station `k`'s configuration: the line's journal, its id, the shared test token.
    fn config(&self, k: usize) -> PathBuf {
        let path = self.dir.path().join(format!("st-{k}.toml"));
        let text = format!(
            "journal = {:?}\njournal_password = {{ file = {:?} }}\nstation_id = \"st-{k}\"\n\
             [line]\nlease_s = {}\n{}",
            self.url,
            self.password_file.display().to_string(),
            self.lease_s,
            test_support::hsm::config_toml(test_support::hsm::SHARED)
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The line's journal, as the test sees it.
    fn journal(&self) -> Journal {
        JournalConfig {
            url: Some(self.url.clone()),
            password: Some(issuance::db::Credentials::File(self.password_file.clone())),
            station_id: Some("test".into()),
            ..JournalConfig::default()
        }
        .open(self.dir.path(), Retention::default())
        .unwrap()
    }

    /// Journals a batch of `good` generated records and 4 that fail data QC; returns its id.
    fn submit(&self, good: u64) -> String {
        let mut records: Vec<Value> = (0..good).map(generated_record).collect();
        for bad in [
            "national-bad-check-digit.json",
            "national-day-32.json",
            "national-too-young.json",
            "national-month-13.json",
        ] {
            records.push(fixtures::applicant(bad));
        }
        let manifest = self.dir.path().join("manifest.jsonl");
        let text: String = records.iter().map(|r| format!("{r}\n")).collect();
        std::fs::write(&manifest, text).unwrap();
        let lines = batch::read_manifest(&manifest).unwrap();
        batch::submit(&self.journal(), "line test", &[], &lines).unwrap()
    }

    /// Starts station `k` on batch `id` with two simulated readers; returns once it works on
    /// the batch (or has ended).
    ///
    /// All stations of these tests share one SoftHSM token in files, and SoftHSM skips a
    /// token whose files another process is rewriting at the moment it starts (SoftHSM #573's
    /// file store; a line's network HSM has no such files): a station that stops at once with
    /// "no token labelled" is started again.
    fn start(&self, k: usize, id: &str) -> Child {
        let log = self.dir.path().join(format!("st-{k}.log"));
        let read = || std::fs::read_to_string(&log).unwrap_or_default();
        for _ in 0..5 {
            let before = read().len();
            let mut child = Command::new(env!("CARGO_BIN_EXE_idcardd"))
                .args(["batch", "resume", id, "--readers", "sim:2", "--json"])
                .arg("--state-dir")
                .arg(self.station_dir(k))
                .arg("--config")
                .arg(self.config(k))
                .arg("--pki")
                .arg(pki_dir())
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(self.log(k))
                .spawn()
                .unwrap();
            loop {
                let said = read().get(before..).unwrap_or_default().to_string();
                if said.contains("resuming batch") {
                    return child;
                }
                if child.try_wait().unwrap().is_some() {
                    if said.contains("no token labelled") {
                        break;
                    }
                    return child;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("station st-{k} never found the token: {}", self.logs())
    }

    /// Station `k`'s log (every start appends to it).
    fn log(&self, k: usize) -> std::fs::File {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("st-{k}.log")))
            .unwrap()
    }

    fn logs(&self) -> String {
        (0..3)
            .filter_map(|k| {
                std::fs::read_to_string(self.dir.path().join(format!("st-{k}.log"))).ok()
            })
            .collect::<Vec<_>>()
            .join("\n---\n")
    }
}

fn sigkill(child: &mut Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    child.wait().unwrap();
}

/// Waits for every station to end on its own (the batch is done); their logs on failure, when
/// every station still running is killed (none outlives the test).
fn wait_all(line: &Line, mut children: Vec<Child>, deadline: Duration) {
    let until = Instant::now() + deadline;
    while let Some(child) = children.last_mut() {
        if let Some(status) = child.try_wait().unwrap() {
            children.pop();
            if !status.success() {
                children.iter_mut().for_each(sigkill);
                panic!("a station failed: {}", line.logs());
            }
            continue;
        }
        if Instant::now() > until {
            children.iter_mut().for_each(sigkill);
            panic!("a station did not finish: {}", line.logs());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A pseudo-random number from the clock (where a station is killed).
fn random(below: u64) -> u64 {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    (nanos / 7) % below
}

/// Everything the line made agrees: each good record personalized exactly once on a card of
/// its own, by a station the report names; every personalized card in any station's hopper is
/// the journal's and holds its record's DG1 under a valid EF.SOD; a card left in another
/// state is one the journal says was spoiled (a station died writing it and the line finished
/// the record on another card).
fn check_line(line: &Line, id: &str, stations: usize, good: u64) {
    let journal = line.journal();
    let c = journal.counts(id).unwrap();
    assert_eq!(
        (
            c.total,
            c.personalized,
            c.qc_failed,
            c.failed,
            c.pending,
            c.writing
        ),
        (good + 4, good, 4, 0, 0, 0)
    );
    let report = batch::report(&journal, id).unwrap();
    let personalized: Vec<_> = report
        .records
        .iter()
        .filter(|r| r.state == RecordState::Personalized)
        .collect();
    let codes: BTreeSet<_> = personalized.iter().map(|r| &r.tracking_code).collect();
    let serials: BTreeSet<_> = personalized.iter().map(|r| r.card_serial.clone()).collect();
    assert_eq!((codes.len() as u64, serials.len() as u64), (good, good));
    let names: BTreeSet<String> = (0..stations).map(|k| format!("st-{k}")).collect();
    let mut by_station: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &personalized {
        assert!(names.contains(&r.station), "{r:?}");
        *by_station.entry(r.station.as_str()).or_default() += 1;
        assert_eq!(
            journal.card_state(&r.card_serial).unwrap(),
            Some(CardState::Personalized)
        );
    }
    assert!(report
        .to_csv()
        .lines()
        .next()
        .unwrap()
        .ends_with(",station"));
    let keys = test_support::hsm::shared();
    let signer = DocumentSigner::load(pki_dir(), keys.clone()).unwrap();
    let mut on_cards = BTreeSet::new();
    for k in 0..stations {
        let hopper = SimHopper::in_state_dir(&line.station_dir(k), keys.clone());
        let Ok(entries) = std::fs::read_dir(&hopper.dir) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let serial = path.file_stem().unwrap().to_str().unwrap().to_string();
            let (lcs, files) = test_support::perso::read_personalized(&path);
            let row = personalized.iter().find(|r| r.card_serial == serial);
            match (lcs, row) {
                (LifeCycle::Creation, None) => continue, // a blank taken when killed
                (LifeCycle::Deactivated, Some(row)) => {
                    let (dg1, sod) = files.unwrap();
                    test_support::perso::check_generated_card(
                        &dg1,
                        &sod,
                        &row.tracking_code,
                        &row.document_number,
                        &signer,
                    );
                    assert_eq!(
                        row.station,
                        format!("st-{k}"),
                        "card {serial} made elsewhere"
                    );
                    on_cards.insert(serial);
                }
                (other, None) => assert_eq!(
                    journal.card_state(&serial).unwrap(),
                    Some(CardState::Spoiled),
                    "card {serial} is {other:?} in st-{k}'s hopper and not the journal's"
                ),
                (other, Some(_)) => panic!("card {serial} of the journal is {other:?}"),
            }
        }
    }
    assert_eq!(on_cards, serials);
    // Every station's audit chain in the line's database verifies, each station's own against
    // its head record (a station killed mid-append leaves its head behind: harmless).
    for k in 0..stations {
        let out = test_support::process::run(
            env!("CARGO_BIN_EXE_idcardd"),
            [
                "audit".to_string(),
                "verify".into(),
                "--json".into(),
                "--state-dir".into(),
                line.station_dir(k).display().to_string(),
                "--config".into(),
                line.config(k).display().to_string(),
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "st-{k}: {text} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let reports: Value = serde_json::from_str(&text).unwrap();
        assert!(
            reports
                .as_array()
                .unwrap()
                .iter()
                .all(|r| r["report"]["problem"].is_null()),
            "{reports}"
        );
    }
}

#[test]
fn three_stations_with_random_sigkills_personalize_300_records_exactly_once() {
    if !pg::skip_unless_available() {
        return;
    }
    let server = pg::shared();
    let line = Line::new(server, server.create_database("line_sigkill"), 3);
    let good = 296;
    let id = line.submit(good);
    let journal = line.journal();
    let mut children: Vec<Option<Child>> = (0..3).map(|k| Some(line.start(k, &id))).collect();
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(600);
    // The line makes 300 cards in seconds: the kill points come early, and a point is taken
    // when a card is being written (most of the time) or at the latest 100 ms after it.
    for (n, at) in [10u64, 40, 80, 120].into_iter().enumerate() {
        let mut reached: Option<Instant> = None;
        loop {
            let c = journal.counts(&id).unwrap();
            if c.pending + c.writing == 0 {
                break;
            }
            if c.personalized >= at {
                let since = *reached.get_or_insert_with(Instant::now);
                if c.writing > 0 || since.elapsed() > Duration::from_millis(100) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "the line made no progress");
            std::thread::sleep(Duration::from_millis(2 + random(10)));
        }
        let alive: Vec<usize> = (0..3)
            .filter(|k| {
                children[*k]
                    .as_mut()
                    .is_some_and(|c| c.try_wait().unwrap().is_none())
            })
            .collect();
        if alive.len() < 2 {
            break;
        }
        let k = alive[random(alive.len() as u64) as usize];
        sigkill(children[k].as_mut().unwrap());
        kills += 1;
        // Every other kill, the station comes back (a PC rebooted); otherwise the line goes on
        // without it until the end.
        children[k] = (n % 2 == 0).then(|| line.start(k, &id));
    }
    assert!(
        kills >= 3,
        "{kills} kills: the batch finished before it could be killed ({:?}); {}",
        journal.counts(&id).unwrap(),
        line.logs()
    );
    // The stations left dead come back for the end (or not: the others finish either way).
    wait_all(
        &line,
        children.into_iter().flatten().collect(),
        Duration::from_secs(600),
    );
    check_line(&line, &id, 3, good);
}

#[test]
fn two_stations_pause_while_the_database_restarts_then_finish_the_batch() {
    if !pg::skip_unless_available() {
        return;
    }
    // A server of its own: it is stopped mid-batch.
    let server = pg::PgServer::start();
    let line = Line::new(&server, server.url(), 3);
    let good = 96;
    let id = line.submit(good);
    let journal = line.journal();
    let mut children: Vec<Child> = (0..2).map(|k| line.start(k, &id)).collect();
    let deadline = Instant::now() + Duration::from_secs(300);
    // Until both stations work (each has made a card) and the line has made 20.
    loop {
        let rows = journal.records(&id).unwrap();
        let made = |k: usize| {
            rows.iter().any(|r| {
                r.state == RecordState::Personalized
                    && r.station.as_deref() == Some(&format!("st-{k}"))
            })
        };
        let personalized = rows
            .iter()
            .filter(|r| r.state == RecordState::Personalized)
            .count();
        if made(0) && made(1) && personalized >= 20 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the line made no progress: {}",
            line.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(journal);
    server.stop();
    // Longer than a lease: nobody can take anything over while the database is away.
    std::thread::sleep(Duration::from_secs(4));
    for child in &mut children {
        assert!(
            child.try_wait().unwrap().is_none(),
            "a station gave up while the database was away: {}",
            line.logs()
        );
    }
    server.start_again();
    wait_all(&line, children, Duration::from_secs(300));
    check_line(&line, &id, 2, good);
}

/// Calls an API method of an in-process station.
fn api(svc: &idcardd::service::Service, method: &str, params: Value) -> Value {
    idcardd::api::dispatch(svc, method, idcardd::api::Call::json(params))
        .unwrap_or_else(|e| panic!("{method}: {e:?}"))
        .result
}

#[test]
fn every_station_of_the_line_answers_the_same_status_and_report() {
    if !pg::skip_unless_available() {
        return;
    }
    let server = pg::shared();
    let line = Line::new(server, server.create_database("one_view"), 3);
    let stations: Vec<idcardd::service::Service> = (0..2)
        .map(|k| {
            let mut config =
                idcardd::service::ServiceConfig::new(line.station_dir(k), vec!["sim:0".into()])
                    .with_keys(test_support::hsm::shared_config());
            config.pki_dir = Some(pki_dir().to_path_buf());
            config.journal = JournalConfig {
                url: Some(line.url.clone()),
                password: Some(issuance::db::Credentials::File(line.password_file.clone())),
                station_id: Some(format!("st-{k}")),
                join_batches: Some(false),
                ..JournalConfig::default()
            };
            idcardd::service::Service::open(config).unwrap()
        })
        .collect();
    // A card made at station 0...
    let record = generated_record(7);
    let made = api(
        &stations[0],
        "card.personalize",
        serde_json::json!({"reader": "sim:0", "record": record}),
    );
    // ... is known the same way at station 1, and neither station makes it again.
    let ask = |method: &str, params: Value| -> Vec<Value> {
        stations
            .iter()
            .map(|s| api(s, method, params.clone()))
            .collect()
    };
    let lookup = ask(
        "status.lookup",
        serde_json::json!({"tracking_code": record["tracking_code"]}),
    );
    assert_eq!(lookup[0], lookup[1]);
    assert_eq!(lookup[1]["matches"][0]["status"], "produced", "{lookup:?}");
    let document = ask(
        "document.status",
        serde_json::json!({"document_number": made["document_number"]}),
    );
    assert_eq!(document[0], document[1]);
    let status = ask(
        "batch.status",
        serde_json::json!({"batch_id": made["batch_id"]}),
    );
    assert_eq!(status[0], status[1]);
    let report = ask(
        "batch.report",
        serde_json::json!({"batch_id": made["batch_id"]}),
    );
    assert_eq!(report[0], report[1]);
    assert_eq!(report[1]["records"][0]["station"], "st-0", "{report:?}");
    let again = idcardd::api::dispatch(
        &stations[1],
        "card.personalize",
        idcardd::api::Call::json(serde_json::json!({"reader": "sim:0", "record": record})),
    )
    .unwrap_err();
    assert_eq!(again.code, idcardd::api::ErrorCode::AlreadyPersonalized);
    // Health names each station and its shared journal.
    let health = ask("system.health", serde_json::json!({}));
    assert_eq!(health[0]["journal"]["backend"], "postgres");
    assert_eq!(health[1]["journal"]["station_id"], "st-1");
    assert_eq!(health[1]["journal"]["reachable"], true);
}

#[test]
fn a_station_refuses_a_line_journal_migrated_by_a_newer_release() {
    if !pg::skip_unless_available() {
        return;
    }
    let server = pg::shared();
    let line = Line::new(server, server.create_database("newer_line"), 3);
    drop(line.journal());
    server.psql_in(
        "newer_line",
        &format!(
            "UPDATE schema_version SET version = {};",
            issuance::journal::SCHEMA_VERSION + 1
        ),
    );
    let out = test_support::process::run(
        env!("CARGO_BIN_EXE_idcardd"),
        [
            "batch".to_string(),
            "status".into(),
            "--state-dir".into(),
            line.station_dir(0).display().to_string(),
            "--config".into(),
            line.config(0).display().to_string(),
        ],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("newer than this idcardd understands"), "{err}");
}
