//! Skeleton: the binary ridges thinned to one pixel (Zhang-Suen with lookup tables, working
//! only on the pixels still on the ridge), then staircase corners removed so that every ridge
//! pixel of a plain ridge has exactly two 8-neighbours.

use super::grid::Grid;

/// Neighbour offsets in the order P2..P9 of Zhang-Suen (N, NE, E, SE, S, SW, W, NW).
const RING: [(isize, isize); 8] = [
    (0, -1),
    (1, -1),
    (1, 0),
    (1, 1),
    (0, 1),
    (-1, 1),
    (-1, 0),
    (-1, -1),
];

/// Deletion tables of the two sub-iterations, indexed by the 8-bit neighbourhood.
fn tables() -> [[bool; 256]; 2] {
    let mut t = [[false; 256]; 2];
    let [first, second] = &mut t;
    for (code, (d1, d2)) in first.iter_mut().zip(second.iter_mut()).enumerate() {
        let p: [bool; 8] = std::array::from_fn(|i| code >> i & 1 == 1);
        let b = p.iter().filter(|&&v| v).count();
        let a = (0..8).filter(|&i| !p[i] && p[(i + 1) % 8]).count();
        let base = (2..=6).contains(&b) && a == 1;
        let (n, e, s, wv) = (p[0], p[2], p[4], p[6]);
        *d1 = base && !(n && e && s) && !(e && s && wv);
        *d2 = base && !(n && e && wv) && !(n && s && wv);
    }
    t
}

/// The 8-neighbourhood code of pixel `i` in a grid with a zero border.
#[inline]
fn code(v: &[u8], w: usize, i: usize) -> usize {
    let mut c = 0;
    for (k, (dx, dy)) in RING.iter().enumerate() {
        let j = (i as isize + dy * w as isize + dx) as usize;
        c |= usize::from(v[j]) << k;
    }
    c
}

/// Thins the ridges (1) of `bin` to a one-pixel-wide skeleton.
pub(crate) fn compute(bin: &Grid<u8>) -> Grid<u8> {
    let (w, h) = (bin.width, bin.height);
    // Work on a copy with a one-pixel zero border so neighbours never leave the buffer.
    let (pw, ph) = (w + 2, h + 2);
    let mut v = vec![0u8; pw * ph];
    for y in 0..h {
        v[(y + 1) * pw + 1..(y + 1) * pw + 1 + w].copy_from_slice(&bin.values[y * w..(y + 1) * w]);
    }
    let tables = tables();
    let mut active: Vec<usize> = (0..pw * ph).filter(|&i| v[i] == 1).collect();
    let mut delete = Vec::new();
    loop {
        let mut changed = false;
        for table in &tables {
            delete.clear();
            for &i in &active {
                if table[code(&v, pw, i)] {
                    delete.push(i);
                }
            }
            for &i in &delete {
                v[i] = 0;
            }
            changed |= !delete.is_empty();
            active.retain(|&i| v[i] == 1);
        }
        if !changed {
            break;
        }
    }
    // Staircases: a pixel with two orthogonally adjacent 4-neighbours (e.g. N and E) and nothing
    // on the opposite side is redundant for 8-connectivity.
    for &i in &active {
        let c = code(&v, pw, i);
        let bit = |k: usize| c >> k & 1 == 1;
        let redundant = (0..4).any(|q| {
            let (a, b) = (2 * q, (2 * q + 2) % 8);
            bit(a) && bit(b) && !bit((a + 4) % 8) && !bit((a + 5) % 8) && !bit((a + 6) % 8)
        });
        if redundant {
            v[i] = 0;
        }
    }
    let mut out = Grid::new(w, h, 0u8);
    for y in 0..h {
        out.values[y * w..(y + 1) * w].copy_from_slice(&v[(y + 1) * pw + 1..(y + 1) * pw + 1 + w]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thick_bar_thins_to_a_line() {
        let mut bin = Grid::new(30, 12, 0u8);
        for y in 3..8 {
            for x in 3..27 {
                bin.set(x, y, 1);
            }
        }
        let sk = compute(&bin);
        for x in 6..24 {
            let column: u8 = (0..12).map(|y| sk.at(x, y)).sum();
            assert_eq!(column, 1, "column {x}");
        }
    }
}
