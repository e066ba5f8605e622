//! Delivery sessions: the daemon-side binding between `delivery.begin`, `delivery.verify` and
//! `delivery.activate`.
//!
//! A session id is 16 random bytes (hex) from ring's `SystemRandom`, bound to the reader, the
//! card serial and the templates read (and passively authenticated) at begin. Sessions live in
//! memory only: a daemon restart forgets them, so an old id cannot be replayed after a restart
//! either. A session is closed for good once its card is activated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use matcher::compare::PreparedTemplate;
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{Error, ErrorKind};

/// One enrolled template from DG3, ready for comparison.
pub struct ChipTemplate {
    /// ISO/IEC 19794-2 finger position (0 unknown, 1-10).
    pub position: u8,
    /// Minutiae in the template.
    pub minutiae: usize,
    /// The extractor that made it, as its DG3 creator names it (`idcardd/leader` → `leader`);
    /// `None` when the card does not say (another issuer, or idcardd before issue 19).
    pub extractor: Option<String>,
    /// The match-ready form (built once at begin).
    pub prepared: PreparedTemplate,
}

impl std::fmt::Debug for ChipTemplate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the minutiae themselves: they are biometric data.
        f.debug_struct("ChipTemplate")
            .field("position", &self.position)
            .field("minutiae", &self.minutiae)
            .field("extractor", &self.extractor)
            .finish_non_exhaustive()
    }
}

/// What a session is bound to and where it stands.
#[derive(Debug)]
pub struct Session {
    /// The session id.
    pub id: String,
    /// The reader the card was in.
    pub reader: String,
    /// The card serial (upper-case hex) read at begin.
    pub serial: String,
    /// Document number from DG1 (for the journal).
    pub document_number: String,
    /// The DG3 templates, shared with verifications in progress.
    pub templates: Arc<Vec<ChipTemplate>>,
    /// Last activity (begin, verify, activate): the TTL counts from here.
    pub last_used: Instant,
    /// When the latest verification succeeded; `None` before any, or after a failed one.
    pub verified_at: Option<Instant>,
    /// A verification is running (a second one at the same time is refused).
    pub verifying: bool,
    /// The card was activated: the session can do nothing more.
    pub closed: bool,
    /// Set for a household member's card handed over on the household head's verification:
    /// the head's card serial (see `delivery::handover`).
    pub verified_by: Option<String>,
}

/// Why a session lookup failed.
fn unknown(id: &str) -> Error {
    Error::new(
        ErrorKind::SessionUnknown,
        "no such delivery session (unknown, already used, or the daemon restarted): start again with delivery.begin",
    )
    .with_data(serde_json::json!({"session": id}))
}

/// The open sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

/// A new random session id (32 hex digits).
fn new_id() -> Result<String, Error> {
    let mut bytes = [0u8; 16];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| Error::internal("system random generator failed"))?;
    Ok(hex::encode(bytes))
}

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Session>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a session and returns its id. Any earlier open session of the same card is
    /// closed: one card, one live session.
    pub fn open(
        &self,
        reader: &str,
        serial: &str,
        document_number: &str,
        templates: Vec<ChipTemplate>,
        ttl: Duration,
    ) -> Result<String, Error> {
        let id = new_id()?;
        let mut map = self.lock();
        prune(&mut map, ttl);
        for s in map.values_mut().filter(|s| s.serial == serial) {
            s.closed = true;
        }
        map.insert(
            id.clone(),
            Session {
                id: id.clone(),
                reader: reader.to_string(),
                serial: serial.to_string(),
                document_number: document_number.to_string(),
                templates: Arc::new(templates),
                last_used: Instant::now(),
                verified_at: None,
                verifying: false,
                closed: false,
                verified_by: None,
            },
        );
        Ok(id)
    }

    /// Runs `f` on live session `id` (not closed, not expired), refreshing its TTL.
    pub fn with<R>(
        &self,
        id: &str,
        ttl: Duration,
        f: impl FnOnce(&mut Session) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut map = self.lock();
        prune(&mut map, ttl);
        let session = map.get_mut(id).ok_or_else(|| unknown(id))?;
        if session.closed {
            return Err(unknown(id));
        }
        if session.last_used.elapsed() > ttl {
            session.closed = true;
            return Err(Error::new(
                ErrorKind::SessionExpired,
                format!(
                    "the delivery session expired after {} s without activity: start again with delivery.begin",
                    ttl.as_secs()
                ),
            )
            .with_data(serde_json::json!({"session": id})));
        }
        session.last_used = Instant::now();
        f(session)
    }

    /// Closes session `id` (after activation): it can never be used again.
    pub fn close(&self, id: &str) {
        if let Some(s) = self.lock().get_mut(id) {
            s.closed = true;
            s.verified_at = None;
        }
    }

    /// Number of sessions kept (open, expired or closed, until pruned).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when no session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Forgets sessions idle for more than twice the TTL: long enough to answer "expired" or
/// "already used" for a while instead of "unknown", bounded in memory.
fn prune(map: &mut HashMap<String, Session>, ttl: Duration) {
    map.retain(|_, s| s.last_used.elapsed() <= ttl * 2);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_random_and_sessions_expire_and_close() {
        let sessions = Sessions::default();
        let ttl = Duration::from_millis(50);
        let a = sessions.open("sim:0", "AA", "D1", vec![], ttl).unwrap();
        let b = sessions.open("sim:1", "BB", "D2", vec![], ttl).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(
            sessions.with(&a, ttl, |s| Ok(s.serial.clone())).unwrap(),
            "AA"
        );
        sessions.close(&a);
        let e = sessions.with(&a, ttl, |_| Ok(())).unwrap_err();
        assert_eq!(e.kind, ErrorKind::SessionUnknown);
        std::thread::sleep(Duration::from_millis(70));
        let e = sessions.with(&b, ttl, |_| Ok(())).unwrap_err();
        assert_eq!(e.kind, ErrorKind::SessionExpired);
        let e = sessions.with("00", ttl, |_| Ok(())).unwrap_err();
        assert_eq!(e.kind, ErrorKind::SessionUnknown);
    }

    #[test]
    fn a_new_session_for_the_same_card_closes_the_old_one() {
        let sessions = Sessions::default();
        let ttl = Duration::from_secs(60);
        let old = sessions.open("sim:0", "AA", "D1", vec![], ttl).unwrap();
        let new = sessions.open("sim:0", "AA", "D1", vec![], ttl).unwrap();
        assert!(sessions.with(&new, ttl, |_| Ok(())).is_ok());
        let e = sessions.with(&old, ttl, |_| Ok(())).unwrap_err();
        assert_eq!(e.kind, ErrorKind::SessionUnknown);
    }
}
