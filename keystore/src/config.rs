//! Where the keys are: the PKCS#11 module, the token, the user PIN's source, the key labels.

use std::path::{Path, PathBuf};

use cryptoki::types::AuthPin;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::KeyStoreError;

/// Where Debian's `softhsm2` package installs the module (first one present wins).
pub const SOFTHSM_MODULES: [&str; 2] = [
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
];
/// Folder of the embedded token inside a state directory.
pub const EMBEDDED_DIR: &str = "hsm";
/// The SoftHSM configuration file of the embedded token.
pub const EMBEDDED_CONF: &str = "softhsm2.conf";
/// The user PIN file of a SoftHSM token made by idcardd: `<label>.pin` (mode 0600).
pub fn user_pin_file(label: &str) -> String {
    format!("{label}.pin")
}
/// The security officer PIN file: `<label>.so.pin` (mode 0600; only `keys init` uses it).
pub fn so_pin_file(label: &str) -> String {
    format!("{label}.so.pin")
}
/// The token label of the embedded token.
pub const EMBEDDED_TOKEN: &str = "idcardd";

/// Where the user PIN comes from: never the command line, never a log line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PinSource {
    /// The first line of a file (owner-only, like the embedded token's `user.pin`).
    File(PathBuf),
    /// An environment variable, by name.
    Env(String),
}

impl PinSource {
    /// Reads the PIN now.
    pub(crate) fn read(&self) -> Result<AuthPin, KeyStoreError> {
        let raw = match self {
            PinSource::File(path) => Zeroizing::new(
                std::fs::read_to_string(path)
                    .map_err(|e| KeyStoreError::PinSource(format!("{}: {e}", path.display())))?,
            ),
            PinSource::Env(var) => Zeroizing::new(std::env::var(var).map_err(|_| {
                KeyStoreError::PinSource(format!("environment variable {var} is not set"))
            })?),
        };
        let pin = raw.lines().next().unwrap_or("").trim();
        if pin.is_empty() {
            return Err(KeyStoreError::PinSource(match self {
                PinSource::File(p) => format!("{} is empty", p.display()),
                PinSource::Env(v) => format!("environment variable {v} is empty"),
            }));
        }
        Ok(AuthPin::from(pin.to_string()))
    }
}

/// The labels of the issuer's keys in the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KeyLabels {
    /// AES-256 personalization master (card key 01 is derived from it and the serial).
    pub perso_master: String,
    /// AES-256 terminal master (card key 02).
    pub terminal_master: String,
    /// 256-bit generic secret for the audit chain's HMAC-SHA256.
    pub audit_hmac: String,
    /// AES-256 key the PIN mailer is sealed under (AES-GCM).
    pub mailer: String,
    /// The test CSCA's EC P-256 key pair (`idcardd pki init`).
    pub csca: String,
    /// Prefix of Document Signer key pairs: `<prefix>-<n>`, one per rotation.
    pub ds_prefix: String,
}

impl Default for KeyLabels {
    fn default() -> Self {
        KeyLabels {
            perso_master: "idcardd-perso-master".into(),
            terminal_master: "idcardd-terminal-master".into(),
            audit_hmac: "idcardd-audit-hmac".into(),
            mailer: "idcardd-pin-mailer".into(),
            csca: "idcardd-csca".into(),
            ds_prefix: "idcardd-ds".into(),
        }
    }
}

/// How to reach the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyStoreConfig {
    /// The PKCS#11 module (shared library) of the HSM.
    pub module: PathBuf,
    /// The token's label.
    pub token_label: String,
    /// Where the user PIN is read from.
    pub pin: PinSource,
    /// The key labels.
    #[serde(default)]
    pub labels: KeyLabels,
    /// SoftHSM only: the `SOFTHSM2_CONF` file naming its token directory, set for this process
    /// before the module is initialized.
    #[serde(default)]
    pub softhsm_conf: Option<PathBuf>,
    /// Most PKCS#11 sessions kept open for parallel use (one per busy reader thread).
    #[serde(default = "default_sessions")]
    pub max_sessions: usize,
}

fn default_sessions() -> usize {
    16
}

/// The SoftHSM module of this machine, if the package is installed.
pub fn softhsm_module() -> Option<PathBuf> {
    SOFTHSM_MODULES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

impl KeyStoreConfig {
    /// The embedded SoftHSM token of `state_dir` (what `idcardd keys init --state-dir` makes):
    /// `state_dir/hsm/{softhsm2.conf,tokens/,idcardd.pin}`, token label `idcardd`.
    pub fn embedded(state_dir: &Path) -> KeyStoreConfig {
        KeyStoreConfig::softhsm(&state_dir.join(EMBEDDED_DIR), EMBEDDED_TOKEN)
    }

    /// A SoftHSM token labelled `label` whose configuration, token directory and PIN files are
    /// in `dir` (several tokens may share one `dir`).
    pub fn softhsm(dir: &Path, label: &str) -> KeyStoreConfig {
        KeyStoreConfig {
            module: softhsm_module().unwrap_or_else(|| PathBuf::from(SOFTHSM_MODULES[0])),
            token_label: label.into(),
            pin: PinSource::File(dir.join(user_pin_file(label))),
            labels: KeyLabels::default(),
            softhsm_conf: Some(dir.join(EMBEDDED_CONF)),
            max_sessions: default_sessions(),
        }
    }

    /// Every configured label, with what it is, in `keys list` order.
    pub fn named_keys(&self) -> [(&'static str, &str); 4] {
        [
            ("personalization master", &self.labels.perso_master),
            ("terminal master", &self.labels.terminal_master),
            ("audit HMAC", &self.labels.audit_hmac),
            ("PIN mailer", &self.labels.mailer),
        ]
    }
}
