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
/// pixels that lie inside the foreground (valleys that reach the background are kept).
fn remove_islands(bin: &mut Grid<u8>, inside: &[bool], min_area: usize) {
    if min_area == 0 {
        return;
    }
    let (w, h) = (bin.width, bin.height);
    // Padded copy: 0 valley, 1 ridge, 2 outside the foreground or the image.
    const OUTSIDE: u8 = 2;
    let pw = w + 2;
    let mut buf = vec![OUTSIDE; pw * (h + 2)];
    for y in 0..h {
        for x in 0..w {
            let i = y * w + x;
            if inside[i] {
                buf[(y + 1) * pw + x + 1] = bin.values[i];
            }
        }
    }
    let pwi = pw as isize;
    let four = [-1, 1, -pwi, pwi];
    let eight = [-1, 1, -pwi, pwi, -pwi - 1, -pwi + 1, pwi - 1, pwi + 1];
    let mut seen = vec![false; buf.len()];
    let mut stack = Vec::new();
    let mut component = Vec::new();
    for start in 0..buf.len() {
        let value = buf[start];
        if seen[start] || value == OUTSIDE {
            continue;
        }
        let offsets: &[isize] = if value == 1 { &eight } else { &four };
        seen[start] = true;
        stack.push(start);
        component.clear();
        let mut touches_outside = false;
        while let Some(i) = stack.pop() {
            component.push(i);
            for &o in offsets {
                // Padding keeps every neighbour of an inside pixel within the buffer.
                let j = (i as isize + o) as usize;
                let b = buf[j];
                if b == OUTSIDE {
                    touches_outside = true;
                } else if b == value && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        if component.len() < min_area && !(value == 0 && touches_outside) {
            for &i in &component {
                let (x, y) = (i % pw - 1, i / pw - 1);
                bin.values[y * w + x] = 1 - value;
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
