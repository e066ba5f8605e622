//! What the issuer's key store costs per card, SoftHSM2 against the same operation in software
//! (the previous release's keys in process memory):
//!
//! - `card_key/{software,softhsm}`: one card key derived from a master (SP 800-108 with AES-CMAC:
//!   two CMAC blocks for AES-256); in the token, two `CKM_AES_CMAC` calls.
//! - `sod_signature/{software,softhsm}`: one ECDSA P-256 signature of a SHA-256 digest (EF.SOD's
//!   signed attributes): ring in process against `CKM_ECDSA` in the token.
//! - `pin_letter_seal/softhsm`: one PIN letter sealed with AES-256-GCM in the token (the previous
//!   release wrote it in clear: there is no software row).
//! - `per_card/softhsm`: what personalization asks the token for per card: the card key, the
//!   SOD signature and the sealed PIN letter.
//! - `card_key_parallel/softhsm_{1,2,4}_threads`: 200 derivations split over 1, 2 or 4 threads
//!   (the session pool, no lock around the token): how far they overlap.
//!
//! Run: `cargo bench -p idcardd-benches --bench keystore`. The token is made in a temporary
//! folder with its own SoftHSM configuration; the bench is skipped when SoftHSM is missing.

use std::hint::black_box;
use std::sync::Arc;

use apdu::sm::{diversify, AesKey, KeyRef};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING};

fn bench(c: &mut Criterion) {
    if keystore::softhsm_module().is_none() {
        eprintln!("SKIPPED: SoftHSM is not installed (bash scripts/setup.sh installs softhsm2)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(keystore::init_embedded(dir.path()).unwrap().0);
    let serial = *b"\x01\x02\x03\x04\x05\x06\x07\x08";

    let mut g = c.benchmark_group("card_key");
    let master = AesKey::Aes256([0x5A; 32]);
    g.bench_function("software", |b| {
        b.iter(|| diversify(black_box(&master), KeyRef::Personalization, &serial))
    });
    g.bench_function("softhsm", |b| {
        b.iter(|| {
            store
                .derive_card_key(KeyRef::Personalization, black_box(&serial))
                .unwrap()
        })
    });
    g.finish();

    let digest = ring::digest::digest(&ring::digest::SHA256, b"signed attributes");
    let point = store.generate_p256("bench-ds").unwrap();
    let id = keystore::ec_key_id(&point);
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
    let software =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let mut g = c.benchmark_group("sod_signature");
    g.bench_function("software", |b| {
        b.iter(|| {
            software
                .sign(&rng, black_box(b"signed attributes"))
                .unwrap()
        })
    });
    g.bench_function("softhsm", |b| {
        b.iter(|| {
            store
                .sign_p256_digest(&id, black_box(digest.as_ref()))
                .unwrap()
        })
    });
    g.finish();

    let letter = br#"{"transport_pin":"123456","puk":"12345678"}"#;
    let mut g = c.benchmark_group("pin_letter_seal");
    g.bench_function("softhsm", |b| {
        b.iter(|| store.seal(b"serial", black_box(letter)).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("per_card");
    g.bench_function("softhsm", |b| {
        b.iter(|| {
            let key = store
                .derive_card_key(KeyRef::Personalization, &serial)
                .unwrap();
            let sig = store.sign_p256_digest(&id, digest.as_ref()).unwrap();
            let sealed = store.seal(b"serial", letter).unwrap();
            black_box((key, sig, sealed))
        })
    });
    g.finish();

    // The same 200 derivations on 1, 2 and 4 threads: whether the pool lets them overlap.
    let mut g = c.benchmark_group("card_key_parallel");
    const TOTAL: u64 = 200;
    g.throughput(Throughput::Elements(TOTAL));
    g.sample_size(20);
    for threads in [1u64, 2, 4] {
        g.bench_function(format!("softhsm_{threads}_threads"), |b| {
            b.iter(|| {
                std::thread::scope(|s| {
                    for t in 0..threads {
                        let store = &store;
                        s.spawn(move || {
                            for i in 0..TOTAL / threads {
                                let serial = [t as u8, i as u8, 0, 0, 0, 0, 0, 1];
                                black_box(
                                    store.derive_card_key(KeyRef::Terminal, &serial).unwrap(),
                                );
                            }
                        });
                    }
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
