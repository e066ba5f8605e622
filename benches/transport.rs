//! Transport benchmarks: how fast APDUs reach the simulated card.
//!
//! - `transport/sim/*`: in process, through [`SimTransport`] (no I/O).
//! - `transport/vpcd_socket/*`: the same bridge thread over the bare vpcd socket protocol, no
//!   pcscd ([`cardsim::vpcd_reader`]): what the socket and the second thread cost.
//! - `transport/pcsc_vpcd/*`: through a real pcscd + vsmartcard-vpcd, the card served by the
//!   vpcd bridge on a thread of this process (started by the e2e harness; skipped with a note
//!   when pcscd is not installed).
//!
//! For each: `small_apdu` is one GET DATA 0101 (the 8-byte serial) through the chokepoint;
//! `write_10k` / `read_10k` write and read a 10 KiB EF under secure messaging in a
//! personalization session (the card takes 4 KiB data fields, so 3 APDUs each). The card keeps
//! its state in memory, so the figures measure the transport, not the disk.
//!
//! Run: `cargo bench -p idcardd-benches --bench transport`.

use std::hint::black_box;
use std::time::Duration;

use apdu::card::IdCard;
use apdu::commands;
use apdu::Transport;
use cardsim::{SimCard, SimConfig, SimTransport};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// Size of the EF written and read.
const BIG: usize = 10 * 1024;
/// The EF used (DG2, where the facial image goes).
const FID: u16 = 0x0102;

fn new_card() -> SimCard {
    SimCard::create(
        None,
        SimConfig {
            seed: Some(7),
            ..SimConfig::default()
        },
    )
    .expect("simulated card")
}

/// Benches one card behind `transport` under `transport/<name>/...`.
fn bench_card<T: Transport>(c: &mut Criterion, name: &str, transport: T) {
    let mut card = IdCard::new(transport);
    card.select_application().expect("select the application");
    let mut g = c.benchmark_group(format!("transport/{name}"));
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));

    let get_serial = commands::get_data(apdu::card::TAG_SERIAL, 8).expect("GET DATA");
    g.throughput(Throughput::Elements(1));
    g.bench_function("small_apdu", |b| {
        b.iter(|| black_box(card.channel().transmit(&get_serial).expect("GET DATA")))
    });

    let data: Vec<u8> = (0..BIG).map(|i| (i % 251) as u8).collect();
    let mut perso = card
        .authenticate_perso(&cardsim::fixtures::TestMasters)
        .expect("perso session");
    perso.create_file(FID, None, BIG as u32).expect("create EF");
    let before = perso.channel().apdu_count();
    perso.write_file(FID, &data).expect("write");
    let apdus = perso.channel().apdu_count() - before;
    eprintln!("transport/{name}: a {BIG}-byte write takes {apdus} APDUs");
    g.throughput(Throughput::Bytes(BIG as u64));
    g.bench_function("write_10k", |b| {
        b.iter(|| perso.write_file(FID, black_box(&data)).expect("write"))
    });
    g.bench_function("read_10k", |b| {
        b.iter(|| black_box(perso.read_file(FID).expect("read")))
    });
    g.finish();
}

fn in_process(c: &mut Criterion) {
    bench_card(c, "sim", SimTransport::new(new_card()));
}

fn over_the_vpcd_socket(c: &mut Criterion) {
    let listener = cardsim::vpcd_reader::VpcdListener::bind_loopback().expect("listen");
    let config = cardsim::vpcd::VpcdConfig {
        port: listener.port(),
        ..Default::default()
    };
    let bridge = cardsim::vpcd::VpcdBridge::spawn(new_card(), config).expect("bridge");
    let reader = listener.accept(Duration::from_secs(10)).expect("card");
    bench_card(c, "vpcd_socket", reader);
    bridge.stop().expect("pull the card");
}

fn through_pcscd(c: &mut Criterion) {
    if std::env::var_os("PATH").map(|p| {
        std::env::split_paths(&p)
            .chain([std::path::PathBuf::from("/usr/sbin")])
            .any(|d| d.join("pcscd").is_file())
    }) != Some(true)
    {
        eprintln!(
            "transport/pcsc_vpcd: skipped, pcscd is not installed (scripts/setup.sh installs it)"
        );
        return;
    }
    let pcscd = idcardd_e2e::Pcscd::start();
    let card = idcardd_e2e::CardInReader::insert(&pcscd, new_card(), idcardd_e2e::PORT0);
    let transport = pcscd.pcsc.connect(idcardd_e2e::READER0).expect("connect");
    bench_card(c, "pcsc_vpcd", transport);
    card.pull();
}

criterion_group!(benches, in_process, over_the_vpcd_socket, through_pcscd);
criterion_main!(benches);
