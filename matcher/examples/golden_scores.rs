//! Bit-exact regression check of the comparator: extracts the shared sets once (cached as JSON
//! under /tmp/golden/), scores every ordered pair and writes `scores.bin` the first time, or
//! checks the scores against it afterwards; the same for a digest of the prepared templates
//! (`prepared.digest`: their `Debug` text, in which every float prints so that it reads back
//! to the same bits), so that a change to preparation alone shows too. `GOLDEN_LIMIT=n` uses
//! only the first n templates of each set (for profiling; no check); `GOLDEN_REPEAT=n` times n
//! rounds; `GOLDEN_PREPARE_REPEAT=n` also times n more preparations of every template;
//! `GOLDEN_SETS=set[:dpi],...` uses other shared sets and `GOLDEN_KINDS=ext` (or `iso`) one kind
//! of template only (for profiling; no check).

use matcher::compare::{compare, prepare, Scratch};
use matcher::eval::fvc;
use matcher::Fingerprint;
use std::path::Path;
use std::time::Instant;

const SETS: [&str; 2] = ["fvc2002_db1_b", "fvc2004_db1_b"];

/// Templates of one set and kind ("ext" from the extractor, "iso" from the shared records).
fn load(set: &str, dpi: u32, kind: &str) -> Vec<Fingerprint> {
    let cache = format!("/tmp/golden/{set}_{kind}.json");
    if let Ok(text) = std::fs::read_to_string(&cache) {
        return serde_json::from_str(&text).expect("golden cache");
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/fingerprints")
        .join(set);
    let samples = fvc::scan_dir(&dir).expect("scan");
    let fps: Vec<Fingerprint> = samples
        .iter()
        .filter_map(|s| {
            if kind == "ext" {
                matcher::extract::extract_file(&s.path, dpi).ok()
            } else {
                fvc::read_iso(&s.path.with_extension("iso")).ok()
            }
        })
        .collect();
    std::fs::create_dir_all("/tmp/golden").unwrap();
    std::fs::write(&cache, serde_json::to_string(&fps).unwrap()).unwrap();
    fps
}

fn main() {
    let limit = env_count("GOLDEN_LIMIT", usize::MAX);
    let repeat = env_count("GOLDEN_REPEAT", 1);
    let mut groups = Vec::new();
    let mut templates = Vec::new();
    let chosen = std::env::var("GOLDEN_SETS").ok();
    let kinds = std::env::var("GOLDEN_KINDS").ok();
    let sets: Vec<(String, u32)> = match &chosen {
        Some(list) => list
            .split(',')
            .map(|item| match item.split_once(':') {
                Some((set, dpi)) => (set.to_string(), dpi.parse().expect("GOLDEN_SETS dpi")),
                None => (item.to_string(), 500),
            })
            .collect(),
        None => SETS.iter().map(|s| (s.to_string(), 500)).collect(),
    };
    for (set, dpi) in &sets {
        let (set, dpi) = (set.as_str(), *dpi);
        for kind in ["ext", "iso"] {
            if kinds.as_deref().is_some_and(|k| k != kind) {
                continue;
            }
            let mut fps = load(set, dpi, kind);
            fps.truncate(limit);
            eprintln!("{set} {kind}: {} templates", fps.len());
            groups.push(fps.iter().map(prepare).collect::<Vec<_>>());
            templates.push(fps);
        }
    }
    let prepare_repeat = env_count("GOLDEN_PREPARE_REPEAT", 0);
    if prepare_repeat > 0 {
        let all: Vec<&Fingerprint> = templates.iter().flatten().collect();
        let start = Instant::now();
        for _ in 0..prepare_repeat {
            for fp in &all {
                std::hint::black_box(prepare(std::hint::black_box(fp)));
            }
        }
        let secs = start.elapsed().as_secs_f64();
        let n = all.len() * prepare_repeat;
        eprintln!("{n} preparations in {secs:.3} s: {:.0}/s", n as f64 / secs);
    }
    let mut scratch = Scratch::new();
    let mut scores: Vec<u32> = Vec::new();
    let start = Instant::now();
    for round in 0..repeat {
        for g in &groups {
            for a in g {
                for b in g {
                    let s = compare(a, b, &mut scratch);
                    if round == 0 {
                        scores.push(s.to_bits());
                    }
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let n = scores.len() * repeat;
    eprintln!("{n} comparisons in {secs:.3} s: {:.0}/s", n as f64 / secs);
    if limit != usize::MAX || chosen.is_some() || kinds.is_some() {
        return;
    }
    let digest = fnv1a(format!("{groups:?}").as_bytes());
    check_or_write(
        "/tmp/golden/prepared.digest",
        &digest.to_le_bytes(),
        "prepared templates",
    );
    let bytes: Vec<u8> = scores.iter().flat_map(|s| s.to_le_bytes()).collect();
    let path = "/tmp/golden/scores.bin";
    match std::fs::read(path) {
        Ok(gold) => {
            assert_eq!(gold.len(), bytes.len(), "pair count differs");
            let diff = gold
                .chunks(4)
                .zip(bytes.chunks(4))
                .filter(|(a, b)| a != b)
                .count();
            assert_eq!(diff, 0, "{diff} of {} scores differ", scores.len());
            eprintln!("OK: {} scores bit-identical", scores.len());
        }
        Err(_) => {
            std::fs::write(path, bytes).unwrap();
            eprintln!("wrote {} scores to {path}", scores.len());
        }
    }
}

/// The whole number in environment variable `name`, or `default`.
fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// 64-bit FNV-1a of `bytes`.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Checks `bytes` against the file at `path`, or writes it there the first time.
fn check_or_write(path: &str, bytes: &[u8], what: &str) {
    match std::fs::read(path) {
        Ok(gold) => {
            assert_eq!(gold, bytes, "{what} differ from {path}");
            eprintln!("OK: {what} bit-identical");
        }
        Err(_) => {
            std::fs::write(path, bytes).unwrap();
            eprintln!("wrote {what} to {path}");
        }
    }
}
