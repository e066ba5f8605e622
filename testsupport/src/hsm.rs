//! SoftHSM tokens for tests: one SoftHSM configuration per test process (SoftHSM reads it once
//! per process), holding as many tokens as the tests of that process ask for.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use keystore::{KeyStore, KeyStoreConfig};

/// Start of the name of every process's folder; the process id follows, then a `-`.
const DIR_PREFIX: &str = "idcardd-test-hsm-";

/// The folder of this process's SoftHSM configuration, token directory and PIN files: a
/// temporary folder that outlives every test of the process (a static is never dropped), named
/// after the process so that the next test process removes it once this one has ended.
pub fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        remove_folders_of_ended_processes(&std::env::temp_dir());
        tempfile::Builder::new()
            .prefix(&format!("{DIR_PREFIX}{}-", std::process::id()))
            .tempdir()
            .expect("temporary folder")
            .keep()
    })
}

/// Removes the folders [`dir`] made in `parent` for processes that no longer run (`/proc` has no
/// entry for their id). Best effort: a folder that cannot be read or removed stays.
fn remove_folders_of_ended_processes(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split_once('-'))
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_of_ended_processes_are_removed_and_others_kept() {
        let parent = tempfile::tempdir().unwrap();
        let alive = parent
            .path()
            .join(format!("{DIR_PREFIX}{}-abc", std::process::id()));
        // Far above any Linux pid_max (4 194 304): no such process.
        let ended = parent.path().join(format!("{DIR_PREFIX}4294967295-abc"));
        let unrelated = parent.path().join(format!("{DIR_PREFIX}abc"));
        for d in [&alive, &ended, &unrelated] {
            std::fs::create_dir_all(d.join("tokens")).unwrap();
        }
        remove_folders_of_ended_processes(parent.path());
        assert!(alive.exists());
        assert!(!ended.exists());
        assert!(unrelated.exists());
    }
}
