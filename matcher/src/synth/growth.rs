//! Ridge growth: SFinGe's iterative oriented Gabor filtering. A blank image with a few random
//! seeds is filtered again and again, each pixel with the even (cosine, ψ = 0) Gabor kernel of
//! its local orientation and period, and clamped to [-1, 1], until the ridge pattern fills the
//! image and stops changing.
//!
//! The kernels are a precomputed bank (orientation bins x period bins). The filtering is our
//! own loop rather than OpenCV's filter2D: it only evaluates the one kernel each pixel needs
//! and gives bit-identical results on every CPU, which keeps generated sets reproducible. It
//! filters eight neighbouring pixels side by side, each with exactly the additions of the
//! plain per-pixel loop (`filter_pixel`) in the same order: the same bits, without one
//! long chain of dependent additions per pixel (criterion `synth/master`: 27-30 % less time
//! per master).

use super::rng::Rng;

/// Orientation bins over [0, π).
const ORIENTATION_BINS: usize = 32;
/// Period bin width in pixels.
const PERIOD_STEP: f32 = 0.25;
/// Gaussian envelope σ as a fraction of the ridge period.
const SIGMA_PER_PERIOD: f32 = 0.42;
/// Gain applied to the filter response before clamping (above 1: the pattern saturates into
/// clean ridges).
const GAIN: f32 = 1.6;
/// Seeds per pixel of master area.
const SEEDS_PER_PIXEL: f32 = 1.0 / 1500.0;
/// At most this many iterations.
const MAX_ITERATIONS: usize = 40;
/// Stop when fewer than this fraction of pixels change sign in one iteration.
const STABLE_FRACTION: f32 = 0.0005;

/// A bank of zero-mean cosine Gabor kernels, all (2r+1)², normalized so that a unit-amplitude
/// ridge pattern of the kernel's own orientation and period answers 1.
struct Bank {
    /// Kernel radius.
    r: usize,
    /// Smallest period of the bank.
    p0: f32,
    /// Number of period bins.
    periods: usize,
    /// Kernels, `[period][orientation]`, each (2r+1)² row-major.
    kernels: Vec<Vec<f32>>,
}

impl Bank {
    fn new(p_min: f32, p_max: f32) -> Self {
        let periods = (((p_max - p_min) / PERIOD_STEP).ceil() as usize + 1).max(1);
        let r = (1.8 * SIGMA_PER_PERIOD * p_max).ceil().max(2.0) as usize;
        let side = 2 * r + 1;
        let mut kernels = Vec::with_capacity(periods * ORIENTATION_BINS);
        for pi in 0..periods {
            let period = p_min + pi as f32 * PERIOD_STEP;
            let sigma = SIGMA_PER_PERIOD * period;
            for oi in 0..ORIENTATION_BINS {
                let theta = (oi as f32 + 0.5) * std::f32::consts::PI / ORIENTATION_BINS as f32;
                // Coordinate across the ridges: along the normal (-sin θ, cos θ).
                let (nx, ny) = (-theta.sin(), theta.cos());
                let mut k = vec![0.0f32; side * side];
                let mut wave = vec![0.0f32; side * side];
                for j in 0..side {
                    for i in 0..side {
                        let (x, y) = (i as f32 - r as f32, j as f32 - r as f32);
                        let g = (-(x * x + y * y) / (2.0 * sigma * sigma)).exp();
                        let c = (std::f32::consts::TAU * (x * nx + y * ny) / period).cos();
                        k[j * side + i] = g * c;
                        wave[j * side + i] = c;
                    }
                }
                // Zero mean (weighted by the envelope) so flat areas do not grow.
                let gsum: f32 = (0..side * side)
                    .map(|n| {
                        let (x, y) = ((n % side) as f32 - r as f32, (n / side) as f32 - r as f32);
                        (-(x * x + y * y) / (2.0 * sigma * sigma)).exp()
                    })
                    .sum();
                let mean: f32 = k.iter().sum::<f32>() / gsum;
                for (n, kn) in k.iter_mut().enumerate() {
                    let (x, y) = ((n % side) as f32 - r as f32, (n / side) as f32 - r as f32);
                    *kn -= mean * (-(x * x + y * y) / (2.0 * sigma * sigma)).exp();
                }
                let response: f32 = k.iter().zip(&wave).map(|(a, b)| a * b).sum();
                let norm = if response.abs() > 1e-6 {
                    1.0 / response
                } else {
                    0.0
                };
                k.iter_mut().for_each(|v| *v *= norm);
                kernels.push(k);
            }
        }
        Bank {
            r,
            p0: p_min,
            periods,
            kernels,
        }
    }

    /// Index of the kernel for an orientation (radians, [0, π)) and period (pixels).
    fn index(&self, theta: f32, period: f32) -> u16 {
        let o = ((theta / std::f32::consts::PI * ORIENTATION_BINS as f32) as usize)
            .min(ORIENTATION_BINS - 1);
        let p =
            (((period - self.p0) / PERIOD_STEP).round().max(0.0) as usize).min(self.periods - 1);
        (p * ORIENTATION_BINS + o) as u16
    }
}

/// Neighbouring pixels filtered together by [`filter_block`].
const BLOCK: usize = 8;

/// The response at (x, y) of the padded image `img` (row length `pw`) to kernel `k`
/// (`side` x `side`): each kernel row's products summed in order, the rows' sums added in
/// order. This order is the generator's definition: [`filter_block`] keeps it exactly.
fn filter_pixel(img: &[f32], pw: usize, k: &[f32], side: usize, x: usize, y: usize) -> f32 {
    let mut acc = 0.0f32;
    for j in 0..side {
        let src = &img[(y + j) * pw + x..(y + j) * pw + x + side];
        let kr = &k[j * side..(j + 1) * side];
        let mut row = 0.0f32;
        for (a, b) in src.iter().zip(kr) {
            row += a * b;
        }
        acc += row;
    }
    acc
}

/// [`filter_pixel`] of the [`BLOCK`] pixels from (x, y) on, pixel `l` with kernel value
/// `kernel(l, n)` at kernel index `n`: the same additions in the same order for every pixel,
/// with the pixels side by side so that the sums of different pixels run in parallel (vector
/// lanes) instead of one long chain of dependent additions. Bit-identical to [`filter_pixel`]
/// pixel by pixel.
#[inline(always)]
fn filter_block(
    img: &[f32],
    pw: usize,
    side: usize,
    x: usize,
    y: usize,
    kernel: impl Fn(usize, usize) -> f32,
) -> [f32; BLOCK] {
    let mut acc = [0.0f32; BLOCK];
    for j in 0..side {
        let src = &img[(y + j) * pw + x..(y + j) * pw + x + side + BLOCK - 1];
        let mut row = [0.0f32; BLOCK];
        for i in 0..side {
            let window: &[f32; BLOCK] = src[i..i + BLOCK].try_into().expect("block in row");
            for l in 0..BLOCK {
                row[l] += window[l] * kernel(l, j * side + i);
            }
        }
        for l in 0..BLOCK {
            acc[l] += row[l];
        }
    }
    acc
}

/// Grows the master ridge pattern: values in [-1, 1], negative on ridges, for the given
/// orientation (radians) and period (pixels) maps of a `width` x `height` image.
pub fn grow(
    rng: &mut Rng,
    orientation: &[f32],
    period: &[f32],
    width: usize,
    height: usize,
) -> Vec<f32> {
    let (p_min, p_max) = period
        .iter()
        .fold((f32::MAX, 0.0f32), |(a, b), &p| (a.min(p), b.max(p)));
    let bank = Bank::new(p_min.max(3.0), p_max.max(p_min.max(3.0)));
    let r = bank.r;
    let side = 2 * r + 1;
    let pw = width + 2 * r;
    let ph = height + 2 * r;
    let which: Vec<u16> = orientation
        .iter()
        .zip(period)
        .map(|(&t, &p)| bank.index(t, p))
        .collect();
    // Padded working image (zero border).
    let mut img = vec![0.0f32; pw * ph];
    let seeds = ((width * height) as f32 * SEEDS_PER_PIXEL).ceil() as usize;
    for _ in 0..seeds.max(1) {
        let x = rng.below(width as u32) as usize;
        let y = rng.below(height as u32) as usize;
        let v = if rng.chance(0.5) { 1.0 } else { -1.0 };
        for dy in 0..2 {
            for dx in 0..2 {
                img[(y + r + dy).min(ph - 1) * pw + (x + r + dx).min(pw - 1)] = v;
            }
        }
    }
    let mut next = vec![0.0f32; pw * ph];
    let mut active = vec![false; width * height];
    for iteration in 0..MAX_ITERATIONS {
        // Pixels with any non-zero value within the kernel's reach (separable max).
        let mut row_any = vec![false; width * ph];
        for y in 0..ph {
            let row = &img[y * pw..(y + 1) * pw];
            let mut run = 0usize;
            let nz: Vec<bool> = row.iter().map(|&v| v != 0.0).collect();
            // Count of non-zeros in a sliding window of `side` columns.
            for &b in &nz[..side - 1] {
                run += usize::from(b);
            }
            for x in 0..width {
                run += usize::from(nz[x + side - 1]);
                row_any[y * width + x] = run > 0;
                run -= usize::from(nz[x]);
            }
        }
        for x in 0..width {
            let mut run = 0usize;
            for y in 0..side - 1 {
                run += usize::from(row_any[y * width + x]);
            }
            for y in 0..height {
                run += usize::from(row_any[(y + side - 1) * width + x]);
                active[y * width + x] = run > 0;
                run -= usize::from(row_any[y * width + x]);
            }
        }
        let mut max_abs = 0.0f32;
        for y in 0..height {
            let mut x = 0;
            while x < width {
                let i = y * width + x;
                let run = BLOCK.min(width - x);
                let (lanes, kernel_ids) = (&active[i..i + run], &which[i..i + run]);
                let acc = if !lanes.contains(&true) {
                    [0.0f32; BLOCK]
                } else if run == BLOCK && kernel_ids.iter().all(|&w| w == kernel_ids[0]) {
                    // One kernel (the common case): each of its values serves all lanes.
                    let k = &bank.kernels[kernel_ids[0] as usize];
                    filter_block(&img, pw, side, x, y, |_, n| k[n])
                } else if run == BLOCK {
                    // The orientation or period bin changes within the block.
                    let ks: [&[f32]; BLOCK] =
                        std::array::from_fn(|l| &bank.kernels[kernel_ids[l] as usize][..]);
                    filter_block(&img, pw, side, x, y, |l, n| ks[l][n])
                } else {
                    let mut acc = [0.0f32; BLOCK];
                    for (l, a) in acc.iter_mut().enumerate().take(run) {
                        if lanes[l] {
                            let k = &bank.kernels[kernel_ids[l] as usize];
                            *a = filter_pixel(&img, pw, k, side, x + l, y);
                        }
                    }
                    acc
                };
                for l in 0..run {
                    // An inactive pixel's window is all zeros: its response is 0 without
                    // the sign of a zero product.
                    let a = if lanes[l] { acc[l] } else { 0.0 };
                    next[(y + r) * pw + x + l + r] = a;
                    max_abs = max_abs.max(a.abs());
                }
                x += run;
            }
        }
        // Early on the seeds are weak: amplify so they grow instead of fading.
        let gain = if max_abs > 0.0 {
            GAIN.max(1.0 / (0.5 * max_abs))
        } else {
            GAIN
        };
        let mut changed = 0usize;
        let mut zeros = 0usize;
        for y in 0..height {
            for x in 0..width {
                let i = (y + r) * pw + x + r;
                let v = (next[i] * gain).clamp(-1.0, 1.0);
                if (v < 0.0) != (img[i] < 0.0) {
                    changed += 1;
                }
                if v == 0.0 {
                    zeros += 1;
                }
                img[i] = v;
            }
        }
        let fraction = changed as f32 / (width * height) as f32;
        if iteration >= 4 && zeros == 0 && fraction < STABLE_FRACTION {
            break;
        }
    }
    let mut out = vec![0.0f32; width * height];
    for y in 0..height {
        out[y * width..(y + 1) * width]
            .copy_from_slice(&img[(y + r) * pw + r..(y + r) * pw + r + width]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The blocked filter gives every pixel exactly the bits of the plain definition, with one
    /// kernel for the block or one per pixel, on values of every sign (zeros included).
    #[test]
    fn blocked_filter_equals_the_plain_one_bit_for_bit() {
        let mut rng = Rng::new(5);
        let (side, width, height) = (9, 40, 12);
        let pw = width + side - 1;
        let img: Vec<f32> = (0..pw * (height + side - 1))
            .map(|_| match rng.below(4) {
                0 => 0.0,
                _ => rng.unit() * 2.0 - 1.0,
            })
            .collect();
        let kernels: Vec<Vec<f32>> = (0..BLOCK)
            .map(|_| (0..side * side).map(|_| rng.unit() - 0.5).collect())
            .collect();
        for y in 0..height {
            for x in 0..=width - BLOCK {
                let one = filter_block(&img, pw, side, x, y, |_, n| kernels[0][n]);
                let own = filter_block(&img, pw, side, x, y, |l, n| kernels[l][n]);
                for l in 0..BLOCK {
                    let plain = filter_pixel(&img, pw, &kernels[0], side, x + l, y);
                    assert_eq!(one[l].to_bits(), plain.to_bits(), "({x}, {y}) lane {l}");
                    let plain = filter_pixel(&img, pw, &kernels[l], side, x + l, y);
                    assert_eq!(own[l].to_bits(), plain.to_bits(), "({x}, {y}) lane {l}");
                }
            }
        }
    }
}
