//! The learned extractor on real scans: installed by scripts/setup.sh (tests skip with a message
//! when it is not, e.g. on a machine that never ran setup), the shared FVC scans from
//! `../shared/fingerprints` (skip when absent).

use leader::{params, Error, LearnedExtractor};
use matcher::compare::{compare, prepare, ScoreScale, Scratch, Threshold};
use matcher::image::GrayImage;
use std::f32::consts::{PI, TAU};
use std::sync::OnceLock;
use test_support::paths::shared_fingerprints;

fn learned() -> Option<&'static LearnedExtractor> {
    static EXTRACTOR: OnceLock<Option<LearnedExtractor>> = OnceLock::new();
    EXTRACTOR
        .get_or_init(|| {
            let dir = LearnedExtractor::default_dir();
            if !LearnedExtractor::installed(&dir) {
                eprintln!(
                    "skipping: the learned extractor is not installed in {} (bash scripts/setup.sh)",
                    dir.display()
                );
                return None;
            }
            Some(LearnedExtractor::open(&dir, 1).expect("the installed extractor opens"))
        })
        .as_ref()
}

fn scan(set: &str, name: &str) -> Option<GrayImage> {
    let Some(dir) = shared_fingerprints() else {
        eprintln!("skipping: ../shared/fingerprints is absent");
        return None;
    };
    Some(GrayImage::open(dir.join(set).join(format!("{name}.tif"))).expect("shared scan"))
}

#[test]
fn a_model_that_is_not_the_pinned_one_is_refused() {
    let Some(good) = learned() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let mut model = std::fs::read(good.dir().join(params::MODEL_FILE)).unwrap();
    let last = model.len() - 1;
    model[last] ^= 1;
    std::fs::write(dir.join(params::MODEL_FILE), &model).unwrap();
    std::fs::copy(
        good.dir().join(params::RUNTIME_FILE),
        dir.join(params::RUNTIME_FILE),
    )
    .unwrap();
    let err = LearnedExtractor::open(dir, 1).unwrap_err();
    assert!(matches!(err, Error::Checksum { .. }), "{err}");
    assert!(err.to_string().contains(params::MODEL_SHA256), "{err}");
    std::fs::remove_file(dir.join(params::MODEL_FILE)).unwrap();
    let err = LearnedExtractor::open(dir, 1).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("scripts/setup.sh"), "{err}");
}

#[test]
fn finds_the_minutiae_the_classical_extractor_finds_with_the_same_directions() {
    let Some(learned) = learned() else { return };
    let Some(image) = scan("fvc2002_db1_b", "101_1") else {
        return;
    };
    let ours = matcher::extract::extract(&image, 500).unwrap();
    let theirs = learned.extract(&image, 500).unwrap();
    assert_eq!((theirs.width, theirs.height), (388, 374));
    assert!(
        (20..=params::MAX_MINUTIAE).contains(&theirs.minutiae.len()),
        "{} minutiae",
        theirs.minutiae.len()
    );
    for m in &theirs.minutiae {
        assert!(
            m.x >= 0.0 && m.x < 388.0 && m.y >= 0.0 && m.y < 374.0,
            "{m:?}"
        );
        assert!((0.0..TAU).contains(&m.direction), "{m:?}");
        assert!(m.quality >= 55, "{m:?}");
    }
    // Same place (12 px) and same direction (30 degrees): a direction convention off by half
    // a turn would pair almost none.
    let paired = theirs
        .minutiae
        .iter()
        .filter(|t| {
            ours.minutiae.iter().any(|o| {
                let d = (t.direction - o.direction).rem_euclid(TAU);
                (t.x - o.x).hypot(t.y - o.y) <= 12.0 && d.min(TAU - d) <= PI / 6.0
            })
        })
        .count();
    assert!(
        paired * 2 >= theirs.minutiae.len(),
        "{paired} of {} paired",
        theirs.minutiae.len()
    );
}

#[test]
fn tells_a_genuine_pair_from_an_impostor_at_other_resolutions_too() {
    let Some(learned) = learned() else { return };
    let names = ["101_1", "101_2", "102_1"];
    // fvc2004_db3_b is a 512 dpi sensor: resampled to the network's 500 dpi and back.
    let Some(images) = names
        .iter()
        .map(|n| scan("fvc2004_db3_b", n))
        .collect::<Option<Vec<_>>>()
    else {
        return;
    };
    let prints: Vec<_> = images
        .iter()
        .map(|i| prepare(&learned.extract(i, 512).unwrap()))
        .collect();
    let mut scratch = Scratch::new();
    let genuine = compare(&prints[0], &prints[1], &mut scratch);
    let impostor = compare(&prints[0], &prints[2], &mut scratch);
    // Its minutiae are on the learned scale, with thresholds of their own.
    use matcher::extract::MinutiaeExtractor;
    assert_eq!(learned.score_scale(), ScoreScale::Learned);
    let threshold = Threshold::calibrated_on(ScoreScale::Learned, 0.001)
        .unwrap()
        .score;
    assert!(genuine >= threshold, "genuine {genuine} < {threshold}");
    assert!(impostor < threshold, "impostor {impostor} >= {threshold}");
}

#[test]
fn a_blank_or_impossible_scan_gives_no_minutiae_or_a_clear_error() {
    let Some(learned) = learned() else { return };
    let blank = GrayImage::from_raw(300, 300, vec![200; 300 * 300]).unwrap();
    let print = learned.extract(&blank, 500).unwrap();
    assert!(print.minutiae.len() <= 2, "{:?}", print.minutiae);
    let err = learned.extract(&blank, 100).unwrap_err();
    assert!(
        matches!(err, Error::Image(matcher::Error::ImageLimits(_))),
        "{err}"
    );
}
