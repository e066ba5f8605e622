//! Template formats: round trips, every third-party `.iso` file of the shared set, corrupted
//! inputs, and decoders that never panic on arbitrary bytes.

use matcher::params::UNTYPED_CARD_MINUTIA_QUALITY;
use matcher::template::{
    self, ansi378, card, iso19794, AnsiRecord, CardFormat, ExtendedArea, FingerView, Format,
    IsoRecord, RecordMinutia,
};
use matcher::{Error, Fingerprint, Minutia, MinutiaKind};
use proptest::prelude::*;
use std::f32::consts::TAU;
use std::path::PathBuf;
use test_support::paths;

/// Every `.iso` file of the shared set, or `None` (with a message) when the set is absent.
fn shared_iso_files() -> Option<Vec<PathBuf>> {
    let root = paths::shared_fingerprints()?;
    let mut files = Vec::new();
    for set in std::fs::read_dir(&root).expect("read shared dir") {
        let set = set.expect("dir entry").path();
        if !set.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&set).expect("read set dir") {
            let f = f.expect("dir entry").path();
            if f.extension().is_some_and(|e| e == "iso") {
                files.push(f);
            }
        }
    }
    files.sort();
    Some(files)
}

fn is_invalid(r: Result<impl std::fmt::Debug, Error>) -> String {
    match r {
        Err(Error::InvalidTemplate(m)) => m,
        other => panic!("expected InvalidTemplate, got {other:?}"),
    }
}

fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(TAU);
    d.min(TAU - d)
}

/// A fingerprint of `n` minutiae spread over a 300x400 image at 500 dpi.
fn sample_print(n: usize) -> Fingerprint {
    let kinds = [
        MinutiaKind::Ending,
        MinutiaKind::Bifurcation,
        MinutiaKind::Other,
    ];
    Fingerprint {
        width: 300,
        height: 400,
        dpi_x: 500,
        dpi_y: 500,
        quality: 77,
        minutiae: (0..n)
            .map(|i| Minutia {
                x: 20.0 + (i * 37 % 250) as f32 + 0.3,
                y: 30.0 + (i * 53 % 340) as f32 - 0.2,
                direction: (i as f32 * 0.7).rem_euclid(TAU),
                kind: kinds[i % 3],
                quality: (i * 13 % 101) as u8,
            })
            .collect(),
    }
}

#[test]
fn iso_record_round_trip_within_quantization() {
    let fp = sample_print(40);
    let bytes = template::encode(&fp, CardFormat::Record).unwrap();
    assert_eq!(bytes.len(), 24 + 4 + 40 * 6 + 2);
    let back = template::decode(&bytes, CardFormat::Record, 0).unwrap();
    assert_eq!(
        (back.width, back.height, back.dpi_x, back.dpi_y),
        (300, 400, 500, 500)
    );
    assert_eq!(back.quality, 77);
    assert_eq!(back.minutiae.len(), 40);
    for (a, b) in fp.minutiae.iter().zip(&back.minutiae) {
        assert!(
            (a.x - b.x).abs() <= 0.5 && (a.y - b.y).abs() <= 0.5,
            "{a:?} {b:?}"
        );
        assert!(angle_diff(a.direction, b.direction) <= TAU / 512.0 + 1e-5);
        assert_eq!((a.kind, a.quality), (b.kind, b.quality));
    }
    // Bytes -> record -> bytes is exact.
    let rec = iso19794::decode(&bytes).unwrap();
    assert_eq!(iso19794::encode(&rec).unwrap(), bytes);
}

#[test]
fn ansi_record_round_trip_within_quantization() {
    let fp = sample_print(30);
    let rec = AnsiRecord::from_fingerprint(&fp, 2).unwrap();
    let bytes = ansi378::encode(&rec).unwrap();
    assert_eq!(bytes.len(), 26 + 4 + 30 * 6 + 2);
    let (format, any) = template::decode_any(&bytes).unwrap();
    assert_eq!(format, Format::Ansi378_2004);
    let back = &any.fingerprints()[0];
    for (a, b) in fp.minutiae.iter().zip(&back.minutiae) {
        assert!((a.x - b.x).abs() <= 0.5 && (a.y - b.y).abs() <= 0.5);
        assert!(angle_diff(a.direction, b.direction) <= 1f32.to_radians() + 1e-5);
        assert_eq!((a.kind, a.quality), (b.kind, b.quality));
    }
    assert_eq!(ansi378::decode(&bytes).unwrap(), rec);
}

#[test]
fn ansi_long_length_form_round_trips_and_is_sniffed() {
    // 55 views x 255 minutiae x 6 bytes > 65535: needs the 6-byte length.
    let fp = sample_print(255);
    let mut rec = AnsiRecord::from_fingerprint(&fp, 1).unwrap();
    let view = rec.views[0].clone();
    rec.views = (0..=10u8)
        .flat_map(|p| (0..5u8).map(move |v| (p, v)))
        .map(|(p, v)| FingerView {
            finger_position: p,
            view_number: v,
            ..view.clone()
        })
        .collect();
    let bytes = ansi378::encode(&rec).unwrap();
    assert!(bytes.len() > 65535);
    assert_eq!(&bytes[8..10], &[0, 0]);
    assert_eq!(template::sniff(&bytes).unwrap(), Format::Ansi378_2004);
    assert_eq!(ansi378::decode(&bytes).unwrap(), rec);
}

#[test]
fn multi_view_iso_record_with_extended_data_round_trips() {
    let a = sample_print(12);
    let b = sample_print(0);
    let mut rec = IsoRecord::from_fingerprint(&a, 1).unwrap();
    let mut second = IsoRecord::from_fingerprint(&b, 6).unwrap().views.remove(0);
    second.view_number = 1;
    second.impression_type = 8;
    second.extended = vec![
        ExtendedArea {
            type_id: 2,
            data: vec![0x41, 0x40, 0x64, 0x00, 0x96, 0x20, 0x00],
        },
        ExtendedArea {
            type_id: 0x0101,
            data: vec![],
        },
    ];
    rec.views.push(second);
    rec.capture_equipment = 0x1234;
    let bytes = iso19794::encode(&rec).unwrap();
    let back = iso19794::decode(&bytes).unwrap();
    assert_eq!(back, rec);
    let prints = back.fingerprints();
    assert_eq!(prints.len(), 2);
    assert_eq!(prints[0].minutiae.len(), 12);
    // A view without minutiae is allowed and converts to an empty fingerprint.
    assert!(prints[1].minutiae.is_empty());
    // decode() for a card record wants exactly one view.
    is_invalid(template::decode(&bytes, CardFormat::Record, 500));
    assert_eq!(
        template::decode_any(&bytes).unwrap().0,
        Format::Iso19794_2_2005
    );
}

#[test]
fn card_formats_round_trip_within_quantization() {
    let fp = sample_print(45);
    for (format, tolerance_px, angle_tol) in [
        (CardFormat::Normal, 0.2, TAU / 512.0),
        (CardFormat::Compact, 1.0, TAU / 128.0),
    ] {
        let bytes = template::encode(&fp, format).unwrap();
        let unit = if format == CardFormat::Normal { 5 } else { 3 };
        assert_eq!(bytes.len(), 45 * unit, "{format:?}");
        let back = template::decode(&bytes, format, 500).unwrap();
        assert_eq!(back.minutiae.len(), 45);
        // The card re-orders minutiae (y, then x): match each original to its nearest.
        for a in &fp.minutiae {
            let b = back
                .minutiae
                .iter()
                .min_by(|p, q| {
                    let d = |m: &Minutia| (m.x - a.x).hypot(m.y - a.y);
                    d(p).total_cmp(&d(q))
                })
                .unwrap();
            assert!(
                (a.x - b.x).abs() <= tolerance_px && (a.y - b.y).abs() <= tolerance_px,
                "{format:?} {a:?} {b:?}"
            );
            assert!(angle_diff(a.direction, b.direction) <= angle_tol + 1e-5);
            // The compact layout writes a doubtful minutia's type as "other".
            let untyped = format == CardFormat::Compact
                && (1..UNTYPED_CARD_MINUTIA_QUALITY).contains(&a.quality);
            let kind = if untyped { MinutiaKind::Other } else { a.kind };
            assert_eq!(b.kind, kind, "{format:?} {a:?}");
        }
        let ys: Vec<f32> = back.minutiae.iter().map(|m| m.y).collect();
        assert!(ys.windows(2).all(|w| w[0] <= w[1]), "sorted by y");
    }
}

#[test]
fn card_encoding_caps_at_the_limit_keeping_best_quality() {
    let fp = sample_print(100);
    let bytes = template::encode(&fp, CardFormat::Compact).unwrap();
    assert_eq!(bytes.len(), card::DEFAULT_MAX_CARD_MINUTIAE * 3);
    let back = card::decode_compact(&bytes, 500, 100).unwrap();
    let mut qualities: Vec<u8> = fp.minutiae.iter().map(|m| m.quality).collect();
    qualities.sort_unstable_by(|a, b| b.cmp(a));
    let threshold = qualities[card::DEFAULT_MAX_CARD_MINUTIAE - 1];
    // Every kept minutia is one of the originals with quality >= the 60th best.
    for b in &back.minutiae {
        assert!(fp.minutiae.iter().any(|a| a.quality >= threshold
            && (a.x - b.x).abs() <= 1.0
            && (a.y - b.y).abs() <= 1.0));
    }
    // More than the limit on read is an error.
    is_invalid(card::decode_compact(&bytes, 500, 10));
    let many = card::encode_normal(&fp, 100).unwrap();
    is_invalid(template::decode(&many, CardFormat::Normal, 500));
}

#[test]
fn encoding_rejects_impossible_values() {
    let mut fp = sample_print(3);
    fp.minutiae[1].x = f32::NAN;
    for f in [CardFormat::Record, CardFormat::Normal, CardFormat::Compact] {
        assert!(
            matches!(template::encode(&fp, f), Err(Error::Encode(_))),
            "{f:?}"
        );
    }
    let mut fp = sample_print(3);
    fp.minutiae[0].x = 300.0; // == width
    assert!(matches!(
        template::encode(&fp, CardFormat::Record),
        Err(Error::Encode(_))
    ));
    let mut fp = sample_print(3);
    fp.minutiae[2].quality = 101;
    assert!(matches!(
        template::encode(&fp, CardFormat::Record),
        Err(Error::Encode(_))
    ));
    let mut fp = sample_print(3);
    fp.dpi_x = 0;
    for f in [CardFormat::Record, CardFormat::Normal, CardFormat::Compact] {
        assert!(
            matches!(template::encode(&fp, f), Err(Error::Encode(_))),
            "{f:?}"
        );
    }
    assert!(matches!(
        template::encode(&sample_print(256), CardFormat::Record),
        Err(Error::Encode(_))
    ));
    assert!("compact".parse::<CardFormat>().is_ok());
    assert!("tiny".parse::<CardFormat>().is_err());
}

#[test]
fn every_shared_iso_file_is_read() {
    let Some(files) = shared_iso_files() else {
        return;
    };
    assert_eq!(
        files.len(),
        400,
        "the README describes 5 sets x 80 impressions"
    );
    let mut total_minutiae = 0usize;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let rec = iso19794::decode(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!((rec.width, rec.height), (300, 400), "{}", path.display());
        assert_eq!((rec.x_resolution, rec.y_resolution), (197, 197));
        assert_eq!(rec.views.len(), 1);
        let (format, _) = template::decode_any(&bytes).unwrap();
        assert_eq!(format, Format::Iso19794_2_2005);
        let fp = rec.fingerprint(0).unwrap();
        assert_eq!((fp.dpi_x, fp.dpi_y), (500, 500));
        assert!(!fp.minutiae.is_empty(), "{}", path.display());
        for m in &fp.minutiae {
            assert!(m.x >= 0.0 && m.x < 300.0 && m.y >= 0.0 && m.y < 400.0);
            assert!((0.0..TAU).contains(&m.direction));
        }
        total_minutiae += fp.minutiae.len();
        // Re-encoding a third-party record reproduces it byte for byte.
        assert_eq!(iso19794::encode(&rec).unwrap(), bytes, "{}", path.display());
        // The same views as an ANSI 378 record (angles to 2-degree units) are sniffed as ANSI
        // and give the same minutiae within the ANSI angle step.
        let ansi = AnsiRecord {
            product_owner: 0x0033,
            product_type: 1,
            capture_equipment: rec.capture_equipment,
            width: rec.width,
            height: rec.height,
            x_resolution: rec.x_resolution,
            y_resolution: rec.y_resolution,
            views: rec
                .views
                .iter()
                .map(|v| FingerView {
                    minutiae: v
                        .minutiae
                        .iter()
                        .map(|m| RecordMinutia {
                            angle: ((f32::from(m.angle) * 360.0 / 256.0 / 2.0).round() as u16 % 180)
                                as u8,
                            ..*m
                        })
                        .collect(),
                    ..v.clone()
                })
                .collect(),
        };
        let ansi_bytes = ansi378::encode(&ansi).unwrap();
        let (format, any) = template::decode_any(&ansi_bytes).unwrap();
        assert_eq!(format, Format::Ansi378_2004);
        let ansi_fp = &any.fingerprints()[0];
        for (a, b) in fp.minutiae.iter().zip(&ansi_fp.minutiae) {
            assert_eq!((a.x, a.y, a.kind), (b.x, b.y, b.kind));
            assert!(angle_diff(a.direction, b.direction) <= 1f32.to_radians() + 1e-4);
        }
        // And its fingerprint survives every card format.
        for f in [CardFormat::Record, CardFormat::Normal, CardFormat::Compact] {
            let card = template::encode(&fp, f).unwrap();
            let back = template::decode(&card, f, 500).unwrap();
            let expected = match f {
                CardFormat::Record => fp.minutiae.len(),
                _ => fp.minutiae.len().min(card::DEFAULT_MAX_CARD_MINUTIAE),
            };
            assert_eq!(back.minutiae.len(), expected, "{f:?}");
        }
    }
    eprintln!("read {} records, {total_minutiae} minutiae", files.len());
}

#[test]
fn truncated_real_records_are_errors_at_every_length() {
    let Some(files) = shared_iso_files() else {
        return;
    };
    for path in files.iter().step_by(37) {
        let bytes = std::fs::read(path).unwrap();
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            is_invalid(iso19794::decode(cut));
            assert!(template::decode_any(cut).is_err());
            // Even with the length field patched to match, a cut record must fail.
            if len >= 12 {
                let mut patched = cut.to_vec();
                patched[8..12].copy_from_slice(&(len as u32).to_be_bytes());
                assert!(
                    iso19794::decode(&patched).is_err(),
                    "{} cut at {len}",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn corrupted_headers_and_counts_are_errors_with_offsets() {
    let Some(files) = shared_iso_files() else {
        return;
    };
    let bytes = std::fs::read(&files[0]).unwrap();
    // Flip every bit of the header: each flip must be an error or still decode, never panic;
    // flips of the identifier, version, length, view count and reserved byte must be errors.
    for i in 0..24 {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            let r = iso19794::decode(&b);
            if !(12..22).contains(&i) {
                let _ = is_invalid(r);
            }
        }
    }
    let cases: [(usize, u8, &str); 7] = [
        (0, b'X', "offset 0"),
        (5, b'3', "offset 4"),
        (11, 0xff, "offset 8"),
        (19, 0, "offset 18"),
        (22, 200, "offset 22"),
        (25, 255, "offset 25"),
        (27, 255, "offset 27"),
    ];
    for (at, value, expect) in cases {
        let mut b = bytes.clone();
        b[at] = value;
        let m = is_invalid(iso19794::decode(&b));
        assert!(m.contains(expect), "byte {at}={value}: {m}");
    }
    // A minutia moved outside the declared image.
    let mut b = bytes.clone();
    b[28] = (b[28] & 0xc0) | 0x3f;
    b[29] = 0xff;
    assert!(is_invalid(iso19794::decode(&b)).contains("offset 28"));
    // Trailing garbage with a consistent length field.
    let mut b = bytes.clone();
    b.extend_from_slice(&[0, 0, 0]);
    let len = b.len() as u32;
    b[8..12].copy_from_slice(&len.to_be_bytes());
    assert!(is_invalid(iso19794::decode(&b)).contains("trailing"));
}

#[test]
fn zero_minutiae_and_zero_views() {
    // A view may hold zero minutiae.
    let mut b = b"FMR\0 20\0".to_vec();
    b.extend_from_slice(&30u32.to_be_bytes());
    b.extend_from_slice(&[0, 0, 1, 44, 1, 144, 0, 197, 0, 197, 1, 0, 3, 0, 40, 0, 0, 0]);
    let rec = iso19794::decode(&b).unwrap();
    assert!(rec.views[0].minutiae.is_empty());
    let fp = template::decode(&b, CardFormat::Record, 500).unwrap();
    assert!(fp.minutiae.is_empty());
    // A record needs at least one view.
    let mut z = b[..24].to_vec();
    z[11] = 24;
    z[22] = 0;
    assert!(is_invalid(iso19794::decode(&z)).contains("offset 22"));
    // An empty card template is an error: a card reference without minutiae verifies nobody.
    is_invalid(template::decode(&[], CardFormat::Compact, 500));
    // Encoding a print without minutiae: a record view is fine, card data is empty.
    let empty = sample_print(0);
    assert!(template::encode(&empty, CardFormat::Record).is_ok());
    assert!(template::encode(&empty, CardFormat::Normal)
        .unwrap()
        .is_empty());
}

#[test]
fn hand_made_records_match_the_layout() {
    let rec = IsoRecord {
        capture_equipment: 0,
        width: 300,
        height: 400,
        x_resolution: 197,
        y_resolution: 197,
        views: vec![FingerView {
            finger_position: 1,
            view_number: 0,
            impression_type: 0,
            quality: 60,
            minutiae: vec![RecordMinutia {
                kind: MinutiaKind::Bifurcation,
                x: 0xa5,
                y: 0x30,
                angle: 0x6b,
                quality: 0,
            }],
            extended: vec![],
        }],
    };
    let bytes = iso19794::encode(&rec).unwrap();
    assert_eq!(
        bytes,
        [
            b"FMR\0 20\0".as_slice(),
            &[0, 0, 0, 36, 0, 0, 1, 44, 1, 144, 0, 197, 0, 197, 1, 0],
            &[1, 0, 60, 1, 0x80, 0xa5, 0x00, 0x30, 0x6b, 0x00, 0, 0],
        ]
        .concat()
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = iso19794::decode(&bytes);
        let _ = ansi378::decode(&bytes);
        let _ = template::decode_any(&bytes);
        let _ = card::decode_normal(&bytes, 500, 255);
        let _ = card::decode_compact(&bytes, 500, 255);
        for f in [CardFormat::Record, CardFormat::Normal, CardFormat::Compact] {
            let _ = template::decode(&bytes, f, 500);
        }
    }

    #[test]
    fn decoders_never_panic_on_mutated_valid_records(
        n in 0usize..20,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..6),
        cut in any::<usize>(),
    ) {
        let fp = sample_print(n);
        let mut iso = template::encode(&fp, CardFormat::Record).unwrap();
        let mut ansi = ansi378::encode(&AnsiRecord::from_fingerprint(&fp, 3).unwrap()).unwrap();
        for (at, v) in &flips {
            let i = at % iso.len();
            iso[i] ^= v;
            let j = at % ansi.len();
            ansi[j] ^= v;
        }
        iso.truncate(cut % (iso.len() + 1));
        for b in [&iso, &ansi] {
            let _ = iso19794::decode(b);
            let _ = ansi378::decode(b);
            let _ = template::decode_any(b);
        }
    }

    #[test]
    fn valid_prints_round_trip_through_every_format(
        pts in proptest::collection::vec((0f32..299.0, 0f32..399.0, 0f32..TAU, 0u8..=100), 1..60)
    ) {
        let fp = Fingerprint {
            width: 300, height: 400, dpi_x: 500, dpi_y: 500, quality: 50,
            minutiae: pts.iter().map(|&(x, y, d, q)| Minutia {
                x, y, direction: d, kind: MinutiaKind::Ending, quality: q,
            }).collect(),
        };
        for f in [CardFormat::Record, CardFormat::Normal, CardFormat::Compact] {
            let bytes = template::encode(&fp, f).unwrap();
            let back = template::decode(&bytes, f, 500).unwrap();
            prop_assert_eq!(back.minutiae.len(), fp.minutiae.len());
        }
        let ansi = ansi378::encode(&AnsiRecord::from_fingerprint(&fp, 0).unwrap()).unwrap();
        prop_assert_eq!(ansi378::decode(&ansi).unwrap().views[0].minutiae.len(), fp.minutiae.len());
    }
}
