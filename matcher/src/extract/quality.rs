//! Image quality 0-100: how much usable print there is (foreground area), how consistent its
//! ridge flow is (mean orientation coherence) and how clean its ridges are (mean ridge clarity),
//! all over the foreground.

use super::grid::Grid;
use crate::params::ExtractParams;

/// Mean of a block field over the foreground blocks (0 when there are none).
pub(crate) fn foreground_mean(mask: &Grid<bool>, field: &Grid<f32>) -> f32 {
    let (mut s, mut n) = (0.0, 0usize);
    for (&m, &c) in mask.values.iter().zip(&field.values) {
        if m {
            s += c;
            n += 1;
        }
    }
    if n == 0 {
        0.0
    } else {
        s / n as f32
    }
}

/// Quality score from the foreground area (pixels at 500 dpi), the mean coherence and the mean
/// clarity.
pub(crate) fn compute(area: usize, coherence: f32, clarity: f32, p: &ExtractParams) -> u8 {
    let area_part = (area as f32 / p.quality_full_area).min(1.0).sqrt();
    let flow = ((coherence - p.quality_coherence_range.0)
        / (p.quality_coherence_range.1 - p.quality_coherence_range.0))
        .clamp(0.0, 1.0);
    let clean = ((clarity - p.quality_clarity_range.0)
        / (p.quality_clarity_range.1 - p.quality_clarity_range.0))
        .clamp(0.0, 1.0);
    (100.0 * area_part * (flow * clean).sqrt())
        .round()
        .clamp(0.0, 100.0) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quality_grows_with_area_coherence_and_clarity() {
        let p = ExtractParams::default();
        let good = compute(80_000, 0.8, 0.65, &p);
        assert_eq!(good, 100);
        assert!(compute(20_000, 0.8, 0.65, &p) < good);
        assert!(compute(80_000, 0.5, 0.65, &p) < good);
        assert!(compute(80_000, 0.8, 0.4, &p) < good);
        assert_eq!(compute(80_000, 0.1, 0.65, &p), 0);
    }
}
