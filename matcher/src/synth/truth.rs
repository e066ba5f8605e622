//! Ground-truth minutiae of the master ridge pattern: binarize (ridge where the master is
//! negative), thin (Zhang-Suen), crossing number (1 ending, 3 bifurcation). The master is
//! clean, so the skeleton needs no repair; minutiae closer than a few pixels to each other
//! (thinning artefacts at touching ridges) and near the border are dropped.

use crate::MinutiaKind;

/// A ground-truth minutia in master coordinates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrueMinutia {
    /// Column.
    pub x: f32,
    /// Row.
    pub y: f32,
    /// Direction, image coordinates (atan2(dy, dx), y down), [0, 2π), ISO convention: an ending
    /// points away from its ridge, a bifurcation along its stem.
    pub angle: f32,
    /// Ending or bifurcation.
    pub kind: MinutiaKind,
}

/// Minutiae closer than this (pixels) to another are both dropped.
const MIN_SEPARATION: f32 = 6.0;
/// Radius (pixels) of the skeleton neighbourhood used to find a minutia's direction.
const DIRECTION_RADIUS: i32 = 7;

/// Zhang-Suen thinning of a binary image (true = ridge), in place.
pub fn thin(img: &mut [bool], width: usize, height: usize) {
    let at = |img: &[bool], x: usize, y: usize| img[y * width + x];
    let mut remove = Vec::new();
    loop {
        let mut changed = false;
        for pass in 0..2 {
            remove.clear();
            for y in 1..height.saturating_sub(1) {
                for x in 1..width.saturating_sub(1) {
                    if !at(img, x, y) {
                        continue;
                    }
                    let p = [
                        at(img, x, y - 1),
                        at(img, x + 1, y - 1),
                        at(img, x + 1, y),
                        at(img, x + 1, y + 1),
                        at(img, x, y + 1),
                        at(img, x - 1, y + 1),
                        at(img, x - 1, y),
                        at(img, x - 1, y - 1),
                    ];
                    let b = p.iter().filter(|&&v| v).count();
                    if !(2..=6).contains(&b) {
                        continue;
                    }
                    let a = (0..8).filter(|&i| !p[i] && p[(i + 1) % 8]).count();
                    if a != 1 {
                        continue;
                    }
                    let ok = if pass == 0 {
                        // Zhang-Suen: P2·P4·P6 = 0 and P4·P6·P8 = 0.
                        !p[2] || !p[4] || (!p[0] && !p[6])
                    } else {
                        // Zhang-Suen: P2·P4·P8 = 0 and P2·P6·P8 = 0.
                        !p[0] || !p[6] || (!p[2] && !p[4])
                    };
                    if ok {
                        remove.push(y * width + x);
                    }
                }
            }
            for &i in &remove {
                img[i] = false;
            }
            changed |= !remove.is_empty();
        }
        if !changed {
            break;
        }
    }
}

/// Minutiae of the master ridge pattern (`master` negative on ridges), at least `margin`
/// pixels inside the border.
pub fn compute(master: &[f32], width: usize, height: usize, margin: usize) -> Vec<TrueMinutia> {
    let mut skel: Vec<bool> = master.iter().map(|&v| v < 0.0).collect();
    thin(&mut skel, width, height);
    let at = |x: usize, y: usize| skel[y * width + x];
    let mut found = Vec::new();
    let m = margin.max(DIRECTION_RADIUS as usize + 1);
    for y in m..height.saturating_sub(m) {
        for x in m..width.saturating_sub(m) {
            if !at(x, y) {
                continue;
            }
            let p = [
                at(x, y - 1),
                at(x + 1, y - 1),
                at(x + 1, y),
                at(x + 1, y + 1),
                at(x, y + 1),
                at(x - 1, y + 1),
                at(x - 1, y),
                at(x - 1, y - 1),
            ];
            let cn = (0..8).filter(|&i| p[i] != p[(i + 1) % 8]).count() / 2;
            let kind = match cn {
                1 => MinutiaKind::Ending,
                3 => MinutiaKind::Bifurcation,
                _ => continue,
            };
            // Mean offset of the nearby skeleton: toward the ridge body for an ending, toward
            // the two branches for a bifurcation; the ISO direction is the opposite.
            let (mut sx, mut sy, mut n) = (0.0f32, 0.0f32, 0usize);
            for dy in -DIRECTION_RADIUS..=DIRECTION_RADIUS {
                for dx in -DIRECTION_RADIUS..=DIRECTION_RADIUS {
                    if dx * dx + dy * dy > DIRECTION_RADIUS * DIRECTION_RADIUS {
                        continue;
                    }
                    let (qx, qy) = (x as i32 + dx, y as i32 + dy);
                    if at(qx as usize, qy as usize) {
                        sx += dx as f32;
                        sy += dy as f32;
                        n += 1;
                    }
                }
            }
            if n == 0 || (sx == 0.0 && sy == 0.0) {
                continue;
            }
            let angle = (-sy).atan2(-sx).rem_euclid(std::f32::consts::TAU);
            found.push(TrueMinutia {
                x: x as f32,
                y: y as f32,
                angle,
                kind,
            });
        }
    }
    let keep: Vec<bool> = found
        .iter()
        .map(|a| {
            !found.iter().any(|b| {
                !std::ptr::eq(a, b)
                    && (a.x - b.x).powi(2) + (a.y - b.y).powi(2) < MIN_SEPARATION * MIN_SEPARATION
            })
        })
        .collect();
    found
        .into_iter()
        .zip(keep)
        .filter_map(|(m, k)| k.then_some(m))
        .collect()
}
