//! The simulated national ID card of idcardd: the card side of the profile in
//! `docs/card-profile.md`, on top of the `apdu` crate (codec, TLV, FCP, secure messaging) and
//! sharing its numbers ([`apdu::layout`]) with the host client ([`apdu::card`]).
//!
//! Main types:
//! - [`CardHandler`]: what a reader talks to (power, ATR, one APDU in, one response out); the
//!   in-process [`SimTransport`] and the vsmartcard-vpcd bridge ([`vpcd`]) both drive a card
//!   through it.
//! - [`SimCard`]: the chip: ICAO LDS1 application on an ISO/IEC 7816-4 file system, ISO/IEC
//!   7816-9 life cycle, PIN/PUK, mutual authentication and AES secure messaging ([`apdu::sm`]),
//!   persisted to a JSON state file after every change. Made with [`SimConfig`], whose key
//!   source gives the card its own keys (a card holds its keys; the issuer's masters stay in
//!   its key store). [`fixtures`]: the public test masters, for tests only.
//! - [`SimTransport`]: an in-process reader (`sim:0`) implementing [`apdu::Transport`], with
//!   fault injection ([`Faults`], [`FaultHandle`]) for tearing tests.
//! - [`vpcd`]: the card side of the vsmartcard-vpcd protocol (pcscd shows the card in a
//!   reader); [`vpcd_reader`]: its reader side without pcscd, the bare socket transport of the
//!   benchmarks.
//!
//! ```
//! use apdu::card::IdCard;
//! use cardsim::{fixtures::TestMasters, SimCard, SimConfig, SimTransport};
//!
//! let card = SimCard::create(None, SimConfig::default()).unwrap();
//! let mut client = IdCard::new(SimTransport::new(card));
//! let mut perso = client.authenticate_perso(&TestMasters).unwrap();
//! perso.create_file(0x0101, Some(1), 4).unwrap();
//! perso.write_file(0x0101, b"P<UT").unwrap();
//! assert_eq!(perso.read_file(0x0101).unwrap(), b"P<UT");
//! ```
#![deny(missing_docs)]

pub mod fixtures;
pub mod vpcd;
pub mod vpcd_reader;

mod card;
mod fs;
mod hexser;
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
