//! Image quality 0-100: how much usable print there is (foreground area) and how clear its
//! ridge flow is (mean orientation coherence over the foreground).

use super::grid::Grid;
use crate::params::ExtractParams;

/// Mean coherence over the foreground blocks (0 when there are none).
pub(crate) fn mean_coherence(mask: &Grid<bool>, coherence: &Grid<f32>) -> f32 {
    let (mut s, mut n) = (0.0, 0usize);
    for (&m, &c) in mask.values.iter().zip(&coherence.values) {
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

/// Quality score from the foreground area (pixels at 500 dpi) and the mean coherence.
pub(crate) fn compute(area: usize, mean_coherence: f32, p: &ExtractParams) -> u8 {
    let area_part = (area as f32 / p.quality_full_area).min(1.0).sqrt();
    let clarity = ((mean_coherence - 0.2) / 0.55).clamp(0.0, 1.0);
    (100.0 * area_part * clarity).round().clamp(0.0, 100.0) as u8
}
