//! Extraction as a flat list of pure stages.
//!
//! [`extract`] rescales the scan to 500 dpi, then: block contrast, noise level (a noisy scan's
//! gradients are smoothed), the scan without its low frequencies (`highpass`), gradient tensors
//! of that, segmentation, normalization, orientation field, ridge period, Gabor enhancement (of
//! the normalized image without its low frequencies), ridge clarity, binarization, thinning,
//! skeleton graph with pruning, minutiae detection (directions snapped to the orientation
//! field), filtering (each kept minutia's quality from its block's coherence and the lowest
//! ridge clarity around it), quality. Each stage is a small function in its own module named after
//! what it produces, and publishes its result to a [`Transparency`] receiver under a fixed key.
//! Every tuning value is in [`ExtractParams`].
//!
//! Directions follow ISO/IEC 19794-2 (see [`crate::minutiae`] and docs/matcher.md, "ISO/IEC
//! 19794-2 conventions"): an ending points along its ridge, from the end into the ridge body; a
//! bifurcation points between its two branches, away from the stem. The detection stage traces
//! the opposite sense internally (see `detection`); `iso_angle` turns it around.
//!
//! ```no_run
//! let fp = matcher::extract::extract_file("finger.png", 500).unwrap();
//! println!("{} minutiae, quality {}", fp.minutiae.len(), fp.quality);
//! ```

mod binarization;
mod clarity;
mod contrast;
mod detection;
mod enhancement;
mod filtering;
mod frequency;
mod grid;
mod highpass;
mod noise;
mod normalization;
mod orientation;
mod quality;
mod resolution;
mod segmentation;
mod skeleton_graph;
mod thinning;

use std::path::Path;

use crate::image::GrayImage;
use crate::params::ExtractParams;
use crate::transparency::{self as tr, publish_grid, Intermediate, NoTransparency, Transparency};
use crate::{Error, Fingerprint, Minutia};

/// Something that turns a scan into minutiae: this crate's extractor ([`Classical`]) or
/// another one (the learned extractor of the `leader` crate), so that evaluations and the
/// delivery desk can put either on either side of a comparison.
pub trait MinutiaeExtractor: std::fmt::Debug + Send + Sync {
    /// A short name for reports ("classical", "leader").
    fn name(&self) -> &str;
    /// The minutiae of `image` at `dpi`, in its pixels, ISO/IEC 19794-2 directions.
    fn extract(&self, image: &GrayImage, dpi: u32) -> Result<Fingerprint, Error>;
    /// The score scale of this extractor's minutiae compared with its own (whose calibrated
    /// thresholds apply); the classical one unless the extractor was calibrated on its own.
    fn score_scale(&self) -> crate::compare::ScoreScale {
        crate::compare::ScoreScale::Classical
    }
}

/// This crate's extractor with the given parameters, as a [`MinutiaeExtractor`].
#[derive(Debug, Clone, Default)]
pub struct Classical(pub ExtractParams);

impl MinutiaeExtractor for Classical {
    fn name(&self) -> &str {
        "classical"
    }
    fn extract(&self, image: &GrayImage, dpi: u32) -> Result<Fingerprint, Error> {
        extract_with(image, dpi, &self.0, &mut NoTransparency)
    }
}

/// Extracts minutiae from a scan at `dpi` with the default parameters.
pub fn extract(image: &GrayImage, dpi: u32) -> Result<Fingerprint, Error> {
    extract_with(image, dpi, &ExtractParams::default(), &mut NoTransparency)
}

/// Reads an image file (PNG, TIFF, BMP) and extracts its minutiae.
pub fn extract_file(path: impl AsRef<Path>, dpi: u32) -> Result<Fingerprint, Error> {
    extract(&GrayImage::open(path)?, dpi)
}

/// Extracts minutiae with explicit parameters, publishing intermediate results to `t`.
///
/// Minutiae are reported in the pixels of `image` (whatever its resolution) with directions in
/// the ISO/IEC 19794-2 convention of [`crate::minutiae`]. Fails with
/// [`Error::NoUsableFingerprint`] when the image shows too little ridge structure.
pub fn extract_with(
    image: &GrayImage,
    dpi: u32,
    p: &ExtractParams,
    t: &mut dyn Transparency,
) -> Result<Fingerprint, Error> {
    if p.block == 0 || p.gabor_orientations == 0 || p.gabor_period_step <= 0.0 {
        return Err(Error::InvalidImage("invalid extraction parameters".into()));
    }
    let working = resolution::compute(image, dpi)?;
    t.stage_done("resolution");
    let gray = &working.gray;
    let contrast = contrast::compute(gray, p.block, p.segmentation_radius);
    t.stage_done("contrast");
    let high_contrast = contrast::percentile_90(&contrast.std);
    let noise_ratio = noise::ratio(gray, high_contrast);
    let sigma = noise::gradient_sigma(noise_ratio, p);
    let smoothed;
    let gradient_source = if sigma > 0.0 {
        smoothed = noise::smoothed(gray, sigma);
        &smoothed
    } else {
        gray
    };
    t.stage_done("noise");
    let gradient_input = highpass::compute(gradient_source, p.orientation_highpass_sigma)?;
    t.stage_done("highpass");
    let tensors = orientation::tensors(&gradient_input, p.block);
    let raw_coherence = orientation::raw_coherence(&tensors, p.segmentation_radius);
    t.stage_done("tensors");
    let mask = segmentation::compute(&contrast.std, high_contrast, &raw_coherence, p);
    t.stage_done("segmentation");
    show(t, tr::KEY_MASK, &mask.map(u8::from));
    let area = mask.values.iter().filter(|&&m| m).count() * p.block * p.block;
    if area < p.min_foreground_area {
        return Err(Error::NoUsableFingerprint(format!(
            "foreground of {area} px is below {} px",
            p.min_foreground_area
        )));
    }
    let min_std = p.segmentation_min_contrast;
    let normalized = normalization::compute(gray, &contrast, &mask, p.block, min_std);
    t.stage_done("normalization");
    show(t, tr::KEY_NORMALIZED, &normalized);
    let (radius, sigma) = (
        p.orientation_smoothing_radius,
        p.orientation_smoothing_sigma,
    );
    let field = orientation::compute(&tensors, &mask, radius, sigma);
    t.stage_done("orientation");
    show(t, tr::KEY_ORIENTATION, &field.angle);
    show(t, tr::KEY_COHERENCE, &field.coherence);
    let period = frequency::compute(&normalized, &field, &mask, p);
    t.stage_done("frequency");
    show(t, tr::KEY_RIDGE_PERIOD, &period);
    let filter_input = enhancement::filter_input(&normalized, p)?;
    let enhanced = enhancement::compute(&filter_input, &field, &period, &mask, p)?;
    t.stage_done("enhancement");
    show(t, tr::KEY_ENHANCED, &enhanced);
    let clarity = clarity::compute(&filter_input, &enhanced, &mask, p.block);
    t.stage_done("clarity");
    show(t, tr::KEY_CLARITY, &clarity);
    let binary = binarization::compute(&enhanced, &mask, p.block, p.min_island_area);
    t.stage_done("binarization");
    show(t, tr::KEY_BINARY, &binary);
    let skeleton = thinning::compute(&binary);
    t.stage_done("thinning");
    show(t, tr::KEY_SKELETON, &skeleton);
    let mut graph = skeleton_graph::build(&skeleton);
    skeleton_graph::prune(&mut graph, p);
    t.stage_done("skeleton-graph");
    let mut candidates = detection::compute(&graph, p.direction_trace_length);
    let snap = p.direction_snap_tolerance;
    detection::snap_to_field(&mut candidates, &field.angle, p.block, snap);
    t.stage_done("detection");
    publish_minutiae(t, tr::KEY_MINUTIAE_RAW, &candidates);
    // The border band is the erosion's last step: erode once more for the inner foreground.
    let band = segmentation::erode(&mask, p.border_erosion_blocks.saturating_sub(1));
    let inner = segmentation::erode(&band, p.border_erosion_blocks.min(1));
    let size = (gray.width, gray.height);
    let kept = filtering::compute(
        &candidates,
        size,
        (&inner, &band),
        &field.coherence,
        &clarity,
        p,
    );
    t.stage_done("filtering");
    publish_minutiae(t, tr::KEY_MINUTIAE, &kept);
    let mean_coherence = quality::foreground_mean(&mask, &field.coherence);
    let mean_clarity = quality::foreground_mean(&mask, &clarity);
    t.stage_done("quality");
    if kept.len() < p.min_minutiae {
        return Err(Error::NoUsableFingerprint(format!(
            "only {} reliable minutiae (mean coherence {mean_coherence:.2})",
            kept.len()
        )));
    }
    Ok(Fingerprint {
        width: image.width(),
        height: image.height(),
        dpi_x: dpi,
        dpi_y: dpi,
        quality: quality::compute(area, mean_coherence, mean_clarity, p),
        minutiae: kept.iter().map(|c| to_minutia(c, &working)).collect(),
    })
}

/// Converts a working-coordinate candidate to an ISO minutia in the original image's pixels.
fn to_minutia(c: &detection::Candidate, working: &resolution::Working) -> Minutia {
    let (x, y) = working.to_original(c.x, c.y);
    Minutia {
        x,
        y,
        // Image angles turn clockwise on screen (y down); ISO angles counter-clockwise, and
        // point the other way (see `iso_angle`).
        direction: iso_angle(c.angle),
        kind: c.kind,
        quality: c.quality,
    }
}

/// A detection direction (image coordinates, y down; an ending pointing out of its ridge, a
/// bifurcation along its stem) to the ISO/IEC 19794-2 direction, [0, 2π): counter-clockwise on
/// screen and turned half a turn, so that an ending points into its ridge and a bifurcation
/// between its branches (ISO/IEC 19794-2:2005 §5.4.2, as NIST EFS and SourceAFIS read it).
fn iso_angle(image_angle: f32) -> f32 {
    use std::f32::consts::{PI, TAU};
    let a = (TAU - image_angle + PI).rem_euclid(TAU);
    if a >= std::f32::consts::TAU {
        0.0
    } else {
        a
    }
}

/// Publishes a grid to `t` if it wants it.
fn show<T: Copy + Into<f64>>(t: &mut dyn Transparency, key: &str, grid: &grid::Grid<T>) {
    publish_grid(t, key, grid.width, grid.height, &grid.values);
}

/// Publishes minutiae candidates (working coordinates, ISO angles) to `t` if it wants them.
fn publish_minutiae(t: &mut dyn Transparency, key: &str, candidates: &[detection::Candidate]) {
    if t.wants(key) {
        let list = candidates
            .iter()
            .map(|c| Minutia {
                x: c.x,
                y: c.y,
                direction: iso_angle(c.angle),
                kind: c.kind,
                quality: c.quality,
            })
            .collect();
        t.publish(key, Intermediate::Minutiae(list));
    }
}
