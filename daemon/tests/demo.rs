//! `idcardd demo` end to end on the project's own synthetic scans: every card is personalized,
//! genuine live scans are accepted, impostors refused, the lost card terminated.

use std::process::Command;

#[test]
fn demo_personalizes_delivers_and_terminates() {
    let scans = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/fingerprints");
    let state = tempfile::tempdir().unwrap();
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
        .arg(state.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["personalized"], 4, "{summary:#}");
    assert_eq!(summary["delivered"], 3, "{summary:#}");
    assert_eq!(summary["impostors_refused"], 3, "{summary:#}");
    assert_eq!(summary["terminated"], 1, "{summary:#}");
    let cards = summary["cards"].as_array().unwrap();
    let states: Vec<_> = cards
        .iter()
        .map(|c| {
            c["states"]
                .as_array()
                .unwrap()
                .last()
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        states,
        ["Activated", "Activated", "Activated", "Terminated"]
    );
    assert!(cards[3]["after_termination"]
        .as_str()
        .unwrap()
        .contains("6985"));
    // The cards' state persisted: a second run finds them already personalized and does not
    // write them again.
    let again = Command::new(env!("CARGO_BIN_EXE_idcardd"))
        .args([
            "demo",
            "--json",
            "--readers",
            "4",
            "--scans",
            scans,
            "--state-dir",
        ])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        summary["terminated"], 0,
        "nothing new is terminated: {summary:#}"
    );
    assert!(
        summary["cards"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["perso_apdus"] == 0),
        "{summary:#}"
    );
}
