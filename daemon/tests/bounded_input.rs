//! Issue 18, the request-bounding part: bad input gets a clear structured error, nothing is
//! lost, nothing panics. Every method through `idcardd::api::dispatch` on a `Service` over
//! simulated readers (see `delivery.rs` for the office set-up).
//!
//! 1. `delivery.verify` checks counts, sizes, frame references and the session before any
//!    copy or decode; `matcher.extract`/`matcher.compare`/`batch.submit` check theirs.
//! 2. Records from the socket may not name files (`path_not_allowed`, nothing read).
//! 3. Image bombs (a TIFF with a duplicated size tag, a huge TIFF) are refused quickly, over
//!    the API and by `idcardd extract`.
//! 4. Client strings (session ids, reader names, batch ids, tracking codes, method and field
//!    names) are bounded before they reach errors, replies or the audit trail.
//! 5. Kiosk replies of `delivery.verify` say match or no match, not the score.

use std::time::{Duration, Instant};

use idcardd::api::{dispatch, ApiError, Call, ErrorCode};
use idcardd::service::{Service, ServiceConfig};
use issuance::pki::DocumentSigner;
use serde_json::{json, Value};
use test_support::perso::{national_plan, personalize_sim};
use test_support::pki::signer_in;
use test_support::{fixtures, images, paths};

/// A client's 4 MB string.
fn huge() -> String {
    "A".repeat(4 << 20)
}

/// Everything a refusal sends back (message and data), as JSON text.
fn reply_len(e: &ApiError) -> usize {
    e.to_json().to_string().len()
}

struct Office {
    dir: tempfile::TempDir,
    svc: Service,
    signer: DocumentSigner,
}

fn office() -> Office {
    let dir = tempfile::tempdir().unwrap();
    let signer = signer_in(&dir.path().join("pki"));
    let mut config = ServiceConfig::new(
        dir.path().join("state"),
        vec!["sim:0".into(), "sim:1".into()],
    )
    .with_keys(test_support::hsm::shared_config());
    config.trust = vec![dir.path().join("pki/csca.pem")];
    config.pki_dir = Some(dir.path().join("pki"));
    let svc = Service::open(config).unwrap();
    Office { dir, svc, signer }
}

impl Office {
    fn call(&self, method: &str, params: Value) -> Result<Value, ApiError> {
        dispatch(&self.svc, method, Call::json(params)).map(|r| r.result)
    }

    fn call_with(
        &self,
        method: &str,
        params: Value,
        frames: Vec<Vec<u8>>,
    ) -> Result<Value, ApiError> {
        dispatch(&self.svc, method, Call { params, frames }).map(|r| r.result)
    }

    /// Personalizes `sim:0` from fixture `national-valid-1` and opens a delivery session.
    fn session(&self) -> String {
        let mailer = self.svc.config.state_dir.join("pin-mailer.jsonl");
        personalize_sim(
            &self.svc.config.sim_dir,
            0,
            &national_plan(&self.signer),
            &mailer,
        );
        self.call("delivery.begin", json!({"reader": "sim:0"}))
            .unwrap()["session"]
            .as_str()
            .unwrap()
            .to_string()
    }

    fn audit_bytes(&self) -> usize {
        self.svc
            .audit
            .entries()
            .unwrap()
            .iter()
            .map(|e| e.details.len())
            .sum()
    }
}

fn refused(r: Result<Value, ApiError>) -> ApiError {
    match r {
        Ok(v) => panic!("expected a refusal, got {v}"),
        Err(e) => e,
    }
}

// ---- 1. amplification ----

#[test]
fn issue_18_verify_refuses_3000_scans_of_one_frame_before_copying_anything() {
    let office = office();
    let frame = vec![0u8; 1 << 20];
    let scans: Vec<Value> = (0..3000)
        .map(|_| json!({"finger": 2, "frame": 0}))
        .collect();
    let started = Instant::now();
    let e = refused(office.call_with(
        "delivery.verify",
        json!({"session": "0".repeat(32), "scans": scans}),
        vec![frame.clone()],
    ));
    assert_eq!(e.code, ErrorCode::InvalidParams, "{e:?}");
    assert!(e.message.contains("at most 10"), "{}", e.message);
    assert!(started.elapsed() < Duration::from_secs(2));

    // Each frame once; frames that exist; scans within the size limit.
    let twice = refused(office.call_with(
        "delivery.verify",
        json!({"session": "0".repeat(32), "scans": [
            {"finger": 2, "frame": 0}, {"finger": 7, "frame": 0}]}),
        vec![frame.clone()],
    ));
    assert_eq!(twice.code, ErrorCode::InvalidParams);
    assert!(
        twice.message.contains("more than one scan"),
        "{}",
        twice.message
    );
    let missing = refused(office.call_with(
        "delivery.verify",
        json!({"session": "0".repeat(32), "finger": 2, "frame": 5}),
        vec![frame],
    ));
    assert_eq!(missing.code, ErrorCode::InvalidParams);
    let big = vec![0u8; issuance::scan::MAX_SCAN_BYTES + 1];
    let too_large = refused(office.call_with(
        "delivery.verify",
        json!({"session": "0".repeat(32), "finger": 2}),
        vec![big],
    ));
    assert_eq!(too_large.code, ErrorCode::TooLarge);
    // Within bounds, but no such session: refused before the (garbage) scan is decoded.
    let no_session = refused(office.call_with(
        "delivery.verify",
        json!({"session": "0".repeat(32), "finger": 2}),
        vec![b"not an image".to_vec()],
    ));
    assert_eq!(no_session.code, ErrorCode::SessionUnknown, "{no_session:?}");
}

#[test]
fn issue_18_matcher_and_batch_requests_are_bounded_before_decoding() {
    let office = office();
    let big = vec![0u8; issuance::scan::MAX_SCAN_BYTES + 1];
    let e = refused(office.call_with("matcher.extract", json!({}), vec![big]));
    assert_eq!(e.code, ErrorCode::TooLarge);
    let b64 = "A".repeat(issuance::scan::MAX_SCAN_BYTES / 3 * 4 + 8);
    let e = refused(office.call("matcher.extract", json!({"scan_b64": b64})));
    assert_eq!(e.code, ErrorCode::TooLarge);

    let many = vec![vec![1u8; 10]; 17];
    let e = refused(office.call_with("matcher.compare", json!({}), many));
    assert_eq!(e.code, ErrorCode::InvalidParams);
    let e = refused(office.call(
        "matcher.compare",
        json!({"probe_b64": "AAAA", "candidates_b64": vec!["AAAA"; 16]}),
    ));
    assert_eq!(e.code, ErrorCode::InvalidParams);
    let e = refused(office.call_with(
        "matcher.compare",
        json!({}),
        vec![vec![0u8; 100], vec![0u8; 1 << 20]],
    ));
    assert_eq!(e.code, ErrorCode::TooLarge);

    let records = vec![json!({}); idcardd::api::batch_submit::MAX_BATCH_RECORDS + 1];
    let e = refused(office.call("batch.submit", json!({"records": records})));
    assert_eq!(e.code, ErrorCode::TooLarge);
    let record = json!({"address": "x".repeat(idcardd::api::batch_submit::MAX_RECORD_BYTES)});
    let e = refused(office.call("batch.submit", json!({"records": [record]})));
    assert_eq!(e.code, ErrorCode::TooLarge);
    let e = refused(office.call(
        "card.personalize",
        json!({"reader": "sim:0", "record": record}),
    ));
    assert_eq!(e.code, ErrorCode::TooLarge);
}

// ---- 2. no host paths over the socket ----

/// Fixture `national-valid-1` with the given face and finger blobs.
fn record_with(tracking: &str, face: Value, finger: Value) -> Value {
    let mut r = fixtures::applicant("national-valid-1.json");
    r["tracking_code"] = json!(tracking);
    r["face"] = face;
    r["fingers"] = json!({"right_index": {"scan": finger, "dpi": 500},
                          "left_index": {"scan": finger, "dpi": 500}});
    r
}

fn problems(e: &ApiError) -> Vec<(String, String)> {
    e.data.as_ref().unwrap()["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["path"].as_str().unwrap().to_string(),
                p["code"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn issue_18_records_over_the_socket_may_not_name_files() {
    let office = office();
    let fifo = office.dir.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    for (i, path) in [
        fifo.display().to_string(),
        "/dev/zero".into(),
        "/etc/passwd".into(),
        "/no/such/file".into(),
        "../fingerprints/1_1.png".into(),
    ]
    .iter()
    .enumerate()
    {
        let record = record_with(
            &format!("PATH-{i}"),
            json!({"path": path}),
            json!({"path": path}),
        );
        let e = refused(office.call(
            "card.personalize",
            json!({"reader": "sim:1", "record": record}),
        ));
        assert_eq!(e.code, ErrorCode::QcFailed, "{path}: {e:?}");
        let got = problems(&e);
        for field in [
            "face.path",
            "fingers.right_index.scan.path",
            "fingers.left_index.scan.path",
        ] {
            assert!(
                got.contains(&(field.to_string(), "path_not_allowed".to_string())),
                "{path}: {got:?}"
            );
        }
        // Nothing about the file itself: not whether it exists, nor its size.
        let text = e.to_json().to_string();
        assert!(
            !text.contains("No such file") && !text.contains("bytes"),
            "{text}"
        );
    }
    // Neither the FIFO nor /dev/zero was opened (it would block, or read forever).
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn issue_18_batch_submit_records_naming_files_fail_qc_with_path_not_allowed() {
    let office = office();
    let record = record_with(
        "BPATH-1",
        json!({"path": "/dev/zero"}),
        json!({"path": "/etc/passwd"}),
    );
    let r = office
        .call(
            "batch.submit",
            json!({"records": [record], "readers": ["sim:1"]}),
        )
        .unwrap();
    let id = r["batch_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = office
            .call("batch.status", json!({"batch_id": id}))
            .unwrap();
        if status["state"] == "finished" {
            break;
        }
        assert!(Instant::now() < deadline, "batch did not finish: {status}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = office
        .call("batch.report", json!({"batch_id": id}))
        .unwrap();
    let text = report.to_string();
    assert!(text.contains("path_not_allowed"), "{text}");
    assert!(text.contains("qc_failed"), "{text}");
}

// ---- 3. image bombs ----

#[test]
fn issue_18_image_bombs_are_refused_quickly_and_fixtures_still_decode() {
    let office = office();
    // libtiff reads the first size (30 000 x 30 000), a last-wins reader the second.
    let bomb = images::with_declared_size(
        images::tiff(100, 70, &[(256, 100), (257, 70)], 0),
        30_000,
        30_000,
    );
    assert!(bomb.len() < 10 * 1024);
    let started = Instant::now();
    let e = refused(office.call_with("matcher.extract", json!({}), vec![bomb.clone()]));
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(e.code, ErrorCode::InvalidParams);
    assert!(e.message.contains("appears twice"), "{}", e.message);
    let huge = images::with_declared_size(images::tiff(100, 70, &[], 0), 30_000, 30_000);
    let e = refused(office.call_with("matcher.extract", json!({}), vec![huge]));
    assert_eq!(e.code, ErrorCode::InvalidParams);
    assert!(
        e.message.contains("larger than the maximum"),
        "{}",
        e.message
    );
    // A sound hand-made TIFF and the fixture scans decode.
    let small = images::tiff(100, 70, &[], 0);
    let e = refused(office.call_with("matcher.extract", json!({}), vec![small]));
    assert_eq!(
        e.code,
        ErrorCode::NoFingerprint,
        "decoded, then no print: {e:?}"
    );
    let ok = office
        .call_with(
            "matcher.extract",
            json!({}),
            vec![fixtures::scan("1_1.png")],
        )
        .unwrap();
    assert!(ok["minutiae"].as_u64().unwrap() > 0);

    // The same through `idcardd extract`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bomb.tif");
    std::fs::write(&file, &bomb).unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_idcardd"))
        .arg("extract")
        .arg(&file)
        .output()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("appears twice"), "{stderr}");
    let good = paths::fingerprints().join("1_1.png");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_idcardd"))
        .arg("extract")
        .arg(&good)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ---- 4. client strings bounded ----

#[test]
fn issue_18_a_forged_session_string_is_neither_journaled_nor_echoed() {
    let office = office();
    let before = office.audit_bytes();
    for _ in 0..3 {
        let e = refused(office.call(
            "delivery.activate",
            json!({"session": huge(), "new_pin": "482913"}),
        ));
        assert_eq!(e.code, ErrorCode::SessionUnknown);
        assert!(reply_len(&e) < 512, "{}", reply_len(&e));
        let e = refused(office.call_with(
            "delivery.verify",
            json!({"session": huge(), "finger": 2}),
            vec![fixtures::scan("1_2.png")],
        ));
        assert_eq!(e.code, ErrorCode::SessionUnknown);
        assert!(reply_len(&e) < 512, "{}", reply_len(&e));
    }
    assert!(office.audit_bytes() - before < 3 * 512);
    // Other ill-formed ids: refused the same way, not looked up.
    for id in ["", "0", &"G".repeat(32), &"0".repeat(33), &"0A".repeat(16)] {
        let e = refused(office.call(
            "delivery.activate",
            json!({"session": id, "new_pin": "482913"}),
        ));
        assert_eq!(e.code, ErrorCode::SessionUnknown, "{id:?}");
    }
    assert!(
        issuance::audit::verify(&office.svc.config.state_dir, &office.svc.keys)
            .unwrap()
            .is_intact()
    );
}

#[test]
fn issue_18_reader_names_ids_and_other_strings_are_not_echoed_whole() {
    let office = office();
    let long = huge();
    for (method, params) in [
        ("card.info", json!({"reader": long})),
        ("delivery.begin", json!({"reader": long})),
        ("card.terminate", json!({"reader": long, "reason": "lost"})),
        (
            "card.unblock",
            json!({"reader": long, "puk": "12345678", "new_pin": "482913"}),
        ),
        ("card.personalize", json!({"reader": long, "record": {}})),
        ("batch.submit", json!({"records": [{}], "readers": [long]})),
    ] {
        let e = refused(office.call(method, params));
        assert_eq!(e.code, ErrorCode::ReaderNotFound, "{method}");
        assert!(reply_len(&e) < 512, "{method}: {}", reply_len(&e));
    }
    for (method, params) in [
        ("batch.status", json!({"batch_id": long})),
        ("batch.cancel", json!({"batch_id": long})),
        ("batch.report", json!({"batch_id": long})),
        (
            "batch.report",
            json!({"batch_id": "B1-0000", "format": long}),
        ),
        ("status.lookup", json!({"tracking_code": long})),
        (
            "status.lookup",
            json!({"national_code": long, "birth_certificate_serial": "1",
                                 "birth_date": "1370-01-01"}),
        ),
        ("matcher.extract", json!({"format": long})),
        (
            "batch.status",
            json!({"batch_id": "B1-0000", long.clone(): 1}),
        ),
        (
            "delivery.verify",
            json!({"session": "0".repeat(32), "finger": 2, long.clone(): 1}),
        ),
    ] {
        let e = refused(office.call(method, params));
        assert!(reply_len(&e) < 1024, "{method}: {}", reply_len(&e));
    }
    let e = refused(office.call(&long, json!({})));
    assert_eq!(e.code, ErrorCode::MethodNotFound);
    assert!(reply_len(&e) < 512);
}

// ---- 5. no scores in kiosk replies ----

#[test]
fn issue_18_verify_replies_carry_no_score_but_the_audit_trail_does() {
    let office = office();
    let session = office.session();
    let verify = |scan: &str| {
        office.call_with(
            "delivery.verify",
            json!({"session": session, "finger": 2}),
            vec![fixtures::scan(scan)],
        )
    };
    let no_match = refused(verify("3_1.png"));
    assert_eq!(no_match.code, ErrorCode::NoMatch);
    let data = no_match.data.clone().unwrap();
    assert!(
        data.get("score").is_none() && data.get("threshold").is_none(),
        "{data}"
    );
    assert_eq!(data["attempts_left"], 2);
    let ok = verify("1_2.png").or_else(|_| verify("1_3.png")).unwrap();
    assert_eq!(ok["decision"], "match");
    assert!(
        ok.get("score").is_none() && ok.get("threshold").is_none(),
        "{ok}"
    );
    assert!(ok["fingers"][0].get("score").is_none(), "{ok}");
    let entries = office.svc.audit.entries().unwrap();
    let scored: Vec<Value> = entries
        .iter()
        .filter(|e| e.kind == "delivery.verify")
        .map(|e| e.details_json())
        .filter(|d| d["decision"] == "match" || d["decision"] == "no_match")
        .collect();
    assert!(scored.len() >= 2);
    assert!(scored.iter().all(|d| d["score"].is_number()), "{scored:?}");
}
