//! Batch personalization on simulated readers: QC rejections that do not stop the batch,
//! duplicates refused, reports; and `idcardd batch run` killed with SIGKILL at several points of
//! a 200-card batch, then `idcardd batch resume`: journal and cards agree, nothing lost or
//! doubled.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use apdu::fcp::LifeCycle;
use issuance::batch::{self, Progress, Runner, SimHopper};
use issuance::journal::BatchState;
use issuance::journal::{Journal, RecordState};
use issuance::personalize::PinMailer;
use issuance::pki::{self, DocumentSigner};
use issuance::profile::ProfileSet;
use serde_json::Value;
use test_support::perso::generated_record;
use test_support::pki::signer_in;
use test_support::{fixtures, process};

fn write_manifest(dir: &Path, records: &[Value]) -> PathBuf {
    let path = dir.join("manifest.jsonl");
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_batch_with_qc_failures_and_duplicates_runs_to_the_end_with_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let signer = signer_in(&state.join("pki"));
    let profiles = ProfileSet::builtin().unwrap();
    let journal = Journal::open_in(&state).unwrap();

    let mut records: Vec<Value> = (0..6).map(generated_record).collect();
    records.push(fixtures::applicant("national-bad-check-digit.json"));
    records.push(fixtures::applicant("national-many-problems.json"));
    let mut dup_fingers = generated_record(50);
    dup_fingers["fingers"]["left_index"] = dup_fingers["fingers"]["right_index"].clone();
    records.push(dup_fingers);
    records.push(generated_record(2)); // same tracking code as record 2
    let manifest = write_manifest(dir.path(), &records);
    let lines = batch::read_manifest(&manifest).unwrap();
    let mut lines = lines;
    lines.push(("{not json".into(), String::new()));
    let readers = vec!["sim:0".to_string(), "sim:1".to_string()];
    let id = batch::submit(&journal, "test", &readers, &lines).unwrap();

    // The issuer's masters in a SoftHSM token: the hopper's blank cards are keyed from it and
    // personalization derives each card's key there.
    let keys = test_support::hsm::shared();
    let hopper = SimHopper::in_state_dir(&state, keys.clone());
    let audit = Mutex::new(Vec::new());
    let audit_fn =
        |kind: &str, details: Value| audit.lock().unwrap().push((kind.to_string(), details));
    let runner = Runner {
        journal: &journal,
        state_dir: state.clone(),
        profiles: &profiles,
        signer: &signer,
        keys: &keys,
        source: &hopper,
        audit: Some(&audit_fn),
        template_extractor: None,
    };
    let events = Mutex::new(Vec::new());
    let progress = |p: &Progress| events.lock().unwrap().push(p.clone());
    let summary = runner
        .run(&id, &readers, &AtomicBool::new(false), &progress)
        .unwrap();
    let c = &summary.counts;
    assert_eq!(
        (c.total, c.personalized, c.qc_failed, c.failed, c.pending),
        (11, 6, 4, 1, 0)
    );
    assert_eq!(summary.personalized_now, 6);
    // One progress event per record a worker handled; the duplicate tracking code is failed
    // inside the claim and reported by the journal only.
    assert_eq!(events.lock().unwrap().len(), 10);
    assert_eq!(journal.batch(&id).unwrap().state, BatchState::Finished);
    let audit = audit.lock().unwrap();
    assert_eq!(audit.iter().filter(|(k, _)| k == "personalized").count(), 6);
    // Audit details carry identifiers only.
    assert!(audit.iter().all(|(_, d)| d.get("name").is_none()));

    let report = batch::report(&journal, &id).unwrap();
    let by_code: BTreeMap<&str, &batch::ReportLine> = report
        .records
        .iter()
        .map(|r| (r.tracking_code.as_str(), r))
        .collect();
    // national-many-problems has no tracking code at all (one of its problems).
    let many = report
        .records
        .iter()
        .find(|r| r.tracking_code.is_empty() && r.reason.contains("national_code"))
        .unwrap();
    assert_eq!(many.state, RecordState::QcFailed, "{many:?}");
    assert!(
        many.reason.matches(';').count() >= 2,
        "all problems at once: {}",
        many.reason
    );
    let dup = report
        .records
        .iter()
        .find(|r| r.tracking_code == "GEN-0002" && r.state == RecordState::Failed)
        .expect("the second GEN-0002 is refused");
    assert!(dup.reason.contains("duplicate"), "{}", dup.reason);
    assert!(by_code["GEN-0050"].reason.contains("duplicate_finger"));
    let (json, csv) = batch::write_report(&state, &report).unwrap();
    let csv = std::fs::read_to_string(csv).unwrap();
    assert_eq!(csv.lines().count(), 12);
    assert!(csv.starts_with("tracking_code,state,"));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    assert_eq!(json["counts"]["personalized"], 6);
    // No secret reaches the report.
    let mailer = state.join(batch::PIN_MAILER_FILE);
    for r in report
        .records
        .iter()
        .filter(|r| r.state == RecordState::Personalized)
    {
        let secrets = PinMailer::lookup(&mailer, &keys, &r.card_serial)
            .unwrap()
            .unwrap();
        assert!(!csv.contains(secrets.puk.as_str()));
        // The card holds the record, passive authentication passes.
        let (lcs, files) =
            test_support::perso::read_personalized(&hopper.card_path(&r.card_serial));
        assert_eq!(lcs, LifeCycle::Deactivated);
        let (dg1, sod) = files.unwrap();
        let mrz = issuance::lds::mrz::parse_dg1(&dg1).unwrap();
        assert_eq!(mrz.document_number, r.document_number);
        pki::verify_sod(
            &sod,
            &[(1, &dg1)],
            std::slice::from_ref(signer.csca()),
            SystemTime::now(),
        )
        .unwrap();
    }

    // The same records again in a new batch: every personalized one is a duplicate.
    let again = batch::submit(&journal, "test", &readers, &lines).unwrap();
    let summary = runner
        .run(&again, &readers, &AtomicBool::new(false), &|_| {})
        .unwrap();
    assert_eq!(summary.counts.personalized, 0);
    assert_eq!(summary.personalized_now, 0);
    // Status lookup by tracking code finds the personalized record and its card.
    let rows = journal.lookup_tracking("GEN-0001").unwrap();
    assert!(rows.iter().any(|r| r.state == RecordState::Personalized));
}

fn spawn_idcardd(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_idcardd"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the journal shows at least `personalized` cards and one card being written,
/// then kills the process with SIGKILL. Returns false if the process ended first.
fn kill_at(child: &mut Child, state: &Path, personalized: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(120);
    let journal = Journal::open_in(state).unwrap();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        if let Some(b) = journal.batches().unwrap_or_default().first() {
            let c = journal.counts(&b.id).unwrap_or_default();
            if c.personalized >= personalized && c.writing > 0 {
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(child.id() as i32),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .unwrap();
                child.wait().unwrap();
                return true;
            }
        }
        assert!(Instant::now() < deadline, "batch made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigkill_at_several_points_of_a_200_card_batch_then_resume_loses_and_doubles_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    // The batch processes and this test use one token: the shared test token, named to them
    // by a daemon configuration file.
    let keys = test_support::hsm::shared();
    let config = dir.path().join("idcardd.toml");
    std::fs::write(
        &config,
        test_support::hsm::config_toml(test_support::hsm::SHARED),
    )
    .unwrap();
    pki::init(&state.join("pki"), &keys).unwrap();
    let mut records: Vec<Value> = (0..196).map(generated_record).collect();
    for bad in [
        "national-bad-check-digit.json",
        "national-day-32.json",
        "national-too-young.json",
        "national-month-13.json",
    ] {
        records.push(fixtures::applicant(bad));
    }
    let manifest = write_manifest(dir.path(), &records);
    let state_arg = state.display().to_string();
    let config_arg = config.display().to_string();
    let common = [
        "--state-dir",
        state_arg.as_str(),
        "--config",
        config_arg.as_str(),
    ];

    let mut child = spawn_idcardd(
        &[
            &[
                "batch",
                "run",
                manifest.to_str().unwrap(),
                "--readers",
                "sim:4",
            ][..],
            &common[..],
        ]
        .concat(),
    );
    let mut kills = 0;
    if kill_at(&mut child, &state, 20) {
        kills += 1;
    }
    for at in [80, 140] {
        let mut child = spawn_idcardd(&[&["batch", "resume"][..], &common[..]].concat());
        if kill_at(&mut child, &state, at) {
            kills += 1;
        }
    }
    assert!(kills >= 2, "the batch finished before it could be killed");
    let out = process::run(
        env!("CARGO_BIN_EXE_idcardd"),
        [&["batch", "resume", "--json"][..], &common[..]].concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let journal = Journal::open_in(&state).unwrap();
    let id = journal.batches().unwrap()[0].id.clone();
    let c = journal.counts(&id).unwrap();
    assert_eq!(
        (
            c.total,
            c.personalized,
            c.qc_failed,
            c.failed,
            c.pending,
            c.writing
        ),
        (200, 196, 4, 0, 0, 0)
    );
    let rows = journal.records(&id).unwrap();
    let personalized: Vec<_> = rows
        .iter()
        .filter(|r| r.state == RecordState::Personalized)
        .collect();
    let codes: BTreeSet<_> = personalized.iter().map(|r| &r.tracking_code).collect();
    let serials: BTreeSet<_> = personalized
        .iter()
        .map(|r| r.card_serial.clone().unwrap())
        .collect();
    assert_eq!((codes.len(), serials.len()), (196, 196));

    // Every card in the hopper: personalized ones are exactly the journal's, each holding its
    // record's DG1; no card was left half-written.
    let hopper = SimHopper::in_state_dir(&state, keys.clone());
    let mut on_cards = BTreeSet::new();
    let signer = DocumentSigner::load(&state.join("pki"), keys.clone()).unwrap();
    for entry in std::fs::read_dir(&hopper.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let serial = path.file_stem().unwrap().to_str().unwrap().to_string();
        let (lcs, files) = test_support::perso::read_personalized(&path);
        match lcs {
            LifeCycle::Creation => continue, // a blank taken from the hopper when killed
            LifeCycle::Deactivated => {}
            other => panic!("card {serial} left in {other:?}"),
        }
        let row = personalized
            .iter()
            .find(|r| r.card_serial.as_deref() == Some(serial.as_str()))
            .unwrap_or_else(|| panic!("card {serial} is personalized but not in the journal"));
        let (dg1, sod) = files.unwrap();
        test_support::perso::check_generated_card(
            &dg1,
            &sod,
            &row.tracking_code,
            row.document_number.as_deref().unwrap_or_default(),
            &signer,
        );
        on_cards.insert(serial);
    }
    assert_eq!(on_cards, serials);
    // Every card's transport PIN is in the mailer.
    let mailer = state.join(batch::PIN_MAILER_FILE);
    for s in &serials {
        assert!(
            PinMailer::lookup(&mailer, &keys, s).unwrap().is_some(),
            "{s}"
        );
    }
}

/// Calls an API method in-process.
fn api(
    svc: &idcardd::service::Service,
    method: &str,
    params: Value,
) -> Result<Value, idcardd::api::ApiError> {
    idcardd::api::dispatch(svc, method, idcardd::api::Call::json(params)).map(|r| r.result)
}

#[test]
fn api_personalizes_one_card_runs_a_batch_and_answers_status_lookups() {
    use idcardd::api::ErrorCode;
    use issuance::journal::CardState;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().to_path_buf();
    pki::init(&state.join("pki"), &test_support::hsm::shared()).unwrap();
    let mut config =
        idcardd::service::ServiceConfig::new(state.clone(), vec!["sim:0".into(), "sim:1".into()])
            .with_keys(test_support::hsm::shared_config());
    config.pki_dir = Some(state.join("pki"));
    let svc = idcardd::service::Service::open(config).unwrap();

    // One card on sim:0.
    let record = generated_record(1);
    let r = api(
        &svc,
        "card.personalize",
        serde_json::json!({"reader": "sim:0", "record": record}),
    )
    .unwrap();
    assert_eq!(r["found"], "fresh");
    assert_eq!(r["apdus"], 28);
    let serial = r["serial"].as_str().unwrap().to_string();
    let info = api(&svc, "card.info", serde_json::json!({"reader": "sim:0"})).unwrap();
    assert_eq!(info["serial"], serial.as_str());
    // Never twice.
    let again = api(
        &svc,
        "card.personalize",
        serde_json::json!({"reader": "sim:1", "record": record}),
    )
    .unwrap_err();
    assert_eq!(again.code, ErrorCode::AlreadyPersonalized, "{again:?}");
    // QC problems come back all at once with their field paths.
    let mut bad = generated_record(2);
    bad["national_code"] = "1234567890".into();
    bad["birth_date"] = "1370-13-01".into();
    let err = api(
        &svc,
        "card.personalize",
        serde_json::json!({"reader": "sim:1", "record": bad}),
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::QcFailed);
    let problems = err.data.unwrap()["problems"].clone();
    let paths: Vec<&str> = problems
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["path"].as_str().unwrap())
        .collect();
    assert!(
        paths.contains(&"national_code") && paths.contains(&"birth_date"),
        "{paths:?}"
    );

    // A batch in the background, with progress events.
    let mut events = svc.events.subscribe();
    let records: Vec<Value> = (10..14).map(generated_record).collect();
    let r = api(
        &svc,
        "batch.submit",
        serde_json::json!({"records": records}),
    )
    .unwrap();
    let id = r["batch_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = api(&svc, "batch.status", serde_json::json!({"batch_id": id})).unwrap();
        if s["state"] == "finished" && s["running"] == false {
            assert_eq!(s["counts"]["personalized"], 4);
            break;
        }
        assert!(Instant::now() < deadline, "batch did not finish: {s}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut topics = Vec::new();
    while let Ok(e) = events.try_recv() {
        topics.push(e.topic);
    }
    assert_eq!(
        topics.iter().filter(|t| *t == "card.personalized").count(),
        4
    );
    assert!(topics.iter().any(|t| t == "batch.progress"));
    let csv = api(
        &svc,
        "batch.report",
        serde_json::json!({"batch_id": id, "format": "csv"}),
    )
    .unwrap();
    assert_eq!(csv["csv"].as_str().unwrap().lines().count(), 5);
    let missing = api(
        &svc,
        "batch.status",
        serde_json::json!({"batch_id": "nope"}),
    )
    .unwrap_err();
    assert_eq!(missing.code, ErrorCode::NotFound);

    // Status lookups: by tracking code, by identity, after delivery.
    let by_code = api(
        &svc,
        "status.lookup",
        serde_json::json!({"tracking_code": "GEN-0001"}),
    )
    .unwrap();
    assert_eq!(by_code["matches"][0]["status"], "produced");
    let rejected = api(
        &svc,
        "status.lookup",
        serde_json::json!({"tracking_code": "GEN-0002"}),
    )
    .unwrap();
    assert_eq!(rejected["matches"][0]["status"], "rejected");
    let r10 = generated_record(10);
    let by_id = api(
        &svc,
        "status.lookup",
        serde_json::json!({
            "national_code": r10["national_code"],
            "birth_certificate_serial": r10["birth_certificate_serial"],
            "birth_date": r10["birth_date"],
        }),
    )
    .unwrap();
    assert_eq!(by_id["matches"][0]["tracking_code"], "GEN-0010");
    svc.batches
        .journal()
        .set_card_state(&serial, CardState::Delivered, None)
        .unwrap();
    let delivered = api(
        &svc,
        "status.lookup",
        serde_json::json!({"tracking_code": "GEN-0001"}),
    )
    .unwrap();
    assert_eq!(delivered["matches"][0]["status"], "delivered");
    let none = api(
        &svc,
        "status.lookup",
        serde_json::json!({"tracking_code": "X"}),
    )
    .unwrap_err();
    assert_eq!(none.code, ErrorCode::NotFound);
    let bad = api(
        &svc,
        "status.lookup",
        serde_json::json!({"national_code": "1"}),
    )
    .unwrap_err();
    assert_eq!(bad.code, ErrorCode::InvalidParams);
}
