//! Publishing intermediate results of extraction for debugging and reports.
//!
//! Each stage of [`crate::extract::extract`] offers its result under a fixed key (the `KEY_*`
//! constants). A stage first asks [`Transparency::wants`]; only when the answer is yes does it
//! copy its data into an [`Intermediate`], so [`NoTransparency`] costs one virtual call per stage.
//! [`Collector`] keeps everything it is offered, and can write the images as PNG files.

use std::collections::BTreeMap;
use std::path::Path;

use crate::image::GrayImage;
use crate::Error;
use crate::Minutia;

/// Foreground mask on the block grid (1 = fingerprint).
pub const KEY_MASK: &str = "mask";
/// Locally normalized image (ridges bright).
pub const KEY_NORMALIZED: &str = "normalized";
/// Ridge orientation per block (radians, image coordinates, y down, in [0, π)).
pub const KEY_ORIENTATION: &str = "orientation";
/// Orientation coherence per block, 0-1.
pub const KEY_COHERENCE: &str = "coherence";
/// Ridge period per block (pixels).
pub const KEY_RIDGE_PERIOD: &str = "ridge-period";
/// Gabor-enhanced image.
pub const KEY_ENHANCED: &str = "enhanced";
/// Ridge clarity per block (Gabor-kept share of the filter input's energy).
pub const KEY_CLARITY: &str = "clarity";
/// Binarized image (1 = ridge).
pub const KEY_BINARY: &str = "binary";
/// One-pixel-wide ridge skeleton (1 = ridge).
pub const KEY_SKELETON: &str = "skeleton";
/// Minutiae found on the skeleton, before filtering (500 dpi working coordinates).
pub const KEY_MINUTIAE_RAW: &str = "minutiae-raw";
/// Minutiae after filtering (500 dpi working coordinates).
pub const KEY_MINUTIAE: &str = "minutiae";

/// One intermediate result.
#[derive(Debug, Clone, PartialEq)]
pub enum Intermediate {
    /// A grid of values, row-major (images, block fields).
    Grid {
        /// Columns.
        width: usize,
        /// Rows.
        height: usize,
        /// `width * height` values.
        values: Vec<f32>,
    },
    /// A list of minutiae.
    Minutiae(Vec<Minutia>),
}

/// Receiver of intermediate results.
pub trait Transparency {
    /// Whether the receiver wants the result published under `key` (so that stages skip the
    /// copy when nobody listens).
    fn wants(&self, key: &str) -> bool;
    /// Receives one result.
    fn publish(&mut self, key: &str, data: Intermediate);
    /// Stage `stage` (one of [`STAGES`]) has just finished. Extraction calls this after every
    /// stage, in the order of [`STAGES`], so a receiver can time the stages; the default does
    /// nothing.
    fn stage_done(&mut self, _stage: &str) {}
}

/// The stages of [`crate::extract::extract_with`] in the order they run, as reported to
/// [`Transparency::stage_done`].
pub const STAGES: &[&str] = &[
    "resolution",
    "contrast",
    "noise",
    "highpass",
    "tensors",
    "segmentation",
    "normalization",
    "orientation",
    "frequency",
    "enhancement",
    "clarity",
    "binarization",
    "thinning",
    "skeleton-graph",
    "detection",
    "filtering",
    "quality",
];

/// Wants nothing; the default for production extraction.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoTransparency;

impl Transparency for NoTransparency {
    fn wants(&self, _key: &str) -> bool {
        false
    }
    fn publish(&mut self, _key: &str, _data: Intermediate) {}
}

/// Keeps every result it is offered, by key.
#[derive(Debug, Clone, Default)]
pub struct Collector {
    /// The results received so far.
    pub results: BTreeMap<String, Intermediate>,
}

impl Transparency for Collector {
    fn wants(&self, _key: &str) -> bool {
        true
    }
    fn publish(&mut self, key: &str, data: Intermediate) {
        self.results.insert(key.to_string(), data);
    }
}

impl Collector {
    /// Renders one grid result as an 8-bit image, stretched from its minimum to its maximum.
    pub fn image(&self, key: &str) -> Option<GrayImage> {
        let Some(Intermediate::Grid {
            width,
            height,
            values,
        }) = self.results.get(key)
        else {
            return None;
        };
        let lo = values.iter().copied().fold(f32::INFINITY, f32::min);
        let hi = values.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let scale = if hi > lo { 255.0 / (hi - lo) } else { 0.0 };
        let pixels = values.iter().map(|v| ((v - lo) * scale) as u8).collect();
        Some(GrayImage::from_parts(*width as u32, *height as u32, pixels))
    }

    /// Writes every grid result as `<dir>/<key>.png`, and every minutiae list as
    /// `<dir>/<key>.png` drawn in colour over the skeleton and the normalized image (endings
    /// red, bifurcations blue, a line along the direction).
    pub fn write_pngs(&self, dir: &Path) -> Result<(), Error> {
        use opencv::core::{Mat, Point, Scalar, Vector};
        use opencv::imgproc;
        std::fs::create_dir_all(dir)?;
        let write = |key: &str, mat: &Mat| -> Result<(), Error> {
            let path = dir.join(format!("{key}.png"));
            if !opencv::imgcodecs::imwrite(&path, mat, &Vector::new())? {
                return Err(Error::InvalidImage(format!(
                    "cannot write {}",
                    path.display()
                )));
            }
            Ok(())
        };
        for (key, data) in &self.results {
            match data {
                Intermediate::Grid { .. } => {
                    if let Some(image) = self.image(key) {
                        // Block fields are enlarged to the size of the working image.
                        let full = self.image(KEY_NORMALIZED).map(|n| (n.width(), n.height()));
                        match full {
                            Some((w, h)) if image.width() < w / 2 => {
                                let factor = w.div_ceil(image.width());
                                let big = image
                                    .resized(image.width() * factor, image.height() * factor)?;
                                let (cw, ch) = (w.min(big.width()), h.min(big.height()));
                                let mut pixels = Vec::with_capacity(cw as usize * ch as usize);
                                for row in
                                    big.pixels().chunks(big.width() as usize).take(ch as usize)
                                {
                                    pixels.extend_from_slice(&row[..cw as usize]);
                                }
                                write(key, &GrayImage::from_parts(cw, ch, pixels).to_mat()?)?;
                            }
                            _ => write(key, &image.to_mat()?)?,
                        }
                    }
                }
                Intermediate::Minutiae(list) => {
                    let Some(base) = self.image(KEY_NORMALIZED) else {
                        continue;
                    };
                    let mut pixels = base
                        .pixels()
                        .iter()
                        .map(|&p| p / 2 + 64)
                        .collect::<Vec<u8>>();
                    if let Some(sk) = self.image(KEY_SKELETON) {
                        if sk.pixels().len() == pixels.len() {
                            for (p, &s) in pixels.iter_mut().zip(sk.pixels()) {
                                if s > 0 {
                                    *p = 0;
                                }
                            }
                        }
                    }
                    let gray =
                        GrayImage::from_parts(base.width(), base.height(), pixels).to_mat()?;
                    let mut colour = Mat::default();
                    imgproc::cvt_color_def(&gray, &mut colour, imgproc::COLOR_GRAY2BGR)?;
                    for m in list {
                        let c = if m.kind == crate::MinutiaKind::Ending {
                            Scalar::new(0.0, 0.0, 255.0, 0.0)
                        } else {
                            Scalar::new(255.0, 0.0, 0.0, 0.0)
                        };
                        let p = Point::new(m.x.round() as i32, m.y.round() as i32);
                        let q = Point::new(
                            (m.x + 10.0 * m.direction.cos()).round() as i32,
                            (m.y - 10.0 * m.direction.sin()).round() as i32,
                        );
                        imgproc::circle(&mut colour, p, 4, c, 1, imgproc::LINE_8, 0)?;
                        imgproc::line(&mut colour, p, q, c, 1, imgproc::LINE_8, 0)?;
                    }
                    write(key, &colour)?;
                }
            }
        }
        Ok(())
    }
}

/// Publishes a grid if the receiver wants it (stages call this; it copies only when wanted).
pub(crate) fn publish_grid<T: Copy + Into<f64>>(
    t: &mut dyn Transparency,
    key: &str,
    width: usize,
    height: usize,
    values: &[T],
) {
    if t.wants(key) {
        let values = values.iter().map(|&v| v.into() as f32).collect();
        t.publish(
            key,
            Intermediate::Grid {
                width,
                height,
                values,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_keeps_and_renders() {
        let mut c = Collector::default();
        publish_grid(&mut c, KEY_BINARY, 2, 1, &[0u8, 1u8]);
        let image = c.image(KEY_BINARY).unwrap();
        assert_eq!(image.pixels(), &[0, 255]);
        assert!(c.image(KEY_MASK).is_none());
        let mut n = NoTransparency;
        publish_grid(&mut n, KEY_BINARY, 2, 1, &[0u8, 1u8]);
        assert!(!n.wants(KEY_BINARY));
    }
}
