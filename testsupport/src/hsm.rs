//! SoftHSM tokens for tests: one SoftHSM configuration per test process (SoftHSM reads it once
//! per process), holding as many tokens as the tests of that process ask for.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use keystore::{KeyStore, KeyStoreConfig};

/// The folder of this process's SoftHSM configuration, token directory and PIN files (a
/// temporary folder kept until the process exits).
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("idcardd-test-hsm-")
            .tempdir()
            .expect("temporary folder")
            .keep();
        dir
    })
}

/// A token labelled `label` in [`dir`] with every idcardd key generated, and its configuration
/// (the same one a daemon of this test is given). Made once per label and process.
pub fn token(label: &str) -> (Arc<KeyStore>, KeyStoreConfig) {
    static TOKENS: std::sync::Mutex<Vec<(String, Arc<KeyStore>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut tokens = TOKENS.lock().unwrap_or_else(|p| p.into_inner());
    let config = KeyStoreConfig::softhsm(dir(), label);
    if let Some((_, store)) = tokens.iter().find(|(l, _)| l == label) {
        return (Arc::clone(store), config);
    }
    let (store, _) = keystore::init_softhsm(dir(), label)
        .unwrap_or_else(|e| panic!("SoftHSM token {label} in {}: {e}", dir().display()));
    let store = Arc::new(store);
    tokens.push((label.to_string(), Arc::clone(&store)));
    (store, config)
}

/// The label of the token most tests share.
pub const SHARED: &str = "test-issuer";

/// The token most tests share ([`SHARED`]).
pub fn shared() -> Arc<KeyStore> {
    token(SHARED).0
}

/// The configuration of the shared token: what an in-process daemon (`ServiceConfig::keys`)
/// of a test is given, so that it and the test's own cards use the same keys.
pub fn shared_config() -> KeyStoreConfig {
    token(SHARED).1
}

/// The `[keys]` section of a daemon configuration that uses token `label` of this process.
pub fn config_toml(label: &str) -> String {
    keys_toml(&token(label).1)
}

/// The `[keys]` section naming the embedded token of another state directory `state_dir` (one
/// `idcardd keys init` or `idcardd pki init --state-dir` made).
pub fn embedded_toml(state_dir: &Path) -> String {
    keys_toml(&KeyStoreConfig::embedded(state_dir))
}

/// The `[keys]` section of a daemon configuration for `config` (a SoftHSM token, PIN in a file).
pub fn keys_toml(config: &KeyStoreConfig) -> String {
    let keystore::PinSource::File(pin) = &config.pin else {
        unreachable!("SoftHSM test tokens keep their PIN in a file")
    };
    format!(
        "[keys]\nmodule = {:?}\ntoken_label = {:?}\npin = {{ file = {:?} }}\nsofthsm_conf = {:?}\n",
        config.module.display().to_string(),
        config.token_label,
        pin.display().to_string(),
        config
            .softhsm_conf
            .as_ref()
            .expect("SoftHSM test tokens have a configuration")
            .display()
            .to_string(),
    )
}
