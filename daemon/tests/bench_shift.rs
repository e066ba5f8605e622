//! `idcardd bench fvc --shift/--probe-shift` (a sensor shift simulated on the scans) through the
//! real binary on a few of the project's synthetic fixture scans.

use std::path::Path;

use serde_json::Value;
use test_support::{fixtures, process};

fn idcardd(args: &[&str]) -> std::process::Output {
    process::run(env!("CARGO_BIN_EXE_idcardd"), args)
}

fn bench(set: &Path, extra: &[&str]) -> Value {
    let set = set.to_str().unwrap();
    let mut args = vec!["bench", "fvc", set, "--json", "--timing-seconds", "0.05"];
    args.extend_from_slice(extra);
    process::json_of(env!("CARGO_BIN_EXE_idcardd"), args)
}

#[test]
fn shifted_scans_are_named_in_the_report_and_faint_ones_still_enrol() {
    let dir = tempfile::tempdir().unwrap();
    fixtures::copy_scans(dir.path(), 3, 3);
    let plain = bench(dir.path(), &[]);
    assert!(plain.get("shift").is_none() && plain.get("probe_shift").is_none());

    // Ridges a tenth as dark as scanned: every scan still enrols with about as many minutiae,
    // and every genuine pair still outscores every impostor pair.
    let faint = bench(dir.path(), &["--shift", "faint=0.1"]);
    assert_eq!(faint["shift"], "faint=0.1");
    assert_eq!(faint["failures_to_enrol"], serde_json::json!([]));
    let (a, b) = (
        plain["minutiae_mean"].as_f64().unwrap(),
        faint["minutiae_mean"].as_f64().unwrap(),
    );
    assert!((b - a).abs() <= 0.15 * a, "{a} -> {b} minutiae");
    assert_eq!(faint["extended"]["eer"], 0.0);

    // The live scan alone from a 750 dpi sensor (declared as such): the reference side keeps
    // the scan as it was, and the pairs still match.
    let scaled = bench(dir.path(), &["--probe-shift", "scale=1.5"]);
    assert_eq!(scaled["probe_shift"], "scale=1.5");
    assert!(scaled.get("shift").is_none());
    assert_eq!(scaled["extended"]["eer"], 0.0);
}

#[test]
fn a_sensor_shift_that_cannot_be_read_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    fixtures::copy_scans(dir.path(), 2, 2);
    let set = dir.path().to_str().unwrap();
    for (shift, reason) in [
        ("tilt=3", "unknown kind"),
        ("faint=2", "must be in (0, 1]"),
        ("blur", "expected KIND=VALUE"),
        ("noise=x", "is not a number"),
    ] {
        let out = idcardd(&["bench", "fvc", set, "--shift", shift]);
        assert!(!out.status.success(), "{shift}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(reason), "{shift}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}
