//! `idcardd keys init`: the embedded SoftHSM token of a state directory, and the issuer's keys
//! generated in whatever token the configuration names.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use cryptoki::session::UserType;
use cryptoki::types::AuthPin;
use serde::Serialize;
use zeroize::Zeroizing;

use crate::config::{
    so_pin_file, user_pin_file, KeyStoreConfig, EMBEDDED_CONF, EMBEDDED_DIR, EMBEDDED_TOKEN,
};
use crate::error::KeyStoreError;
use crate::module;
use crate::store::KeyStore;

/// What `keys init` did.
#[derive(Debug, Clone, Serialize)]
pub struct InitReport {
    /// The token label.
    pub token: String,
    /// Whether the token was created now (false: it existed).
    pub token_created: bool,
    /// Each configured key label and whether it was generated now.
    pub keys: Vec<(String, bool)>,
    /// The SoftHSM configuration of the embedded token.
    pub softhsm_conf: Option<PathBuf>,
}

/// Random PIN text: 32 hex digits from the system generator.
fn random_pin() -> Result<Zeroizing<String>, KeyStoreError> {
    use ring::rand::SecureRandom as _;
    let mut raw = Zeroizing::new([0u8; 16]);
    ring::rand::SystemRandom::new()
        .fill(raw.as_mut())
        .map_err(|_| KeyStoreError::Config("the system random generator failed".into()))?;
    Ok(Zeroizing::new(hex::encode(raw.as_ref())))
}

/// Writes `text` to a new owner-only file (fails if it exists).
fn write_secret_file(path: &Path, text: &str) -> Result<(), KeyStoreError> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(KeyStoreError::io(path))?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.write_all(b"\n"))
        .and_then(|_| f.sync_all())
        .map_err(KeyStoreError::io(path))
}

fn private_dir(path: &Path) -> Result<(), KeyStoreError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(KeyStoreError::io(path))
}

/// Creates (or completes) the embedded SoftHSM token of `state_dir`: `state_dir/hsm/` with its
/// own `softhsm2.conf` and token directory (nothing under /etc or /var is touched), random user
/// and SO PINs in owner-only files, the token `idcardd`, then every configured key. Running it
/// again generates only what is missing.
pub fn init_embedded(state_dir: &Path) -> Result<(KeyStore, InitReport), KeyStoreError> {
    init_softhsm(&state_dir.join(EMBEDDED_DIR), EMBEDDED_TOKEN)
}

/// Like [`init_embedded`] for a token labelled `label` whose SoftHSM configuration, token
/// directory and PIN files are in `dir` ([`KeyStoreConfig::softhsm`]).
pub fn init_softhsm(dir: &Path, label: &str) -> Result<(KeyStore, InitReport), KeyStoreError> {
    let config = KeyStoreConfig::softhsm(dir, label);
    let tokens = dir.join("tokens");
    private_dir(&tokens)?;
    let conf = dir.join(EMBEDDED_CONF);
    if !conf.is_file() {
        let text = format!(
            "# The embedded token of this idcardd state directory (idcardd keys init).\n\
             directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n\
             slots.removable = false\n",
            tokens.display()
        );
        write_secret_file(&conf, &text)?;
    }
    let pin_path = dir.join(user_pin_file(label));
    let so_path = dir.join(so_pin_file(label));
    let module = module::load(&config.module, config.softhsm_conf.as_deref())?;
    let pkcs11 = &module.ctx;
    let exists = module::token_slot(pkcs11, label)
        .map_err(|e| module_error(&config, e))?
        .is_some();
    if !exists {
        if pin_path.exists() || so_path.exists() {
            return Err(KeyStoreError::Config(format!(
                "{} holds PIN files but no token: restore the token directory {} from the \
                 backup, or remove the PIN files to start a new token (and new keys)",
                dir.display(),
                tokens.display()
            )));
        }
        let user_pin = random_pin()?;
        let so_pin = random_pin()?;
        let slot = pkcs11
            .get_all_slots()
            .map_err(|e| module_error(&config, e))?
            .into_iter()
            .find(|s| {
                pkcs11
                    .get_token_info(*s)
                    .is_ok_and(|t| !t.token_initialized())
            })
            .ok_or_else(|| KeyStoreError::Config("SoftHSM offers no free slot".into()))?;
        let so = AuthPin::from(so_pin.to_string());
        pkcs11
            .init_token(slot, &so, label)
            .map_err(|e| module_error(&config, e))?;
        // SoftHSM moves an initialized token to a new slot id: find it again by label.
        let slot = module::token_slot(pkcs11, label)
            .map_err(|e| module_error(&config, e))?
            .ok_or_else(|| KeyStoreError::Config("the new token did not appear".into()))?;
        let session = pkcs11
            .open_rw_session(slot)
            .map_err(|e| module_error(&config, e))?;
        session
            .login(UserType::So, Some(&so))
            .and_then(|_| session.init_pin(&AuthPin::from(user_pin.to_string())))
            .and_then(|_| session.logout())
            .map_err(|e| module_error(&config, e))?;
        drop(session);
        write_secret_file(&so_path, &so_pin)?;
        write_secret_file(&pin_path, &user_pin)?;
    }
    let store = KeyStore::connect(&config)?;
    let keys = store.generate_missing()?;
    let report = InitReport {
        token: label.into(),
        token_created: !exists,
        keys,
        softhsm_conf: Some(conf),
    };
    Ok((store, report))
}

/// Generates the configured keys a token (any HSM) lacks; the token itself must exist (an HSM's
/// tokens are made with its own tools).
pub fn init_configured(config: &KeyStoreConfig) -> Result<(KeyStore, InitReport), KeyStoreError> {
    let store = KeyStore::connect(config)?;
    let keys = store.generate_missing()?;
    let report = InitReport {
        token: config.token_label.clone(),
        token_created: false,
        keys,
        softhsm_conf: config.softhsm_conf.clone(),
    };
    Ok((store, report))
}

fn module_error(config: &KeyStoreConfig, e: cryptoki::error::Error) -> KeyStoreError {
    KeyStoreError::Module {
        module: config.module.clone(),
        reason: e.to_string(),
    }
}
