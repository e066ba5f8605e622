//! Errors of the matcher: bad images, bad templates, unusable fingerprints.

/// What can go wrong extracting, reading or comparing.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The image cannot be decoded or has an unsupported layout.
    #[error("invalid image: {0}")]
    InvalidImage(String),
    /// The image is outside the accepted size or resolution limits.
    #[error("image out of limits: {0}")]
    ImageLimits(String),
    /// The image holds no usable fingerprint (blank, too small a print, not a fingerprint).
    #[error("no usable fingerprint: {0}")]
    NoUsableFingerprint(String),
    /// A template failed validation while being read.
    #[error("invalid template: {0}")]
    InvalidTemplate(String),
    /// A template cannot be written in the requested format (e.g. too many minutiae).
    #[error("cannot encode template: {0}")]
    Encode(String),
    /// An OpenCV call failed.
    #[error("image processing failed: {0}")]
    OpenCv(String),
    /// File I/O.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Another extractor behind [`crate::extract::MinutiaeExtractor`] (the learned one) failed.
    #[error("{0}")]
    Extractor(String),
}

impl From<opencv::Error> for Error {
    fn from(e: opencv::Error) -> Self {
        Error::OpenCv(e.to_string())
    }
}
