//! `idcardd bench fvc` with the optional learned extractor, through the real binary on a few of
//! the project's synthetic fixture scans: which extractor served each side, how many pairs the
//! second opinion decided again, and the refusals a user can meet. Skipped with a message when
//! scripts/setup.sh did not install the learned extractor.

use std::path::Path;

use serde_json::Value;
use test_support::{fixtures, process};

fn idcardd(args: &[&str]) -> std::process::Output {
    process::run(env!("CARGO_BIN_EXE_idcardd"), args)
}

/// Three impressions of three fingers of the fixtures, in a folder of their own.
fn small_set(dir: &Path) {
    fixtures::copy_scans(dir, 3, 3);
}

fn installed() -> bool {
    test_support::learned::installed_dir().is_some()
}

#[test]
fn the_learned_extractor_serves_the_side_it_is_asked_for_and_the_second_opinion() {
    if !installed() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    small_set(dir.path());
    let set = dir.path().to_str().unwrap();
    let out = idcardd(&[
        "bench",
        "fvc",
        set,
        "--json",
        "--timing-seconds",
        "0.05",
        "--reference-extractor",
        "leader",
        "--second-opinion",
        "0:0.3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["images"], 9);
    assert_eq!(r["genuine_pairs"], 9);
    assert_eq!(r["extractors"], serde_json::json!(["classical", "leader"]));
    let so = &r["second_opinion"];
    assert_eq!(so["extractor"], "leader");
    // Every impostor pair scores below 0.3, so every one was decided again.
    assert_eq!(so["impostor_pairs"], r["extended_impostor_pairs"]);
    assert!(so["genuine_pairs"].as_u64().unwrap() <= 9);
    assert!(so["extract_ms"]["median"].as_f64().unwrap() > 0.0);

    // The default path names no learned extractor and asks nobody again.
    let out = idcardd(&["bench", "fvc", set, "--json", "--timing-seconds", "0.05"]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        r["extractors"],
        serde_json::json!(["classical", "classical"])
    );
    assert!(r["second_opinion"].is_null());
}

#[test]
fn a_bad_band_or_a_missing_learned_extractor_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    small_set(dir.path());
    let set = dir.path().to_str().unwrap();
    let out = idcardd(&["bench", "fvc", set, "--second-opinion", "0.3:0.1"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("LOW must be below HIGH"), "{err}");
    let out = idcardd(&[
        "bench",
        "fvc",
        set,
        "--probe-extractor",
        "leader",
        "--learned-dir",
        "/nonexistent/learned",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/learned") && err.contains("scripts/setup.sh"),
        "{err}"
    );
}
