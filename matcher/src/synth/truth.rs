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
/// Pixels traced along each ridge of a minutia to find its direction.
const TRACE: usize = 10;
/// Margin kept free of minutiae so traces stay inside the image.
const DIRECTION_RADIUS: i32 = 7;

/// Follows the skeleton from `start` (not revisiting `visited`) for up to [`TRACE`] pixels and
/// returns the last pixel reached.
fn trace(
    skel: &[bool],
    width: usize,
    height: usize,
    start: (usize, usize),
    visited: &mut Vec<(usize, usize)>,
) -> (usize, usize) {
    let mut at = start;
    visited.push(at);
    for _ in 0..TRACE {
        let mut next = None;
        // 4-neighbours first, so the walk stays on the thin line.
        for (dx, dy) in [
            (0, -1),
            (1, 0),
            (0, 1),
            (-1, 0),
            (1, -1),
            (1, 1),
            (-1, 1),
            (-1, -1),
        ] {
            let (nx, ny) = (at.0 as i32 + dx, at.1 as i32 + dy);
            if nx < 0 || ny < 0 || nx >= width as i32 || ny >= height as i32 {
                continue;
            }
            let n = (nx as usize, ny as usize);
            if skel[n.1 * width + n.0] && !visited.contains(&n) {
                next = Some(n);
                break;
            }
        }
        match next {
            Some(n) => {
                visited.push(n);
                at = n;
            }
            None => break,
        }
    }
    at
}

/// Direction (image angle) of the minutia at (x, y) traced along its ridges: an ending points
/// away from its ridge, a bifurcation along its stem, away from the two branches.
fn traced_angle(
    skel: &[bool],
    width: usize,
    height: usize,
    x: usize,
    y: usize,
    kind: MinutiaKind,
) -> Option<f32> {
    let ring = [
        (0, -1),
        (1, -1),
        (1, 0),
        (1, 1),
        (0, 1),
        (-1, 1),
        (-1, 0),
        (-1, -1),
    ];
    let on = |i: usize| {
        let (dx, dy) = ring[i % 8];
        skel[(y as i32 + dy) as usize * width + (x as i32 + dx) as usize]
    };
    // One start per branch: the first skeleton pixel of each run around the ring.
    let starts: Vec<(usize, usize)> = (0..8)
        .filter(|&i| on(i) && !on(i + 7))
        .map(|i| {
            let (dx, dy) = ring[i];
            ((x as i32 + dx) as usize, (y as i32 + dy) as usize)
        })
        .collect();
    let mut visited = vec![(x, y)];
    for (i, &(dx, dy)) in ring.iter().enumerate() {
        if on(i) {
            visited.push(((x as i32 + dx) as usize, (y as i32 + dy) as usize));
        }
    }
    let vectors: Vec<(f32, f32)> = starts
        .iter()
        .filter_map(|&s| {
            visited.retain(|&v| v != s);
            let end = trace(skel, width, height, s, &mut visited);
            let (dx, dy) = (end.0 as f32 - x as f32, end.1 as f32 - y as f32);
            let n = (dx * dx + dy * dy).sqrt();
            (n > 0.0).then(|| (dx / n, dy / n))
        })
        .collect();
    let (dx, dy) = match (kind, vectors.len()) {
        (MinutiaKind::Ending, 1) => (-vectors[0].0, -vectors[0].1),
        (MinutiaKind::Bifurcation, 3) => {
            let dot =
                |i: usize, j: usize| vectors[i].0 * vectors[j].0 + vectors[i].1 * vectors[j].1;
            let (i, j, stem) = [(0, 1, 2), (0, 2, 1), (1, 2, 0)]
                .into_iter()
                .max_by(|a, b| dot(a.0, a.1).total_cmp(&dot(b.0, b.1)))?;
            (
                vectors[stem].0 - 0.5 * (vectors[i].0 + vectors[j].0),
                vectors[stem].1 - 0.5 * (vectors[i].1 + vectors[j].1),
            )
        }
        _ => return None,
    };
    if dx == 0.0 && dy == 0.0 {
        return None;
    }
    Some(dy.atan2(dx).rem_euclid(std::f32::consts::TAU))
}

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
            let Some(angle) = traced_angle(&skel, width, height, x, y, kind) else {
                continue;
            };
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
