//! End-to-end test harness: a real pcscd with the vsmartcard-vpcd driver, simulated cards
//! behind it (in-process bridges or real `idcardd sim vpcd` processes), and the `idcardd`
//! binary.
//!
//! - [`Pcscd::start`] takes a global lock (pcscd and the vpcd ports are machine-wide), starts
//!   `pcscd -f` unless one is already running, and waits until PC/SC lists the vpcd readers.
//!   Dropping it stops only the pcscd it started (also when the test panics).
//! - [`CardInReader`] runs a [`CardHandler`] behind vpcd on a thread of the test process;
//!   [`SimProcess`] runs `idcardd sim vpcd` as a child process.
//! - [`idcardd`] finds (building it once if needed) the `idcardd` binary of this target dir.
//!
//! Every helper panics with a message saying what is missing: these are tests.
#![deny(missing_docs)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use apdu::transport::pcsc::Pcsc;
use apdu::TransportError;
use cardsim::vpcd::{VpcdBridge, VpcdConfig};
use cardsim::CardHandler;

/// First vpcd reader (TCP port 35963).
pub const READER0: &str = "Virtual PCD 00 00";
/// Second vpcd reader (TCP port 35964).
pub const READER1: &str = "Virtual PCD 00 01";
/// vpcd's TCP port for [`READER0`].
pub const PORT0: u16 = 35963;
/// vpcd's TCP port for [`READER1`].
pub const PORT1: u16 = 35964;

/// Serializes everything that uses pcscd or the vpcd ports within one test process.
static PCSC_LOCK: Mutex<()> = Mutex::new(());

/// Takes the machine-wide PC/SC lock (a poisoned lock from a failed test is still usable).
pub fn pcsc_lock() -> MutexGuard<'static, ()> {
    PCSC_LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// The pcscd binary: `$PATH`, then `/usr/sbin/pcscd`.
pub fn pcscd_binary() -> PathBuf {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join("pcscd");
            if p.is_file() {
                return p;
            }
        }
    }
    let p = PathBuf::from("/usr/sbin/pcscd");
    assert!(p.is_file(), "pcscd not found on PATH or in /usr/sbin: run scripts/setup.sh (installs pcscd and vsmartcard-vpcd)");
    p
}

/// A running pcscd with the vpcd readers listed, held exclusively by one test.
pub struct Pcscd {
    /// The pcscd this harness started (`None` when one was already running).
    child: Option<Child>,
    /// pcscd's log, kept to explain failures.
    log: PathBuf,
    /// A PC/SC connection for the test.
    pub pcsc: Pcsc,
    /// Scratch directory (pcscd log, card state files); removed on drop.
    pub dir: tempfile::TempDir,
    /// Held for the whole test; dropped last.
    _lock: MutexGuard<'static, ()>,
}

impl Pcscd {
    /// Starts pcscd (unless running) and waits until both vpcd readers are listed.
    pub fn start() -> Pcscd {
        let lock = pcsc_lock();
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("pcscd.log");
        let child = match Pcsc::establish() {
            Ok(_) => None,
            Err(TransportError::NoService) => {
                let out = std::fs::File::create(&log).expect("pcscd log file");
                let err = out.try_clone().expect("pcscd log file");
                let child = Command::new(pcscd_binary())
                    .arg("-f")
                    .stdin(Stdio::null())
                    .stdout(out)
                    .stderr(err)
                    .spawn()
                    .expect("cannot start pcscd");
                Some(child)
            }
            Err(e) => panic!("PC/SC: {e}"),
        };
        let mut me = Pcscd {
            child,
            log,
            pcsc: match wait_for_service() {
                Ok(p) => p,
                Err(e) => panic!("pcscd did not come up: {e}"),
            },
            dir,
            _lock: lock,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let names: Vec<String> = me
                .pcsc
                .list_readers()
                .map(|r| r.into_iter().map(|r| r.name).collect())
                .unwrap_or_default();
            if names.iter().any(|n| n == READER0) && names.iter().any(|n| n == READER1) {
                break;
            }
            if Instant::now() > deadline {
                panic!("pcscd lists {names:?}, not the vpcd readers (is vsmartcard-vpcd installed?)\n{}", me.log_text());
            }
            std::thread::sleep(Duration::from_millis(50));
            // A context made before the driver loaded may not see new readers: renew it.
            if let Ok(p) = Pcsc::establish() {
                me.pcsc = p;
            }
        }
        me
    }

    /// True when this harness started the pcscd (so it will stop it).
    pub fn started_here(&self) -> bool {
        self.child.is_some()
    }

    /// pcscd's log so far (empty when pcscd was already running).
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until `reader` shows a card (`present`) or not; false on timeout.
    pub fn wait_card(&self, reader: &str, present: bool, timeout: Duration) -> bool {
        wait_card(&self.pcsc, reader, present, timeout)
    }
}

impl Drop for Pcscd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            terminate(&mut child, Duration::from_secs(5));
        }
    }
}

/// Polls until a PC/SC context can be established.
fn wait_for_service() -> Result<Pcsc, TransportError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match Pcsc::establish() {
            Ok(p) => return Ok(p),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// Waits until `reader` shows a card (`present`) or not; false on timeout.
pub fn wait_card(pcsc: &Pcsc, reader: &str, present: bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let now = pcsc
            .list_readers()
            .ok()
            .and_then(|rs| rs.into_iter().find(|r| r.name == reader))
            .is_some_and(|r| r.card_present);
        if now == present {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends SIGTERM, waits up to `grace`, then SIGKILL. Returns the exit status if it exited.
pub fn terminate(child: &mut Child, grace: Duration) -> Option<std::process::ExitStatus> {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A card handler served behind vpcd by a thread of the test process.
pub struct CardInReader<H: CardHandler + 'static> {
    /// The bridge; `None` once pulled.
    bridge: Option<VpcdBridge<H>>,
}

impl<H: CardHandler + 'static> CardInReader<H> {
    /// Inserts `card` into the vpcd reader on `port` and waits until pcscd sees it.
    pub fn insert(pcscd: &Pcscd, card: H, port: u16) -> Self {
        let reader = if port == PORT0 { READER0 } else { READER1 };
        let config = VpcdConfig {
            port,
            reconnect_delay: Duration::from_millis(20),
            ..VpcdConfig::default()
        };
        let bridge = VpcdBridge::spawn(card, config).expect("start the vpcd bridge");
        assert!(
            pcscd.wait_card(reader, true, Duration::from_secs(10)),
            "pcscd never saw the card in {reader}"
        );
        CardInReader {
            bridge: Some(bridge),
        }
    }

    /// A handle that pulls the card from another thread.
    pub fn stop_signal(&self) -> cardsim::vpcd::StopSignal {
        self.bridge
            .as_ref()
            .map(|b| b.stop_signal())
            .unwrap_or_default()
    }

    /// The bridge's counters (connections, APDUs), shared with its thread.
    pub fn stats(&self) -> std::sync::Arc<cardsim::vpcd::VpcdStats> {
        self.bridge
            .as_ref()
            .map(|b| b.stats_handle())
            .unwrap_or_default()
    }

    /// Pulls the card and returns its handler.
    pub fn pull(mut self) -> H {
        let bridge = self.bridge.take().expect("card already pulled");
        bridge.stop().expect("bridge stopped cleanly")
    }
}

/// The `idcardd` binary of this build: target/<profile>/idcardd next to the test's `deps/`,
/// brought up to date once per test process with `cargo build -p idcardd` (a no-op when it is
/// fresh). `IDCARDD_BIN` overrides it (no build).
pub fn idcardd() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("IDCARDD_BIN") {
            return PathBuf::from(p);
        }
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable in target/<profile>/deps")
            .to_path_buf();
        let bin = profile_dir.join("idcardd");
        let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
        let mut cmd = Command::new(env!("CARGO"));
        cmd.args(["build", "--quiet", "-p", "idcardd", "--bin", "idcardd"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .env("CARGO_TARGET_DIR", &target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build -p idcardd");
        assert!(
            status.success() && bin.is_file(),
            "cannot build {}: run `cargo build -p idcardd` (or set IDCARDD_BIN)",
            bin.display()
        );
        bin
    })
    .clone()
}

/// Runs `idcardd ARGS...` to completion, returning (exit code, stdout, stderr).
pub fn run_idcardd(args: &[&str], envs: &[(&str, &str)]) -> (i32, String, String) {
    let out = test_support::process::run_with_env(idcardd(), args, envs);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A real `idcardd sim vpcd` process: the simulated card behind a vpcd reader.
pub struct SimProcess {
    /// The child; `None` once stopped.
    child: Option<Child>,
}

impl SimProcess {
    /// Starts `idcardd sim vpcd --port PORT --state STATE` and waits until pcscd sees the card.
    pub fn start(pcscd: &Pcscd, state: &Path, port: u16) -> SimProcess {
        let reader = if port == PORT0 { READER0 } else { READER1 };
        let child = Command::new(idcardd())
            .args(["sim", "vpcd", "--port", &port.to_string(), "--state"])
            .arg(state)
            .stdin(Stdio::null())
            .spawn()
            .expect("start idcardd sim vpcd");
        let mut me = SimProcess { child: Some(child) };
        if !pcscd.wait_card(reader, true, Duration::from_secs(15)) {
            let status = me.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            panic!("pcscd never saw the idcardd sim card in {reader} (process status {status:?})");
        }
        me
    }

    /// Stops the process with SIGTERM and returns its exit status (None if it had to be killed).
    pub fn stop(mut self) -> Option<std::process::ExitStatus> {
        self.child
            .take()
            .and_then(|mut c| terminate(&mut c, Duration::from_secs(5)))
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c, Duration::from_secs(5));
        }
    }
}

/// A minimal card for transport tests: answers `80 10 00 00 Le` with Le bytes of `0xA5`,
/// `80 12 00 00 Lc data` by echoing the data, `80 14` by blocking until released (to pull the
/// card mid-command), and anything else with 6D00.
pub struct LoopbackCard {
    /// Gate for `80 14`: the test sends on it to let the command finish.
    pub gate: Option<std::sync::mpsc::Receiver<()>>,
    /// Told when an `80 14` command has started (so the test can pull the card during it).
    pub started: Option<std::sync::mpsc::Sender<()>>,
    /// Power-on count.
    pub power_ons: u32,
}

impl LoopbackCard {
    /// A loopback card with no gate.
    pub fn new() -> Self {
        LoopbackCard {
            gate: None,
            started: None,
            power_ons: 0,
        }
    }

    /// The ATR this card sends.
    pub fn atr_bytes(&self) -> Vec<u8> {
        vec![0x3B, 0x80, 0x80, 0x01, 0x01]
    }
}

impl Default for LoopbackCard {
    fn default() -> Self {
        Self::new()
    }
}

impl CardHandler for LoopbackCard {
    fn atr(&self) -> Vec<u8> {
        self.atr_bytes()
    }
    fn power_on(&mut self) {
        self.power_ons += 1;
    }
    fn power_off(&mut self) {}
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        let Ok(cmd) = apdu::Command::parse(apdu) else {
            return vec![0x67, 0x00];
        };
        let mut out = match (cmd.cla, cmd.ins) {
            (0x80, 0x10) => vec![0xA5; cmd.ne.unwrap_or(0)],
            (0x80, 0x12) => cmd.data.to_vec(),
            (0x80, 0x14) => {
                if let Some(s) = &self.started {
                    let _ = s.send(());
                }
                if let Some(g) = &self.gate {
                    let _ = g.recv_timeout(Duration::from_secs(10));
                }
                Vec::new()
            }
            _ => return vec![0x6D, 0x00],
        };
        out.extend_from_slice(&[0x90, 0x00]);
        out
    }
}
