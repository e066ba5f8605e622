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
    // Per row: block statistics interpolated vertically, then horizontally per pixel.
    let mut means = vec![0.0f32; bw];
    let mut stds = vec![0.0f32; bw];
    let columns: Vec<(usize, usize, f32)> = (0..w).map(|x| lerp_index(x, block, bw)).collect();
    for y in 0..h {
        let (y0, y1, fy) = lerp_index(y, block, bh);
        for bx in 0..bw {
            means[bx] = contrast.mean.at(bx, y0) * (1.0 - fy) + contrast.mean.at(bx, y1) * fy;
            stds[bx] = contrast.std.at(bx, y0) * (1.0 - fy) + contrast.std.at(bx, y1) * fy;
        }
        let mrow = &mask.values[(y / block) * bw..(y / block + 1) * bw];
        let grow = &gray.values[y * w..(y + 1) * w];
        let orow = &mut out.values[y * w..(y + 1) * w];
        for x in 0..w {
            if !mrow[x / block] {
                continue;
            }
            let (x0, x1, fx) = columns[x];
            let mean = means[x0] * (1.0 - fx) + means[x1] * fx;
            let std = (stds[x0] * (1.0 - fx) + stds[x1] * fx).max(min_std);
            orow[x] = (mean - grow[x]) / std;
        }
    }
    out
}
