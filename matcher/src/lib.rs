//! The fingerprint engine of idcardd: minutiae extraction, templates and 1:1 comparison.
#![deny(missing_docs)]

pub mod minutiae;
pub mod error;
pub mod params;
pub mod image;
pub mod transparency;
pub mod extract;
pub mod template;
pub mod compare;
pub mod eval;
pub mod synth;

pub use minutiae::{Fingerprint, Minutia, MinutiaKind};
pub use error::Error;
