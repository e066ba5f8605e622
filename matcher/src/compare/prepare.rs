//! Probe and candidate preparation: the match-ready search structure built once per template
//! and never serialized.
//!
//! Preparation normalizes coordinates to [`COMPARE_DPI`] using the template's own `dpi_x` /
//! `dpi_y`, flips the y axis so that angles are ordinary counter-clockwise angles, drops corrupt
//! minutiae (non-finite or absurd coordinates), keeps at most [`MAX_PREPARED_MINUTIAE`] of the best
//! quality, and builds three tables: the local edges of every minutia (rotation- and
//! translation-invariant shape: length and the two minutia directions relative to the edge),
//! sorted by the first relative angle so that the edges within tolerance of another edge's
//! angle are one run, swept many at a time; a coarse spatial grid of the minutiae, split by
//! direction, for fast pairing after alignment; and the convex hull of the minutiae, the
//! print's area used to normalize scores.

use super::geometry::{angle_diff, normalize_angle, wrap_angle, Hull};
use crate::params::{
    COMPARE_DPI, CROWDED_MINUTIA_DISTANCE, CROWDED_MINUTIA_WEIGHT, EDGE_ANGLE_TOLERANCE,
    EDGE_LENGTH_TOLERANCE, EDGE_LENGTH_TOLERANCE_RATIO, EDGE_MAX_LENGTH, EDGE_MIN_LENGTH,
    EDGE_NEIGHBOURS, MAX_COORDINATE, MAX_PREPARED_MINUTIAE, PAIR_ANGLE_TOLERANCE,
    PAIR_DISTANCE_TOLERANCE, PAIR_DISTANCE_TOLERANCE_MAX, PAIR_DISTANCE_TOLERANCE_SLOPE,
    PAIR_EVIDENCE_EXPONENT, REACH_CELL, REACH_DIRECTION_BINS, REACH_MAX_CELLS,
    UNREPORTED_QUALITY_WEIGHT, UNTYPED_CARD_MINUTIA_WEIGHT,
};
use crate::template::CardFormat;
use crate::{Fingerprint, MinutiaKind};
use std::f32::consts::TAU;

/// A minutia in the comparison frame: 500 dpi, y up, direction in [0, 2π).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Point {
    /// x in pixels at 500 dpi.
    pub x: f32,
    /// y in pixels at 500 dpi, pointing up (negated image row).
    pub y: f32,
    /// Direction, counter-clockwise from +x.
    pub dir: f32,
    /// How much the minutia counts as evidence: its quality as a fraction (quality 0, "not
    /// reported", counts as [`UNREPORTED_QUALITY_WEIGHT`]; in a template read from a card
    /// format, less when other minutiae crowd it, [`weigh_unreported_by_crowding`], or when its
    /// type is "other", [`UNTYPED_CARD_MINUTIA_WEIGHT`]). Doubtful
    /// minutiae weigh less both when paired and when left unpaired in the overlap.
    pub weight: f32,
}

/// A directed edge from a minutia to one of its nearest neighbours, described by what does not
/// change under rotation and translation. Angles are in 1/256 turns so that differences wrap
/// for free; the whole edge fits in 8 bytes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Edge {
    /// Distance between the two minutiae in pixels.
    pub len: f32,
    /// Direction of the `from` minutia relative to the edge direction, 1/256 turns.
    pub a_from: u8,
    /// Direction of the `to` minutia relative to the edge direction, 1/256 turns.
    pub a_to: u8,
    /// Index of the minutia the edge starts at.
    pub from: u8,
    /// Kind and sureness of the minutia the edge ends at: its
    /// [`PreparedTemplate::kind_trust`] in 1/127 steps (fits the edge's spare byte, so the vote
    /// reads no other array).
    pub to_kind: i8,
}

/// What the comparison asks of the other template's edges for an edge of this template,
/// computed once here rather than in every comparison.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EdgeQuery {
    /// Length tolerance of the edge.
    pub tl: f32,
    /// 1 / `tl`.
    pub inv_tl: f32,
}

/// An angle in [0, 2π) as 1/256 turns (rounded, wrapping).
#[inline]
pub(crate) fn to_turns(a: f32) -> u8 {
    (round_to_i32(a * (256.0 / TAU)) & 255) as u8
}

/// `x.round() as i32` (halves away from zero) for |x| < 2²³, where `|x| - trunc(|x|)` is exact,
/// without the library call that `f32::round` is on x86-64's baseline (no SSE4.1): two of them
/// per edge were a twentieth of preparation. Beyond that range the result is meaningless but
/// no panic.
#[inline]
fn round_to_i32(x: f32) -> i32 {
    let a = x.abs();
    let whole = a as i32;
    let r = whole.wrapping_add((a - whole as f32 >= 0.5) as i32);
    if x < 0.0 {
        r.wrapping_neg()
    } else {
        r
    }
}

/// [`Edge::to_kind`] of a kind trust in [-1, 1].
fn kind_byte(kind_trust: f32) -> i8 {
    round_to_i32(kind_trust.clamp(-1.0, 1.0) * KIND_BYTE_SCALE) as i8
}

/// Steps of [`Edge::to_kind`] per unit of kind trust.
pub(crate) const KIND_BYTE_SCALE: f32 = 127.0;

/// Edges the vote filter tests at once: one byte lane each.
pub(crate) const LANES: usize = 32;

// The vote filter holds edge lengths in bytes and needs byte tolerances below 128.
const _: () = assert!(
    EDGE_MAX_LENGTH < 255.0
        && EDGE_LENGTH_TOLERANCE + EDGE_LENGTH_TOLERANCE_RATIO * EDGE_MAX_LENGTH + 2.0 < 128.0
);

/// Unused entries after the edges of [`EdgeColumns`], so that a group starting at the last
/// edge stays in bounds.
const EDGE_PAD: usize = 2 * LANES;

/// The sweep edges of a template as one byte column per field, so that the comparison can
/// test [`LANES`] edges with a few vector operations (`a_from` needs no test: the sweep window
/// holds exactly the edges within tolerance of it).
#[derive(Debug, Clone, Default)]
pub(crate) struct EdgeColumns {
    /// Length in whole pixels (rounded down; at most [`EDGE_MAX_LENGTH`]).
    pub len: Vec<u8>,
    /// [`Edge::a_to`].
    pub a_to: Vec<u8>,
}

impl EdgeColumns {
    /// The columns of `edges`, followed by [`EDGE_PAD`] unused entries.
    fn of(edges: &[Edge]) -> EdgeColumns {
        let pad = |v: Vec<u8>| {
            let mut v = v;
            v.resize(edges.len() + EDGE_PAD, 0);
            v
        };
        EdgeColumns {
            len: pad(edges.iter().map(|e| e.len as u8).collect()),
            a_to: pad(edges.iter().map(|e| e.a_to).collect()),
        }
    }
}

/// Width of a sweep window in 1/256 turns: every `a_from` within the angle tolerance of a
/// query's.
pub(crate) fn window_turns() -> usize {
    2 * to_turns(EDGE_ANGLE_TOLERANCE) as usize + 1
}

/// A template made ready for comparison, as probe or as candidate (the same structure serves
/// both roles). Build it once with [`prepare`] and compare it many times.
#[derive(Debug, Clone)]
pub struct PreparedTemplate {
    /// Minutiae in the comparison frame.
    pub(crate) points: Vec<Point>,
    /// Evidence factor of every minutia when paired, [`Point::weight`] to the power
    /// [`PAIR_EVIDENCE_EXPONENT`] / 2, so that a pair counts `evidence[i] · evidence[j]`.
    pub(crate) evidence: Vec<f32>,
    /// Kind of every minutia with how sure it is: the square root of [`Point::weight`], positive
    /// for an ending, negative for a bifurcation, 0 for "other", so that a pair's kinds disagree
    /// when the product is negative and the product's size is the geometric mean of the two
    /// weights (see [`crate::params::KIND_MISMATCH_PENALTY`]). Apart from `points`: only pairs
    /// read it, the hot loops do not.
    pub(crate) kind_trust: Vec<f32>,
    /// What every edge of [`PreparedTemplate::edges`] asks of another template's edges (same
    /// order).
    pub(crate) queries: Vec<EdgeQuery>,
    /// The local edges, ordered by `a_from` (then by generation order), followed by the edges
    /// whose `a_from` lies within one window of 0, again, so that a window that wraps past a
    /// full turn is one run.
    pub(crate) sweep: Vec<Edge>,
    /// `sweep` as byte columns for the comparison's vote filter.
    pub(crate) columns: EdgeColumns,
    /// Index in [`PreparedTemplate::edges`] of the first edge with `a_from` >= each value
    /// 0..=256.
    pub(crate) from_start: Vec<u16>,
    /// Half the number of edges leaving each minutia: a slot's neighbourhood size is the sum
    /// of its two minutiae's (exact in `f32`, so no conversion in the comparison's loops).
    pub(crate) half_degree: Vec<f32>,
    /// Convex hull of the minutiae.
    pub(crate) hull: Hull,
    /// Reach table: for every cell of a grid over the minutiae (plus the largest pairing
    /// tolerance around them) and every one of [`REACH_DIRECTION_BINS`] direction bins, the
    /// minutiae that a point in that cell with a direction in that bin may pair with, so that
    /// pairing after alignment looks at one short list per placed minutia. Origin of the grid
    /// (lowest x, lowest y).
    pub(crate) reach_origin: (f32, f32),
    /// 1 / side of one reach cell in pixels.
    pub(crate) reach_inv_cell: f32,
    /// Reach grid size in cells (columns, rows), as floats for the bounds test.
    pub(crate) reach_size: (f32, f32),
    /// Number of reach grid columns.
    pub(crate) reach_cols: usize,
    /// Start offset in `reach_points` of each key (cell · bins + bin), then two extra entries:
    /// the end of the last key and of an empty key (number `columns · rows · bins`) that stands
    /// for every point outside the grid, so that the lookup needs no branch. 16 bits keep the
    /// table small in cache (see [`REACH_MAX_LISTED`]).
    pub(crate) reach_cells: Vec<u16>,
    /// Minutia indices listed by reach key.
    pub(crate) reach_points: Vec<u8>,
    /// Squared pairing position tolerance, `n x n`, row `s` for alignments seeded at minutia
    /// `s`: the tolerance grows with the distance from the seed (skin distortion), and that
    /// distance does not change under a rigid alignment, so it is computed once here.
    pub(crate) seed_tolerance2: Vec<f32>,
}

impl PreparedTemplate {
    /// Number of minutiae that take part in comparison (after dropping corrupt ones and capping).
    pub fn minutia_count(&self) -> usize {
        self.points.len()
    }

    /// Number of local edges (a measure of the work one comparison does).
    pub fn edge_count(&self) -> usize {
        self.queries.len()
    }

    /// The local edges, ordered by `a_from`: the start of `sweep`.
    pub(crate) fn edges(&self) -> &[Edge] {
        &self.sweep[..self.queries.len()]
    }
}

/// Builds the match-ready structure of a fingerprint. Never fails: corrupt minutiae are dropped
/// and a template without usable minutiae prepares to an empty structure that scores 0 against
/// everything. A zero or absurd resolution is treated as 500 dpi. A minutia of quality 0 ("not
/// reported", as another extractor's record may say) counts as [`UNREPORTED_QUALITY_WEIGHT`];
/// for a template read back from a card format use [`prepare_stored`].
pub fn prepare(fp: &Fingerprint) -> PreparedTemplate {
    prepare_weighted(fp, false)
}

/// [`prepare`] for a template read back from `format`. The card formats (normal, compact) have
/// no room for minutia quality, so there the weight of every minutia also says how crowded it
/// is (from [`crate::params::CROWDED_MINUTIA_WEIGHT`] when its two nearest minutiae lie within
/// the first of [`crate::params::CROWDED_MINUTIA_DISTANCE`] to the full weight beyond the
/// second): on our extractor's templates the crowded ones are more often false. A card
/// minutia of type "other" keeps [`crate::params::UNTYPED_CARD_MINUTIA_WEIGHT`] of that: our
/// compact encoder writes doubtful minutiae so (see [`crate::template::card`]). The full
/// record keeps its qualities and prepares as [`prepare`] does; so does another extractor's
/// record that reports none (crowding cost such records accuracy, see `docs/matcher.md`).
pub fn prepare_stored(fp: &Fingerprint, format: CardFormat) -> PreparedTemplate {
    prepare_weighted(fp, format != CardFormat::Record)
}

/// [`prepare`], with quality-less minutiae weighed by their crowding or not.
fn prepare_weighted(fp: &Fingerprint, weigh_crowding: bool) -> PreparedTemplate {
    let sx = scale(fp.dpi_x);
    let sy = scale(fp.dpi_y);
    let mut kept: Vec<(u8, Point, MinutiaKind)> = fp
        .minutiae
        .iter()
        .filter_map(|m| {
            let (x, y) = (m.x * sx, m.y * sy);
            let ok = x.is_finite()
                && y.is_finite()
                && m.direction.is_finite()
                && x.abs() <= MAX_COORDINATE
                && y.abs() <= MAX_COORDINATE;
            ok.then(|| {
                (
                    m.quality,
                    Point {
                        x,
                        y: -y,
                        dir: normalize_angle(m.direction),
                        weight: quality_weight(m.quality),
                    },
                    m.kind,
                )
            })
        })
        .collect();
    if kept.len() > MAX_PREPARED_MINUTIAE {
        // Stable: among equal qualities the extractor's order decides.
        kept.sort_by_key(|k| std::cmp::Reverse(k.0));
        kept.truncate(MAX_PREPARED_MINUTIAE);
    }
    let mut points: Vec<Point> = kept.iter().map(|&(_, p, _)| p).collect();
    if weigh_crowding {
        weigh_unreported_by_crowding(&mut points, kept.iter().map(|&(q, _, _)| q));
        for (p, &(_, _, kind)) in points.iter_mut().zip(&kept) {
            if kind == MinutiaKind::Other {
                p.weight *= UNTYPED_CARD_MINUTIA_WEIGHT;
            }
        }
    }
    let evidence = points
        .iter()
        .map(|p| p.weight.powf(0.5 * PAIR_EVIDENCE_EXPONENT))
        .collect();
    let kind_trust: Vec<f32> = points
        .iter()
        .zip(&kept)
        .map(|(p, &(_, _, kind))| {
            let sign = match kind {
                MinutiaKind::Ending => 1.0,
                MinutiaKind::Bifurcation => -1.0,
                MinutiaKind::Other => 0.0,
            };
            sign * p.weight.sqrt()
        })
        .collect();
    let d2 = squared_distances(&points);
    let (edges, from_start, half_degree) = build_edges(&points, &kind_trust, &d2);
    let queries = edges
        .iter()
        .map(|e| {
            let tl = EDGE_LENGTH_TOLERANCE + EDGE_LENGTH_TOLERANCE_RATIO * e.len;
            EdgeQuery {
                tl,
                inv_tl: 1.0 / tl,
            }
        })
        .collect();
    // A window starting near the end of the turn runs on into the edges near its start.
    let wrap = from_start[window_turns().min(256)] as usize;
    let mut sweep = edges;
    sweep.extend_from_within(..wrap);
    let columns = EdgeColumns::of(&sweep);
    let hull = Hull::of(&points.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>());
    let reach = build_reach(&points);
    let seed_tolerance2 = seed_tolerances(d2);
    PreparedTemplate {
        points,
        evidence,
        kind_trust,
        queries,
        sweep,
        columns,
        from_start,
        half_degree,
        hull,
        reach_origin: reach.origin,
        reach_inv_cell: 1.0 / reach.cell,
        reach_size: (reach.cols as f32, reach.rows as f32),
        reach_cols: reach.cols,
        reach_cells: reach.cells,
        reach_points: reach.points,
        seed_tolerance2,
    }
}

/// Evidence weight of a minutia of the given quality (0-100; 0 = not reported).
fn quality_weight(quality: u8) -> f32 {
    match quality {
        0 => UNREPORTED_QUALITY_WEIGHT,
        q => q.min(100) as f32 / 100.0,
    }
}

/// Scales the weight of every minutia whose quality is not reported (quality 0) by
/// [`crowding_factor`]. Minutiae with a reported quality keep it (the extractor's quality
/// already says more).
fn weigh_unreported_by_crowding(points: &mut [Point], quality: impl Iterator<Item = u8>) {
    let factors: Vec<(usize, f32)> = quality
        .enumerate()
        .filter(|&(_, q)| q == 0)
        .map(|(i, _)| (i, crowding_factor(points, i)))
        .collect();
    for (i, factor) in factors {
        points[i].weight *= factor;
    }
}

/// How little minutia `i` is crowded, from [`CROWDED_MINUTIA_WEIGHT`] to 1: the mean distance to
/// its two nearest other minutiae (one close neighbour alone does not make a cluster as surely
/// as two) placed on the ramp [`CROWDED_MINUTIA_DISTANCE`]. With one neighbour only, its
/// distance stands for both; with none, 1.
fn crowding_factor(points: &[Point], i: usize) -> f32 {
    let (near, far) = CROWDED_MINUTIA_DISTANCE;
    let a = points[i];
    // The two smallest squared distances to the other minutiae.
    let (first2, second2) = points
        .iter()
        .enumerate()
        .filter(|&(j, _)| j != i)
        .map(|(_, b)| (b.x - a.x).powi(2) + (b.y - a.y).powi(2))
        .fold((f32::INFINITY, f32::INFINITY), |(f, s), d2| {
            if d2 < f {
                (d2, f)
            } else {
                (f, s.min(d2))
            }
        });
    let second2 = if second2.is_finite() { second2 } else { first2 };
    let spacing = 0.5 * (first2.sqrt() + second2.sqrt());
    let open = ((spacing - near) / (far - near)).clamp(0.0, 1.0);
    CROWDED_MINUTIA_WEIGHT + (1.0 - CROWDED_MINUTIA_WEIGHT) * open
}

/// Pixel scale factor from a template resolution to [`COMPARE_DPI`].
fn scale(dpi: u32) -> f32 {
    if (50..=5000).contains(&dpi) {
        COMPARE_DPI / dpi as f32
    } else {
        1.0
    }
}

/// Squared distances between every two minutiae, `n x n`, row `i` from minutia `i`: a loop of
/// arithmetic only, over coordinate columns, that the compiler vectorizes.
fn squared_distances(points: &[Point]) -> Vec<f32> {
    let n = points.len();
    let xs: Vec<f32> = points.iter().map(|p| p.x).collect();
    let ys: Vec<f32> = points.iter().map(|p| p.y).collect();
    let mut d2 = Vec::with_capacity(n * n);
    for a in points {
        d2.extend(
            xs.iter()
                .zip(&ys)
                .map(|(&x, &y)| (x - a.x).powi(2) + (y - a.y).powi(2)),
        );
    }
    d2
}

/// Local edges of every minutia to its nearest neighbours, sorted by `a_from`; `kind_trust` as
/// in [`PreparedTemplate::kind_trust`], `d2` from [`squared_distances`].
fn build_edges(
    points: &[Point],
    kind_trust: &[f32],
    d2: &[f32],
) -> (Vec<Edge>, Vec<u16>, Vec<f32>) {
    let n = points.len();
    let mut edges: Vec<Edge> = Vec::with_capacity(n * EDGE_NEIGHBOURS);
    let mut half_degree = vec![0.0f32; n];
    let mut near: Vec<(f32, usize)> = vec![(0.0, 0); n];
    let max2 = EDGE_MAX_LENGTH * EDGE_MAX_LENGTH;
    let min2 = EDGE_MIN_LENGTH * EDGE_MIN_LENGTH;
    for (i, a) in points.iter().enumerate() {
        // The neighbours within the edge lengths, in index order, without a branch per
        // minutia (whether one is in range is a coin toss).
        let mut count = 0;
        for (j, &d2) in d2[i * n..(i + 1) * n].iter().enumerate() {
            near[count] = (d2, j);
            count += (j != i && (min2..=max2).contains(&d2)) as usize;
        }
        let near = &mut near[..count];
        let k = EDGE_NEIGHBOURS.min(near.len());
        if k < near.len() {
            near.select_nth_unstable_by(k, |x, y| x.0.total_cmp(&y.0));
        }
        for &(d2, j) in &near[..k] {
            let b = points[j];
            let theta = (b.y - a.y).atan2(b.x - a.x);
            edges.push(Edge {
                len: d2.sqrt(),
                // Both differences lie in (-2π, 4π): the division-free wrap gives the same
                // turns.
                a_from: to_turns(wrap_angle(a.dir - theta)),
                a_to: to_turns(wrap_angle(b.dir - theta)),
                from: i as u8,
                to_kind: kind_byte(kind_trust[j]),
            });
        }
        half_degree[i] = 0.5 * k as f32;
    }
    // Stable counting sort by `a_from`: among equal ones, edges keep their generation order.
    let mut from_start = vec![0u16; 257];
    for e in &edges {
        from_start[e.a_from as usize + 1] += 1;
    }
    for a in 0..256 {
        from_start[a + 1] += from_start[a];
    }
    let mut fill = from_start.clone();
    let mut sorted = edges.clone();
    for e in &edges {
        sorted[fill[e.a_from as usize] as usize] = *e;
        fill[e.a_from as usize] += 1;
    }
    (sorted, from_start, half_degree)
}

/// The reach table of [`PreparedTemplate`], before it is stored.
struct Reach {
    origin: (f32, f32),
    cell: f32,
    cols: usize,
    rows: usize,
    cells: Vec<u16>,
    points: Vec<u8>,
}

/// Most entries a reach table can list: every minutia in the cells within the largest pairing
/// tolerance of it (cells of at least [`REACH_CELL`] pixels: at most `2 · tolerance / cell + 2`
/// per side) and in at most three direction bins (the tolerance is at most one bin wide).
const REACH_MAX_LISTED: usize = MAX_PREPARED_MINUTIAE * REACH_SPAN_MAX.pow(2) * 3;
/// Most cells of a reach table within [`PAIR_DISTANCE_TOLERANCE_MAX`] of a point along one
/// axis (cells of at least [`REACH_CELL`] pixels).
const REACH_SPAN_MAX: usize = 2 * (PAIR_DISTANCE_TOLERANCE_MAX / REACH_CELL) as usize + 2;
// The table's offsets are 16-bit.
const _: () = assert!(
    REACH_MAX_LISTED <= u16::MAX as usize
        && PAIR_ANGLE_TOLERANCE < TAU / REACH_DIRECTION_BINS as f32
);

/// Reach table: cells of at least [`REACH_CELL`] pixels (at most [`REACH_MAX_CELLS`] per side)
/// over the minutiae's bounding box grown by [`PAIR_DISTANCE_TOLERANCE_MAX`], each split into
/// [`REACH_DIRECTION_BINS`] direction bins; each (cell, bin) lists the minutiae within that
/// tolerance of some point of the cell (distance to the cell's rectangle) whose direction is
/// within [`PAIR_ANGLE_TOLERANCE`] of some direction of the bin, in index order.
fn build_reach(points: &[Point]) -> Reach {
    if points.is_empty() {
        return Reach {
            origin: (0.0, 0.0),
            cell: REACH_CELL,
            cols: 0,
            rows: 0,
            cells: vec![0, 0],
            points: Vec::new(),
        };
    }
    let (mut x0, mut y0, mut x1, mut y1) = (f32::MAX, f32::MAX, f32::MIN, f32::MIN);
    for p in points {
        x0 = x0.min(p.x);
        y0 = y0.min(p.y);
        x1 = x1.max(p.x);
        y1 = y1.max(p.y);
    }
    let margin = PAIR_DISTANCE_TOLERANCE_MAX;
    let (x0, y0) = (x0 - margin, y0 - margin);
    let (w, h) = (x1 + margin - x0, y1 + margin - y0);
    let cell = REACH_CELL.max(w.max(h) / (REACH_MAX_CELLS - 1) as f32);
    let cols = (w / cell) as usize + 1;
    let rows = (h / cell) as usize + 1;
    let reach2 = margin * margin;
    let nb = REACH_DIRECTION_BINS;
    let bin_width = TAU / nb as f32;
    // Each bin's two ends, once for all minutiae (the end of the last bin wraps to 0).
    let bin_ends: [(f32, f32); REACH_DIRECTION_BINS] =
        std::array::from_fn(|b| (b as f32 * bin_width, (b + 1) as f32 * bin_width));
    let bin_ends_in_turn = bin_ends.map(|(_, z)| normalize_angle(z));
    let span = |v: f32, origin: f32, n: usize| {
        let lo = (((v - margin - origin) / cell).max(0.0) as usize).min(n - 1);
        let hi = (((v + margin - origin) / cell).max(0.0) as usize).min(n - 1);
        lo..=hi
    };
    // The keys (cell, direction bin) every minutia is listed under, minutia by minutia: the
    // cells of its box grown by the margin whose rectangle lies within the margin, times the
    // direction bins whose range lies within the pairing direction tolerance of its
    // direction, in key order. `first[i]..first[i + 1]` are minutia `i`'s.
    let mut hits: Vec<u32> = Vec::with_capacity(points.len() * 48);
    let mut first: Vec<usize> = Vec::with_capacity(points.len() + 1);
    for p in points {
        first.push(hits.len());
        // A bin is within tolerance when the direction is in it or near one of its ends (a
        // hair more than the tolerance: a superset costs one test, a miss a pair). At most
        // three bins.
        let mut bins = [0u32; 3];
        let mut n_bins = 0;
        for (b, (&(a, z), &z_in_turn)) in bin_ends.iter().zip(&bin_ends_in_turn).enumerate() {
            let near = (p.dir >= a && p.dir < z)
                || angle_diff(p.dir, a) <= PAIR_ANGLE_TOLERANCE + 1e-3
                || angle_diff(p.dir, z_in_turn) <= PAIR_ANGLE_TOLERANCE + 1e-3;
            if near && n_bins < bins.len() {
                bins[n_bins] = b as u32;
                n_bins += 1;
            }
        }
        let bins = &bins[..n_bins];
        // Distances from the minutia to the columns' spans, once per minutia.
        let columns = span(p.x, x0, cols);
        debug_assert!(columns.clone().count() <= REACH_SPAN_MAX);
        let mut dx2 = [0.0f32; REACH_SPAN_MAX];
        for (d, c) in dx2.iter_mut().zip(columns.clone()) {
            let (rx0, rx1) = (x0 + c as f32 * cell, x0 + (c + 1) as f32 * cell);
            let dx = (rx0 - p.x).max(p.x - rx1).max(0.0);
            *d = dx * dx;
        }
        for r in span(p.y, y0, rows) {
            let (ry0, ry1) = (y0 + r as f32 * cell, y0 + (r + 1) as f32 * cell);
            let dy = (ry0 - p.y).max(p.y - ry1).max(0.0);
            for (c, &dx2) in columns.clone().zip(&dx2) {
                if dx2 + dy * dy <= reach2 {
                    let key = ((r * cols + c) * nb) as u32;
                    hits.extend(bins.iter().map(|&b| key + b));
                }
            }
        }
    }
    first.push(hits.len());
    // Counting sort by key: within a key the minutiae stay in index order. The running sums
    // stay in a register (a loop of `cells[k + 1] += cells[k]` waits on memory at every key
    // of a table of thousands).
    let keys = cols * rows * nb;
    let mut cells = vec![0u16; keys + 1];
    for &k in &hits {
        cells[k as usize + 1] += 1;
    }
    let mut total = 0u16;
    for c in &mut cells {
        total += *c;
        *c = total;
    }
    let mut fill = cells.clone();
    let mut listed = vec![0u8; hits.len()];
    for (i, range) in first.windows(2).enumerate() {
        for &k in &hits[range[0]..range[1]] {
            let at = &mut fill[k as usize];
            listed[*at as usize] = i as u8;
            *at += 1;
        }
    }
    // The empty key of points outside the grid.
    cells.push(cells[keys]);
    debug_assert!(listed.len() <= REACH_MAX_LISTED);
    Reach {
        origin: (x0, y0),
        cell,
        cols,
        rows,
        cells,
        points: listed,
    }
}

/// Squared pairing tolerance of every minutia for an alignment seeded at every minutia
/// (row-major, seed first), in place of the squared distances `d2` of [`squared_distances`].
fn seed_tolerances(mut d2: Vec<f32>) -> Vec<f32> {
    for v in &mut d2 {
        let tol = (PAIR_DISTANCE_TOLERANCE + PAIR_DISTANCE_TOLERANCE_SLOPE * v.sqrt())
            .min(PAIR_DISTANCE_TOLERANCE_MAX);
        *v = tol * tol;
    }
    d2
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Minutia, MinutiaKind};

    fn fingerprint(minutiae: &[(f32, f32, u8)], dpi: u32) -> Fingerprint {
        Fingerprint {
            width: 400,
            height: 400,
            dpi_x: dpi,
            dpi_y: dpi,
            quality: 80,
            minutiae: minutiae
                .iter()
                .map(|&(x, y, quality)| Minutia {
                    x,
                    y,
                    direction: 1.0,
                    kind: MinutiaKind::Ending,
                    quality,
                })
                .collect(),
        }
    }

    fn weights(fp: &Fingerprint) -> Vec<f32> {
        prepare_stored(fp, CardFormat::Compact)
            .points
            .iter()
            .map(|p| p.weight)
            .collect()
    }

    /// The weight of a quality-less minutia whose two nearest neighbours lie `spacing` pixels
    /// away on average.
    fn crowding_weight(spacing: f32) -> f32 {
        let (near, far) = CROWDED_MINUTIA_DISTANCE;
        let open = ((spacing - near) / (far - near)).clamp(0.0, 1.0);
        UNREPORTED_QUALITY_WEIGHT * (CROWDED_MINUTIA_WEIGHT + (1.0 - CROWDED_MINUTIA_WEIGHT) * open)
    }

    #[test]
    fn round_to_i32_rounds_as_the_library_does() {
        let mut cases = vec![0.0f32, -0.0, 0.5, -0.5, 1.5, -2.5, 0.49999997, -0.49999997];
        cases.extend((-70_000..70_000).map(|k| k as f32 / 256.0));
        for k in -600..600 {
            let half = k as f32 + 0.5;
            cases.extend([
                half,
                f32::from_bits(half.to_bits() + 1),
                f32::from_bits(half.to_bits() - 1),
            ]);
        }
        for x in cases {
            assert_eq!(round_to_i32(x), x.round() as i32, "{x}");
        }
        // Every angle the edges can have, and a few outside a turn.
        for k in -100_000..200_000 {
            let a = k as f32 * (TAU / 100_000.0);
            let library = ((a * (256.0 / TAU)).round() as i32 & 255) as u8;
            assert_eq!(to_turns(a), library, "{a}");
        }
    }

    #[test]
    fn quality_less_minutiae_weigh_less_the_more_they_are_crowded() {
        let (near, far) = CROWDED_MINUTIA_DISTANCE;
        let crowded = UNREPORTED_QUALITY_WEIGHT * CROWDED_MINUTIA_WEIGHT;
        // A row of three `near` apart: the middle one's two nearest are `near` away, the ends'
        // `near` and twice that; one minutia far from all.
        let fp = fingerprint(
            &[
                (100.0, 100.0, 0),
                (100.0 + near, 100.0, 0),
                (100.0 + 2.0 * near, 100.0, 0),
                (350.0, 350.0, 0),
            ],
            500,
        );
        let end = crowding_weight(1.5 * near);
        let expected = [end, crowded, end, UNREPORTED_QUALITY_WEIGHT];
        let w = weights(&fp);
        for (got, want) in w.iter().zip(expected) {
            assert!((got - want).abs() < 1e-5, "{w:?} against {expected:?}");
        }
        assert!(crowded < end && end < UNREPORTED_QUALITY_WEIGHT);
        // Two alone, halfway: one neighbour stands for both nearest.
        let mid = (near + far) / 2.0;
        let pair = fingerprint(&[(100.0, 100.0, 0), (100.0, 100.0 + mid, 0)], 500);
        let halfway = UNREPORTED_QUALITY_WEIGHT * (1.0 + CROWDED_MINUTIA_WEIGHT) / 2.0;
        assert!(weights(&pair).iter().all(|w| (w - halfway).abs() < 1e-5));
    }

    #[test]
    fn crowding_is_measured_at_500_dpi_and_spares_reported_qualities() {
        let (near, _) = CROWDED_MINUTIA_DISTANCE;
        // `near` pixels at 1000 dpi are half of it at 500 dpi: as crowded as can be.
        let fine = fingerprint(&[(100.0, 100.0, 0), (100.0 + near, 100.0, 0)], 1000);
        let crowded = UNREPORTED_QUALITY_WEIGHT * CROWDED_MINUTIA_WEIGHT;
        assert!(weights(&fine).iter().all(|w| (w - crowded).abs() < 1e-5));
        // A reported quality keeps its weight however close the neighbour; the quality-less
        // neighbour is still weighed by its crowding.
        let mixed = fingerprint(&[(100.0, 100.0, 70), (101.0, 100.0, 0)], 500);
        let w = weights(&mixed);
        assert!(
            (w[0] - 0.7).abs() < 1e-5 && (w[1] - crowded).abs() < 1e-5,
            "{w:?}"
        );
        // One minutia alone has no neighbour: full weight.
        let alone = fingerprint(&[(100.0, 100.0, 0)], 500);
        assert_eq!(weights(&alone), vec![UNREPORTED_QUALITY_WEIGHT]);
    }

    #[test]
    fn only_card_formats_weigh_crowding() {
        let (near, _) = CROWDED_MINUTIA_DISTANCE;
        let fp = fingerprint(&[(100.0, 100.0, 0), (100.0 + near / 2.0, 100.0, 0)], 500);
        let flat = |t: PreparedTemplate| {
            t.points
                .iter()
                .all(|p| (p.weight - UNREPORTED_QUALITY_WEIGHT).abs() < 1e-6)
        };
        assert!(flat(prepare(&fp)));
        assert!(flat(prepare_stored(&fp, CardFormat::Record)));
        assert!(!flat(prepare_stored(&fp, CardFormat::Normal)));
        assert!(!flat(prepare_stored(&fp, CardFormat::Compact)));
    }

    #[test]
    fn untyped_card_minutiae_weigh_less() {
        // Two minutiae far apart (no crowding), one of them of type "other": in a card format
        // it keeps UNTYPED_CARD_MINUTIA_WEIGHT of its weight, in a record all of it.
        let mut fp = fingerprint(&[(100.0, 100.0, 0), (300.0, 300.0, 0)], 500);
        fp.minutiae[1].kind = MinutiaKind::Other;
        let weights = |format| {
            prepare_stored(&fp, format)
                .points
                .iter()
                .map(|p| p.weight)
                .collect::<Vec<_>>()
        };
        let untyped = UNREPORTED_QUALITY_WEIGHT * UNTYPED_CARD_MINUTIA_WEIGHT;
        for format in [CardFormat::Compact, CardFormat::Normal] {
            let w = weights(format);
            assert!(
                (w[0] - UNREPORTED_QUALITY_WEIGHT).abs() < 1e-6,
                "{format:?} {w:?}"
            );
            assert!((w[1] - untyped).abs() < 1e-6, "{format:?} {w:?}");
        }
        assert_eq!(
            weights(CardFormat::Record),
            vec![UNREPORTED_QUALITY_WEIGHT; 2]
        );
    }
}
