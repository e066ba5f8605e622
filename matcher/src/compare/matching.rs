//! The comparison itself: local-structure votes, seeded alignment, pairing and score.
//!
//! 1. Every candidate edge looks up probe edges of similar shape in the probe's edge index; each
//!    match votes for the pair of minutiae the two edges start from. A minutia pair's summed
//!    votes, normalized by the sizes of both neighbourhoods, is its local similarity (how much of
//!    the two local structures agree, in the spirit of MCC's local similarity). A vote counts
//!    up to [`NEIGHBOUR_KIND_MISMATCH_PENALTY`] less when the minutiae its two edges end at are
//!    an ending and a bifurcation, scaled by how sure both are.
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
//! 4. A cascade cuts the search short for pairs that cannot matter: after the vote, the best of
//!    the [`CASCADE_SCREEN_SEEDS`] most similar local pairs is scored first, and a pair scoring
//!    below [`CASCADE_REJECT_BELOW`] there keeps that score (see [`compare`]).

use super::geometry::{angle_diff, wrap_angle, wrap_angle4, Hull, Rigid};
use super::prepare::{
    to_turns, window_turns, EdgeColumns, Point, PreparedTemplate, KIND_BYTE_SCALE, LANES,
};
use crate::params::{
    CASCADE_REJECT_BELOW, CASCADE_SCREEN_SEEDS, EDGE_ANGLE_TOLERANCE, KIND_MISMATCH_PENALTY,
    MIN_OVERLAP_WEIGHT, NEIGHBOUR_KIND_MISMATCH_PENALTY, OVERLAP_MARGIN, PAIR_ANGLE_TOLERANCE,
    REACH_DIRECTION_BINS, REFINED_SEEDS, SCORE_HALF_SUPPORT_PAIRS, SEED_COUNT,
};
use std::f32::consts::TAU;
use wide::{f32x4, u8x32, CmpEq, CmpGe, CmpLt};

/// Per-thread working memory of [`compare`], reused so that the hot loop does not allocate once
/// it has grown to the largest templates seen.
#[derive(Debug, Default, Clone)]
pub struct Scratch {
    /// Local-structure votes, probe-major (`p * nc + c`).
    votes: Vec<f32>,
    /// Which votes were added to, one flag per slot, laid out as `votes` (a flag indexed like
    /// the vote it belongs to costs the hit loop no index arithmetic of its own).
    voted: Vec<bool>,
    /// The slots with votes, each once, in the order of their first vote: probe index in the
    /// high byte, candidate index in the low one. Picking seeds visits only these.
    touched: Vec<u16>,
    /// How many entries of `touched` are valid.
    touched_len: usize,
    /// Seed picking: a sort key per touched slot (similarity, then the lower slot), then the
    /// keys that may be among the best.
    seed_keys: Vec<u64>,
    /// Best seeds: (local similarity, probe index, candidate index).
    seeds: Vec<(f32, u8, u8)>,
    /// Possible pairs under the current alignment as sort keys: the cost's bits mapped to an
    /// order-preserving integer (the order of `f32::total_cmp`), then the probe index, then
    /// the candidate index, so that one integer sort orders them by (cost, probe, candidate).
    /// Only a prefix is in use: the buffer keeps its length between alignments.
    options: Vec<u64>,
    /// Pairs chosen under the current alignment: (probe, candidate, weight).
    pairs: Vec<(u8, u8, f32)>,
    /// Edge pairs that passed the vote's lane filter: (probe sweep edge, candidate edge).
    hits: Vec<(u16, u16)>,
    /// Probe minutiae already paired.
    used_p: Vec<bool>,
    /// Probe minutiae placed on the candidate under the current alignment (those with partners
    /// first).
    placed: Vec<Placed>,
    /// Every probe minutia under the current alignment, with its reach key.
    moved: Vec<Moved>,
    /// Candidate minutiae already paired.
    used_c: Vec<bool>,
}

/// A probe minutia placed in the candidate's frame, and where its partners are listed.
#[derive(Debug, Default, Clone, Copy)]
struct Placed {
    /// Position in the candidate's frame.
    x: f32,
    /// Position in the candidate's frame.
    y: f32,
    /// Direction in the candidate's frame, in [0, 2π].
    dir: f32,
    /// Start of its partners in the candidate's `reach_points`.
    start: u32,
    /// End of its partners in the candidate's `reach_points`.
    end: u32,
    /// Index of the probe minutia.
    index: u32,
}

impl Placed {
    /// What pairing compares for this minutia: its probe index, its squared position
    /// tolerance (from `tol2`, the seed's row), its direction in the candidate's frame, and the
    /// candidate minutiae it may pair with.
    #[inline]
    fn view<'a>(
        &self,
        candidate: &'a PreparedTemplate,
        tol2: &[f32],
    ) -> (usize, f32, f32, &'a [u8]) {
        let i = self.index as usize;
        let near = &candidate.reach_points[self.start as usize..self.end as usize];
        (i, tol2[i], self.dir, near)
    }
}

/// A probe minutia moved into the candidate's frame, with the key of its reach list.
#[derive(Debug, Default, Clone, Copy)]
struct Moved {
    /// Position in the candidate's frame.
    x: f32,
    /// Position in the candidate's frame.
    y: f32,
    /// Direction in the candidate's frame, in [0, 2π].
    dir: f32,
    /// [`ReachGrid::key`] of the three.
    key: u32,
}

impl Scratch {
    /// Empty scratch space; it grows on first use.
    pub fn new() -> Scratch {
        Scratch::default()
    }
}

/// Compares a probe with a candidate. Higher is more similar; the score lies in [0, 1] and is 0
/// when either template has no usable minutiae or nothing lines up. Deterministic, never panics.
///
/// A cascade spends the full search only on pairs that may score high: after the vote, the
/// [`CASCADE_SCREEN_SEEDS`] most similar local pairs are quick-paired and the best of them
/// refined and scored. A pair whose screening score is below [`CASCADE_REJECT_BELOW`] is
/// rejected with that score (so every rejected pair scores below it, far below every decision
/// threshold and every set's EER point); the others go through the whole search (all
/// [`SEED_COUNT`] seeds, [`REFINED_SEEDS`] refined) and get exactly the score of
/// [`compare_exhaustive`]. On the five shared FVC sets the screen rejects 57 % of the impostor
/// pairs (8 195 of 14 400) and 9 of 1 400 genuine pairs, none of whose exhaustive score reached
/// 0.03; the rejected impostors include 104 whose exhaustive score was 0.04 or more (chance
/// alignments that only the full search finds), so the cascade also lowers a few impostor
/// scores near the sets' EER points (see `docs/matcher.md`).
pub fn compare(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    scratch: &mut Scratch,
) -> f32 {
    compare_outcome(probe, candidate, scratch).score
}

/// A comparison's score and whether the cascade's screening stage decided it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// The score of [`compare`].
    pub score: f32,
    /// True when the screen rejected the pair: `score` is then the screening score, below
    /// [`CASCADE_REJECT_BELOW`], and the full search was not run.
    pub rejected: bool,
}

/// [`compare`], also saying whether the cascade rejected the pair at its screening stage (for
/// reports on the cascade).
pub fn compare_outcome(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    scratch: &mut Scratch,
) -> Outcome {
    search(probe, candidate, scratch, true)
}

/// The comparison without the cascade: every pair gets the full search. Scores equal those of
/// [`compare`] for every pair the cascade does not reject; meant for measuring the cascade.
pub fn compare_exhaustive(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    scratch: &mut Scratch,
) -> f32 {
    search(probe, candidate, scratch, false).score
}

/// Vote, seeds, quick ranking and full pass; with `cascade`, the screen of [`compare`] first.
fn search(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    scratch: &mut Scratch,
    cascade: bool,
) -> Outcome {
    let (np, nc) = (probe.points.len(), candidate.points.len());
    if np == 0 || nc == 0 {
        return Outcome {
            score: 0.0,
            rejected: false,
        };
    }
    vote(probe, candidate, scratch);
    pick_seeds(probe, candidate, scratch);
    // Quick pass: the summed weight of a greedy pairing under every seed, the screened seeds
    // first.
    let seeds = scratch.seeds.len();
    let mut quick = [0.0f32; SEED_COUNT];
    let screened = seeds.min(CASCADE_SCREEN_SEEDS);
    for (k, w) in quick.iter_mut().enumerate().take(screened) {
        *w = quick_pair_seed(probe, candidate, k, scratch);
    }
    // The screen: the best screened seed by quick weight, refined and scored.
    let mut screen = None;
    if cascade {
        let [(_, k)] = rank::<1>(&quick[..screened]);
        if k != usize::MAX {
            let score = refine_and_score(probe, candidate, k, scratch);
            if score < CASCADE_REJECT_BELOW {
                return Outcome {
                    score,
                    rejected: true,
                };
            }
            screen = Some((k, score));
        }
    }
    for (k, w) in quick.iter_mut().enumerate().take(seeds).skip(screened) {
        *w = quick_pair_seed(probe, candidate, k, scratch);
    }
    // Full pass on the best seeds (the screened one is not scored twice).
    let mut best = 0.0f32;
    for (_, k) in rank::<REFINED_SEEDS>(&quick[..seeds]) {
        if k == usize::MAX {
            continue;
        }
        let score = match screen {
            Some((at, score)) if at == k => score,
            _ => refine_and_score(probe, candidate, k, scratch),
        };
        best = best.max(score);
    }
    Outcome {
        score: best,
        rejected: false,
    }
}

/// The `N` highest quick weights with their seed numbers, highest first, the first of equal
/// weights first; `(-inf, usize::MAX)` where there are fewer.
fn rank<const N: usize>(quick: &[f32]) -> [(f32, usize); N] {
    let mut ranked = [(f32::NEG_INFINITY, usize::MAX); N];
    for (k, &w) in quick.iter().enumerate() {
        if let Some(at) = ranked.iter().position(|r| w > r.0) {
            ranked[at..].rotate_right(1);
            ranked[at] = (w, k);
        }
    }
    ranked
}

/// Quick pairing under seed `k` of `scratch.seeds`: its summed pair weight.
fn quick_pair_seed(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    k: usize,
    scratch: &mut Scratch,
) -> f32 {
    let seed = scratch.seeds[k];
    let t = seed_transform(probe, candidate, seed);
    quick_pair(probe, candidate, &t, seed.1 as usize, scratch)
}

/// Full pass on seed `k` of `scratch.seeds`: optimal-order pairing, rigid refit, pairing
/// again, score.
fn refine_and_score(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    k: usize,
    scratch: &mut Scratch,
) -> f32 {
    let seed = scratch.seeds[k];
    let t = seed_transform(probe, candidate, seed);
    pair(probe, candidate, &t, seed.1 as usize, scratch);
    let refined = Rigid::fit(scratch.pairs.iter().map(|&(i, j, w)| {
        let (a, b) = (probe.points[i as usize], candidate.points[j as usize]);
        (a.x, a.y, b.x, b.y, w)
    }));
    let t = match refined {
        Some(r) if scratch.pairs.len() >= 3 => {
            pair(probe, candidate, &r, seed.1 as usize, scratch);
            r
        }
        _ => t,
    };
    score(probe, candidate, &t, scratch)
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
    Rigid::anchored(wrap_angle(c.dir - p.dir), p.x, p.y, c.x, c.y)
}

/// The geometry of a candidate's reach table, copied out for a loop over many points.
#[derive(Debug, Clone, Copy)]
struct ReachGrid {
    /// Grid origin.
    x0: f32,
    /// Grid origin.
    y0: f32,
    /// 1 / cell side.
    inv_cell: f32,
    /// Columns, as a float for the bounds test.
    cols_f: f32,
    /// Rows, as a float for the bounds test.
    rows_f: f32,
    /// Columns.
    cols: i32,
    /// The table's empty key.
    empty: i32,
}

impl ReachGrid {
    /// The reach grid of a candidate.
    fn of(candidate: &PreparedTemplate) -> ReachGrid {
        ReachGrid {
            x0: candidate.reach_origin.0,
            y0: candidate.reach_origin.1,
            inv_cell: candidate.reach_inv_cell,
            cols_f: candidate.reach_size.0,
            rows_f: candidate.reach_size.1,
            cols: candidate.reach_cols as i32,
            empty: (candidate.reach_cells.len() - 2) as i32,
        }
    }

    /// The key (cell, direction bin) of the reach table that lists the candidate minutiae a
    /// point at (x, y) of the candidate's frame with direction `dir` (in [0, 2π)) may pair
    /// with; outside the grid (or for a non-finite point) the table's empty key. Found without
    /// a branch, in 32-bit arithmetic (the grid is at most `REACH_MAX_CELLS` square) that the
    /// compiler can vectorize.
    #[inline]
    fn key(&self, x: f32, y: f32, dir: f32) -> u32 {
        let fx = (x - self.x0) * self.inv_cell;
        let fy = (y - self.y0) * self.inv_cell;
        let inside = (fx >= 0.0) & (fx < self.cols_f) & (fy >= 0.0) & (fy < self.rows_f);
        // Saturating conversions: meaningless but harmless outside the grid.
        let cell = (fy as i32).wrapping_mul(self.cols).wrapping_add(fx as i32);
        let bins = REACH_DIRECTION_BINS as i32;
        let bin = ((dir * (REACH_DIRECTION_BINS as f32 / TAU)) as i32).clamp(0, bins - 1);
        let key = cell.wrapping_mul(bins).wrapping_add(bin);
        (if inside { key } else { self.empty }) as u32
    }

    /// A probe minutia moved by `t` ([`Rigid::apply`], [`wrap_angle`]), with its key.
    #[inline]
    fn moved(&self, t: &Rigid, p: &Point) -> Moved {
        let (x, y) = t.apply(p.x, p.y);
        let dir = wrap_angle(p.dir + t.angle);
        let key = self.key(x, y, dir);
        Moved { x, y, dir, key }
    }

    /// [`ReachGrid::moved`] of four probe minutiae at once: the same float operations, lane by
    /// lane. The key is assembled in floats, exact: every part is a whole number far below 2²⁴
    /// where it counts, and a lane outside the grid takes the empty key whatever it held.
    #[inline]
    fn moved4(&self, t: &Rigid, points: &[Point; 4]) -> [Moved; 4] {
        let lane = |f: fn(&Point) -> f32| f32x4::new(points.map(|p| f(&p)));
        let (x, y, dir) = (lane(|p| p.x), lane(|p| p.y), lane(|p| p.dir));
        let (tx, ty) = t.apply4(x, y);
        let dir = wrap_angle4(dir + f32x4::splat(t.angle));
        let zero = f32x4::ZERO;
        let fx = (tx - f32x4::splat(self.x0)) * f32x4::splat(self.inv_cell);
        let fy = (ty - f32x4::splat(self.y0)) * f32x4::splat(self.inv_cell);
        let inside = fx.cmp_ge(zero)
            & fx.cmp_lt(f32x4::splat(self.cols_f))
            & fy.cmp_ge(zero)
            & fy.cmp_lt(f32x4::splat(self.rows_f));
        let whole = |v: f32x4| v.fast_trunc_int().round_float();
        // `as i32` then a clamp to the bins, as in `key`: NaN and below 0 give bin 0.
        let bins = REACH_DIRECTION_BINS as f32;
        let bin = (dir * f32x4::splat(REACH_DIRECTION_BINS as f32 / TAU))
            .max(zero)
            .min(f32x4::splat(bins - 1.0));
        let key = (whole(fy) * f32x4::splat(self.cols as f32) + whole(fx)) * f32x4::splat(bins)
            + whole(bin);
        let key = inside.blend(key, f32x4::splat(self.empty as f32));
        let key = key.fast_trunc_int().to_array();
        let (x, y, dir) = (tx.to_array(), ty.to_array(), dir.to_array());
        std::array::from_fn(|k| Moved {
            x: x[k],
            y: y[k],
            dir: dir[k],
            key: key[k] as u32,
        })
    }
}

/// Squared position tolerances of every probe minutia for an alignment seeded at probe minutia
/// `seed`.
#[inline]
fn tolerances(probe: &PreparedTemplate, seed: usize) -> &[f32] {
    let n = probe.points.len();
    &probe.seed_tolerance2[seed * n..(seed + 1) * n]
}

/// Places the probe minutiae on the candidate under transform `t`: fills the start of `placed`
/// with those that have partners, in probe order, and returns their number. Free of branches:
/// whether a minutia lands on the candidate is a coin toss.
fn place(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    t: &Rigid,
    placed: &mut Vec<Placed>,
    moved: &mut Vec<Moved>,
) -> usize {
    let np = probe.points.len();
    placed.resize(np, Placed::default());
    moved.resize(np, Moved::default());
    // Moved and keyed first (a loop of arithmetic only, four minutiae at a time), then the
    // lists the keys point to.
    let grid = ReachGrid::of(candidate);
    let (points, rest) = probe.points.as_chunks::<4>();
    let (fours, tail) = moved.as_chunks_mut::<4>();
    for (p, m) in points.iter().zip(fours) {
        *m = grid.moved4(t, p);
    }
    for (p, m) in rest.iter().zip(tail) {
        *m = grid.moved(t, p);
    }
    let mut n = 0;
    for (i, m) in moved.iter().enumerate() {
        let key = m.key as usize;
        let (start, end) = (
            candidate.reach_cells[key] as u32,
            candidate.reach_cells[key + 1] as u32,
        );
        placed[n] = Placed {
            x: m.x,
            y: m.y,
            dir: m.dir,
            start,
            end,
            index: i as u32,
        };
        n += (start < end) as usize;
    }
    n
}

/// Greedy pairing in probe order (each probe minutia takes the nearest free candidate minutia
/// within tolerance); returns the summed pair weights. Cheap estimate used to rank seeds.
fn quick_pair(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    t: &Rigid,
    seed: usize,
    s: &mut Scratch,
) -> f32 {
    // One flag per possible u8 index: indexing by a minutia index needs no bounds check.
    s.used_c.clear();
    s.used_c.resize(256, false);
    let used_c: &mut [bool; 256] = (&mut s.used_c[..256]).try_into().expect("256 flags");
    let n = place(probe, candidate, t, &mut s.placed, &mut s.moved);
    let tol2 = tolerances(probe, seed);
    let mut total = 0.0f32;
    for placed in &s.placed[..n] {
        let (x, y) = (placed.x, placed.y);
        let (i, tol2, dir, near) = placed.view(candidate, tol2);
        // The nearest free partner within both tolerances, the first of equals: the least
        // (squared distance's bits, index) of the eligible ones as one integer (a distance is
        // not negative, so its bits order as it does, and a list is in index order), all ones
        // for the others. A minimum without a branch: which partner wins is a coin toss.
        let mut best = u64::MAX;
        for &j in near {
            let q = &candidate.points[j as usize];
            let d2 = (q.x - x).powi(2) + (q.y - y).powi(2);
            let eligible = !used_c[j as usize]
                & (d2 < f32::MAX)
                & (d2 <= tol2)
                & (angle_diff(q.dir, dir) <= PAIR_ANGLE_TOLERANCE);
            let key = u64::from(d2.to_bits()) << 8 | u64::from(j);
            best = best.min(std::hint::select_unpredictable(eligible, key, u64::MAX));
        }
        if best != u64::MAX {
            let j = best as u8 as usize;
            used_c[j] = true;
            total += 0.5 + 0.5 * local_similarity(probe, candidate, &s.votes, i, j);
        }
    }
    total
}

/// Fills `scratch.votes` from matching edge shapes: every candidate edge sweeps the window of
/// probe edges whose `a_from` lies within the angle tolerance of its own (one run of the
/// probe's edges sorted by `a_from`), [`LANES`] edges at a time.
fn vote(probe: &PreparedTemplate, candidate: &PreparedTemplate, s: &mut Scratch) {
    let nc = candidate.points.len();
    let slots = probe.points.len() * nc;
    s.votes.clear();
    s.votes.resize(slots, 0.0);
    s.voted.clear();
    s.voted.resize(slots, false);
    // Every slot is listed at most once; the extra entry takes the unconditional write that
    // follows a full list.
    s.touched.resize(slots + 1, 0);
    let mut touched = 0;
    let tol = to_turns(EDGE_ANGLE_TOLERANCE);
    let inv_tol = 1.0 / tol as f32;
    let cols = &probe.columns;
    let edges = probe.edge_count();
    let from_start = &probe.from_start[..257];
    let window = window_turns();
    // First every query's passing probe edges into one list, without a branch per edge (how
    // many pass is a coin toss), then that list in one loop.
    let mut listed = 0;
    for (qi, (ce, q)) in candidate.edges().iter().zip(&candidate.queries).enumerate() {
        // Lane filter: lengths in whole pixels (rounded down) within `tl` (rounded down) plus
        // one pixel, `a_to` exact; `a_from` needs no test. A superset of the exact test below:
        // two lengths within `tl` have whole parts less than `tl + 1` apart, so at most
        // `floor(tl) + 1`.
        let filter = [
            LaneRange::new(ce.len as u8, q.tl as u8 + 1),
            LaneRange::new(ce.a_to, tol),
        ];
        // The window [a_from - tol, a_from + tol]; past a full turn it continues into the
        // repeated edges after `edges`.
        let lo = ce.a_from.wrapping_sub(tol) as usize;
        let hi = lo + window;
        let start = from_start[lo] as usize;
        let end = if hi <= 256 {
            from_start[hi] as usize
        } else {
            edges + from_start[hi - 256] as usize
        };
        // Two lane groups at a time: a window rarely holds more than 64 edges.
        let mut at = start;
        while at < end {
            let first = lane_hits(&filter, cols, at, end - at);
            let second = lane_hits(&filter, cols, at + LANES, (end - at).saturating_sub(LANES));
            let mut hits = first | second << LANES;
            let count = hits.count_ones() as usize;
            if s.hits.len() < listed + 2 * LANES {
                s.hits.resize(listed + 2 * LANES, (0, 0));
            }
            // The group's room, once: the writes below need no bounds check of their own.
            let room: &mut [(u16, u16); 2 * LANES] = (&mut s.hits[listed..listed + 2 * LANES])
                .try_into()
                .expect("room for two lane groups");
            // The first eight unconditionally (entries past `count` are overwritten later),
            // the rest, rarely, one by one.
            for slot in &mut room[..8] {
                *slot = ((at + hits.trailing_zeros() as usize) as u16, qi as u16);
                hits &= hits.wrapping_sub(1);
            }
            for slot in &mut room[8..] {
                if hits == 0 {
                    break;
                }
                *slot = ((at + hits.trailing_zeros() as usize) as u16, qi as u16);
                hits &= hits - 1;
            }
            listed += count;
            at += 2 * LANES;
        }
    }
    let (cand_edges, queries) = (candidate.edges(), &candidate.queries[..]);
    let to_kind_penalty = NEIGHBOUR_KIND_MISMATCH_PENALTY / (KIND_BYTE_SCALE * KIND_BYTE_SCALE);
    // Each list borrowed once: a store into one cannot be taken to move another's buffer.
    let (votes, voted, touched_slots) = (
        &mut s.votes[..slots],
        &mut s.voted[..slots],
        &mut s.touched[..],
    );
    for &(k, qi) in &s.hits[..listed] {
        let (ce, q, pe) = (
            &cand_edges[qi as usize],
            &queries[qi as usize],
            &probe.sweep[k as usize],
        );
        let col = ce.from as usize;
        let dl = (pe.len - ce.len).abs();
        // Branch-free: a pair outside the exact length tolerance adds zero and sets no bit.
        let pass = dl <= q.tl;
        let d1 = (pe.a_from.wrapping_sub(ce.a_from) as i8).unsigned_abs();
        let d2 = (pe.a_to.wrapping_sub(ce.a_to) as i8).unsigned_abs();
        let sim = 1.0 - (dl * q.inv_tl + (d1 as f32 + d2 as f32) * inv_tol) / 3.0;
        // Neighbours of different kinds (a negative product) cost the vote up to the penalty;
        // the product in integers, exact, as one conversion.
        let kinds = (i32::from(pe.to_kind) * i32::from(ce.to_kind)).min(0) as f32;
        let sim = sim * (1.0 + to_kind_penalty * kinds);
        let slot = pe.from as usize * nc + col;
        votes[slot] += if pass { sim } else { 0.0 };
        // Listed on its first vote, without a branch.
        touched_slots[touched] = (pe.from as u16) << 8 | col as u16;
        touched += (pass & !voted[slot]) as usize;
        voted[slot] |= pass;
    }
    s.touched_len = touched;
}

/// A test `|x - centre| <= tolerance` (wrapping) of [`LANES`] bytes at once, as
/// `min(x + (tolerance - centre), 2 · tolerance) == x + (tolerance - centre)`: an addition, a
/// minimum and a comparison per group (SSE2 on every x86-64, AVX2 where compiled for it; the
/// `wide` crate falls back to plain code elsewhere).
#[derive(Debug, Clone, Copy)]
struct LaneRange {
    /// `tolerance - centre` in every lane.
    add: u8x32,
    /// `2 · tolerance` in every lane.
    span: u8x32,
}

impl LaneRange {
    /// The test of `centre` ± `tolerance` (`tolerance` < 128).
    fn new(centre: u8, tolerance: u8) -> LaneRange {
        debug_assert!(tolerance < 128);
        LaneRange {
            add: u8x32::splat(tolerance.wrapping_sub(centre)),
            span: u8x32::splat(2 * tolerance),
        }
    }

    /// All ones in every lane of `x` that passes, zero in the others.
    #[inline]
    fn test(&self, x: u8x32) -> u8x32 {
        let y = x + self.add;
        y.min(self.span).cmp_eq(y)
    }
}

/// Which of the [`LANES`] sweep edges from `at` pass both lane tests (the first `valid` of them
/// only), one bit per edge, the first edge in the lowest bit.
#[inline]
fn lane_hits(filter: &[LaneRange; 2], cols: &EdgeColumns, at: usize, valid: usize) -> u64 {
    let lanes = |v: &[u8]| u8x32::new(v[at..at + LANES].try_into().expect("padded columns"));
    let pass = filter[0].test(lanes(&cols.len)) & filter[1].test(lanes(&cols.a_to));
    (pass.move_mask() as u32 as u64) & ((1u64 << valid.min(LANES)) - 1)
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
    let deg = probe.half_degree[p] + candidate.half_degree[c];
    if deg <= 0.0 {
        0.0
    } else {
        (votes[p * nc + c] / deg).min(1.0)
    }
}

/// Histogram bins of local similarity used to find the seeds without sorting every slot.
const SEED_BINS: usize = 256;

/// Bits of an `f32` below the histogram bin: 5 mantissa bits remain, 32 bins per octave (bins
/// of 1/64 between ½ and 1, finer below).
const SEED_BIN_SHIFT: u32 = 18;

/// The bin of similarity 1.0 is the last: similarities in [0, 1] have bits at most those of
/// 1.0, and [`SEED_BINS`] - 1 bins lie below it (8 octaves, down to 1/256; less is bin 0).
const SEED_BIN_BASE: u32 = (1.0f32.to_bits() >> SEED_BIN_SHIFT) - (SEED_BINS as u32 - 1);

/// The histogram bin of a local similarity in [0, 1], from its bits: the order of non-negative
/// floats is the order of their bits, so the bins are monotone in the similarity and the slots
/// from a bin up are those whose sort key is at least [`seed_key_floor`] (no float-to-integer
/// conversion in the loops over every slot).
#[inline]
fn seed_bin(sim_bits: u32) -> usize {
    (sim_bits >> SEED_BIN_SHIFT).saturating_sub(SEED_BIN_BASE) as usize
}

/// The lowest seed sort key (similarity bits above 16 slot bits) of a useful slot in bin
/// `lowest` or above.
#[inline]
fn seed_key_floor(lowest: usize) -> u64 {
    if lowest == 0 {
        1
    } else {
        u64::from(lowest as u32 + SEED_BIN_BASE) << (SEED_BIN_SHIFT + 16)
    }
}

/// Keeps the [`SEED_COUNT`] most similar local pairs in `scratch.seeds`, best first, the
/// lower (probe, candidate) index first among equals. A histogram of the similarities finds
/// the bin the last seed falls in; only the slots from that bin up are sorted.
fn pick_seeds(probe: &PreparedTemplate, candidate: &PreparedTemplate, s: &mut Scratch) {
    s.seeds.clear();
    let nc = candidate.points.len();
    let touched = &s.touched[..s.touched_len];
    s.seed_keys.resize(touched.len(), 0);
    let mut bins = [0u16; SEED_BINS];
    let votes = &s.votes[..];
    for (key, &slot) in s.seed_keys.iter_mut().zip(touched) {
        let (p, c) = ((slot >> 8) as usize, (slot & 0xFF) as usize);
        let v = votes[p * nc + c];
        // Same expression as `local_similarity`.
        let deg = probe.half_degree[p] + candidate.half_degree[c];
        let sim = if deg <= 0.0 { 0.0 } else { (v / deg).min(1.0) };
        let useful = v > 0.0;
        // Higher similarity first, then the lower slot.
        *key = if useful {
            (sim.to_bits() as u64) << 16 | (0xFFFF - slot) as u64
        } else {
            0
        };
        // Bin 0 for a useless slot (key 0), which adds nothing.
        bins[seed_bin((*key >> 16) as u32)] += useful as u16;
    }
    let mut lowest = SEED_BINS;
    let mut above = 0;
    while lowest > 0 && above < SEED_COUNT {
        lowest -= 1;
        above += bins[lowest] as usize;
    }
    let floor = seed_key_floor(lowest);
    let mut kept = 0;
    let keys = &mut s.seed_keys[..touched.len()];
    for k in 0..keys.len() {
        let key = keys[k];
        keys[kept] = key;
        kept += (key >= floor) as usize;
    }
    let best = &mut s.seed_keys[..kept];
    best.sort_unstable_by(|a, b| b.cmp(a));
    s.seeds.extend(best.iter().take(SEED_COUNT).map(|&key| {
        let slot = 0xFFFF - (key & 0xFFFF) as u16;
        (
            f32::from_bits((key >> 16) as u32),
            (slot >> 8) as u8,
            slot as u8,
        )
    }));
}

/// Pairs probe and candidate minutiae one-to-one under transform `t` (cheapest first), filling
/// `scratch.pairs`; `seed` is the probe minutia the alignment was seeded at.
fn pair(
    probe: &PreparedTemplate,
    candidate: &PreparedTemplate,
    t: &Rigid,
    seed: usize,
    s: &mut Scratch,
) {
    let placed = place(probe, candidate, t, &mut s.placed, &mut s.moved);
    let tol2 = tolerances(probe, seed);
    // Room for every partner of every placed minutia, made once: growing it minutia by
    // minutia was a branch taken at random.
    let partners: usize = s.placed[..placed]
        .iter()
        .map(|p| (p.end - p.start) as usize)
        .sum();
    if s.options.len() < partners {
        s.options.resize(partners, 0);
    }
    let mut n = 0;
    for k in 0..placed {
        let (x, y) = (s.placed[k].x, s.placed[k].y);
        let (i, tol2, dir, near) = s.placed[k].view(candidate, tol2);
        let tol = tol2.sqrt();
        // Branch-free: every partner is written, and kept (counted) when within tolerances.
        for &j in near {
            let q = &candidate.points[j as usize];
            let d2 = (q.x - x).powi(2) + (q.y - y).powi(2);
            let da = angle_diff(q.dir, dir);
            let cost = d2.sqrt() / tol + da / PAIR_ANGLE_TOLERANCE;
            s.options[n] = (cost_key(cost) as u64) << 16 | (i as u64) << 8 | j as u64;
            n += ((d2 <= tol2) & (da <= PAIR_ANGLE_TOLERANCE)) as usize;
        }
    }
    let options = &mut s.options[..n];
    options.sort_unstable();
    s.used_p.clear();
    s.used_p.resize(256, false);
    s.used_c.clear();
    s.used_c.resize(256, false);
    let used_p: &mut [bool; 256] = (&mut s.used_p[..256]).try_into().expect("256 flags");
    let used_c: &mut [bool; 256] = (&mut s.used_c[..256]).try_into().expect("256 flags");
    s.pairs.clear();
    for k in 0..n {
        let key = s.options[k];
        let (cost, i, j) = (cost_of_key((key >> 16) as u32), (key >> 8) as u8, key as u8);
        if used_p[i as usize] || used_c[j as usize] {
            continue;
        }
        used_p[i as usize] = true;
        used_c[j as usize] = true;
        let geo = 1.0 - 0.5 * cost;
        let local = local_similarity(probe, candidate, &s.votes, i as usize, j as usize);
        // Kinds that disagree (a negative product) cost the pair up to the penalty.
        let kinds = probe.kind_trust[i as usize] * candidate.kind_trust[j as usize];
        let kind = 1.0 - KIND_MISMATCH_PENALTY * (-kinds).max(0.0);
        s.pairs.push((i, j, (0.5 * geo + 0.5 * local) * kind));
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
    let np = overlap_weight(&probe.points, &candidate.hull, |x, y| t.apply(x, y));
    let nc = overlap_weight(&candidate.points, &probe.hull, |x, y| t.apply_inverse(x, y));
    let np = np.max(MIN_OVERLAP_WEIGHT);
    let nc = nc.max(MIN_OVERLAP_WEIGHT);
    let n2 = (s.pairs.len() * s.pairs.len()) as f32;
    let support = n2 / (n2 + SCORE_HALF_SUPPORT_PAIRS * SCORE_HALF_SUPPORT_PAIRS);
    (support * w * w / (np * nc)).min(1.0)
}

/// Summed weights of the `points` that lie inside `hull` (with [`OVERLAP_MARGIN`]) once moved
/// by `to_frame`, in point order. Weights times 0 or 1, without a branch: whether a point is
/// inside is a coin toss.
fn overlap_weight(points: &[Point], hull: &Hull, to_frame: impl Fn(f32, f32) -> (f32, f32)) -> f32 {
    points
        .chunks(4)
        .flat_map(|four| {
            let (mut x, mut y) = ([0.0f32; 4], [0.0f32; 4]);
            for (k, p) in four.iter().enumerate() {
                (x[k], y[k]) = to_frame(p.x, p.y);
            }
            let inside = hull.contains4(x, y, OVERLAP_MARGIN);
            four.iter()
                .zip(inside)
                .map(|(p, inside)| p.weight * inside as u32 as f32)
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::prepare;
    use crate::params::{CASCADE_REJECT_BELOW, PAIR_DISTANCE_TOLERANCE_MAX};
    use crate::{Fingerprint, Minutia, MinutiaKind};

    /// The candidate minutiae listed for a point with a direction (in [0, 2π)).
    fn partners(candidate: &PreparedTemplate, x: f32, y: f32, dir: f32) -> &[u8] {
        let key = ReachGrid::of(candidate).key(x, y, dir) as usize;
        let (start, end) = (candidate.reach_cells[key], candidate.reach_cells[key + 1]);
        &candidate.reach_points[start as usize..end as usize]
    }

    /// A template of `n` minutiae spread over `spread` pixels (a fixed pseudo-random pattern).
    fn template(n: usize, spread: f32, seed: u32) -> Fingerprint {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32
        };
        Fingerprint {
            width: spread as u32,
            height: spread as u32,
            dpi_x: 500,
            dpi_y: 500,
            quality: 80,
            minutiae: (0..n)
                .map(|_| Minutia {
                    x: next() * spread,
                    y: next() * spread,
                    direction: next() * TAU,
                    kind: MinutiaKind::Ending,
                    quality: 60,
                })
                .collect(),
        }
    }

    /// `fp` with every third minutia a bifurcation and every other one of quality 30 (the
    /// others as they were), so that kinds and their sureness differ between neighbours.
    fn mixed_kinds(mut fp: Fingerprint) -> Fingerprint {
        for (k, m) in fp.minutiae.iter_mut().enumerate() {
            if k % 3 == 0 {
                m.kind = MinutiaKind::Bifurcation;
            }
            if k % 2 == 0 {
                m.quality = 30;
            }
        }
        fp
    }

    /// A lattice of `side x side` minutiae `step` pixels apart, all with one direction: every
    /// minutia's edges look alike, so a vote query meets windows of more than 64 edges, more
    /// than eight passing edges, and many equal local similarities.
    fn lattice(side: usize, step: f32) -> Fingerprint {
        let mut fp = template(0, side as f32 * step + step, 0);
        fp.minutiae = (0..side * side)
            .map(|k| Minutia {
                x: step * (1 + k % side) as f32,
                y: step * (1 + k / side) as f32,
                direction: 1.0,
                kind: MinutiaKind::Bifurcation,
                quality: 60,
            })
            .collect();
        fp
    }

    /// Four minutiae moved at once are the four moved one at a time (positions, directions and
    /// keys bit for bit), for points inside, outside and on the edges of the grid, directions on
    /// and next to the bin ends and a full turn, and points that are not numbers.
    #[test]
    fn moved4_is_moved_lane_by_lane() {
        let candidate = prepare(&template(40, 300.0, 7));
        let grid = ReachGrid::of(&candidate);
        let (x0, y0) = candidate.reach_origin;
        let cell = 1.0 / candidate.reach_inv_cell;
        let (w, h) = (candidate.reach_size.0 * cell, candidate.reach_size.1 * cell);
        let mut xs = vec![
            x0,
            x0 + w,
            x0 - 0.01,
            x0 + w - 0.01,
            f32::NAN,
            f32::INFINITY,
        ];
        let mut ys = vec![y0, y0 + h, y0 - 0.01, y0 + h - 0.01, -f32::INFINITY, 1e30];
        let mut dirs: Vec<f32> = (0..=16).map(|k| k as f32 * TAU / 16.0).collect();
        for k in 0..=8 {
            let end = k as f32 * TAU / 8.0;
            dirs.extend([
                f32::from_bits(end.to_bits() + 1),
                f32::from_bits(end.to_bits().max(1) - 1),
            ]);
        }
        dirs.extend([-1e-7, TAU - 1e-7, f32::NAN]);
        let mut state = 11u32;
        let mut next = move || {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            (state >> 8) as f32 / (1u32 << 24) as f32
        };
        for _ in 0..60 {
            xs.push(x0 - 40.0 + next() * (w + 80.0));
            ys.push(y0 - 40.0 + next() * (h + 80.0));
            dirs.push(next() * TAU);
        }
        // Every direction at every position.
        let points: Vec<Point> = (0..xs.len() * dirs.len())
            .map(|k| Point {
                x: xs[k / dirs.len()],
                y: ys[k / dirs.len()],
                dir: dirs[k % dirs.len()],
                weight: 1.0,
            })
            .collect();
        let (mut inside, mut lanes) = (0, 0);
        for angle in [0.0, 0.3, -2.0, 3.1, TAU - 1e-6] {
            for shift in [(0.0, 0.0), (13.5, -7.25)] {
                let t = Rigid::anchored(angle, 0.0, 0.0, shift.0, shift.1);
                for four in points.windows(4) {
                    let four: &[Point; 4] = four.try_into().unwrap();
                    for (p, got) in four.iter().zip(grid.moved4(&t, four)) {
                        let want = grid.moved(&t, p);
                        let same =
                            |a: f32, b: f32| a.to_bits() == b.to_bits() || a.is_nan() && b.is_nan();
                        assert!(
                            same(got.x, want.x) && same(got.y, want.y) && same(got.dir, want.dir),
                            "{p:?} {t:?}: {got:?} against {want:?}"
                        );
                        assert_eq!(got.key, want.key, "{p:?} {t:?}");
                        inside += (got.key != grid.empty as u32) as usize;
                        lanes += 1;
                    }
                }
            }
        }
        // Both kinds of lanes were met.
        assert!(
            inside > lanes / 10 && inside < lanes * 9 / 10,
            "{inside} of {lanes}"
        );
    }

    /// The lane range test agrees with the plain one for every byte, centre and tolerance used,
    /// in every lane (whatever the other lanes hold).
    #[test]
    fn lane_range_tests_every_byte_like_the_plain_test() {
        for tolerance in [0u8, 1, 14, 21, 63, 127] {
            for centre in 0..=255u8 {
                let range = LaneRange::new(centre, tolerance);
                for x in 0..=255u8 {
                    let plain = (x.wrapping_sub(centre) as i8).unsigned_abs() <= tolerance;
                    for lane in [0, 5, 16, 31] {
                        let mut bytes: [u8; LANES] =
                            std::array::from_fn(|k| (k as u8).wrapping_mul(97) ^ 0x5A);
                        bytes[lane] = x;
                        let mask = range.test(u8x32::new(bytes)).move_mask() as u32;
                        let bit = mask >> lane & 1 == 1;
                        assert_eq!(bit, plain, "x {x} centre {centre} tolerance {tolerance}");
                    }
                }
            }
        }
    }

    /// `lane_hits` reports exactly the edges of the group that pass both tests, and none past
    /// `valid`.
    #[test]
    fn lane_hits_report_passing_edges_of_the_valid_prefix() {
        let len: Vec<u8> = (0..2 * LANES).map(|k| (k * 7 % 64) as u8).collect();
        let a_to: Vec<u8> = (0..2 * LANES).map(|k| (k * 13) as u8).collect();
        let cols = EdgeColumns { len, a_to };
        let filter = [LaneRange::new(30, 10), LaneRange::new(100, 40)];
        for (at, valid) in [(0, LANES), (0, 5), (3, 20), (LANES, LANES)] {
            let hits = lane_hits(&filter, &cols, at, valid);
            for k in 0..LANES {
                let pass = k < valid
                    && (cols.len[at + k].wrapping_sub(30) as i8).unsigned_abs() <= 10
                    && (cols.a_to[at + k].wrapping_sub(100) as i8).unsigned_abs() <= 40;
                assert_eq!(hits >> k & 1 == 1, pass, "at {at} valid {valid} edge {k}");
            }
        }
    }

    /// The indexed, filtered vote finds the same edge matches as testing every pair of edges
    /// (sums equal up to the order of additions).
    #[test]
    fn votes_equal_testing_every_pair_of_edges() {
        let tol = to_turns(EDGE_ANGLE_TOLERANCE);
        let pairs = [
            (40, 300.0, 1),
            (128, 500.0, 2),
            (60, 200.0, 3),
            (9, 100.0, 4),
        ]
        .map(|(n, spread, seed)| {
            (
                prepare(&mixed_kinds(template(n, spread, seed))),
                prepare(&mixed_kinds(template(n + 7, spread, seed + 20))),
            )
        });
        let lattice = (prepare(&lattice(11, 12.0)), prepare(&lattice(9, 13.0)));
        // The widest window and the most passing edges of one query: the cases include the
        // vote's rarer paths (more than two lane groups, more than eight hits).
        let (mut widest, mut most_passing) = (0, 0);
        for (probe, candidate) in pairs.iter().chain([&lattice]) {
            for (p, c) in [(probe, candidate), (candidate, probe), (probe, probe)] {
                let mut s = Scratch::new();
                vote(p, c, &mut s);
                let nc = c.points.len();
                let mut expected = vec![0.0f32; p.points.len() * nc];
                for (ce, q) in c.edges().iter().zip(&c.queries) {
                    let (mut in_window, mut passing) = (0, 0);
                    for pe in p.edges() {
                        let dl = (pe.len - ce.len).abs();
                        let d1 = (pe.a_from.wrapping_sub(ce.a_from) as i8).unsigned_abs();
                        let d2 = (pe.a_to.wrapping_sub(ce.a_to) as i8).unsigned_abs();
                        in_window += (d1 <= tol) as usize;
                        if dl <= q.tl && d1 <= tol && d2 <= tol {
                            passing += 1;
                            let angles = (d1 as f32 + d2 as f32) / tol as f32;
                            let sim = 1.0 - (dl * q.inv_tl + angles) / 3.0;
                            let kinds = pe.to_kind as f32 * ce.to_kind as f32
                                / (KIND_BYTE_SCALE * KIND_BYTE_SCALE);
                            let sim = if kinds < 0.0 {
                                sim * (1.0 + NEIGHBOUR_KIND_MISMATCH_PENALTY * kinds)
                            } else {
                                sim
                            };
                            expected[pe.from as usize * nc + ce.from as usize] += sim;
                        }
                    }
                    widest = widest.max(in_window);
                    most_passing = most_passing.max(passing);
                }
                assert!(expected.iter().any(|&v| v > 0.0));
                for (k, (&got, &want)) in s.votes.iter().zip(&expected).enumerate() {
                    assert!((got - want).abs() <= 1e-4, "slot {k}: {got} vs {want}");
                    assert_eq!(got > 0.0, want > 0.0, "slot {k}");
                }
            }
        }
        assert!(
            widest > 2 * LANES && most_passing > 8,
            "{widest} {most_passing}"
        );
    }

    /// The seeds are the [`SEED_COUNT`] slots of highest local similarity (the lower slot first
    /// among equals), as a sort of every voted slot finds them: on random templates, on
    /// lattices (many equal similarities) and on templates with fewer voted slots than seeds.
    #[test]
    fn seeds_are_the_most_similar_slots() {
        let cases = [
            (template(40, 300.0, 1), template(47, 300.0, 21)),
            (template(128, 500.0, 2), template(128, 500.0, 2)),
            (lattice(11, 12.0), lattice(9, 13.0)),
            (lattice(6, 20.0), lattice(6, 20.0)),
            (template(3, 60.0, 5), template(4, 60.0, 6)),
        ];
        let mut s = Scratch::new();
        let mut tied = 0;
        for (a, b) in &cases {
            let (p, c) = (prepare(a), prepare(b));
            vote(&p, &c, &mut s);
            pick_seeds(&p, &c, &mut s);
            let nc = c.points.len();
            let mut all: Vec<(f32, u8, u8)> = (0..p.points.len() * nc)
                .filter(|&k| s.votes[k] > 0.0)
                .map(|k| {
                    let (i, j) = (k / nc, k % nc);
                    (local_similarity(&p, &c, &s.votes, i, j), i as u8, j as u8)
                })
                .collect();
            all.sort_by(|x, y| y.0.total_cmp(&x.0).then((x.1, x.2).cmp(&(y.1, y.2))));
            all.truncate(SEED_COUNT);
            assert_eq!(s.seeds, all);
            tied += all.windows(2).filter(|w| w[0].0 == w[1].0).count();
        }
        assert!(
            tied > 0,
            "the lattices give equal similarities among the seeds"
        );
    }

    #[test]
    fn seed_bins_follow_the_order_of_similarities() {
        let mut last = 0;
        for k in 0..=20_000 {
            let sim = k as f32 / 20_000.0;
            let bin = seed_bin(sim.to_bits());
            assert!(
                bin >= last && bin < SEED_BINS,
                "{sim}: bin {bin} after {last}"
            );
            last = bin;
            for low in [0u64, 0xFFFF] {
                let key = (sim.to_bits() as u64) << 16 | low;
                if sim > 0.0 {
                    assert!(key >= seed_key_floor(bin), "{sim} below its bin's floor");
                }
                if bin + 1 < SEED_BINS {
                    assert!(
                        key < seed_key_floor(bin + 1),
                        "{sim} above the next bin's floor"
                    );
                }
            }
        }
        assert_eq!(last, SEED_BINS - 1, "similarity 1 is in the last bin");
        assert!(seed_bin(0.5f32.to_bits()) < seed_bin(0.52f32.to_bits()));
    }

    /// The synthetic fixture prints of the repository (ground-truth minutiae, ISO records),
    /// as (finger, impression, prepared template).
    fn fixture_templates() -> Vec<(u32, u32, PreparedTemplate)> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/fingerprints");
        let mut out = Vec::new();
        for finger in 1..=10 {
            for impression in 1..=4 {
                let path = dir.join(format!("{finger}_{impression}.iso"));
                let fp = crate::eval::fvc::read_iso(&path).expect("fixture ISO record");
                out.push((finger, impression, prepare(&fp)));
            }
        }
        out
    }

    /// On real templates (the committed synthetic prints) the cascade rejects some impostor
    /// pairs, each below its floor, and keeps every genuine pair with the exhaustive score.
    #[test]
    fn cascade_rejects_impostors_and_keeps_genuine_pairs_with_their_full_score() {
        let templates = fixture_templates();
        let mut s = Scratch::new();
        let (mut genuine, mut impostors, mut rejected) = (0, 0, 0);
        for (fa, ia, a) in &templates {
            for (fb, ib, b) in &templates {
                if (fa, ia) >= (fb, ib) || (fa != fb && (*ia != 1 || *ib != 1)) {
                    continue;
                }
                let outcome = compare_outcome(a, b, &mut s);
                let full = compare_exhaustive(a, b, &mut s);
                if fa == fb {
                    genuine += 1;
                    assert!(!outcome.rejected, "genuine {fa}_{ia} / {fb}_{ib} rejected");
                    assert_eq!(outcome.score.to_bits(), full.to_bits());
                } else {
                    impostors += 1;
                    if outcome.rejected {
                        rejected += 1;
                        assert!(outcome.score < CASCADE_REJECT_BELOW, "{outcome:?}");
                        assert!(outcome.score >= 0.0);
                    } else {
                        assert_eq!(outcome.score.to_bits(), full.to_bits());
                    }
                }
                assert_eq!(compare(a, b, &mut s).to_bits(), outcome.score.to_bits());
            }
        }
        assert_eq!((genuine, impostors), (60, 45));
        assert!(rejected > 0, "no impostor pair of the fixtures rejected");
    }

    /// A pair of an ending with a bifurcation counts less, the more so the surer both minutiae
    /// are; a minutia of kind "other" costs nothing. The same print on both sides, so that only
    /// the kinds and the qualities differ (ten minutiae: the score stays below its cap of 1).
    #[test]
    fn pairs_of_different_kinds_count_less_the_surer_both_are() {
        let fp = template(10, 220.0, 5);
        let as_kind = |kind: MinutiaKind, quality: u8| {
            let mut f = fp.clone();
            for m in &mut f.minutiae {
                m.kind = kind;
                m.quality = quality;
            }
            prepare(&f)
        };
        let mut s = Scratch::new();
        let endings = as_kind(MinutiaKind::Ending, 100);
        for quality in [100u8, 36] {
            let mut score = |kind| compare_exhaustive(&endings, &as_kind(kind, quality), &mut s);
            let same = score(MinutiaKind::Ending);
            let flipped = score(MinutiaKind::Bifurcation);
            let other = score(MinutiaKind::Other);
            assert!(same > 0.2 && same < 1.0, "quality {quality}: {same}");
            assert_eq!(other.to_bits(), same.to_bits(), "quality {quality}");
            // Every pair's weight times 1 - penalty x sqrt(1 x quality / 100), and the score
            // goes with the square of the summed weight. Every neighbour's kind differs too, so
            // the local similarity, half of each pair's weight, loses up to the neighbour
            // penalty on top (less where it was capped at 1).
            let sure = (quality as f32 / 100.0).sqrt();
            let kept = 1.0 - KIND_MISMATCH_PENALTY * sure;
            let kept_votes = 1.0 - NEIGHBOUR_KIND_MISMATCH_PENALTY * sure;
            let (most, least) = (kept * kept, (kept * kept_votes).powi(2));
            let ratio = flipped / same;
            assert!(
                ratio < most - 1e-3 && ratio > least - 1e-3,
                "quality {quality}: {flipped} / {same} = {ratio}, expected in ({least}, {most})"
            );
        }
    }

    /// A vote counts less when the minutiae its two edges end at are an ending and a
    /// bifurcation, the more so the surer both are; "other" costs nothing. The same print on
    /// both sides, every minutia but the first of the other kind (or "other") on the candidate:
    /// every vote for the first minutia's own pair comes from edges ending at minutiae of
    /// different kinds.
    #[test]
    fn neighbours_of_different_kinds_vote_less_the_surer_both_are() {
        let fp = template(12, 220.0, 5);
        let with = |kind: MinutiaKind, quality: u8| {
            let mut f = fp.clone();
            for m in &mut f.minutiae {
                m.quality = quality;
            }
            for m in &mut f.minutiae[1..] {
                m.kind = kind;
            }
            prepare(&f)
        };
        let probe = with(MinutiaKind::Ending, 100);
        let mut s = Scratch::new();
        let mut first_slot = |candidate: &PreparedTemplate| {
            vote(&probe, candidate, &mut s);
            s.votes[0]
        };
        for quality in [100u8, 36] {
            let same = first_slot(&with(MinutiaKind::Ending, quality));
            let flipped = first_slot(&with(MinutiaKind::Bifurcation, quality));
            let other = first_slot(&with(MinutiaKind::Other, quality));
            assert!(same > 1.0, "quality {quality}: {same}");
            assert_eq!(other.to_bits(), same.to_bits(), "quality {quality}");
            // Every vote times 1 - penalty x sqrt(1 x quality / 100), up to the kind byte's
            // rounding.
            let kept = 1.0 - NEIGHBOUR_KIND_MISMATCH_PENALTY * (quality as f32 / 100.0).sqrt();
            assert!(
                (flipped / same - kept).abs() < 1e-3,
                "quality {quality}: {flipped} / {same}, expected {kept}"
            );
        }
    }

    /// A pair the screen rejects scores below the floor, in [0, 1], the same every time, and
    /// no higher than the full search would have scored it (here: unrelated random prints).
    #[test]
    fn rejected_pairs_score_below_the_floor() {
        let mut s = Scratch::new();
        let mut rejected = 0;
        for seed in 0..20 {
            let a = prepare(&template(40, 300.0, seed));
            let b = prepare(&template(45, 300.0, seed + 100));
            let outcome = compare_outcome(&a, &b, &mut s);
            assert_eq!(compare_outcome(&a, &b, &mut s), outcome);
            if outcome.rejected {
                rejected += 1;
                assert!(
                    (0.0..CASCADE_REJECT_BELOW).contains(&outcome.score),
                    "{outcome:?}"
                );
            } else {
                assert_eq!(outcome.score, compare_exhaustive(&a, &b, &mut s));
            }
        }
        assert!(
            rejected >= 10,
            "only {rejected} of 20 random pairs rejected"
        );
    }

    /// Preparation's edges and seed tolerances, against the distances measured here one pair at
    /// a time: every minutia's edges are as long as its nearest neighbours within the edge
    /// lengths, at most [`EDGE_NEIGHBOURS`] of them, and the seed tolerance grows with the
    /// distance from the seed up to its largest value.
    #[test]
    fn edges_and_seed_tolerances_follow_the_distances() {
        use crate::params::{
            EDGE_MAX_LENGTH, EDGE_MIN_LENGTH, EDGE_NEIGHBOURS, PAIR_DISTANCE_TOLERANCE,
            PAIR_DISTANCE_TOLERANCE_SLOPE,
        };
        for (n, spread, seed) in [
            (40, 400.0, 1),
            (128, 300.0, 2),
            (12, 2_000.0, 3),
            (2, 50.0, 4),
        ] {
            let t = prepare(&template(n, spread, seed));
            let n = t.points.len();
            for (i, a) in t.points.iter().enumerate() {
                let mut expected: Vec<f32> = t
                    .points
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, b)| ((b.x - a.x).powi(2) + (b.y - a.y).powi(2)).sqrt())
                    .filter(|d| (EDGE_MIN_LENGTH..=EDGE_MAX_LENGTH).contains(d))
                    .collect();
                expected.sort_by(f32::total_cmp);
                expected.truncate(EDGE_NEIGHBOURS);
                let mut lengths: Vec<f32> = t
                    .edges()
                    .iter()
                    .filter(|e| e.from as usize == i)
                    .map(|e| e.len)
                    .collect();
                lengths.sort_by(f32::total_cmp);
                assert_eq!(lengths.len(), expected.len(), "minutia {i} of {n}");
                for (got, want) in lengths.iter().zip(&expected) {
                    assert!(
                        (got - want).abs() < 1e-3,
                        "minutia {i}: {got} against {want}"
                    );
                }
                assert_eq!(t.half_degree[i], 0.5 * expected.len() as f32);
                for (j, b) in t.points.iter().enumerate() {
                    let d = ((b.x - a.x).powi(2) + (b.y - a.y).powi(2)).sqrt();
                    let tol = (PAIR_DISTANCE_TOLERANCE + PAIR_DISTANCE_TOLERANCE_SLOPE * d)
                        .min(PAIR_DISTANCE_TOLERANCE_MAX);
                    let got = t.seed_tolerance2[i * n + j];
                    assert!(
                        (got - tol * tol).abs() <= 1e-3 * tol * tol,
                        "{i}, {j}: {got}"
                    );
                }
            }
            // Edges are ordered by their first angle, and `from_start` says where each starts.
            let edges = t.edges();
            assert!(edges.windows(2).all(|w| w[0].a_from <= w[1].a_from));
            for (a, &start) in t.from_start.iter().enumerate().take(256) {
                let first = edges.iter().position(|e| e.a_from as usize >= a);
                assert_eq!(start as usize, first.unwrap_or(edges.len()), "angle {a}");
            }
        }
    }

    /// Every minutia within the largest pairing tolerance of a point and within the pairing
    /// direction tolerance of its direction is on that point's list of the reach table,
    /// whatever the template's spread (fine or coarsened cells); most others are not.
    #[test]
    fn reach_table_lists_every_minutia_within_tolerance() {
        let (mut listed, mut in_reach) = (0usize, 0usize);
        for (n, spread, seed) in [
            (40, 400.0, 1),
            (128, 300.0, 2),
            (30, 15_000.0, 3),
            (1, 10.0, 4),
        ] {
            let t = prepare(&template(n, spread, seed));
            let probe = template(400, spread + 100.0, seed + 10);
            for m in &probe.minutiae {
                let (x, y) = (m.x - 50.0, -(m.y - 50.0));
                // Directions right at bin edges as well as anywhere.
                for dir in [m.direction, 0.0, TAU / 8.0, TAU - 1e-4] {
                    let near = partners(&t, x, y, dir);
                    listed += near.len();
                    for (j, q) in t.points.iter().enumerate() {
                        let d = ((q.x - x).powi(2) + (q.y - y).powi(2)).sqrt();
                        if d <= PAIR_DISTANCE_TOLERANCE_MAX {
                            in_reach += 1;
                            if angle_diff(q.dir, dir) <= PAIR_ANGLE_TOLERANCE {
                                assert!(near.contains(&(j as u8)), "minutia {j} at {d} px missing");
                            }
                        }
                    }
                }
            }
        }
        // Direction bins leave out most minutiae in reach: the lists, though they hold
        // everything within reach of the whole cell, are shorter than the exact count in reach
        // of the point (without the bins they were about four times longer).
        assert!(
            listed < in_reach,
            "{listed} listed, {in_reach} within reach"
        );
        // Within a key the minutiae are listed in index order.
        let t = prepare(&template(128, 300.0, 6));
        for key in t.reach_cells.windows(2) {
            let list = &t.reach_points[key[0] as usize..key[1] as usize];
            assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
        }
        let t = prepare(&template(10, 200.0, 5));
        assert!(partners(&t, f32::NAN, 0.0, 1.0).is_empty());
        assert!(partners(&t, 1e9, 1e9, 1.0).is_empty());
        assert!(partners(&t, 0.0, 0.0, f32::NAN).len() <= t.points.len());
    }
}
