//! Secure messaging benchmarks: the cost secure messaging adds per APDU.
//!
//! - `sm_apdu/small/*`: one protected READ BINARY of 16 bytes end to end: host wrap, card unwrap,
//!   card wrap of the 16-byte response, host unwrap.
//! - `sm_apdu/write_1k/*`: one protected UPDATE BINARY of 1 KiB: host wrap, card unwrap, card wrap
//!   of the empty response, host unwrap.
//! - `sm_auth/*`: key diversification and the mutual authentication key derivation of both sides
//!   (session keys and cryptograms, host and card).
//!
//! - `sm_client/personalize_card`: the whole personalization of a simulated card through
//!   [`apdu::card::IdCard`] (mutual authentication, 3 files of 7.8 KB in all, PINs,
//!   deactivation), host and in-process card together, AES-256 keys.
//!
//! The SM benches run for AES-128 and AES-256. Run: `cargo bench -p idcardd-benches --bench sm`.

use std::hint::black_box;

use apdu::card::IdCard;
use apdu::sm::{
    card_authenticate_step, derive_auth, diversify, host_authenticate_step, AesKey, KeyRef,
    SmSession,
};
use apdu::{Command, RawResponse, StatusWord};
use cardsim::{SimCard, SimConfig, SimTransport};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn keys() -> [(&'static str, AesKey); 2] {
    [
        ("aes128", AesKey::Aes128([0x42; 16])),
        ("aes256", AesKey::Aes256([0x24; 32])),
    ]
}

fn pair(key: &AesKey) -> (SmSession, SmSession) {
    let host = derive_auth(key, &[1; 16], &[2; 16]).session;
    let card = derive_auth(key, &[1; 16], &[2; 16]).session;
    (host, card)
}

/// One protected exchange; returns the plain response so nothing is optimised away.
fn exchange(host: &mut SmSession, card: &mut SmSession, cmd: &Command, resp: &[u8]) -> RawResponse {
    let wrapped = host
        .wrap_command(cmd)
        .unwrap_or_else(|e| panic!("wrap: {e}"));
    let plain = card
        .unwrap_command(&wrapped)
        .unwrap_or_else(|sw| panic!("unwrap: {sw}"));
    black_box(plain);
    let wire = card.wrap_response(resp, StatusWord::Success);
    let raw = RawResponse::parse(&wire).unwrap_or_else(|e| panic!("parse: {e}"));
    host.unwrap_response(&raw)
        .unwrap_or_else(|e| panic!("unwrap response: {e}"))
}

fn apdus(c: &mut Criterion) {
    let mut g = c.benchmark_group("sm_apdu");
    let read = Command::new(0x00, 0xB0, 0x00, 0x00).with_ne(16);
    let read_resp = [0x5A; 16];
    let write = Command::new(0x00, 0xD6, 0x00, 0x00).with_data(vec![0xA5; 1024]);
    for (name, key) in keys() {
        let (mut host, mut card) = pair(&key);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("small/{name}"), |b| {
            b.iter(|| {
                exchange(
                    &mut host,
                    &mut card,
                    black_box(&read),
                    black_box(&read_resp),
                )
            })
        });
        g.throughput(Throughput::Bytes(1024));
        g.bench_function(format!("write_1k/{name}"), |b| {
            b.iter(|| exchange(&mut host, &mut card, black_box(&write), &[]))
        });
    }
    g.finish();
}

fn auth(c: &mut Criterion) {
    let mut g = c.benchmark_group("sm_auth");
    for (name, master) in keys() {
        g.bench_function(format!("diversify/{name}"), |b| {
            b.iter(|| diversify(black_box(&master), KeyRef::Terminal, black_box(b"SN000042")))
        });
        let card_key = diversify(&master, KeyRef::Terminal, b"SN000042");
        let rnd_ifd = [0x11; 16];
        let rnd_ic = [0x22; 16];
        g.bench_function(format!("mutual_auth_both_sides/{name}"), |b| {
            b.iter(|| {
                let host = host_authenticate_step(black_box(&card_key), &rnd_ifd, &rnd_ic);
                let card = card_authenticate_step(&card_key, &rnd_ic, host.command_data())
                    .unwrap_or_else(|sw| panic!("card: {sw}"));
                host.verify_card(&*card.card_cryptogram)
                    .unwrap_or_else(|e| panic!("host: {e}"))
            })
        });
    }
    g.finish();
}

fn client(c: &mut Criterion) {
    let mut g = c.benchmark_group("sm_client");
    let files: Vec<(u16, Vec<u8>)> = vec![
        (0x0101, vec![0x31; 90]),
        (0x0102, vec![0x32; 6000]),
        (0x0103, vec![0x33; 1700]),
    ];
    g.bench_function("personalize_card", |b| {
        b.iter(|| {
            let config = SimConfig {
                serial: Some(*b"SN000042"),
                ..SimConfig::default()
            };
            let sim = SimCard::create(None, config).unwrap_or_else(|e| panic!("sim: {e}"));
            let mut card = IdCard::new(SimTransport::new(sim));
            let mut perso = card
                .authenticate_perso(&cardsim::fixtures::TestMasters)
                .unwrap_or_else(|e| panic!("auth: {e}"));
            for (fid, data) in &files {
                perso
                    .create_file(*fid, None, data.len() as u32)
                    .unwrap_or_else(|e| panic!("{e}"));
                perso
                    .write_file(*fid, data)
                    .unwrap_or_else(|e| panic!("{e}"));
            }
            perso
                .set_pins(b"123456", b"11223344")
                .unwrap_or_else(|e| panic!("{e}"));
            perso.deactivate().unwrap_or_else(|e| panic!("{e}"));
            drop(perso);
            card.channel().apdu_count()
        })
    });
    g.finish();
}

criterion_group!(benches, apdus, auth, client);
criterion_main!(benches);
