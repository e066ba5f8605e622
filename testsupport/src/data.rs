//! Made-up contents for card files.

/// `n` bytes that differ from file to file (`seed`) and along the file, so a misplaced or lost
/// piece shows.
pub fn pattern(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}
