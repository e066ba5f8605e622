//! Fingerprint class and singular points (cores and deltas), drawn with the natural class
//! frequencies that SFinGe uses (Wilson et al.): arch 3.7 %, tented arch 2.9 %, left loop
//! 33.8 %, right loop 31.7 %, whorl 27.9 %.

use super::rng::Rng;
use serde::{Deserialize, Serialize};

/// Henry class of a synthetic finger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Plain arch: no singular point.
    Arch,
    /// Tented arch: a core right above a delta.
    TentedArch,
    /// Left loop: delta to the right of the core (as seen on the image).
    LeftLoop,
    /// Right loop: delta to the left of the core.
    RightLoop,
    /// Whorl: two cores, two deltas.
    Whorl,
}

/// The class and singular points of a finger, in master-image pixels.
#[derive(Debug, Clone, PartialEq)]
pub struct Singularities {
    /// Henry class.
    pub class: Class,
    /// Core positions (x, y).
    pub cores: Vec<(f32, f32)>,
    /// Delta positions (x, y).
    pub deltas: Vec<(f32, f32)>,
}

/// Draws a class and places its singular points around (`cx`, `cy`); `scale` is the ridge
/// scale relative to 500 dpi.
pub fn draw(rng: &mut Rng, cx: f32, cy: f32, scale: f32) -> Singularities {
    let u = rng.unit();
    let s = scale;
    let jitter = |rng: &mut Rng, a: f32| rng.range(-a, a) * s;
    let core_y = cy - rng.range(10.0, 50.0) * s;
    let core_x = cx + jitter(rng, 25.0);
    let (class, cores, deltas) = if u < 0.037 {
        (Class::Arch, vec![], vec![])
    } else if u < 0.066 {
        let dy = rng.range(45.0, 75.0) * s;
        (
            Class::TentedArch,
            vec![(core_x, core_y)],
            vec![(core_x + jitter(rng, 8.0), core_y + dy)],
        )
    } else if u < 0.72 {
        let left = u < 0.404;
        let sign = if left { 1.0 } else { -1.0 };
        let dx = sign * rng.range(55.0, 110.0) * s;
        let dy = rng.range(70.0, 120.0) * s;
        (
            if left {
                Class::LeftLoop
            } else {
                Class::RightLoop
            },
            vec![(core_x, core_y)],
            vec![(core_x + dx, core_y + dy)],
        )
    } else {
        let sep = rng.range(8.0, 28.0) * s;
        let tilt = jitter(rng, 10.0);
        let dy = rng.range(70.0, 110.0) * s;
        (
            Class::Whorl,
            vec![
                (core_x - tilt, core_y - sep / 2.0),
                (core_x + tilt, core_y + sep / 2.0),
            ],
            vec![
                (
                    core_x - rng.range(80.0, 120.0) * s,
                    core_y + dy + jitter(rng, 15.0),
                ),
                (
                    core_x + rng.range(80.0, 120.0) * s,
                    core_y + dy + jitter(rng, 15.0),
                ),
            ],
        )
    };
    Singularities {
        class,
        cores,
        deltas,
    }
}
