//! The audit HMAC key: the token's `idcardd-audit-hmac` secret (`CKM_SHA256_HMAC`), reached
//! through the [`KeyStore`]. The key never leaves the token: whoever can rewrite `audit.db`
//! and `audit.head` together still cannot compute a MAC that verifies.

use std::sync::Arc;

use keystore::{KeyStore, KeyStoreError};

use super::{AuditError, MAC_LEN};

/// The key that chains audit entries: a handle on the token holding it. `Debug` names the
/// token, never a key.
#[derive(Clone)]
pub struct AuditKey {
    store: Arc<KeyStore>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey(token {:?})", self.store.config().token_label)
    }
}

/// A token failure as an audit error: unavailable (retry later) or refused.
pub(crate) fn token_error(e: KeyStoreError) -> AuditError {
    if e.is_unavailable() {
        AuditError::TokenUnavailable(e)
    } else {
        AuditError::Token(e)
    }
}

/// What checks a MAC: the token's key ([`AuditKey`], or a bare `&KeyStore` for `verify`).
pub(crate) trait MacCheck {
    /// Whether `mac` is the HMAC of `message`; a token failure is an error, never `false`.
    fn check(&self, message: &[u8], mac: &[u8]) -> Result<bool, AuditError>;
}

impl MacCheck for KeyStore {
    fn check(&self, message: &[u8], mac: &[u8]) -> Result<bool, AuditError> {
        if mac.len() != MAC_LEN {
            return Ok(false);
        }
        self.audit_mac_verify(message, mac).map_err(token_error)
    }
}

impl AuditKey {
    /// The audit key of `store`.
    pub fn new(store: Arc<KeyStore>) -> AuditKey {
        AuditKey { store }
    }

    /// The token the key lives in.
    pub fn store(&self) -> &Arc<KeyStore> {
        &self.store
    }

    /// HMAC-SHA256 of `message`, computed in the token.
    pub fn sign(&self, message: &[u8]) -> Result<Vec<u8>, AuditError> {
        let mac = self.store.audit_mac(message).map_err(token_error)?;
        Ok(mac.to_vec())
    }

    /// Whether `mac` is the HMAC of `message` (`C_Verify` in the token). `Ok(false)` is a MAC
    /// that does not match (an edited entry or another key); `Err` is the token failing.
    pub fn check(&self, message: &[u8], mac: &[u8]) -> Result<bool, AuditError> {
        MacCheck::check(&*self.store, message, mac)
    }
}

impl MacCheck for AuditKey {
    fn check(&self, message: &[u8], mac: &[u8]) -> Result<bool, AuditError> {
        AuditKey::check(self, message, mac)
    }
}

/// The key file of earlier releases (`audit.key`, 32 bytes), read only to verify a chain it
/// made ([`super::verify_legacy`]); never used to write. Zeroized on drop.
pub(crate) struct FileKey(zeroize::Zeroizing<[u8; 32]>);

impl FileKey {
    /// Reads the key file at `path`.
    pub(crate) fn load(path: &std::path::Path) -> Result<FileKey, AuditError> {
        let raw = zeroize::Zeroizing::new(std::fs::read(path).map_err(super::io_error(path))?);
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        if raw.len() != bytes.len() {
            return Err(AuditError::BadKey {
                path: path.to_path_buf(),
                expected: bytes.len(),
                found: raw.len(),
            });
        }
        bytes.copy_from_slice(&raw);
        Ok(FileKey(bytes))
    }
}

impl MacCheck for FileKey {
    fn check(&self, message: &[u8], mac: &[u8]) -> Result<bool, AuditError> {
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.0.as_ref());
        Ok(ring::hmac::verify(&key, message, mac).is_ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_token_and_macs_verify_in_it() {
        let key = AuditKey::new(test_support::hsm::shared());
        let debug = format!("{key:?}");
        assert!(debug.starts_with("AuditKey(token"), "{debug}");
        let mac = key.sign(b"entry").unwrap();
        assert_eq!(mac.len(), MAC_LEN);
        assert!(key.check(b"entry", &mac).unwrap());
        assert!(!key.check(b"entrY", &mac).unwrap());
        assert!(!key.check(b"entry", &mac[..5]).unwrap());
        let other = AuditKey::new(test_support::hsm::token("other").0);
        assert!(!other.check(b"entry", &mac).unwrap());
    }
}
