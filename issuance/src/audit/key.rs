//! The audit HMAC key: 32 random bytes in `audit.key` (mode 0600), zeroized in memory on drop.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::{io_error, AuditError, MAC_LEN};

/// Length of the key in bytes.
const KEY_LEN: usize = 32;

/// The key that chains audit entries. `Debug` never shows it.
pub struct AuditKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(REDACTED)")
    }
}

impl AuditKey {
    /// Reads the key at `path`; when absent and `may_create`, creates it (0600, from the
    /// system random generator). `db` is named in the error when the key is missing but the
    /// database already holds entries.
    pub fn load_or_create(
        path: &Path,
        may_create: bool,
        db: &Path,
    ) -> Result<AuditKey, AuditError> {
        match std::fs::read(path) {
            Ok(raw) => {
                let raw = Zeroizing::new(raw);
                if raw.len() != KEY_LEN {
                    return Err(AuditError::BadKey {
                        path: path.to_path_buf(),
                        expected: KEY_LEN,
                        found: raw.len(),
                    });
                }
                let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
                bytes.copy_from_slice(&raw);
                Ok(AuditKey { bytes })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && may_create => Self::create(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(AuditError::KeyMissing {
                path: path.to_path_buf(),
                db: db.to_path_buf(),
            }),
            Err(e) => Err(io_error(path)(e)),
        }
    }

    /// Loads an existing key (for `verify`, which must never create one).
    pub fn load(path: &Path, db: &Path) -> Result<AuditKey, AuditError> {
        Self::load_or_create(path, false, db)
    }

    fn create(path: &Path) -> Result<AuditKey, AuditError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        SystemRandom::new()
            .fill(bytes.as_mut())
            .map_err(|_| AuditError::Random)?;
        // create_new: two processes opening a fresh state directory at once must not end up
        // with two keys; the loser reads the winner's.
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match file {
            Ok(mut f) => {
                f.write_all(bytes.as_ref())
                    .and_then(|_| f.sync_all())
                    .map_err(io_error(path))?;
                Ok(AuditKey { bytes })
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Self::load_or_create(path, false, path)
            }
            Err(e) => Err(io_error(path)(e)),
        }
    }

    /// HMAC-SHA256 of `message`.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        // ring keeps its own copy of the key schedule only for the duration of this call.
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.bytes.as_ref());
        let tag = hmac::sign(&key, message);
        debug_assert_eq!(tag.as_ref().len(), MAC_LEN);
        tag.as_ref().to_vec()
    }

    /// Whether `mac` is the HMAC of `message` (constant time).
    pub fn check(&self, message: &[u8], mac: &[u8]) -> bool {
        let key = hmac::Key::new(hmac::HMAC_SHA256, self.bytes.as_ref());
        hmac::verify(&key, message, mac).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_the_key_and_macs_verify() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = AuditKey::load_or_create(&path, true, &path).unwrap();
        assert_eq!(format!("{key:?}"), "AuditKey(REDACTED)");
        let mac = key.sign(b"entry");
        assert!(key.check(b"entry", &mac));
        assert!(!key.check(b"entrY", &mac));
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            AuditKey::load(&path, &path),
            Err(AuditError::BadKey { found: 5, .. })
        ));
    }
}
