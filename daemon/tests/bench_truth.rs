//! `idcardd bench truth` on the committed synthetic fixtures: the extractor's minutiae against
//! the generator's ground truth, overall and per quality level and skin condition.

use test_support::{paths, process};

fn idcardd(args: &[&str]) -> std::process::Output {
    process::run(env!("CARGO_BIN_EXE_idcardd"), args)
}

fn rate(v: &serde_json::Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or_else(|| panic!("no {key} in {v}"))
}

#[test]
fn bench_truth_reports_precision_and_recall_on_the_fixtures() {
    let fixtures = paths::fingerprints();
    let dir = fixtures.to_str().unwrap();
    let out = idcardd(&["bench", "truth", dir, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let overall = &report["overall"];
    let counts = &overall["counts"];
    let scans = std::fs::read_dir(&fixtures)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "png")
        })
        .count() as u64;
    assert_eq!(counts["impressions"].as_u64(), Some(scans));
    let (truth, found, paired) = (
        counts["truth"].as_u64().unwrap(),
        counts["found"].as_u64().unwrap(),
        counts["paired"].as_u64().unwrap(),
    );
    assert!(paired <= truth.min(found) && paired > 0, "{counts}");
    // The extractor is good but not perfect on generated scans.
    for key in ["precision", "recall"] {
        let r = rate(overall, key);
        assert!(r > 0.4 && r < 1.0, "{key} {r}");
    }
    assert!(rate(overall, "type_agreement") > 0.5);
    assert!((rate(overall, "recall") - paired as f64 / truth as f64).abs() < 1e-9);
    // Every scan falls in one quality bucket and one skin group (the set file is there).
    for groups in ["by_quality", "by_skin"] {
        let sum: u64 = report[groups]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["counts"]["impressions"].as_u64().unwrap())
            .sum();
        assert_eq!(sum, scans, "{groups}");
    }
    assert_eq!(report["tolerance"]["distance_px"].as_f64(), Some(15.0));
}

#[test]
fn a_tighter_tolerance_finds_fewer_pairs() {
    let fixtures = paths::fingerprints();
    let dir = fixtures.to_str().unwrap();
    let paired = |px: &str, deg: &str| {
        let out = idcardd(&[
            "bench",
            "truth",
            dir,
            "--json",
            "--tolerance-px",
            px,
            "--tolerance-deg",
            deg,
        ]);
        assert!(out.status.success());
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["overall"]["counts"]["paired"].as_u64().unwrap()
    };
    let wide = paired("15", "30");
    let narrow = paired("4", "10");
    assert!(
        narrow < wide,
        "{narrow} pairs at 4 px, 10° vs {wide} at 15 px, 30°"
    );
}

#[test]
fn bench_truth_refuses_a_folder_without_ground_truth_and_bad_tolerances() {
    let empty = tempfile::tempdir().unwrap();
    let out = idcardd(&["bench", "truth", empty.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ground truth"), "{err}");
    let fixtures = paths::fingerprints();
    let dir = fixtures.to_str().unwrap();
    let out = idcardd(&["bench", "truth", dir, "--tolerance-px", "0"]);
    assert!(!out.status.success());
}
