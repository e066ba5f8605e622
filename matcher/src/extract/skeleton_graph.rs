//! Skeleton graph: the skeleton as nodes (ridge endings and junctions) joined by ridges (pixel
//! paths), pruned of the structures that thinning makes out of noise: short spurs, short
//! fragments, short bridges between neighbouring ridges and small loops (pores, holes).
//! Pruning works on the graph, not on single minutiae, so a junction left with two ridges after
//! its spur is removed is dissolved and its ridges joined, and later rounds see the true lengths.

use super::grid::Grid;
use crate::params::ExtractParams;

/// A ridge ending or junction.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Position (pixels): the centre of the node's pixels.
    pub x: f32,
    /// Position (pixels).
    pub y: f32,
    /// Pixel index (row-major) of the node's pixel nearest to its centre.
    pub pixel: usize,
    /// Ridges attached (a ridge from the node to itself appears twice).
    pub ridges: Vec<usize>,
    /// False once pruned or dissolved.
    pub alive: bool,
}

/// A ridge between two nodes.
#[derive(Debug, Clone)]
pub(crate) struct Ridge {
    /// Start node.
    pub a: usize,
    /// End node.
    pub b: usize,
    /// Pixels from `a` to `b`, both nodes' own pixels excluded.
    pub path: Vec<usize>,
    /// False once pruned or joined into a longer ridge.
    pub alive: bool,
}

impl Ridge {
    /// Length in pixels (steps from node to node).
    pub fn length(&self) -> usize {
        self.path.len() + 1
    }
}

/// The graph of one skeleton.
#[derive(Debug, Clone)]
pub(crate) struct SkeletonGraph {
    /// Image width (to turn pixel indices into positions).
    pub width: usize,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Ridges.
    pub ridges: Vec<Ridge>,
}

const NEIGHBOURS: [(isize, isize); 8] = [
    (-1, -1),
    (0, -1),
    (1, -1),
    (-1, 0),
    (1, 0),
    (-1, 1),
    (0, 1),
    (1, 1),
];

impl SkeletonGraph {
    /// Alive ridges at node `n`.
    pub fn degree(&self, n: usize) -> usize {
        self.nodes[n]
            .ridges
            .iter()
            .filter(|&&r| self.ridges[r].alive)
            .count()
    }

    /// The pixel `distance` steps along ridge `r` away from node `n` (the far node's pixel if the
    /// ridge is shorter).
    pub fn point_along(&self, r: usize, n: usize, distance: usize) -> (f32, f32) {
        let ridge = &self.ridges[r];
        let len = ridge.path.len();
        let pixel = if distance > len || len == 0 {
            let far = if ridge.a == n { ridge.b } else { ridge.a };
            return (self.nodes[far].x, self.nodes[far].y);
        } else if ridge.a == n {
            ridge.path[distance - 1]
        } else {
            ridge.path[len - distance]
        };
        ((pixel % self.width) as f32, (pixel / self.width) as f32)
    }
}

/// Number of 8-neighbours set for every pixel (0 for background).
fn neighbour_counts(sk: &Grid<u8>) -> Vec<u8> {
    let (w, h) = (sk.width, sk.height);
    let mut counts = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            if sk.at(x, y) == 0 {
                continue;
            }
            let mut n = 0;
            for (dx, dy) in NEIGHBOURS {
                let (nx, ny) = (x as isize + dx, y as isize + dy);
                if nx >= 0
                    && ny >= 0
                    && (nx as usize) < w
                    && (ny as usize) < h
                    && sk.at(nx as usize, ny as usize) != 0
                {
                    n += 1;
                }
            }
            counts[y * w + x] = n;
        }
    }
    counts
}

/// Neighbour pixel indices of `i` that are skeleton pixels.
fn neighbours(sk: &Grid<u8>, i: usize, out: &mut Vec<usize>) {
    out.clear();
    let (w, h) = (sk.width, sk.height);
    let (x, y) = ((i % w) as isize, (i / w) as isize);
    for (dx, dy) in NEIGHBOURS {
        let (nx, ny) = (x + dx, y + dy);
        if nx >= 0 && ny >= 0 && (nx as usize) < w && (ny as usize) < h {
            let j = ny as usize * w + nx as usize;
            if sk.values[j] != 0 {
                out.push(j);
            }
        }
    }
}

/// Builds the graph of a skeleton.
pub(crate) fn build(sk: &Grid<u8>) -> SkeletonGraph {
    let (w, h) = (sk.width, sk.height);
    let counts = neighbour_counts(sk);
    const NONE: u32 = u32::MAX;
    let mut node_of = vec![NONE; w * h];
    let mut nodes: Vec<Node> = Vec::new();
    let mut nb = Vec::with_capacity(8);
    let mut stack = Vec::new();
    // Nodes: endings (one neighbour) alone, junction pixels (three or more) merged by contact.
    for i in 0..w * h {
        let c = counts[i];
        if c == 0 || c == 2 || node_of[i] != NONE {
            continue;
        }
        let id = nodes.len() as u32;
        let mut pixels = vec![i];
        node_of[i] = id;
        if c >= 3 {
            stack.push(i);
            while let Some(p) = stack.pop() {
                neighbours(sk, p, &mut nb);
                for &q in &nb {
                    if counts[q] >= 3 && node_of[q] == NONE {
                        node_of[q] = id;
                        pixels.push(q);
                        stack.push(q);
                    }
                }
            }
        }
        let n = pixels.len() as f32;
        let cx = pixels.iter().map(|&p| (p % w) as f32).sum::<f32>() / n;
        let cy = pixels.iter().map(|&p| (p / w) as f32).sum::<f32>() / n;
        let pixel = pixels
            .iter()
            .copied()
            .min_by(|&p, &q| {
                let d = |p: usize| ((p % w) as f32 - cx).powi(2) + ((p / w) as f32 - cy).powi(2);
                d(p).total_cmp(&d(q)).then(p.cmp(&q))
            })
            .unwrap_or(i);
        nodes.push(Node {
            x: cx,
            y: cy,
            pixel,
            ridges: Vec::new(),
            alive: true,
        });
    }
    // Ridges: walk from every node pixel through two-neighbour pixels to the next node pixel.
    let mut ridges: Vec<Ridge> = Vec::new();
    let mut visited = vec![false; w * h];
    let mut direct = std::collections::HashSet::new();
    let mut nb2 = Vec::with_capacity(8);
    for start in 0..w * h {
        let a = node_of[start];
        if a == NONE {
            continue;
        }
        neighbours(sk, start, &mut nb);
        for &q in &nb {
            let nq = node_of[q];
            if nq == a {
                continue;
            }
            if nq != NONE {
                // Two nodes touching: a ridge without interior pixels, recorded once.
                let key = (a.min(nq), a.max(nq));
                if direct.insert(key) {
                    ridges.push(Ridge {
                        a: a as usize,
                        b: nq as usize,
                        path: Vec::new(),
                        alive: true,
                    });
                }
                continue;
            }
            if visited[q] {
                continue;
            }
            let mut path = vec![q];
            visited[q] = true;
            let (mut prev, mut cur) = (start, q);
            let mut end = None;
            for _ in 0..w * h {
                neighbours(sk, cur, &mut nb2);
                let next = nb2
                    .iter()
                    .copied()
                    .find(|&n| n != prev && (node_of[n] != NONE || !visited[n]));
                let Some(next) = next else { break };
                if node_of[next] != NONE {
                    end = Some(node_of[next]);
                    break;
                }
                visited[next] = true;
                path.push(next);
                prev = cur;
                cur = next;
            }
            if let Some(b) = end {
                ridges.push(Ridge {
                    a: a as usize,
                    b: b as usize,
                    path,
                    alive: true,
                });
            }
        }
    }
    for (r, ridge) in ridges.iter().enumerate() {
        nodes[ridge.a].ridges.push(r);
        nodes[ridge.b].ridges.push(r);
    }
    SkeletonGraph {
        width: w,
        nodes,
        ridges,
    }
}

/// Removes ridge `r`.
fn kill(g: &mut SkeletonGraph, r: usize) {
    g.ridges[r].alive = false;
}

/// Dissolves node `n` if exactly two distinct ridges meet there, joining them into one.
fn dissolve(g: &mut SkeletonGraph, n: usize) -> bool {
    let alive: Vec<usize> = g.nodes[n]
        .ridges
        .iter()
        .copied()
        .filter(|&r| g.ridges[r].alive)
        .collect();
    if alive.len() != 2 {
        return false;
    }
    let (r1, r2) = (alive[0], alive[1]);
    if r1 == r2 {
        // A closed ring through this node only: no minutiae on it.
        kill(g, r1);
        g.nodes[n].alive = false;
        return true;
    }
    // Orient r1 to end at n and r2 to start at n.
    let mut p1 = g.ridges[r1].path.clone();
    let start = if g.ridges[r1].b == n {
        g.ridges[r1].a
    } else {
        p1.reverse();
        g.ridges[r1].b
    };
    let mut p2 = g.ridges[r2].path.clone();
    let end = if g.ridges[r2].a == n {
        g.ridges[r2].b
    } else {
        p2.reverse();
        g.ridges[r2].a
    };
    p1.push(g.nodes[n].pixel);
    p1.extend(p2);
    kill(g, r1);
    kill(g, r2);
    g.nodes[n].alive = false;
    let id = g.ridges.len();
    g.ridges.push(Ridge {
        a: start,
        b: end,
        path: p1,
        alive: true,
    });
    g.nodes[start].ridges.push(id);
    g.nodes[end].ridges.push(id);
    true
}

/// Prunes spurs, fragments, bridges and small loops, dissolving the junctions they leave.
pub(crate) fn prune(g: &mut SkeletonGraph, p: &ExtractParams) {
    for _ in 0..6 {
        let mut changed = false;
        for r in 0..g.ridges.len() {
            if !g.ridges[r].alive {
                continue;
            }
            let (a, b, len) = (g.ridges[r].a, g.ridges[r].b, g.ridges[r].length());
            let (da, db) = (g.degree(a), g.degree(b));
            if a == b {
                // Loop back to the same junction: a pore or a tiny enclosure.
                if len < 2 * p.min_bridge_length + p.min_spur_length {
                    kill(g, r);
                    changed = true;
                }
            } else if da == 1 && db == 1 {
                if len < p.min_fragment_length {
                    kill(g, r);
                    g.nodes[a].alive = false;
                    g.nodes[b].alive = false;
                    changed = true;
                }
            } else if da == 1 || db == 1 {
                if len < p.min_spur_length {
                    kill(g, r);
                    g.nodes[if da == 1 { a } else { b }].alive = false;
                    changed = true;
                }
            } else if len < p.min_bridge_length {
                kill(g, r);
                changed = true;
            }
        }
        for n in 0..g.nodes.len() {
            if g.nodes[n].alive && g.degree(n) == 0 {
                g.nodes[n].alive = false;
            }
            if g.nodes[n].alive && g.degree(n) == 2 {
                changed |= dissolve(g, n);
            }
        }
        if !changed {
            break;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(sk: &mut Grid<u8>, x0: usize, x1: usize, y: usize) {
        for x in x0..=x1 {
            sk.set(x, y, 1);
        }
    }

    #[test]
    fn spur_is_pruned_and_its_junction_dissolved() {
        let mut sk = Grid::new(60, 20, 0u8);
        line(&mut sk, 5, 55, 10);
        // A 5-pixel spur going up from (30, 10).
        for y in 5..10 {
            sk.set(30, y, 1);
        }
        let mut g = build(&sk);
        let endings = |g: &SkeletonGraph| {
            (0..g.nodes.len())
                .filter(|&n| g.nodes[n].alive && g.degree(n) == 1)
                .count()
        };
        let junctions = |g: &SkeletonGraph| {
            (0..g.nodes.len())
                .filter(|&n| g.nodes[n].alive && g.degree(n) >= 3)
                .count()
        };
        assert_eq!(endings(&g), 3);
        assert_eq!(junctions(&g), 1);
        prune(&mut g, &ExtractParams::default());
        assert_eq!(endings(&g), 2);
        assert_eq!(junctions(&g), 0);
        let alive: Vec<&Ridge> = g.ridges.iter().filter(|r| r.alive).collect();
        assert_eq!(alive.len(), 1);
        // 50 steps end to end, less the junction's pixels merged into one.
        assert!(
            (46..=50).contains(&alive[0].length()),
            "{}",
            alive[0].length()
        );
    }

    #[test]
    fn short_fragment_is_pruned_long_ridge_kept() {
        let mut sk = Grid::new(60, 20, 0u8);
        line(&mut sk, 5, 15, 5);
        line(&mut sk, 5, 55, 15);
        let mut g = build(&sk);
        prune(&mut g, &ExtractParams::default());
        let alive: Vec<&Ridge> = g.ridges.iter().filter(|r| r.alive).collect();
        assert_eq!(alive.len(), 1);
        assert_eq!(g.point_along(0, 0, 3).1, 5.0);
    }
}
