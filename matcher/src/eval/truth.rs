//! Extraction accuracy against ground truth: how many of the true minutiae of a scan the
//! extractor finds (recall), how many of the minutiae it reports are true (precision), and how
//! often a found minutia has the right type.
//!
//! [`pair`] matches detected to true minutiae one to one, greedily by distance: every
//! (true, detected) pair within [`Tolerance`] (distance and direction) is a candidate; the
//! closest candidate is taken first and both of its minutiae are used up, then the next closest,
//! and so on (ties by index, so the result is deterministic). [`evaluate_dir`] runs the extractor
//! on a folder made by `idcardd fixtures synth` (`<finger>_<impression>.png` scans beside
//! `<finger>_<impression>.json` ground truth) and reports [`Counts`] overall, per extractor
//! quality score (buckets of 20) and, when the generator's [`crate::synth::SET_FILE`] is there,
//! per skin condition (dry, normal, wet) and per amount of faint contact.
//!
//! The ground truth covers only the contact area where ridges are visible; a detected minutia
//! elsewhere (in a faint border, in the background) counts against precision, as it would
//! against a matcher.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::eval::fvc;
use crate::synth::SetInfo;
use crate::{Error, Fingerprint, Minutia};

/// How close a detected minutia must be to a true one to count as found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tolerance {
    /// Largest distance in pixels.
    pub distance_px: f32,
    /// Largest direction difference in degrees.
    pub angle_deg: f32,
}

impl Default for Tolerance {
    /// 15 px and 30°, usual for 500 dpi scans (about one and a half ridge periods).
    fn default() -> Self {
        Tolerance {
            distance_px: 15.0,
            angle_deg: 30.0,
        }
    }
}

/// Smallest difference between two directions in radians, in [0, π].
fn angle_between(a: f32, b: f32) -> f32 {
    let d = (a - b).rem_euclid(std::f32::consts::TAU);
    d.min(std::f32::consts::TAU - d)
}

/// One-to-one pairs `(true index, detected index)`, greedy by distance within `tolerance`,
/// ordered by distance.
pub fn pair(truth: &[Minutia], found: &[Minutia], tolerance: &Tolerance) -> Vec<(usize, usize)> {
    let max_d2 = tolerance.distance_px * tolerance.distance_px;
    let max_angle = tolerance.angle_deg.to_radians();
    let mut candidates: Vec<(f32, usize, usize)> = Vec::new();
    for (t, tm) in truth.iter().enumerate() {
        for (f, fm) in found.iter().enumerate() {
            let d2 = (tm.x - fm.x).powi(2) + (tm.y - fm.y).powi(2);
            if d2 <= max_d2 && angle_between(tm.direction, fm.direction) <= max_angle {
                candidates.push((d2, t, f));
            }
        }
    }
    candidates.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    let mut truth_used = vec![false; truth.len()];
    let mut found_used = vec![false; found.len()];
    let mut pairs = Vec::new();
    for (_, t, f) in candidates {
        if !truth_used[t] && !found_used[f] {
            truth_used[t] = true;
            found_used[f] = true;
            pairs.push((t, f));
        }
    }
    pairs
}

/// Tallies of a comparison of detected with true minutiae.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    /// Impressions counted.
    pub impressions: usize,
    /// True minutiae.
    pub truth: usize,
    /// Detected minutiae.
    pub found: usize,
    /// Detected minutiae paired with a true one.
    pub paired: usize,
    /// Pairs whose detected type (ending, bifurcation) is the true type.
    pub same_type: usize,
}

impl Counts {
    /// The tallies of one impression.
    pub fn of(truth: &[Minutia], found: &[Minutia], tolerance: &Tolerance) -> Counts {
        let pairs = pair(truth, found, tolerance);
        Counts {
            impressions: 1,
            truth: truth.len(),
            found: found.len(),
            paired: pairs.len(),
            same_type: pairs
                .iter()
                .filter(|&&(t, f)| truth[t].kind == found[f].kind)
                .count(),
        }
    }

    /// Adds another tally.
    pub fn add(&mut self, other: &Counts) {
        self.impressions += other.impressions;
        self.truth += other.truth;
        self.found += other.found;
        self.paired += other.paired;
        self.same_type += other.same_type;
    }

    /// Share of detected minutiae that are true (1 when nothing was detected).
    pub fn precision(&self) -> f64 {
        ratio(self.paired, self.found)
    }

    /// Share of true minutiae that were detected (1 when there were none).
    pub fn recall(&self) -> f64 {
        ratio(self.paired, self.truth)
    }

    /// Share of pairs with the right type (1 when there are no pairs).
    pub fn type_agreement(&self) -> f64 {
        ratio(self.same_type, self.paired)
    }
}

/// `a / b`, 1 when `b` is 0 (nothing to get wrong).
fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        1.0
    } else {
        a as f64 / b as f64
    }
}

/// Tallies of one group of impressions with their rates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    /// What the group is (`quality 40-59`, `skin dry`, ...).
    pub name: String,
    /// The tallies.
    pub counts: Counts,
    /// [`Counts::precision`].
    pub precision: f64,
    /// [`Counts::recall`].
    pub recall: f64,
    /// [`Counts::type_agreement`].
    pub type_agreement: f64,
}

impl Group {
    fn new(name: String, counts: Counts) -> Group {
        Group {
            name,
            precision: counts.precision(),
            recall: counts.recall(),
            type_agreement: counts.type_agreement(),
            counts,
        }
    }
}

/// The result of [`evaluate_dir`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TruthReport {
    /// The folder.
    pub set: String,
    /// The tolerance used.
    pub tolerance: Tolerance,
    /// Every impression with a ground truth.
    pub overall: Group,
    /// By the extractor's image quality score: 0-19, 20-39, 40-59, 60-79, 80-100 (empty
    /// buckets left out).
    pub by_quality: Vec<Group>,
    /// By the generator's skin condition (dry, normal, wet), when the set file is there.
    pub by_skin: Vec<Group>,
    /// By the share of faint contact (below 10 %, 10-30 %, 30 % and more), when the set file is
    /// there.
    pub by_faint_contact: Vec<Group>,
    /// Impressions the extractor refused (their true minutiae count as missed), with the reason.
    pub failures: Vec<String>,
}

/// The evaluation of one impression.
struct One {
    /// Finger and impression numbers.
    id: (u32, u32),
    /// Extractor quality score (0 when extraction failed).
    quality: u8,
    /// The tallies.
    counts: Counts,
    /// Why extraction failed.
    failure: Option<String>,
}

/// Reads the ground truth beside a scan (`<name>.json`, a [`Fingerprint`]).
pub fn read_truth(path: &Path) -> Result<Fingerprint, Error> {
    let bytes = std::fs::read(path)?;
    serde_json::from_slice(&bytes).map_err(|e| {
        Error::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        ))
    })
}

/// Extracts every FVC-named scan of `dir` that has a `<name>.json` ground truth beside it and
/// compares with it (scans in parallel; the report does not depend on the thread count).
pub fn evaluate_dir(dir: &Path, dpi: u32, tolerance: &Tolerance) -> Result<TruthReport, Error> {
    let samples: Vec<(fvc::Sample, PathBuf)> = fvc::scan_dir(dir)?
        .into_iter()
        .filter_map(|s| {
            let json = s.path.with_extension("json");
            json.is_file().then_some((s, json))
        })
        .collect();
    if samples.is_empty() {
        return Err(Error::Io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "{}: no scans <finger>_<impression>.png with a <finger>_<impression>.json \
                 ground truth",
                dir.display()
            ),
        )));
    }
    let results = samples
        .par_iter()
        .map(|(s, json)| {
            let truth = read_truth(json)?;
            let id = (s.finger, s.impression);
            Ok(match crate::extract::extract_file(&s.path, dpi) {
                Ok(found) => One {
                    id,
                    quality: found.quality,
                    counts: Counts::of(&truth.minutiae, &found.minutiae, tolerance),
                    failure: None,
                },
                Err(e) => One {
                    id,
                    quality: 0,
                    counts: Counts::of(&truth.minutiae, &[], tolerance),
                    failure: Some(format!("{}: {e}", s.name)),
                },
            })
        })
        .collect::<Result<Vec<One>, Error>>()?;
    let info = SetInfo::load(dir).ok();
    Ok(report(dir, tolerance, &results, info.as_ref()))
}

/// Sums the tallies of the impressions `keep` selects, as a named group (None when empty).
fn group(name: String, results: &[One], keep: impl Fn(&One) -> bool) -> Option<Group> {
    let mut counts = Counts::default();
    for r in results.iter().filter(|r| keep(r)) {
        counts.add(&r.counts);
    }
    (counts.impressions > 0).then(|| Group::new(name, counts))
}

fn report(
    dir: &Path,
    tolerance: &Tolerance,
    results: &[One],
    info: Option<&SetInfo>,
) -> TruthReport {
    let overall = group("all".into(), results, |_| true)
        .unwrap_or_else(|| Group::new("all".into(), Counts::default()));
    let by_quality = [(0u8, 19u8), (20, 39), (40, 59), (60, 79), (80, 100)]
        .iter()
        .filter_map(|&(lo, hi)| {
            group(format!("quality {lo}-{hi}"), results, |r| {
                r.quality >= lo && r.quality <= hi
            })
        })
        .collect();
    let (mut by_skin, mut by_faint_contact) = (Vec::new(), Vec::new());
    if let Some(info) = info {
        let conditions = |r: &One| info.get(r.id.0, r.id.1).copied();
        for (name, skin) in [
            ("dry", crate::synth::impression::Skin::Dry),
            ("normal", crate::synth::impression::Skin::Normal),
            ("wet", crate::synth::impression::Skin::Wet),
        ] {
            by_skin.extend(group(format!("skin {name}"), results, |r| {
                conditions(r).is_some_and(|c| c.skin == skin)
            }));
        }
        for (name, lo, hi) in [
            ("faint contact < 10 %", 0.0, 0.1),
            ("faint contact 10-30 %", 0.1, 0.3),
            ("faint contact >= 30 %", 0.3, f32::INFINITY),
        ] {
            by_faint_contact.extend(group(name.to_string(), results, |r| {
                conditions(r).is_some_and(|c| c.faint_fraction >= lo && c.faint_fraction < hi)
            }));
        }
    }
    TruthReport {
        set: dir.display().to_string(),
        tolerance: *tolerance,
        overall,
        by_quality,
        by_skin,
        by_faint_contact,
        failures: results.iter().filter_map(|r| r.failure.clone()).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MinutiaKind;

    fn m(x: f32, y: f32, deg: f32, kind: MinutiaKind) -> Minutia {
        Minutia {
            x,
            y,
            direction: deg.to_radians().rem_euclid(std::f32::consts::TAU),
            kind,
            quality: 50,
        }
    }

    const E: MinutiaKind = MinutiaKind::Ending;
    const B: MinutiaKind = MinutiaKind::Bifurcation;

    #[test]
    fn pairs_within_distance_and_direction_only() {
        let tol = Tolerance::default();
        let truth = [m(100.0, 100.0, 10.0, E)];
        // 14.9 px away, 29° off: found.
        assert_eq!(
            pair(&truth, &[m(114.9, 100.0, 39.0, E)], &tol),
            vec![(0, 0)]
        );
        // 15.1 px away: not found.
        assert!(pair(&truth, &[m(115.1, 100.0, 10.0, E)], &tol).is_empty());
        // Close, but 31° off: not found.
        assert!(pair(&truth, &[m(101.0, 100.0, 41.0, E)], &tol).is_empty());
        // Direction wraps around: 350° is 20° from 10°.
        assert_eq!(
            pair(&truth, &[m(101.0, 100.0, 350.0, E)], &tol),
            vec![(0, 0)]
        );
    }

    #[test]
    fn pairing_is_one_to_one_and_closest_first() {
        let tol = Tolerance::default();
        // Two true minutiae 10 px apart, one detected between them but nearer the second, and
        // one more near the first.
        let truth = [m(0.0, 0.0, 0.0, E), m(10.0, 0.0, 0.0, E)];
        let found = [m(7.0, 0.0, 0.0, E), m(1.0, 0.0, 0.0, E)];
        let pairs = pair(&truth, &found, &tol);
        assert_eq!(pairs, vec![(0, 1), (1, 0)]);
        // A single detection near two true minutiae is used once.
        assert_eq!(pair(&truth, &found[..1], &tol), vec![(1, 0)]);
        // Two detections near one true minutia: one pair, the closer.
        assert_eq!(pair(&truth[..1], &found, &tol), vec![(0, 1)]);
    }

    #[test]
    fn greedy_by_distance_not_by_order() {
        let tol = Tolerance::default();
        // The first true minutia is 5 px from detection 0; the second is 1 px from it. Greedy
        // by distance gives detection 0 to the second even though the first comes first.
        let truth = [m(0.0, 0.0, 0.0, E), m(6.0, 0.0, 0.0, E)];
        let found = [m(5.0, 0.0, 0.0, E)];
        assert_eq!(pair(&truth, &found, &tol), vec![(1, 0)]);
    }

    #[test]
    fn counts_rates_and_type_agreement() {
        let tol = Tolerance::default();
        let truth = [
            m(10.0, 10.0, 0.0, E),
            m(50.0, 50.0, 90.0, B),
            m(90.0, 90.0, 180.0, E),
            m(130.0, 130.0, 270.0, B),
        ];
        let found = [
            m(12.0, 11.0, 5.0, E),   // pairs with 0, same type
            m(49.0, 52.0, 100.0, E), // pairs with 1, other type
            m(200.0, 10.0, 0.0, E),  // spurious
        ];
        let c = Counts::of(&truth, &found, &tol);
        assert_eq!(
            c,
            Counts {
                impressions: 1,
                truth: 4,
                found: 3,
                paired: 2,
                same_type: 1
            }
        );
        assert!((c.recall() - 0.5).abs() < 1e-12);
        assert!((c.precision() - 2.0 / 3.0).abs() < 1e-12);
        assert!((c.type_agreement() - 0.5).abs() < 1e-12);
        let mut sum = c;
        sum.add(&Counts::of(&truth, &[], &tol));
        assert_eq!(
            (sum.impressions, sum.truth, sum.found, sum.paired),
            (2, 8, 3, 2)
        );
        assert!((sum.recall() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn empty_sides_do_not_divide_by_zero() {
        let c = Counts::of(&[], &[], &Tolerance::default());
        assert_eq!(
            (c.precision(), c.recall(), c.type_agreement()),
            (1.0, 1.0, 1.0)
        );
        let c = Counts::of(&[m(0.0, 0.0, 0.0, E)], &[], &Tolerance::default());
        assert_eq!((c.precision(), c.recall()), (1.0, 0.0));
    }

    #[test]
    fn missing_folder_and_folder_without_truth_are_errors() {
        let tol = Tolerance::default();
        assert!(evaluate_dir(Path::new("/nonexistent/idcardd-truth"), 500, &tol).is_err());
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1_1.png"), b"not read").unwrap();
        let e = evaluate_dir(dir.path(), 500, &tol).unwrap_err();
        assert!(e.to_string().contains("ground truth"), "{e}");
    }

    #[test]
    fn corrupt_ground_truth_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("1_1.png"), b"not read").unwrap();
        std::fs::write(dir.path().join("1_1.json"), b"{\"width\": 3").unwrap();
        let e = evaluate_dir(dir.path(), 500, &Tolerance::default()).unwrap_err();
        assert!(e.to_string().contains("1_1.json"), "{e}");
    }
}
