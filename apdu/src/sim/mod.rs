//! The simulated national ID card (card side). See `docs/card-profile.md`.
//!
//! [`CardHandler`] is what a reader talks to: the in-process [`SimTransport`] and the
//! vsmartcard-vpcd bridge ([`vpcd`]) both drive a card through it.

pub mod vpcd;

mod card;
mod fs;
mod hexser;
pub mod profile;
mod state;
mod transport;

pub use card::{SimCard, SimConfig};
pub use transport::{FaultHandle, Faults, SimTransport};

/// The card side of a reader: power, ATR and one APDU in, one response out.
///
/// `process_apdu` never fails: a malformed command gets a status word, as on a real chip.
/// A handler that simulates a pulled card answers with an empty vector.
pub trait CardHandler: Send {
    /// Answer-to-reset bytes.
    fn atr(&self) -> Vec<u8>;
    /// Power on (cold reset): volatile state (selected files, sessions, PIN status) is cleared.
    fn power_on(&mut self);
    /// Power off: volatile state is lost.
    fn power_off(&mut self);
    /// Processes one command APDU and returns the response (data + SW1 SW2).
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8>;
}
