//! Latency of `delivery.begin` and `delivery.verify` in process, over a simulated reader,
//! through `api::dispatch` (what the server runs on its worker threads), with the split the
//! methods report in `timing_ms`.
//!
//! ```sh
//! cargo run --release -p idcardd --example bench_delivery -- [ITERATIONS] [SCANS_DIR]
//! ```
//!
//! A card is personalized from `fixtures/applicants/national-valid-1.json` (right index from
//! `fixtures/fingerprints/1_1.png`); each verify sends another impression of that finger
//! (`1_2`..`1_4`, in turn) as a binary frame, as a kiosk would.

use std::path::{Path, PathBuf};
use std::time::Instant;

use apdu::card::IdCard;
use idcardd::api::{dispatch, Call};
use idcardd::service::{Service, ServiceConfig};
use issuance::applicant::qc::{check, MatcherCheck};
use issuance::applicant::Applicant;
use issuance::personalize::{personalize, Issue, NoHooks, Plan};
use issuance::pki::{self, DocumentSigner};
use issuance::profile::ProfileSet;
use serde_json::{json, Value};

/// p50 and p99 (nearest rank) of `values`, in the unit given.
fn percentiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let rank =
        |p: f64| values[((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1];
    (rank(0.50), rank(0.99))
}

fn report(name: &str, samples: &[Value], wall: &mut [f64]) {
    let (p50, p99) = percentiles(wall);
    println!(
        "{name}: {} calls, wall p50 {p50:.2} ms, p99 {p99:.2} ms",
        wall.len()
    );
    for part in [
        "card_io",
        "passive_auth",
        "extraction",
        "comparison",
        "other",
        "total",
    ] {
        let mut v: Vec<f64> = samples
            .iter()
            .filter_map(|s| s["timing_ms"][part].as_f64())
            .collect();
        if v.iter().all(|x| *x == 0.0) {
            continue;
        }
        let (p50, p99) = percentiles(&mut v);
        println!("  {part:<13} p50 {p50:>7.2} ms   p99 {p99:>7.2} ms");
    }
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let iterations: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let scans: PathBuf = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| repo.join("fixtures/fingerprints"));

    let dir = tempfile::tempdir()?;
    // The state directory's embedded SoftHSM token holds the keys, as in production.
    let mut config = ServiceConfig::new(dir.path().join("state"), vec!["sim:0".into()]);
    config.trust = vec![dir.path().join("pki/csca.pem")];
    config.pki_dir = Some(dir.path().join("pki"));
    config.delivery.max_attempts = u32::MAX;
    let svc = Service::open(config)?;
    pki::init(&dir.path().join("pki"), &svc.keys)?;
    let signer = DocumentSigner::load(&dir.path().join("pki"), svc.keys.clone())?;

    let applicant = Applicant::load(repo.join("fixtures/applicants/national-valid-1.json"))
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let profiles = ProfileSet::builtin()?;
    let profile = profiles
        .get(&applicant.profile)
        .ok_or_else(|| anyhow::anyhow!("no profile"))?;
    let valid = check(&applicant, profile, &MatcherCheck).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let plan = Plan::build(&valid, profile, &signer, &Issue::today("A00000001"))?;
    let keys: std::sync::Arc<dyn apdu::sm::CardKeys> = svc.keys.clone();
    let mut card = IdCard::new(issuance::readers::open_sim(&svc.config.sim_dir, 0, &keys)?);
    personalize(&mut card, &plan, svc.keys.as_ref(), &mut NoHooks)?;
    drop(card);

    let live: Vec<Vec<u8>> = (2..=4)
        .map(|i| std::fs::read(scans.join(format!("1_{i}.png"))))
        .collect::<Result<_, _>>()?;

    let call = |method: &str, params: Value, frames: Vec<Vec<u8>>| {
        dispatch(&svc, method, Call { params, frames })
            .map(|r| r.result)
            .map_err(|e| anyhow::anyhow!("{method}: {} ({})", e.message, e.code.name()))
    };
    // Warm-up (page cache, first SQLite writes, allocator).
    let session = call("delivery.begin", json!({"reader": "sim:0"}), vec![])?["session"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    call(
        "delivery.verify",
        json!({"session": session, "finger": 2}),
        vec![live[0].clone()],
    )?;

    let (mut begin, mut begin_wall) = (Vec::new(), Vec::new());
    for _ in 0..iterations {
        let t = Instant::now();
        let r = call("delivery.begin", json!({"reader": "sim:0"}), vec![])?;
        begin_wall.push(t.elapsed().as_secs_f64() * 1e3);
        begin.push(r);
    }
    let session = begin
        .last()
        .map(|r| r["session"].clone())
        .unwrap_or_default();
    let (mut verify, mut verify_wall, mut refused) = (Vec::new(), Vec::new(), 0);
    for i in 0..iterations {
        let frame = live[i % live.len()].clone();
        let t = Instant::now();
        let r = dispatch(
            &svc,
            "delivery.verify",
            Call {
                params: json!({"session": session, "finger": 2}),
                frames: vec![frame],
            },
        );
        verify_wall.push(t.elapsed().as_secs_f64() * 1e3);
        match r {
            Ok(r) => verify.push(r.result),
            Err(_) => refused += 1,
        }
    }
    println!(
        "delivery bench: {iterations} iterations, sim reader in process, {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    report("delivery.begin", &begin, &mut begin_wall);
    report("delivery.verify", &verify, &mut verify_wall);
    if refused > 0 {
        println!("  ({refused} verifies refused: their wall time is included, their split is not)");
    }
    Ok(())
}
