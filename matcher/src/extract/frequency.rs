//! Ridge period per block: the distance between ridge peaks of a signature sampled across the
//! ridges (Hong, Wan and Jain 1998), measured on every other block, then filled in and smoothed
//! over the foreground and clamped to plausible wavelengths.

use super::grid::Grid;
use super::orientation::OrientationField;
use crate::params::ExtractParams;

/// Period (pixels) used when nothing can be measured at all.
const FALLBACK_PERIOD: f32 = 9.0;

/// Measures the ridge period around pixel (cx, cy) across ridges running at `angle`.
fn measure(
    img: &Grid<f32>,
    cx: f32,
    cy: f32,
    angle: f32,
    p: &ExtractParams,
    sig: &mut Vec<f32>,
) -> Option<f32> {
    let (t_x, t_y) = (angle.cos(), angle.sin());
    let (n_x, n_y) = (-t_y, t_x);
    let len = p.frequency_window_length as f32;
    let wid = p.frequency_window_width as f32;
    sig.clear();
    for k in 0..p.frequency_window_length {
        let a = k as f32 - len / 2.0;
        let mut s = 0.0;
        for j in 0..p.frequency_window_width {
            let b = j as f32 - wid / 2.0;
            // Nearest pixel; `as` truncates toward zero, which only matters off the image,
            // where positions are clamped anyway (and avoids a libm call per sample).
            let x = (cx + a * n_x + b * t_x + 0.5) as isize;
            let y = (cy + a * n_y + b * t_y + 0.5) as isize;
            s += img.clamped(x, y);
        }
        sig.push(s);
    }
    // Peaks (ridges are positive in the normalized image) of the lightly smoothed signature.
    let smooth: Vec<f32> = (0..sig.len())
        .map(|i| {
            let a = sig[i.saturating_sub(1)];
            let c = sig[(i + 1).min(sig.len() - 1)];
            0.25 * a + 0.5 * sig[i] + 0.25 * c
        })
        .collect();
    let peaks: Vec<usize> = (1..smooth.len() - 1)
        .filter(|&i| smooth[i] > smooth[i - 1] && smooth[i] >= smooth[i + 1] && smooth[i] > 0.0)
        .collect();
    if peaks.len() < 2 {
        return None;
    }
    let period = (peaks[peaks.len() - 1] - peaks[0]) as f32 / (peaks.len() - 1) as f32;
    (p.min_ridge_period..=p.max_ridge_period)
        .contains(&period)
        .then_some(period)
}

/// Ridge period per block of the foreground (zero elsewhere).
pub(crate) fn compute(
    img: &Grid<f32>,
    field: &OrientationField,
    mask: &Grid<bool>,
    p: &ExtractParams,
) -> Grid<f32> {
    let (bw, bh) = (mask.width, mask.height);
    let b = p.block as f32;
    let mut measured = Grid::new(bw, bh, 0.0f32);
    let mut sig = Vec::with_capacity(p.frequency_window_length);
    let mut all = Vec::new();
    for by in (0..bh).step_by(2) {
        for bx in (0..bw).step_by(2) {
            if !mask.at(bx, by) {
                continue;
            }
            let (cx, cy) = ((bx as f32 + 0.5) * b, (by as f32 + 0.5) * b);
            if let Some(period) = measure(img, cx, cy, field.angle.at(bx, by), p, &mut sig) {
                measured.set(bx, by, period);
                all.push(period);
            }
        }
    }
    all.sort_by(f32::total_cmp);
    let median = all.get(all.len() / 2).copied().unwrap_or(FALLBACK_PERIOD);
    // Average of measured neighbours within the smoothing radius; the median where none.
    let r = p.frequency_smoothing_radius;
    let mut out = Grid::new(bw, bh, 0.0f32);
    for by in 0..bh {
        for bx in 0..bw {
            if !mask.at(bx, by) {
                continue;
            }
            let (mut s, mut n) = (0.0, 0.0);
            for yy in by.saturating_sub(r)..(by + r + 1).min(bh) {
                for xx in bx.saturating_sub(r)..(bx + r + 1).min(bw) {
                    let v = measured.at(xx, yy);
                    if v > 0.0 {
                        s += v;
                        n += 1.0;
                    }
                }
            }
            let v = if n >= 2.0 { s / n } else { median };
            out.set(bx, by, v.clamp(p.min_ridge_period, p.max_ridge_period));
        }
    }
    out
}
