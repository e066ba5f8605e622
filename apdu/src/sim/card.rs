//! [`SimCard`]: the chip. One APDU in, one response out; access conditions, life cycle, PINs,
//! mutual authentication and secure messaging are all enforced here, the way the card profile in
//! `docs/card-profile.md` describes them.

use std::path::{Path, PathBuf};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::command::{Command, SHORT_MAX_NC, SHORT_MAX_NE};
use crate::error::Error;
use crate::fcp::{Fcp, FileDescriptor, LifeCycle, TAG_SFI};
use crate::response::RawResponse;
use crate::sim::fs::{Body, Node, NodeId};
use crate::sim::profile::{self, CHALLENGE_LEN, PIN_REF, PUK_REF};
use crate::sim::state::{CardState, Geometry, Secret};
use crate::sim::CardHandler;
use crate::sm::{self, AesKey, KeyRef, SmSession};
use crate::status::StatusWord;
use crate::tlv::{Tag, Tlv};
use crate::transport::Capabilities;

type Sw = StatusWord;

/// How a simulated card is made. The serial and the capacities are fixed at creation and kept
/// in the state file; the master keys are used once, to diversify the card keys.
#[derive(Debug, Clone)]
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
    /// Bytes of card memory for files (each file also costs [`profile::FILE_OVERHEAD`]).
    pub memory_capacity: usize,
    /// Issuer personalization master key the card's key 01 is diversified from.
    pub perso_master: AesKey,
    /// Issuer terminal master key the card's key 02 is diversified from.
    pub terminal_master: AesKey,
}

impl Default for SimConfig {
    /// Extended length, 4096-byte data fields, 256 KiB of file memory, the test master keys
    /// ([`sm::TEST_PERSO_MASTER`], [`sm::TEST_TERMINAL_MASTER`]) and a random serial.
    fn default() -> Self {
        SimConfig {
            serial: None,
            seed: None,
            extended_length: true,
            max_command_data: 4096,
            max_response_data: 4096,
            memory_capacity: 256 * 1024,
            perso_master: AesKey::test_perso_master(),
            terminal_master: AesKey::test_terminal_master(),
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

/// Status word of a file in termination state (ISO/IEC 7816-4 §5.6: 6285).
const SW_TERMINATED: Sw = Sw::Other(0x6285);

/// The simulated national ID card: an ICAO 9303 LDS1 application on an ISO/IEC 7816-4 file
/// system with ISO/IEC 7816-9 life cycle, diversified AES keys and AES secure messaging.
///
/// Non-volatile state is written to the state file after every command that changes it (atomic
/// replace); volatile state (selection, session, challenge, PIN status) dies with power.
///
/// ```
/// use apdu::sim::{CardHandler, SimCard, SimConfig};
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
                crate::command::EXTENDED_MAX_NC,
                crate::command::EXTENDED_MAX_NE,
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
            &config.perso_master,
            &config.terminal_master,
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

    /// Largest plain data field whose protected form fits the response limit.
    fn sm_resp_cap(&self) -> usize {
        let max = self.state.geometry.max_response_data;
        let wrapped = |n: usize| {
            let do87 = if n == 0 {
                0
            } else {
                let v = sm::padded_len(n) + 1;
                1 + crate::tlv::length_size(v) + v
            };
            do87 + 4 + 2 + sm::MAC_LEN
        };
        let mut n = max;
        while n > 0 && wrapped(n) > max {
            n -= 1;
        }
        n
    }

    /// The whole command pipeline: parsing, class checks, secure messaging, life cycle, the
    /// instruction. `torn` makes the card refuse every command but UPDATE BINARY (the transport
    /// pulls the card during the command).
    fn respond(&mut self, bytes: &[u8], torn: bool) -> Vec<u8> {
        let plain_sw = |sw: Sw| sw.to_bytes().to_vec();
        // GET RESPONSE is outside secure messaging and leaves the session alone.
        if !torn && bytes.len() >= 4 && bytes[0] == 0x00 && bytes[1] == 0xC0 {
            return self.get_response(bytes);
        }
        self.pending = None;
        // Anything that is not a valid protected command ends the session.
        let extended = bytes.len() > 5 && bytes[4] == 0;
        let cmd = match Command::parse(bytes) {
            Ok(c) => c,
            Err(_) => {
                self.session = None;
                return plain_sw(Sw::WrongLength);
            }
        };
        let g = self.state.geometry;
        if (extended && !g.extended_length) || cmd.data.len() > g.max_command_data {
            self.session = None;
            return plain_sw(Sw::WrongLength);
        }
        let early = if cmd.cla == 0xFF || cmd.cla & 0x80 != 0 {
            Some(Sw::ClaNotSupported)
        } else if cmd.cla & 0x03 != 0 {
            Some(Sw::LogicalChannelNotSupported)
        } else if cmd.cla & 0x10 != 0 {
            Some(Sw::ChainingNotSupported)
        } else if cmd.cla & 0x0C == 0x04 || cmd.cla & 0x0C == 0x08 {
            Some(Sw::SecureMessagingNotSupported)
        } else {
            None
        };
        if let Some(sw) = early {
            self.session = None;
            return plain_sw(sw);
        }
        if self.state.lcs().is_terminated() {
            // A terminated card answers only the plain GET DATA of its serial and life cycle.
            self.session = None;
            let readable = cmd.cla == 0
                && cmd.ins == 0xCA
                && [profile::DO_SERIAL, profile::DO_LCS]
                    .contains(&u16::from_be_bytes([cmd.p1, cmd.p2]));
            if !readable {
                return plain_sw(Sw::ConditionsNotSatisfied);
            }
        }
        if cmd.is_secure_messaging() {
            let Some(mut session) = self.session.take() else {
                return plain_sw(Sw::SmObjectsIncorrect);
            };
            let plain = match session.sm.unwrap_command(&cmd) {
                Ok(p) => p,
                Err(sw) => return plain_sw(sw),
            };
            let ctx = Ctx {
                auth: Some(session.auth),
                resp_cap: self.sm_resp_cap(),
            };
            let reply = self.run(&plain, ctx, torn);
            let out = session.sm.wrap_response(&reply.data, reply.sw);
            if self.session.is_none() && !self.state.lcs().is_terminated() {
                self.session = Some(session);
            }
            self.limit_to_ne(out, cmd.ne)
        } else {
            self.session = None;
            let ctx = Ctx {
                auth: None,
                resp_cap: g.max_response_data,
            };
            let reply = self.run(&cmd, ctx, torn);
            RawResponse {
                data: reply.data,
                sw: reply.sw,
            }
            .to_bytes()
        }
    }

    /// A protected response longer than the Ne of the command on the wire (typically Le = 00
    /// while the plain data plus the SM objects exceed 256 bytes) is cut at Ne with `61xx`; GET
    /// RESPONSE fetches the rest (ISO/IEC 7816-4 §5.3.4).
    fn limit_to_ne(&mut self, out: Vec<u8>, ne: Option<usize>) -> Vec<u8> {
        let Some(ne) = ne else { return out };
        let split = out.len().saturating_sub(2);
        if split <= ne {
            return out;
        }
        let sw = [out[split], out[split + 1]];
        let mut first = out[..ne].to_vec();
        let rest = out[ne..split].to_vec();
        first.extend_from_slice(&[0x61, sw2_remaining(rest.len())]);
        self.pending = Some((rest, sw));
        first
    }

    /// GET RESPONSE (C0): P1-P2 `0000`, the next Ne bytes held back by `61xx`.
    fn get_response(&mut self, bytes: &[u8]) -> Vec<u8> {
        let cmd = match Command::parse(bytes) {
            Ok(c) if c.data.is_empty() => c,
            _ => return Sw::WrongLength.to_bytes().to_vec(),
        };
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Sw::IncorrectP1P2.to_bytes().to_vec();
        }
        let Some((mut rest, sw)) = self.pending.take() else {
            return Sw::ConditionsNotSatisfied.to_bytes().to_vec();
        };
        let n = cmd
            .ne
            .unwrap_or(crate::command::SHORT_MAX_NE)
            .min(rest.len());
        let mut out: Vec<u8> = rest.drain(..n).collect();
        if rest.is_empty() {
            out.extend_from_slice(&sw);
        } else {
            out.extend_from_slice(&[0x61, sw2_remaining(rest.len())]);
            self.pending = Some((rest, sw));
        }
        out
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

    /// True before the card leaves the production line (creation or initialisation state).
    fn pre_issuance(&self) -> bool {
        matches!(
            self.state.lcs(),
            LifeCycle::Creation | LifeCycle::Initialisation
        )
    }

    /// The card life cycle decides which commands exist at all (6985 otherwise); access
    /// conditions of files and PINs come after.
    fn life_cycle_gate(&self, cmd: &Command, ctx: Ctx) -> Result<(), Sw> {
        let terminal = ctx.auth == Some(Auth::Terminal);
        let allowed = match self.state.lcs() {
            LifeCycle::Creation | LifeCycle::Initialisation => true,
            LifeCycle::Activated => !matches!(cmd.ins, 0xE0 | 0xE4 | 0xD6 | 0xD7),
            LifeCycle::Deactivated => match cmd.ins {
                0xA4 | 0xCA | 0x84 | 0xE6 | 0xE8 | 0xFE => true,
                0x82 => cmd.p2 == KeyRef::Terminal.byte(),
                0xB0 | 0xB1 | 0x20 | 0x24 | 0x44 => terminal,
                _ => false,
            },
            // Terminated cards are handled before secure messaging.
            _ => matches!(cmd.ins, 0xCA),
        };
        if allowed {
            Ok(())
        } else {
            Err(Sw::ConditionsNotSatisfied)
        }
    }

    /// Writes the next state to the state file, then makes it current. A failed write leaves
    /// the card unchanged and answers 6581.
    fn commit(&mut self, next: CardState) -> Result<(), Sw> {
        // Counted even when the write fails: the file may have changed all the same.
        self.commits += 1;
        if let Some(p) = &self.path {
            if let Err(e) = next.save(p) {
                tracing::warn!(target: "apdu::sim", "state not saved: {e}");
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

    // -----------------------------------------------------------------------------------------
    // File selection.

    /// Finds a file the way SELECT's P1 says (ISO/IEC 7816-4 §11.2.2).
    fn resolve(&self, p1: u8, data: &[u8]) -> Result<NodeId, Sw> {
        let fs = &self.state.fs;
        let root = fs.root_id();
        let fid_of = |d: &[u8]| -> Result<u16, Sw> {
            match d {
                [a, b] => Ok(u16::from_be_bytes([*a, *b])),
                _ => Err(Sw::WrongLength),
            }
        };
        match p1 {
            0x00 => {
                if data.is_empty() {
                    return Ok(root);
                }
                let fid = fid_of(data)?;
                if fid == profile::MF_FID {
                    return Ok(root);
                }
                let df = self.current_df;
                if let Some(id) = fs.child_by_fid(df, fid) {
                    return Ok(id);
                }
                if self.node(df)?.fid == Some(fid) {
                    return Ok(df);
                }
                if let Some(parent) = fs.parent(df) {
                    if self.node(parent)?.fid == Some(fid) {
                        return Ok(parent);
                    }
                    if let Some(id) = fs.child_by_fid(parent, fid) {
                        return Ok(id);
                    }
                }
                Err(Sw::FileNotFound)
            }
            0x01 | 0x02 => {
                let id = fs
                    .child_by_fid(self.current_df, fid_of(data)?)
                    .ok_or(Sw::FileNotFound)?;
                if self.node(id)?.is_df() == (p1 == 0x01) {
                    Ok(id)
                } else {
                    Err(Sw::FileNotFound)
                }
            }
            0x03 => {
                if !data.is_empty() {
                    return Err(Sw::WrongLength);
                }
                fs.parent(self.current_df).ok_or(Sw::FileNotFound)
            }
            0x04 => match data.len() {
                0 => Ok(root),
                1..=16 => fs.df_by_name(data).ok_or(Sw::FileNotFound),
                _ => Err(Sw::WrongLength),
            },
            0x08 | 0x09 => {
                if data.is_empty() || !data.len().is_multiple_of(2) {
                    return Err(Sw::WrongLength);
                }
                let mut fids: Vec<u16> = data
                    .chunks(2)
                    .map(|c| u16::from_be_bytes([c[0], c[1]]))
                    .collect();
                let mut at = if p1 == 0x08 { root } else { self.current_df };
                if p1 == 0x08 && fids.first() == Some(&profile::MF_FID) {
                    fids.remove(0);
                }
                for fid in fids {
                    if !self.node(at)?.is_df() {
                        return Err(Sw::FileNotFound);
                    }
                    at = fs.child_by_fid(at, fid).ok_or(Sw::FileNotFound)?;
                }
                Ok(at)
            }
            _ => Err(Sw::IncorrectP1P2),
        }
    }

    fn make_current(&mut self, id: NodeId) {
        let fs = &self.state.fs;
        match fs.get(id) {
            Some(n) if n.is_df() => {
                self.current_df = id;
                self.current_ef = None;
            }
            Some(_) => {
                self.current_df = fs.parent(id).unwrap_or(fs.root_id());
                self.current_ef = Some(id);
            }
            None => {}
        }
    }

    /// SELECT (A4), ISO/IEC 7816-4 §11.2.2.
    fn select(&mut self, cmd: &Command) -> Res {
        let want_fcp = match cmd.p2 {
            0x00 | 0x04 => true,
            0x0C => false,
            _ => return Err(Sw::IncorrectP1P2),
        };
        let id = self.resolve(cmd.p1, &cmd.data)?;
        let node = self.node(id)?;
        let fcp = if want_fcp {
            node.fcp().to_bytes()
        } else {
            Vec::new()
        };
        if let Some(ne) = cmd.ne {
            if want_fcp && ne < fcp.len() {
                return Err(Sw::WrongLe {
                    exact_len: fcp.len() as u8,
                });
            }
        }
        let lcs = node.life_cycle();
        self.make_current(id);
        let sw = if lcs.is_terminated() {
            SW_TERMINATED
        } else if lcs.is_deactivated() {
            Sw::FileDeactivated
        } else {
            Sw::Success
        };
        Ok(Reply { data: fcp, sw })
    }

    // -----------------------------------------------------------------------------------------
    // Transparent EFs.

    /// The EF and offset a READ/UPDATE BINARY addresses; for the odd INS also the data object
    /// `53` of an UPDATE.
    fn binary_target(&self, cmd: &Command) -> Result<(NodeId, usize, Vec<u8>), Sw> {
        let fs = &self.state.fs;
        if cmd.ins & 1 == 1 {
            let objects = Tlv::decode_all(&cmd.data).map_err(|_| Sw::IncorrectData)?;
            let offset = match crate::tlv::find(&objects, &[Tag(0x54)]).and_then(Tlv::as_bytes) {
                Some(b) if !b.is_empty() && b.len() <= 3 => {
                    b.iter().fold(0usize, |a, &x| (a << 8) | x as usize)
                }
                _ => return Err(Sw::IncorrectData),
            };
            let payload = crate::tlv::find(&objects, &[Tag(0x53)])
                .and_then(Tlv::as_bytes)
                .map(<[u8]>::to_vec)
                .unwrap_or_default();
            let id = match (cmd.p1, cmd.p2) {
                (0, 0) => self.current_ef.ok_or(Sw::CommandNotAllowed)?,
                (0, sfi @ 1..=30) => fs
                    .child_by_sfi(self.current_df, sfi)
                    .ok_or(Sw::FileNotFound)?,
                (a, b) => fs
                    .child_by_fid(self.current_df, u16::from_be_bytes([a, b]))
                    .ok_or(Sw::FileNotFound)?,
            };
            return Ok((id, offset, payload));
        }
        if cmd.p1 & 0x80 != 0 {
            let sfi = cmd.p1 & 0x1F;
            if cmd.p1 & 0x60 != 0 || !(1..=30).contains(&sfi) {
                return Err(Sw::IncorrectP1P2);
            }
            let id = fs
                .child_by_sfi(self.current_df, sfi)
                .ok_or(Sw::FileNotFound)?;
            Ok((id, cmd.p2 as usize, cmd.data.to_vec()))
        } else {
            let id = self.current_ef.ok_or(Sw::CommandNotAllowed)?;
            let offset = u16::from_be_bytes([cmd.p1, cmd.p2]) as usize;
            Ok((id, offset, cmd.data.to_vec()))
        }
    }

    /// True when the file lies in the LDS1 application.
    fn in_app(&self, id: NodeId) -> bool {
        self.state.fs.path(id).contains(&self.state.app)
    }

    /// Refuses files (or DFs above them, other than the MF and the application, whose life
    /// cycle is the card's) that are deactivated or terminated.
    fn usable(&self, id: NodeId) -> Result<(), Sw> {
        let root = self.state.fs.root_id();
        for n in self.state.fs.path(id) {
            if n == root || n == self.state.app {
                continue;
            }
            let lcs = self.node(n)?.life_cycle();
            if lcs.is_deactivated() || lcs.is_terminated() {
                return Err(Sw::ConditionsNotSatisfied);
            }
        }
        Ok(())
    }

    /// Read access: files of the application need a session; DG3 and DG4 need the terminal
    /// session, or the personalization session before the card leaves the line.
    fn may_read(&self, id: NodeId, auth: Option<Auth>) -> Result<(), Sw> {
        if !self.in_app(id) {
            return Ok(());
        }
        let fid = self.node(id)?.fid;
        let extended = fid == Some(profile::EF_DG3) || fid == Some(profile::EF_DG4);
        match auth {
            Some(Auth::Terminal) => Ok(()),
            Some(Auth::Perso) if !extended || self.pre_issuance() => Ok(()),
            _ => Err(Sw::SecurityStatusNotSatisfied),
        }
    }

    /// Write access (CREATE, UPDATE, DELETE, file life cycle): the personalization session.
    fn may_write(&self, auth: Option<Auth>) -> Result<(), Sw> {
        if auth == Some(Auth::Perso) {
            Ok(())
        } else {
            Err(Sw::SecurityStatusNotSatisfied)
        }
    }

    /// READ BINARY (B0, B1), ISO/IEC 7816-4 §11.3.3.
    fn read_binary(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        let odd = cmd.ins == 0xB1;
        if !odd && !cmd.data.is_empty() {
            return Err(Sw::WrongLength);
        }
        let (id, offset, _) = self.binary_target(cmd)?;
        let node = self.node(id)?;
        let Body::Ef { data, .. } = &node.body else {
            return Err(Sw::IncompatibleFileStructure);
        };
        self.may_read(id, ctx.auth)?;
        self.usable(id)?;
        let ne = cmd.ne.ok_or(Sw::WrongLength)?;
        if offset > data.len() {
            return Err(Sw::WrongP1P2);
        }
        let available = data.len() - offset;
        let limit = ne.min(ctx.resp_cap);
        // The odd INS answers `53 L data`: the header takes 2 to 4 bytes of the limit.
        let header = |n: usize| {
            if odd {
                1 + crate::tlv::length_size(n)
            } else {
                0
            }
        };
        let mut n = available.min(limit);
        while n > 0 && n + header(n) > limit {
            n -= 1;
        }
        let chunk = data[offset..offset + n].to_vec();
        let sw = if n == available && n + header(n) < ne {
            Sw::EndOfFile
        } else {
            Sw::Success
        };
        self.make_current(id);
        let out = if odd {
            Tlv::primitive(Tag(0x53), chunk).encode()
        } else {
            chunk
        };
        Ok(Reply { data: out, sw })
    }

    /// UPDATE BINARY (D6, D7), ISO/IEC 7816-4 §11.3.5.
    fn update_binary(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        self.may_write(ctx.auth)?;
        let (id, offset, payload) = self.binary_target(cmd)?;
        let node = self.node(id)?;
        let Body::Ef { data, .. } = &node.body else {
            return Err(Sw::IncompatibleFileStructure);
        };
        self.usable(id)?;
        if payload.is_empty() {
            return Err(Sw::WrongLength);
        }
        if offset > data.len() {
            return Err(Sw::WrongP1P2);
        }
        if offset + payload.len() > data.len() {
            return Err(Sw::NotEnoughMemory);
        }
        let written = match self.tear_update.take() {
            Some(k) => k.min(payload.len()),
            None => payload.len(),
        };
        let mut next = self.next_state();
        if let Some(Node {
            body: Body::Ef { data, .. },
            ..
        }) = next.fs.get_mut(id)
        {
            data[offset..offset + written].copy_from_slice(&payload[..written]);
        }
        self.commit(next)?;
        self.make_current(id);
        Ok(Reply::ok(Vec::new()))
    }

    /// CREATE FILE (E0), ISO/IEC 7816-9 §8.1: a DF or a transparent EF under the current DF.
    fn create_file(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        self.may_write(ctx.auth)?;
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(Sw::IncorrectP1P2);
        }
        let fcp = Fcp::parse(&cmd.data).map_err(|_| Sw::IncorrectData)?;
        let df = self.current_df;
        let fs = &self.state.fs;
        let lcs = match fcp.life_cycle {
            None => LifeCycle::Activated,
            Some(l @ (LifeCycle::Activated | LifeCycle::Deactivated)) => l,
            Some(_) => return Err(Sw::IncorrectData),
        };
        if let Some(fid) = fcp.fid {
            if [profile::MF_FID, 0x3FFF, 0xFFFF].contains(&fid) {
                return Err(Sw::IncorrectData);
            }
            if fs.child_by_fid(df, fid).is_some() || self.node(df)?.fid == Some(fid) {
                return Err(Sw::FileAlreadyExists);
            }
        }
        let id = self.state.fs.next_id;
        let (node, size) = if fcp.descriptor.is_df() {
            if fcp.fid.is_none() && fcp.df_name.is_none() {
                return Err(Sw::IncorrectData);
            }
            if fs.path(df).len() > profile::MAX_DF_DEPTH {
                return Err(Sw::NotEnoughMemory);
            }
            if let Some(name) = &fcp.df_name {
                if fs
                    .all()
                    .iter()
                    .any(|n| n.df_name() == Some(name.as_slice()))
                {
                    return Err(Sw::FileAlreadyExists);
                }
            }
            (Node::df(id, fcp.fid, fcp.df_name.clone(), lcs), 0)
        } else if fcp.descriptor == FileDescriptor::TRANSPARENT_EF {
            let (Some(fid), Some(size)) = (fcp.fid, fcp.size) else {
                return Err(Sw::IncorrectData);
            };
            let size = size as usize;
            if size > profile::MAX_EF_SIZE {
                return Err(Sw::NotEnoughMemory);
            }
            let no_sfi = fcp.other.iter().any(|t| t.tag == TAG_SFI);
            let sfi = if no_sfi {
                None
            } else {
                fcp.sfi.or(profile::default_sfi(fid))
            };
            if let Some(s) = sfi {
                if fs.child_by_sfi(df, s).is_some() {
                    return Err(Sw::FileAlreadyExists);
                }
            }
            let node = Node {
                id,
                fid: Some(fid),
                lcs: lcs.into(),
                body: Body::Ef {
                    sfi,
                    data: vec![0; size],
                },
            };
            (node, size)
        } else {
            return Err(Sw::FunctionNotSupported);
        };
        if fs.used() + profile::FILE_OVERHEAD + size > self.state.geometry.memory_capacity {
            return Err(Sw::NotEnoughMemory);
        }
        let mut next = self.next_state();
        next.fs.next_id += 1;
        if !next.fs.insert(df, node) {
            return Err(Sw::CommandNotAllowed);
        }
        self.commit(next)?;
        self.make_current(id);
        Ok(Reply::ok(Vec::new()))
    }

    /// DELETE FILE (E4), ISO/IEC 7816-9 §8.3: a child of the current DF by FID, or the current
    /// file. The MF and the application DF cannot be deleted.
    fn delete_file(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        self.may_write(ctx.auth)?;
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(Sw::IncorrectP1P2);
        }
        let id = match cmd.data.len() {
            0 => self.current_ef.unwrap_or(self.current_df),
            2 => self
                .state
                .fs
                .child_by_fid(
                    self.current_df,
                    u16::from_be_bytes([cmd.data[0], cmd.data[1]]),
                )
                .ok_or(Sw::FileNotFound)?,
            _ => return Err(Sw::WrongLength),
        };
        if id == self.state.fs.root_id() || id == self.state.app {
            return Err(Sw::ConditionsNotSatisfied);
        }
        let parent = self.state.fs.parent(id).ok_or(Sw::FileNotFound)?;
        let mut next = self.next_state();
        next.fs.remove(id).ok_or(Sw::FileNotFound)?;
        let df_gone = self.state.fs.path(self.current_df).contains(&id);
        let ef_gone = self
            .current_ef
            .is_some_and(|e| self.state.fs.path(e).contains(&id));
        self.commit(next)?;
        if df_gone {
            self.current_df = parent;
            self.current_ef = None;
        } else if ef_gone {
            self.current_ef = None;
        }
        Ok(Reply::ok(Vec::new()))
    }

    // -----------------------------------------------------------------------------------------
    // Life cycle.

    /// ACTIVATE FILE (44), DEACTIVATE FILE (04), TERMINATE DF (E6), TERMINATE EF (E8) and
    /// TERMINATE CARD USAGE (FE), ISO/IEC 7816-9 §8.
    fn life_cycle_command(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        let app = self.state.app;
        let root = self.state.fs.root_id();
        let target = if cmd.ins == 0xFE {
            if cmd.p1 != 0 || cmd.p2 != 0 {
                return Err(Sw::IncorrectP1P2);
            }
            if !cmd.data.is_empty() {
                return Err(Sw::WrongLength);
            }
            app
        } else {
            match (cmd.p1, cmd.p2, cmd.data.is_empty()) {
                (0x00, 0x00, true) if cmd.ins == 0xE6 => self.current_df,
                (0x00, 0x00, true) => self.current_ef.unwrap_or(self.current_df),
                (0x00 | 0x04 | 0x08, 0x00, false) => self.resolve(cmd.p1, &cmd.data)?,
                _ => return Err(Sw::IncorrectP1P2),
            }
        };
        let is_df = self.node(target)?.is_df();
        if (cmd.ins == 0xE6 && !is_df) || (cmd.ins == 0xE8 && is_df) {
            return Err(Sw::IncompatibleFileStructure);
        }
        if target == app || target == root || cmd.ins == 0xFE {
            return self.card_life_cycle(cmd.ins, target == root, ctx);
        }
        // An ordinary file: personalization only, before the card leaves the line.
        self.may_write(ctx.auth)?;
        if !self.pre_issuance() {
            return Err(Sw::ConditionsNotSatisfied);
        }
        let current = self.node(target)?.life_cycle();
        if current.is_terminated() {
            return Err(Sw::ConditionsNotSatisfied);
        }
        let lcs = match cmd.ins {
            0x44 => LifeCycle::Activated,
            0x04 => LifeCycle::Deactivated,
            _ => LifeCycle::Terminated,
        };
        let mut next = self.next_state();
        if let Some(n) = next.fs.get_mut(target) {
            n.lcs = lcs.into();
        }
        self.commit(next)?;
        Ok(Reply::ok(Vec::new()))
    }

    /// The card's own transitions (the application DF, or the MF for termination).
    fn card_life_cycle(&mut self, ins: u8, mf: bool, ctx: Ctx) -> Res {
        let lcs = self.state.lcs();
        let s = &self.state;
        let next_lcs = match ins {
            0x44 if mf => return Err(Sw::ConditionsNotSatisfied),
            0x04 if mf => return Err(Sw::ConditionsNotSatisfied),
            0x44 => {
                if lcs == LifeCycle::Activated {
                    return Ok(Reply::ok(Vec::new()));
                }
                if lcs != LifeCycle::Deactivated {
                    return Err(Sw::ConditionsNotSatisfied);
                }
                if ctx.auth != Some(Auth::Terminal) {
                    return Err(Sw::SecurityStatusNotSatisfied);
                }
                if s.pin.value.is_none() || s.puk.value.is_none() || s.pin_is_transport {
                    return Err(Sw::ConditionsNotSatisfied);
                }
                LifeCycle::Activated
            }
            0x04 => {
                if self.pre_issuance() {
                    if ctx.auth != Some(Auth::Perso) {
                        return Err(Sw::SecurityStatusNotSatisfied);
                    }
                    if s.pin.value.is_none() || s.puk.value.is_none() {
                        return Err(Sw::ConditionsNotSatisfied);
                    }
                } else if ctx.auth.is_none() {
                    return Err(Sw::SecurityStatusNotSatisfied);
                }
                LifeCycle::Deactivated
            }
            _ => {
                if ctx.auth.is_none() {
                    return Err(Sw::SecurityStatusNotSatisfied);
                }
                LifeCycle::Terminated
            }
        };
        let mut next = self.state.clone();
        next.set_lcs(next_lcs);
        if next_lcs == LifeCycle::Terminated {
            next.fs.root.lcs = LifeCycle::Terminated.into();
        }
        self.commit(next)?;
        Ok(Reply::ok(Vec::new()))
    }

    // -----------------------------------------------------------------------------------------
    // GET DATA, GET CHALLENGE, MUTUAL AUTHENTICATE.

    /// GET DATA (CA): serial (0101), life cycle (0102), EF list of the application (0103).
    fn get_data(&mut self, cmd: &Command) -> Res {
        let data = match u16::from_be_bytes([cmd.p1, cmd.p2]) {
            profile::DO_SERIAL => self.state.serial().to_vec(),
            profile::DO_LCS => vec![u8::from(self.state.lcs())],
            profile::DO_FILE_LIST => {
                let app = self.node(self.state.app)?;
                let mut fids: Vec<u16> = app
                    .children()
                    .iter()
                    .filter(|c| !c.is_df())
                    .filter_map(|c| c.fid)
                    .collect();
                fids.sort_unstable();
                fids.iter().flat_map(|f| f.to_be_bytes()).collect()
            }
            _ => return Err(Sw::ReferenceDataNotFound),
        };
        if !cmd.data.is_empty() {
            return Err(Sw::WrongLength);
        }
        match cmd.ne {
            Some(ne) if ne < data.len() && data.len() <= crate::command::SHORT_MAX_NE => {
                Err(Sw::WrongLe {
                    exact_len: sw2_remaining(data.len()),
                })
            }
            Some(ne) if ne < data.len() => Err(Sw::WrongLength),
            _ => Ok(Reply::ok(data)),
        }
    }

    /// GET CHALLENGE (84): 16 random bytes, kept for the next MUTUAL AUTHENTICATE.
    fn get_challenge(&mut self, cmd: &Command) -> Res {
        if cmd.p1 != 0 || cmd.p2 != 0 {
            return Err(Sw::IncorrectP1P2);
        }
        if !cmd.data.is_empty() {
            return Err(Sw::WrongLength);
        }
        match cmd.ne {
            None => return Err(Sw::WrongLength),
            Some(CHALLENGE_LEN) => {}
            Some(_) => {
                return Err(Sw::WrongLe {
                    exact_len: CHALLENGE_LEN as u8,
                })
            }
        }
        let rnd: [u8; CHALLENGE_LEN] = rand::thread_rng().gen();
        self.challenge = Some(rnd);
        Ok(Reply::ok(rnd.to_vec()))
    }

    /// MUTUAL AUTHENTICATE (82): P2 = key reference, data = RND.IFD || host cryptogram. The
    /// failure counter is raised and persisted before the cryptogram is checked, so pulling the
    /// card cannot buy free attempts; success puts it back to 0.
    fn mutual_authenticate(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        if ctx.auth.is_some() {
            return Err(Sw::ConditionsNotSatisfied);
        }
        if cmd.p1 != 0 {
            return Err(Sw::IncorrectP1P2);
        }
        let key_ref = KeyRef::try_from(cmd.p2)?;
        let challenge = self.challenge.take().ok_or(Sw::ConditionsNotSatisfied)?;
        if key_ref == KeyRef::Personalization && self.state.lcs() == LifeCycle::Deactivated {
            return Err(Sw::ConditionsNotSatisfied);
        }
        if self.state.key(key_ref).blocked() {
            return Err(Sw::AuthenticationBlocked);
        }
        if cmd.data.len() != sm::RND_LEN + sm::CRYPTOGRAM_LEN {
            return Err(Sw::WrongLength);
        }
        let key = self
            .state
            .key(key_ref)
            .aes()
            .ok_or(Sw::ReferenceDataNotUsable)?;
        let before = self.state.key(key_ref).failures;
        let mut next = self.state.clone();
        next.key_mut(key_ref).failures = before + 1;
        self.commit(next)?;
        match sm::card_authenticate_step(&key, &challenge, &cmd.data) {
            Ok(auth) => {
                let mut next = self.state.clone();
                next.key_mut(key_ref).failures = 0;
                self.commit(next)?;
                let kind = match key_ref {
                    KeyRef::Personalization => Auth::Perso,
                    KeyRef::Terminal => Auth::Terminal,
                };
                self.session = Some(Session {
                    auth: kind,
                    sm: auth.session,
                });
                Ok(Reply::ok(auth.card_cryptogram.to_vec()))
            }
            Err(sw) if self.state.key(key_ref).blocked() && sw == sm::SW_AUTH_FAILED => {
                Err(Sw::AuthenticationBlocked)
            }
            Err(sw) => Err(sw),
        }
    }

    // -----------------------------------------------------------------------------------------
    // PIN and PUK.

    fn secret(&self, reference: u8) -> Result<&Secret, Sw> {
        match reference {
            PIN_REF => Ok(&self.state.pin),
            PUK_REF => Ok(&self.state.puk),
            _ => Err(Sw::ReferenceDataNotFound),
        }
    }

    /// A new PIN or PUK value: ASCII digits of the allowed length.
    fn well_formed(reference: u8, value: &[u8]) -> Result<(), Sw> {
        let min = if reference == PUK_REF {
            profile::PUK_MIN_LEN
        } else {
            profile::PIN_MIN_LEN
        };
        if value.len() < min
            || value.len() > profile::SECRET_MAX_LEN
            || !value.iter().all(u8::is_ascii_digit)
        {
            return Err(Sw::IncorrectData);
        }
        Ok(())
    }

    /// Presents `candidate` for `reference`: the counter is decremented and persisted first,
    /// then restored on a match. Answers 63Cx, or 6983 when this attempt used the last try.
    fn present(&mut self, reference: u8, candidate: &[u8]) -> Result<(), Sw> {
        let secret = self.secret(reference)?.clone();
        let value = secret.value.ok_or(Sw::ReferenceDataNotUsable)?;
        if secret.tries_left == 0 {
            return Err(Sw::AuthenticationBlocked);
        }
        let max = if reference == PUK_REF {
            profile::PUK_MAX_TRIES
        } else {
            profile::PIN_MAX_TRIES
        };
        let mut next = self.state.clone();
        secret_mut(&mut next, reference).tries_left = secret.tries_left - 1;
        self.commit(next)?;
        if sm::ct_eq(&value, candidate) {
            let mut next = self.state.clone();
            secret_mut(&mut next, reference).tries_left = max;
            self.commit(next)?;
            Ok(())
        } else {
            let left = secret.tries_left - 1;
            if reference == PIN_REF {
                self.pin_verified = false;
            }
            Err(if left == 0 {
                Sw::AuthenticationBlocked
            } else {
                Sw::WrongPin { tries_left: left }
            })
        }
    }

    /// VERIFY (20), P2 = 81: checks the PIN; with no data, reports the status.
    fn verify(&mut self, cmd: &Command) -> Res {
        if cmd.p1 != 0 {
            return Err(Sw::IncorrectP1P2);
        }
        if cmd.p2 != PIN_REF {
            return Err(Sw::ReferenceDataNotFound);
        }
        let pin = &self.state.pin;
        if pin.value.is_none() {
            return Err(Sw::ReferenceDataNotUsable);
        }
        if cmd.data.is_empty() {
            return match (pin.tries_left, self.pin_verified) {
                (0, _) => Err(Sw::AuthenticationBlocked),
                (_, true) => Ok(Reply::ok(Vec::new())),
                (n, false) => Err(Sw::WrongPin { tries_left: n }),
            };
        }
        self.present(PIN_REF, &cmd.data)?;
        self.pin_verified = true;
        Ok(Reply::ok(Vec::new()))
    }

    /// CHANGE REFERENCE DATA (24): P1 = 00 with old || new, or P1 = 01 with only the new value
    /// (personalization session before issuance: transport PIN and PUK; terminal session after
    /// a successful VERIFY: the holder PIN).
    fn change_reference_data(&mut self, cmd: &Command, ctx: Ctx) -> Res {
        let reference = cmd.p2;
        let current = self.secret(reference)?.clone();
        let (new, transport) = match cmd.p1 {
            0x01 => {
                let perso = ctx.auth == Some(Auth::Perso) && self.pre_issuance();
                let holder = ctx.auth == Some(Auth::Terminal)
                    && reference == PIN_REF
                    && self.pin_verified
                    && !self.pre_issuance();
                if !perso && !holder {
                    return Err(Sw::SecurityStatusNotSatisfied);
                }
                Self::well_formed(reference, &cmd.data)?;
                (cmd.data.to_vec(), perso)
            }
            0x00 => {
                let old = current.value.as_ref().ok_or(Sw::ReferenceDataNotUsable)?;
                if current.tries_left == 0 {
                    return Err(Sw::AuthenticationBlocked);
                }
                if cmd.data.len() <= old.len() {
                    return Err(Sw::WrongLength);
                }
                let (given, new) = cmd.data.split_at(old.len());
                Self::well_formed(reference, new)?;
                self.present(reference, given)?;
                (new.to_vec(), false)
            }
            _ => return Err(Sw::IncorrectP1P2),
        };
        let max = if reference == PUK_REF {
            profile::PUK_MAX_TRIES
        } else {
            profile::PIN_MAX_TRIES
        };
        let mut next = self.next_state();
        let s = secret_mut(&mut next, reference);
        s.value = Some(new);
        s.tries_left = max;
        if reference == PIN_REF {
            next.pin_is_transport = transport;
        }
        self.commit(next)?;
        if reference == PIN_REF {
            self.pin_verified = !transport;
        }
        Ok(Reply::ok(Vec::new()))
    }

    /// RESET RETRY COUNTER (2C), P2 = 81: P1 = 00 with PUK || new PIN, P1 = 01 with the PUK.
    fn reset_retry_counter(&mut self, cmd: &Command) -> Res {
        if cmd.p2 != PIN_REF {
            return Err(Sw::ReferenceDataNotFound);
        }
        if cmd.p1 > 1 {
            return Err(Sw::IncorrectP1P2);
        }
        let puk = self
            .state
            .puk
            .value
            .clone()
            .ok_or(Sw::ReferenceDataNotUsable)?;
        if self.state.pin.value.is_none() {
            return Err(Sw::ReferenceDataNotUsable);
        }
        if self.state.puk.tries_left == 0 {
            return Err(Sw::AuthenticationBlocked);
        }
        let (given, new) = if cmd.p1 == 0 {
            if cmd.data.len() <= puk.len() {
                return Err(Sw::WrongLength);
            }
            let (g, n) = cmd.data.split_at(puk.len());
            Self::well_formed(PIN_REF, n)?;
            (g.to_vec(), Some(n.to_vec()))
        } else {
            (cmd.data.to_vec(), None)
        };
        self.present(PUK_REF, &given)?;
        let mut next = self.state.clone();
        next.pin.tries_left = profile::PIN_MAX_TRIES;
        if let Some(n) = new {
            next.pin.value = Some(n);
            next.pin_is_transport = false;
        }
        self.commit(next)?;
        Ok(Reply::ok(Vec::new()))
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

fn secret_mut(state: &mut CardState, reference: u8) -> &mut Secret {
    if reference == PUK_REF {
        &mut state.puk
    } else {
        &mut state.pin
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
