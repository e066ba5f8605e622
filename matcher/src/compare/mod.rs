//! 1:1 comparison: probe preparation, similarity score, multi-finger fusion, thresholds.
//!
//! Three template types are kept apart: the extractor's output ([`crate::Fingerprint`]), the
//! match-ready [`PreparedTemplate`] built here once per template (never serialized), and the
//! serialized formats of [`crate::template`].
//!
//! ```
//! use matcher::compare::{compare, prepare, Scratch};
//! use matcher::{Fingerprint, Minutia, MinutiaKind};
//!
//! // A small print on a 40-pixel lattice; in practice this comes from `matcher::extract`.
//! let minutiae = (0..24)
//!     .map(|i| Minutia {
//!         x: 40.0 + 40.0 * (i % 6) as f32 + (i * 7 % 11) as f32,
//!         y: 40.0 + 40.0 * (i / 6) as f32 + (i * 5 % 13) as f32,
//!         direction: (i as f32 * 0.7) % std::f32::consts::TAU,
//!         kind: if i % 3 == 0 { MinutiaKind::Bifurcation } else { MinutiaKind::Ending },
//!         quality: 80,
//!     })
//!     .collect();
//! let print = Fingerprint { width: 300, height: 300, dpi_x: 500, dpi_y: 500, quality: 80, minutiae };
//! let (probe, candidate) = (prepare(&print), prepare(&print));
//! let mut scratch = Scratch::new();
//! let score = compare(&probe, &candidate, &mut scratch); // in [0, 1], higher = more similar
//! assert!(score > 0.5, "a print matches itself: {score}");
//! ```

mod fusion;
mod geometry;
mod matching;
mod prepare;
mod threshold;

pub use fusion::{fuse, Fusion};
pub use matching::{compare, compare_exhaustive, compare_outcome, Outcome, Scratch};
pub use prepare::{prepare, prepare_stored, PreparedTemplate};
pub use threshold::{ScoreScale, Threshold};

/// The prepared probe of a comparison (the same structure serves both roles).
pub type PreparedProbe = PreparedTemplate;
/// The prepared candidate of a comparison (the same structure serves both roles).
pub type PreparedCandidate = PreparedTemplate;
