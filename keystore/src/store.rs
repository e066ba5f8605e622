//! [`KeyStore`]: the token, a pool of PKCS#11 sessions, and every key operation idcardd does.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use apdu::sm::{self, AesKey, CardKeys, KeyRef, BLOCK};
use cryptoki::context::Pkcs11;
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::config::KeyStoreConfig;
use crate::error::KeyStoreError;
use crate::module::{self, Module};

/// Length of the AES-GCM nonce of a sealed record.
pub const GCM_NONCE_LEN: usize = 12;
/// Length of the AES-GCM tag of a sealed record.
pub const GCM_TAG_LEN: usize = 16;
/// Length of an HMAC-SHA256 tag.
pub const HMAC_LEN: usize = 32;
/// Length of the card masters (AES-256).
const MASTER_LEN: usize = 32;

/// The issuer's token. Every key operation of idcardd goes through it; it holds no key
/// material, only object handles and the sessions.
///
/// Sessions are pooled, not locked: each operation takes an idle session (or opens one, up to
/// `max_sessions`), so reader threads sign and derive in parallel. When the token stops
/// answering (removed, HSM restarting), the sessions are dropped and the next operation logs in
/// again (initializing the module again when the token cannot be found, see
/// [`crate::module`]); until then operations fail with [`KeyStoreError::Unavailable`].
pub struct KeyStore {
    config: KeyStoreConfig,
    module: Arc<Module>,
    conn: Mutex<Conn>,
    idle: Mutex<Vec<(u64, Session)>>,
    handles: Mutex<HashMap<(u64, HandleKey), ObjectHandle>>,
}

/// The login: the slot, the session that keeps the user logged in, a generation counter that
/// retires the sessions and handles of an earlier login, and the module epoch it was made in.
struct Conn {
    slot: Option<Slot>,
    anchor: Option<Session>,
    generation: u64,
    epoch: u64,
    pin: Option<AuthPin>,
}

/// Lets go of a session of an earlier login without closing it: after the module was
/// initialized again its handle may name another, live session.
fn forget(session: Session) {
    std::mem::forget(session);
}

/// What a cached object handle was found by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum HandleKey {
    Secret(String),
    EcPrivate(Vec<u8>),
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("module", &self.config.module)
            .field("token", &self.config.token_label)
            .finish_non_exhaustive()
    }
}

/// Whether a PKCS#11 failure means the token or the session went away (retry after a new
/// login) rather than a refused operation.
fn token_gone(e: &CkError) -> bool {
    match e {
        CkError::Pkcs11(rv, _) => matches!(
            rv,
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::SessionCount
                | RvError::DeviceRemoved
                | RvError::DeviceError
                | RvError::DeviceMemory
                | RvError::TokenNotPresent
                | RvError::TokenNotRecognized
                | RvError::SlotIdInvalid
                | RvError::UserNotLoggedIn
                | RvError::CryptokiNotInitialized
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid
        ),
        _ => false,
    }
}

/// The CKA_ID of an EC key: the first 20 bytes of SHA-256 of its uncompressed point (what a
/// certificate's public key is matched to its private key by).
pub fn ec_key_id(point: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, point).as_ref()[..20].to_vec()
}

/// DER of the prime256v1 OID, the CKA_EC_PARAMS of P-256 keys.
pub(crate) const P256_PARAMS: [u8; 10] =
    [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

impl KeyStore {
    /// Loads the module, finds the token, logs in and checks every configured key (present,
    /// sensitive, not extractable, usable for its one purpose). Any failure is a clear error:
    /// a daemon refuses to start on it.
    pub fn open(config: &KeyStoreConfig) -> Result<KeyStore, KeyStoreError> {
        let store = KeyStore::connect(config)?;
        if let Some(problem) = store.check()?.into_iter().next() {
            return Err(problem);
        }
        Ok(store)
    }

    /// Like [`KeyStore::open`] without the key checks (for `keys init`, which creates them).
    pub fn connect(config: &KeyStoreConfig) -> Result<KeyStore, KeyStoreError> {
        if config.token_label.is_empty() {
            return Err(KeyStoreError::Config("token_label is empty".into()));
        }
        let module = module::load(&config.module, config.softhsm_conf.as_deref())?;
        let store = KeyStore {
            config: config.clone(),
            conn: Mutex::new(Conn {
                slot: None,
                anchor: None,
                generation: 0,
                epoch: module.epoch(),
                pin: None,
            }),
            module,
            idle: Mutex::new(Vec::new()),
            handles: Mutex::new(HashMap::new()),
        };
        store.login(true)?;
        Ok(store)
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &KeyStoreConfig {
        &self.config
    }

    /// The module's context.
    pub(crate) fn pkcs11(&self) -> &Pkcs11 {
        &self.module.ctx
    }

    /// The slot holding the token, if the module shows it now.
    fn find_slot(&self) -> Result<Option<Slot>, CkError> {
        let _shared = self.module.gate();
        module::token_slot(self.pkcs11(), &self.config.token_label)
    }

    /// Finds the slot of the token and logs in (again). `first` decides how a missing token is
    /// reported: at start it is a configuration error, later the token went away. A token
    /// missing later makes the module start again (rate-limited) and look once more.
    fn login(&self, first: bool) -> Result<u64, KeyStoreError> {
        let label = &self.config.token_label;
        let unavailable = |reason: String| KeyStoreError::Unavailable {
            label: label.clone(),
            reason,
        };
        {
            let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            if conn.epoch != self.module.epoch() {
                // The module was initialized again (by this store or another): every session
                // of the old epoch is gone.
                if let Some(anchor) = conn.anchor.take() {
                    forget(anchor);
                }
                conn.slot = None;
                conn.epoch = self.module.epoch();
            } else if conn.anchor.is_some() {
                return Ok(conn.generation);
            }
        }
        let mut slot = self.find_slot().ok().flatten();
        if slot.is_none() && !first && self.module.reinitialize() {
            slot = self.find_slot().ok().flatten();
        }
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if conn.anchor.is_some() && conn.epoch == self.module.epoch() {
            // Another thread logged in meanwhile.
            return Ok(conn.generation);
        }
        conn.epoch = self.module.epoch();
        let _shared = self.module.gate();
        let Some(slot) = slot else {
            return Err(if first {
                KeyStoreError::NoToken {
                    label: label.clone(),
                    module: self.config.module.clone(),
                }
            } else {
                unavailable("the token is not present".into())
            });
        };
        let anchor = self
            .pkcs11()
            .open_rw_session(slot)
            .map_err(|e| unavailable(format!("C_OpenSession: {e}")))?;
        if conn.pin.is_none() {
            conn.pin = Some(self.config.pin.read()?);
        }
        let pin = conn.pin.as_ref().expect("read above");
        match anchor.login(UserType::User, Some(pin)) {
            Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(CkError::Pkcs11(
                rv @ (RvError::PinIncorrect
                | RvError::PinLocked
                | RvError::PinInvalid
                | RvError::PinLenRange
                | RvError::PinExpired),
                _,
            )) => {
                // A wrong PIN is not retried with the same PIN: that would lock the token.
                conn.pin = None;
                return Err(KeyStoreError::Pin {
                    label: label.clone(),
                    reason: rv.to_string(),
                });
            }
            Err(e) => return Err(unavailable(format!("C_Login: {e}"))),
        }
        conn.slot = Some(slot);
        conn.anchor = Some(anchor);
        conn.generation += 1;
        Ok(conn.generation)
    }

    /// Forgets the login of `generation` after the token stopped answering.
    fn disconnect(&self, generation: u64) {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        if conn.generation == generation && conn.anchor.is_some() {
            tracing::warn!(
                token = %self.config.token_label,
                "the token stopped answering; its sessions are dropped and the next key \
                 operation logs in again"
            );
            // Closing a dead session can fail: that is expected and harmless.
            let anchor = conn.anchor.take();
            conn.slot = None;
            let same_epoch = conn.epoch == self.module.epoch();
            drop(conn);
            let stale: Vec<_> = self
                .idle
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .drain(..)
                .map(|(_, s)| s)
                .chain(anchor)
                .collect();
            for s in stale {
                if same_epoch {
                    drop(s);
                } else {
                    forget(s);
                }
            }
        }
    }

    /// Whether the token answers now (logging in again if it had gone away).
    pub fn reachable(&self) -> Result<(), KeyStoreError> {
        self.with_session("token check", |s| s.get_session_info().map(|_| ()))
    }

    /// Runs `f` on a session of the current login: an idle one or a new one. A failure that
    /// means the token went away drops the login and is [`KeyStoreError::Unavailable`].
    pub(crate) fn with_session<R>(
        &self,
        operation: &str,
        f: impl FnOnce(&Session) -> Result<R, CkError>,
    ) -> Result<R, KeyStoreError> {
        let (generation, _shared) = self.login_and_hold()?;
        let pooled = {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            let mut stale = Vec::new();
            let mut i = 0;
            while i < idle.len() {
                if idle[i].0 == generation {
                    i += 1;
                } else {
                    stale.push(idle.swap_remove(i).1);
                }
            }
            stale.into_iter().for_each(forget);
            idle.pop()
        };
        let session = match pooled {
            Some((_, s)) => s,
            None => {
                let slot = self.conn.lock().unwrap_or_else(|p| p.into_inner()).slot;
                let Some(slot) = slot else {
                    return Err(self.unavailable("logged out meanwhile".into()));
                };
                match self.pkcs11().open_ro_session(slot) {
                    Ok(s) => s,
                    Err(e) => {
                        if token_gone(&e) {
                            self.disconnect(generation);
                        }
                        return Err(self.unavailable(format!("C_OpenSession: {e}")));
                    }
                }
            }
        };
        match f(&session) {
            Ok(r) => {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < self.config.max_sessions.max(1) {
                    idle.push((generation, session));
                }
                Ok(r)
            }
            // SoftHSM answers CKR_GENERAL_ERROR both for a GCM tag that does not verify and for
            // worse: a session that still answers tells the two apart.
            Err(e) if token_gone(&e) || session.get_session_info().is_err() => {
                forget(session);
                self.disconnect(generation);
                Err(self.unavailable(format!("{operation}: {e}")))
            }
            Err(e) => {
                let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                if idle.len() < self.config.max_sessions.max(1) {
                    idle.push((generation, session));
                }
                Err(KeyStoreError::Crypto {
                    operation: operation.into(),
                    reason: e.to_string(),
                })
            }
        }
    }

    /// Logs in (again if needed) and holds the module's gate shared, making sure no
    /// re-initialization slipped in between: a session of an earlier epoch is never used
    /// (its handle may name another store's new session).
    fn login_and_hold(&self) -> Result<(u64, std::sync::RwLockReadGuard<'_, ()>), KeyStoreError> {
        loop {
            let generation = self.login(false)?;
            let shared = self.module.gate();
            if self.current_epoch() {
                return Ok((generation, shared));
            }
        }
    }

    /// Whether this store's login belongs to the module's current epoch.
    fn current_epoch(&self) -> bool {
        self.conn.lock().unwrap_or_else(|p| p.into_inner()).epoch == self.module.epoch()
    }

    /// Runs `f` on a read-write session of its own while no other operation of this process
    /// uses the module ([`Module::exclusive`]): how token objects are created.
    pub(crate) fn with_exclusive_rw_session<R>(
        &self,
        operation: &str,
        f: impl FnOnce(&Session) -> Result<R, CkError>,
    ) -> Result<R, KeyStoreError> {
        let mut generation = self.login(false)?;
        let mut alone = self.module.exclusive();
        while !self.current_epoch() {
            // The module was started again between the login and the lock: log in again.
            drop(alone);
            generation = self.login(false)?;
            alone = self.module.exclusive();
        }
        let _alone = alone;
        let slot = self.conn.lock().unwrap_or_else(|p| p.into_inner()).slot;
        let Some(slot) = slot else {
            return Err(self.unavailable("logged out meanwhile".into()));
        };
        let session = self
            .pkcs11()
            .open_rw_session(slot)
            .map_err(|e| self.unavailable(format!("C_OpenSession: {e}")))?;
        match f(&session) {
            Ok(r) => Ok(r),
            Err(e) if token_gone(&e) || session.get_session_info().is_err() => {
                forget(session);
                self.disconnect(generation);
                Err(self.unavailable(format!("{operation}: {e}")))
            }
            Err(e) => Err(KeyStoreError::Crypto {
                operation: operation.into(),
                reason: e.to_string(),
            }),
        }
    }

    fn unavailable(&self, reason: String) -> KeyStoreError {
        KeyStoreError::Unavailable {
            label: self.config.token_label.clone(),
            reason,
        }
    }

    fn generation(&self) -> u64 {
        self.conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .generation
    }

    /// The handle of the object `key` names, found once per login.
    fn handle(&self, session: &Session, key: HandleKey) -> Result<Option<ObjectHandle>, CkError> {
        let cache_key = (self.generation(), key);
        if let Some(h) = self
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cache_key)
        {
            return Ok(Some(*h));
        }
        let template = match &cache_key.1 {
            HandleKey::Secret(label) => vec![
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ],
            HandleKey::EcPrivate(id) => vec![
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::Id(id.clone()),
            ],
        };
        let found = session.find_objects(&template)?;
        let Some(h) = found.first().copied() else {
            return Ok(None);
        };
        self.handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(cache_key, h);
        Ok(Some(h))
    }

    /// Runs `f` with the secret key labelled `label`.
    fn with_secret<R>(
        &self,
        operation: &str,
        label: &str,
        f: impl FnOnce(&Session, ObjectHandle) -> Result<R, CkError>,
    ) -> Result<R, KeyStoreError> {
        let mut missing = false;
        let r = self.with_session(operation, |s| {
            match self.handle(s, HandleKey::Secret(label.into()))? {
                Some(h) => f(s, h).map(Some),
                None => {
                    missing = true;
                    Ok(None)
                }
            }
        })?;
        match r {
            Some(r) => Ok(r),
            None if missing => Err(self.missing(label)),
            None => unreachable!("None only when missing"),
        }
    }

    pub(crate) fn missing(&self, label: &str) -> KeyStoreError {
        KeyStoreError::MissingKey {
            label: label.into(),
            token: self.config.token_label.clone(),
        }
    }

    /// AES-CMAC of one block input under `label` (the PRF of the card key derivation).
    fn cmac(&self, label: &str, input: &[u8]) -> Result<[u8; BLOCK], KeyStoreError> {
        let mac = self.with_secret("AES-CMAC", label, |s, h| {
            s.sign(&Mechanism::AesCMac, h, input)
        })?;
        let mac = Zeroizing::new(mac);
        <[u8; BLOCK]>::try_from(&mac[..]).map_err(|_| KeyStoreError::Crypto {
            operation: "AES-CMAC".into(),
            reason: format!("the token returned {} bytes, not {BLOCK}", mac.len()),
        })
    }

    /// The card key `key_ref` of the card `serial`: SP 800-108 counter-mode KDF (the one of
    /// [`apdu::sm::diversify`]) with the token's `CKM_AES_CMAC` under the master as PRF. The
    /// master never leaves the token; the result is zeroized when dropped.
    pub fn derive_card_key(
        &self,
        key_ref: KeyRef,
        serial: &[u8; 8],
    ) -> Result<AesKey, KeyStoreError> {
        let label = match key_ref {
            KeyRef::Personalization => &self.config.labels.perso_master,
            KeyRef::Terminal => &self.config.labels.terminal_master,
        };
        sm::diversify_with(|block| self.cmac(label, block), MASTER_LEN, key_ref, serial)
    }

    /// ECDSA P-256 signature (`CKM_ECDSA`) of a 32-byte digest with the private key whose
    /// CKA_ID is `key_id`; the raw `r || s` (64 bytes).
    pub fn sign_p256_digest(&self, key_id: &[u8], digest: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        let mut missing = false;
        let sig = self.with_session("ECDSA signature", |s| {
            match self.handle(s, HandleKey::EcPrivate(key_id.to_vec()))? {
                Some(h) => s.sign(&Mechanism::Ecdsa, h, digest).map(Some),
                None => {
                    missing = true;
                    Ok(None)
                }
            }
        })?;
        match sig {
            Some(sig) if sig.len() == 64 => Ok(sig),
            Some(sig) => Err(KeyStoreError::Crypto {
                operation: "ECDSA signature".into(),
                reason: format!("{} bytes where a P-256 r||s has 64", sig.len()),
            }),
            None => Err(self.missing(&format!("EC key id {}", hex::encode(key_id)))),
        }
    }

    /// HMAC-SHA256 (`CKM_SHA256_HMAC`) of `message` under the audit key.
    pub fn audit_mac(&self, message: &[u8]) -> Result<[u8; HMAC_LEN], KeyStoreError> {
        let mac = self.with_secret("HMAC-SHA256", &self.config.labels.audit_hmac, |s, h| {
            s.sign(&Mechanism::Sha256Hmac, h, message)
        })?;
        <[u8; HMAC_LEN]>::try_from(&mac[..]).map_err(|_| KeyStoreError::Crypto {
            operation: "HMAC-SHA256".into(),
            reason: format!("the token returned {} bytes", mac.len()),
        })
    }

    /// Whether `mac` is the audit key's HMAC of `message` (`C_Verify` in the token).
    pub fn audit_mac_verify(&self, message: &[u8], mac: &[u8]) -> Result<bool, KeyStoreError> {
        self.with_secret(
            "HMAC-SHA256 verify",
            &self.config.labels.audit_hmac,
            |s, h| match s.verify(&Mechanism::Sha256Hmac, h, message, mac) {
                Ok(()) => Ok(true),
                Err(CkError::Pkcs11(RvError::SignatureInvalid | RvError::SignatureLenRange, _)) => {
                    Ok(false)
                }
                Err(e) => Err(e),
            },
        )
    }

    /// Seals `plaintext` under the mailer key: AES-256-GCM in the token, a fresh 12-byte nonce
    /// from the token's generator, `aad` authenticated; `nonce || ciphertext || tag`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KeyStoreError> {
        self.with_secret("AES-GCM seal", &self.config.labels.mailer, |s, h| {
            let mut nonce = [0u8; GCM_NONCE_LEN];
            s.generate_random_slice(&mut nonce)?;
            let mut iv = nonce;
            let params = GcmParams::new(&mut iv, aad, (GCM_TAG_LEN as u64 * 8).into())?;
            let sealed = s.encrypt(&Mechanism::AesGcm(params), h, plaintext)?;
            let mut out = Vec::with_capacity(GCM_NONCE_LEN + sealed.len());
            out.extend_from_slice(&nonce);
            out.extend_from_slice(&sealed);
            Ok(out)
        })
    }

    /// Opens what [`KeyStore::seal`] made with the same `aad`. A record that does not
    /// authenticate (altered, another token's key, other aad) is a [`KeyStoreError::Crypto`].
    pub fn open_sealed(
        &self,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
        if sealed.len() < GCM_NONCE_LEN + GCM_TAG_LEN {
            return Err(KeyStoreError::Crypto {
                operation: "AES-GCM open".into(),
                reason: format!("a sealed record of {} bytes is too short", sealed.len()),
            });
        }
        let (nonce, body) = sealed.split_at(GCM_NONCE_LEN);
        self.with_secret("AES-GCM open", &self.config.labels.mailer, |s, h| {
            let mut iv = [0u8; GCM_NONCE_LEN];
            iv.copy_from_slice(nonce);
            let params = GcmParams::new(&mut iv, aad, (GCM_TAG_LEN as u64 * 8).into())?;
            s.decrypt(&Mechanism::AesGcm(params), h, body)
                .map(Zeroizing::new)
        })
    }

    /// Random bytes from the token's generator.
    pub fn random(&self, len: usize) -> Result<Vec<u8>, KeyStoreError> {
        self.with_session("C_GenerateRandom", |s| {
            let mut out = vec![0u8; len];
            s.generate_random_slice(&mut out)?;
            Ok(out)
        })
    }
}

impl CardKeys for KeyStore {
    fn card_key(&self, key_ref: KeyRef, serial: &[u8; 8]) -> Result<AesKey, apdu::Error> {
        self.derive_card_key(key_ref, serial).map_err(Into::into)
    }
}

/// The attributes of a key object that the policy looks at.
pub(crate) fn attribute_types() -> Vec<AttributeType> {
    vec![
        AttributeType::Class,
        AttributeType::KeyType,
        AttributeType::Label,
        AttributeType::Id,
        AttributeType::Sensitive,
        AttributeType::Extractable,
        AttributeType::AlwaysSensitive,
        AttributeType::NeverExtractable,
        AttributeType::Local,
        AttributeType::Sign,
        AttributeType::Verify,
        AttributeType::Encrypt,
        AttributeType::Decrypt,
        AttributeType::Wrap,
        AttributeType::Unwrap,
        AttributeType::Derive,
        AttributeType::ValueLen,
        AttributeType::EcPoint,
    ]
}
