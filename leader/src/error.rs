//! The one error type of the crate.

use std::path::PathBuf;

/// Why the learned extractor could not be loaded or could not extract.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the extractor (model or runtime) is absent or unreadable.
    #[error("{path}: {source} (scripts/setup.sh installs the learned extractor)")]
    Io {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        source: std::io::Error,
    },
    /// A file is not the one this release was built and measured with.
    #[error(
        "{path}: SHA-256 {found}, expected {expected} (not the file scripts/setup.sh installs)"
    )]
    Checksum {
        /// The file.
        path: PathBuf,
        /// The pinned digest.
        expected: &'static str,
        /// The file's digest.
        found: String,
    },
    /// ONNX Runtime refused to load or to run the model.
    #[error("ONNX Runtime: {0}")]
    Runtime(String),
    /// The image cannot be brought to the network's input (resolution or size limits).
    #[error(transparent)]
    Image(#[from] matcher::Error),
}

impl From<ort::Error> for Error {
    fn from(e: ort::Error) -> Error {
        Error::Runtime(e.to_string())
    }
}
