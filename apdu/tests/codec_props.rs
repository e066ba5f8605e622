//! Property tests of the codecs: BER-TLV, FCP, command and response APDUs.

use apdu::fcp::{Fcp, FileDescriptor, LifeCycle};
use apdu::tlv::{self, Tag, Tlv};
use apdu::{Command, RawResponse};
use proptest::prelude::*;

/// A well-formed tag with the constructed bit as asked: one byte (tag number 0-30) or two to
/// four bytes after a `xx1F` first byte.
fn tag(constructed: bool) -> impl Strategy<Value = Tag> {
    let cons = if constructed { 0x20u32 } else { 0 };
    let one = (0u32..4, 0u32..31)
        .prop_map(move |(class, n)| (class << 6) | cons | n)
        .prop_filter("00 is padding", |&b| b != 0);
    let multi = (
        0u32..4,
        prop::collection::vec(0x80u32..=0xFF, 0..3),
        0u32..0x80,
    )
        .prop_map(move |(class, mid, last)| {
            let mut v = (class << 6) | cons | 0x1F;
            for b in mid {
                v = (v << 8) | b;
            }
            (v << 8) | last
        })
        .prop_filter("FF is padding", |&v| Tag(v).first_byte() != 0xFF);
    prop_oneof![one, multi].prop_map(Tag)
}

/// Trees of TLV objects whose tags agree with their values, up to 6 levels deep.
fn tree() -> impl Strategy<Value = Tlv> {
    let leaf = (tag(false), prop::collection::vec(any::<u8>(), 0..300))
        .prop_map(|(t, v)| Tlv::primitive(t, v));
    leaf.prop_recursive(6, 64, 5, |inner| {
        (tag(true), prop::collection::vec(inner, 0..5)).prop_map(|(t, c)| Tlv::constructed(t, c))
    })
}

fn command() -> impl Strategy<Value = Command> {
    let data = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..=255),
        1 => prop::collection::vec(any::<u8>(), 256..2000),
    ];
    let ne = prop_oneof![
        Just(None),
        (1usize..=256).prop_map(Some),
        (1usize..=65_536).prop_map(Some)
    ];
    (any::<[u8; 4]>(), data, ne).prop_map(|(h, data, ne)| {
        let mut cmd = Command::new(h[0], h[1], h[2], h[3]).with_data(data);
        cmd.ne = ne;
        cmd
    })
}

fn fcp() -> impl Strategy<Value = Fcp> {
    let descriptor = prop_oneof![Just(0x38u8), Just(0x01u8), Just(0x09u8), any::<u8>()];
    (
        descriptor,
        prop::option::of(any::<u16>()),
        prop::option::of(any::<u32>()),
        prop::option::of(1u8..=30),
        prop::option::of(any::<u8>()),
        prop::option::of(prop::collection::vec(any::<u8>(), 1..=16)),
        prop::option::of((any::<u8>(), prop::collection::vec(any::<u8>(), 0..=4))),
    )
        .prop_map(|(d, fid, size, sfi, lcs, name, coding)| {
            let mut f = Fcp::new(FileDescriptor(d));
            f.fid = fid;
            f.size = size;
            f.sfi = sfi;
            f.life_cycle = lcs.map(LifeCycle::from);
            f.df_name = name;
            if let Some((c, info)) = coding {
                f.data_coding = Some(c);
                f.record_info = info;
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn tlv_decode_inverts_encode(list in prop::collection::vec(tree(), 0..4)) {
        let bytes = Tlv::encode_all(&list);
        prop_assert_eq!(bytes.len(), list.iter().map(Tlv::encoded_len).sum::<usize>());
        prop_assert_eq!(&Tlv::decode_all(&bytes).unwrap(), &list);
        for t in &list {
            prop_assert_eq!(&Tlv::decode_one(&t.encode()).unwrap(), t);
        }
    }

    #[test]
    fn tlv_find_all_sees_every_object(t in tree()) {
        // Every object's tag is found, and the first hit by path is the first in pre-order.
        let tags: Vec<Tag> = collect_tags(&t);
        for tag in &tags {
            let hits = t.find_all(*tag);
            prop_assert_eq!(hits.len(), tags.iter().filter(|x| *x == tag).count());
        }
        for child in t.children() {
            let first = t.find(&[child.tag]).unwrap();
            prop_assert_eq!(first, t.children().iter().find(|c| c.tag == child.tag).unwrap());
        }
    }

    #[test]
    fn tlv_decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(list) = Tlv::decode_all(&bytes) {
            // Whatever decodes re-encodes to something that decodes the same.
            prop_assert_eq!(Tlv::decode_all(&Tlv::encode_all(&list)).unwrap(), list);
        }
        let _ = Tlv::decode(&bytes);
        let _ = tlv::parse_length(&bytes);
    }

    #[test]
    fn tlv_decode_never_panics_on_nested_headers(parts in prop::collection::vec(
        (prop_oneof![Just(0x62u8), Just(0x7F), Just(0x61), Just(0xA0), Just(0x5F), any::<u8>()],
         prop_oneof![Just(0x80u8), Just(0x81), Just(0x82), Just(0x84), Just(0x85), any::<u8>()]),
        0..200))
    {
        let bytes: Vec<u8> = parts.into_iter().flat_map(|(a, b)| [a, b]).collect();
        let _ = Tlv::decode_all(&bytes);
        let _ = Fcp::parse(&bytes);
    }

    #[test]
    fn fcp_parse_inverts_to_bytes(f in fcp()) {
        prop_assert_eq!(Fcp::parse(&f.to_bytes()).unwrap(), f);
    }

    #[test]
    fn fcp_parse_never_panics(body in prop::collection::vec(any::<u8>(), 0..128)) {
        let mut bytes = vec![0x62];
        tlv::write_length(body.len(), &mut bytes);
        bytes.extend_from_slice(&body);
        let _ = Fcp::parse(&bytes);
        let _ = Fcp::parse(&body);
    }

    #[test]
    fn command_parse_inverts_encode(cmd in command()) {
        prop_assert_eq!(&Command::parse(&cmd.to_bytes().unwrap()).unwrap(), &cmd);
        prop_assert_eq!(&Command::parse(&cmd.encode(true).unwrap()).unwrap(), &cmd);
        if !cmd.needs_extended() {
            prop_assert_eq!(&Command::parse(&cmd.encode(false).unwrap()).unwrap(), &cmd);
        } else {
            prop_assert!(cmd.encode(false).is_err());
        }
    }

    #[test]
    fn command_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(cmd) = Command::parse(&bytes) {
            // A parsed command re-encodes to a form that parses the same.
            prop_assert_eq!(Command::parse(&cmd.to_bytes().unwrap()).unwrap(), cmd);
        }
    }

    #[test]
    fn raw_response_parse_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        match RawResponse::parse(&bytes) {
            Ok(resp) => prop_assert_eq!(resp.to_bytes(), bytes),
            Err(_) => prop_assert!(bytes.len() < 2),
        }
    }
}

fn collect_tags(t: &Tlv) -> Vec<Tag> {
    let mut out = vec![t.tag];
    for c in t.children() {
        out.extend(collect_tags(c));
    }
    out
}
