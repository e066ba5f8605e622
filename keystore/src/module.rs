//! Loading a PKCS#11 module once per process, and starting it again when a token vanished.
//!
//! A module is one set of global state in a process (`C_Initialize` once, every session shares
//! its login). SoftHSM reads `SOFTHSM2_CONF` at initialization only, so one process serves the
//! tokens of one SoftHSM configuration; asking for a second one is a clear error, not a silent
//! use of the first.
//!
//! Many modules (SoftHSM among them) look for their tokens only in `C_Initialize`: a token that
//! went away (its storage or its network gone) is not found again when it comes back. So when
//! a key store cannot find its token, [`Module::reinitialize`] finalizes and initializes the
//! module again, at most once per [`REINIT_INTERVAL`]. Every operation holds the module's
//! gate shared ([`Module::gate`]); only re-initialization takes it exclusively, so operations
//! of parallel readers never wait for each other.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};

use crate::error::KeyStoreError;

/// The shortest time between two re-initializations of one module.
pub const REINIT_INTERVAL: Duration = Duration::from_millis(500);

/// A loaded, initialized module.
pub(crate) struct Module {
    /// The PKCS#11 context.
    pub ctx: Pkcs11,
    path: PathBuf,
    softhsm_conf: Option<PathBuf>,
    /// Held shared by every operation, exclusively by re-initialization.
    gate: RwLock<()>,
    /// Counts re-initializations: sessions and handles of an earlier epoch are gone.
    epoch: AtomicU64,
    last_reinit: Mutex<Option<Instant>>,
}

/// The modules this process has initialized.
static LOADED: Mutex<Vec<Arc<Module>>> = Mutex::new(Vec::new());

fn init_args() -> CInitializeArgs {
    CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)
}

impl Module {
    /// Held while using the module.
    pub fn gate(&self) -> RwLockReadGuard<'_, ()> {
        self.gate.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Held alone while creating token objects (key generation): SoftHSM 2.6's file store fails
    /// a creation at random with CKR_GENERAL_ERROR while other threads use the token (SoftHSMv2
    /// issue #573). Creation is rare (`keys init`, `pki init`, a DS rotation) and short; the
    /// hot path (derivation, signing, sealing) shares the gate and never waits on another.
    pub fn exclusive(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap_or_else(|p| p.into_inner())
    }

    /// The current epoch (see [`Module::reinitialize`]).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Finalizes and initializes the module again so that it looks for its tokens afresh,
    /// unless that was done less than [`REINIT_INTERVAL`] ago; returns whether it was done.
    /// Every session of every key store on this module is gone afterwards (the epoch changes).
    /// The caller must not hold [`Module::gate`].
    pub fn reinitialize(&self) -> bool {
        let _exclusive = self.gate.write().unwrap_or_else(|p| p.into_inner());
        let mut last = self.last_reinit.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < REINIT_INTERVAL) {
            return false;
        }
        *last = Some(Instant::now());
        // A module whose token vanished may report errors here: it is started again anyway.
        let _ = self.ctx.clone().finalize();
        let ok = self.ctx.initialize(init_args()).is_ok();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        tracing::info!(
            module = %self.path.display(),
            "PKCS#11 module initialized again to look for its token"
        );
        ok
    }
}

/// The module at `module`, initialized (OS locking: sessions are used from many threads).
/// `softhsm_conf` is exported as `SOFTHSM2_CONF` before the first initialization.
pub(crate) fn load(
    module: &Path,
    softhsm_conf: Option<&Path>,
) -> Result<Arc<Module>, KeyStoreError> {
    let mut loaded = LOADED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(m) = loaded.iter().find(|m| m.path == module) {
        if m.softhsm_conf.as_deref() != softhsm_conf {
            return Err(KeyStoreError::Config(format!(
                "this process already uses {} with SOFTHSM2_CONF={}; one process serves one \
                 SoftHSM configuration",
                module.display(),
                m.softhsm_conf
                    .as_deref()
                    .map_or("(unset)".into(), |c| c.display().to_string())
            )));
        }
        return Ok(Arc::clone(m));
    }
    let fail = |reason: String| KeyStoreError::Module {
        module: module.to_path_buf(),
        reason,
    };
    if !module.is_file() {
        return Err(fail(
            "no such file (install the HSM's PKCS#11 library; for the embedded default, \
             Debian's softhsm2 package: bash scripts/setup.sh)"
                .into(),
        ));
    }
    if let Some(conf) = softhsm_conf {
        if !conf.is_file() {
            return Err(fail(format!(
                "SoftHSM configuration {} does not exist (run `idcardd keys init --state-dir DIR`)",
                conf.display()
            )));
        }
        // Read by SoftHSM in C_Initialize below, and nowhere else.
        std::env::set_var("SOFTHSM2_CONF", conf);
    }
    let ctx = Pkcs11::new(module).map_err(|e| fail(format!("cannot load: {e}")))?;
    ctx.initialize(init_args())
        .map_err(|e| fail(format!("C_Initialize: {e}")))?;
    let m = Arc::new(Module {
        ctx,
        path: module.to_path_buf(),
        softhsm_conf: softhsm_conf.map(Path::to_path_buf),
        gate: RwLock::new(()),
        epoch: AtomicU64::new(0),
        last_reinit: Mutex::new(None),
    });
    loaded.push(Arc::clone(&m));
    Ok(m)
}

/// The slot whose initialized token is labelled `label`.
pub(crate) fn token_slot(
    pkcs11: &cryptoki::context::Pkcs11,
    label: &str,
) -> Result<Option<cryptoki::slot::Slot>, cryptoki::error::Error> {
    Ok(pkcs11.get_slots_with_token()?.into_iter().find(|s| {
        pkcs11
            .get_token_info(*s)
            .is_ok_and(|t| t.token_initialized() && t.label() == label)
    }))
}
