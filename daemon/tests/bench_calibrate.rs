//! `idcardd bench calibrate` on a tiny pool (the committed synthetic fixtures plus a few
//! generated fingers): every pair is counted once, thresholds come with their counts and
//! intervals, and the fused, rescan and counter sections are there. Issue 19.

use test_support::{fixtures, paths, process};

fn idcardd(args: &[&str]) -> std::process::Output {
    process::run(env!("CARGO_BIN_EXE_idcardd"), args)
}

/// `idcardd ARGS`, which must succeed, its standard output as JSON.
fn json_of(args: &[&str]) -> serde_json::Value {
    process::json_of(env!("CARGO_BIN_EXE_idcardd"), args)
}

#[test]
fn issue_19_calibrate_runs_on_a_tiny_pool() {
    let fixtures = paths::fingerprints();
    let set = format!("{}:500", fixtures.to_str().unwrap());
    let r = json_of(&[
        "bench",
        "calibrate",
        &set,
        "--synth-fingers",
        "4",
        "--synth-impressions",
        "3",
        "--threads",
        "2",
        "--json",
    ]);
    assert_eq!(r["extractor"], "classical");
    let scans = r["scans"].as_u64().unwrap();
    let fixture_scans = r["sources"][0][1].as_u64().unwrap();
    assert_eq!(r["sources"][1][0], "synthetic");
    assert_eq!(r["sources"][1][1].as_u64(), Some(12));
    assert_eq!(scans, fixture_scans + 12);

    // Every pair once: genuine + impostor = n (n - 1) / 2.
    let all = &r["single"][0];
    assert_eq!(all["name"], "all");
    let (imp, gen) = (
        all["impostors"].as_u64().unwrap(),
        all["genuine"].as_u64().unwrap(),
    );
    assert_eq!(imp + gen, scans * (scans - 1) / 2);
    // 4 generated fingers x 3 impressions give 4 x 3 genuine pairs.
    assert_eq!(r["single"][2]["genuine"].as_u64(), Some(12));

    // The 1 % row: its count at or above the threshold is within the target, and its interval
    // holds the observed rate.
    let row = &all["calibrated"][0];
    assert_eq!(row["target_fmr"].as_f64(), Some(0.01));
    let above = row["impostors_at_or_above"].as_u64().unwrap();
    assert!(above as f64 <= 0.01 * imp as f64, "{row}");
    let fmr = row["fmr"].as_f64().unwrap();
    let (lo, hi) = (
        row["fmr_ci95"]["low"].as_f64().unwrap(),
        row["fmr_ci95"]["high"].as_f64().unwrap(),
    );
    assert!(lo <= fmr && fmr <= hi && hi < 1.0, "{row}");

    // Fused pools for both rules, rescan rows, and counter rows that add up.
    let fused: Vec<&str> = r["fused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        fused.contains(&"mean/all") && fused.contains(&"max/all"),
        "{fused:?}"
    );
    assert!(!r["rescan"]["rows"].as_array().unwrap().is_empty());
    for c in r["counter"].as_array().unwrap() {
        let accepted: u64 = c["accepted_at"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_u64().unwrap())
            .sum();
        assert_eq!(
            accepted + c["refused"].as_u64().unwrap() + c["out_of_scans"].as_u64().unwrap(),
            c["holders"].as_u64().unwrap(),
            "{c}"
        );
    }
}

#[test]
fn the_learned_extractor_is_calibrated_on_its_own_scores_with_the_classical_quality() {
    if test_support::learned::installed_dir().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fixtures::copy_scans(dir.path(), 3, 2);
    let set = format!("{}:500", dir.path().to_str().unwrap());
    let r = json_of(&[
        "bench",
        "calibrate",
        &set,
        "--extractor",
        "leader",
        "--json",
    ]);
    assert_eq!(r["extractor"], "leader");
    // Its "default" rows are the learned scale's defaults.
    assert_eq!(r["defaults_scale"], "learned");
    let own = matcher::compare::ScoreScale::Learned.single();
    assert_eq!(
        r["single"][0]["checked"][1]["threshold"].as_f64().unwrap() as f32,
        own[1].score
    );
    assert_eq!(r["scans"], 6);
    assert!(r["failures_to_enrol"].as_array().unwrap().is_empty(), "{r}");
    assert_eq!(r["single"][0]["genuine"], 3);
    assert_eq!(r["single"][0]["impostors"], 12);
    // Image quality is the classical extractor's (the learned one reports none): at the
    // current quality limit the fixtures are not all sent to rescan.
    let at_20 = r["rescan"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["kind"] == "quality" && row["limit"] == 20)
        .unwrap();
    assert!(at_20["scans_rescanned"].as_f64().unwrap() < 0.5, "{at_20}");
}

#[test]
fn card_formats_are_calibrated_on_one_side_or_both() {
    use matcher::compare::ScoreScale;
    let dir = tempfile::tempdir().unwrap();
    fixtures::copy_scans(dir.path(), 3, 2);
    let set = format!("{}:500", dir.path().to_str().unwrap());
    let run = |extra: &[&str]| {
        let mut args = vec!["bench", "calibrate", &set, "--json"];
        args.extend_from_slice(extra);
        json_of(&args)
    };
    let plain = run(&[]);
    let candidates = run(&["--card-format", "compact"]);
    let both = run(&["--card-format", "compact", "--both-sides"]);
    assert_eq!(plain["templates"], "as extracted");
    assert_eq!(candidates["templates"], "compact (candidates)");
    assert_eq!(both["templates"], "compact (both sides)");
    // Two compact templates are compared as `matcher.compare` does: the card-format scale's
    // defaults; one live scan against a stored template stays on the classical scale.
    assert_eq!(plain["defaults_scale"], "classical");
    assert_eq!(candidates["defaults_scale"], "classical");
    assert_eq!(both["defaults_scale"], "card_format");
    // The thresholds a pool of the report was checked against.
    let checked_in = |pool: &serde_json::Value| {
        pool["checked"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row["threshold"].as_f64().unwrap() as f32)
            .collect::<Vec<_>>()
    };
    let checked = |r: &serde_json::Value| checked_in(&r["single"][0]);
    let scores = |t: [matcher::compare::Threshold; 3]| t.map(|t| t.score).to_vec();
    assert_eq!(checked(&plain), scores(ScoreScale::Classical.single()));
    assert_eq!(checked(&both), scores(ScoreScale::CardFormat.single()));
    // Fused by the mean, the defaults checked are the mean-of-two table delivery applies; the
    // max rule has no table of its own and is held against the one-finger one.
    let fused_checked = |r: &serde_json::Value, name: &str| {
        let pool = r["fused"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("no fused pool {name}: {r}"));
        checked_in(pool)
    };
    for (r, scale) in [
        (&plain, ScoreScale::Classical),
        (&both, ScoreScale::CardFormat),
    ] {
        assert_eq!(fused_checked(r, "mean/all"), scores(scale.mean_of_two()));
        assert_eq!(fused_checked(r, "max/all"), scores(scale.single()));
    }
    // Same pairs, other scores: the probes went through the card format too.
    for r in [&candidates, &both] {
        assert_eq!(r["single"][0]["impostors"], plain["single"][0]["impostors"]);
        assert_eq!(r["single"][0]["genuine"], plain["single"][0]["genuine"]);
    }
    assert_ne!(
        both["single"][0]["max_impostor"],
        candidates["single"][0]["max_impostor"]
    );
    // `--both-sides` needs a card format.
    let out = idcardd(&["bench", "calibrate", &set, "--both-sides"]);
    assert!(!out.status.success());
}

#[test]
fn fingers_declared_one_finger_are_left_out_of_the_pools() {
    let dir = tempfile::tempdir().unwrap();
    let set = dir.path().join("setA");
    std::fs::create_dir(&set).unwrap();
    fixtures::copy_scans(&set, 3, 2);
    let set = set.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["bench", "calibrate", set, "--json"];
        args.extend_from_slice(extra);
        json_of(&args)
    };
    let plain = run(&[]);
    assert_eq!(plain["excluded_pairs"], 0);
    assert_eq!(plain["single"][0]["impostors"], 12);
    // Fingers 1 and 2 declared one finger: their 2 x 2 pairs leave the impostors, and are not
    // counted as genuine either.
    let declared = run(&["--same-finger", "setA/2=setA/1"]);
    assert_eq!(declared["excluded_pairs"], 4);
    assert_eq!(declared["single"][0]["impostors"], 8);
    assert_eq!(declared["single"][0]["genuine"], 3);
    let out = idcardd(&["bench", "calibrate", set, "--same-finger", "setA=setB/2"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("expected SET/FINGER"));
}

#[test]
fn calibrate_refuses_an_empty_pool() {
    let out = idcardd(&["bench", "calibrate"]);
    assert!(!out.status.success());
}
