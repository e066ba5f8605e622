//! Bridge from a [`crate::CardHandler`] to Debian's vsmartcard-vpcd driver, so pcscd shows the
//! simulated card in an ordinary reader.
//!
//! vpcd (the reader driver inside pcscd) listens on TCP (35963 for `Virtual PCD 00 00`, 35964 for
//! `00 01`); the virtual card connects to it. Every message in either direction is a 2-byte
//! big-endian length followed by the payload. A 1-byte payload from vpcd is a control code:
//! `00` power off, `01` power on, `02` reset, `04` get ATR (answered with the ATR); any other
//! payload is a command APDU, answered with the response APDU. A connected card is an inserted
//! card; closing the connection pulls it.
//!
//! vpcd writes the length and the APDU separately, so the card side sets `TCP_NODELAY` and
//! re-arms `TCP_QUICKACK` after every read; without that each APDU costs a delayed ACK (~40 ms).
//!
//! ```no_run
//! # use cardsim::{CardHandler, vpcd::{VpcdBridge, VpcdConfig}};
//! # fn demo(card: impl CardHandler + 'static) -> std::io::Result<()> {
//! let bridge = VpcdBridge::spawn(card, VpcdConfig::default())?;
//! // ... pcscd now shows a card in "Virtual PCD 00 00" ...
//! let _card = bridge.stop(); // pulls the card and returns the handler
//! # Ok(()) }
//! ```

use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::SockRef;

use crate::CardHandler;

/// vpcd control code: power off.
pub const CTRL_OFF: u8 = 0x00;
/// vpcd control code: power on.
pub const CTRL_ON: u8 = 0x01;
/// vpcd control code: reset.
pub const CTRL_RESET: u8 = 0x02;
/// vpcd control code: send the ATR.
pub const CTRL_ATR: u8 = 0x04;
/// TCP port of the first vpcd reader (`Virtual PCD 00 00`) in Debian's `/etc/reader.conf.d/vpcd`.
pub const DEFAULT_PORT: u16 = 35963;

/// Where and how the bridge connects.
#[derive(Debug, Clone)]
pub struct VpcdConfig {
    /// Host running pcscd with the vpcd driver.
    pub host: String,
    /// vpcd's TCP port (35963 + reader index).
    pub port: u16,
    /// Wait between connection attempts while vpcd is not listening or after it closed.
    pub reconnect_delay: Duration,
    /// How often a blocked read wakes up to check for shutdown.
    pub poll_interval: Duration,
}

impl Default for VpcdConfig {
    fn default() -> Self {
        VpcdConfig {
            host: "127.0.0.1".into(),
            port: DEFAULT_PORT,
            reconnect_delay: Duration::from_millis(200),
            poll_interval: Duration::from_millis(100),
        }
    }
}

/// Counters the bridge keeps, readable while it runs.
#[derive(Debug, Default)]
pub struct VpcdStats {
    /// Successful connections to vpcd (card insertions).
    pub connections: AtomicU64,
    /// APDUs processed.
    pub apdus: AtomicU64,
}

/// Asks a running bridge to stop; cheap to clone and usable from a signal handler thread.
#[derive(Debug, Clone, Default)]
pub struct StopSignal {
    /// Set once stop is requested.
    flag: Arc<AtomicBool>,
    /// The live connection, shut down on stop so a blocked read or write returns at once.
    stream: Arc<Mutex<Option<TcpStream>>>,
}

impl StopSignal {
    /// A signal not yet raised.
    pub fn new() -> Self {
        StopSignal::default()
    }

    /// The flag itself, e.g. for `signal_hook::flag::register`.
    pub fn flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.flag)
    }

    /// Raises the signal and closes the current connection (vpcd sees the card pulled).
    pub fn stop(&self) {
        self.flag.store(true, Ordering::SeqCst);
        if let Ok(guard) = self.stream.lock() {
            if let Some(s) = guard.as_ref() {
                let _ = s.shutdown(std::net::Shutdown::Both);
            }
        }
    }

    /// True once [`Self::stop`] was called (or the flag was set by a signal handler).
    pub fn is_stopped(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Publishes the live connection (or clears it).
    fn set_stream(&self, s: Option<TcpStream>) {
        if let Ok(mut guard) = self.stream.lock() {
            *guard = s;
        }
    }
}

/// Runs the bridge on the calling thread until `stop` is raised: connects to vpcd, serves
/// messages, reconnects when vpcd closes. Returns `Ok` on a requested stop.
pub fn run<H: CardHandler + ?Sized>(
    card: &mut H,
    config: &VpcdConfig,
    stop: &StopSignal,
    stats: &VpcdStats,
) -> io::Result<()> {
    let addr = (config.host.as_str(), config.port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("cannot resolve {}", config.host),
            )
        })?;
    while !stop.is_stopped() {
        let stream = match TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!("vpcd at {addr} not reachable: {e}");
                sleep_unless_stopped(config.reconnect_delay, stop);
                continue;
            }
        };
        stats.connections.fetch_add(1, Ordering::Relaxed);
        tracing::info!("card inserted: connected to vpcd at {addr}");
        stop.set_stream(stream.try_clone().ok());
        if stop.is_stopped() {
            let _ = stream.shutdown(std::net::Shutdown::Both);
            break;
        }
        match serve_connection(card, stream, config, stop, stats) {
            Ok(()) => tracing::info!("vpcd closed the connection"),
            Err(e) if stop.is_stopped() => tracing::debug!("connection ended on stop: {e}"),
            Err(e) => tracing::warn!("vpcd connection failed: {e}"),
        }
        stop.set_stream(None);
        card.power_off();
        sleep_unless_stopped(config.reconnect_delay, stop);
    }
    Ok(())
}

/// Sleeps in short steps so a stop request is seen quickly.
fn sleep_unless_stopped(total: Duration, stop: &StopSignal) {
    let step = Duration::from_millis(20);
    let mut left = total;
    while !stop.is_stopped() && !left.is_zero() {
        let d = left.min(step);
        std::thread::sleep(d);
        left -= d;
    }
}

/// Serves one vpcd connection until EOF (`Ok`), an I/O error or a stop request.
fn serve_connection<H: CardHandler + ?Sized>(
    card: &mut H,
    mut stream: TcpStream,
    config: &VpcdConfig,
    stop: &StopSignal,
    stats: &VpcdStats,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(config.poll_interval))?;
    let sock = SockRef::from(&stream);
    let _ = sock.set_tcp_quickack(true);
    let mut msg = Vec::with_capacity(1024);
    let mut out = Vec::with_capacity(1024);
    loop {
        let mut len = [0u8; 2];
        if !read_full(&mut stream, &mut len, stop)? {
            return Ok(());
        }
        let n = u16::from_be_bytes(len) as usize;
        msg.resize(n, 0);
        if !read_full(&mut stream, &mut msg, stop)? {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "vpcd closed mid-message",
            ));
        }
        let reply = match handle_message(card, &msg) {
            Some(reply) => reply,
            None => continue,
        };
        stats
            .apdus
            .fetch_add(u64::from(msg.len() > 1), Ordering::Relaxed);
        if stop.is_stopped() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
        }
        let rlen = u16::try_from(reply.len()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "response longer than 65535 bytes",
            )
        })?;
        out.clear();
        out.extend_from_slice(&rlen.to_be_bytes());
        out.extend_from_slice(&reply);
        stream.write_all(&out)?;
    }
}

/// Reads exactly `buf.len()` bytes, riding out read timeouts (used only to poll `stop`).
/// `Ok(false)` on a clean EOF before the first byte.
fn read_full(stream: &mut TcpStream, buf: &mut [u8], stop: &StopSignal) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        if stop.is_stopped() {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
        }
        // vpcd sends the length and the body in two writes and Nagles the second until the
        // first is ACKed: ACK at once, before and after every read (Linux clears QUICKACK).
        let _ = SockRef::from(&*stream).set_tcp_quickack(true);
        let r = stream.read(&mut buf[got..]);
        let _ = SockRef::from(&*stream).set_tcp_quickack(true);
        match r {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "vpcd closed mid-message",
                ))
            }
            Ok(n) => got += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Handles one vpcd message; `None` when it needs no reply (power and reset controls).
pub fn handle_message<H: CardHandler + ?Sized>(card: &mut H, msg: &[u8]) -> Option<Vec<u8>> {
    match msg {
        [CTRL_OFF] => {
            card.power_off();
            None
        }
        [CTRL_ON] => {
            card.power_on();
            None
        }
        [CTRL_RESET] => {
            card.power_off();
            card.power_on();
            None
        }
        [CTRL_ATR] => Some(card.atr()),
        [other] => {
            tracing::warn!("unknown vpcd control code {other:#04x}");
            None
        }
        apdu => Some(card.process_apdu(apdu)),
    }
}

/// A bridge running on its own thread. [`VpcdBridge::stop`] pulls the card and returns it.
pub struct VpcdBridge<H: CardHandler + 'static> {
    /// Stops the thread.
    stop: StopSignal,
    /// Counters.
    stats: Arc<VpcdStats>,
    /// The bridge thread; it hands the card back when it ends.
    thread: Option<JoinHandle<(H, io::Result<()>)>>,
}

impl<H: CardHandler + 'static> std::fmt::Debug for VpcdBridge<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VpcdBridge")
            .field("stats", &self.stats)
            .finish()
    }
}

impl<H: CardHandler + 'static> VpcdBridge<H> {
    /// Starts the bridge thread; it keeps (re)connecting to vpcd until stopped.
    pub fn spawn(card: H, config: VpcdConfig) -> io::Result<Self> {
        let stop = StopSignal::new();
        let stats = Arc::new(VpcdStats::default());
        let (s, st) = (stop.clone(), Arc::clone(&stats));
        let thread = std::thread::Builder::new()
            .name(format!("vpcd-{}", config.port))
            .spawn(move || {
                let mut card = card;
                let r = run(&mut card, &config, &s, &st);
                (card, r)
            })?;
        Ok(VpcdBridge {
            stop,
            stats,
            thread: Some(thread),
        })
    }

    /// Counters of the running bridge.
    pub fn stats(&self) -> &VpcdStats {
        &self.stats
    }

    /// The counters as a shared handle, to watch them from another thread.
    pub fn stats_handle(&self) -> Arc<VpcdStats> {
        Arc::clone(&self.stats)
    }

    /// True while the bridge is connected to vpcd (the card is "inserted").
    pub fn is_connected(&self) -> bool {
        self.stop
            .stream
            .lock()
            .map(|g| g.is_some())
            .unwrap_or(false)
    }

    /// A handle that stops the bridge from another thread (pulls the card mid-command).
    pub fn stop_signal(&self) -> StopSignal {
        self.stop.clone()
    }

    /// Pulls the card (closes the connection), joins the thread and returns the card.
    pub fn stop(mut self) -> io::Result<H> {
        self.stop.stop();
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok((card, r))) => r.map(|()| card),
            Some(Err(_)) => Err(io::Error::other("vpcd bridge thread panicked")),
            None => Err(io::Error::other("vpcd bridge already stopped")),
        }
    }
}

impl<H: CardHandler + 'static> Drop for VpcdBridge<H> {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A card that answers every APDU with its own bytes reversed plus 9000, and counts power.
    #[derive(Default)]
    struct EchoCard {
        powered: u32,
    }

    impl CardHandler for EchoCard {
        fn atr(&self) -> Vec<u8> {
            vec![0x3B, 0x80, 0x80, 0x01, 0x01]
        }
        fn power_on(&mut self) {
            self.powered += 1;
        }
        fn power_off(&mut self) {}
        fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
            let mut r: Vec<u8> = apdu.iter().rev().copied().collect();
            r.extend_from_slice(&[0x90, 0x00]);
            r
        }
    }

    fn send(s: &mut TcpStream, payload: &[u8]) {
        s.write_all(&(payload.len() as u16).to_be_bytes()).unwrap();
        s.write_all(payload).unwrap();
    }

    fn recv(s: &mut TcpStream) -> Vec<u8> {
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut buf = vec![0; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).unwrap();
        buf
    }

    #[test]
    fn control_codes_and_apdus() {
        let mut card = EchoCard::default();
        assert_eq!(handle_message(&mut card, &[CTRL_ON]), None);
        assert_eq!(handle_message(&mut card, &[CTRL_RESET]), None);
        assert_eq!(card.powered, 2);
        assert_eq!(handle_message(&mut card, &[CTRL_ATR]), Some(card.atr()));
        assert_eq!(handle_message(&mut card, &[CTRL_OFF]), None);
        assert_eq!(handle_message(&mut card, &[0x09]), None);
        assert_eq!(
            handle_message(&mut card, &[1, 2, 3, 4]),
            Some(vec![4, 3, 2, 1, 0x90, 0x00])
        );
    }

    /// A fake vpcd: the bridge connects, is served, reconnects after the fake closes, and
    /// stops cleanly when asked.
    #[test]
    fn speaks_the_wire_protocol_and_reconnects() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let config = VpcdConfig {
            port,
            reconnect_delay: Duration::from_millis(10),
            ..VpcdConfig::default()
        };
        let bridge = VpcdBridge::spawn(EchoCard::default(), config).unwrap();
        for round in 0..2u8 {
            let (mut s, _) = listener.accept().unwrap();
            send(&mut s, &[CTRL_ON]);
            send(&mut s, &[CTRL_ATR]);
            assert_eq!(recv(&mut s), EchoCard::default().atr());
            // Length and body in separate writes, as Debian's vpcd does.
            s.write_all(&[0, 5]).unwrap();
            s.write_all(&[round, 0xA4, 0x04, 0x00, 0x00]).unwrap();
            assert_eq!(
                recv(&mut s),
                vec![0x00, 0x00, 0x04, 0xA4, round, 0x90, 0x00]
            );
            let big = vec![0x5A; 3000];
            send(&mut s, &big);
            assert_eq!(recv(&mut s).len(), 3002);
        }
        assert!(bridge.stats().connections.load(Ordering::Relaxed) >= 2);
        assert_eq!(bridge.stats().apdus.load(Ordering::Relaxed), 4);
        let card = bridge.stop().unwrap();
        assert_eq!(card.powered, 2);
    }

    #[test]
    fn stop_while_vpcd_is_absent_returns_promptly() {
        // Bind then drop to get a port nobody listens on.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = VpcdConfig {
            port,
            ..VpcdConfig::default()
        };
        let bridge = VpcdBridge::spawn(EchoCard::default(), config).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(!bridge.is_connected());
        let started = std::time::Instant::now();
        bridge.stop().unwrap();
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
