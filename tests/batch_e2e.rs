//! `idcardd batch run` through real pcscd + vsmartcard-vpcd: two simulated cards behind the two
//! vpcd readers, two applicant records; both cards come back personalized, deactivated, with
//! the record's DG1 and an EF.SOD, and the journal's report names their serials. Then a card
//! personalized that way is delivered through `idcardd serve` on the same vpcd reader by the
//! pyzmq kiosk client (daemon/tests/py/delivery_client.py).
//!
//! Run under `flock /tmp/idcardd-pcsc.lock` when other suites use pcscd on this machine.

use std::path::Path;

use apdu::card::IdCard;
use apdu::fcp::LifeCycle;
use cardsim::{SimCard, SimConfig, SimTransport};
use idcardd_e2e::{run_idcardd, CardInReader, Pcscd, PORT0, PORT1, READER0, READER1};
use serde_json::Value;
use test_support::python::python_with_zmq;
use test_support::{fixtures, paths, process};

/// National-id profile minimums (daemon/profiles/national-id.toml) a template must reach.
const MIN_QUALITY: u8 = 40;
const MIN_MINUTIAE: usize = 12;

/// A national-id record with fixture ISO templates (absolute paths).
fn record(i: usize, code: &str) -> Value {
    let mut r = fixtures::applicant("national-valid-1.json");
    let prints = paths::fingerprints().canonicalize().unwrap();
    let good = fixtures::usable_templates(&prints, MIN_QUALITY, MIN_MINUTIAE);
    assert!(good.len() >= 3, "fewer than three usable fixture templates");
    r["tracking_code"] = format!("E2E-{i}").into();
    r["national_code"] = code.into();
    r["fingers"] = serde_json::json!({
        "right_index": {"template": {"path": good[i]}},
        "left_index": {"template": {"path": good[i + 1]}},
    });
    r
}

/// `record` with its templates copied into `dir` and named relative to it: a manifest may
/// name files in its own folder only (issue 18).
fn beside(record: &Value, dir: &Path) -> Value {
    let mut r = record.clone();
    for f in ["right_index", "left_index"] {
        let from = std::path::PathBuf::from(r["fingers"][f]["template"]["path"].as_str().unwrap());
        let name = from.file_name().unwrap().to_str().unwrap().to_string();
        std::fs::copy(&from, dir.join(&name)).unwrap();
        r["fingers"][f]["template"]["path"] = name.into();
    }
    r
}

/// The issuer's token for a line in `dir`: the shared test token (the test keys its blank
/// cards from it, as a card maker given the issuer's keys), named to the `idcardd` processes by
/// the daemon configuration file it writes (returned), with the test PKI `pki` in it.
fn issuer(dir: &Path, pki: &Path) -> (std::sync::Arc<keystore::KeyStore>, std::path::PathBuf) {
    let keys = test_support::hsm::shared();
    test_support::pki::signer_in_token(pki, &keys);
    let config = dir.join("keys.toml");
    std::fs::write(
        &config,
        test_support::hsm::config_toml(test_support::hsm::SHARED),
    )
    .unwrap();
    (keys, config)
}

/// Runs `idcardd batch run MANIFEST --readers READERS --state-dir STATE --config CONFIG
/// --json`, checks that `personalized` records were personalized, and returns the batch report.
fn run_batch(
    manifest: &Path,
    readers: &str,
    state: &Path,
    config: &Path,
    personalized: u64,
) -> Value {
    let (code, out, err) = run_idcardd(
        &[
            "batch",
            "run",
            manifest.to_str().unwrap(),
            "--readers",
            readers,
            "--state-dir",
            state.to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["counts"]["personalized"], personalized, "{summary}");
    serde_json::from_str(
        &std::fs::read_to_string(summary["report_json"].as_str().unwrap()).unwrap(),
    )
    .unwrap()
}

#[test]
fn batch_through_pcscd_personalizes_both_readers_cards() {
    let pcscd = Pcscd::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let pki = state.join("pki");
    let (keys, keys_config) = issuer(dir.path(), &pki);
    let manifest = dir.path().join("m.jsonl");
    // Two valid national codes (check digits computed by hand: weights 10..2).
    let records = [record(0, "0012345679"), record(1, "0499370899")];
    let text: String = records
        .iter()
        .map(|r| format!("{}\n", beside(r, dir.path())))
        .collect();
    std::fs::write(&manifest, text).unwrap();

    let mut inserted = Vec::new();
    for (i, port) in [PORT0, PORT1].into_iter().enumerate() {
        let config = SimConfig {
            seed: Some(7000 + i as u64),
            keys: keys.clone(),
            ..SimConfig::default()
        };
        let card = SimCard::create(Some(dir.path().join(format!("card{i}.json"))), config).unwrap();
        inserted.push(CardInReader::insert(&pcscd, card, port));
    }
    let report = run_batch(
        &manifest,
        &format!("{READER0},{READER1}"),
        &state,
        &keys_config,
        2,
    );

    for card in inserted {
        let sim = card.pull();
        assert_eq!(sim.life_cycle(), LifeCycle::Deactivated);
        let serial = hex::encode_upper(sim.serial());
        let line = report["records"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["card_serial"] == serial.as_str())
            .unwrap_or_else(|| panic!("card {serial} is not in the report {report}"));
        assert_eq!(line["state"], "personalized");
        let mut id = IdCard::new(SimTransport::new(sim));
        let mut session = id.authenticate_terminal(keys.as_ref()).unwrap();
        let dg1 = session.read_file(0x0101).unwrap();
        let doc = line["document_number"].as_str().unwrap();
        assert!(
            dg1.windows(doc.len()).any(|w| w == doc.as_bytes()),
            "DG1 holds the document number {doc}"
        );
        let sod = session.read_file(0x011D).unwrap();
        assert_eq!(sod.first(), Some(&0x77), "EF.SOD present");
    }
}

#[test]
fn the_throughput_bench_runs_through_pcscd_the_bare_vpcd_socket_and_in_process() {
    let _pcscd = Pcscd::start();
    let fixtures = paths::fixtures();
    let port = PORT0.to_string();
    let (code, out, err) = run_idcardd(
        &[
            "batch",
            "bench",
            "--cards",
            "2",
            "--readers",
            "1",
            "--fixtures",
            fixtures.to_str().unwrap(),
            "--pcsc-reader",
            READER0,
            "--vpcd-port",
            &port,
            "--pcsc-cards",
            "3",
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["in_process"][0]["summary"]["personalized_now"], 2, "{v}");
    let pcsc = &v["pcsc"];
    // The same 28 APDUs on all three transports (the bench checks the socket against pcscd).
    assert_eq!(pcsc["apdus_per_card"], 28, "{pcsc}");
    assert_eq!(pcsc["cards"], 3);
    for transport in ["through_pcscd", "vpcd_socket", "in_process"] {
        for figure in ["median_ms", "mean_ms"] {
            let ms = pcsc[transport][figure].as_f64().unwrap();
            assert!(ms > 0.0 && ms.is_finite(), "{transport} {figure}: {pcsc}");
        }
    }
    for ratio in ["ratio_to_in_process", "ratio_to_vpcd_socket"] {
        assert!(
            pcsc[ratio]["of_medians"].as_f64().unwrap().is_finite(),
            "{pcsc}"
        );
    }
}

/// The finger number of an FVC-named fixture file (`<finger>_<impression>.<ext>`).
fn finger_of(path: &Path) -> u32 {
    let stem = path.file_stem().unwrap().to_str().unwrap();
    stem.split('_').next().unwrap().parse().unwrap()
}

/// Live scans for the kiosk: an impression of the enrolled finger that the matcher accepts
/// against the enrolled template with a clear margin, and another finger's scan it refuses
/// clearly. This test is about the delivery path through pcscd, not matcher accuracy (that is
/// measured in matcher/tests and `bench fvc`), so it picks unambiguous scans.
fn kiosk_scans(prints: &Path, enrolled: &Path, others: &[u32]) -> (String, String) {
    use matcher::compare::{compare, prepare, Scratch, Threshold};
    let threshold = Threshold::FMR_0_1_PERCENT.score;
    let template = matcher::template::decode(
        &std::fs::read(enrolled).unwrap(),
        matcher::template::CardFormat::Record,
        500,
    )
    .unwrap();
    let candidate = prepare(&template);
    let mut scratch = Scratch::new();
    let mut score = |name: &str| -> Option<f32> {
        let fp = matcher::extract::extract_file(prints.join(name), 500).ok()?;
        Some(compare(&prepare(&fp), &candidate, &mut scratch))
    };
    let finger = finger_of(enrolled);
    // The best of the other impressions, with a margin over the one-finger threshold (the
    // calibration of issue 19 raised it: 1.5x would be above every genuine score here).
    let genuine = (2..=4)
        .map(|k| format!("{finger}_{k}.png"))
        .filter_map(|n| score(&n).map(|s| (n, s)))
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .filter(|(_, s)| *s >= 1.1 * threshold)
        .map(|(n, _)| n)
        .expect("no impression of the enrolled finger clearly matches its template");
    let impostor = (1..=40)
        .filter(|f| *f != finger && !others.contains(f))
        .map(|f| format!("{f}_2.png"))
        .find(|n| prints.join(n).is_file() && score(n).is_some_and(|s| s < 0.5 * threshold))
        .expect("no other finger's scan is clearly refused");
    (genuine, impostor)
}

#[test]
fn a_batch_personalized_card_is_delivered_through_pcscd_by_the_pyzmq_kiosk() {
    let Some(python) = python_with_zmq() else {
        eprintln!(
            "SKIPPED: no python3 with the zmq module (scripts/setup.sh installs python3-zmq)"
        );
        return;
    };
    let pcscd = Pcscd::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let pki = state.join("pki");
    let (keys, keys_config) = issuer(dir.path(), &pki);

    // The production line: one record onto the card in the first vpcd reader.
    let rec = record(0, "0012345679");
    std::fs::write(
        dir.path().join("m.jsonl"),
        format!("{}\n", beside(&rec, dir.path())),
    )
    .unwrap();
    let card = SimCard::create(
        Some(dir.path().join("card.json")),
        SimConfig {
            seed: Some(7100),
            keys,
            ..SimConfig::default()
        },
    )
    .unwrap();
    let inserted = CardInReader::insert(&pcscd, card, PORT0);
    let report = run_batch(
        &dir.path().join("m.jsonl"),
        READER0,
        &state,
        &keys_config,
        1,
    );
    let document = report["records"][0]["document_number"]
        .as_str()
        .unwrap()
        .to_string();

    // The delivery office: the daemon on the same reader, trusting the batch's CSCA.
    let config = dir.path().join("idcardd.toml");
    std::fs::write(
        &config,
        format!(
            "[pki]\ndir = {:?}\ntrust = [\"csca.pem\"]\n{}",
            pki.display().to_string(),
            test_support::hsm::config_toml(test_support::hsm::SHARED),
        ),
    )
    .unwrap();
    let socket = dir.path().join("run/s.sock");
    let endpoint = format!("ipc://{}", socket.display());
    let events = format!("ipc://{}", dir.path().join("run/e.sock").display());
    let mut daemon = std::process::Command::new(idcardd_e2e::idcardd())
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--readers", READER0, "--state-dir"])
        .arg(&state)
        .args(["--endpoint", &endpoint, "--events", &events])
        .stdin(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while !socket.exists() {
        if daemon.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            let _ = daemon.kill();
            panic!("idcardd serve did not bind {endpoint}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // The kiosk (pyzmq): begin with passive authentication, an impostor refused, the holder's
    // finger accepted, activation with the new PIN, replay and re-delivery refused.
    let prints = paths::fingerprints().canonicalize().unwrap();
    let enrolled: Vec<std::path::PathBuf> = ["right_index", "left_index"]
        .iter()
        .map(|f| std::path::PathBuf::from(rec["fingers"][f]["template"]["path"].as_str().unwrap()))
        .collect();
    let others: Vec<u32> = enrolled.iter().map(|p| finger_of(p)).collect();
    let (genuine, impostor) = kiosk_scans(&prints, &enrolled[0], &others);
    let script = paths::repo().join("daemon/tests/py/delivery_client.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .args([
            "--endpoint",
            &endpoint,
            "--events",
            &events,
            "--reader",
            READER0,
        ])
        .arg("--fixtures")
        .arg(&prints)
        .args(["--finger", "2", "--fingers", "2,7", "--document", &document])
        .args(["--genuine", &genuine, "--impostor", &impostor])
        .output()
        .unwrap();
    stop_daemon(&mut daemon).unwrap();
    let text = process::text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("all checks passed"), "{text}");

    // The card itself says it was delivered: activated.
    let sim = inserted.pull();
    assert_eq!(sim.life_cycle(), LifeCycle::Activated);
}

/// Stops the daemon (SIGTERM through `kill`, then a hard kill if it lingers) and reaps it.
fn stop_daemon(daemon: &mut std::process::Child) -> std::io::Result<()> {
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while daemon.try_wait()?.is_none() {
        if std::time::Instant::now() > deadline {
            daemon.kill()?;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    Ok(())
}
