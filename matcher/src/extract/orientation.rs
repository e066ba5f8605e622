//! Orientation field: ridge direction and coherence per block, from pixel gradients summed
//! into structure tensors and smoothed as doubled-angle vectors (so that opposite gradients
//! reinforce instead of cancelling).

use super::contrast::window_sums;
use super::grid::Grid;

/// Gradient structure tensors summed per block.
pub(crate) struct Tensors {
    /// Σ gx² - gy² per block (doubled-angle x component).
    pub cos2: Grid<f32>,
    /// Σ 2 gx gy per block (doubled-angle y component).
    pub sin2: Grid<f32>,
    /// Σ gx² + gy² per block (gradient energy).
    pub energy: Grid<f32>,
}

/// The smoothed orientation field on the block grid.
pub(crate) struct OrientationField {
    /// Ridge direction per block: radians in [0, π), image coordinates (x right, y down).
    pub angle: Grid<f32>,
    /// Coherence per block, 0 (no dominant direction) to 1 (parallel ridges).
    pub coherence: Grid<f32>,
}

/// Sobel gradients of `gray`, summed into structure tensors per `block` (border pixels, where
/// the 3x3 operator does not fit, contribute nothing).
pub(crate) fn tensors(gray: &Grid<f32>, block: usize) -> Tensors {
    let (w, h) = (gray.width, gray.height);
    let (bw, bh) = (w.div_ceil(block), h.div_ceil(block));
    let mut cos2 = Grid::new(bw, bh, 0.0f32);
    let mut sin2 = Grid::new(bw, bh, 0.0f32);
    let mut energy = Grid::new(bw, bh, 0.0f32);
    let v = &gray.values;
    for y in 1..h.saturating_sub(1) {
        let up = &v[(y - 1) * w..y * w];
        let mid = &v[y * w..(y + 1) * w];
        let down = &v[(y + 1) * w..(y + 2) * w];
        let row = (y / block) * bw;
        let mut x = 1;
        while x + 1 < w {
            // Accumulate a run of pixels inside one block, then add to the block once.
            let end = ((x / block + 1) * block).min(w - 1);
            let (mut c, mut s, mut e) = (0.0f32, 0.0f32, 0.0f32);
            for x in x..end {
                let gx = (up[x + 1] + 2.0 * mid[x + 1] + down[x + 1])
                    - (up[x - 1] + 2.0 * mid[x - 1] + down[x - 1]);
                let gy = (down[x - 1] + 2.0 * down[x] + down[x + 1])
                    - (up[x - 1] + 2.0 * up[x] + up[x + 1]);
                let (xx, yy) = (gx * gx, gy * gy);
                c += xx - yy;
                s += 2.0 * gx * gy;
                e += xx + yy;
            }
            let bi = row + x / block;
            cos2.values[bi] += c;
            sin2.values[bi] += s;
            energy.values[bi] += e;
            x = end;
        }
    }
    Tensors { cos2, sin2, energy }
}

/// Coherence of the tensors summed over `(2 * radius + 1)^2` blocks, without weighting.
pub(crate) fn raw_coherence(t: &Tensors, radius: usize) -> Grid<f32> {
    let (c, s, e) = (
        window_sums(&t.cos2, radius),
        window_sums(&t.sin2, radius),
        window_sums(&t.energy, radius),
    );
    let mut out = Grid::new(c.width, c.height, 0.0f32);
    for i in 0..out.values.len() {
        out.values[i] = coherence(c.values[i], s.values[i], e.values[i]);
    }
    out
}

fn coherence(c: f32, s: f32, e: f32) -> f32 {
    if e > 1e-6 {
        ((c * c + s * s).sqrt() / e).min(1.0)
    } else {
        0.0
    }
}

/// Smooths the tensors with a Gaussian over foreground blocks and derives ridge angles.
pub(crate) fn compute(
    t: &Tensors,
    mask: &Grid<bool>,
    radius: usize,
    sigma: f32,
) -> OrientationField {
    let (w, h) = (mask.width, mask.height);
    let r = radius as isize;
    let weights: Vec<f32> = (-r..=r)
        .map(|d| (-((d * d) as f32) / (2.0 * sigma * sigma)).exp())
        .collect();
    // Separable Gaussian: rows then columns, only foreground blocks contribute.
    let m = |i: usize| if mask.values[i] { 1.0 } else { 0.0 };
    let fields = [&t.cos2, &t.sin2, &t.energy];
    let mut smoothed: Vec<Grid<f32>> = Vec::with_capacity(3);
    for f in fields {
        let mut tmp = Grid::new(w, h, 0.0f32);
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0;
                for (k, wt) in weights.iter().enumerate() {
                    let xx = x as isize + k as isize - r;
                    if xx >= 0 && (xx as usize) < w {
                        let i = y * w + xx as usize;
                        s += wt * f.values[i] * m(i);
                    }
                }
                tmp.set(x, y, s);
            }
        }
        let mut out = Grid::new(w, h, 0.0f32);
        for y in 0..h {
            for x in 0..w {
                let mut s = 0.0;
                for (k, wt) in weights.iter().enumerate() {
                    let yy = y as isize + k as isize - r;
                    if yy >= 0 && (yy as usize) < h {
                        s += wt * tmp.at(x, yy as usize);
                    }
                }
                out.set(x, y, s);
            }
        }
        smoothed.push(out);
    }
    let mut angle = Grid::new(w, h, 0.0f32);
    let mut coh = Grid::new(w, h, 0.0f32);
    for i in 0..w * h {
        let (c, s, e) = (
            smoothed[0].values[i],
            smoothed[1].values[i],
            smoothed[2].values[i],
        );
        // Doubled gradient angle -> gradient angle -> ridge angle (perpendicular).
        let gradient = 0.5 * s.atan2(c);
        let mut ridge = gradient + std::f32::consts::FRAC_PI_2;
        if ridge >= std::f32::consts::PI {
            ridge -= std::f32::consts::PI;
        }
        if ridge < 0.0 {
            ridge += std::f32::consts::PI;
        }
        angle.values[i] = ridge;
        coh.values[i] = if mask.values[i] {
            coherence(c, s, e)
        } else {
            0.0
        };
    }
    OrientationField {
        angle,
        coherence: coh,
    }
}
