//! TEST AND SIMULATION FIXTURES ONLY: public master keys for simulated cards made outside an
//! issuer's key store (unit tests, benchmarks, `idcardd sim` without a state directory).
//!
//! They are public, so a card keyed with them protects nothing. The daemon, batch mode and
//! delivery never use them: their card keys come from the key store (`keystore` crate), whose
//! masters never leave the HSM, and the simulated cards they make are keyed from it.

use apdu::error::Error;
use apdu::sm::{self, AesKey, CardKeys, KeyRef};

/// TEST ONLY: the personalization master (AES-256) of [`TestMasters`].
pub const TEST_PERSO_MASTER: [u8; 32] = *b"IDCARDD-TEST-PERSO-MASTER-KEY-01";
/// TEST ONLY: the terminal master (AES-256) of [`TestMasters`].
pub const TEST_TERMINAL_MASTER: [u8; 32] = *b"IDCARDD-TEST-TERM-MASTER-KEY-002";

/// TEST ONLY: [`TEST_PERSO_MASTER`] as a key.
pub fn test_perso_master() -> AesKey {
    AesKey::Aes256(TEST_PERSO_MASTER)
}

/// TEST ONLY: [`TEST_TERMINAL_MASTER`] as a key.
pub fn test_terminal_master() -> AesKey {
    AesKey::Aes256(TEST_TERMINAL_MASTER)
}

/// TEST ONLY: card keys diversified in software from the public test masters; the default key
/// source of [`crate::SimConfig`] and the host side of tests that need no key store.
#[derive(Debug, Clone, Copy, Default)]
pub struct TestMasters;

impl CardKeys for TestMasters {
    fn card_key(&self, key_ref: KeyRef, serial: &[u8; 8]) -> Result<AesKey, Error> {
        let master = match key_ref {
            KeyRef::Personalization => test_perso_master(),
            KeyRef::Terminal => test_terminal_master(),
        };
        Ok(sm::diversify(&master, key_ref, serial))
    }
}

/// TEST ONLY: card keys diversified in software from masters held in memory; for tests that
/// need another master than [`TestMasters`] (a wrong key, a second issuer).
#[derive(Debug, Clone)]
pub struct SoftwareMasters {
    /// Master of key 01.
    pub perso: AesKey,
    /// Master of key 02.
    pub terminal: AesKey,
}

impl CardKeys for SoftwareMasters {
    fn card_key(&self, key_ref: KeyRef, serial: &[u8; 8]) -> Result<AesKey, Error> {
        let master = match key_ref {
            KeyRef::Personalization => &self.perso,
            KeyRef::Terminal => &self.terminal,
        };
        Ok(sm::diversify(master, key_ref, serial))
    }
}
