//! The FVC protocol on a folder of scans named `<finger>_<impression>.<ext>`: enrolment,
//! genuine and impostor pairs, scores, error rates and speed. `idcardd bench fvc` is a thin
//! front end over [`run`].
//!
//! - **Genuine pairs**: every pair of impressions of the same finger (probe = lower impression).
//! - **FVC impostor pairs**: the first impression of every finger against the first impression
//!   of every other finger.
//! - **Extended impostor pairs**: every pair of images of different fingers.
//! - **Failures to enrol**: an image whose extraction (or template round trip) fails is listed in
//!   [`Report::failures_to_enrol`] and every pair it takes part in scores 0, so it counts against
//!   FNMR and never as a false match.
//! - **Speed**: comparisons per second are measured in a single-threaded loop over all pairs
//!   after scoring, with and without preparing the probe each time; extraction time is measured
//!   per image. Scoring itself may use every thread of the current rayon pool.

use super::shift::SensorShift;
use super::{rates, Rates};
use crate::compare::{compare, prepare, prepare_stored, PreparedTemplate, Scratch};
use crate::extract::{Classical, MinutiaeExtractor};
use crate::image::GrayImage;
use crate::template::{self, CardFormat};
use crate::{Error, Fingerprint};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One scan of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Finger id (the part before `_`).
    pub finger: u32,
    /// Impression number (the part after `_`).
    pub impression: u32,
    /// File stem, e.g. `101_3`, used in score files.
    pub name: String,
    /// Path of the image.
    pub path: PathBuf,
}

/// Where the minutiae of each sample come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// Extract them from the image with [`crate::extract`].
    #[default]
    Extract,
    /// Read the ISO/IEC 19794-2 record `<name>.iso` lying beside the image (third-party
    /// templates).
    IsoRecord,
    /// MINEX-style interoperability: the probe is extracted from the image, the candidate (the
    /// reference) is the third-party record `<name>.iso` beside the image, mapped onto the
    /// image's pixels with [`record_on_image`]. Genuine pairs put our template of one
    /// impression against their record of another impression of the same finger.
    ReferenceIso,
}

/// How to run the protocol.
#[derive(Debug, Clone)]
pub struct Options {
    /// Resolution of the scans in dpi.
    pub dpi: u32,
    /// Round-trip every candidate template through this format before comparing.
    pub card_format: Option<CardFormat>,
    /// Extract minutiae or read third-party records.
    pub source: Source,
    /// Minimum duration of each single-threaded speed loop.
    pub timing: Duration,
    /// Extraction parameters (the tuned defaults unless an evaluation varies them).
    pub params: crate::params::ExtractParams,
    /// Which extractor makes each side's minutiae (the classical one with `params` unless
    /// set), and the optional second opinion.
    pub extractors: Extractors,
    /// Every scan as another sensor would show it, on both sides ([`SensorShift`]).
    pub shift: Option<SensorShift>,
    /// The probe side (the live scan) only, after [`Self::shift`]: enrolled on one sensor,
    /// verified on another.
    pub probe_shift: Option<SensorShift>,
}

/// Which extractor serves each side of a comparison when minutiae are extracted
/// ([`Source::Extract`]; with [`Source::ReferenceIso`] only the probe side and the second
/// opinion apply). `None` is the classical extractor with [`Options::params`].
#[derive(Debug, Clone, Default)]
pub struct Extractors {
    /// The probe side: the live scan at delivery.
    pub probe: Option<Arc<dyn MinutiaeExtractor>>,
    /// The reference side: the template enrolled on the card.
    pub reference: Option<Arc<dyn MinutiaeExtractor>>,
    /// A pair whose score falls in the band is compared again with the probe from another
    /// extractor, and that score is the pair's (what the delivery desk does with its optional
    /// learned extractor).
    pub second_opinion: Option<SecondOpinion>,
}

/// The second opinion of [`Extractors`]: scores in `low..high` are decided again.
#[derive(Debug, Clone)]
pub struct SecondOpinion {
    /// Extracts the probe again.
    pub extractor: Arc<dyn MinutiaeExtractor>,
    /// Lowest score asked again.
    pub low: f32,
    /// Scores from here up are not asked again.
    pub high: f32,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            dpi: 500,
            card_format: None,
            source: Source::Extract,
            timing: Duration::from_secs(2),
            params: crate::params::ExtractParams::default(),
            extractors: Extractors::default(),
            shift: None,
            probe_shift: None,
        }
    }
}

/// Progress notifications (for a progress bar). Every method has a no-op default.
pub trait Progress: Sync {
    /// A stage with `total` steps starts.
    fn start(&self, _stage: &str, _total: u64) {}
    /// One more step of the current stage is done.
    fn step(&self) {}
    /// The current stage is over.
    fn finish(&self) {}
}

/// Progress that reports nothing.
pub struct Silent;

impl Progress for Silent {}

/// Median and 95th percentile of per-image extraction times.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Median in milliseconds.
    pub median: f64,
    /// 95th percentile in milliseconds.
    pub p95: f64,
}

/// What a protocol run found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Name of the set (the folder name).
    pub set: String,
    /// Number of images.
    pub images: usize,
    /// Names of images that failed to enrol, with the reason.
    pub failures_to_enrol: Vec<String>,
    /// Per-image extraction time (or record reading time).
    pub extract_ms: Timing,
    /// Mean minutiae per enrolled image.
    pub minutiae_mean: f64,
    /// Single-threaded comparisons per second, prepared templates.
    pub compare_per_s: f64,
    /// Single-threaded comparisons per second, preparing the probe for each comparison.
    pub compare_with_prep_per_s: f64,
    /// Number of genuine pairs.
    pub genuine_pairs: usize,
    /// Number of FVC-protocol impostor pairs.
    pub fvc_impostor_pairs: usize,
    /// Number of extended impostor pairs.
    pub extended_impostor_pairs: usize,
    /// Rates with the FVC impostor pairs.
    pub fvc: Rates,
    /// Rates with the extended impostor pairs.
    pub extended: Rates,
    /// The extractors used: probe side, reference side (e.g. "classical").
    #[serde(default)]
    pub extractors: Option<(String, String)>,
    /// Pairs decided again by the second opinion, and its extraction time per image.
    #[serde(default)]
    pub second_opinion: Option<SecondOpinionReport>,
    /// The sensor shift of both sides (`faint=0.3`; [`SensorShift`]), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shift: Option<String>,
    /// The sensor shift of the probe side only, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe_shift: Option<String>,
}

/// What the second opinion of a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecondOpinionReport {
    /// The extractor.
    pub extractor: String,
    /// Lowest score asked again.
    pub low: f32,
    /// Scores from here up were not asked again.
    pub high: f32,
    /// Genuine pairs asked again.
    pub genuine_pairs: usize,
    /// Extended impostor pairs asked again.
    pub impostor_pairs: usize,
    /// Its per-image extraction time.
    pub extract_ms: Timing,
}

/// Kind of a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairKind {
    /// Two impressions of the same finger.
    Genuine,
    /// Two different fingers; `fvc` is true for the FVC-protocol subset (first impressions).
    Impostor {
        /// Part of the FVC protocol's impostor set.
        fvc: bool,
    },
}

/// A compared pair with its score.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredPair {
    /// Index of the probe sample.
    pub probe: usize,
    /// Index of the candidate sample.
    pub candidate: usize,
    /// Genuine or impostor.
    pub kind: PairKind,
    /// The comparison score (0 when either side failed to enrol).
    pub score: f32,
}

/// Lists the FVC-named images of a folder (`<finger>_<impression>.tif|tiff|png|bmp`), sorted by
/// finger then impression. Other files are ignored.
pub fn scan_dir(dir: &Path) -> Result<Vec<Sample>, Error> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        if !matches!(ext.as_deref(), Some("tif" | "tiff" | "png" | "bmp")) {
            continue;
        }
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let Some((f, i)) = stem.split_once('_') else {
            continue;
        };
        let (Ok(finger), Ok(impression)) = (f.parse(), i.parse()) else {
            continue;
        };
        out.push(Sample {
            finger,
            impression,
            name: stem.to_string(),
            path,
        });
    }
    out.sort_by(|a, b| (a.finger, a.impression, &a.name).cmp(&(b.finger, b.impression, &b.name)));
    Ok(out)
}

/// Every genuine and cross-finger pair of `samples` (probe before candidate in sample order).
pub fn pairs(samples: &[Sample]) -> Vec<(usize, usize, PairKind)> {
    let first = |s: &Sample| {
        samples
            .iter()
            .filter(|o| o.finger == s.finger)
            .map(|o| o.impression)
            .min()
            == Some(s.impression)
    };
    let mut out = Vec::new();
    for i in 0..samples.len() {
        for j in i + 1..samples.len() {
            let (a, b) = (&samples[i], &samples[j]);
            let kind = if a.finger == b.finger {
                PairKind::Genuine
            } else {
                PairKind::Impostor {
                    fvc: first(a) && first(b),
                }
            };
            out.push((i, j, kind));
        }
    }
    out
}

/// One sample after enrolment.
struct Enrolled {
    /// Probe-side minutiae (as extracted or read).
    probe: Option<Fingerprint>,
    /// Candidate-side minutiae (after the optional card-format round trip).
    candidate: Option<Fingerprint>,
    /// The second opinion's probe-side minutiae, when there is one.
    second: Option<Fingerprint>,
    /// Probe-side extraction time in milliseconds.
    ms: f64,
    /// The second opinion's extraction time in milliseconds.
    second_ms: f64,
    /// Why enrolment failed.
    error: Option<String>,
}

/// Which side of a comparison a template is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The live scan.
    Probe,
    /// The enrolled template.
    Reference,
}

/// A scan and its resolution.
pub type Scan = (GrayImage, u32);

/// The reference and probe sides of scan `image` (named `name`, at `dpi`) under a run's sensor
/// shifts: `shift` changes both sides, `probe_shift` the probe side as well (after `shift`).
/// The noise a shift adds is seeded by `name`, so every call sees the same scans.
pub fn shifted_sides(
    image: &GrayImage,
    name: &str,
    dpi: u32,
    shift: Option<SensorShift>,
    probe_shift: Option<SensorShift>,
) -> Result<(Scan, Scan), Error> {
    let shifted = |image: &GrayImage, dpi: u32, shift: Option<SensorShift>| match shift {
        Some(shift) => shift.apply(image, name).map(|i| (i, shift.dpi(dpi))),
        None => Ok((image.clone(), dpi)),
    };
    let reference = shifted(image, dpi, shift)?;
    let probe = shifted(&reference.0, reference.1, probe_shift)?;
    Ok((reference, probe))
}

fn enrol_one(s: &Sample, o: &Options) -> Enrolled {
    let classical = Classical(o.params.clone());
    let by = |e: &Option<Arc<dyn MinutiaeExtractor>>| -> Arc<dyn MinutiaeExtractor> {
        e.clone().unwrap_or_else(|| Arc::new(classical.clone()))
    };
    let (probe_by, reference_by) = (by(&o.extractors.probe), by(&o.extractors.reference));
    let start = Instant::now();
    let failed = |error: String, ms: f64| Enrolled {
        probe: None,
        candidate: None,
        second: None,
        ms,
        second_ms: 0.0,
        error: Some(error),
    };
    let image = match o.source {
        Source::Extract | Source::ReferenceIso => match crate::image::GrayImage::open(&s.path) {
            Ok(image) => Some(image),
            Err(e) => return failed(e.to_string(), start.elapsed().as_secs_f64() * 1e3),
        },
        Source::IsoRecord => None,
    };
    // The sensor shifts are not part of the extraction time.
    let shift_start = Instant::now();
    let sides = image
        .as_ref()
        .map(|image| shifted_sides(image, &s.name, o.dpi, o.shift, o.probe_shift));
    let sides = match sides.transpose() {
        Ok(sides) => sides,
        Err(e) => return failed(format!("sensor shift: {e}"), 0.0),
    };
    let shift_time = shift_start.elapsed();
    let fp = match &sides {
        Some((_, (image, dpi))) => probe_by.extract(image, *dpi),
        None => read_iso(&s.path.with_extension("iso")),
    };
    let ms = start.elapsed().saturating_sub(shift_time).as_secs_f64() * 1e3;
    let fp = match fp {
        Ok(fp) => fp,
        Err(e) => return failed(e.to_string(), ms),
    };
    // Each extractor runs once per image: a side served by the probe's extractor on the same
    // image reuses its minutiae.
    let again = |by: &Arc<dyn MinutiaeExtractor>, side: Side| -> Result<Fingerprint, Error> {
        let same_image = side == Side::Probe || o.probe_shift.is_none();
        match &sides {
            Some((reference, probe)) if by.name() != probe_by.name() || !same_image => {
                let (image, dpi) = if side == Side::Probe {
                    probe
                } else {
                    reference
                };
                by.extract(image, *dpi)
            }
            _ => Ok(fp.clone()),
        }
    };
    let reference = match (o.source, &sides) {
        (Source::ReferenceIso, Some(((image, dpi), _))) => read_iso(&s.path.with_extension("iso"))
            .map(|r| record_on_image(&r, image.width(), image.height(), *dpi)),
        (Source::Extract, _) => again(&reference_by, Side::Reference),
        _ => Ok(fp.clone()),
    };
    let second_start = Instant::now();
    let second = match (&o.extractors.second_opinion, o.source) {
        (Some(so), Source::Extract | Source::ReferenceIso) => {
            match again(&so.extractor, Side::Probe) {
                Ok(f) => Some(f),
                Err(e) => return failed(format!("second opinion: {e}"), ms),
            }
        }
        _ => None,
    };
    let second_ms = second_start.elapsed().as_secs_f64() * 1e3;
    let candidate = reference.and_then(|r| match o.card_format {
        None => Ok(r),
        Some(f) => template::encode(&r, f).and_then(|b| template::decode(&b, f, r.dpi_x)),
    });
    match candidate {
        Ok(c) => Enrolled {
            probe: Some(fp),
            candidate: Some(c),
            second,
            ms,
            second_ms,
            error: None,
        },
        Err(e) => Enrolled {
            probe: Some(fp),
            candidate: None,
            second,
            ms,
            second_ms,
            error: Some(format!("card format: {e}")),
        },
    }
}

/// Reads the first view of an ISO/IEC 19794-2 (or ANSI 378) record file.
pub fn read_iso(path: &Path) -> Result<Fingerprint, Error> {
    let bytes = std::fs::read(path)?;
    let (_, record) = template::decode_any(&bytes)?;
    record
        .fingerprints()
        .into_iter()
        .next()
        .ok_or_else(|| Error::InvalidTemplate(format!("{}: no finger view", path.display())))
}

/// Maps a record whose header geometry is the scan resampled to the record's height and centred
/// horizontally (as the third-party records of the shared sets are: 300 x 400 px at 197 px/cm
/// whatever the scan; wider scans are cropped at both sides, narrower ones padded) onto the
/// pixels of the `width` x `height` scan at `dpi`.
///
/// The scale is `s = H_rec / height`, the horizontal offset `pad_x = (W_rec - width·s) / 2`
/// (negative when the resampled scan was cropped); each minutia goes to
/// `((x - pad_x) / s, y / s)`. Directions are unchanged (a uniform scale keeps them) and a
/// minutia that rounding puts outside the scan is clamped onto its border. Found by fitting the
/// records' minutiae against ours on every shared set (issue 19; FVC2002 DB1's 388 x 374 scans
/// come out 400/374 larger with 57 px cropped at each side, FVC2004 DB3's 300 x 480 ones 400/480
/// smaller with 25 px of padding).
pub fn record_on_image(record: &Fingerprint, width: u32, height: u32, dpi: u32) -> Fingerprint {
    let (w, h) = (width.max(1) as f32, height.max(1) as f32);
    let scale = record.height as f32 / h;
    let scale = if scale.is_finite() && scale > 0.0 {
        scale
    } else {
        1.0
    };
    let pad_x = (record.width as f32 - w * scale) / 2.0;
    let mut out = record.clone();
    out.width = width;
    out.height = height;
    out.dpi_x = dpi;
    out.dpi_y = dpi;
    for m in &mut out.minutiae {
        m.x = ((m.x - pad_x) / scale).clamp(0.0, w - 1.0);
        m.y = (m.y / scale).clamp(0.0, h - 1.0);
    }
    out
}

/// Runs the protocol on `dir`: enrols every image, scores every genuine and cross-finger pair,
/// computes the rates and measures speed. Returns the report and every scored pair.
pub fn run(
    dir: &Path,
    options: &Options,
    progress: &dyn Progress,
) -> Result<(Report, Vec<Sample>, Vec<ScoredPair>), Error> {
    let samples = scan_dir(dir)?;
    if samples.is_empty() {
        return Err(Error::InvalidImage(format!(
            "{}: no images named <finger>_<impression>.tif|png|bmp",
            dir.display()
        )));
    }
    progress.start("enrol", samples.len() as u64);
    let enrolled: Vec<Enrolled> = samples
        .par_iter()
        .map(|s| {
            let e = enrol_one(s, options);
            progress.step();
            e
        })
        .collect();
    progress.finish();
    let probes: Vec<Option<PreparedTemplate>> = enrolled
        .iter()
        .map(|e| e.probe.as_ref().map(prepare))
        .collect();
    // Candidates went through `--card-format` (if any) when enrolled.
    let candidates: Vec<Option<PreparedTemplate>> = enrolled
        .iter()
        .map(|e| {
            e.candidate.as_ref().map(|c| match options.card_format {
                Some(format) => prepare_stored(c, format),
                None => prepare(c),
            })
        })
        .collect();
    let seconds: Vec<Option<PreparedTemplate>> = enrolled
        .iter()
        .map(|e| e.second.as_ref().map(prepare))
        .collect();
    let band = options
        .extractors
        .second_opinion
        .as_ref()
        .map(|so| so.low..so.high);

    let todo = pairs(&samples);
    progress.start("compare", todo.len() as u64);
    let scored: Vec<(ScoredPair, bool)> = todo
        .par_iter()
        .map_init(Scratch::new, |scratch, &(i, j, kind)| {
            let (score, asked_again) = match (&probes[i], &candidates[j]) {
                (Some(p), Some(c)) => {
                    let first = compare(p, c, scratch);
                    match (&band, &seconds[i]) {
                        (Some(band), Some(second)) if band.contains(&first) => {
                            (compare(second, c, scratch), true)
                        }
                        _ => (first, false),
                    }
                }
                _ => (0.0, false),
            };
            progress.step();
            let pair = ScoredPair {
                probe: i,
                candidate: j,
                kind,
                score,
            };
            (pair, asked_again)
        })
        .collect();
    progress.finish();
    let asked_again = |genuine: bool| {
        scored
            .iter()
            .filter(|(p, again)| *again && (p.kind == PairKind::Genuine) == genuine)
            .count()
    };
    let second_opinion = options.extractors.second_opinion.as_ref().map(|so| {
        let mut ms: Vec<f64> = enrolled.iter().map(|e| e.second_ms).collect();
        ms.sort_by(f64::total_cmp);
        SecondOpinionReport {
            extractor: so.extractor.name().to_string(),
            low: so.low,
            high: so.high,
            genuine_pairs: asked_again(true),
            impostor_pairs: asked_again(false),
            extract_ms: Timing {
                median: percentile(&ms, 0.5),
                p95: percentile(&ms, 0.95),
            },
        }
    });
    let scored: Vec<ScoredPair> = scored.into_iter().map(|(p, _)| p).collect();

    let genuine: Vec<f32> = scored
        .iter()
        .filter(|p| p.kind == PairKind::Genuine)
        .map(|p| p.score)
        .collect();
    let extended: Vec<f32> = scored
        .iter()
        .filter(|p| matches!(p.kind, PairKind::Impostor { .. }))
        .map(|p| p.score)
        .collect();
    let fvc: Vec<f32> = scored
        .iter()
        .filter(|p| p.kind == PairKind::Impostor { fvc: true })
        .map(|p| p.score)
        .collect();

    progress.start("speed", 2);
    let usable: Vec<(usize, usize)> = todo
        .iter()
        .filter(|(i, j, _)| probes[*i].is_some() && candidates[*j].is_some())
        .map(|&(i, j, _)| (i, j))
        .collect();
    let compare_per_s = timed(options.timing, &usable, |scratch, i, j| {
        compare(
            probes[i].as_ref().expect("filtered"),
            candidates[j].as_ref().expect("filtered"),
            scratch,
        )
    });
    progress.step();
    let compare_with_prep_per_s = timed(options.timing, &usable, |scratch, i, j| {
        let probe = prepare(enrolled[i].probe.as_ref().expect("filtered"));
        compare(&probe, candidates[j].as_ref().expect("filtered"), scratch)
    });
    progress.step();
    progress.finish();

    let mut ms: Vec<f64> = enrolled.iter().map(|e| e.ms).collect();
    ms.sort_by(f64::total_cmp);
    let minutiae: Vec<usize> = enrolled
        .iter()
        .filter_map(|e| e.probe.as_ref().map(|f| f.minutiae.len()))
        .collect();
    let report = Report {
        set: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        images: samples.len(),
        failures_to_enrol: samples
            .iter()
            .zip(&enrolled)
            .filter_map(|(s, e)| e.error.as_ref().map(|m| format!("{}: {m}", s.name)))
            .collect(),
        extract_ms: Timing {
            median: percentile(&ms, 0.5),
            p95: percentile(&ms, 0.95),
        },
        minutiae_mean: if minutiae.is_empty() {
            0.0
        } else {
            minutiae.iter().sum::<usize>() as f64 / minutiae.len() as f64
        },
        compare_per_s,
        compare_with_prep_per_s,
        genuine_pairs: genuine.len(),
        fvc_impostor_pairs: fvc.len(),
        extended_impostor_pairs: extended.len(),
        fvc: rates(&genuine, &fvc),
        extended: rates(&genuine, &extended),
        extractors: Some(match options.source {
            Source::Extract => (
                name_of(&options.extractors.probe),
                name_of(&options.extractors.reference),
            ),
            Source::ReferenceIso => (name_of(&options.extractors.probe), "iso record".into()),
            Source::IsoRecord => ("iso record".into(), "iso record".into()),
        }),
        second_opinion,
        shift: options.shift.map(|s| s.to_string()),
        probe_shift: options.probe_shift.map(|s| s.to_string()),
    };
    Ok((report, samples, scored))
}

/// The name of a side's extractor.
fn name_of(e: &Option<Arc<dyn MinutiaeExtractor>>) -> String {
    e.as_ref().map_or("classical", |e| e.name()).to_string()
}

/// Nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// CPU time consumed by the calling thread, from `/proc/thread-self/stat` (Linux; clock ticks
/// assumed to be the usual 100 Hz). `None` elsewhere.
fn thread_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Runs `f` over `pairs` on this thread, round after round, for at least `min` of this thread's
/// CPU time (wall time where that clock is unavailable) and at least one round, and returns
/// calls per second of that clock. Measuring the thread's own CPU time keeps the figure
/// meaningful on a loaded machine. The scores go into a black box so the work cannot be
/// optimized away.
fn timed(
    min: Duration,
    pairs: &[(usize, usize)],
    mut f: impl FnMut(&mut Scratch, usize, usize) -> f32,
) -> f64 {
    if pairs.is_empty() {
        return 0.0;
    }
    let mut scratch = Scratch::new();
    // Warm up (scratch growth, caches) outside the measurement.
    for &(i, j) in pairs.iter().take(64) {
        std::hint::black_box(f(&mut scratch, i, j));
    }
    let wall = Instant::now();
    let cpu0 = thread_cpu_seconds();
    let elapsed = || match (cpu0, thread_cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => wall.elapsed().as_secs_f64(),
    };
    let min = min.as_secs_f64();
    let mut calls = 0u64;
    let mut sum = 0.0f32;
    'outer: loop {
        for &(i, j) in pairs {
            sum += f(&mut scratch, i, j);
            calls += 1;
            if calls.is_multiple_of(1024) && elapsed() >= min {
                break 'outer;
            }
        }
        if elapsed() >= min {
            break;
        }
    }
    std::hint::black_box(sum);
    let secs = elapsed();
    if secs > 0.0 {
        calls as f64 / secs
    } else {
        calls as f64 / wall.elapsed().as_secs_f64().max(1e-9)
    }
}

/// Writes one line per scored pair: `probe<TAB>candidate<TAB>score<TAB>genuine|impostor`.
pub fn write_scores(
    mut w: impl std::io::Write,
    samples: &[Sample],
    scored: &[ScoredPair],
) -> std::io::Result<()> {
    for p in scored {
        let kind = match p.kind {
            PairKind::Genuine => "genuine",
            PairKind::Impostor { .. } => "impostor",
        };
        writeln!(
            w,
            "{}\t{}\t{}\t{}",
            samples[p.probe].name, samples[p.candidate].name, p.score, kind
        )?;
    }
    Ok(())
}
