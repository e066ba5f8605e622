//! Noise level: the scan's pixel noise relative to the contrast of its print, and the smoothing
//! of the gradients it calls for.
//!
//! The noise is Immerkær's fast estimate (1996): the mean absolute response of the 3x3 mask
//! `[1 -2 1; -2 4 -2; 1 -2 1]`, which cancels straight edges, ramps and ridges running along
//! either axis and answers fine ridges at other angles only weakly, times `sqrt(π/2) / 6`. It is
//! divided by the 90th percentile of block contrast, so that the ratio does not depend on the
//! sensor's gray-level range. A 3x3 Sobel gradient sees that noise in full; a Gaussian of about
//! a pixel removes most of it while keeping ridges of period 6 px or more.

use super::grid::Grid;
use crate::params::ExtractParams;

/// Noise-to-contrast ratio of `gray`, whose block contrast has the 90th percentile `contrast`
/// ([`super::contrast::percentile_90`]); 0 when the print has no contrast or the image is tiny.
pub(crate) fn ratio(gray: &Grid<f32>, contrast: f32) -> f32 {
    let (w, h) = (gray.width, gray.height);
    if w < 3 || h < 3 || contrast <= 0.0 {
        return 0.0;
    }
    let v = &gray.values;
    let mut sum = 0.0f64;
    for y in 1..h - 1 {
        let (up, mid, down) = (
            &v[(y - 1) * w..y * w],
            &v[y * w..(y + 1) * w],
            &v[(y + 1) * w..(y + 2) * w],
        );
        let mut row = 0.0f32;
        for x in 1..w - 1 {
            let outer = up[x - 1] + up[x + 1] + down[x - 1] + down[x + 1];
            let cross = up[x] + down[x] + mid[x - 1] + mid[x + 1];
            row += (outer - 2.0 * cross + 4.0 * mid[x]).abs();
        }
        sum += f64::from(row);
    }
    let mean = sum / ((w - 2) * (h - 2)) as f64;
    let noise = (std::f64::consts::FRAC_PI_2.sqrt() * mean / 6.0) as f32;
    noise / contrast
}

/// Standard deviation (pixels) of the Gaussian that smooths the gradients of a scan with this
/// noise ratio: none up to the onset, then rising linearly to the maximum.
pub(crate) fn gradient_sigma(ratio: f32, p: &ExtractParams) -> f32 {
    let span = p.gradient_smoothing_span.max(1e-6);
    ((ratio - p.gradient_smoothing_onset) / span).clamp(0.0, 1.0) * p.max_gradient_smoothing
}

/// `gray` smoothed by a separable Gaussian of `sigma` pixels (edges repeated).
pub(crate) fn smoothed(gray: &Grid<f32>, sigma: f32) -> Grid<f32> {
    let r = (3.0 * sigma).ceil().max(1.0) as usize;
    let mut kernel: Vec<f32> = (0..=2 * r)
        .map(|i| {
            let d = i as f32 - r as f32;
            (-(d * d) / (2.0 * sigma * sigma)).exp()
        })
        .collect();
    let total: f32 = kernel.iter().sum();
    kernel.iter_mut().for_each(|k| *k /= total);
    let (w, h) = (gray.width, gray.height);
    let mut rows = Grid::new(w, h, 0.0f32);
    for y in 0..h {
        let src = &gray.values[y * w..(y + 1) * w];
        for x in 0..w {
            let mut s = 0.0;
            for (i, k) in kernel.iter().enumerate() {
                let xx = (x + i).saturating_sub(r).min(w - 1);
                s += k * src[xx];
            }
            rows.values[y * w + x] = s;
        }
    }
    let mut out = Grid::new(w, h, 0.0f32);
    for y in 0..h {
        for (i, k) in kernel.iter().enumerate() {
            let yy = (y + i).saturating_sub(r).min(h - 1);
            let src = &rows.values[yy * w..(yy + 1) * w];
            let dst = &mut out.values[y * w..(y + 1) * w];
            for (d, s) in dst.iter_mut().zip(src) {
                *d += k * s;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::rng::Rng;

    /// Ridges of period 9 px at 30°, contrast ±60 gray levels, plus Gaussian noise.
    fn ridges(noise: f32) -> Grid<f32> {
        let mut rng = Rng::new(7);
        let mut g = Grid::new(200, 200, 0.0f32);
        for y in 0..200 {
            for x in 0..200 {
                let t = (x as f32 * 0.5 + y as f32 * 0.866) * std::f32::consts::TAU / 9.0;
                g.set(x, y, 128.0 + 60.0 * t.cos() + noise * rng.normal());
            }
        }
        g
    }

    fn high_contrast(g: &Grid<f32>) -> f32 {
        let c = super::super::contrast::compute(g, 8, 1);
        super::super::contrast::percentile_90(&c.std)
    }

    #[test]
    fn the_ratio_tracks_added_noise_and_ignores_ridges() {
        let clean = ridges(0.0);
        let r0 = ratio(&clean, high_contrast(&clean));
        assert!(r0 < 0.05, "{r0}");
        // Contrast of the ridges: 60 / sqrt(2) = 42.4 (noise adds a little to the std).
        for noise in [10.0f32, 20.0, 30.0] {
            let g = ridges(noise);
            let r = ratio(&g, high_contrast(&g));
            let expected = noise / (42.4f32 * 42.4 + noise * noise).sqrt();
            assert!(
                (r - expected).abs() < 0.25 * expected,
                "{noise}: {r} vs {expected}"
            );
        }
    }

    #[test]
    fn smoothing_starts_at_the_onset_and_stops_at_the_maximum() {
        let p = ExtractParams::default();
        assert_eq!(gradient_sigma(0.1, &p), 0.0);
        assert_eq!(gradient_sigma(p.gradient_smoothing_onset, &p), 0.0);
        let half = p.gradient_smoothing_onset + p.gradient_smoothing_span / 2.0;
        assert!((gradient_sigma(half, &p) - p.max_gradient_smoothing / 2.0).abs() < 1e-5);
        assert_eq!(gradient_sigma(5.0, &p), p.max_gradient_smoothing);
    }

    #[test]
    fn the_gaussian_keeps_the_mean_and_removes_most_pixel_noise() {
        let noisy = ridges(20.0);
        let clean = ridges(0.0);
        let smooth = smoothed(&noisy, 1.0);
        let mean = |g: &Grid<f32>| g.values.iter().sum::<f32>() / g.values.len() as f32;
        assert!((mean(&smooth) - mean(&noisy)).abs() < 0.5);
        let rms = |a: &Grid<f32>, b: &Grid<f32>| {
            let s: f32 = a
                .values
                .iter()
                .zip(&b.values)
                .map(|(x, y)| (x - y).powi(2))
                .sum();
            (s / a.values.len() as f32).sqrt()
        };
        // Against the clean ridges blurred the same way, the noise left is about a quarter.
        let residual = rms(&smooth, &smoothed(&clean, 1.0));
        assert!(residual < 7.0, "{residual}");
    }
}
