//! The extractor's output: minutiae with the image they came from.
//!
//! Coordinates are pixels of the source image (origin top-left, y down). Directions are radians
//! in [0, 2π), measured counter-clockwise from the positive x axis as seen on screen (so a
//! direction pointing "up" the image is π/2), the ISO/IEC 19794-2 convention. A ridge ending
//! points along its ridge, from the end into the ridge; a bifurcation points between its two
//! branches, away from the stem (docs/matcher.md, "ISO/IEC 19794-2 conventions").

use serde::{Deserialize, Serialize};

/// Kind of a minutia.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MinutiaKind {
    /// A ridge that ends.
    Ending,
    /// A ridge that splits in two.
    Bifurcation,
    /// Type not determined (ISO "other").
    Other,
}

/// One minutia.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Minutia {
    /// Column in pixels of the source image.
    pub x: f32,
    /// Row in pixels of the source image.
    pub y: f32,
    /// Direction in radians, [0, 2π), counter-clockwise from +x as seen on screen; an ending
    /// points into its ridge, a bifurcation between its branches (ISO/IEC 19794-2).
    pub direction: f32,
    /// Ending, bifurcation or other.
    pub kind: MinutiaKind,
    /// Reliability 0-100 (ISO/IEC 19794-2 minutia quality).
    pub quality: u8,
}

/// Everything extraction produces for one impression: what templates serialize and what the
/// comparator prepares from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Image width in pixels.
    pub width: u32,
    /// Image height in pixels.
    pub height: u32,
    /// Horizontal resolution in dots per inch.
    pub dpi_x: u32,
    /// Vertical resolution in dots per inch.
    pub dpi_y: u32,
    /// Image quality 0-100 (low values ask for a rescan).
    pub quality: u8,
    /// The minutiae.
    pub minutiae: Vec<Minutia>,
}
