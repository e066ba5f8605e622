//! Comparison speed on real templates: match only (prepared probe and candidate) and with probe
//! preparation. Uses the third-party ISO/IEC 19794-2 records of the shared FVC2002 DB1 B set
//! (`../shared/fingerprints`), or the extractor's output of the same scans with
//! `IDCARDD_BENCH_EXTRACT=1`; skips with a message when the scans are absent.

use criterion::{criterion_group, criterion_main, Criterion};
use matcher::compare::{compare, prepare, Scratch};
use matcher::eval::fvc;
use matcher::Fingerprint;
use std::hint::black_box;
use std::path::Path;

/// Loads every template of the set, in FVC order.
fn templates() -> Option<Vec<Fingerprint>> {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fingerprints/fvc2002_db1_b"
    ));
    if !dir.is_dir() {
        eprintln!("SKIP: {} is absent (shared FVC scans)", dir.display());
        return None;
    }
    let extract = std::env::var_os("IDCARDD_BENCH_EXTRACT").is_some();
    let samples = fvc::scan_dir(dir).ok()?;
    let fps: Vec<Fingerprint> = samples
        .iter()
        .filter_map(|s| {
            if extract {
                matcher::extract::extract_file(&s.path, 500).ok()
            } else {
                fvc::read_iso(&s.path.with_extension("iso")).ok()
            }
        })
        .collect();
    Some(fps)
}

fn bench_compare(c: &mut Criterion) {
    let Some(fps) = templates() else { return };
    if fps.len() < 2 {
        eprintln!("SKIP: fewer than two templates");
        return;
    }
    let prepared: Vec<_> = fps.iter().map(prepare).collect();
    // Every ordered pair of distinct templates: mostly impostors, as in 1:N-like use.
    let pairs: Vec<(usize, usize)> = (0..fps.len())
        .flat_map(|i| (0..fps.len()).filter(move |&j| j != i).map(move |j| (i, j)))
        .collect();
    let mut scratch = Scratch::new();
    let mut k = 0usize;
    c.bench_function("compare/match_only", |b| {
        b.iter(|| {
            let (i, j) = pairs[k % pairs.len()];
            k += 1;
            black_box(compare(&prepared[i], &prepared[j], &mut scratch))
        })
    });
    let mut k = 0usize;
    c.bench_function("compare/with_probe_preparation", |b| {
        b.iter(|| {
            let (i, j) = pairs[k % pairs.len()];
            k += 1;
            let probe = prepare(black_box(&fps[i]));
            black_box(compare(&probe, &prepared[j], &mut scratch))
        })
    });
    let mut k = 0usize;
    c.bench_function("compare/prepare", |b| {
        b.iter(|| {
            k += 1;
            black_box(prepare(black_box(&fps[k % fps.len()])))
        })
    });
}

criterion_group!(benches, bench_compare);
criterion_main!(benches);
