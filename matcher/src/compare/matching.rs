//! The comparison itself: local-structure votes, seeded alignment, pairing and score.
//!
//! 1. Every candidate edge looks up probe edges of similar shape in the probe's edge index; each
//!    match votes for the pair of minutiae the two edges start from. A minutia pair's summed
//!    votes, normalized by the sizes of both neighbourhoods, is its local similarity (how much of
//!    the two local structures agree, in the spirit of MCC's local similarity).
//! 2. The most similar local pairs are tried as seeds: each gives a rotation (the direction
//!    difference) and translation. Under it every probe minutia is paired with the nearest free
//!    candidate minutia within position and direction tolerances that grow with the distance from
//!    the seed (skin distortion). The pairing is refined once by a least-squares rigid fit.
//! 3. The score of a seed is `S · W² / (Np · Nc)`: `W` sums pair weights (½ for geometric
//!    agreement plus ½ times the local similarity, times the geometric mean of both minutiae's
//!    quality weights to the power [`crate::params::PAIR_EVIDENCE_EXPONENT`]), `Np` and `Nc`
//!    sum the quality weights of each print's minutiae inside
//!    the other print's area (convex hull plus margin) after alignment, at least
//!    [`MIN_OVERLAP_WEIGHT`], and `S = n² / (n² + h²)` for `n` pairs discounts pairings with
//!    little support (`h` = [`SCORE_HALF_SUPPORT_PAIRS`]). The best seed's score is the result,
//!    in [0, 1].

use super::geometry::{angle_diff, Rigid};
use super::prepare::{cell, to_turns, Point, PreparedTemplate};
use crate::params::{
    EDGE_ANGLE_TOLERANCE, MIN_OVERLAP_WEIGHT, OVERLAP_MARGIN, PAIR_ANGLE_TOLERANCE,
    PAIR_DISTANCE_TOLERANCE, PAIR_DISTANCE_TOLERANCE_MAX, PAIR_DISTANCE_TOLERANCE_SLOPE,
    REFINED_SEEDS, SCORE_HALF_SUPPORT_PAIRS, SEED_COUNT,
};
use std::f32::consts::TAU;

/// Per-thread working memory of [`compare`], reused so that the hot loop does not allocate once
/// it has grown to the largest templates seen.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    /// Local-structure votes, probe-major (`p * nc + c`).
    votes: Vec<f32>,
    /// Best seeds: (local similarity, probe index, candidate index).
    seeds: Vec<(f32, u8, u8)>,
    /// Possible pairs under the current alignment as sort keys: the cost's bits mapped to an
    /// order-preserving integer (the order of `f32::total_cmp`), then the probe index, then
    /// the candidate index, so that one integer sort orders them by (cost, probe, candidate).
    options: Vec<u64>,
    /// Pairs chosen under the current alignment: (probe, candidate, weight).
    pairs: Vec<(u8, u8, f32)>,
    /// Probe minutiae already paired.
    used_p: Vec<bool>,
    /// Candidate minutiae already paired.
    used_c: Vec<bool>,
}

impl Scratch {
    /// Empty scratch space; it grows on first use.
    pub fn new() -> Scratch {
        Scratch::default()
    }
}

/// Compares a probe with a candidate. Higher is more similar; the score lies in [0, 1] and is 0
/// when either template has no usable minutiae or nothing lines up. Deterministic, never panics.
pub fn compare(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    scratch: &mut Scratch,
) -> f32 {
    let (np, nc) = (probe.points.len(), candidate.points.len());
    if np == 0 || nc == 0 {
        return 0.0;
    }
    vote(probe, candidate, scratch);
    pick_seeds(probe, candidate, scratch);
    // Quick pass: rank the seeds by the summed weight of a greedy pairing.
    let mut ranked = [(f32::NEG_INFINITY, usize::MAX); REFINED_SEEDS];
    for k in 0..scratch.seeds.len() {
        let seed = scratch.seeds[k];
        let c = candidate.points[seed.2 as usize];
        let t = seed_transform(probe, candidate, seed);
        let w = quick_pair(probe, candidate, &t, (c.x, c.y), scratch);
        if let Some(at) = ranked.iter().position(|r| w > r.0) {
            ranked[at..].rotate_right(1);
            ranked[at] = (w, k);
        }
    }
    // Full pass on the best seeds: optimal-order pairing, rigid refit, pairing again, score.
    let mut best = 0.0f32;
    for &(_, k) in ranked.iter().filter(|r| r.1 != usize::MAX) {
        let seed = scratch.seeds[k];
        let c = candidate.points[seed.2 as usize];
        let anchor = (c.x, c.y);
        let t = seed_transform(probe, candidate, seed);
        pair(probe, candidate, &t, anchor, scratch);
        let refined = Rigid::fit(scratch.pairs.iter().map(|&(i, j, w)| {
            let (a, b) = (probe.points[i as usize], candidate.points[j as usize]);
            (a.x, a.y, b.x, b.y, w)
        }));
        let t = match refined {
            Some(r) if scratch.pairs.len() >= 3 => {
                pair(probe, candidate, &r, anchor, scratch);
                r
            }
            _ => t,
        };
        best = best.max(score(probe, candidate, &t, scratch));
    }
    best
}

/// The alignment a seed pair implies: rotate by the direction difference, move the probe
/// minutia onto the candidate minutia.
#[inline]
fn seed_transform(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    seed: (f32, u8, u8),
) -> Rigid {
    let (p, c) = (
        probe.points[seed.1 as usize],
        candidate.points[seed.2 as usize],
    );
    Rigid::anchored(wrap(c.dir - p.dir), p.x, p.y, c.x, c.y)
}

/// Brings an angle in (-2π, 4π) into [0, 2π) without a division.
#[inline]
fn wrap(a: f32) -> f32 {
    if a < 0.0 {
        a + TAU
    } else if a >= TAU {
        a - TAU
    } else {
        a
    }
}

/// Cell range of the candidate grid covering [v - tol, v + tol] along one axis, or `None` when
/// it misses the grid.
#[inline]
fn grid_span(v: f32, tol: f32, origin: f32, cell: f32, n: usize) -> Option<(usize, usize)> {
    let lo = (v - tol - origin) / cell;
    let hi = (v + tol - origin) / cell;
    if hi < 0.0 || lo >= n as f32 {
        return None;
    }
    // Truncation equals floor here: lo is clamped at 0 first, hi is non-negative. Clamping hi
    // to n - 1 (an integer) before truncating gives the same cell as clamping after, and both
    // values then fit a u16 (the grid has at most 64 x 64 cells), a cheaper conversion than to
    // usize.
    let last = (n - 1) as f32;
    Some((lo.max(0.0) as u16 as usize, hi.min(last) as u16 as usize))
}

/// A box around the candidate's grid beyond which no position tolerance reaches the grid, so
/// that a point outside it is skipped before its tolerance (a square root) and grid span (four
/// divisions) are computed. The margin exceeds [`PAIR_DISTANCE_TOLERANCE_MAX`] by far more than
/// any rounding, so every point skipped here is one that `grid_span` would reject.
struct GridReach {
    /// Lowest x and y that may reach the grid.
    lo: (f32, f32),
    /// Highest x and y that may reach the grid.
    hi: (f32, f32),
}

impl GridReach {
    fn of(candidate: &PreparedTemplate) -> GridReach {
        let margin = PAIR_DISTANCE_TOLERANCE_MAX + 8.0;
        let (gx, gy) = candidate.grid_origin;
        let (cols, rows) = candidate.grid_size;
        let cell = candidate.grid_cell;
        GridReach {
            lo: (gx - margin, gy - margin),
            hi: (
                gx + cols as f32 * cell + margin,
                gy + rows as f32 * cell + margin,
            ),
        }
    }

    #[inline]
    fn may_reach(&self, x: f32, y: f32) -> bool {
        (x >= self.lo.0) & (x <= self.hi.0) & (y >= self.lo.1) & (y <= self.hi.1)
    }
}

/// Position tolerance at `from_anchor` pixels from the seed.
#[inline]
fn distance_tolerance(from_anchor: f32) -> f32 {
    (PAIR_DISTANCE_TOLERANCE + PAIR_DISTANCE_TOLERANCE_SLOPE * from_anchor)
        .min(PAIR_DISTANCE_TOLERANCE_MAX)
}

/// A probe minutia moved onto the candidate by a transform, with what pairing needs to search
/// the candidate's grid around it.
struct Placed {
    /// Position on the candidate.
    x: f32,
    y: f32,
    /// Direction on the candidate.
    dir: f32,
    /// Position tolerance (grows with the distance from the seed).
    tol: f32,
    /// Grid columns and rows within `tol`.
    cols: (usize, usize),
    rows: (usize, usize),
}

/// Places probe minutia `p` under `t`; `None` when no candidate minutia can be within tolerance.
#[inline]
fn place(
    p: &Point,
    t: &Rigid,
    anchor: (f32, f32),
    reach: &GridReach,
    candidate: &PreparedTemplate,
) -> Option<Placed> {
    let (x, y) = t.apply(p.x, p.y);
    if !reach.may_reach(x, y) {
        return None;
    }
    let dir = wrap(p.dir + t.angle);
    let from_anchor = ((x - anchor.0).powi(2) + (y - anchor.1).powi(2)).sqrt();
    let tol = distance_tolerance(from_anchor);
    let (gx, gy) = candidate.grid_origin;
    let (cols, rows) = candidate.grid_size;
    let cell = candidate.grid_cell;
    Some(Placed {
        x,
        y,
        dir,
        tol,
        cols: grid_span(x, tol, gx, cell, cols)?,
        rows: grid_span(y, tol, gy, cell, rows)?,
    })
}

/// Greedy pairing in probe order (each probe minutia takes the nearest free candidate minutia
/// within tolerance); returns the summed pair weights. Cheap estimate used to rank seeds.
fn quick_pair(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    t: &Rigid,
    anchor: (f32, f32),
    s: &mut Scratch,
) -> f32 {
    let cols = candidate.grid_size.0;
    let reach = GridReach::of(candidate);
    // One flag per possible u8 index: indexing by a minutia index needs no bounds check.
    s.used_c.clear();
    s.used_c.resize(256, false);
    let used_c: &mut [bool; 256] = (&mut s.used_c[..256]).try_into().expect("256 flags");
    let mut total = 0.0f32;
    for (i, p) in probe.points.iter().enumerate() {
        let Some(Placed {
            x,
            y,
            dir,
            tol,
            cols: (c0, c1),
            rows: (r0, r1),
        }) = place(p, t, anchor, &reach, candidate)
        else {
            continue;
        };
        let mut best = (f32::MAX, usize::MAX);
        for r in r0..=r1 {
            let start = candidate.grid_cells[r * cols + c0] as usize;
            let end = candidate.grid_cells[r * cols + c1 + 1] as usize;
            for &(q, j) in &candidate.grid_points[start..end] {
                let j = j as usize;
                if used_c[j as u8 as usize] {
                    continue;
                }
                let d2 = (q.x - x).powi(2) + (q.y - y).powi(2);
                if d2 < best.0 && d2 <= tol * tol && angle_diff(q.dir, dir) <= PAIR_ANGLE_TOLERANCE
                {
                    best = (d2, j);
                }
            }
        }
        if best.1 != usize::MAX {
            used_c[best.1 as u8 as usize] = true;
            total += 0.5 + 0.5 * local_similarity(probe, candidate, &s.votes, i, best.1);
        }
    }
    total
}

/// Fills `scratch.votes` from matching edge shapes.
fn vote(probe: &PreparedTemplate, candidate: &PreparedTemplate, s: &mut Scratch) {
    let nc = candidate.points.len();
    s.votes.clear();
    s.votes.resize(probe.points.len() * nc, 0.0);
    let tol = to_turns(EDGE_ANGLE_TOLERANCE);
    let inv_tol = 1.0 / tol as f32;
    for (ce, q) in candidate.edges.iter().zip(&candidate.queries) {
        let (tl, inv_tl) = (q.tl, q.inv_tl);
        let runs = &q.runs[..q.n_runs as usize];
        let col = ce.from as usize;
        for lb in q.l0 as usize..=q.l1 as usize {
            let cells = &probe.cells[cell(lb, 0, 0)..];
            for &(a, z) in runs {
                let (start, end) = (cells[a as usize] as usize, cells[z as usize] as usize);
                for pe in &probe.edges[start..end] {
                    let dl = (pe.len - ce.len).abs();
                    if dl > tl {
                        continue;
                    }
                    let d1 = (pe.a_from.wrapping_sub(ce.a_from) as i8).unsigned_abs();
                    let d2 = (pe.a_to.wrapping_sub(ce.a_to) as i8).unsigned_abs();
                    if (d1 <= tol) & (d2 <= tol) {
                        let sim = 1.0 - (dl * inv_tl + (d1 as f32 + d2 as f32) * inv_tol) / 3.0;
                        s.votes[pe.from as usize * nc + col] += sim;
                    }
                }
            }
        }
    }
}

/// Local similarity of a probe/candidate minutia pair from its votes, in [0, 1].
#[inline]
fn local_similarity(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    votes: &[f32],
    p: usize,
    c: usize,
) -> f32 {
    let nc = candidate.points.len();
    let deg = 0.5 * (probe.degree[p] as f32 + candidate.degree[c] as f32);
    if deg <= 0.0 {
        0.0
    } else {
        (votes[p * nc + c] / deg).min(1.0)
    }
}

/// Keeps the [`SEED_COUNT`] most similar local pairs in `scratch.seeds`, best first.
fn pick_seeds(probe: &PreparedTemplate, candidate: &PreparedTemplate, s: &mut Scratch) {
    s.seeds.clear();
    let nc = candidate.points.len();
    for (p, row) in s.votes.chunks_exact(nc).enumerate() {
        let dp = probe.degree[p] as f32;
        for (c, (&v, &dc)) in row.iter().zip(&candidate.degree).enumerate() {
            if v <= 0.0 {
                continue;
            }
            // Same expression as `local_similarity`.
            let deg = 0.5 * (dp + dc as f32);
            let sim = if deg <= 0.0 { 0.0 } else { (v / deg).min(1.0) };
            if s.seeds.len() == SEED_COUNT && sim <= s.seeds[SEED_COUNT - 1].0 {
                continue;
            }
            let at = s
                .seeds
                .iter()
                .position(|x| sim > x.0)
                .unwrap_or(s.seeds.len());
            s.seeds.insert(at, (sim, p as u8, c as u8));
            s.seeds.truncate(SEED_COUNT);
        }
    }
}

/// Pairs probe and candidate minutiae one-to-one under transform `t` (cheapest first), filling
/// `scratch.pairs`.
fn pair(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    t: &Rigid,
    anchor: (f32, f32),
    s: &mut Scratch,
) {
    s.options.clear();
    let cols = candidate.grid_size.0;
    let reach = GridReach::of(candidate);
    for (i, p) in probe.points.iter().enumerate() {
        let Some(Placed {
            x,
            y,
            dir,
            tol,
            cols: (c0, c1),
            rows: (r0, r1),
        }) = place(p, t, anchor, &reach, candidate)
        else {
            continue;
        };
        for r in r0..=r1 {
            let start = candidate.grid_cells[r * cols + c0] as usize;
            let end = candidate.grid_cells[r * cols + c1 + 1] as usize;
            for &(q, j) in &candidate.grid_points[start..end] {
                let d2 = (q.x - x).powi(2) + (q.y - y).powi(2);
                if d2 > tol * tol {
                    continue;
                }
                let da = angle_diff(q.dir, dir);
                if da > PAIR_ANGLE_TOLERANCE {
                    continue;
                }
                let cost = d2.sqrt() / tol + da / PAIR_ANGLE_TOLERANCE;
                s.options
                    .push((cost_key(cost) as u64) << 16 | (i as u64) << 8 | j as u64);
            }
        }
    }
    s.options.sort_unstable();
    s.used_p.clear();
    s.used_p.resize(256, false);
    s.used_c.clear();
    s.used_c.resize(256, false);
    let used_p: &mut [bool; 256] = (&mut s.used_p[..256]).try_into().expect("256 flags");
    let used_c: &mut [bool; 256] = (&mut s.used_c[..256]).try_into().expect("256 flags");
    s.pairs.clear();
    for k in 0..s.options.len() {
        let key = s.options[k];
        let (cost, i, j) = (cost_of_key((key >> 16) as u32), (key >> 8) as u8, key as u8);
        if used_p[i as usize] || used_c[j as usize] {
            continue;
        }
        used_p[i as usize] = true;
        used_c[j as usize] = true;
        let geo = 1.0 - 0.5 * cost;
        let local = local_similarity(probe, candidate, &s.votes, i as usize, j as usize);
        s.pairs.push((i, j, 0.5 * geo + 0.5 * local));
    }
}

/// An f32 mapped to a u32 whose unsigned order is the order of `f32::total_cmp`.
#[inline]
fn cost_key(x: f32) -> u32 {
    let b = x.to_bits();
    if b & 0x8000_0000 != 0 {
        !b
    } else {
        b | 0x8000_0000
    }
}

/// Inverse of [`cost_key`].
#[inline]
fn cost_of_key(k: u32) -> f32 {
    f32::from_bits(if k & 0x8000_0000 != 0 {
        k & 0x7FFF_FFFF
    } else {
        !k
    })
}

/// Score of the current pairing under transform `t`.
fn score(probe: &PreparedTemplate, candidate: &PreparedTemplate, t: &Rigid, s: &Scratch) -> f32 {
    if s.pairs.is_empty() {
        return 0.0;
    }
    // Each pair's weight counts as evidence according to both minutiae's weights.
    let w: f32 = s
        .pairs
        .iter()
        .map(|&(i, j, w)| w * probe.evidence[i as usize] * candidate.evidence[j as usize])
        .sum();
    let np: f32 = probe
        .points
        .iter()
        .filter(|p| {
            let (x, y) = t.apply(p.x, p.y);
            candidate.hull.contains(x, y, OVERLAP_MARGIN)
        })
        .map(|p| p.weight)
        .sum();
    let nc: f32 = candidate
        .points
        .iter()
        .filter(|q| {
            let (x, y) = t.apply_inverse(q.x, q.y);
            probe.hull.contains(x, y, OVERLAP_MARGIN)
        })
        .map(|q| q.weight)
        .sum();
    let np = np.max(MIN_OVERLAP_WEIGHT);
    let nc = nc.max(MIN_OVERLAP_WEIGHT);
    let n2 = (s.pairs.len() * s.pairs.len()) as f32;
    let support = n2 / (n2 + SCORE_HALF_SUPPORT_PAIRS * SCORE_HALF_SUPPORT_PAIRS);
    (support * w * w / (np * nc)).min(1.0)
}
