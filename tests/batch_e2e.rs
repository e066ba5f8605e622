//! `idcardd batch run` through real pcscd + vsmartcard-vpcd: two simulated cards behind the two
//! vpcd readers, two applicant records; both cards come back personalized, deactivated, with
//! the record's DG1 and an EF.SOD, and the journal's report names their serials.
//!
//! Run under `flock /tmp/idcardd-pcsc.lock` when other suites use pcscd on this machine.

use std::path::Path;

use apdu::card::IdCard;
use apdu::fcp::LifeCycle;
use apdu::sim::{SimCard, SimConfig, SimTransport};
use apdu::sm::AesKey;
use idcardd_e2e::{run_idcardd, CardInReader, Pcscd, PORT0, PORT1, READER0, READER1};
use serde_json::Value;

/// National-id profile minimums (daemon/profiles/national-id.toml) a template must reach.
const MIN_QUALITY: u8 = 40;
const MIN_MINUTIAE: usize = 12;

/// Fixture ISO templates of distinct synthetic fingers that pass the national-id minimums
/// (chosen by content: the synthetic fixtures are regenerated from time to time).
fn usable_templates(prints: &Path) -> Vec<std::path::PathBuf> {
    let mut paths: Vec<_> = std::fs::read_dir(prints)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "iso"))
        .collect();
    paths.sort();
    let mut by_finger = std::collections::BTreeMap::new();
    for p in paths {
        let finger = p
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .split('_')
            .next()
            .unwrap()
            .to_string();
        let bytes = std::fs::read(&p).unwrap();
        if let Ok(fp) =
            matcher::template::decode(&bytes, matcher::template::CardFormat::Record, 500)
        {
            if fp.quality >= MIN_QUALITY && fp.minutiae.len() >= MIN_MINUTIAE {
                by_finger.entry(finger).or_insert(p);
            }
        }
    }
    let good: Vec<_> = by_finger.into_values().collect();
    assert!(good.len() >= 3, "fewer than three usable fixture templates");
    good
}

/// A national-id record with fixture ISO templates (absolute paths).
fn record(i: usize, code: &str) -> Value {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let text = std::fs::read_to_string(repo.join("fixtures/applicants/national-valid-1.json"))
        .expect("fixture record");
    let mut r: Value = serde_json::from_str(&text).unwrap();
    let prints = repo.join("fixtures/fingerprints").canonicalize().unwrap();
    let good = usable_templates(&prints);
    r["tracking_code"] = format!("E2E-{i}").into();
    r["national_code"] = code.into();
    r["fingers"] = serde_json::json!({
        "right_index": {"template": {"path": good[i]}},
        "left_index": {"template": {"path": good[i + 1]}},
    });
    r
}

#[test]
fn batch_through_pcscd_personalizes_both_readers_cards() {
    let pcscd = Pcscd::start();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let pki = state.join("pki");
    let (code, _, err) = run_idcardd(&["pki", "init", pki.to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    let manifest = dir.path().join("m.jsonl");
    // Two valid national codes (check digits computed by hand: weights 10..2).
    let records = [record(0, "0012345679"), record(1, "0499370899")];
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(&manifest, text).unwrap();

    let mut inserted = Vec::new();
    for (i, port) in [PORT0, PORT1].into_iter().enumerate() {
        let config = SimConfig {
            seed: Some(7000 + i as u64),
            ..SimConfig::default()
        };
        let card = SimCard::create(Some(dir.path().join(format!("card{i}.json"))), config).unwrap();
        inserted.push(CardInReader::insert(&pcscd, card, port));
    }
    let readers = format!("{READER0},{READER1}");
    let (code, out, err) = run_idcardd(
        &[
            "batch",
            "run",
            manifest.to_str().unwrap(),
            "--readers",
            &readers,
            "--state-dir",
            state.to_str().unwrap(),
            "--json",
        ],
        &[],
    );
    assert_eq!(code, 0, "stdout {out}\nstderr {err}");
    let summary: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(summary["counts"]["personalized"], 2, "{summary}");
    let report: Value = serde_json::from_str(
        &std::fs::read_to_string(summary["report_json"].as_str().unwrap()).unwrap(),
    )
    .unwrap();

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
        let mut session = id
            .authenticate_terminal(&AesKey::test_terminal_master())
            .unwrap();
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
