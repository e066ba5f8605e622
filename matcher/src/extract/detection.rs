//! Minutiae candidates: endings (nodes with one ridge) and bifurcations (nodes with three) of
//! the pruned skeleton graph, with directions traced along the ridges.
//!
//! Direction convention of this stage (internal, image coordinates): an ending points away from
//! its ridge, from the ridge body through the end into the valley beyond; a bifurcation points
//! along its single ridge (the stem), away from the two branches (ending/bifurcation duality:
//! an ending that becomes a bifurcation under heavier pressure keeps about the same direction).
//! ISO/IEC 19794-2 points both the other way; `extract::iso_angle` turns them around when the
//! minutiae leave the extractor.

use super::skeleton_graph::SkeletonGraph;
use crate::MinutiaKind;

/// A minutia in working coordinates (pixels at 500 dpi, y down).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Candidate {
    /// Column.
    pub x: f32,
    /// Row.
    pub y: f32,
    /// Direction in radians, image coordinates (atan2(dy, dx) with y down), [0, 2π).
    pub angle: f32,
    /// Ending or bifurcation.
    pub kind: MinutiaKind,
    /// Quality 0-100 (set by filtering).
    pub quality: u8,
}

/// Unit vector from (x, y) to `to`, if the points differ.
fn unit(x: f32, y: f32, to: (f32, f32)) -> Option<(f32, f32)> {
    let (dx, dy) = (to.0 - x, to.1 - y);
    let n = (dx * dx + dy * dy).sqrt();
    (n > 1e-3).then(|| (dx / n, dy / n))
}

/// Angle of a vector in [0, 2π).
pub(crate) fn angle_of(dx: f32, dy: f32) -> f32 {
    let a = dy.atan2(dx);
    if a < 0.0 {
        a + std::f32::consts::TAU
    } else {
        a
    }
}

/// Candidates of the graph's alive endings and three-way junctions.
pub(crate) fn compute(g: &SkeletonGraph, trace: usize) -> Vec<Candidate> {
    let mut out = Vec::new();
    for (n, node) in g.nodes.iter().enumerate() {
        if !node.alive {
            continue;
        }
        let ridges: Vec<usize> = node
            .ridges
            .iter()
            .copied()
            .filter(|&r| g.ridges[r].alive)
            .collect();
        let vectors: Vec<(f32, f32)> = ridges
            .iter()
            .filter_map(|&r| unit(node.x, node.y, g.point_along(r, n, trace)))
            .collect();
        let (kind, (dx, dy)) = match (ridges.len(), vectors.len()) {
            (1, 1) => (MinutiaKind::Ending, (-vectors[0].0, -vectors[0].1)),
            (3, 3) => {
                // The two branches are the pair closest in direction; the stem is the third.
                let dot =
                    |i: usize, j: usize| vectors[i].0 * vectors[j].0 + vectors[i].1 * vectors[j].1;
                let stem = [(0, 1, 2), (0, 2, 1), (1, 2, 0)]
                    .into_iter()
                    .max_by(|a, b| dot(a.0, a.1).total_cmp(&dot(b.0, b.1)))
                    .map_or(0, |t| t.2);
                let (i, j) = match stem {
                    0 => (1, 2),
                    1 => (0, 2),
                    _ => (0, 1),
                };
                let dx = vectors[stem].0 - 0.5 * (vectors[i].0 + vectors[j].0);
                let dy = vectors[stem].1 - 0.5 * (vectors[i].1 + vectors[j].1);
                (MinutiaKind::Bifurcation, (dx, dy))
            }
            _ => continue,
        };
        if dx == 0.0 && dy == 0.0 {
            continue;
        }
        out.push(Candidate {
            x: node.x,
            y: node.y,
            angle: angle_of(dx, dy),
            kind,
            quality: 0,
        });
    }
    out
}

/// Replaces each traced direction by the smoothed ridge orientation at the minutia (the
/// orientation's sense chosen closest to the traced direction) when the two agree within
/// `tolerance` radians: the field averages over many ridges, the trace follows one skeleton
/// that wobbles. `angle` is the field on a grid of `block` pixels, in [0, π).
pub(crate) fn snap_to_field(
    candidates: &mut [Candidate],
    angle: &super::grid::Grid<f32>,
    block: usize,
    tolerance: f32,
) {
    if tolerance <= 0.0 {
        return;
    }
    let b = block as f32;
    for c in candidates.iter_mut() {
        // Bilinear average of doubled-angle vectors around the minutia.
        let fx = (c.x + 0.5) / b - 0.5;
        let fy = (c.y + 0.5) / b - 0.5;
        let (x0, y0) = (fx.floor(), fy.floor());
        let (tx, ty) = (fx - x0, fy - y0);
        let (mut vx, mut vy) = (0.0f32, 0.0f32);
        for (dx, dy, wgt) in [
            (0, 0, (1.0 - tx) * (1.0 - ty)),
            (1, 0, tx * (1.0 - ty)),
            (0, 1, (1.0 - tx) * ty),
            (1, 1, tx * ty),
        ] {
            let a = angle.clamped(x0 as isize + dx, y0 as isize + dy);
            vx += wgt * (2.0 * a).cos();
            vy += wgt * (2.0 * a).sin();
        }
        if vx == 0.0 && vy == 0.0 {
            continue;
        }
        let line = 0.5 * vy.atan2(vx);
        let (a1, a2) = (
            line.rem_euclid(std::f32::consts::TAU),
            (line + std::f32::consts::PI).rem_euclid(std::f32::consts::TAU),
        );
        let diff = |a: f32| {
            let d = (a - c.angle).rem_euclid(std::f32::consts::TAU);
            d.min(std::f32::consts::TAU - d)
        };
        let (best, d) = if diff(a1) <= diff(a2) {
            (a1, diff(a1))
        } else {
            (a2, diff(a2))
        };
        if d <= tolerance {
            c.angle = best;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::grid::Grid;
    use super::super::skeleton_graph::build;
    use super::*;
    use std::f32::consts::PI;

    #[test]
    fn ending_points_away_from_ridge_and_bifurcation_along_stem() {
        // A horizontal ridge from x=5 to x=40 on row 20; at x=40 it forks into two branches going
        // right (up-right and down-right): a bifurcation whose stem lies to the left.
        let mut sk = Grid::new(80, 40, 0u8);
        for x in 5..=40 {
            sk.set(x, 20, 1);
        }
        for k in 1..=25 {
            sk.set(40 + k, 20 - k.min(8), 1);
            sk.set(40 + k, 20 + k.min(8), 1);
        }
        // Fix the branch shapes: diagonal for 8 px then horizontal.
        let g = build(&sk);
        let c = compute(&g, 10);
        let left = c
            .iter()
            .find(|m| m.kind == MinutiaKind::Ending && m.x < 10.0)
            .unwrap();
        // The left ending: ridge body to the right, so it points left (π).
        assert!((left.angle - PI).abs() < 0.1, "{}", left.angle);
        let fork = c
            .iter()
            .find(|m| m.kind == MinutiaKind::Bifurcation)
            .unwrap();
        assert!((fork.x - 40.0).abs() < 2.0);
        assert!((fork.angle - PI).abs() < 0.3, "{}", fork.angle);
    }

    #[test]
    fn directions_within_the_default_tolerance_take_the_fields_axis_and_keep_their_sense() {
        let tolerance = crate::params::ExtractParams::default().direction_snap_tolerance;
        let flow = 0.3f32; // the field's axis everywhere, in [0, π)
        let field = Grid::new(10, 10, flow);
        let at = |angle: f32| Candidate {
            x: 37.0,
            y: 41.0,
            angle: angle.rem_euclid(2.0 * PI),
            kind: MinutiaKind::Ending,
            quality: 0,
        };
        // 0.9 rad (52°) off either sense: snapped onto that sense; 1.3 rad (74°) off: a trace
        // that far from the flow is left as traced.
        let mut c = vec![at(flow + 0.9), at(flow + PI - 0.9), at(flow + 1.3)];
        snap_to_field(&mut c, &field, 8, tolerance);
        assert!((c[0].angle - flow).abs() < 1e-4, "{}", c[0].angle);
        assert!((c[1].angle - (flow + PI)).abs() < 1e-4, "{}", c[1].angle);
        assert!((c[2].angle - (flow + 1.3)).abs() < 1e-6, "{}", c[2].angle);
        // Tolerance 0 keeps every traced direction.
        let mut kept = vec![at(flow + 0.9)];
        snap_to_field(&mut kept, &field, 8, 0.0);
        assert!((kept[0].angle - (flow + 0.9)).abs() < 1e-6);
    }
}
