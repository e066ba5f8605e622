//! The density map: the local ridge period in pixels, a per-finger mean (8 to 10.5 px at
//! 500 dpi, the range of adult fingers) modulated by a smooth random field, slightly denser
//! around the singular points.

use super::class::Singularities;
use super::rng::{Rng, SmoothField};

/// Ridge period in pixels at every pixel of a `width` x `height` master, row-major.
pub fn compute(
    rng: &mut Rng,
    sing: &Singularities,
    width: usize,
    height: usize,
    scale: f32,
) -> Vec<f32> {
    let mean = rng.range(8.0, 10.5) * scale;
    let field = SmoothField::new(rng, 3, 150.0 * scale, 400.0 * scale);
    let amplitude = rng.range(0.04, 0.09);
    let points: Vec<(f32, f32)> = sing.cores.iter().chain(&sing.deltas).copied().collect();
    let radius = 60.0 * scale;
    let mut out = vec![0.0f32; width * height];
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32, y as f32);
            let near = points
                .iter()
                .map(|&(px, py)| {
                    let d2 = (fx - px).powi(2) + (fy - py).powi(2);
                    (-d2 / (2.0 * radius * radius)).exp()
                })
                .fold(0.0f32, f32::max);
            out[y * width + x] = mean * (1.0 + amplitude * field.at(fx, fy) - 0.06 * near);
        }
    }
    out
}
