//! `idcardd pki`: the document signing PKI (test CSCA and Document Signer). The private keys are
//! generated in, and used from, the embedded SoftHSM token of the state directory; the PKI
//! folder holds certificates only.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use issuance::pki;
use keystore::{KeyStore, KeyStoreConfig};

/// Subcommands of `idcardd pki`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a TEST-ONLY CSCA and Document Signer in DIR (csca.pem, csca.der, ds.pem; their
    /// private keys are generated in the token of the state directory, never written to DIR).
    Init {
        /// Directory to create the files in (created if missing; an existing PKI there is never
        /// overwritten: the command fails instead).
        dir: PathBuf,
        /// State directory whose embedded token holds the keys (created with its token when
        /// missing). Default: the parent of DIR (as `STATE/pki`).
        #[arg(long, value_name = "D")]
        state_dir: Option<PathBuf>,
    },
    /// Issue a new Document Signer in DIR from its CSCA: a new key in the token, a new ds.pem;
    /// the previous certificate is kept as ds-<serial>.pem.
    Rotate {
        /// The PKI directory (made by `idcardd pki init`).
        dir: PathBuf,
        /// State directory whose embedded token holds the keys. Default: the parent of DIR.
        #[arg(long, value_name = "D")]
        state_dir: Option<PathBuf>,
    },
}

/// The state directory of a PKI folder: the one given, else the folder's parent.
fn state_dir_of(dir: &Path, state_dir: Option<PathBuf>) -> PathBuf {
    state_dir.unwrap_or_else(|| match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    })
}

/// Opens the embedded token of `state_dir`. With `create`, a state directory without one gets
/// it (the directory and the token with every configured key) here; without, that is an error.
fn open_store(state_dir: &Path, create: bool) -> anyhow::Result<Arc<KeyStore>> {
    if !state_dir.join(keystore::EMBEDDED_DIR).exists() {
        if !create {
            anyhow::bail!(
                "{} has no key store: the CSCA key is in the token the PKI was made with \
                 (give its state directory with --state-dir)",
                state_dir.display()
            );
        }
        crate::service::private_dir(state_dir)?;
        let (store, report) = keystore::init_embedded(state_dir)
            .with_context(|| format!("creating the key store of {}", state_dir.display()))?;
        println!(
            "created token {:?} in {}",
            report.token,
            state_dir.join(keystore::EMBEDDED_DIR).display()
        );
        return Ok(Arc::new(store));
    }
    let store = KeyStore::open(&KeyStoreConfig::embedded(state_dir))
        .with_context(|| format!("opening the key store of {}", state_dir.display()))?;
    Ok(Arc::new(store))
}

/// Runs `idcardd pki`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Init { dir, state_dir } => {
            let state_dir = state_dir_of(&dir, state_dir);
            let store = open_store(&state_dir, true)?;
            let files = pki::init(&dir, &store)?;
            // Check what was written the way signing will load it.
            let signer = pki::DocumentSigner::load(&dir, Arc::clone(&store))?;
            let token = &store.config().token_label;
            println!("TEST-ONLY PKI created in {}", dir.display());
            println!("  CSCA:            {}", files.csca_pem.display());
            println!("  CSCA (DER):      {}", files.csca_der.display());
            println!("  Document Signer: {}", files.ds_pem.display());
            println!(
                "  CSCA key:        {:?} in token {token:?} ({})",
                files.csca_label,
                if files.csca_reused {
                    "already there, reused"
                } else {
                    "generated"
                }
            );
            println!(
                "  DS key:          {:?} in token {token:?} (generated)",
                files.ds_label
            );
            println!("  CSCA subject:    {}", signer.csca().subject());
            Ok(())
        }
        Command::Rotate { dir, state_dir } => {
            let state_dir = state_dir_of(&dir, state_dir);
            let store = open_store(&state_dir, false)?;
            let rotation = pki::rotate(&dir, &store)?;
            let token = &store.config().token_label;
            println!("new Document Signer in {}", dir.display());
            println!("  Document Signer: {}", rotation.ds_pem.display());
            println!("  previous DS:     {}", rotation.previous.display());
            println!(
                "  DS key:          {:?} in token {token:?} (generated)",
                rotation.ds_label
            );
            println!(
                "  issued by:       CSCA key {:?} in token {token:?}",
                rotation.csca_label
            );
            Ok(())
        }
    }
}
