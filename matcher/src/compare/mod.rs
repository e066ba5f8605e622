//! 1:1 comparison: probe preparation, similarity score, multi-finger fusion, thresholds.
//!
//! Three template types are kept apart: the extractor's output ([`crate::Fingerprint`]), the
//! match-ready [`PreparedTemplate`] built here once per template (never serialized), and the
//! serialized formats of [`crate::template`].
//!
//! ```no_run
//! use matcher::compare::{compare, prepare, Scratch};
//! # fn get() -> matcher::Fingerprint { unimplemented!() }
//! let (a, b) = (prepare(&get()), prepare(&get()));
//! let mut scratch = Scratch::new();
//! let score = compare(&a, &b, &mut scratch); // in [0, 1], higher = more similar
//! # let _ = score;
//! ```

mod fusion;
mod geometry;
mod matching;
mod prepare;
mod threshold;

pub use fusion::{fuse, Fusion};
pub use matching::{compare, Scratch};
pub use prepare::{prepare, PreparedTemplate};
pub use threshold::Threshold;

/// The prepared probe of a comparison (the same structure serves both roles).
pub type PreparedProbe = PreparedTemplate;
/// The prepared candidate of a comparison (the same structure serves both roles).
pub type PreparedCandidate = PreparedTemplate;
