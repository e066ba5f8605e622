//! Multi-finger decisions: fusing the scores of several fingers (e.g. the two fingers stored on
//! an ID card) into one score.
//!
//! - [`Fusion::Max`]: the best finger decides. Robust to one badly placed finger, but every extra
//!   finger adds chances of a false match: with `n` independent fingers the FMR at a given
//!   threshold grows up to `n` times, so calibrate the threshold on fused impostor scores
//!   ([`super::Threshold::for_fmr`] on `fuse(..)` of impostor score sets).
//! - [`Fusion::Mean`]: the sum rule, normalized by the number of fingers so the score stays in
//!   [0, 1]. Usually more accurate when every finger was captured well; one failed finger halves
//!   a two-finger score.

/// How several per-finger scores are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fusion {
    /// Highest per-finger score.
    #[default]
    Max,
    /// Mean of the per-finger scores (sum rule).
    Mean,
}

/// Fuses per-finger scores. No scores fuse to 0; NaN scores count as 0.
pub fn fuse(scores: &[f32], rule: Fusion) -> f32 {
    if scores.is_empty() {
        return 0.0;
    }
    let clean = scores.iter().map(|&s| if s.is_nan() { 0.0 } else { s });
    match rule {
        Fusion::Max => clean.fold(0.0f32, f32::max),
        Fusion::Mean => clean.sum::<f32>() / scores.len() as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules() {
        assert_eq!(fuse(&[0.2, 0.6], Fusion::Max), 0.6);
        assert!((fuse(&[0.2, 0.6], Fusion::Mean) - 0.4).abs() < 1e-6);
        assert_eq!(fuse(&[], Fusion::Mean), 0.0);
        assert_eq!(fuse(&[f32::NAN, 0.3], Fusion::Max), 0.3);
    }
}
