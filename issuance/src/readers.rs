//! Opening a reader by name: `sim:N` is an in-process simulated card whose state lives in a
//! directory (`card-N.json`); any other name is a PC/SC reader served by pcscd.
//!
//! ```no_run
//! use issuance::readers::{open, default_sim_dir};
//! # fn main() -> issuance::Result<()> {
//! let keys: std::sync::Arc<dyn apdu::sm::CardKeys> = std::sync::Arc::new(cardsim::fixtures::TestMasters);
//! let transport = open("sim:0", &default_sim_dir(), &keys)?;
//! # let _ = transport; Ok(()) }
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use apdu::sm::CardKeys;
use apdu::transport::pcsc::{Pcsc, ReaderInfo};
use apdu::{Transport, TransportError};
use cardsim::{SimCard, SimConfig, SimTransport};

use crate::error::{Error, ErrorKind, Result};

/// Prefix of simulated reader names.
pub const SIM_PREFIX: &str = "sim:";

/// Where simulated cards keep their state by default: `$XDG_STATE_HOME/idcardd/sim`, else
/// `~/.local/state/idcardd/sim`, else `./idcardd-sim`.
pub fn default_sim_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("idcardd").join("sim");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/state/idcardd/sim");
    }
    PathBuf::from("idcardd-sim")
}

/// The state file of simulated reader `sim:N`.
pub fn sim_state_path(sim_dir: &Path, n: usize) -> PathBuf {
    sim_dir.join(format!("card-{n}.json"))
}

/// The index `N` of a `sim:N` name; `None` for other names, an error for `sim:` with no number.
pub fn parse_sim_name(name: &str) -> Result<Option<usize>> {
    match name.strip_prefix(SIM_PREFIX) {
        None => Ok(None),
        Some(n) => n.parse::<usize>().map(Some).map_err(|_| {
            Error::new(
                ErrorKind::ReaderNotFound,
                format!("bad simulated reader name {name:?}: expected sim:N, e.g. sim:0"),
            )
        }),
    }
}

/// Opens the simulated card of `sim:N`, creating it on first use holding the card keys `keys`
/// gives for its serial (the issuer's key store; the test masters in tests).
pub fn open_sim(sim_dir: &Path, n: usize, keys: &Arc<dyn CardKeys>) -> Result<SimTransport> {
    let config = SimConfig {
        keys: Arc::clone(keys),
        ..SimConfig::default()
    };
    open_or_create_sim(sim_dir, n, config)
}

/// The simulated card of `sim:N` in `sim_dir`, made with `config` when missing.
fn open_or_create_sim(sim_dir: &Path, n: usize, config: SimConfig) -> Result<SimTransport> {
    // Card state files hold the card's PIN, PUK and keys: owner-only (issue 18).
    crate::store::private_dir(sim_dir).map_err(|e| {
        Error::new(
            ErrorKind::CardError,
            format!("cannot create {}: {e}", sim_dir.display()),
        )
    })?;
    let path = sim_state_path(sim_dir, n);
    let card = SimCard::open_or_create(&path, config).map_err(|e| {
        Error::new(
            ErrorKind::CardError,
            format!("cannot open the simulated card {}: {e}", path.display()),
        )
    })?;
    Ok(SimTransport::with_name(card, format!("{SIM_PREFIX}{n}")))
}

/// Opens a reader by name without making anything: `sim:N` must be a simulated card that
/// exists already in `sim_dir` (for commands that only look at a card), anything else is a
/// PC/SC reader.
pub fn open_existing(name: &str, sim_dir: &Path) -> Result<Box<dyn Transport>> {
    if let Some(n) = parse_sim_name(name)? {
        let path = sim_state_path(sim_dir, n);
        let card = SimCard::open(&path).map_err(|e| {
            Error::new(
                ErrorKind::ReaderNotFound,
                format!("no simulated card {name} in {}: {e}", sim_dir.display()),
            )
        })?;
        return Ok(Box::new(SimTransport::with_name(card, name)));
    }
    let pcsc = Pcsc::establish()?;
    Ok(Box::new(pcsc.connect(name)?))
}

/// Opens a reader by name for a tool that only looks at or talks raw APDUs to a card
/// (`idcardd card info`, `idcardd apdu`): `sim:N` is created when missing as the simulator makes
/// a card on its own, keyed from its public test masters (it belongs to no issuer: the daemon
/// makes its simulated cards with [`open`] and the issuer's keys); anything else is PC/SC.
pub fn open_or_blank(name: &str, sim_dir: &Path) -> Result<Box<dyn Transport>> {
    if let Some(n) = parse_sim_name(name)? {
        return Ok(Box::new(open_or_create_sim(
            sim_dir,
            n,
            SimConfig::default(),
        )?));
    }
    open_existing(name, sim_dir)
}

/// Opens a reader by name: `sim:N` in process (a new simulated card is keyed by `keys`),
/// anything else through PC/SC.
pub fn open(name: &str, sim_dir: &Path, keys: &Arc<dyn CardKeys>) -> Result<Box<dyn Transport>> {
    if let Some(n) = parse_sim_name(name)? {
        return Ok(Box::new(open_sim(sim_dir, n, keys)?));
    }
    let pcsc = Pcsc::establish()?;
    let transport = pcsc.connect(name)?;
    Ok(Box::new(transport))
}

/// One simulated reader in a listing.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SimReaderInfo {
    /// `sim:N`.
    pub name: String,
    /// The card's state file.
    pub state: PathBuf,
    /// The state file exists (the card was used before).
    pub created: bool,
}

/// Everything `idcardd readers` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Listing {
    /// PC/SC readers, or why there are none.
    pub pcsc: Result<Vec<ReaderInfo>, String>,
    /// True when pcscd is not running.
    pub pcsc_no_service: bool,
    /// Simulated readers `sim:0..sim:N-1` (a card is always present).
    pub sim: Vec<SimReaderInfo>,
}

/// Lists PC/SC readers (if pcscd runs) and `sims` simulated readers.
pub fn list(sims: usize, sim_dir: &Path) -> Listing {
    let pcsc = Pcsc::establish().and_then(|p| p.list_readers());
    let pcsc_no_service = matches!(pcsc, Err(TransportError::NoService));
    let sim = (0..sims)
        .map(|n| {
            let state = sim_state_path(sim_dir, n);
            SimReaderInfo {
                name: format!("{SIM_PREFIX}{n}"),
                created: state.is_file(),
                state,
            }
        })
        .collect();
    Listing {
        pcsc: pcsc.map_err(|e| e.to_string()),
        pcsc_no_service,
        sim,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_names_parse_or_explain() {
        assert_eq!(parse_sim_name("sim:3").unwrap(), Some(3));
        assert_eq!(parse_sim_name("Virtual PCD 00 00").unwrap(), None);
        assert!(parse_sim_name("sim:").is_err());
        assert!(parse_sim_name("sim:x").is_err());
    }

    #[test]
    fn sim_reader_keeps_its_card_between_opens() {
        let dir = tempfile::tempdir().unwrap();
        let serial = |t: Box<dyn Transport>| apdu::card::IdCard::new(t).info().unwrap().serial;
        let keys: Arc<dyn CardKeys> = Arc::new(cardsim::fixtures::TestMasters);
        assert!(
            open_existing("sim:1", dir.path()).is_err(),
            "nothing there yet"
        );
        let a = open("sim:1", dir.path(), &keys).unwrap();
        assert_eq!(a.reader_name(), "sim:1");
        let first = serial(a);
        assert!(sim_state_path(dir.path(), 1).is_file());
        assert_eq!(serial(open("sim:1", dir.path(), &keys).unwrap()), first);
        assert_eq!(serial(open_existing("sim:1", dir.path()).unwrap()), first);
        assert_ne!(serial(open("sim:0", dir.path(), &keys).unwrap()), first);
        let listing = list(3, dir.path());
        assert!(listing.sim[0].created && listing.sim[1].created && !listing.sim[2].created);
    }
}
