//! What the extractor saw, drawn over the scan (`idcardd extract IMAGE --show OUT.png`).
//!
//! The picture has the scan's size. Background outside the segmentation mask is tinted blue;
//! the ridge orientation field is drawn as short amber line segments on a grid of blocks
//! inside the mask; minutiae are circles with a tick along their direction (red endings, blue
//! bifurcations, as in [`crate::thumbnails`]).

use std::path::Path;

use matcher::image::GrayImage;
use matcher::params::EXTRACT_DPI;
use matcher::transparency::{Collector, Intermediate, KEY_MASK, KEY_ORIENTATION};
use matcher::Minutia;
use plotters::prelude::*;

use crate::thumbnails::draw_minutiae;

/// Colour mixed into the background (outside the mask).
pub const BACKGROUND_TINT: [f32; 3] = [40.0, 90.0, 200.0];
/// Share of the tint in background pixels.
pub const TINT_SHARE: f32 = 0.4;
/// Colour of the orientation segments.
pub const ORIENTATION: RGBColor = RGBColor(255, 170, 0);
/// One orientation segment is drawn every this many blocks (both ways), so that they do not
/// run into each other.
pub const ORIENTATION_STEP: usize = 2;

/// A block grid published by the extractor.
struct BlockGrid<'a> {
    width: usize,
    height: usize,
    values: &'a [f32],
}

impl BlockGrid<'_> {
    fn get<'a>(collector: &'a Collector, key: &str) -> Option<BlockGrid<'a>> {
        match collector.results.get(key) {
            Some(Intermediate::Grid {
                width,
                height,
                values,
            }) if width * height == values.len() => Some(BlockGrid {
                width: *width,
                height: *height,
                values,
            }),
            _ => None,
        }
    }

    fn at(&self, bx: usize, by: usize) -> Option<f32> {
        (bx < self.width && by < self.height).then(|| self.values[by * self.width + bx])
    }
}

/// Draws `image` with the mask and orientation field the extractor published into `collector`
/// (block grids of `block` pixels at 500 dpi) and `minutiae` (scan pixels), into the PNG `out`.
/// Whatever the collector lacks (extraction stopped early) is left out.
pub fn draw(
    image: &GrayImage,
    dpi: u32,
    block: usize,
    collector: &Collector,
    minutiae: &[Minutia],
    out: &Path,
) -> anyhow::Result<()> {
    let (w, h) = (image.width(), image.height());
    // Working pixels per scan pixel, as the extractor's resolution stage computes them.
    let factor = EXTRACT_DPI as f64 / dpi.max(1) as f64;
    let sx = ((w as f64 * factor).round().max(1.0)) / w as f64;
    let sy = ((h as f64 * factor).round().max(1.0)) / h as f64;
    let block = block.max(1) as f64;
    let mask = BlockGrid::get(collector, KEY_MASK);
    let in_mask = |bx: usize, by: usize| match &mask {
        Some(m) => m.at(bx, by).is_some_and(|v| v > 0.0),
        None => true,
    };
    let mut rgb = crate::thumbnails::to_rgb(image, 0.15);
    if mask.is_some() {
        for y in 0..h as usize {
            let by = (((y as f64 + 0.5) * sy - 0.5).max(0.0) / block) as usize;
            for x in 0..w as usize {
                let bx = (((x as f64 + 0.5) * sx - 0.5).max(0.0) / block) as usize;
                if !in_mask(bx, by) {
                    let p = &mut rgb[3 * (y * w as usize + x)..][..3];
                    for (c, tint) in p.iter_mut().zip(BACKGROUND_TINT) {
                        *c = (*c as f32 * (1.0 - TINT_SHARE) + tint * TINT_SHARE).round() as u8;
                    }
                }
            }
        }
    }
    let mut backend = BitMapBackend::new(out, (w, h));
    backend
        .blit_bitmap((0, 0), (w, h), &rgb)
        .map_err(crate::draw_error(out))?;
    let root = backend.into_drawing_area();
    let e = crate::draw_error(out);
    if let Some(field) = BlockGrid::get(collector, KEY_ORIENTATION) {
        // Half-length of a segment in scan pixels: most of the spacing between segments.
        let half = 0.4 * ORIENTATION_STEP as f64 * block / sx;
        for by in (0..field.height).step_by(ORIENTATION_STEP) {
            for bx in (0..field.width).step_by(ORIENTATION_STEP) {
                if !in_mask(bx, by) {
                    continue;
                }
                let Some(angle) = field.at(bx, by) else {
                    continue;
                };
                // Block centre in working pixels, then in scan pixels. The angle is the ridge
                // direction in image coordinates (y down).
                let cx = ((bx as f64 + 0.5) * block + 0.5) / sx - 0.5;
                let cy = ((by as f64 + 0.5) * block + 0.5) / sy - 0.5;
                let (dx, dy) = (half * (angle as f64).cos(), half * (angle as f64).sin());
                let a = ((cx - dx).round() as i32, (cy - dy).round() as i32);
                let b = ((cx + dx).round() as i32, (cy + dy).round() as i32);
                root.draw(&PathElement::new([a, b], ORIENTATION.stroke_width(2)))
                    .map_err(&e)?;
            }
        }
    }
    // Marks grow with the scan so that they stay visible on large images.
    let radius = ((w.min(h) as f64 / 60.0).round() as i32).clamp(5, 12);
    let stroke = if radius >= 10 { 3 } else { 2 };
    draw_minutiae(&root, minutiae, 1.0, (0, 0), radius, stroke).map_err(&e)?;
    root.present().map_err(&e)?;
    Ok(())
}
