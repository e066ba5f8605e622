//! Block contrast: local mean and standard deviation of the gray levels on the block grid.

use super::grid::Grid;

/// Mean and standard deviation of the gray levels around each block.
pub(crate) struct Contrast {
    /// Local mean per block.
    pub mean: Grid<f32>,
    /// Local standard deviation per block.
    pub std: Grid<f32>,
}

/// Sums of a per-pixel quantity over each `block` x `block` tile (partial tiles at the edges).
pub(crate) fn block_sums(
    width: usize,
    height: usize,
    block: usize,
    mut value: impl FnMut(usize) -> f32,
) -> Grid<f32> {
    let (bw, bh) = (width.div_ceil(block), height.div_ceil(block));
    let mut sums = Grid::new(bw, bh, 0.0f32);
    for y in 0..height {
        let by = y / block;
        let row = &mut sums.values[by * bw..(by + 1) * bw];
        for x in 0..width {
            row[x / block] += value(y * width + x);
        }
    }
    sums
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

/// Local mean and standard deviation over `(2 * radius + 1)^2` blocks around each block.
pub(crate) fn compute(gray: &Grid<f32>, block: usize, radius: usize) -> Contrast {
    let v = &gray.values;
    let ones = block_sums(gray.width, gray.height, block, |_| 1.0);
    let sum = block_sums(gray.width, gray.height, block, |i| v[i]);
    let sq = block_sums(gray.width, gray.height, block, |i| v[i] * v[i]);
    let (n, s, q) = (
        window_sums(&ones, radius),
        window_sums(&sum, radius),
        window_sums(&sq, radius),
    );
    let mut mean = Grid::new(n.width, n.height, 0.0f32);
    let mut std = Grid::new(n.width, n.height, 0.0f32);
    for i in 0..n.values.len() {
        let count = n.values[i].max(1.0);
        let m = s.values[i] / count;
        mean.values[i] = m;
        std.values[i] = (q.values[i] / count - m * m).max(0.0).sqrt();
    }
    Contrast { mean, std }
}
