//! Per-stage extraction time over a set of scans.
//!
//! [`StageTimer`] listens to the extractor's [`Transparency`] hook: it wants no intermediate
//! result (so nothing is copied) and notes the time at every [`Transparency::stage_done`].
//! [`measure`] extracts every scan once on the calling thread and reports the median and 95th
//! percentile of each stage.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use matcher::eval::fvc::{Sample, Side};
use matcher::extract::extract_with;
use matcher::params::ExtractParams;
use matcher::transparency::{Intermediate, Transparency, STAGES};
use matcher::Fingerprint;
use serde::{Deserialize, Serialize};

use crate::ScanView;

/// Durations of the stages of one extraction.
#[derive(Debug, Clone)]
pub struct StageTimer {
    /// When the previous stage ended (or extraction started).
    last: Instant,
    /// Milliseconds per stage, in the order they ran.
    pub stages: Vec<(String, f64)>,
}

impl StageTimer {
    /// Starts the clock; create it right before calling the extractor.
    pub fn start() -> StageTimer {
        StageTimer {
            last: Instant::now(),
            stages: Vec::with_capacity(STAGES.len()),
        }
    }
}

impl Transparency for StageTimer {
    fn wants(&self, _key: &str) -> bool {
        false
    }
    fn publish(&mut self, _key: &str, _data: Intermediate) {}
    fn stage_done(&mut self, stage: &str) {
        let now = Instant::now();
        let ms = (now - self.last).as_secs_f64() * 1e3;
        self.stages.push((stage.to_string(), ms));
        self.last = now;
    }
}

/// Median and 95th percentile of one stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageFigure {
    /// Stage name (one of [`matcher::transparency::STAGES`], or `total`).
    pub stage: String,
    /// Median over the images, milliseconds.
    pub median_ms: f64,
    /// 95th percentile (nearest rank), milliseconds.
    pub p95_ms: f64,
}

/// Per-stage figures over a set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTiming {
    /// Images extracted (failures included: their stages up to the failure count).
    pub images: usize,
    /// One entry per stage in run order, then `total`.
    pub stages: Vec<StageFigure>,
}

/// Nearest-rank percentile of unsorted values (0 for none).
pub fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Summarizes per-image stage times (each a list of `(stage, ms)` in run order).
pub fn summarize(per_image: &[Vec<(String, f64)>]) -> StageTiming {
    let mut by_stage: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut totals = Vec::with_capacity(per_image.len());
    for stages in per_image {
        for (stage, ms) in stages {
            by_stage.entry(stage.as_str()).or_default().push(*ms);
        }
        totals.push(stages.iter().map(|(_, ms)| ms).sum());
    }
    // Known stages in run order, then any the extractor added since.
    let mut order: Vec<&str> = STAGES
        .iter()
        .copied()
        .filter(|s| by_stage.contains_key(s))
        .collect();
    order.extend(by_stage.keys().copied().filter(|s| !STAGES.contains(s)));
    let figure = |stage: &str, ms: &[f64]| StageFigure {
        stage: stage.to_string(),
        median_ms: percentile(ms, 0.5),
        p95_ms: percentile(ms, 0.95),
    };
    let mut stages: Vec<StageFigure> = order.iter().map(|s| figure(s, &by_stage[s])).collect();
    if !per_image.is_empty() {
        stages.push(figure("total", &totals));
    }
    StageTiming {
        images: per_image.len(),
        stages,
    }
}

/// Extracts every sample once on this thread with `params`, as the run's probe side saw it
/// (`view`: its resolution and sensor shifts, like the run's own extraction times), timing each
/// stage, and keeps the fingerprints (or the reason for failure) of the samples listed in `keep`.
pub fn measure(
    samples: &[Sample],
    view: &ScanView,
    params: &ExtractParams,
    keep: &[usize],
) -> (StageTiming, HashMap<usize, Result<Fingerprint, String>>) {
    let mut per_image = Vec::with_capacity(samples.len());
    let mut kept = HashMap::new();
    for (i, sample) in samples.iter().enumerate() {
        let result = view.scan(sample, Side::Probe).and_then(|(image, dpi)| {
            let mut timer = StageTimer::start();
            let fp = extract_with(&image, dpi, params, &mut timer).map_err(|e| e.to_string());
            per_image.push(timer.stages);
            fp
        });
        if keep.contains(&i) {
            kept.insert(i, result);
        }
    }
    (summarize(&per_image), kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use matcher::eval::shift::SensorShift;
    use matcher::image::GrayImage;

    #[test]
    fn summary_keeps_stage_order_and_adds_total() {
        let image = |a: f64, b: f64| vec![("contrast".to_string(), a), ("resolution".into(), b)];
        let t = summarize(&[image(1.0, 10.0), image(2.0, 20.0), image(3.0, 30.0)]);
        assert_eq!(t.images, 3);
        let names: Vec<&str> = t.stages.iter().map(|s| s.stage.as_str()).collect();
        // Run order of STAGES, not alphabetical.
        assert_eq!(names, ["resolution", "contrast", "total"]);
        assert_eq!(t.stages[0].median_ms, 20.0);
        assert_eq!(t.stages[0].p95_ms, 30.0);
        assert_eq!(t.stages[2].median_ms, 22.0);
        assert_eq!(summarize(&[]), StageTiming::default());
    }

    #[test]
    fn timer_sees_every_stage_of_an_extraction() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/fingerprints");
        let image = GrayImage::open(dir.join("1_1.png")).unwrap();
        let mut timer = StageTimer::start();
        extract_with(&image, 500, &ExtractParams::default(), &mut timer).unwrap();
        let names: Vec<&str> = timer.stages.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, STAGES);
        assert!(timer.stages.iter().all(|(_, ms)| *ms >= 0.0));
    }

    #[test]
    fn measure_extracts_with_the_runs_parameters() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/fingerprints");
        let samples = [Sample {
            finger: 1,
            impression: 1,
            name: "1_1".into(),
            path: dir.join("1_1.png"),
        }];
        let defaults = ExtractParams::default();
        let view = ScanView {
            dpi: 500,
            shift: None,
            probe_shift: None,
        };
        let (timing, kept) = measure(&samples, &view, &defaults, &[0]);
        assert_eq!(timing.images, 1);
        let minutiae = kept[&0].as_ref().unwrap().minutiae.len();
        // A run with another parameter is timed and drawn with it, not with the defaults.
        let strict = ExtractParams {
            min_minutiae: minutiae + 1,
            ..defaults
        };
        let (_, kept) = measure(&samples, &view, &strict, &[0]);
        let err = kept[&0].as_ref().unwrap_err();
        assert!(err.contains("reliable minutiae"), "{err}");
    }

    #[test]
    fn measure_sees_the_scans_as_the_runs_probe_side() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/fingerprints");
        let sample = Sample {
            finger: 1,
            impression: 1,
            name: "1_1".into(),
            path: dir.join("1_1.png"),
        };
        let read = GrayImage::open(&sample.path).unwrap();
        let (w, h) = (read.width(), read.height());
        let crop = SensorShift::parse("crop=0.8").unwrap();
        let faint = SensorShift::parse("faint=0.5").unwrap();
        let view = ScanView {
            dpi: 500,
            shift: Some(faint),
            probe_shift: Some(crop),
        };
        // The reference side is only faint; the probe side is also cropped, and that is what
        // the stage timing extracts (as the run's own extraction times do).
        let (reference, _) = view.scan(&sample, Side::Reference).unwrap();
        assert_eq!((reference.width(), reference.height()), (w, h));
        assert_eq!(reference, faint.apply(&read, "1_1").unwrap());
        let (probe, _) = view.scan(&sample, Side::Probe).unwrap();
        let side = |s: u32| (s as f32 * 0.8).round() as u32;
        assert_eq!((probe.width(), probe.height()), (side(w), side(h)));
        let (_, kept) = measure(
            std::slice::from_ref(&sample),
            &view,
            &ExtractParams::default(),
            &[0],
        );
        let fp = kept[&0].as_ref().unwrap();
        assert_eq!((fp.width, fp.height), (side(w), side(h)));
    }
}
