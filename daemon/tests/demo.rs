//! `idcardd demo` end to end on the project's own synthetic scans: every card is personalized,
//! genuine live scans are accepted, impostors refused, the lost card terminated.

use std::path::Path;
use std::process::Command;

/// Runs `idcardd demo --json` with 4 readers whose cards live in `state`, returns the summary.
fn run_demo(state: &Path) -> serde_json::Value {
    let scans = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/fingerprints");
    let out = Command::new(env!("CARGO_BIN_EXE_idcardd"))
        .args([
            "demo",
            "--json",
            "--readers",
            "4",
            "--scans",
            scans,
            "--state-dir",
        ])
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

/// The life-cycle state each card ended in.
fn final_states(summary: &serde_json::Value) -> Vec<String> {
    let cards = summary["cards"].as_array().unwrap();
    cards
        .iter()
        .map(|c| c["states"].as_array().unwrap().last().unwrap().to_string())
        .collect()
}

#[test]
fn demo_personalizes_delivers_and_terminates() {
    let state = tempfile::tempdir().unwrap();
    let summary = run_demo(state.path());
    assert_eq!(summary["personalized"], 4, "{summary:#}");
    assert_eq!(summary["delivered"], 3, "{summary:#}");
    assert_eq!(summary["impostors_refused"], 3, "{summary:#}");
    assert_eq!(summary["terminated"], 1, "{summary:#}");
    let expected = [
        "\"Activated\"",
        "\"Activated\"",
        "\"Activated\"",
        "\"Terminated\"",
    ];
    assert_eq!(final_states(&summary), expected);
    let lost = &summary["cards"][3]["after_termination"];
    assert!(lost.as_str().unwrap().contains("6985"), "{lost}");

    // The cards' state persisted: a second run finds them delivered or terminated already and
    // writes nothing.
    let again = run_demo(state.path());
    assert_eq!(
        again["terminated"], 0,
        "nothing new is terminated: {again:#}"
    );
    assert_eq!(final_states(&again), expected);
    let cards = again["cards"].as_array().unwrap();
    assert!(cards.iter().all(|c| c["perso_apdus"] == 0), "{again:#}");
}
