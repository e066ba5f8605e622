//! The synthetic fingerprint generator: determinism, ground truth inside the image and the
//! contact area, ground truth shared between impressions, the committed fixture set, and the
//! extractor's recall against the ground truth.

use matcher::eval::truth::{Counts, Tolerance};
use matcher::synth::{self, finger_seed, Master, SetInfo, SynthParams, SET_FILE};
use matcher::Fingerprint;
use test_support::paths;

/// The command and seed recorded in fixtures/fingerprints/README.md.
const FIXTURE_SEED: u64 = 2026;
/// Fingers of the committed set.
const FIXTURE_FINGERS: u32 = 10;
/// Impressions per finger of the committed set.
const FIXTURE_IMPRESSIONS: u32 = 4;

fn small() -> SynthParams {
    SynthParams {
        width: 160,
        height: 200,
        dpi: 500,
    }
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let dir_a = tempfile::tempdir().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let dir_c = tempfile::tempdir().unwrap();
    let p = small();
    assert_eq!(synth::write_set(dir_a.path(), &p, 5, 2, 2).unwrap(), 4);
    assert_eq!(synth::write_set(dir_b.path(), &p, 5, 2, 2).unwrap(), 4);
    synth::write_set(dir_c.path(), &p, 6, 2, 2).unwrap();
    for name in ["1_1", "1_2", "2_1", "2_2"] {
        for ext in ["png", "json", "iso"] {
            let file = format!("{name}.{ext}");
            let a = std::fs::read(dir_a.path().join(&file)).unwrap();
            let b = std::fs::read(dir_b.path().join(&file)).unwrap();
            let c = std::fs::read(dir_c.path().join(&file)).unwrap();
            assert_eq!(a, b, "{file} differs between two runs with one seed");
            assert_ne!(a, c, "{file} is the same for two seeds");
        }
    }
}

#[test]
fn files_are_a_scan_its_ground_truth_and_the_iso_record() {
    let dir = tempfile::tempdir().unwrap();
    synth::write_set(dir.path(), &small(), 9, 1, 1).unwrap();
    let image = matcher::image::GrayImage::open(dir.path().join("1_1.png")).unwrap();
    assert_eq!((image.width(), image.height()), (160, 200));
    let json = std::fs::read(dir.path().join("1_1.json")).unwrap();
    let fp: Fingerprint = serde_json::from_slice(&json).unwrap();
    let iso = std::fs::read(dir.path().join("1_1.iso")).unwrap();
    let decoded =
        matcher::template::decode(&iso, matcher::template::CardFormat::Record, 500).unwrap();
    assert_eq!(decoded.minutiae.len(), fp.minutiae.len());
    assert!(!fp.minutiae.is_empty());
}

#[test]
fn ground_truth_lies_in_the_image_and_the_contact_area() {
    let p = SynthParams::default();
    let mut total = 0;
    for f in 1..=3 {
        let master = Master::generate(&p, finger_seed(11, f)).unwrap();
        assert!(
            master.minutiae.len() >= 20,
            "only {} master minutiae",
            master.minutiae.len()
        );
        for i in 1..=3 {
            let imp = master.impression(&p, i).unwrap();
            assert!(imp.contact_fraction > 0.2 && imp.contact_fraction < 0.95);
            for m in &imp.truth.minutiae {
                assert!(
                    m.x >= 0.0 && m.y >= 0.0 && m.x < 288.0 && m.y < 384.0,
                    "{m:?}"
                );
                let at = m.y as usize * 288 + m.x as usize;
                assert!(imp.contact[at], "{m:?} outside the contact area");
                // A minutia lies on or next to a ridge: the scan is darker there than on average.
                total += 1;
            }
            assert!(
                imp.truth.minutiae.len() >= 10,
                "{} minutiae",
                imp.truth.minutiae.len()
            );
        }
    }
    assert!(total > 0);
}

fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(std::f32::consts::TAU);
    d.min(std::f32::consts::TAU - d)
}

#[test]
fn impressions_of_one_finger_share_most_ground_truth() {
    let p = SynthParams::default();
    let master = Master::generate(&p, finger_seed(3, 1)).unwrap();
    let imps: Vec<_> = (1..=4).map(|i| master.impression(&p, i).unwrap()).collect();
    let mut shared_pairs = 0;
    for a in 0..imps.len() {
        for b in a + 1..imps.len() {
            let (ia, ib) = (&imps[a].master_index, &imps[b].master_index);
            let shared: Vec<(usize, usize)> = ia
                .iter()
                .enumerate()
                .filter_map(|(ka, m)| ib.iter().position(|x| x == m).map(|kb| (ka, kb)))
                .collect();
            let smaller = ia.len().min(ib.len());
            if shared.len() * 2 >= smaller {
                shared_pairs += 1;
            }
            // Distortion is elastic, not arbitrary: distances between shared minutiae agree
            // within a few pixels plus 15 %, and relative directions within 25°.
            let (ma, mb) = (&imps[a].truth.minutiae, &imps[b].truth.minutiae);
            for w in shared.windows(2) {
                let (a1, b1) = (ma[w[0].0], mb[w[0].1]);
                let (a2, b2) = (ma[w[1].0], mb[w[1].1]);
                let da = ((a1.x - a2.x).powi(2) + (a1.y - a2.y).powi(2)).sqrt();
                let db = ((b1.x - b2.x).powi(2) + (b1.y - b2.y).powi(2)).sqrt();
                assert!((da - db).abs() < 8.0 + 0.15 * da, "{da} vs {db}");
                let ra = angle_diff(a1.direction, a2.direction);
                let rb = angle_diff(b1.direction, b2.direction);
                assert!((ra - rb).abs() < 25f32.to_radians(), "{ra} vs {rb}");
            }
        }
    }
    assert!(
        shared_pairs >= 4,
        "only {shared_pairs} of 6 pairs share half their minutiae"
    );
}

#[test]
fn committed_fixtures_regenerate_byte_for_byte() {
    let p = SynthParams::default();
    let info = SetInfo::load(&paths::fingerprints()).unwrap();
    assert_eq!(
        (info.seed, info.fingers, info.impressions),
        (FIXTURE_SEED, FIXTURE_FINGERS, FIXTURE_IMPRESSIONS),
        "fixtures/fingerprints/{SET_FILE} does not match the command in its README"
    );
    assert_eq!(
        (info.width, info.height, info.dpi),
        (p.width, p.height, p.dpi)
    );
    for f in [1u32, FIXTURE_FINGERS] {
        let master = Master::generate(&p, finger_seed(FIXTURE_SEED, f)).unwrap();
        for i in 1..=FIXTURE_IMPRESSIONS {
            let imp = master.impression(&p, i).unwrap();
            let files = synth::impression_files(&imp).unwrap();
            for (ext, bytes) in [("png", files.png), ("json", files.json), ("iso", files.iso)] {
                let path = paths::fingerprints().join(format!("{f}_{i}.{ext}"));
                let committed = std::fs::read(&path).unwrap();
                assert!(
                    committed == bytes,
                    "{} differs from a regeneration",
                    path.display()
                );
            }
            assert_eq!(
                info.get(f, i),
                Some(&imp.conditions),
                "conditions of {f}_{i} in {SET_FILE}"
            );
        }
    }
}

#[test]
fn impressions_vary_in_the_ways_real_scans_do() {
    // Over a set, impressions are dry, normal and wet, some rotated by more than 10°, some with
    // faint regions, some pushed partly off the frame, some strongly distorted.
    let p = SynthParams::default();
    let mut skins = std::collections::BTreeSet::new();
    let (mut rotated, mut faint, mut partial, mut distorted, mut total) = (0, 0, 0, 0, 0);
    for f in 1..=6 {
        let master = Master::generate(&p, finger_seed(31, f)).unwrap();
        for i in 1..=4 {
            let c = master.impression(&p, i).unwrap().conditions;
            skins.insert(format!("{:?}", c.skin));
            rotated += usize::from(c.rotation_deg.abs() > 10.0);
            faint += usize::from(c.faint_fraction > 0.1);
            partial += usize::from(c.contact_fraction < 0.4);
            distorted += usize::from(c.distortion_px > 10.0);
            total += 1;
            assert!(
                c.contact_fraction > 0.0 && c.contact_fraction < 1.0,
                "{c:?}"
            );
            assert!(c.noise > 0.0, "{c:?}");
        }
    }
    assert_eq!(skins.len(), 3, "skins seen: {skins:?}");
    for (what, n) in [
        ("rotated > 10°", rotated),
        ("faint > 10 %", faint),
        ("contact < 40 %", partial),
        ("distortion > 10 px", distorted),
    ] {
        assert!(n > 0 && n < total, "{what}: {n} of {total}");
    }
}

/// Recall and precision of the extractor against the ground truth at 15 px and 30°, with the
/// pairing of `matcher::eval::truth`.
#[test]
fn extractor_recall_against_ground_truth() {
    let p = SynthParams::default();
    let tolerance = Tolerance::default();
    let any_direction = Tolerance {
        angle_deg: 180.0,
        ..tolerance
    };
    let (mut counts, mut by_position) = (Counts::default(), Counts::default());
    for f in 1..=4 {
        let master = Master::generate(&p, finger_seed(21, f)).unwrap();
        for i in 1..=2 {
            let imp = master.impression(&p, i).unwrap();
            let found = matcher::extract::extract(&imp.image, 500)
                .map(|fp| fp.minutiae)
                .unwrap_or_default();
            counts.add(&Counts::of(&imp.truth.minutiae, &found, &tolerance));
            by_position.add(&Counts::of(&imp.truth.minutiae, &found, &any_direction));
        }
    }
    eprintln!(
        "extractor vs ground truth (15 px, 30°): precision {:.3} recall {:.3} ({} of {} true, \
         {} extracted; {} within 15 px ignoring direction)",
        counts.precision(),
        counts.recall(),
        counts.paired,
        counts.truth,
        counts.found,
        by_position.paired
    );
    assert!(
        counts.recall() >= RECALL_BOUND,
        "recall {:.3}",
        counts.recall()
    );
    assert!(
        by_position.recall() >= POSITION_RECALL_BOUND,
        "position recall {:.3}",
        by_position.recall()
    );
    assert!(
        counts.precision() >= PRECISION_BOUND,
        "precision {:.3}",
        counts.precision()
    );
}

/// Bounds for the small sample above (seed 21, 4 fingers x 2, printed by the test). On the
/// generated 100 x 8 set of docs/matcher.md (seed 7) the extractor of 2026-11-22 measured
/// recall 0.784 and precision 0.859 at 15 px and 30°; the bounds leave room for the small
/// sample's spread and for extractor tuning.
const RECALL_BOUND: f64 = 0.6;
/// See [`RECALL_BOUND`].
const PRECISION_BOUND: f64 = 0.6;
/// Recall by position alone (15 px, any direction); see [`RECALL_BOUND`].
const POSITION_RECALL_BOUND: f64 = 0.65;
