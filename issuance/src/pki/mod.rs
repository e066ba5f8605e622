//! Document signing PKI and passive authentication (ICAO Doc 9303-11 §5.1, 9303-12).
//!
//! - [`init`] / [`init_with`] create a **test-only** PKI in a directory: a self-signed Country
//!   Signing CA (CSCA) and a Document Signer (DS) certificate it issued, both ECDSA P-256.
//! - [`DocumentSigner::load`] loads the DS key and certificate and checks the certificate
//!   (validity, key usage, issued by the configured CSCA) before any card is signed.
//! - [`sign_sod`] builds EF.SOD: the LDS security object (SHA-256 of every data group) in a CMS
//!   SignedData (RFC 5652) signed by the DS, wrapped in tag `77`.
//! - [`verify_sod`] is passive authentication: data group hashes, signed attributes, the
//!   signature, the DS certificate and its chain to a trusted [`CscaCertificate`].
//!
//! ```no_run
//! use std::time::SystemTime;
//! use issuance::pki::{self, CscaCertificate, DocumentSigner};
//! pki::init("pki".as_ref()).unwrap();
//! let signer = DocumentSigner::load("pki".as_ref()).unwrap();
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

pub use certs::{init, init_with, CscaCertificate, DocumentSigner, InitOptions, PkiFiles};
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
    /// The private key does not belong to the DS certificate.
    #[error("ds.key does not match the public key of ds.pem")]
    KeyMismatch,
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

/// Whether `dir` holds a Document Signer (key and certificate as `idcardd pki init` names
/// them); says nothing of whether they load.
pub fn signer_present(dir: &std::path::Path) -> bool {
    dir.join(certs::DS_KEY).is_file() && dir.join(certs::DS_PEM).is_file()
}
