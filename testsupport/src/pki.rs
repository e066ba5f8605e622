//! A TEST-ONLY PKI (`issuance::pki::init`: a CSCA and a Document Signer marked test-only),
//! made fresh for a test.

use std::path::Path;

use issuance::pki::{self, DocumentSigner};

/// Makes a test PKI in `dir` (`csca.pem`, `ds.pem`, `ds.key`, ...; the folder is created if
/// missing, one that already holds a PKI is refused) and loads its Document Signer.
pub fn signer_in(dir: &Path) -> DocumentSigner {
    pki::init(dir).unwrap_or_else(|e| panic!("pki init {}: {e}", dir.display()));
    DocumentSigner::load(dir).unwrap_or_else(|e| panic!("load DS of {}: {e}", dir.display()))
}

/// A test PKI in a new temporary folder (removed when the returned guard drops) and its
/// Document Signer.
pub fn temp_signer() -> (tempfile::TempDir, DocumentSigner) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let signer = signer_in(dir.path());
    (dir, signer)
}
