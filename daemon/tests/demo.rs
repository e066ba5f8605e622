//! `idcardd demo` end to end: the daemon on simulated readers, a batch of the fixture applicants
//! through its socket (the invalid ones rejected by data QC), then every personalized card
//! delivered through the socket (impostor refused, holder accepted, card activated) except one
//! terminated as lost; the status service and the audit chain agree.

use std::path::Path;
use std::process::Command;

/// Runs `idcardd demo --json` with its state in `state`, from a directory outside the
/// repository: the demo finds its records wherever it runs (issue 14: it used to fail outside
/// the repository root with "fixtures/applicants not found").
fn run_demo(state: &Path) -> serde_json::Value {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_idcardd"))
        .current_dir(elsewhere.path())
        .env_remove("IDCARDD_DEMO_DATA")
        .args(["demo", "--json", "--readers", "2", "--state-dir"])
        .arg(state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The manifest's valid records: the ones data QC must let through.
fn valid_records() -> usize {
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/applicants/manifest.toml"
    );
    let text = std::fs::read_to_string(manifest).unwrap();
    let manifest: toml::Value = toml::from_str(&text).unwrap();
    manifest["record"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["expected"].as_array().is_some_and(|e| e.is_empty()))
        .count()
}

#[test]
fn demo_runs_the_whole_chain_through_the_socket() {
    let state = tempfile::tempdir().unwrap();
    let s = run_demo(state.path());
    let valid = valid_records();
    let records = s["records"].as_u64().unwrap() as usize;
    assert_eq!(s["personalized"], valid, "{s:#}");
    assert_eq!(s["qc_failed"], records - valid, "{s:#}");
    assert_eq!(s["failed"], 0, "{s:#}");
    // Every personalized card but the lost one is delivered; each delivery refused an impostor.
    assert_eq!(s["terminated"], 1, "{s:#}");
    assert_eq!(s["delivered"], valid - 1, "{s:#}");
    // The household member's card was collected by the verified head: no impostor test.
    assert_eq!(s["household_handovers"], 1, "{s:#}");
    assert_eq!(s["impostors_refused"], valid - 2, "{s:#}");

    let outcomes = s["outcomes"].as_array().unwrap();
    for o in outcomes {
        let status = o["status"].as_str().unwrap_or("");
        match o["outcome"].as_str().unwrap() {
            "delivered" => {
                assert_eq!(o["passive_auth"], "ok", "{o}");
                let basis = o["genuine_decision"].as_str().unwrap_or("");
                assert!(basis == "match" || basis == "head_verification", "{o}");
                assert_eq!(status, "delivered", "{o}");
            }
            t if t.starts_with("terminated") => assert_eq!(status, "terminated", "{o}"),
            "rejected by data QC" if !o["tracking_code"].as_str().unwrap().is_empty() => {
                assert_eq!(status, "rejected", "{o}")
            }
            _ => {}
        }
    }
    // After production (issue 16): a lost card replaced, a free-zone card renewed.
    let history: Vec<(String, String, String)> = s["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["tracking_code"].as_str().unwrap().to_string(),
                h["status"].as_str().unwrap().to_string(),
                h["document_status"].as_str().unwrap_or("-").to_string(),
            )
        })
        .collect();
    let at = |code: &str| {
        history
            .iter()
            .rev()
            .find(|(c, _, _)| c == code)
            .map(|(_, s, d)| (s.as_str(), d.as_str()))
    };
    assert_eq!(at("NID-0001"), Some(("revoked", "revoked")), "{history:?}");
    assert_eq!(
        at("NID-0001-R"),
        Some(("delivered", "valid")),
        "{history:?}"
    );
    assert_eq!(at("FZ-0001-X"), Some(("rejected", "-")), "{history:?}");
    assert_eq!(at("FZ-0001-R"), Some(("delivered", "valid")), "{history:?}");
    assert_eq!(
        at("FZ-0001"),
        Some(("superseded", "superseded")),
        "{history:?}"
    );
    let latency = s["latency"].as_array().unwrap();
    for method in ["delivery.begin", "delivery.verify", "delivery.activate"] {
        assert!(
            latency
                .iter()
                .any(|l| l["method"] == method && l["calls"].as_u64() > Some(0)),
            "{method} missing from {latency:?}"
        );
    }

    // Everything the daemon did is in the audit chain, and the chain verifies.
    let audit = Command::new(env!("CARGO_BIN_EXE_idcardd"))
        .args(["audit", "verify", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(
        audit.status.success(),
        "{}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );
}
