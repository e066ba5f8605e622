//! Small geometry helpers shared by preparation and matching: angles, rigid transforms, hulls.

use std::f32::consts::{PI, TAU};
use wide::{f32x4, CmpEq, CmpGe, CmpLt};

/// Absolute difference of two angles in [0, 2π), folded into [0, π].
#[inline]
pub(crate) fn angle_diff(a: f32, b: f32) -> f32 {
    let d = (a - b).abs();
    if d > PI {
        TAU - d
    } else {
        d
    }
}

/// Brings any finite angle into [0, 2π).
#[inline]
pub(crate) fn normalize_angle(a: f32) -> f32 {
    let r = a.rem_euclid(TAU);
    // rem_euclid can round up to exactly TAU for tiny negative inputs.
    if r >= TAU {
        0.0
    } else {
        r
    }
}

/// Brings an angle in (-2π, 4π) into [0, 2π] without a division. There it does the float
/// operations [`normalize_angle`] does (the remainder is exact: a - 2π is exact for a in
/// [2π, 4π), Sterbenz), so the two agree bit for bit, except that a tiny negative angle whose
/// sum with 2π rounds up to 2π stays 2π here (one turn: the same 1/256 turn).
#[inline]
pub(crate) fn wrap_angle(a: f32) -> f32 {
    if a < 0.0 {
        a + TAU
    } else if a >= TAU {
        a - TAU
    } else {
        a
    }
}

/// [`wrap_angle`] of four angles, lane by lane the same float operations.
#[inline]
pub(crate) fn wrap_angle4(a: f32x4) -> f32x4 {
    let tau = f32x4::splat(TAU);
    a.cmp_lt(f32x4::ZERO)
        .blend(a + tau, a.cmp_ge(tau).blend(a - tau, a))
}

/// A rotation by `angle` about the origin followed by a translation: maps probe coordinates into
/// the candidate's frame.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rigid {
    /// Rotation angle in radians (also added to minutia directions).
    pub angle: f32,
    /// cos(angle).
    pub cos: f32,
    /// sin(angle).
    pub sin: f32,
    /// Translation along x after rotation.
    pub tx: f32,
    /// Translation along y after rotation.
    pub ty: f32,
}

impl Rigid {
    /// The transform that rotates by `angle` and moves (px, py) onto (cx, cy).
    pub fn anchored(angle: f32, px: f32, py: f32, cx: f32, cy: f32) -> Rigid {
        let (sin, cos) = angle.sin_cos();
        Rigid {
            angle,
            cos,
            sin,
            tx: cx - (cos * px - sin * py),
            ty: cy - (sin * px + cos * py),
        }
    }

    /// Applies the transform to a point.
    #[inline]
    pub fn apply(&self, x: f32, y: f32) -> (f32, f32) {
        (
            self.cos * x - self.sin * y + self.tx,
            self.sin * x + self.cos * y + self.ty,
        )
    }

    /// [`Rigid::apply`] to four points, lane by lane the same float operations.
    #[inline]
    pub fn apply4(&self, x: f32x4, y: f32x4) -> (f32x4, f32x4) {
        let (cos, sin) = (f32x4::splat(self.cos), f32x4::splat(self.sin));
        (
            cos * x - sin * y + f32x4::splat(self.tx),
            sin * x + cos * y + f32x4::splat(self.ty),
        )
    }

    /// Applies the inverse transform to a point.
    #[inline]
    pub fn apply_inverse(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = (x - self.tx, y - self.ty);
        (
            self.cos * dx + self.sin * dy,
            -self.sin * dx + self.cos * dy,
        )
    }

    /// Least-squares rigid fit (2-D Procrustes without scale) of weighted point pairs
    /// `(px, py, cx, cy, w)`. Returns `None` when the weights sum to zero.
    pub fn fit(pairs: impl Iterator<Item = (f32, f32, f32, f32, f32)> + Clone) -> Option<Rigid> {
        let (mut sw, mut spx, mut spy, mut scx, mut scy) = (0.0f32, 0.0, 0.0, 0.0, 0.0);
        for (px, py, cx, cy, w) in pairs.clone() {
            sw += w;
            spx += w * px;
            spy += w * py;
            scx += w * cx;
            scy += w * cy;
        }
        if sw <= 0.0 {
            return None;
        }
        let (mpx, mpy, mcx, mcy) = (spx / sw, spy / sw, scx / sw, scy / sw);
        let (mut dot, mut cross) = (0.0f32, 0.0f32);
        for (px, py, cx, cy, w) in pairs {
            let (ax, ay) = (px - mpx, py - mpy);
            let (bx, by) = (cx - mcx, cy - mcy);
            dot += w * (ax * bx + ay * by);
            cross += w * (ax * by - ay * bx);
        }
        let angle = cross.atan2(dot);
        Some(Rigid::anchored(normalize_angle(angle), mpx, mpy, mcx, mcy))
    }
}

/// A convex polygon (counter-clockwise vertices) used to decide which minutiae lie in the area
/// both prints cover.
#[derive(Debug, Clone, Default)]
pub(crate) struct Hull {
    /// Vertices in counter-clockwise order.
    pub vertices: Vec<(f32, f32)>,
    /// Non-degenerate edges of a hull of three or more vertices, in vertex order: start
    /// (x, y), edge vector (x, y) and length, so that `contains` needs no square root.
    edges: Vec<[f32; 5]>,
}

impl Hull {
    /// Convex hull of points (Andrew's monotone chain). Fewer than three distinct points give a
    /// degenerate hull that `contains` treats by distance to its vertices/segment.
    pub fn of(points: &[(f32, f32)]) -> Hull {
        let mut pts: Vec<(f32, f32)> = points.to_vec();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
        pts.dedup();
        if pts.len() < 3 {
            return Hull {
                vertices: pts,
                edges: Vec::new(),
            };
        }
        let cross = |o: (f32, f32), a: (f32, f32), b: (f32, f32)| {
            (a.0 - o.0) * (b.1 - o.1) - (a.1 - o.1) * (b.0 - o.0)
        };
        let mut hull: Vec<(f32, f32)> = Vec::with_capacity(pts.len() * 2);
        // Lower hull left to right, then upper hull right to left; the upper pass never pops
        // into the lower one.
        for &p in &pts {
            while hull.len() >= 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0 {
                hull.pop();
            }
            hull.push(p);
        }
        let lower = hull.len() + 1;
        for &p in pts.iter().rev().skip(1) {
            while hull.len() >= lower && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0.0
            {
                hull.pop();
            }
            hull.push(p);
        }
        hull.pop();
        let n = hull.len();
        let edges = (0..n)
            .filter_map(|i| {
                let (ax, ay) = hull[i];
                let (bx, by) = hull[(i + 1) % n];
                let (ex, ey) = (bx - ax, by - ay);
                let len = (ex * ex + ey * ey).sqrt();
                (len != 0.0).then_some([ax, ay, ex, ey, len])
            })
            .collect();
        Hull {
            vertices: hull,
            edges,
        }
    }

    /// True when (x, y) is inside the hull or within `margin` pixels of it.
    pub fn contains(&self, x: f32, y: f32, margin: f32) -> bool {
        let v = &self.vertices;
        match v.len() {
            0 => false,
            1 | 2 => v
                .iter()
                .any(|&(vx, vy)| (vx - x).powi(2) + (vy - y).powi(2) <= margin * margin),
            _ => {
                // Signed distance to every edge (`num / len`), positive on the inner (left)
                // side of a CCW edge; all edges without an early exit, which would be
                // mispredicted at a random edge for most points.
                self.edges
                    .iter()
                    .fold(true, |inside, &[ax, ay, ex, ey, len]| {
                        let num = ex * (y - ay) - ey * (x - ax);
                        inside & (num >= -margin * len)
                    })
            }
        }
    }

    /// [`Hull::contains`] of four points at once: for a hull of three or more vertices the
    /// same arithmetic lane by lane, every edge tested once for all four points.
    pub fn contains4(&self, x: [f32; 4], y: [f32; 4], margin: f32) -> [bool; 4] {
        if self.vertices.len() < 3 {
            return std::array::from_fn(|k| self.contains(x[k], y[k], margin));
        }
        let (x, y) = (f32x4::new(x), f32x4::new(y));
        let mut inside = f32x4::ZERO.cmp_eq(f32x4::ZERO);
        for &[ax, ay, ex, ey, len] in &self.edges {
            let num = f32x4::splat(ex) * (y - f32x4::splat(ay))
                - f32x4::splat(ey) * (x - f32x4::splat(ax));
            inside &= num.cmp_ge(f32x4::splat(-margin * len));
        }
        let mask = inside.move_mask();
        std::array::from_fn(|k| mask >> k & 1 != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four points at once are four points one at a time, for hulls of one, two and many
    /// vertices, points inside, outside, on the margin and not numbers.
    #[test]
    fn contains4_is_contains_lane_by_lane() {
        let ring: Vec<(f32, f32)> = (0..12)
            .map(|k| {
                let a = k as f32 * TAU / 12.0;
                (100.0 + 60.0 * a.cos(), 80.0 + 40.0 * a.sin())
            })
            .collect();
        let hulls = [
            Hull::of(&[]),
            Hull::of(&[(5.0, 5.0)]),
            Hull::of(&[(5.0, 5.0), (30.0, 10.0)]),
            Hull::of(&[(0.0, 0.0), (10.0, 0.0), (20.0, 0.0)]),
            Hull::of(&ring),
        ];
        let mut points = vec![(f32::NAN, 80.0), (100.0, f32::INFINITY), (160.0, 80.0)];
        for k in 0..2000 {
            let (a, r) = (k as f32 * 0.37, (k % 97) as f32);
            points.push((100.0 + r * a.cos(), 80.0 + 0.8 * r * a.sin()));
        }
        for hull in &hulls {
            for margin in [0.0, 8.0] {
                let mut inside = 0;
                for four in points.windows(4) {
                    let got = hull.contains4(
                        std::array::from_fn(|k| four[k].0),
                        std::array::from_fn(|k| four[k].1),
                        margin,
                    );
                    for (&(x, y), got) in four.iter().zip(got) {
                        assert_eq!(got, hull.contains(x, y, margin), "({x}, {y}) {margin}");
                        inside += got as usize;
                    }
                }
                if hull.vertices.len() > 3 {
                    assert!(inside > 500 && inside < 7000, "{inside}");
                }
            }
        }
    }

    #[test]
    fn wrap_angle_is_normalize_angle_within_its_range() {
        let mut cases = vec![-1e-9f32, -f32::MIN_POSITIVE, -0.0, 0.0, TAU, -TAU + 1e-6];
        // A dense sweep of (-2π, 4π), and the floats next to every multiple of 1/256 turn.
        cases.extend((-25_000..50_000).map(|k| k as f32 * (TAU / 25_000.0)));
        for k in -255..512 {
            let a = k as f32 * (TAU / 256.0) + TAU / 512.0;
            cases.extend([
                a,
                f32::from_bits(a.to_bits() + 1),
                f32::from_bits(a.to_bits() - 1),
            ]);
        }
        for a in cases.into_iter().filter(|a| *a > -TAU && *a < 2.0 * TAU) {
            let (w, n) = (wrap_angle(a), normalize_angle(a));
            assert!(w == n || (w == TAU && n == 0.0), "{a}: {w} against {n}");
            assert_eq!(
                super::super::prepare::to_turns(w),
                super::super::prepare::to_turns(n)
            );
        }
    }

    #[test]
    fn angle_diff_wraps() {
        assert!((angle_diff(0.1, TAU - 0.1) - 0.2).abs() < 1e-5);
        assert!((angle_diff(1.0, 2.5) - 1.5).abs() < 1e-6);
    }

    #[test]
    fn fit_recovers_rotation_and_translation() {
        let truth = Rigid::anchored(0.7, 0.0, 0.0, 30.0, -12.0);
        let pts = [(0.0, 0.0), (50.0, 10.0), (-20.0, 40.0), (33.0, -70.0)];
        let pairs: Vec<_> = pts
            .iter()
            .map(|&(x, y)| {
                let (cx, cy) = truth.apply(x, y);
                (x, y, cx, cy, 1.0)
            })
            .collect();
        let fit = Rigid::fit(pairs.iter().copied()).unwrap();
        assert!((fit.angle - 0.7).abs() < 1e-4);
        let (x, y) = fit.apply(10.0, 10.0);
        let (ex, ey) = truth.apply(10.0, 10.0);
        assert!((x - ex).abs() < 1e-3 && (y - ey).abs() < 1e-3);
        let (bx, by) = fit.apply_inverse(x, y);
        assert!((bx - 10.0).abs() < 1e-3 && (by - 10.0).abs() < 1e-3);
    }

    #[test]
    fn hull_contains_inside_and_margin() {
        let h = Hull::of(&[
            (0.0, 0.0),
            (10.0, 0.0),
            (10.0, 10.0),
            (0.0, 10.0),
            (5.0, 5.0),
        ]);
        assert_eq!(h.vertices.len(), 4);
        assert!(h.contains(5.0, 5.0, 0.0));
        assert!(!h.contains(12.0, 5.0, 1.0));
        assert!(h.contains(12.0, 5.0, 3.0));
    }
}
