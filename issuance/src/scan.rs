//! A fingerprint scan to minutiae: the one place the issuance core decodes a scan and runs the
//! extractor, for enrollment QC and for the live scan at delivery alike, with one size limit
//! (the resolution a scan that states none is read at is `matcher::params::DEFAULT_DPI`).

use matcher::Fingerprint;

/// Largest encoded scan accepted (bytes): a 2 000 x 2 000 8-bit scan, the largest image the
/// extractor takes, fits uncompressed.
pub const MAX_SCAN_BYTES: usize = 4 * 1024 * 1024;

/// Why a scan gave no minutiae.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScanError {
    /// More than [`MAX_SCAN_BYTES`]: refused before decoding.
    #[error("the scan is too large ({len} bytes; at most {MAX_SCAN_BYTES})")]
    TooLarge {
        /// Its size.
        len: usize,
    },
    /// Not an image the decoder reads, or out of its limits.
    #[error("not a readable image: {0}")]
    Unreadable(String),
    /// An image, but no usable fingerprint in it (blank, smudged, too small): scan again.
    #[error("no usable fingerprint: {0}")]
    NoFingerprint(String),
    /// The extractor refused it for another reason (e.g. an impossible resolution).
    #[error("cannot be processed: {0}")]
    Unusable(String),
}

/// Decodes `bytes` (PNG, TIFF, BMP, ...) at `dpi` and extracts its minutiae.
pub fn extract(bytes: &[u8], dpi: u32) -> Result<Fingerprint, ScanError> {
    extract_by(bytes, dpi, &matcher::extract::Classical::default())
}

/// [`extract`] with another extractor (the learned one of a second opinion).
pub fn extract_by(
    bytes: &[u8],
    dpi: u32,
    extractor: &dyn matcher::extract::MinutiaeExtractor,
) -> Result<Fingerprint, ScanError> {
    extract_image(&decode(bytes)?, dpi, extractor)
}

/// Decodes `bytes` (PNG, TIFF, BMP, ...), refusing more than [`MAX_SCAN_BYTES`] first.
pub fn decode(bytes: &[u8]) -> Result<matcher::image::GrayImage, ScanError> {
    if bytes.len() > MAX_SCAN_BYTES {
        return Err(ScanError::TooLarge { len: bytes.len() });
    }
    matcher::image::GrayImage::decode(bytes).map_err(|e| ScanError::Unreadable(e.to_string()))
}

/// The minutiae of a decoded scan by `extractor`, with this module's errors.
pub fn extract_image(
    image: &matcher::image::GrayImage,
    dpi: u32,
    extractor: &dyn matcher::extract::MinutiaeExtractor,
) -> Result<Fingerprint, ScanError> {
    extractor.extract(image, dpi).map_err(|e| match e {
        matcher::Error::NoUsableFingerprint(why) => ScanError::NoFingerprint(why),
        other => ScanError::Unusable(other.to_string()),
    })
}
