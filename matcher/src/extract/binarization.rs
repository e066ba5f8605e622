//! Binary image: ridge where the enhanced image is positive, inside the foreground; ridge and
//! valley islands smaller than a minimum area are flipped (dots, pores, specks of noise).

use super::grid::Grid;

/// 1 = ridge, 0 = valley or background.
pub(crate) fn compute(
    enhanced: &Grid<f32>,
    mask: &Grid<bool>,
    block: usize,
    min_island: usize,
) -> Grid<u8> {
    let (w, h) = (enhanced.width, enhanced.height);
    let mut bin = Grid::new(w, h, 0u8);
    let mut inside = vec![false; w * h];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            inside[i] = mask.at(x / block, y / block);
            bin.values[i] = u8::from(inside[i] && enhanced.values[i] > 0.0);
        }
    }
    remove_islands(&mut bin, &inside, min_island);
    bin
}

/// Flips 8-connected (ridges) or 4-connected (valleys) components smaller than `min_area`
/// pixels that lie inside the foreground.
fn remove_islands(bin: &mut Grid<u8>, inside: &[bool], min_area: usize) {
    if min_area == 0 {
        return;
    }
    let (w, h) = (bin.width, bin.height);
    let mut seen = vec![false; w * h];
    let mut stack = Vec::new();
    let mut component = Vec::new();
    for start in 0..w * h {
        if seen[start] || !inside[start] {
            continue;
        }
        let value = bin.values[start];
        let eight = value == 1;
        seen[start] = true;
        stack.push(start);
        component.clear();
        let mut touches_outside = false;
        while let Some(i) = stack.pop() {
            component.push(i);
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            for (dx, dy) in [
                (-1, 0),
                (1, 0),
                (0, -1),
                (0, 1),
                (-1, -1),
                (1, -1),
                (-1, 1),
                (1, 1),
            ] {
                if !eight && dx != 0 && dy != 0 {
                    continue;
                }
                let (nx, ny) = (x + dx, y + dy);
                if nx < 0 || ny < 0 || nx >= w as isize || ny >= h as isize {
                    continue;
                }
                let j = ny as usize * w + nx as usize;
                if !inside[j] {
                    touches_outside = true;
                    continue;
                }
                if !seen[j] && bin.values[j] == value {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        if component.len() < min_area && !(value == 0 && touches_outside) {
            for &i in &component {
                bin.values[i] = 1 - value;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_islands_flip() {
        let mut bin = Grid::new(20, 20, 0u8);
        for x in 2..18 {
            bin.set(x, 5, 1);
        }
        bin.set(10, 12, 1);
        let inside = vec![true; 400];
        remove_islands(&mut bin, &inside, 5);
        assert_eq!(bin.at(10, 12), 0);
        assert_eq!(bin.at(9, 5), 1);
    }
}
