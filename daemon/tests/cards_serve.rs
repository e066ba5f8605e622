//! Issue 16 over the socket: cards made by a batch are dispatched to an office, received there,
//! checked by a verifier and reported lost, with `idcardd cards ...` talking to a running
//! `idcardd serve` (and the status lookup answering each step).

mod common;

use common::Daemon;
use serde_json::Value;
use test_support::perso::generated_record;
use test_support::process;

fn idcardd(args: &[&str]) -> std::process::Output {
    process::run(env!("CARGO_BIN_EXE_idcardd"), args)
}

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", process::text(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn dispatch_receipt_document_status_and_a_lost_card_through_the_socket() {
    let files = tempfile::tempdir().unwrap();
    let pki = files.path().join("pki");
    test_support::pki::signer_in(&pki);
    let keys = test_support::hsm::config_toml(test_support::hsm::SHARED);
    let config = files.path().join("keys.toml");
    std::fs::write(&config, &keys).unwrap();
    let daemon = Daemon::start(&format!("[pki]\ndir = {pki:?}\n{keys}"));
    let state = daemon.dir.path().join("state");
    let endpoint = daemon.endpoint();

    // Production: two cards by a batch on the daemon's state directory (the line beside it).
    let manifest = files.path().join("m.jsonl");
    let records: String = (0..2)
        .map(|i| format!("{}\n", generated_record(i)))
        .collect();
    std::fs::write(&manifest, records).unwrap();
    let pki_arg = pki.to_str().unwrap();
    let run = json_of(&idcardd(&[
        "batch",
        "run",
        manifest.to_str().unwrap(),
        "--readers",
        "sim:1",
        "--pki",
        pki_arg,
        "--state-dir",
        state.to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--json",
    ]));
    assert_eq!(run["counts"]["personalized"], 2, "{run}");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(run["report_json"].as_str().unwrap()).unwrap(),
    )
    .unwrap();
    let cards: Vec<(String, String, String)> = report["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["tracking_code"].as_str().unwrap().to_string(),
                r["card_serial"].as_str().unwrap().to_string(),
                r["document_number"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let conn = ["--endpoint", endpoint.as_str(), "--json"];
    let cli = |args: &[&str]| idcardd(&[args, &conn[..]].concat());
    let status = |doc: &str| json_of(&cli(&["cards", "status", doc]))["status"].clone();
    assert_eq!(status(&cards[0].2), "not_delivered");

    // Both cards to office THR-12; the office scans in one of them.
    let sent = json_of(&cli(&[
        "cards",
        "dispatch",
        "--office",
        "THR-12",
        &cards[0].1,
        &cards[1].1,
    ]));
    let dispatch = sent["dispatch_id"].as_str().unwrap().to_string();
    assert_eq!(sent["cards"].as_array().unwrap().len(), 2);
    let again = cli(&["cards", "dispatch", "--office", "THR-12", &cards[0].1]);
    assert!(!again.status.success());
    assert!(
        process::text(&again).contains("dispatch_refused"),
        "{}",
        process::text(&again)
    );
    let wrong = cli(&[
        "cards",
        "receive",
        &dispatch,
        &cards[0].1,
        "--office",
        "ISF-03",
    ]);
    assert!(
        process::text(&wrong).contains("wrong_office"),
        "{}",
        process::text(&wrong)
    );
    let got = json_of(&cli(&[
        "cards",
        "receive",
        &dispatch,
        &cards[0].1,
        "--office",
        "THR-12",
    ]));
    assert_eq!(got["missing"], serde_json::json!([cards[1].1]));
    let python = test_support::python::python_with_zmq();
    let lookup = |python: &str, tracking: &str| {
        let out = process::run(
            python,
            [
                "-c",
                &format!(
                    "import json,sys,zmq; c=zmq.Context(); s=c.socket(zmq.DEALER); s.connect({endpoint:?}); \
                     s.send_multipart([json.dumps({{'jsonrpc':'2.0','id':1,'method':'status.lookup','params':{{'tracking_code':{tracking:?}}}}}).encode()]); \
                     print(s.recv_multipart()[-1].decode())"
                ),
            ],
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        serde_json::from_str::<Value>(text.trim()).unwrap_or(Value::Null)["result"]["matches"][0]
            .clone()
    };
    // The applicant's status service, a pyzmq client.
    match &python {
        Some(python) => {
            let s = lookup(python, &cards[0].0);
            assert_eq!(s["status"], "ready_for_pickup", "{s}");
            assert_eq!(s["detail"]["office"], "THR-12");
            assert_eq!(lookup(python, &cards[1].0)["status"], "dispatched");
        }
        None => eprintln!("SKIPPED the pyzmq status lookups: no python3 with zmq"),
    }

    // The second card is stolen on the way: revoked, and a verifier sees it.
    let lost = json_of(&cli(&[
        "cards",
        "report-lost",
        &cards[1].2,
        "--reason",
        "stolen",
    ]));
    assert_eq!(lost["state"], "revoked");
    assert_eq!(status(&cards[1].2), "revoked");
    assert_eq!(status("Z00000000"), "unknown");
    // Nothing personal in a document-status answer.
    let answer = json_of(&cli(&["cards", "status", &cards[0].2]));
    assert_eq!(answer.as_object().unwrap().len(), 2, "{answer}");
}
