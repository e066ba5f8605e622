//! [`SimTransport`]: an in-process reader holding a [`SimCard`], with fault injection for tests
//! ([`Faults`]): pulling the card after N APDUs or in the middle of an UPDATE BINARY, latency,
//! and a forced status word.
//!
//! A pulled card behaves as measured on PC/SC readers: the first transmit after the removal
//! returns `Ok` with an empty response (no status word), every later one
//! `Err(TransportError::CardRemoved)`, until [`FaultHandle::reinsert`].
//!
//! ```
//! use cardsim::{Faults, SimCard, SimConfig, SimTransport};
//! use apdu::{Transport, TransportError};
//!
//! let card = SimCard::create(None, SimConfig::default()).unwrap();
//! let mut reader = SimTransport::new(card);
//! let faults = reader.faults();
//! faults.set(Faults { tear_after: Some(1), ..Faults::default() });
//! assert_eq!(reader.transmit_raw(&[0x00, 0xCA, 0x01, 0x02, 0x01]).unwrap(), [0x01, 0x90, 0x00]);
//! assert_eq!(reader.transmit_raw(&[0x00, 0xCA, 0x01, 0x02, 0x01]).unwrap(), Vec::<u8>::new());
//! assert_eq!(reader.transmit_raw(&[0x00, 0xCA, 0x01, 0x02, 0x01]), Err(TransportError::CardRemoved));
//! faults.reinsert();
//! assert_eq!(reader.transmit_raw(&[0x00, 0xCA, 0x01, 0x02, 0x01]).unwrap(), [0x01, 0x90, 0x00]);
//! ```

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use apdu::error::TransportError;
use apdu::status::StatusWord;
use apdu::transport::{Capabilities, Transport};

use crate::{CardHandler, SimCard};

/// Faults to inject. APDU indexes count from 0, from the creation of the transport or the last
/// [`FaultHandle::reinsert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Faults {
    /// Pull the card after this many APDUs: APDU number `n` (0-based) finds it gone.
    pub tear_after: Option<u64>,
    /// `(index, k)`: pull the card during APDU `index`; when that APDU is an UPDATE BINARY the
    /// card has written (and persisted) its first `k` data bytes, otherwise nothing executes.
    pub tear_in_update: Option<(u64, usize)>,
    /// Time added to every APDU.
    pub latency: Duration,
    /// `(index, sw)`: APDU `index` is not executed; the card answers `sw` (plain).
    pub forced_sw: Option<(u64, StatusWord)>,
}

/// The reader's state, shared between the transport and its fault handles.
struct Slot {
    /// The card in the reader (kept while pulled: it is the same chip when reinserted).
    card: SimCard,
    /// The faults in force.
    faults: Faults,
    /// The card is in the reader.
    present: bool,
    /// The empty answer that follows a removal has been given.
    removal_reported: bool,
    /// APDUs since insertion.
    count: u64,
}

impl Slot {
    /// Pulls the card: power is lost, volatile state with it.
    fn pull(&mut self) {
        self.present = false;
        self.removal_reported = false;
        self.card.power_off();
    }
}

fn lock(slot: &Mutex<Slot>) -> MutexGuard<'_, Slot> {
    // A panic while holding the lock cannot leave the card half-updated (state changes are
    // committed whole), so a poisoned lock is still safe to use.
    slot.lock().unwrap_or_else(|p| p.into_inner())
}

/// An in-process reader (`sim:0`) with a simulated card in it.
pub struct SimTransport {
    /// The reader slot, shared with every [`FaultHandle`].
    slot: Arc<Mutex<Slot>>,
    /// Reader name (`sim:0`).
    name: String,
    /// The card's ATR, read once at insertion.
    atr: Vec<u8>,
    /// The card's capabilities, as its ATR announces them.
    caps: Capabilities,
}

impl SimTransport {
    /// A reader named `sim:0` with `card` inserted and powered.
    pub fn new(card: SimCard) -> SimTransport {
        SimTransport::with_name(card, "sim:0")
    }

    /// A reader with its own name (`sim:1`, ...).
    pub fn with_name(mut card: SimCard, name: impl Into<String>) -> SimTransport {
        card.power_on();
        let atr = card.atr();
        let caps = card.capabilities();
        let slot = Slot {
            card,
            faults: Faults::default(),
            present: true,
            removal_reported: true,
            count: 0,
        };
        SimTransport {
            slot: Arc::new(Mutex::new(slot)),
            name: name.into(),
            atr,
            caps,
        }
    }

    /// A handle to set faults, pull and reinsert the card while the transport is in use (for
    /// instance inside a [`apdu::transmit::Channel`]).
    pub fn faults(&self) -> FaultHandle {
        FaultHandle {
            slot: Arc::clone(&self.slot),
        }
    }

    /// Puts the card back and powers it on (see [`FaultHandle::reinsert`]).
    pub fn reinsert(&self) {
        self.faults().reinsert();
    }

    /// [`SimCard::commits`] of the card in the reader (or last in it).
    pub fn commits(&self) -> u64 {
        lock(&self.slot).card.commits()
    }

    /// A second handle to the same reader and card, as a new connection to the reader gives
    /// it: the card is reset (selection, session and PIN status are lost) but its persistent
    /// state is not reloaded, so a pool can keep a simulated reader open between operations.
    /// `None` while the card is out of the reader.
    pub fn reconnect(&self) -> Option<SimTransport> {
        let mut s = lock(&self.slot);
        if !s.present {
            return None;
        }
        s.card.power_on();
        Some(SimTransport {
            slot: Arc::clone(&self.slot),
            name: self.name.clone(),
            atr: self.atr.clone(),
            caps: self.caps,
        })
    }
}

impl Transport for SimTransport {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let latency = lock(&self.slot).faults.latency;
        if !latency.is_zero() {
            std::thread::sleep(latency);
        }
        let mut s = lock(&self.slot);
        if !s.present {
            if s.removal_reported {
                return Err(TransportError::CardRemoved);
            }
            s.removal_reported = true;
            return Ok(Vec::new());
        }
        let index = s.count;
        s.count += 1;
        let f = s.faults;
        if f.tear_after.is_some_and(|n| index >= n) {
            s.pull();
            s.removal_reported = true;
            return Ok(Vec::new());
        }
        if let Some((i, written)) = f.tear_in_update {
            if i == index {
                s.card.process_torn(apdu, written);
                s.pull();
                s.removal_reported = true;
                return Ok(Vec::new());
            }
        }
        if let Some((i, sw)) = f.forced_sw {
            if i == index {
                return Ok(sw.to_bytes().to_vec());
            }
        }
        Ok(s.card.process_apdu(apdu))
    }

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn reader_name(&self) -> &str {
        &self.name
    }

    /// Warm reset: the card's volatile state (selection, session, PIN status) is lost.
    fn reset(&mut self) -> Result<(), TransportError> {
        let mut s = lock(&self.slot);
        if !s.present {
            s.removal_reported = true;
            return Err(TransportError::CardRemoved);
        }
        s.card.power_on();
        Ok(())
    }
}

/// Controls a [`SimTransport`] from outside: faults, removal, reinsertion, and a look at the card.
#[derive(Clone)]
pub struct FaultHandle {
    /// The reader slot of the transport this handle controls.
    slot: Arc<Mutex<Slot>>,
}

impl FaultHandle {
    /// Replaces the faults.
    pub fn set(&self, faults: Faults) {
        lock(&self.slot).faults = faults;
    }

    /// The faults in force.
    pub fn get(&self) -> Faults {
        lock(&self.slot).faults
    }

    /// APDUs the card has been sent since insertion (including the one that found it gone).
    pub fn apdu_count(&self) -> u64 {
        lock(&self.slot).count
    }

    /// True while the card is in the reader.
    pub fn is_present(&self) -> bool {
        lock(&self.slot).present
    }

    /// Pulls the card now.
    pub fn remove(&self) {
        let mut s = lock(&self.slot);
        if s.present {
            s.pull();
        }
    }

    /// Puts the card back and powers it on: volatile state is fresh, the APDU counter restarts
    /// at 0 and the one-shot faults (`tear_after`, `tear_in_update`, `forced_sw`) are cleared;
    /// latency stays.
    pub fn reinsert(&self) {
        let mut s = lock(&self.slot);
        s.present = true;
        s.removal_reported = true;
        s.count = 0;
        s.faults = Faults {
            latency: s.faults.latency,
            ..Faults::default()
        };
        s.card.power_on();
    }

    /// Runs `f` on the card (inspection in tests: serial, life cycle, file contents). The reader
    /// is locked meanwhile: `f` must not transmit through the same transport.
    pub fn with_card<R>(&self, f: impl FnOnce(&mut SimCard) -> R) -> R {
        f(&mut lock(&self.slot).card)
    }
}
