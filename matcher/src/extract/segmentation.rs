//! Foreground mask on the block grid: blocks with enough contrast and ridge flow, smoothed by
//! majority voting, reduced to the largest connected region with its holes filled.

use super::grid::Grid;
use crate::params::ExtractParams;

/// Foreground blocks (`true` = fingerprint); `p90` is the 90th percentile of `std`
/// ([`super::contrast::percentile_90`]).
pub(crate) fn compute(
    std: &Grid<f32>,
    p90: f32,
    coherence: &Grid<f32>,
    p: &ExtractParams,
) -> Grid<bool> {
    let (w, h) = (std.width, std.height);
    let threshold = (p.segmentation_relative_contrast * p90).max(p.segmentation_min_contrast);
    let mut mask = Grid::new(w, h, false);
    for i in 0..w * h {
        mask.values[i] =
            std.values[i] > threshold && coherence.values[i] > p.segmentation_min_coherence;
    }
    for _ in 0..p.segmentation_smoothing_passes {
        mask = majority(&mask);
    }
    let mask = largest_region(&mask);
    fill_holes(&mask)
}

/// 3x3 majority vote (cells outside the grid count as background).
fn majority(mask: &Grid<bool>) -> Grid<bool> {
    let (w, h) = (mask.width, mask.height);
    let mut out = Grid::new(w, h, false);
    for y in 0..h {
        for x in 0..w {
            let mut n = 0;
            for yy in y.saturating_sub(1)..(y + 2).min(h) {
                for xx in x.saturating_sub(1)..(x + 2).min(w) {
                    n += usize::from(mask.at(xx, yy));
                }
            }
            out.set(x, y, n >= 5);
        }
    }
    out
}

/// Labels 4-connected regions of cells equal to `value`; returns labels (0 = other) and sizes.
fn regions(mask: &Grid<bool>, value: bool) -> (Vec<u32>, Vec<usize>) {
    let (w, h) = (mask.width, mask.height);
    let mut labels = vec![0u32; w * h];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..w * h {
        if mask.values[start] != value || labels[start] != 0 {
            continue;
        }
        let label = sizes.len() as u32;
        let mut size = 0;
        labels[start] = label;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % w, i / w);
            let mut visit = |j: usize| {
                if mask.values[j] == value && labels[j] == 0 {
                    labels[j] = label;
                    stack.push(j);
                }
            };
            if x > 0 {
                visit(i - 1);
            }
            if x + 1 < w {
                visit(i + 1);
            }
            if y > 0 {
                visit(i - w);
            }
            if y + 1 < h {
                visit(i + w);
            }
        }
        sizes.push(size);
    }
    (labels, sizes)
}

/// Keeps only the largest foreground region.
fn largest_region(mask: &Grid<bool>) -> Grid<bool> {
    let (labels, sizes) = regions(mask, true);
    let best = (1..sizes.len()).max_by_key(|&l| (sizes[l], std::cmp::Reverse(l)));
    let mut out = Grid::new(mask.width, mask.height, false);
    if let Some(best) = best {
        for (o, &l) in out.values.iter_mut().zip(&labels) {
            *o = l as usize == best;
        }
    }
    out
}

/// Turns background regions that do not touch the grid's edge into foreground.
fn fill_holes(mask: &Grid<bool>) -> Grid<bool> {
    let (w, h) = (mask.width, mask.height);
    let (labels, sizes) = regions(mask, false);
    let mut outer = vec![false; sizes.len()];
    for x in 0..w {
        outer[labels[x] as usize] = true;
        outer[labels[(h - 1) * w + x] as usize] = true;
    }
    for y in 0..h {
        outer[labels[y * w] as usize] = true;
        outer[labels[y * w + w - 1] as usize] = true;
    }
    let mut out = mask.clone();
    for (o, &l) in out.values.iter_mut().zip(&labels) {
        if l != 0 && !outer[l as usize] {
            *o = true;
        }
    }
    out
}

/// Shrinks the mask by `steps` blocks (8-neighbourhood) from its boundary with the background.
/// The grid's edge does not erode: where the print runs off the scan, the edge is the sensor's,
/// not the print's (filtering drops what lies within a few pixels of it).
pub(crate) fn erode(mask: &Grid<bool>, steps: usize) -> Grid<bool> {
    let (w, h) = (mask.width, mask.height);
    let mut cur = mask.clone();
    for _ in 0..steps {
        let mut next = Grid::new(w, h, false);
        for y in 0..h {
            for x in 0..w {
                let mut all = cur.at(x, y);
                if all {
                    'n: for yy in y.saturating_sub(1)..(y + 2).min(h) {
                        for xx in x.saturating_sub(1)..(x + 2).min(w) {
                            if !cur.at(xx, yy) {
                                all = false;
                                break 'n;
                            }
                        }
                    }
                }
                next.set(x, y, all);
            }
        }
        cur = next;
    }
    cur
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holes_filled_and_small_regions_dropped() {
        let mut m = Grid::new(10, 10, false);
        for y in 1..8 {
            for x in 1..8 {
                m.set(x, y, true);
            }
        }
        m.set(4, 4, false);
        m.set(9, 9, true);
        let out = fill_holes(&largest_region(&m));
        assert!(out.at(4, 4));
        assert!(!out.at(9, 9));
        assert_eq!(out.values.iter().filter(|&&b| b).count(), 49);
        let e = erode(&out, 1);
        assert_eq!(e.values.iter().filter(|&&b| b).count(), 25);
    }

    #[test]
    fn a_print_running_off_the_grid_erodes_only_from_its_background_side() {
        // Foreground in the left four columns, touching the top, left and bottom edges.
        let mut m = Grid::new(10, 6, false);
        for y in 0..6 {
            for x in 0..4 {
                m.set(x, y, true);
            }
        }
        let e = erode(&m, 2);
        for y in 0..6 {
            for x in 0..10 {
                assert_eq!(e.at(x, y), x < 2, "({x}, {y})");
            }
        }
    }
}
