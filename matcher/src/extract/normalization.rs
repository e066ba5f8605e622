//! Normalized image: gray levels minus the local mean, divided by the local standard deviation
//! (both interpolated between block centres), inverted so that ridges are positive; zero
//! outside the foreground.

use super::contrast::Contrast;
use super::grid::Grid;

/// Bilinear interpolation weights of pixel coordinate `p` between block centres.
#[inline]
fn lerp_index(p: usize, block: usize, blocks: usize) -> (usize, usize, f32) {
    let f = ((p as f32 + 0.5) / block as f32 - 0.5).max(0.0);
    let i0 = (f as usize).min(blocks - 1);
    let i1 = (i0 + 1).min(blocks - 1);
    (i0, i1, (f - i0 as f32).min(1.0))
}

/// Normalizes `gray` with the block statistics; `min_std` bounds the divisor.
pub(crate) fn compute(
    gray: &Grid<f32>,
    contrast: &Contrast,
    mask: &Grid<bool>,
    block: usize,
    min_std: f32,
) -> Grid<f32> {
    let (w, h) = (gray.width, gray.height);
    let (bw, bh) = (mask.width, mask.height);
    let mut out = Grid::new(w, h, 0.0f32);
    for y in 0..h {
        let (y0, y1, fy) = lerp_index(y, block, bh);
        for x in 0..w {
            if !mask.at(x / block, y / block) {
                continue;
            }
            let (x0, x1, fx) = lerp_index(x, block, bw);
            let bil = |g: &Grid<f32>| {
                let a = g.at(x0, y0) * (1.0 - fx) + g.at(x1, y0) * fx;
                let b = g.at(x0, y1) * (1.0 - fx) + g.at(x1, y1) * fx;
                a * (1.0 - fy) + b * fy
            };
            let mean = bil(&contrast.mean);
            let std = bil(&contrast.std).max(min_std);
            out.set(x, y, (mean - gray.at(x, y)) / std);
        }
    }
    out
}
