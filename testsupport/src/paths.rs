//! Where things are: the repository root, its committed fixtures, and the real scans next to
//! the repository.

use std::path::{Path, PathBuf};

/// The repository (workspace) root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testsupport/ lies in the repository root")
        .to_path_buf()
}

/// `fixtures/`: the test data the project makes and commits.
pub fn fixtures() -> PathBuf {
    repo().join("fixtures")
}

/// `fixtures/applicants`: applicant records, their `manifest.toml` of expected QC verdicts, a
/// face image.
pub fn applicants() -> PathBuf {
    fixtures().join("applicants")
}

/// `fixtures/fingerprints`: synthetic scans (`<finger>_<impression>.png`), their ground truth
/// and ISO templates.
pub fn fingerprints() -> PathBuf {
    fixtures().join("fingerprints")
}

/// `../shared/fingerprints` next to the repository: the real FVC scans (`fvc2002_db1_b/`, ...),
/// which are not part of it. `None` when absent, after printing that the calling test is
/// skipped; the caller returns.
pub fn shared_fingerprints() -> Option<PathBuf> {
    let dir = repo().join("../shared/fingerprints");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!(
            "SKIPPED: {} is absent (the real FVC scans are not part of the repository)",
            dir.display()
        );
        None
    }
}
