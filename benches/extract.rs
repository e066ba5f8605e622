//! Extraction speed per scan, single thread, on eight scans (fingers 101-108, impression 1) of
//! each shared FVC set (`../shared/fingerprints`); skips with a message when they are absent.
//! Each iteration extracts the next scan of the set, so the reported time is per image.
//! Decoding is not included: scans are loaded before timing.
//!
//! `extract_learned/<set>/<threads>` times the optional learned extractor (LEADER, `leader`
//! crate) the same way, on one thread and on the two a delivery desk's second opinion uses by
//! default; skipped with a message when scripts/setup.sh did not install it.

use criterion::{criterion_group, criterion_main, Criterion};
use matcher::extract::extract;
use matcher::image::GrayImage;
use std::hint::black_box;
use std::path::Path;

/// The shared sets and their resolutions.
const SETS: [(&str, u32); 5] = [
    ("fvc2002_db1_b", 500),
    ("fvc2002_db3_b", 500),
    ("fvc2004_db1_b", 500),
    ("fvc2004_db3_b", 512),
    ("fvc2004_db4_b", 500),
];

fn bench_extract(c: &mut Criterion) {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fingerprints"
    ));
    if !dir.is_dir() {
        eprintln!("SKIP: {} is absent (shared FVC scans)", dir.display());
        return;
    }
    let mut group = c.benchmark_group("extract");
    for (set, dpi) in SETS {
        let images: Vec<GrayImage> = (101..=108)
            .filter_map(|f| GrayImage::open(dir.join(set).join(format!("{f}_1.tif"))).ok())
            .collect();
        if images.is_empty() {
            eprintln!("SKIP: no scans in {set}");
            continue;
        }
        let mut next = 0;
        group.bench_function(set, |b| {
            b.iter(|| {
                let image = &images[next % images.len()];
                next += 1;
                black_box(extract(black_box(image), dpi).ok())
            })
        });
    }
    group.finish();
}

fn bench_extract_learned(c: &mut Criterion) {
    let dir = Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/fingerprints"
    ));
    let learned_dir = leader::LearnedExtractor::default_dir();
    if !dir.is_dir() || !leader::LearnedExtractor::installed(&learned_dir) {
        eprintln!(
            "SKIP: the shared FVC scans or the learned extractor ({}) are absent",
            learned_dir.display()
        );
        return;
    }
    let mut group = c.benchmark_group("extract_learned");
    // About a second per call: the fewest samples criterion takes.
    group.sample_size(10);
    for threads in [1, 2] {
        let learned = match leader::LearnedExtractor::open(&learned_dir, threads) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("SKIP: {e}");
                return;
            }
        };
        for (set, dpi) in SETS {
            let images: Vec<GrayImage> = (101..=108)
                .filter_map(|f| GrayImage::open(dir.join(set).join(format!("{f}_1.tif"))).ok())
                .collect();
            if images.is_empty() {
                continue;
            }
            let mut next = 0;
            group.bench_function(format!("{set}/{threads}"), |b| {
                b.iter(|| {
                    let image = &images[next % images.len()];
                    next += 1;
                    black_box(learned.extract(black_box(image), dpi).ok())
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, bench_extract, bench_extract_learned);
criterion_main!(benches);
