//! Probe and candidate preparation: the match-ready search structure built once per template
//! and never serialized.
//!
//! Preparation normalizes coordinates to [`COMPARE_DPI`] using the template's own `dpi_x` /
//! `dpi_y`, flips the y axis so that angles are ordinary counter-clockwise angles, drops corrupt
//! minutiae (non-finite or absurd coordinates), keeps at most [`MAX_PREPARED_MINUTIAE`] of the best
//! quality, and builds three tables: the local edges of every minutia (rotation- and
//! translation-invariant shape: length and the two minutia directions relative to the edge),
//! indexed by (length, relative angle) for constant-time lookup; a coarse spatial grid of the
//! minutiae for fast pairing after alignment; and the convex hull of the minutiae, the print's
//! area used to normalize scores.

use super::geometry::{normalize_angle, Hull};
use crate::params::{
    COMPARE_DPI, EDGE_ANGLE_BINS, EDGE_ANGLE_TOLERANCE, EDGE_LENGTH_BIN, EDGE_LENGTH_TOLERANCE,
    EDGE_LENGTH_TOLERANCE_RATIO, EDGE_MAX_LENGTH, EDGE_MIN_LENGTH, EDGE_NEIGHBOURS, MAX_COORDINATE,
    MAX_PREPARED_MINUTIAE, PAIR_DISTANCE_TOLERANCE, PAIR_DISTANCE_TOLERANCE_MAX,
    PAIR_DISTANCE_TOLERANCE_SLOPE, PAIR_EVIDENCE_EXPONENT, REACH_CELL, REACH_MAX_CELLS,
    UNREPORTED_QUALITY_WEIGHT,
};
use crate::Fingerprint;
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
    /// reported", counts as [`UNREPORTED_QUALITY_WEIGHT`]). Doubtful minutiae weigh less both
    /// when paired and when left unpaired in the overlap.
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
}

/// What the comparison looks up for an edge of this template in the other template's edge
/// index, computed once here rather than in every comparison.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EdgeQuery {
    /// Length tolerance of the edge.
    pub tl: f32,
    /// 1 / `tl`.
    pub inv_tl: f32,
    /// The query's segments: `segments[first..end]` of the template.
    pub first: u32,
    /// End (exclusive) of the query's segments.
    pub end: u32,
}

/// Gap cells (not visited by a query) that a segment may span to join two runs of cells. Edges
/// in a gap fail the query's angle test, so a longer segment only costs their test; fewer
/// segments cost fewer index lookups and loop exits.
const MAX_SEGMENT_GAP: u16 = 16;

/// The index cells that an edge's query visits, as segments of absolute cell numbers (end
/// exclusive), appended to `out`. The visiting order fixes the summation order of the votes:
/// length bins in order, within each the `a_from` bins in order (unwrapped from the lowest),
/// within each the `a_to` bins in order. Adjacent cells form one run; a segment joins runs that
/// follow each other in memory across at most [`MAX_SEGMENT_GAP`] cells that no run of the
/// query visits, so that walking it visits the query's edges in the same order.
fn query_segments(e: &Edge, tl: f32, out: &mut Vec<(u16, u16)>) {
    let tol = to_turns(EDGE_ANGLE_TOLERANCE) as i32;
    let bin = (256 / EDGE_ANGLE_BINS) as i32;
    let nbins = EDGE_ANGLE_BINS as i32;
    // Angle bins overlapping [a - tol, a + tol], unwrapped (lo may be negative).
    let bins = |a: u8| {
        (
            (a as i32 - tol).div_euclid(bin),
            (a as i32 + tol).div_euclid(bin),
        )
    };
    let (f_lo, f_hi) = bins(e.a_from);
    let (t_lo, t_hi) = bins(e.a_to);
    // Runs of one length bin, relative to its first cell.
    let mut runs = [(0u16, 0u16); MAX_QUERY_RUNS];
    let mut n_runs = 0;
    for fb in f_lo..=f_hi {
        let row = fb.rem_euclid(nbins) * nbins;
        // The a_to bins as at most two runs of adjacent cells (split where they wrap).
        let (a, z) = (t_lo.rem_euclid(nbins), t_hi.rem_euclid(nbins));
        let mut push = |from: i32, to: i32| {
            runs[n_runs] = ((row + from) as u16, (row + to + 1) as u16);
            n_runs += 1;
        };
        if a <= z {
            push(a, z);
        } else {
            push(a, nbins - 1);
            push(0, z);
        }
    }
    let (l0, l1) = (length_bin(e.len - tl), length_bin(e.len + tl));
    let all: Vec<(u16, u16)> = (l0..=l1)
        .flat_map(|lb| {
            let base = cell(lb, 0, 0) as u16;
            runs[..n_runs]
                .iter()
                .map(move |&(a, z)| (base + a, base + z))
        })
        .collect();
    let first = out.len();
    for &(a, z) in &all {
        if out.len() > first {
            let last = out.last_mut().expect("a segment");
            let joins = a >= last.1
                && a - last.1 <= MAX_SEGMENT_GAP
                && !all.iter().any(|&(b, y)| b < a && y > last.1);
            if joins {
                last.1 = z;
                continue;
            }
        }
        out.push((a, z));
    }
}

/// Most runs of cells of a query in one length bin: an angle tolerance spans at most three bins
/// of `a_from`, and the `a_to` bins of each form at most two runs.
const MAX_QUERY_RUNS: usize = 6;

/// An angle in [0, 2π) as 1/256 turns (rounded, wrapping).
#[inline]
pub(crate) fn to_turns(a: f32) -> u8 {
    ((a * (256.0 / TAU)).round() as i32 & 255) as u8
}

/// Edges the vote filter tests at once: one byte each in a u64.
pub(crate) const EDGE_BLOCK: usize = 8;

// The vote filter holds edge lengths in bytes and needs byte tolerances below 64.
const _: () = assert!(
    EDGE_MAX_LENGTH < 255.0
        && EDGE_LENGTH_TOLERANCE + EDGE_LENGTH_TOLERANCE_RATIO * EDGE_MAX_LENGTH + 2.0 < 64.0
);

/// Unused entries after the edges of [`EdgeColumns`], so that a block starting at the last
/// edge stays in bounds.
const EDGE_PAD: usize = EDGE_BLOCK;

/// The edges of a template as one byte column per field, so that the comparison can test a
/// block of [`EDGE_BLOCK`] edges with a few integer operations.
#[derive(Debug, Clone, Default)]
pub(crate) struct EdgeColumns {
    /// Length in whole pixels (rounded down; at most [`EDGE_MAX_LENGTH`]).
    pub len: Vec<u8>,
    /// [`Edge::a_from`].
    pub a_from: Vec<u8>,
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
            a_from: pad(edges.iter().map(|e| e.a_from).collect()),
            a_to: pad(edges.iter().map(|e| e.a_to).collect()),
        }
    }
}

/// Number of edge-length bins of the edge index.
pub(crate) const LENGTH_BINS: usize = (EDGE_MAX_LENGTH / EDGE_LENGTH_BIN) as usize + 1;

/// Edge-length bin of a length (clamped to the table).
#[inline]
pub(crate) fn length_bin(len: f32) -> usize {
    ((len.max(0.0) / EDGE_LENGTH_BIN) as usize).min(LENGTH_BINS - 1)
}

/// Relative-angle bin of an angle in 1/256 turns.
#[inline]
pub(crate) fn angle_bin(a: u8) -> usize {
    a as usize / (256 / EDGE_ANGLE_BINS)
}

/// Index cell of an edge: (length bin, `a_from` bin, `a_to` bin).
#[inline]
pub(crate) fn cell(length_bin: usize, from_bin: usize, to_bin: usize) -> usize {
    (length_bin * EDGE_ANGLE_BINS + from_bin) * EDGE_ANGLE_BINS + to_bin
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
    /// Local edges, ordered by index cell (length bin, then the bins of both relative angles).
    pub(crate) edges: Vec<Edge>,
    /// Lookup of every edge of `edges` in another template's index (same order).
    pub(crate) queries: Vec<EdgeQuery>,
    /// Segments of index cells of all queries (see [`EdgeQuery`]).
    pub(crate) segments: Vec<(u16, u16)>,
    /// `edges` as byte columns for the comparison's vote filter.
    pub(crate) columns: EdgeColumns,
    /// Start offset of every index cell in `edges`; one extra entry closes the last cell.
    pub(crate) cells: Vec<u32>,
    /// Number of edges leaving each minutia.
    pub(crate) degree: Vec<u8>,
    /// Convex hull of the minutiae.
    pub(crate) hull: Hull,
    /// Reach table: for every cell of a grid over the minutiae (plus the largest pairing
    /// tolerance around them), the minutiae that a point in that cell may pair with, so that
    /// pairing after alignment looks at one short list per placed minutia. Origin of the grid
    /// (lowest x, lowest y).
    pub(crate) reach_origin: (f32, f32),
    /// 1 / side of one reach cell in pixels.
    pub(crate) reach_inv_cell: f32,
    /// Reach grid size in cells (columns, rows), as floats for the bounds test.
    pub(crate) reach_size: (f32, f32),
    /// Number of reach grid columns.
    pub(crate) reach_cols: usize,
    /// Start offset of each reach cell in `reach_points`, then two extra entries: the end of
    /// the last cell and of an empty cell (number `columns · rows`) that stands for every point
    /// outside the grid, so that the lookup needs no branch.
    pub(crate) reach_cells: Vec<u32>,
    /// Minutia indices listed by reach cell.
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
        self.edges.len()
    }
}

/// Builds the match-ready structure of a fingerprint. Never fails: corrupt minutiae are dropped
/// and a template without usable minutiae prepares to an empty structure that scores 0 against
/// everything. A zero or absurd resolution is treated as 500 dpi.
pub fn prepare(fp: &Fingerprint) -> PreparedTemplate {
    let sx = scale(fp.dpi_x);
    let sy = scale(fp.dpi_y);
    let mut kept: Vec<(u8, Point)> = fp
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
                )
            })
        })
        .collect();
    if kept.len() > MAX_PREPARED_MINUTIAE {
        // Stable: among equal qualities the extractor's order decides.
        kept.sort_by_key(|k| std::cmp::Reverse(k.0));
        kept.truncate(MAX_PREPARED_MINUTIAE);
    }
    let points: Vec<Point> = kept.into_iter().map(|(_, p)| p).collect();
    let evidence = points
        .iter()
        .map(|p| p.weight.powf(0.5 * PAIR_EVIDENCE_EXPONENT))
        .collect();
    let (edges, cells, degree) = build_edges(&points);
    let (queries, segments) = build_queries(&edges);
    let columns = EdgeColumns::of(&edges);
    let hull = Hull::of(&points.iter().map(|p| (p.x, p.y)).collect::<Vec<_>>());
    let reach = build_reach(&points);
    let seed_tolerance2 = seed_tolerances(&points);
    PreparedTemplate {
        points,
        evidence,
        edges,
        queries,
        segments,
        columns,
        cells,
        degree,
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

/// The query of every edge and their segments of index cells.
fn build_queries(edges: &[Edge]) -> (Vec<EdgeQuery>, Vec<(u16, u16)>) {
    let mut segments = Vec::new();
    let queries = edges
        .iter()
        .map(|e| {
            let tl = EDGE_LENGTH_TOLERANCE + EDGE_LENGTH_TOLERANCE_RATIO * e.len;
            let first = segments.len() as u32;
            query_segments(e, tl, &mut segments);
            EdgeQuery {
                tl,
                inv_tl: 1.0 / tl,
                first,
                end: segments.len() as u32,
            }
        })
        .collect();
    (queries, segments)
}

/// Evidence weight of a minutia of the given quality (0-100; 0 = not reported).
fn quality_weight(quality: u8) -> f32 {
    match quality {
        0 => UNREPORTED_QUALITY_WEIGHT,
        q => q.min(100) as f32 / 100.0,
    }
}

/// Pixel scale factor from a template resolution to [`COMPARE_DPI`].
fn scale(dpi: u32) -> f32 {
    if (50..=5000).contains(&dpi) {
        COMPARE_DPI / dpi as f32
    } else {
        1.0
    }
}

/// Local edges of every minutia to its nearest neighbours, bucketed into the edge index.
fn build_edges(points: &[Point]) -> (Vec<Edge>, Vec<u32>, Vec<u8>) {
    let n = points.len();
    let mut edges: Vec<Edge> = Vec::with_capacity(n * EDGE_NEIGHBOURS);
    let mut degree = vec![0u8; n];
    let mut near: Vec<(f32, usize)> = Vec::with_capacity(n);
    let max2 = EDGE_MAX_LENGTH * EDGE_MAX_LENGTH;
    let min2 = EDGE_MIN_LENGTH * EDGE_MIN_LENGTH;
    for (i, a) in points.iter().enumerate() {
        near.clear();
        for (j, b) in points.iter().enumerate() {
            let d2 = (b.x - a.x).powi(2) + (b.y - a.y).powi(2);
            if j != i && (min2..=max2).contains(&d2) {
                near.push((d2, j));
            }
        }
        let k = EDGE_NEIGHBOURS.min(near.len());
        if k < near.len() {
            near.select_nth_unstable_by(k, |x, y| x.0.total_cmp(&y.0));
        }
        for &(d2, j) in &near[..k] {
            let b = points[j];
            let theta = (b.y - a.y).atan2(b.x - a.x);
            edges.push(Edge {
                len: d2.sqrt(),
                a_from: to_turns(normalize_angle(a.dir - theta)),
                a_to: to_turns(normalize_angle(b.dir - theta)),
                from: i as u8,
            });
        }
        degree[i] = k as u8;
    }
    // Stable counting sort by index cell: within a cell, edges keep their generation order.
    let keys: Vec<u16> = edges
        .iter()
        .map(|e| cell(length_bin(e.len), angle_bin(e.a_from), angle_bin(e.a_to)) as u16)
        .collect();
    let ncells = LENGTH_BINS * EDGE_ANGLE_BINS * EDGE_ANGLE_BINS;
    let mut cells = vec![0u32; ncells + 1];
    for &k in &keys {
        cells[k as usize + 1] += 1;
    }
    for c in 0..ncells {
        cells[c + 1] += cells[c];
    }
    let mut fill = cells.clone();
    let mut sorted = edges.clone();
    for (e, &k) in edges.iter().zip(&keys) {
        sorted[fill[k as usize] as usize] = *e;
        fill[k as usize] += 1;
    }
    (sorted, cells, degree)
}

/// The reach table of [`PreparedTemplate`], before it is stored.
struct Reach {
    origin: (f32, f32),
    cell: f32,
    cols: usize,
    rows: usize,
    cells: Vec<u32>,
    points: Vec<u8>,
}

/// Reach table: cells of at least [`REACH_CELL`] pixels (at most [`REACH_MAX_CELLS`] per side)
/// over the minutiae's bounding box grown by [`PAIR_DISTANCE_TOLERANCE_MAX`]; each cell lists
/// the minutiae within that tolerance of some point of the cell (distance to the cell's
/// rectangle), in index order.
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
    // The cells a minutia reaches: those of its box grown by the margin whose rectangle lies
    // within the margin (distance to the rectangle), in row-major order.
    let reached = |p: &Point, hits: &mut Vec<usize>| {
        hits.clear();
        let span = |v: f32, origin: f32, n: usize| {
            let lo = (((v - margin - origin) / cell).max(0.0) as usize).min(n - 1);
            let hi = (((v + margin - origin) / cell).max(0.0) as usize).min(n - 1);
            lo..=hi
        };
        for r in span(p.y, y0, rows) {
            let (ry0, ry1) = (y0 + r as f32 * cell, y0 + (r + 1) as f32 * cell);
            let dy = (ry0 - p.y).max(p.y - ry1).max(0.0);
            for c in span(p.x, x0, cols) {
                let (rx0, rx1) = (x0 + c as f32 * cell, x0 + (c + 1) as f32 * cell);
                let dx = (rx0 - p.x).max(p.x - rx1).max(0.0);
                if dx * dx + dy * dy <= reach2 {
                    hits.push(r * cols + c);
                }
            }
        }
    };
    // Counting sort by cell: within a cell the minutiae stay in index order.
    let mut hits = Vec::new();
    let mut cells = vec![0u32; cols * rows + 1];
    for p in points {
        reached(p, &mut hits);
        for &k in &hits {
            cells[k + 1] += 1;
        }
    }
    for k in 0..cols * rows {
        cells[k + 1] += cells[k];
    }
    let mut fill = cells.clone();
    let mut listed = vec![0u8; cells[cols * rows] as usize];
    for (i, p) in points.iter().enumerate() {
        reached(p, &mut hits);
        for &k in &hits {
            listed[fill[k] as usize] = i as u8;
            fill[k] += 1;
        }
    }
    // The empty cell of points outside the grid.
    cells.push(cells[cols * rows]);
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
/// (row-major, seed first).
fn seed_tolerances(points: &[Point]) -> Vec<f32> {
    let mut out = Vec::with_capacity(points.len() * points.len());
    for s in points {
        for p in points {
            let d = ((p.x - s.x).powi(2) + (p.y - s.y).powi(2)).sqrt();
            let tol = (PAIR_DISTANCE_TOLERANCE + PAIR_DISTANCE_TOLERANCE_SLOPE * d)
                .min(PAIR_DISTANCE_TOLERANCE_MAX);
            out.push(tol * tol);
        }
    }
    out
}
