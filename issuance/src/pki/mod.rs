//! Document signing PKI and passive authentication (ICAO Doc 9303-11 §5.1, 9303-12).
//!
//! - [`init`] / [`init_with`] create a **test-only** PKI in a directory: a self-signed Country
//!   Signing CA (CSCA) and a Document Signer (DS) certificate it issued (from a PKCS#10
//!   request), both ECDSA P-256 whose private keys are generated in, and never leave, the
//!   PKCS#11 token ([`keystore::KeyStore`]). The directory holds certificates only.
//! - [`rotate`] issues a new DS (new token key, new certificate from the same CSCA) and keeps
//!   the previous certificate as `ds-<serial hex>.pem`.
//! - [`DocumentSigner::load`] loads the DS certificate, checks it (validity, key usage, issued
//!   by the configured CSCA) and that the token holds its key, before any card is signed.
//! - [`sign_sod`] builds EF.SOD: the LDS security object (SHA-256 of every data group) in a CMS
//!   SignedData (RFC 5652) signed by the DS in the token, wrapped in tag `77`.
//! - [`verify_sod`] is passive authentication: data group hashes, signed attributes, the
//!   signature, the DS certificate and its chain to a trusted [`CscaCertificate`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::SystemTime;
//! use issuance::pki::{self, CscaCertificate, DocumentSigner};
//! let store = Arc::new(
//!     keystore::KeyStore::open(&keystore::KeyStoreConfig::embedded("state".as_ref())).unwrap(),
//! );
//! pki::init("pki".as_ref(), &store).unwrap();
//! let signer = DocumentSigner::load("pki".as_ref(), Arc::clone(&store)).unwrap();
//! let dg1 = b"\x61\x03\x5F\x1F\x00".to_vec();
//! let dg2 = b"\x75\x00".to_vec();
//! let sod = pki::sign_sod(&signer, &[(1, &dg1), (2, &dg2)]).unwrap();
//! let csca = CscaCertificate::load("pki/csca.pem".as_ref()).unwrap();
//! let report = pki::verify_sod(&sod, &[(1, &dg1), (2, &dg2)], &[csca], SystemTime::now());
//! assert!(report.is_ok());
//! ```

use std::path::PathBuf;

mod certs;
mod crypto;
mod sod;

pub use certs::{
    check_ds_certificate, init, init_with, rotate, CscaCertificate, DocumentSigner, InitOptions,
    PkiFiles, Rotation,
};
pub use sod::{sign_sod, verify_sod, PassiveAuthReport};

/// What can go wrong creating or loading the PKI, or signing.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `init` refuses to overwrite an existing PKI.
    #[error("{0} already exists; refusing to overwrite it")]
    AlreadyExists(PathBuf),
    /// A certificate or key file does not parse.
    #[error("{what}: {reason}")]
    Malformed {
        /// Which file or object.
        what: String,
        /// What is wrong.
        reason: String,
    },
    /// The DS certificate is not valid yet.
    #[error("DS certificate not valid before {not_before}")]
    NotYetValid {
        /// Its notBefore.
        not_before: String,
    },
    /// The DS certificate has expired.
    #[error("DS certificate expired on {not_after}")]
    Expired {
        /// Its notAfter.
        not_after: String,
    },
    /// The DS certificate does not allow digitalSignature.
    #[error("DS certificate key usage does not include digitalSignature")]
    WrongKeyUsage,
    /// The DS certificate was not issued by the configured CSCA.
    #[error("DS certificate was not issued by the configured CSCA: {0}")]
    WrongChain(String),
    /// The token key found by the DS certificate's key id does not sign for its public key.
    #[error("the token key with the key id of ds.pem does not match ds.pem's public key")]
    KeyMismatch,
    /// The token has no private key for the DS (or CSCA) certificate.
    #[error(
        "the private key of the certificate (CKA_ID {key_id}) is not in token {token:?}: this \
         PKI folder was made with another token (use the state directory or [keys] \
         configuration it was made with)"
    )]
    KeyNotInToken {
        /// The CKA_ID looked for, hex.
        key_id: String,
        /// The token's label.
        token: String,
    },
    /// The token failed (unreachable, or refused the operation).
    #[error("key store: {0}")]
    KeyStore(#[source] keystore::KeyStoreError),
    /// A certificate uses an algorithm this module does not implement.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The data to sign is not acceptable (data group numbers).
    #[error("cannot sign: {0}")]
    Input(String),
    /// Key generation, certificate creation or signing failed.
    #[error("crypto failure: {0}")]
    Crypto(String),
}

impl PkiError {
    /// Whether the failure is the token being unreachable now (retry once it is back) rather
    /// than a fault of the PKI files, the keys or the data.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, PkiError::KeyStore(e) if e.is_unavailable())
    }
}

impl From<keystore::KeyStoreError> for PkiError {
    fn from(e: keystore::KeyStoreError) -> PkiError {
        PkiError::KeyStore(e)
    }
}

/// Why passive authentication failed. Each variant is one distinct verdict.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaError {
    /// EF.SOD does not parse as tag 77 / CMS SignedData / LDS security object.
    #[error("malformed EF.SOD: {0}")]
    MalformedSod(String),
    /// The SOD uses an algorithm this verifier does not implement.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// The hash of data group `dg` differs from the one the SOD signs: the data group was
    /// altered.
    #[error("data group {dg} was tampered with: its hash does not match the SOD")]
    TamperedDataGroup {
        /// The data group number.
        dg: u8,
    },
    /// A data group was read that the SOD has no hash for.
    #[error("data group {dg} is not covered by the SOD")]
    DataGroupNotCovered {
        /// The data group number.
        dg: u8,
    },
    /// The signed attributes do not bind the security object (messageDigest or contentType).
    #[error("signed attributes do not match the LDS security object: {0}")]
    SignedAttributes(String),
    /// The DS signature over the signed attributes does not verify.
    #[error("the SOD signature does not verify with the DS certificate")]
    BadSignature,
    /// No trusted CSCA issued the DS certificate.
    #[error("DS certificate issued by an unknown CSCA: {issuer}")]
    UnknownCsca {
        /// The DS certificate's issuer.
        issuer: String,
    },
    /// The DS certificate names a trusted CSCA but its signature does not verify with it.
    #[error("DS certificate signature does not verify with the CSCA {csca}")]
    BadDsCertificate {
        /// The CSCA tried.
        csca: String,
    },
    /// The DS certificate has expired.
    #[error("DS certificate expired on {not_after}")]
    ExpiredDs {
        /// Its notAfter.
        not_after: String,
    },
    /// The DS certificate is not valid yet.
    #[error("DS certificate not valid before {not_before}")]
    DsNotYetValid {
        /// Its notBefore.
        not_before: String,
    },
    /// The DS certificate's key usage does not allow digitalSignature.
    #[error("DS certificate key usage does not include digitalSignature")]
    DsKeyUsage,
}

/// Whether `dir` holds a Document Signer (the CSCA and DS certificates as `idcardd pki init`
/// names them; the keys are in the token); says nothing of whether they load.
pub fn signer_present(dir: &std::path::Path) -> bool {
    dir.join(certs::CSCA_PEM).is_file() && dir.join(certs::DS_PEM).is_file()
}
