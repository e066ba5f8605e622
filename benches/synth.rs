//! Generation speed of synthetic fingers (`matcher::synth`), single thread: one master per
//! iteration (class, orientation, density, ridge growth by iterative Gabor filtering and the
//! ground truth), the next finger seed each time, and one impression of a fixed master. The
//! master is what `idcardd fixtures synth` and the generated part of `idcardd bench calibrate`
//! spend most of their time on.

use criterion::{criterion_group, criterion_main, Criterion};
use matcher::synth::{finger_seed, Master, SynthParams};
use std::hint::black_box;
use std::time::Duration;

fn bench_synth(c: &mut Criterion) {
    let params = SynthParams::default();
    let mut group = c.benchmark_group("synth");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let mut finger = 0u32;
    group.bench_function("master", |b| {
        b.iter(|| {
            finger = finger % 16 + 1;
            black_box(Master::generate(&params, finger_seed(19, finger)).expect("master"))
        })
    });
    let master = Master::generate(&params, finger_seed(19, 1)).expect("master");
    let mut impression = 0u32;
    group.bench_function("impression", |b| {
        b.iter(|| {
            impression = impression % 8 + 1;
            black_box(master.impression(&params, impression).expect("impression"))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_synth);
criterion_main!(benches);
