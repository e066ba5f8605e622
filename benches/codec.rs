//! Codec benchmarks: command APDU encode/parse (short and extended), BER-TLV decode/encode of a
//! biometric information template with a 1 KiB biometric data block, FCP parsing, and the
//! transmit chokepoint reading a 4 KiB EF from a card that answers instantly.
//!
//! Run: `cargo bench -p idcardd-benches --bench codec`.

use std::hint::black_box;

use apdu::fcp::{Fcp, LifeCycle};
use apdu::tlv::{Tag, Tlv};
use apdu::transmit::Channel;
use apdu::{Capabilities, Command, Transport, TransportError};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

/// 7F61 { 02 01 01, 7F60 { A1 { 81 01 08, 82 01 00, 87 02 0101 }, 5F2E <1 KiB> } }: the shape
/// of a biometric information template in a fingerprint data group.
fn biometric_template() -> Tlv {
    let bdb: Vec<u8> = (0..1024u32).map(|i| (i * 7) as u8).collect();
    let header = Tlv::constructed(
        Tag(0xA1),
        vec![
            Tlv::primitive(Tag(0x81), [0x08]),
            Tlv::primitive(Tag(0x82), [0x00]),
            Tlv::primitive(Tag(0x87), [0x01, 0x01]),
        ],
    );
    let bit = Tlv::constructed(Tag(0x7F60), vec![header, Tlv::primitive(Tag(0x5F2E), bdb)]);
    Tlv::constructed(Tag(0x7F61), vec![Tlv::primitive(Tag(0x02), [0x01]), bit])
}

fn commands(c: &mut Criterion) {
    let mut g = c.benchmark_group("command");
    let short =
        Command::new(0x00, 0xA4, 0x04, 0x0C).with_data([0xA0, 0x00, 0x00, 0x02, 0x47, 0x10, 0x01]);
    let short_bytes = short.to_bytes().unwrap_or_default();
    let extended = Command::new(0x00, 0xD6, 0x00, 0x00)
        .with_data(vec![0x5A; 2000])
        .with_ne(4096);
    let extended_bytes = extended.to_bytes().unwrap_or_default();
    g.bench_function("encode_short", |b| b.iter(|| black_box(&short).to_bytes()));
    g.bench_function("parse_short", |b| {
        b.iter(|| Command::parse(black_box(&short_bytes)))
    });
    g.throughput(Throughput::Bytes(extended_bytes.len() as u64));
    g.bench_function("encode_extended_2k", |b| {
        b.iter(|| black_box(&extended).to_bytes())
    });
    g.bench_function("parse_extended_2k", |b| {
        b.iter(|| Command::parse(black_box(&extended_bytes)))
    });
    g.finish();
}

fn tlv(c: &mut Criterion) {
    let bit = biometric_template();
    let bytes = bit.encode();
    let path = [Tag(0x7F60), Tag(0x5F2E)];
    let mut g = c.benchmark_group("tlv");
    g.bench_function("find_bdb", |b| {
        b.iter(|| {
            black_box(&bit)
                .find(black_box(&path))
                .map(|t| t.value_len())
        })
    });
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("decode_bit_1k", |b| {
        b.iter(|| Tlv::decode_all(black_box(&bytes)))
    });
    g.bench_function("encode_bit_1k", |b| b.iter(|| black_box(&bit).encode()));
    g.finish();
}

fn fcp(c: &mut Criterion) {
    let ef = Fcp::transparent_ef(0x011E, 4096)
        .with_sfi(0x1E)
        .with_life_cycle(LifeCycle::Activated)
        .with_security(Tlv::primitive(Tag(0x8C), [0x03, 0x90, 0x00]));
    let bytes = ef.to_bytes();
    let mut g = c.benchmark_group("fcp");
    g.bench_function("parse", |b| b.iter(|| Fcp::parse(black_box(&bytes))));
    g.bench_function("to_bytes", |b| b.iter(|| black_box(&ef).to_bytes()));
    g.finish();
}

/// A card that answers every READ BINARY with Ne bytes and 9000, at no cost.
struct InstantCard {
    caps: Capabilities,
}

impl Transport for InstantCard {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let cmd = Command::parse(apdu).map_err(|e| TransportError::Other(e.to_string()))?;
        let mut out = vec![0xA5; cmd.ne.unwrap_or(0)];
        out.extend_from_slice(&[0x90, 0x00]);
        Ok(out)
    }
    fn capabilities(&self) -> Capabilities {
        self.caps
    }
    fn atr(&self) -> Vec<u8> {
        vec![0x3B, 0x00]
    }
    fn reader_name(&self) -> &str {
        "bench"
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        Ok(())
    }
}

fn transmit(c: &mut Criterion) {
    let mut g = c.benchmark_group("transmit");
    g.throughput(Throughput::Bytes(4096));
    let short = Capabilities::default();
    let extended = Capabilities {
        extended_length: true,
        max_command_data: 4096,
        max_response_data: 4096,
        chaining: true,
    };
    for (name, caps) in [("read_4k_short", short), ("read_4k_extended", extended)] {
        let mut ch = Channel::new(InstantCard { caps });
        g.bench_function(name, |b| b.iter(|| ch.read_binary(0, black_box(4096))));
    }
    g.finish();
}

criterion_group!(benches, commands, tlv, fcp, transmit);
criterion_main!(benches);
