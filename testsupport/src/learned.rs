//! The optional learned extractor, as the tests that need it find it.

use std::path::PathBuf;

/// The folder of the learned extractor scripts/setup.sh installs, or `None` with a message
/// saying the calling test skips (a machine that never ran setup).
pub fn installed_dir() -> Option<PathBuf> {
    let dir = leader::LearnedExtractor::default_dir();
    if leader::LearnedExtractor::installed(&dir) {
        return Some(dir);
    }
    eprintln!(
        "skipping: the learned extractor is not installed in {} (bash scripts/setup.sh)",
        dir.display()
    );
    None
}
