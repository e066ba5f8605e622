//! Calibration of the decision thresholds and of the rescan limits on pooled data, and what a
//! holder at the delivery counter experiences with them. `idcardd bench calibrate` is a thin
//! front end over [`run`].
//!
//! - **Pool**: every scan of every given folder (`<finger>_<impression>` names, each folder with
//!   its own dpi) plus, optionally, generated fingers ([`crate::synth`], several impressions
//!   each). A finger is identified by its source and its number, so fingers of different sets
//!   are different fingers.
//! - **Pairs**: every pair of scans of the pool is compared once (probe = the scan that comes
//!   first in the pool's order, i.e. the lower impression of a finger); a pair of the same finger
//!   is genuine, any other pair (across sets too) an impostor pair.
//! - **Thresholds**: [`crate::compare::Threshold::for_fmr`] on the impostor scores for each
//!   target false-match rate that allows at least one false match on the data, with the number
//!   of impostor scores at or above the threshold, its 95 % Clopper-Pearson interval
//!   ([`clopper_pearson`]) and the FNMR of the genuine pairs. A row is *indicative* when fewer
//!   than ten impostors are allowed above it.
//! - **Fused thresholds**: holders are pairs of fingers of one source (consecutive finger
//!   numbers), as on a card with two fingers. A fused impostor score is the fusion of the scores
//!   of holder A's enrolled impression of each finger against holder B's live impression of the
//!   same finger position (A ≠ B, same impression numbers for both fingers); a fused genuine score
//!   uses the same holder's other impression. These fused scores reuse each single score many
//!   times: they are not independent and their interval is too narrow (see the docs).
//! - **Rescan limits**: for every candidate quality (and minutiae count) limit, the genuine
//!   comparisons whose live scan (the later impression) falls below it, split into those that
//!   failed at the single-finger threshold of the policy (failures a rescan would have avoided)
//!   and those that passed (good scans refused). The pick maximizes avoided − refused.
//! - **Counter**: each holder's impression 1 is on the card, the later impressions are the live
//!   attempts in order; a scan below the rescan limits is rescanned (the next impression, not an
//!   attempt); `max_attempts` failed decisions refuse the holder.

use super::fvc::{self, Progress};
use crate::compare::{
    compare, fuse, prepare, prepare_stored, Fusion, PreparedTemplate, ScoreScale, Scratch,
    Threshold,
};
use crate::synth::{self, Master, SynthParams};
use crate::template::{self, CardFormat};
use crate::{Error, Fingerprint};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A folder of scans and its resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct SetSpec {
    /// Folder of `<finger>_<impression>.tif|png|bmp` scans.
    pub dir: PathBuf,
    /// Scan resolution in dpi.
    pub dpi: u32,
}

/// Generated fingers added to the pool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthSpec {
    /// Number of fingers.
    pub fingers: u32,
    /// Impressions per finger.
    pub impressions: u32,
    /// Set seed ([`synth::finger_seed`]).
    pub seed: u64,
    /// Image format and resolution.
    pub params: SynthParams,
}

/// One decision setting whose counter experience is reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterSetting {
    /// Name in the report.
    pub name: String,
    /// Accept when the fused score is at or above this.
    pub threshold: f32,
    /// Fingers presented at each attempt (1: the first finger of the holder only; 2: both).
    pub fingers: usize,
    /// How the fingers' scores are fused.
    #[serde(with = "fusion_name")]
    pub fusion: Fusion,
    /// Scans below this quality are rescanned.
    pub min_quality: u8,
    /// Scans with fewer minutiae are rescanned.
    pub min_minutiae: usize,
    /// Failed decisions after which the holder is refused.
    pub max_attempts: u32,
}

mod fusion_name {
    use crate::compare::Fusion;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(f: &Fusion, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match f {
            Fusion::Max => "max",
            Fusion::Mean => "mean",
        })
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Fusion, D::Error> {
        match String::deserialize(d)?.as_str() {
            "max" => Ok(Fusion::Max),
            "mean" => Ok(Fusion::Mean),
            other => Err(serde::de::Error::custom(format!("unknown fusion {other}"))),
        }
    }
}

/// What to calibrate on and what to report.
#[derive(Debug, Clone)]
pub struct Options {
    /// Folders of real scans.
    pub sets: Vec<SetSpec>,
    /// Generated fingers, if any.
    pub synth: Option<SynthSpec>,
    /// Target false-match rates (fractions), loosest first.
    pub target_fmrs: Vec<f64>,
    /// The score scale whose one-finger defaults are reported on this data (the "default"
    /// rows; the counter settings name theirs).
    pub defaults_scale: ScoreScale,
    /// Fusion rules whose fused thresholds are calibrated.
    pub fusions: Vec<Fusion>,
    /// The delivery policy's target FMR (threshold for rescan and counter analyses).
    pub policy_fmr: f64,
    /// The delivery policy's allowed failed attempts.
    pub max_attempts: u32,
    /// Candidate quality limits for rescan.
    pub quality_limits: Vec<u8>,
    /// Candidate minutiae-count limits for rescan.
    pub minutiae_limits: Vec<usize>,
    /// Current rescan limits (quality, minutiae).
    pub current_rescan: (u8, usize),
    /// Settings whose counter experience is reported, besides those calibrated in this run.
    pub counter: Vec<CounterSetting>,
    /// Round-trip every candidate (enrolled) template through this card format.
    pub card_format: Option<CardFormat>,
    /// Round-trip the probe (live) templates through [`Options::card_format`] as well, as
    /// `matcher.compare` compares two templates of one card format.
    pub card_format_both_sides: bool,
    /// Extracts the minutiae instead of the classical extractor (the learned one); image
    /// quality stays the classical extractor's, as at enrollment, so that the rescan limits
    /// mean the same. `None`: the classical extractor.
    pub extractor: Option<std::sync::Arc<dyn crate::extract::MinutiaeExtractor>>,
    /// Fingers known to be one finger in two sources (a volunteer in two collections):
    /// `((source name, finger), (source name, finger))`. Their pairs are neither impostor
    /// nor genuine (left out of every pool, single and fused), and counted in
    /// [`Report::excluded_pairs`].
    pub same_fingers: Vec<SameFinger>,
}

/// A finger of the pool: its source's name (the folder's name, or "synthetic") and number.
pub type FingerRef = (String, u32);
/// Two [`FingerRef`]s that are one finger ([`Options::same_fingers`]).
pub type SameFinger = (FingerRef, FingerRef);

impl Default for Options {
    fn default() -> Options {
        Options {
            sets: Vec::new(),
            synth: None,
            target_fmrs: vec![0.01, 0.001, 0.0001, 0.00001],
            defaults_scale: ScoreScale::Classical,
            fusions: vec![Fusion::Mean, Fusion::Max],
            policy_fmr: 0.001,
            max_attempts: 3,
            quality_limits: vec![0, 10, 20, 30, 40, 50, 60, 70],
            minutiae_limits: vec![0, 5, 8, 10, 12, 14, 16, 18, 20, 25, 30],
            current_rescan: (0, 0),
            counter: Vec::new(),
            card_format: None,
            card_format_both_sides: false,
            extractor: None,
            same_fingers: Vec::new(),
        }
    }
}

/// A 95 % confidence interval of a proportion.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    /// Lower bound.
    pub low: f64,
    /// Upper bound.
    pub high: f64,
}

/// One threshold with its rates on the pool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThresholdRow {
    /// The target FMR it was chosen for (for a checked default: its own target).
    pub target_fmr: f64,
    /// Accept scores at or above this.
    pub threshold: f32,
    /// Impostor scores in the pool.
    pub impostors: usize,
    /// Impostor scores at or above the threshold.
    pub impostors_at_or_above: usize,
    /// Their share.
    pub fmr: f64,
    /// 95 % Clopper-Pearson interval of the FMR.
    pub fmr_ci95: Interval,
    /// Genuine scores in the pool.
    pub genuine: usize,
    /// Share of genuine scores below the threshold.
    pub fnmr: f64,
    /// Fewer than ten false matches allowed: the threshold rests on a handful of scores.
    pub indicative: bool,
}

/// Calibration on one pool of scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolReport {
    /// `all`, `real`, `synthetic`, or a fusion's name.
    pub name: String,
    /// Number of impostor scores.
    pub impostors: usize,
    /// Number of genuine scores.
    pub genuine: usize,
    /// Highest impostor score.
    pub max_impostor: f32,
    /// Thresholds calibrated on this pool.
    pub calibrated: Vec<ThresholdRow>,
    /// The checked thresholds (current defaults) on this pool: the one-finger table, or for a
    /// pool fused by the mean the mean-of-two table.
    pub checked: Vec<ThresholdRow>,
    /// For fused pools: the single-finger thresholds calibrated in this run, applied to the
    /// fused scores (what delivery did before issue 19).
    pub single_applied: Vec<ThresholdRow>,
}

/// One candidate rescan limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescanRow {
    /// `quality` or `minutiae`.
    pub kind: String,
    /// Scans below this are rescanned.
    pub limit: usize,
    /// Share of all scans of the pool that would be rescanned.
    pub scans_rescanned: f64,
    /// Genuine comparisons that failed at the threshold and whose live scan is below the limit.
    pub failures_avoided: usize,
    /// Genuine comparisons that passed and whose live scan is below the limit.
    pub good_rescanned: usize,
    /// FNMR of the genuine comparisons whose live scan passes the limit.
    pub fnmr_after: f64,
}

/// Rescan limits against the genuine comparisons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RescanReport {
    /// Single-finger threshold the failures are counted at.
    pub threshold: f32,
    /// Genuine comparisons.
    pub genuine: usize,
    /// Of which failed at the threshold.
    pub failures: usize,
    /// One row per candidate limit, quality first.
    pub rows: Vec<RescanRow>,
    /// The quality limit that maximizes avoided − rescanned good (lowest on ties).
    pub picked_quality: u8,
    /// The minutiae limit that does the same.
    pub picked_minutiae: usize,
    /// Both picked limits together.
    pub picked_both: RescanRow,
    /// The current limits together.
    pub current_both: RescanRow,
}

/// Counter outcomes of one setting over one group of holders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterRow {
    /// The setting.
    pub setting: CounterSetting,
    /// `real`, `synthetic` or `all`.
    pub group: String,
    /// Holders (pairs of fingers).
    pub holders: usize,
    /// Accepted at attempt 1, 2, ... (index 0 = first attempt).
    pub accepted_at: Vec<usize>,
    /// Refused after `max_attempts` failed decisions.
    pub refused: usize,
    /// Ran out of impressions before a decision (too many rescans).
    pub out_of_scans: usize,
    /// Share refused (refused / holders).
    pub refused_share: f64,
    /// 95 % Clopper-Pearson interval of that share.
    pub refused_ci95: Interval,
    /// Rescans asked for in all.
    pub rescans: usize,
}

/// Everything [`run`] found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// The extractor of every scan ("classical", "leader").
    #[serde(default)]
    pub extractor: String,
    /// Single-finger pairs left out as one finger in two sources ([`Options::same_fingers`]).
    #[serde(default)]
    pub excluded_pairs: usize,
    /// How the templates were stored before comparing: "as extracted", "compact
    /// (candidates)", "compact (both sides)" ([`Options::card_format`]).
    #[serde(default)]
    pub templates: String,
    /// The score scale of the "default" rows ([`Options::defaults_scale`]).
    #[serde(default)]
    pub defaults_scale: String,
    /// Sources of the pool, in order, with their scan counts.
    pub sources: Vec<(String, usize)>,
    /// Scans that failed to enrol (they take part with score 0).
    pub failures_to_enrol: Vec<String>,
    /// Number of scans.
    pub scans: usize,
    /// Single-finger calibration: all, real, synthetic.
    pub single: Vec<PoolReport>,
    /// Impostor pairs between two scans of the same source only, at the `all` thresholds.
    pub same_source_only: PoolReport,
    /// Fused calibration per rule and group (`mean/all`, `mean/real`, ...).
    pub fused: Vec<PoolReport>,
    /// Rescan limits.
    pub rescan: RescanReport,
    /// Counter experience.
    pub counter: Vec<CounterRow>,
}

/// One scan of the pool.
struct Scan {
    /// Index into the sources.
    source: usize,
    /// Finger number within its source.
    finger: u32,
    /// Impression number.
    impression: u32,
    /// Extracted minutiae; `None` when extraction failed.
    fp: Option<Fingerprint>,
    /// Why extraction failed, with the scan's name.
    error: Option<String>,
}

/// Quality and minutiae count of a scan (0 for a failure to enrol).
fn scan_qm(s: &Scan) -> (u8, usize) {
    s.fp.as_ref()
        .map(|f| (f.quality, f.minutiae.len()))
        .unwrap_or((0, 0))
}

/// Upper-triangle score matrix of the pool: `score(i, j)` for `i != j`.
struct Scores {
    n: usize,
    tri: Vec<f32>,
}

impl Scores {
    fn offset(&self, i: usize) -> usize {
        i * self.n - i * (i + 1) / 2
    }
    fn get(&self, a: usize, b: usize) -> f32 {
        let (i, j) = if a < b { (a, b) } else { (b, a) };
        self.tri[self.offset(i) + j - i - 1]
    }
}

/// The exact (Clopper-Pearson) two-sided 95 % interval of a proportion `k / n`.
pub fn clopper_pearson(k: usize, n: usize) -> Interval {
    if n == 0 {
        return Interval {
            low: 0.0,
            high: 1.0,
        };
    }
    let alpha = 0.05;
    let (kf, nf) = (k as f64, n as f64);
    let low = if k == 0 {
        0.0
    } else {
        inverse_beta(alpha / 2.0, kf, nf - kf + 1.0)
    };
    let high = if k >= n {
        1.0
    } else {
        inverse_beta(1.0 - alpha / 2.0, kf + 1.0, nf - kf)
    };
    Interval { low, high }
}

/// The Wilson score 95 % interval of a proportion `k / n`.
pub fn wilson(k: usize, n: usize) -> Interval {
    if n == 0 {
        return Interval {
            low: 0.0,
            high: 1.0,
        };
    }
    let z = 1.959_963_984_540_054_f64;
    let (nf, p) = (n as f64, k as f64 / n as f64);
    let d = 1.0 + z * z / nf;
    let c = (p + z * z / (2.0 * nf)) / d;
    let h = z * (p * (1.0 - p) / nf + z * z / (4.0 * nf * nf)).sqrt() / d;
    Interval {
        low: (c - h).max(0.0),
        high: (c + h).min(1.0),
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, 9 terms; relative error about 1e-15).
fn ln_gamma(x: f64) -> f64 {
    const G: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = G[0];
    let t = x + 7.5;
    for (i, g) in G.iter().enumerate().skip(1) {
        a += g / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// Regularized incomplete beta function I_x(a, b).
fn beta_inc(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        ln_front.exp() * beta_cf(x, a, b) / a
    } else {
        1.0 - ln_front.exp() * beta_cf(1.0 - x, b, a) / b
    }
}

/// Smallest magnitude Lentz's method lets a partial value take (avoids dividing by zero).
const TINY: f64 = 1e-300;

/// One step of Lentz's method for a continued fraction's term `aa`: updates `c` and `d`
/// (kept away from zero) and returns the factor the fraction's value is multiplied by.
fn lentz_step(aa: f64, c: &mut f64, d: &mut f64) -> f64 {
    *d = 1.0 + aa * *d;
    if d.abs() < TINY {
        *d = TINY;
    }
    *c = 1.0 + aa / *c;
    if c.abs() < TINY {
        *c = TINY;
    }
    *d = 1.0 / *d;
    *d * *c
}

/// Continued fraction of the incomplete beta function (modified Lentz).
fn beta_cf(x: f64, a: f64, b: f64) -> f64 {
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..100_000 {
        let m = m as f64;
        let m2 = 2.0 * m;
        h *= lentz_step(m * (b - m) * x / ((qam + m2) * (a + m2)), &mut c, &mut d);
        let del = lentz_step(
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
            &mut c,
            &mut d,
        );
        h *= del;
        if (del - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

/// The x with I_x(a, b) = p (bisection; I is increasing in x).
fn inverse_beta(p: f64, a: f64, b: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if beta_inc(mid, a, b) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-17_f64.max(lo * 1e-13) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Rates of `threshold` on sorted (ascending) score lists.
fn row(
    target_fmr: f64,
    threshold: f32,
    impostor: &[f32],
    genuine: &[f32],
    allowed: usize,
) -> ThresholdRow {
    let above = impostor.len() - impostor.partition_point(|&s| s < threshold);
    let below = genuine.partition_point(|&s| s < threshold);
    let share = |k: usize, n: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    ThresholdRow {
        target_fmr,
        threshold,
        impostors: impostor.len(),
        impostors_at_or_above: above,
        fmr: share(above, impostor.len()),
        fmr_ci95: clopper_pearson(above, impostor.len()),
        genuine: genuine.len(),
        fnmr: share(below, genuine.len()),
        indicative: allowed < 10,
    }
}

/// Calibrates every target on one pool; `checked` thresholds are reported as they are.
fn pool_report(
    name: &str,
    mut impostor: Vec<f32>,
    mut genuine: Vec<f32>,
    targets: &[f64],
    checked: &[Threshold],
    applied: &[Threshold],
) -> PoolReport {
    for v in [&mut impostor, &mut genuine] {
        for s in v.iter_mut() {
            if s.is_nan() {
                *s = f32::NEG_INFINITY;
            }
        }
        v.sort_by(f32::total_cmp);
    }
    let n = impostor.len();
    let calibrated = targets
        .iter()
        .filter_map(|&fmr| {
            let allowed = (fmr * n as f64 + 1e-9).floor() as usize;
            if allowed == 0 {
                return None;
            }
            let t = Threshold::for_fmr(&impostor, fmr)?;
            Some(row(fmr, t.score, &impostor, &genuine, allowed))
        })
        .collect();
    let rows_of = |ts: &[Threshold]| -> Vec<ThresholdRow> {
        ts.iter()
            .map(|t| row(t.target_fmr, t.score, &impostor, &genuine, usize::MAX))
            .collect()
    };
    let checked = rows_of(checked);
    let single_applied = rows_of(applied);
    PoolReport {
        name: name.to_string(),
        impostors: n,
        genuine: genuine.len(),
        max_impostor: impostor.last().copied().unwrap_or(f32::NEG_INFINITY),
        calibrated,
        checked,
        single_applied,
    }
}

/// Each source of the pool with how many scans it gave.
type Sources = Vec<(String, usize)>;

/// Reads and extracts every source of the pool, in order.
fn enrol(options: &Options, progress: &dyn Progress) -> Result<(Sources, Vec<Scan>), Error> {
    let mut sources = Vec::new();
    let mut scans = Vec::new();
    let by = options.extractor.as_deref();
    for (si, set) in options.sets.iter().enumerate() {
        let samples = fvc::scan_dir(&set.dir)?;
        if samples.is_empty() {
            return Err(Error::InvalidImage(format!(
                "{}: no images named <finger>_<impression>.tif|png|bmp",
                set.dir.display()
            )));
        }
        let name = set
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| set.dir.display().to_string());
        progress.start(&name, samples.len() as u64);
        let mut got: Vec<Scan> = samples
            .par_iter()
            .map(|s| {
                let r = crate::image::GrayImage::open(&s.path)
                    .and_then(|image| extract_by(&image, set.dpi, by));
                progress.step();
                let error = r.as_ref().err().map(|e| format!("{name}/{}: {e}", s.name));
                Scan {
                    source: si,
                    finger: s.finger,
                    impression: s.impression,
                    fp: r.ok(),
                    error,
                }
            })
            .collect();
        progress.finish();
        sources.push((name, got.len()));
        scans.append(&mut got);
    }
    if let Some(sp) = options.synth {
        let si = sources.len();
        progress.start("synth", u64::from(sp.fingers));
        let per_finger: Vec<Vec<Scan>> = (1..=sp.fingers)
            .into_par_iter()
            .map(|f| {
                let out = synth_finger(&sp, si, f, by);
                progress.step();
                out
            })
            .collect();
        progress.finish();
        let mut got: Vec<Scan> = per_finger.into_iter().flatten().collect();
        sources.push(("synthetic".to_string(), got.len()));
        scans.append(&mut got);
    }
    Ok((sources, scans))
}

/// The minutiae of `image`: the classical extractor's, or `by`'s with the classical image
/// quality.
fn extract_by(
    image: &crate::image::GrayImage,
    dpi: u32,
    by: Option<&dyn crate::extract::MinutiaeExtractor>,
) -> Result<Fingerprint, Error> {
    let classical = crate::extract::extract(image, dpi)?;
    match by {
        None => Ok(classical),
        Some(by) => {
            let mut print = by.extract(image, dpi)?;
            print.quality = classical.quality;
            Ok(print)
        }
    }
}

/// Generates and extracts the impressions of generated finger `f`.
fn synth_finger(
    sp: &SynthSpec,
    source: usize,
    f: u32,
    by: Option<&dyn crate::extract::MinutiaeExtractor>,
) -> Vec<Scan> {
    let name = |i: u32| format!("synthetic/{f}_{i}");
    let master = match Master::generate(&sp.params, synth::finger_seed(sp.seed, f)) {
        Ok(m) => m,
        Err(e) => {
            return (1..=sp.impressions)
                .map(|i| Scan {
                    source,
                    finger: f,
                    impression: i,
                    fp: None,
                    error: Some(format!("{}: {e}", name(i))),
                })
                .collect()
        }
    };
    (1..=sp.impressions)
        .map(|i| {
            let r = master
                .impression(&sp.params, i)
                .and_then(|imp| extract_by(&imp.image, sp.params.dpi, by));
            Scan {
                source,
                finger: f,
                impression: i,
                error: r.as_ref().err().map(|e| format!("{}: {e}", name(i))),
                fp: r.ok(),
            }
        })
        .collect()
}

/// A holder: two fingers of one source, with the scans of each by impression number.
struct Holder {
    /// Source index.
    source: usize,
    /// Scan indices of the first finger, by ascending impression.
    a: Vec<(u32, usize)>,
    /// Scan indices of the second finger, by ascending impression.
    b: Vec<(u32, usize)>,
}

impl Holder {
    /// Impression numbers both fingers have, with the scan index of each finger.
    fn common(&self) -> Vec<(u32, usize, usize)> {
        self.a
            .iter()
            .filter_map(|&(i, sa)| {
                self.b
                    .iter()
                    .find(|&&(j, _)| j == i)
                    .map(|&(_, sb)| (i, sa, sb))
            })
            .collect()
    }
}

/// Pairs consecutive fingers of each source into holders (an odd last finger is left out).
fn holders(scans: &[Scan]) -> Vec<Holder> {
    // (source, finger) -> its (impression, scan index) pairs.
    type Finger = ((usize, u32), Vec<(u32, usize)>);
    let mut fingers: Vec<Finger> = Vec::new();
    for (k, s) in scans.iter().enumerate() {
        let key = (s.source, s.finger);
        match fingers.iter_mut().find(|(f, _)| *f == key) {
            Some((_, v)) => v.push((s.impression, k)),
            None => fingers.push((key, vec![(s.impression, k)])),
        }
    }
    fingers.sort_by_key(|(k, _)| *k);
    for (_, v) in &mut fingers {
        v.sort();
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i + 1 < fingers.len() {
        if fingers[i].0 .0 == fingers[i + 1].0 .0 {
            out.push(Holder {
                source: fingers[i].0 .0,
                a: fingers[i].1.clone(),
                b: fingers[i + 1].1.clone(),
            });
            i += 2;
        } else {
            i += 1;
        }
    }
    out
}

/// Runs the calibration. `synthetic_source` in the report is the last source when
/// `options.synth` is set.
pub fn run(options: &Options, progress: &dyn Progress) -> Result<Report, Error> {
    let (sources, scans) = enrol(options, progress)?;
    if scans.len() < 2 {
        return Err(Error::InvalidImage(
            "fewer than two scans to compare".into(),
        ));
    }
    let synth_source = options.synth.map(|_| sources.len() - 1);
    let is_synth = |s: usize| Some(s) == synth_source;
    // Scan indices whose fingers were declared one finger (either order).
    let finger_of = |k: usize| (sources[scans[k].source].0.as_str(), scans[k].finger);
    let declared_same = |i: usize, j: usize| {
        let (a, b) = (finger_of(i), finger_of(j));
        options.same_fingers.iter().any(|((sa, fa), (sb, fb))| {
            let (x, y) = ((sa.as_str(), *fa), (sb.as_str(), *fb));
            (a == x && b == y) || (a == y && b == x)
        })
    };
    let mut excluded_pairs = 0;
    let stored = |fp: &Fingerprint, format: Option<CardFormat>| match format {
        None => Some(prepare(fp)),
        Some(f) => template::encode(fp, f)
            .and_then(|b| template::decode(&b, f, fp.dpi_x))
            .ok()
            .map(|c| prepare_stored(&c, f)),
    };
    let probe_format = options
        .card_format
        .filter(|_| options.card_format_both_sides);
    let probes: Vec<Option<PreparedTemplate>> = scans
        .iter()
        .map(|s| stored(s.fp.as_ref()?, probe_format))
        .collect();
    let candidates: Vec<Option<PreparedTemplate>> = scans
        .iter()
        .map(|s| stored(s.fp.as_ref()?, options.card_format))
        .collect();

    // Every pair, probe = the earlier scan.
    let n = scans.len();
    progress.start("compare", n as u64);
    let rows: Vec<Vec<f32>> = (0..n)
        .into_par_iter()
        .map_init(Scratch::new, |scratch, i| {
            let row = (i + 1..n)
                .map(|j| match (&probes[i], &candidates[j]) {
                    (Some(p), Some(c)) => compare(p, c, scratch),
                    _ => 0.0,
                })
                .collect();
            progress.step();
            row
        })
        .collect();
    progress.finish();
    let scores = Scores {
        n,
        tri: rows.into_iter().flatten().collect(),
    };

    // Single-finger pools.
    let mut imp_all = Vec::new();
    let mut imp_real = Vec::new();
    let mut imp_synth = Vec::new();
    let mut imp_same_source = Vec::new();
    let mut gen_all = Vec::new();
    let mut gen_real = Vec::new();
    let mut gen_synth = Vec::new();
    // (live scan index, score) of every genuine pair, for the rescan table.
    let mut genuine_pairs: Vec<(usize, f32)> = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (&scans[i], &scans[j]);
            let s = scores.get(i, j);
            let (sa, sb) = (is_synth(a.source), is_synth(b.source));
            if declared_same(i, j) {
                excluded_pairs += 1;
                continue;
            }
            if a.source == b.source && a.finger == b.finger {
                gen_all.push(s);
                if sa {
                    gen_synth.push(s);
                } else {
                    gen_real.push(s);
                }
                let live = if a.impression >= b.impression { i } else { j };
                genuine_pairs.push((live, s));
            } else {
                imp_all.push(s);
                if sa && sb {
                    imp_synth.push(s);
                } else if !sa && !sb {
                    imp_real.push(s);
                }
                if a.source == b.source {
                    imp_same_source.push(s);
                }
            }
        }
    }
    let targets = &options.target_fmrs;
    let checks = &options.defaults_scale.single();
    let mut single = vec![pool_report(
        "all",
        imp_all,
        gen_all.clone(),
        targets,
        checks,
        &[],
    )];
    if synth_source.is_some() && !options.sets.is_empty() {
        single.push(pool_report(
            "real",
            imp_real,
            gen_real,
            targets,
            checks,
            &[],
        ));
        single.push(pool_report(
            "synthetic",
            imp_synth,
            gen_synth,
            targets,
            checks,
            &[],
        ));
    }
    let all_thresholds: Vec<Threshold> = single[0]
        .calibrated
        .iter()
        .map(|r| Threshold {
            score: r.threshold,
            target_fmr: r.target_fmr,
        })
        .collect();
    let same_source_only = pool_report(
        "same source",
        imp_same_source,
        gen_all,
        &[],
        &[],
        &all_thresholds,
    );

    // Fused pools: holder A's enrolment against holder B's live scans.
    let hs = holders(&scans);
    let common: Vec<Vec<(u32, usize, usize)>> = hs.iter().map(Holder::common).collect();
    let single_policy = single[0]
        .calibrated
        .iter()
        .find(|r| (r.target_fmr - options.policy_fmr).abs() <= options.policy_fmr * 1e-6)
        .map(|r| r.threshold)
        .unwrap_or_else(|| Threshold::calibrated_within(options.policy_fmr).score);
    let mut fused = Vec::new();
    let mut fused_policy: Vec<(Fusion, f32)> = Vec::new();
    for &rule in &options.fusions {
        let rule_name = match rule {
            Fusion::Max => "max",
            Fusion::Mean => "mean",
        };
        let mut groups: Vec<(&str, Vec<f32>, Vec<f32>)> = vec![("all", vec![], vec![])];
        if synth_source.is_some() && !options.sets.is_empty() {
            groups.push(("real", vec![], vec![]));
            groups.push(("synthetic", vec![], vec![]));
        }
        let group_of = |src_a: usize, src_b: usize| -> Option<usize> {
            match (is_synth(src_a), is_synth(src_b)) {
                (true, true) => Some(2),
                (false, false) => Some(1),
                _ => None,
            }
        };
        // Each unordered pair of holders (and of impressions) once: the score matrix is
        // symmetric, so B's enrolment against A's live scan repeats A's against B's.
        for (x, (ha, ca)) in hs.iter().zip(&common).enumerate() {
            for (hb, cb) in hs.iter().zip(&common).skip(x) {
                let same = std::ptr::eq(ha, hb);
                let g = group_of(ha.source, hb.source);
                for &(ie, ea, eb) in ca {
                    for &(il, la, lb) in cb {
                        if (same && ie >= il) || declared_same(ea, la) || declared_same(eb, lb) {
                            continue;
                        }
                        let f = fuse(&[scores.get(ea, la), scores.get(eb, lb)], rule);
                        let pick = |v: &mut (&str, Vec<f32>, Vec<f32>)| {
                            if same {
                                v.2.push(f)
                            } else {
                                v.1.push(f)
                            }
                        };
                        pick(&mut groups[0]);
                        if let Some(g) = g.filter(|&g| g < groups.len()) {
                            pick(&mut groups[g]);
                        }
                    }
                }
            }
        }
        // The defaults checked are the ones a decision on this rule applies: the mean-of-two
        // table for the mean (delivery's two fingers), the one-finger table for the max, which
        // has none of its own. The single-finger thresholds of this run are applied as well,
        // as delivery did before issue 19.
        let fused_checks = match rule {
            Fusion::Mean => options.defaults_scale.mean_of_two(),
            Fusion::Max => *checks,
        };
        for (gname, imp, gen) in groups {
            let name = format!("{rule_name}/{gname}");
            let rep = pool_report(&name, imp, gen, targets, &fused_checks, &all_thresholds);
            if gname == "all" {
                if let Some(r) = rep.calibrated.iter().find(|r| {
                    (r.target_fmr - options.policy_fmr).abs() <= options.policy_fmr * 1e-6
                }) {
                    fused_policy.push((rule, r.threshold));
                }
            }
            fused.push(rep);
        }
    }

    // Rescan limits.
    let rescan = rescan_report(&scans, &genuine_pairs, single_policy, options);

    // Counter experience.
    let mut settings = options.counter.clone();
    for &(rule, t) in &fused_policy {
        settings.push(CounterSetting {
            name: format!(
                "calibrated here: {rule:?} of 2 at FMR {}",
                options.policy_fmr
            )
            .to_lowercase(),
            threshold: t,
            fingers: 2,
            fusion: rule,
            min_quality: rescan.picked_quality,
            min_minutiae: rescan.picked_minutiae,
            max_attempts: options.max_attempts,
        });
    }
    settings.push(CounterSetting {
        name: format!("calibrated here: one finger at FMR {}", options.policy_fmr),
        threshold: single_policy,
        fingers: 1,
        fusion: Fusion::Mean,
        min_quality: rescan.picked_quality,
        min_minutiae: rescan.picked_minutiae,
        max_attempts: options.max_attempts,
    });
    progress.start("counter", settings.len() as u64);
    let mut counter = Vec::new();
    for setting in &settings {
        let outcomes: Vec<(usize, Outcome)> = hs
            .par_iter()
            .map_init(Scratch::new, |scratch, h| {
                (
                    h.source,
                    counter_one(h, &scans, &probes, &candidates, setting, scratch),
                )
            })
            .collect();
        let mut groups: Vec<(&str, Vec<Outcome>)> = vec![("all", Vec::new())];
        if synth_source.is_some() && !options.sets.is_empty() {
            groups.push(("real", Vec::new()));
            groups.push(("synthetic", Vec::new()));
        }
        for (src, o) in outcomes {
            groups[0].1.push(o);
            if groups.len() > 1 {
                groups[if is_synth(src) { 2 } else { 1 }].1.push(o);
            }
        }
        for (g, os) in groups {
            counter.push(counter_row(setting, g, &os));
        }
        progress.step();
    }
    progress.finish();

    Ok(Report {
        extractor: options
            .extractor
            .as_ref()
            .map_or("classical", |e| e.name())
            .to_string(),
        excluded_pairs,
        templates: match (options.card_format, probe_format) {
            (None, _) => "as extracted".to_string(),
            (Some(f), None) => format!("{} (candidates)", f.name()),
            (Some(f), Some(_)) => format!("{} (both sides)", f.name()),
        },
        defaults_scale: options.defaults_scale.name().to_string(),
        sources,
        failures_to_enrol: scans.iter().filter_map(|s| s.error.clone()).collect(),
        scans: n,
        single,
        same_source_only,
        fused,
        rescan,
        counter,
    })
}

/// The rescan table.
fn rescan_report(
    scans: &[Scan],
    genuine: &[(usize, f32)],
    threshold: f32,
    options: &Options,
) -> RescanReport {
    let failures = genuine.iter().filter(|(_, s)| *s < threshold).count();
    let make = |kind: &str, limit: usize, below: &dyn Fn(usize) -> bool| {
        let scans_below = (0..scans.len()).filter(|&k| below(k)).count();
        let mut avoided = 0;
        let mut good = 0;
        let mut kept = 0;
        let mut kept_fail = 0;
        for &(live, s) in genuine {
            let fail = s < threshold;
            if below(live) {
                if fail {
                    avoided += 1
                } else {
                    good += 1
                }
            } else {
                kept += 1;
                kept_fail += usize::from(fail);
            }
        }
        RescanRow {
            kind: kind.to_string(),
            limit,
            scans_rescanned: scans_below as f64 / scans.len().max(1) as f64,
            failures_avoided: avoided,
            good_rescanned: good,
            fnmr_after: if kept == 0 {
                0.0
            } else {
                kept_fail as f64 / kept as f64
            },
        }
    };
    let qm: Vec<(u8, usize)> = scans.iter().map(scan_qm).collect();
    let mut rows = Vec::new();
    for &q in &options.quality_limits {
        rows.push(make("quality", usize::from(q), &|k| qm[k].0 < q));
    }
    for &m in &options.minutiae_limits {
        rows.push(make("minutiae", m, &|k| qm[k].1 < m));
    }
    let best = |kind: &str| {
        rows.iter()
            .filter(|r| r.kind == kind)
            .max_by(|a, b| {
                let (ga, gb) = (
                    a.failures_avoided as i64 - a.good_rescanned as i64,
                    b.failures_avoided as i64 - b.good_rescanned as i64,
                );
                // Higher gain; on ties the lower limit.
                ga.cmp(&gb).then(b.limit.cmp(&a.limit))
            })
            .map(|r| r.limit)
            .unwrap_or(0)
    };
    let picked_quality = best("quality").min(255) as u8;
    let picked_minutiae = best("minutiae");
    let picked_both = make("both", 0, &|k| {
        qm[k].0 < picked_quality || qm[k].1 < picked_minutiae
    });
    let (cq, cm) = options.current_rescan;
    let current_both = make("both", 0, &|k| qm[k].0 < cq || qm[k].1 < cm);
    RescanReport {
        threshold,
        genuine: genuine.len(),
        failures,
        rows,
        picked_quality,
        picked_minutiae,
        picked_both,
        current_both,
    }
}

/// How one holder fared at the counter.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// Accepted at this attempt (1-based).
    Accepted { attempt: u32, rescans: usize },
    /// Refused after the allowed attempts.
    Refused { rescans: usize },
    /// No impressions left before a decision.
    OutOfScans { rescans: usize },
}

/// Plays one holder's visit: impression 1 on the card, later impressions as live scans.
fn counter_one(
    h: &Holder,
    scans: &[Scan],
    probes: &[Option<PreparedTemplate>],
    candidates: &[Option<PreparedTemplate>],
    setting: &CounterSetting,
    scratch: &mut Scratch,
) -> Outcome {
    let visits = h.common();
    let Some((&(_, ea, eb), live)) = visits.split_first() else {
        return Outcome::OutOfScans { rescans: 0 };
    };
    let enrolled = [ea, eb];
    let mut failed = 0u32;
    let mut rescans = 0usize;
    for &(_, la, lb) in live {
        let presented = &[la, lb][..setting.fingers.clamp(1, 2)];
        let poor = presented.iter().any(|&k| {
            let (q, m) = scan_qm(&scans[k]);
            scans[k].fp.is_none() || q < setting.min_quality || m < setting.min_minutiae
        });
        if poor {
            rescans += 1;
            continue;
        }
        let per_finger: Vec<f32> = presented
            .iter()
            .zip(enrolled)
            .map(|(&l, e)| match (&probes[l], &candidates[e]) {
                (Some(p), Some(c)) => compare(p, c, scratch),
                _ => 0.0,
            })
            .collect();
        if fuse(&per_finger, setting.fusion) >= setting.threshold {
            return Outcome::Accepted {
                attempt: failed + 1,
                rescans,
            };
        }
        failed += 1;
        if failed >= setting.max_attempts {
            return Outcome::Refused { rescans };
        }
    }
    Outcome::OutOfScans { rescans }
}

fn counter_row(setting: &CounterSetting, group: &str, os: &[Outcome]) -> CounterRow {
    let mut accepted_at = vec![0usize; setting.max_attempts as usize];
    let (mut refused, mut out, mut rescans) = (0, 0, 0);
    for o in os {
        match *o {
            Outcome::Accepted {
                attempt,
                rescans: r,
            } => {
                if let Some(slot) = accepted_at.get_mut(attempt as usize - 1) {
                    *slot += 1;
                }
                rescans += r;
            }
            Outcome::Refused { rescans: r } => {
                refused += 1;
                rescans += r;
            }
            Outcome::OutOfScans { rescans: r } => {
                out += 1;
                rescans += r;
            }
        }
    }
    CounterRow {
        setting: setting.clone(),
        group: group.to_string(),
        holders: os.len(),
        accepted_at,
        refused,
        out_of_scans: out,
        refused_share: if os.is_empty() {
            0.0
        } else {
            refused as f64 / os.len() as f64
        },
        refused_ci95: clopper_pearson(refused, os.len()),
        rescans,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn clopper_pearson_known_values() {
        // R: binom.test(5, 10)$conf.int = 0.1870860 0.8129140.
        let i = clopper_pearson(5, 10);
        assert!(
            close(i.low, 0.187_086_0, 1e-6) && close(i.high, 0.812_914_0, 1e-6),
            "{i:?}"
        );
        // binom.test(0, 10): upper = 1 - 0.025^(1/10) = 0.3084971.
        let i = clopper_pearson(0, 10);
        assert_eq!(i.low, 0.0);
        assert!(close(i.high, 1.0 - 0.025f64.powf(0.1), 1e-9), "{i:?}");
        // binom.test(1, 100)$conf.int = 0.0002531460 0.0544593854.
        let i = clopper_pearson(1, 100);
        assert!(
            close(i.low, 0.000_253_146_0, 1e-9) && close(i.high, 0.054_459_385_4, 1e-8),
            "{i:?}"
        );
        // All successes: lower = 0.025^(1/n).
        let i = clopper_pearson(20, 20);
        assert!(
            close(i.low, 0.025f64.powf(1.0 / 20.0), 1e-9) && i.high == 1.0,
            "{i:?}"
        );
        // Large n, as in the calibration: 0 of 14 400, and 145 of 14 400
        // (binom.test(145, 14400)$conf.int = 0.008500... 0.011840...).
        let i = clopper_pearson(0, 14_400);
        assert!(
            close(i.high, 1.0 - 0.025f64.powf(1.0 / 14_400.0), 1e-10),
            "{i:?}"
        );
        let i = clopper_pearson(145, 14_400);
        assert!(i.low < 145.0 / 14_400.0 && i.high > 145.0 / 14_400.0);
        assert!(
            close(i.low, 0.008_497, 5e-5) && close(i.high, 0.011_840, 5e-5),
            "{i:?}"
        );
    }

    #[test]
    fn wilson_known_values() {
        // 5 of 10: 0.2365931 0.7634069 (prop.test(5, 10, correct = FALSE)).
        let i = wilson(5, 10);
        assert!(
            close(i.low, 0.236_593_1, 1e-6) && close(i.high, 0.763_406_9, 1e-6),
            "{i:?}"
        );
        // 0 of 10: upper z²/(n+z²).
        let z2 = 1.959_963_984_540_054_f64.powi(2);
        let i = wilson(0, 10);
        assert!(
            close(i.low, 0.0, 1e-12) && close(i.high, z2 / (10.0 + z2), 1e-9),
            "{i:?}"
        );
    }

    #[test]
    fn intervals_of_nothing() {
        assert_eq!(
            clopper_pearson(0, 0),
            Interval {
                low: 0.0,
                high: 1.0
            }
        );
        assert_eq!(
            wilson(0, 0),
            Interval {
                low: 0.0,
                high: 1.0
            }
        );
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut f = 1.0f64;
        for n in 1..20u32 {
            f *= f64::from(n);
            assert!(close(
                ln_gamma(f64::from(n) + 1.0),
                f.ln(),
                1e-10 * f.ln().max(1.0)
            ));
        }
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
    }

    #[test]
    fn pool_report_counts_and_indicative() {
        // 1000 impostors 0.000..0.999, 10 genuine at 0.5..0.95.
        let imp: Vec<f32> = (0..1000).map(|i| i as f32 / 1000.0).collect();
        let gen: Vec<f32> = (0..10).map(|i| 0.5 + i as f32 * 0.05).collect();
        let r = pool_report("t", imp, gen, &[0.01, 0.001, 0.0001], &[], &[]);
        assert_eq!(
            r.calibrated.len(),
            2,
            "0.01 % allows no false match of 1000"
        );
        assert_eq!(r.calibrated[0].impostors_at_or_above, 10);
        assert!(!r.calibrated[0].indicative);
        assert_eq!(r.calibrated[1].impostors_at_or_above, 1);
        assert!(r.calibrated[1].indicative);
        // Threshold just above 0.989: genuine 0.5..0.95 all below.
        assert_eq!(r.calibrated[0].fnmr, 1.0);
    }
}
