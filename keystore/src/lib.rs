//! The issuer's keys in a PKCS#11 token, with SoftHSM2 as the embedded default.
//!
//! No key of idcardd exists outside a token: the card masters, the Document Signer and test
//! CSCA keys, the audit chain's HMAC key and the PIN mailer's encryption key are generated in
//! the token as sensitive, non-extractable objects, and every use is a PKCS#11 operation:
//!
//! | key (default label) | type | operation |
//! |---|---|---|
//! | `idcardd-perso-master`, `idcardd-terminal-master` | AES-256 | `CKM_AES_CMAC`: the SP 800-108 derivation of each card's keys ([`KeyStore::derive_card_key`], also [`apdu::sm::CardKeys`]) |
//! | `idcardd-ds-<n>`, `idcardd-csca` | EC P-256 | `CKM_ECDSA` of a SHA-256 digest ([`KeyStore::sign_p256_digest`]) |
//! | `idcardd-audit-hmac` | 256-bit generic secret | `CKM_SHA256_HMAC` ([`KeyStore::audit_mac`]) |
//! | `idcardd-pin-mailer` | AES-256 | `CKM_AES_GCM` ([`KeyStore::seal`], [`KeyStore::open_sealed`]) |
//!
//! Main types:
//! - [`KeyStoreConfig`]: module path, token label, the user PIN's source ([`PinSource`]: a file
//!   or an environment variable, never argv), key labels. [`KeyStoreConfig::embedded`] is the
//!   SoftHSM token in a state directory; a production HSM is another module path and label.
//! - [`KeyStore`]: the logged-in token with a pool of sessions (parallel readers derive and
//!   sign at once; no lock around the token). A token that stops answering makes operations
//!   fail with [`KeyStoreError::Unavailable`] until it is back; the next operation logs in again.
//! - [`init_embedded`] / [`init_configured`]: `idcardd keys init`. [`KeyStore::list`]: `keys
//!   list` (labels, mechanisms, attributes; never values). [`KeyStore::check`]: the policy
//!   (sensitive, not extractable, the right type, size and usage) checked at start and in
//!   `system.health`.

mod config;
mod error;
mod init;
mod keys;
mod module;
mod store;

pub use config::{
    so_pin_file, softhsm_module, user_pin_file, KeyLabels, KeyStoreConfig, PinSource,
    EMBEDDED_CONF, EMBEDDED_DIR, EMBEDDED_TOKEN,
};
pub use error::KeyStoreError;
pub use init::{init_configured, init_embedded, init_softhsm, InitReport};
pub use keys::{KeyInfo, KeyPurpose};
pub use store::{ec_key_id, KeyStore, GCM_NONCE_LEN, GCM_TAG_LEN, HMAC_LEN};
