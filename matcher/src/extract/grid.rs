//! A small row-major 2-D buffer shared by the stages (pixel images and block fields).

/// A `width` x `height` grid of values, row-major.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grid<T> {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `width * height` values.
    pub values: Vec<T>,
}

impl<T: Copy> Grid<T> {
    /// A grid filled with `value`.
    pub fn new(width: usize, height: usize, value: T) -> Self {
        Grid {
            width,
            height,
            values: vec![value; width * height],
        }
    }

    /// The value at column `x`, row `y` (callers keep them in range).
    #[inline]
    pub fn at(&self, x: usize, y: usize) -> T {
        self.values[y * self.width + x]
    }

    /// Sets the value at column `x`, row `y`.
    #[inline]
    pub fn set(&mut self, x: usize, y: usize, value: T) {
        self.values[y * self.width + x] = value;
    }

    /// The value at the nearest cell to a possibly out-of-range signed position.
    #[inline]
    pub fn clamped(&self, x: isize, y: isize) -> T {
        let x = x.clamp(0, self.width as isize - 1) as usize;
        let y = y.clamp(0, self.height as isize - 1) as usize;
        self.at(x, y)
    }

    /// A grid of the same shape with `f` applied to every value.
    pub fn map<U>(&self, f: impl Fn(T) -> U) -> Grid<U> {
        Grid {
            width: self.width,
            height: self.height,
            values: self.values.iter().map(|&v| f(v)).collect(),
        }
    }
}
