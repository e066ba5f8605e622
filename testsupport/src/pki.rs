//! A TEST-ONLY PKI (`issuance::pki::init`: a CSCA and a Document Signer marked test-only, their
//! keys in this process's shared SoftHSM token), made fresh for a test.

use std::path::Path;
use std::sync::Arc;

use issuance::pki::{self, DocumentSigner};
use keystore::KeyStore;

/// Makes a test PKI in `dir` (`csca.pem`, `ds.pem`, ...; the folder is created if missing, one
/// that already holds a PKI is refused) with its keys in `store`, and loads its Document
/// Signer.
pub fn signer_in_token(dir: &Path, store: &Arc<KeyStore>) -> DocumentSigner {
    pki::init(dir, store).unwrap_or_else(|e| panic!("pki init {}: {e}", dir.display()));
    DocumentSigner::load(dir, Arc::clone(store))
        .unwrap_or_else(|e| panic!("load DS of {}: {e}", dir.display()))
}

/// [`signer_in_token`] with the token most tests share ([`crate::hsm::shared`]).
pub fn signer_in(dir: &Path) -> DocumentSigner {
    signer_in_token(dir, &crate::hsm::shared())
}

/// A test PKI in a new temporary folder (removed when the returned guard drops) and its
/// Document Signer, keys in the shared token.
pub fn temp_signer() -> (tempfile::TempDir, DocumentSigner) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let signer = signer_in(dir.path());
    (dir, signer)
}
