//! Where a reader's next card comes from.
//!
//! On a production line an operator (or a card feeder) puts a blank card in each reader; a
//! simulated line has a hopper of simulated cards instead: every record gets a new simulated
//! card kept in `<state_dir>/cards/<SERIAL>.json`, and a record resumed after a crash gets the
//! card its serial names back (a record taken over from another station of a line, whose card
//! is not in this hopper, gets a new one).

use std::path::{Path, PathBuf};

use std::sync::Arc;

use apdu::sm::CardKeys;
use apdu::Transport;
use cardsim::{SimCard, SimConfig, SimTransport};
use ring::rand::SecureRandom;

use crate::error::{Error, ErrorKind, Result};

/// A simulated card's state file that cannot be made or read: the card is unusable.
fn card_file(action: &str, path: &Path, e: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::CardError,
        format!("{action} {}: {e}", path.display()),
    )
}

/// Gives a worker the card for its next record.
pub trait CardSource: Sync {
    /// The card for a record on `reader`: a blank one, or (`serial` given) the card a previous
    /// run was writing.
    fn card(&self, reader: &str, serial: Option<&str>) -> Result<Box<dyn Transport>>;
}

/// Simulated readers: a fresh simulated card per record, in `dir`, holding the card keys
/// `keys` derives for its serial (the card maker loading the keys the issuer gave it).
#[derive(Clone)]
pub struct SimHopper {
    /// Folder of the simulated cards' state files.
    pub dir: PathBuf,
    /// Where a new card's own keys come from (the issuer's key store).
    pub keys: Arc<dyn CardKeys>,
}

impl std::fmt::Debug for SimHopper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimHopper")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SimHopper {
    /// A hopper keeping its cards in `<state_dir>/cards`.
    pub fn in_state_dir(state_dir: &Path, keys: Arc<dyn CardKeys>) -> SimHopper {
        SimHopper {
            dir: state_dir.join("cards"),
            keys,
        }
    }

    /// The state file of card `serial` (hex).
    pub fn card_path(&self, serial: &str) -> PathBuf {
        self.dir.join(format!("{serial}.json"))
    }
}

impl CardSource for SimHopper {
    fn card(&self, reader: &str, serial: Option<&str>) -> Result<Box<dyn Transport>> {
        crate::store::private_dir(&self.dir).map_err(|e| card_file("creating", &self.dir, e))?;
        // A card being written at another station of the line (which died) is in that
        // station's reader, not here: like an operator with a blank card, take a new one; the
        // journal marks the other card spoiled when this one is journaled.
        let here = serial.filter(|s| self.card_path(s).exists());
        if let (Some(serial), None) = (serial, here) {
            tracing::warn!(
                reader = %reader,
                "card {serial} is not in this station's hopper: the record goes on a new card"
            );
        }
        let card = match here {
            Some(serial) => {
                let path = self.card_path(serial);
                SimCard::open(&path).map_err(|e| card_file("opening", &path, e))?
            }
            None => {
                let mut serial = [0u8; 8];
                ring::rand::SystemRandom::new()
                    .fill(&mut serial)
                    .map_err(|_| Error::internal("the system random generator failed"))?;
                let path = self.card_path(&hex::encode_upper(serial));
                let config = SimConfig {
                    serial: Some(serial),
                    keys: Arc::clone(&self.keys),
                    ..SimConfig::default()
                };
                SimCard::create(Some(path.clone()), config)
                    .map_err(|e| card_file("creating", &path, e))?
            }
        };
        Ok(Box::new(SimTransport::with_name(card, reader)))
    }
}

/// PC/SC readers: whatever card is in the reader.
#[derive(Debug, Clone, Default)]
pub struct PcscReaders;

impl CardSource for PcscReaders {
    fn card(&self, reader: &str, _serial: Option<&str>) -> Result<Box<dyn Transport>> {
        let pcsc = apdu::transport::pcsc::Pcsc::establish()?;
        let transport = pcsc.connect(reader)?;
        Ok(Box::new(transport))
    }
}

/// `sim:N` readers take cards from the hopper, others from PC/SC.
#[derive(Debug, Clone)]
pub struct LineSource {
    /// The simulated hopper.
    pub sim: SimHopper,
    /// PC/SC readers.
    pub pcsc: PcscReaders,
}

impl LineSource {
    /// Simulated cards under `state_dir` keyed by `keys`, PC/SC for the other readers.
    pub fn new(state_dir: &Path, keys: Arc<dyn CardKeys>) -> LineSource {
        LineSource {
            sim: SimHopper::in_state_dir(state_dir, keys),
            pcsc: PcscReaders,
        }
    }
}

impl CardSource for LineSource {
    fn card(&self, reader: &str, serial: Option<&str>) -> Result<Box<dyn Transport>> {
        if reader.starts_with(crate::readers::SIM_PREFIX) {
            self.sim.card(reader, serial)
        } else {
            self.pcsc.card(reader, serial)
        }
    }
}
