//! Block contrast: local mean and standard deviation of the gray levels on the block grid.

use super::grid::Grid;

/// Mean and standard deviation of the gray levels around each block.
pub(crate) struct Contrast {
    /// Local mean per block.
    pub mean: Grid<f32>,
    /// Local standard deviation per block.
    pub std: Grid<f32>,
}

/// Sums each cell's `(2 * radius + 1)^2` neighbourhood (clipped at the edges).
pub(crate) fn window_sums(grid: &Grid<f32>, radius: usize) -> Grid<f32> {
    let (w, h) = (grid.width, grid.height);
    let mut out = Grid::new(w, h, 0.0f32);
    for y in 0..h {
        for x in 0..w {
            let mut s = 0.0;
            for yy in y.saturating_sub(radius)..(y + radius + 1).min(h) {
                for xx in x.saturating_sub(radius)..(x + radius + 1).min(w) {
                    s += grid.at(xx, yy);
                }
            }
            out.set(x, y, s);
        }
    }
    out
}

/// The 90th percentile of block contrast: the contrast of the print's clear ridges, which
/// thresholds and ratios are taken relative to (0 for an empty grid).
pub(crate) fn percentile_90(std: &Grid<f32>) -> f32 {
    let mut sorted: Vec<f32> = std.values.clone();
    sorted.sort_by(f32::total_cmp);
    sorted.get(sorted.len() * 9 / 10).copied().unwrap_or(0.0)
}

/// Local mean and standard deviation over `(2 * radius + 1)^2` blocks around each block.
pub(crate) fn compute(gray: &Grid<f32>, block: usize, radius: usize) -> Contrast {
    let (w, h) = (gray.width, gray.height);
    let (bw, bh) = (w.div_ceil(block), h.div_ceil(block));
    let mut ones = Grid::new(bw, bh, 0.0f32);
    let mut sum = Grid::new(bw, bh, 0.0f32);
    let mut sq = Grid::new(bw, bh, 0.0f32);
    for y in 0..h {
        let row = &gray.values[y * w..(y + 1) * w];
        let brow = (y / block) * bw;
        for (bx, chunk) in row.chunks(block).enumerate() {
            ones.values[brow + bx] += chunk.len() as f32;
            sum.values[brow + bx] += chunk.iter().sum::<f32>();
            sq.values[brow + bx] += chunk.iter().map(|v| v * v).sum::<f32>();
        }
    }
    let (n, s, q) = (
        window_sums(&ones, radius),
        window_sums(&sum, radius),
        window_sums(&sq, radius),
    );
    let mut mean = Grid::new(bw, bh, 0.0f32);
    let mut std = Grid::new(bw, bh, 0.0f32);
    for i in 0..n.values.len() {
        let count = n.values[i].max(1.0);
        let m = s.values[i] / count;
        mean.values[i] = m;
        std.values[i] = (q.values[i] / count - m * m).max(0.0).sqrt();
    }
    Contrast { mean, std }
}
