//! The orientation field: the zero-pole model of Sherlock and Monro (1993), where each core
//! adds and each delta subtracts half the argument of (z - singular point), plus a smooth
//! random perturbation; arches, which have no singular point, use an arch-shaped model.

use super::class::{Class, Singularities};
use super::rng::{Rng, SmoothField};

/// Ridge orientation in radians, [0, π), image coordinates (y down), at every pixel of a
/// `width` x `height` master, row-major.
pub fn compute(
    rng: &mut Rng,
    sing: &Singularities,
    width: usize,
    height: usize,
    scale: f32,
) -> Vec<f32> {
    let perturb = SmoothField::new(rng, 4, 180.0 * scale, 420.0 * scale);
    let amplitude = rng.range(0.08, 0.2);
    // Arch: ridges bend over a hump centred on the finger.
    let (ax, ay) = (
        width as f32 / 2.0 + rng.range(-20.0, 20.0),
        height as f32 * 0.45,
    );
    let arch_gain = rng.range(1.2, 2.2);
    let mut out = vec![0.0f32; width * height];
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32, y as f32);
            let mut t = if sing.class == Class::Arch {
                let g = 1.0 / (1.0 + ((fy - ay) / (60.0 * scale)).exp());
                (arch_gain * (fx - ax) / (width as f32 * 0.5) * g).atan()
            } else {
                let mut t = 0.0;
                for &(cx, cy) in &sing.cores {
                    t += 0.5 * (fy - cy).atan2(fx - cx);
                }
                for &(dx, dy) in &sing.deltas {
                    t -= 0.5 * (fy - dy).atan2(fx - dx);
                }
                t
            };
            t += amplitude * perturb.at(fx, fy);
            out[y * width + x] = t.rem_euclid(std::f32::consts::PI);
        }
    }
    out
}
