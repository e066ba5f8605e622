//! [`SimCard`]: the chip. One APDU in, one response out; access conditions, life cycle, PINs,
//! mutual authentication and secure messaging are all enforced here, the way the card profile in
//! `docs/card-profile.md` describes them.
//!
//! This module holds the card, its configuration and persistence, and the dispatch by INS; the
//! instructions live in one file per command family:
//! - `respond`: the pipeline around every instruction (class checks, secure messaging, GET
//!   RESPONSE);
//! - `select`: SELECT, READ BINARY, GET DATA;
//! - `write`: UPDATE BINARY, CREATE FILE, DELETE FILE;
//! - `lifecycle`: the life-cycle gate and the ISO/IEC 7816-9 life-cycle commands;
//! - `auth`: GET CHALLENGE, MUTUAL AUTHENTICATE;
//! - `pin`: VERIFY, CHANGE REFERENCE DATA, RESET RETRY COUNTER.

mod auth;
mod lifecycle;
mod pin;
mod respond;
mod select;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use apdu::command::{Command, SHORT_MAX_NC, SHORT_MAX_NE};
use apdu::error::Error;
use apdu::fcp::LifeCycle;
use apdu::layout::CHALLENGE_LEN;
use apdu::sm::{CardKeys, KeyRef, SmSession};
use apdu::status::StatusWord;
use apdu::transport::Capabilities;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::fixtures::TestMasters;
use crate::fs::{Body, Node, NodeId};
use crate::state::{CardState, Geometry};
use crate::CardHandler;

type Sw = StatusWord;

/// How a simulated card is made. The serial and the capacities are fixed at creation and kept
/// in the state file; the master keys are used once, to diversify the card keys.
#[derive(Clone)]
pub struct SimConfig {
    /// The card serial; `None` draws it from `seed`, or at random when that is `None` too.
    pub serial: Option<[u8; 8]>,
    /// Seed for a reproducible serial when `serial` is `None`.
    pub seed: Option<u64>,
    /// Accept extended-length APDUs (ISO/IEC 7816-4 §5.1); off means short APDUs only.
    pub extended_length: bool,
    /// Largest command data field (Nc) the card takes; at most 255 without extended length.
    pub max_command_data: usize,
    /// Largest response data field the card sends; at most 256 without extended length.
    pub max_response_data: usize,
    /// Bytes of card memory for files (each file also costs [`apdu::layout::FILE_OVERHEAD`]).
    pub memory_capacity: usize,
    /// Where the card's own keys 01 and 02 come from, asked once with the serial at creation
    /// (the card maker loading the keys the issuer derived for this chip); the card then holds
    /// them in its state. The issuer's key store in the daemon, [`TestMasters`] in tests.
    pub keys: Arc<dyn CardKeys>,
}

impl std::fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimConfig")
            .field("serial", &self.serial)
            .field("seed", &self.seed)
            .field("extended_length", &self.extended_length)
            .field("max_command_data", &self.max_command_data)
            .field("max_response_data", &self.max_response_data)
            .field("memory_capacity", &self.memory_capacity)
            .finish_non_exhaustive()
    }
}

impl Default for SimConfig {
    /// Extended length, 4096-byte data fields, 256 KiB of file memory, keys from the public
    /// TEST masters ([`TestMasters`]) and a random serial.
    fn default() -> Self {
        SimConfig {
            serial: None,
            seed: None,
            extended_length: true,
            max_command_data: 4096,
            max_response_data: 4096,
            memory_capacity: 256 * 1024,
            keys: Arc::new(TestMasters),
        }
    }
}

/// Which key the current secure messaging session was opened with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Auth {
    /// Key 01: the production line.
    Perso,
    /// Key 02: delivery and inspection.
    Terminal,
}

/// An open secure messaging session (volatile).
struct Session {
    /// The key the session was opened with: decides the access rights.
    auth: Auth,
    /// Session keys and send sequence counter.
    sm: SmSession,
}

/// What one command produced before secure messaging: data and a success or warning status.
struct Reply {
    /// Plain response data.
    data: Vec<u8>,
    /// 9000 or a warning (6282, 6283, 6285); errors travel as `Err(sw)`.
    sw: Sw,
}

impl Reply {
    fn ok(data: Vec<u8>) -> Reply {
        Reply {
            data,
            sw: Sw::Success,
        }
    }
}

type Res = Result<Reply, Sw>;

/// The context a command runs in.
#[derive(Clone, Copy)]
struct Ctx {
    /// The session the command came through, `None` for a plain command.
    auth: Option<Auth>,
    /// Largest plain response data field this command may produce.
    resp_cap: usize,
}

/// The simulated national ID card: an ICAO 9303 LDS1 application on an ISO/IEC 7816-4 file
/// system with ISO/IEC 7816-9 life cycle, diversified AES keys and AES secure messaging.
///
/// Non-volatile state is written to the state file after every command that changes it (atomic
/// replace); volatile state (selection, session, challenge, PIN status) dies with power.
///
/// ```
/// use cardsim::{CardHandler, SimCard, SimConfig};
/// let mut card = SimCard::create(None, SimConfig::default()).unwrap();
/// // GET DATA 0102: a fresh card is in the creation state (01).
/// assert_eq!(card.process_apdu(&[0x00, 0xCA, 0x01, 0x02, 0x01]), [0x01, 0x90, 0x00]);
/// ```
pub struct SimCard {
    /// Non-volatile memory.
    state: CardState,
    /// Where the non-volatile memory lives; `None` for a card that only lives in memory.
    path: Option<PathBuf>,
    /// Current DF.
    current_df: NodeId,
    /// Current EF, if any.
    current_ef: Option<NodeId>,
    /// The open secure messaging session.
    session: Option<Session>,
    /// RND.IC of the last GET CHALLENGE, consumed by MUTUAL AUTHENTICATE.
    challenge: Option<[u8; CHALLENGE_LEN]>,
    /// The PIN was verified since power-on.
    pin_verified: bool,
    /// Set by the transport's fault injection: the next UPDATE BINARY writes only this many
    /// bytes before the card loses power.
    tear_update: Option<usize>,
    /// Response bytes beyond the Ne of the last command, for GET RESPONSE, and its final SW.
    pending: Option<(Vec<u8>, [u8; 2])>,
    /// State changes committed since the card was loaded or created.
    commits: u64,
}

impl std::fmt::Debug for SimCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCard")
            .field("serial", &hex::encode_upper(self.state.serial()))
            .field("lcs", &self.state.lcs())
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SimCard {
    /// A new card in the creation state with an empty LDS1 application DF, persisted at
    /// `state_path` (which must not exist yet) or kept in memory only when `None`.
    pub fn create(state_path: Option<PathBuf>, config: SimConfig) -> Result<SimCard, Error> {
        if let Some(p) = &state_path {
            if p.exists() {
                return Err(Error::Usage(format!(
                    "card state {} already exists; open it instead",
                    p.display()
                )));
            }
        }
        let (cmd_cap, resp_cap) = if config.extended_length {
            (
                apdu::command::EXTENDED_MAX_NC,
                apdu::command::EXTENDED_MAX_NE,
            )
        } else {
            (SHORT_MAX_NC, SHORT_MAX_NE)
        };
        // Secure messaging needs room for its objects around at least a few bytes of data.
        if config.max_command_data < 64 || config.max_response_data < 64 {
            return Err(Error::Usage(
                "a card needs data fields of at least 64 bytes".into(),
            ));
        }
        if config.memory_capacity == 0 {
            return Err(Error::Usage("a card needs some memory".into()));
        }
        let geometry = Geometry {
            extended_length: config.extended_length,
            max_command_data: config.max_command_data.min(cmd_cap),
            max_response_data: config.max_response_data.min(resp_cap),
            memory_capacity: config.memory_capacity,
        };
        let serial = match (config.serial, config.seed) {
            (Some(s), _) => s,
            (None, Some(seed)) => StdRng::seed_from_u64(seed).gen(),
            (None, None) => rand::thread_rng().gen(),
        };
        let state = CardState::fresh(
            serial,
            geometry,
            &config.keys.card_key(KeyRef::Personalization, &serial)?,
            &config.keys.card_key(KeyRef::Terminal, &serial)?,
        );
        if let Some(p) = &state_path {
            state.save(p)?;
        }
        Ok(SimCard::from_state(state, state_path))
    }

    /// Loads a card from its state file. A missing or unreadable file is a transport error; a
    /// corrupt one is [`Error::Malformed`].
    pub fn open(state_path: impl Into<PathBuf>) -> Result<SimCard, Error> {
        let path = state_path.into();
        let state = CardState::load(&path)?;
        Ok(SimCard::from_state(state, Some(path)))
    }

    /// Opens the card at `state_path`, or creates it there with `config` when the file does not
    /// exist.
    pub fn open_or_create(
        state_path: impl Into<PathBuf>,
        config: SimConfig,
    ) -> Result<SimCard, Error> {
        let path = state_path.into();
        if path.exists() {
            SimCard::open(path)
        } else {
            SimCard::create(Some(path), config)
        }
    }

    fn from_state(state: CardState, path: Option<PathBuf>) -> SimCard {
        let root = state.fs.root_id();
        SimCard {
            state,
            path,
            current_df: root,
            current_ef: None,
            session: None,
            challenge: None,
            pin_verified: false,
            tear_update: None,
            pending: None,
            commits: 0,
        }
    }

    /// How many state changes were committed or tried (each writes the state file, for a card
    /// that has one) since the card was loaded or created: a holder of the card can tell that the
    /// file is still as the card last wrote it without looking at it.
    pub fn commits(&self) -> u64 {
        self.commits
    }

    /// The card serial (GET DATA 0101).
    pub fn serial(&self) -> [u8; 8] {
        self.state.serial()
    }

    /// The application life cycle (GET DATA 0102).
    pub fn life_cycle(&self) -> LifeCycle {
        self.state.lcs()
    }

    /// The state file, when the card is persisted.
    pub fn state_path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// What the card can carry, as its ATR announces it. The card never takes command chains.
    pub fn capabilities(&self) -> Capabilities {
        let g = &self.state.geometry;
        Capabilities {
            extended_length: g.extended_length,
            chaining: false,
            max_command_data: g.max_command_data,
            max_response_data: g.max_response_data,
        }
    }

    /// Test inspection, not a card command: the contents of EF `fid` in the application DF, as
    /// a chip debugger would dump the memory. `None` when there is no such EF.
    pub fn app_file(&self, fid: u16) -> Option<Vec<u8>> {
        let id = self.state.fs.child_by_fid(self.state.app, fid)?;
        match &self.state.fs.get(id)?.body {
            Body::Ef { data, .. } => Some(data.clone()),
            Body::Df { .. } => None,
        }
    }

    /// Test inspection: PIN and PUK tries left, `(pin, puk)`.
    pub fn tries_left(&self) -> (u8, u8) {
        (self.state.pin.tries_left, self.state.puk.tries_left)
    }

    /// True while a secure messaging session is open (volatile).
    pub fn has_session(&self) -> bool {
        self.session.is_some()
    }

    /// The answer-to-reset: T=0 and T=1, historical bytes with card capabilities (compact-TLV
    /// `73`) announcing extended length when the card takes it.
    pub fn atr(&self) -> Vec<u8> {
        let caps3 = if self.state.geometry.extended_length {
            0x40
        } else {
            0x00
        };
        // Category 80 (compact-TLV follows): 73 card capabilities (3 bytes), 45 card issuer's
        // data "IDSIM".
        let hist = [
            0x80, 0x73, 0xC0, 0x21, caps3, 0x45, b'I', b'D', b'S', b'I', b'M',
        ];
        let mut atr = vec![0x3B, 0x80 | hist.len() as u8, 0x80, 0x01];
        atr.extend_from_slice(&hist);
        let tck = atr[1..].iter().fold(0u8, |a, b| a ^ b);
        atr.push(tck);
        atr
    }

    /// Clears volatile state: the MF is current, no session, no challenge, PIN not verified.
    fn reset_volatile(&mut self) {
        self.current_df = self.state.fs.root_id();
        self.current_ef = None;
        self.session = None;
        self.challenge = None;
        self.pin_verified = false;
        self.tear_update = None;
        self.pending = None;
    }

    /// Processes an APDU while the card is being pulled: an UPDATE BINARY among it writes only
    /// its first `written` bytes (persisted), then the card loses power. Any other command is
    /// not executed at all.
    pub(crate) fn process_torn(&mut self, apdu: &[u8], written: usize) {
        self.tear_update = Some(written);
        let _ = self.respond(apdu, true);
        self.reset_volatile();
    }

    fn run(&mut self, cmd: &Command, ctx: Ctx, torn: bool) -> Reply {
        if torn && !matches!(cmd.ins, 0xD6 | 0xD7) {
            return Reply {
                data: Vec::new(),
                sw: Sw::MemoryFailure,
            };
        }
        match self.execute(cmd, ctx) {
            Ok(r) => r,
            Err(sw) => Reply {
                data: Vec::new(),
                sw,
            },
        }
    }

    fn execute(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        const KNOWN: [u8; 18] = [
            0xA4, 0xB0, 0xB1, 0xD6, 0xD7, 0xE0, 0xE4, 0x44, 0x04, 0xE6, 0xE8, 0xFE, 0xCA, 0x84,
            0x82, 0x20, 0x24, 0x2C,
        ];
        if !KNOWN.contains(&cmd.ins) {
            return Err(Sw::InsNotSupported);
        }
        self.life_cycle_gate(cmd, ctx)?;
        match cmd.ins {
            0xA4 => self.select(cmd),
            0xB0 | 0xB1 => self.read_binary(cmd, ctx),
            0xD6 | 0xD7 => self.update_binary(cmd, ctx),
            0xE0 => self.create_file(cmd, ctx),
            0xE4 => self.delete_file(cmd, ctx),
            0x44 | 0x04 | 0xE6 | 0xE8 | 0xFE => self.life_cycle_command(cmd, ctx),
            0xCA => self.get_data(cmd),
            0x84 => self.get_challenge(cmd),
            0x82 => self.mutual_authenticate(cmd, ctx),
            0x20 => self.verify(cmd),
            0x24 => self.change_reference_data(cmd, ctx),
            _ => self.reset_retry_counter(cmd),
        }
    }

    /// Writes the next state to the state file, then makes it current. A failed write leaves
    /// the card unchanged and answers 6581.
    fn commit(&mut self, next: CardState) -> Result<(), Sw> {
        // Counted even when the write fails: the file may have changed all the same.
        self.commits += 1;
        if let Some(p) = &self.path {
            if let Err(e) = next.save(p) {
                tracing::warn!(target: "cardsim", "state not saved: {e}");
                return Err(Sw::MemoryFailure);
            }
        }
        self.state = next;
        Ok(())
    }

    /// A copy of the state to change and commit; a write into the application moves it from
    /// creation to initialisation.
    fn next_state(&self) -> CardState {
        let mut next = self.state.clone();
        if next.lcs() == LifeCycle::Creation {
            next.set_lcs(LifeCycle::Initialisation);
        }
        next
    }

    fn node(&self, id: NodeId) -> Result<&Node, Sw> {
        self.state.fs.get(id).ok_or(Sw::FileNotFound)
    }
}

/// SW2 of `61xx`: the bytes left, `00` for 256 or more.
fn sw2_remaining(n: usize) -> u8 {
    if n >= 256 {
        0
    } else {
        n as u8
    }
}

impl CardHandler for SimCard {
    fn atr(&self) -> Vec<u8> {
        SimCard::atr(self)
    }

    fn power_on(&mut self) {
        self.reset_volatile();
    }

    fn power_off(&mut self) {
        self.reset_volatile();
    }

    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        self.respond(apdu, false)
    }
}
