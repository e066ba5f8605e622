//! The one error type of the key store.

use std::path::PathBuf;

/// What went wrong with the key store. Every message names the module, token or key label
/// concerned and never a PIN or key bytes.
#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    /// The configuration is incomplete or inconsistent (no PIN source, a bad label).
    #[error("key store configuration: {0}")]
    Config(String),
    /// The PKCS#11 module could not be loaded or initialized.
    #[error("PKCS#11 module {module}: {reason}")]
    Module {
        /// The module path.
        module: PathBuf,
        /// Why.
        reason: String,
    },
    /// No initialized token with the configured label.
    #[error("no token labelled {label:?} in {module} (create one with `idcardd keys init --state-dir DIR`)")]
    NoToken {
        /// The configured token label.
        label: String,
        /// The module path.
        module: PathBuf,
    },
    /// The token refused the user PIN (or the PIN is locked).
    #[error("token {label:?} refused the user PIN: {reason}")]
    Pin {
        /// The token label.
        label: String,
        /// The token's answer.
        reason: String,
    },
    /// The PIN file or variable could not be read.
    #[error("user PIN: {0}")]
    PinSource(String),
    /// A configured key is not in the token.
    #[error(
        "key {label:?} is not in token {token:?} (`idcardd keys init` generates the missing keys)"
    )]
    MissingKey {
        /// The key label.
        label: String,
        /// The token label.
        token: String,
    },
    /// A key exists with attributes the issuer's policy forbids or the use needs.
    #[error("key {label:?} has the wrong attributes: {reason}")]
    WrongAttributes {
        /// The key label.
        label: String,
        /// What is wrong.
        reason: String,
    },
    /// The token is not reachable now (removed, HSM restarting, network HSM down). Nothing was
    /// done with a partial result: the caller may retry once it is back.
    #[error("token {label:?} unavailable: {reason}")]
    Unavailable {
        /// The token label.
        label: String,
        /// The module's answer.
        reason: String,
    },
    /// The token refused an operation for a reason that retrying does not cure (a sealed
    /// record that does not authenticate, a mechanism the token lacks).
    #[error("{operation}: {reason}")]
    Crypto {
        /// What was attempted.
        operation: String,
        /// The token's answer.
        reason: String,
    },
    /// A file of the embedded token could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl KeyStoreError {
    /// Whether the failure is the token being unreachable (retry later) rather than a fault of
    /// the configuration, the keys or the data.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, KeyStoreError::Unavailable { .. })
    }

    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> KeyStoreError + '_ {
        move |source| KeyStoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

impl From<KeyStoreError> for apdu::Error {
    /// A card key the store cannot give: retryable when the token is away, else a usage error
    /// (nothing is sent to the card either way).
    fn from(e: KeyStoreError) -> apdu::Error {
        if e.is_unavailable() {
            apdu::Error::KeyUnavailable(e.to_string())
        } else {
            apdu::Error::Usage(e.to_string())
        }
    }
}
