//! Ridge clarity per block: how much of its input's energy the matched Gabor filter keeps
//! (root-mean-square of the enhanced block over that of the filter's input, the normalized image
//! without its low frequencies), averaged over the 3x3 neighbouring blocks. Clean parallel
//! ridges keep most of it; noise, creases, scars and smudges keep little, even where the
//! orientation field looks coherent. Measured against the filter's input, not the normalized
//! image: what the high-pass took out (blotches, shading) is not unclear ridge, and counting it
//! would move image quality, built on clarity, off its scale.

use super::grid::Grid;

/// Clarity per block (0 outside the foreground).
pub(crate) fn compute(
    filter_input: &Grid<f32>,
    enhanced: &Grid<f32>,
    mask: &Grid<bool>,
    block: usize,
) -> Grid<f32> {
    let (w, h) = (filter_input.width, filter_input.height);
    let (bw, bh) = (mask.width, mask.height);
    let mut e_in = Grid::new(bw, bh, 0.0f32);
    let mut e_out = Grid::new(bw, bh, 0.0f32);
    for y in 0..h {
        let by = y / block;
        for x in 0..w {
            let i = y * w + x;
            let bi = by * bw + x / block;
            e_in.values[bi] += filter_input.values[i] * filter_input.values[i];
            e_out.values[bi] += enhanced.values[i] * enhanced.values[i];
        }
    }
    let mut out = Grid::new(bw, bh, 0.0f32);
    for by in 0..bh {
        for bx in 0..bw {
            if !mask.at(bx, by) {
                continue;
            }
            let (mut a, mut b) = (0.0, 0.0);
            for yy in by.saturating_sub(1)..(by + 2).min(bh) {
                for xx in bx.saturating_sub(1)..(bx + 2).min(bw) {
                    if mask.at(xx, yy) {
                        a += e_in.at(xx, yy);
                        b += e_out.at(xx, yy);
                    }
                }
            }
            out.set(bx, by, if a > 0.0 { (b / a).sqrt() } else { 0.0 });
        }
    }
    out
}
