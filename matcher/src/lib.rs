//! The fingerprint engine of idcardd: minutiae extraction, templates and 1:1 comparison.
#![deny(missing_docs)]

pub mod compare;
pub mod error;
pub mod eval;
pub mod extract;
pub mod image;
pub mod minutiae;
pub mod params;
pub mod synth;
pub mod template;
pub mod transparency;

pub use error::Error;
pub use minutiae::{Fingerprint, Minutia, MinutiaKind};
