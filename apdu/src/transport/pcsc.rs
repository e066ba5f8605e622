//! PC/SC transport: real readers through pcscd, via the `pcsc` crate.
//!
//! pcsc is blocking, so one dedicated service thread owns the [`pcsc::Context`] and every
//! connected [`pcsc::Card`]; [`Pcsc`] and [`PcscTransport`] talk to it over channels. Outside a
//! transaction an APDU goes out on the caller's thread, through the card's handle shared with
//! the service thread: the hop to the service thread and back cost ~30 µs per APDU (72 vs
//! 102 µs for a short APDU through pcscd + vpcd), a third of the whole. Inside a transaction
//! the service thread's `pcsc::Transaction` holds the card, so APDUs go through it. A second
//! thread, started by [`Pcsc::monitor`], runs `SCardGetStatusChange` on its own context (with the
//! PnP notification pseudo-reader) and reports hot-plug events as [`ReaderEvent`]s; dropping the
//! [`ReaderMonitor`] cancels the wait (`Context::cancel`) and joins the thread.
//!
//! ```no_run
//! use apdu::transport::pcsc::Pcsc;
//! use apdu::Transport;
//! # fn main() -> Result<(), apdu::TransportError> {
//! let pcsc = Pcsc::establish()?;
//! for r in pcsc.list_readers()? {
//!     println!("{} card={}", r.name, r.card_present);
//! }
//! let mut card = pcsc.connect("Virtual PCD 00 00")?;
//! let resp = card.transmit_raw(&[0x00, 0xA4, 0x04, 0x00, 0x00])?;
//! # let _ = resp; Ok(()) }
//! ```
//!
//! Error mapping (pcsc-lite -> [`TransportError`]): `NoService`/`ServiceStopped` -> `NoService`;
//! `UnknownReader`/`ReaderUnavailable` -> `NoReader`; `NoSmartcard` -> `NoCard`; `RemovedCard`,
//! and `NotTransacted` once the card is gone -> `CardRemoved`; `ResetCard` -> `CardReset`
//! (call [`PcscTransport::reconnect`]). A pulled card may first answer `Ok` with an empty
//! buffer; that is passed up unchanged and the chokepoint reports it as `ShortResponse`.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use pcsc::{Card, Context, Disposition, Protocols, ReaderState, Scope, ShareMode, State};

use crate::error::TransportError;
use crate::transport::{Capabilities, Transport};

/// One reader as PC/SC reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReaderInfo {
    /// Reader name as pcscd spells it (`Virtual PCD 00 00`).
    pub name: String,
    /// A card is in the reader.
    pub card_present: bool,
    /// ATR of the card, when one is present and pcscd knows it.
    pub atr: Option<Vec<u8>>,
    /// Another application holds the card exclusively.
    pub exclusive: bool,
}

/// A hot-plug event from [`ReaderMonitor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderEvent {
    /// A reader appeared (also sent for every reader present when monitoring starts).
    ReaderAdded {
        /// Reader name.
        reader: String,
    },
    /// A reader disappeared.
    ReaderRemoved {
        /// Reader name.
        reader: String,
    },
    /// A card was inserted (also sent for every card present when monitoring starts).
    CardInserted {
        /// Reader name.
        reader: String,
        /// Answer-to-reset of the new card.
        atr: Vec<u8>,
    },
    /// A card was removed.
    CardRemoved {
        /// Reader name.
        reader: String,
    },
    /// pcscd went away; the monitor has stopped.
    ServiceStopped,
}

/// Maps a pcsc-lite error to the transport error a caller can act on.
pub fn map_error(e: pcsc::Error, reader: &str) -> TransportError {
    use pcsc::Error as E;
    match e {
        E::NoService | E::ServiceStopped => TransportError::NoService,
        E::UnknownReader | E::ReaderUnavailable | E::NoReadersAvailable => {
            TransportError::NoReader(reader.to_string())
        }
        E::NoSmartcard => TransportError::NoCard(reader.to_string()),
        E::RemovedCard => TransportError::CardRemoved,
        E::ResetCard => TransportError::CardReset,
        E::InsufficientBuffer => TransportError::TooLarge(pcsc::MAX_BUFFER_SIZE_EXTENDED),
        other => TransportError::Other(format!("PC/SC error on {reader:?}: {other}")),
    }
}

/// Data field limit assumed for a card whose ATR announces extended length, unless the caller
/// configures the real value with [`PcscTransport::with_capabilities`].
pub const ASSUMED_EXTENDED_MAX: usize = 4096;

/// The card capabilities an ATR announces (ISO/IEC 7816-4 §8.1.1.2.7, compact-TLV tag `7`,
/// third software function byte: `0x80` command chaining, `0x40` extended Lc and Le). An ATR
/// without that object gives the conservative [`Capabilities::default`].
pub fn capabilities_from_atr(atr: &[u8]) -> Capabilities {
    let mut caps = Capabilities::default();
    let Some(third) = historical_bytes(atr).and_then(card_capabilities) else {
        return caps;
    };
    caps.chaining = third & 0x80 != 0;
    if third & 0x40 != 0 {
        caps.extended_length = true;
        caps.max_command_data = ASSUMED_EXTENDED_MAX;
        caps.max_response_data = ASSUMED_EXTENDED_MAX;
    }
    caps
}

/// The historical bytes of an ATR (ISO/IEC 7816-3 §8.2), `None` when the ATR is truncated.
fn historical_bytes(atr: &[u8]) -> Option<&[u8]> {
    let t0 = *atr.get(1)?;
    let k = usize::from(t0 & 0x0F);
    let mut y = t0 >> 4;
    let mut i = 2;
    loop {
        i += usize::from(y & 1) + usize::from(y >> 1 & 1) + usize::from(y >> 2 & 1);
        if y & 8 == 0 {
            break;
        }
        let td = *atr.get(i)?;
        i += 1;
        y = td >> 4;
    }
    atr.get(i..i + k)
}

/// The third byte of the card-capabilities object (compact-TLV `73`) in historical bytes.
fn card_capabilities(hist: &[u8]) -> Option<u8> {
    let body = match hist.split_first()? {
        (0x80, rest) => rest,
        // Category 00: the last three bytes are the status indicator.
        (0x00, rest) => rest.get(..rest.len().checked_sub(3)?)?,
        _ => return None,
    };
    let mut i = 0;
    while let Some(&b) = body.get(i) {
        let (tag, len) = (b >> 4, usize::from(b & 0x0F));
        let value = body.get(i + 1..i + 1 + len)?;
        if tag == 7 && len >= 3 {
            return Some(value[2]);
        }
        i += 1 + len;
    }
    None
}

/// Reply channel of one request to the service thread.
type Reply<T> = Sender<Result<T, TransportError>>;

/// A request to the service thread.
enum Request {
    /// List readers with card presence.
    List(Reply<Vec<ReaderInfo>>),
    /// Connect (shared mode, T=0 or T=1) and return the handle id, ATR and the shared card.
    Connect {
        reader: String,
        reply: Reply<(u64, Vec<u8>, SharedCard)>,
    },
    /// Send one APDU on a connected card.
    Transmit {
        id: u64,
        apdu: Vec<u8>,
        reply: Reply<Vec<u8>>,
    },
    /// Reconnect (after `CardReset`) or warm-reset the card; returns the new ATR.
    Reconnect {
        id: u64,
        reset: bool,
        reply: Reply<Vec<u8>>,
    },
    /// Begin an exclusive transaction on a connected card.
    Begin { id: u64, reply: Reply<()> },
    /// End the transaction begun on this card.
    End { id: u64, reply: Reply<()> },
    /// Disconnect and forget the card (leaving it powered).
    Disconnect { id: u64 },
}

/// What a nested serving loop tells its caller when it returns.
enum Flow {
    /// All senders are gone: stop the thread.
    Shutdown,
    /// The transaction this loop served was ended.
    Ended,
    /// The card of this loop's transaction was disconnected.
    Disconnected,
}

/// A connected card, shared by the service thread (transactions, reconnects, disconnect) and
/// its [`PcscTransport`] (APDUs outside a transaction). pcsc-lite serializes calls on one
/// context itself; the mutex only keeps a reconnect from racing a transmit.
type SharedCard = Arc<Mutex<Card>>;

/// Locks a shared card; a panic while it was locked left nothing half-done on our side.
fn lock(card: &SharedCard) -> MutexGuard<'_, Card> {
    card.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Disconnects a card leaving it as it is (dropping a `pcsc::Card` resets it); when another
/// owner still holds it, it is only dropped here.
fn disconnect(card: SharedCard) {
    if let Ok(card) = Arc::try_unwrap(card) {
        let card = card.into_inner().unwrap_or_else(|p| p.into_inner());
        let _ = card.disconnect(Disposition::LeaveCard);
    }
}

/// State owned by the service thread.
struct Service {
    /// The PC/SC context; only this thread uses it.
    ctx: Context,
    /// Connected cards by handle id, with their reader name (for error messages).
    cards: HashMap<u64, (SharedCard, String)>,
    /// Next handle id.
    next_id: u64,
    /// Receive buffer reused for every transmit (extended length).
    buf: Vec<u8>,
}

impl Service {
    /// Serves requests until every sender is gone or (inside a transaction) the transaction ends.
    /// `active` is the card whose transaction this loop holds: it is not in `self.cards`.
    fn serve(
        &mut self,
        rx: &Receiver<Request>,
        mut active: Option<(u64, &str, pcsc::Transaction<'_>)>,
    ) -> Flow {
        while let Ok(req) = rx.recv() {
            match req {
                Request::List(reply) => {
                    let _ = reply.send(list_readers(&self.ctx));
                }
                Request::Connect { reader, reply } => {
                    let _ = reply.send(self.connect(&reader));
                }
                Request::Transmit { id, apdu, reply } => {
                    let result = match &active {
                        Some((aid, name, tx)) if *aid == id => {
                            transmit(tx, name, &apdu, &mut self.buf)
                        }
                        _ => match self.cards.get(&id) {
                            Some((card, name)) => transmit(&lock(card), name, &apdu, &mut self.buf),
                            None => Err(TransportError::Other("card handle is closed".into())),
                        },
                    };
                    let _ = reply.send(result);
                }
                Request::Reconnect { id, reset, reply } => {
                    let how = if reset {
                        Disposition::ResetCard
                    } else {
                        Disposition::LeaveCard
                    };
                    let result = match &mut active {
                        Some((aid, name, tx)) if *aid == id => tx
                            .reconnect(ShareMode::Shared, Protocols::ANY, how)
                            .map_err(|e| map_error(e, name))
                            .and_then(|()| card_atr(tx, name)),
                        _ => match self.cards.get(&id) {
                            Some((card, name)) => {
                                let mut card = lock(card);
                                card.reconnect(ShareMode::Shared, Protocols::ANY, how)
                                    .map_err(|e| map_error(e, name))
                                    .and_then(|()| card_atr(&card, name))
                            }
                            None => Err(TransportError::Other("card handle is closed".into())),
                        },
                    };
                    let _ = reply.send(result);
                }
                Request::Begin { id, reply } => {
                    let Some((shared, name)) = self.cards.remove(&id) else {
                        let msg = if active.as_ref().is_some_and(|a| a.0 == id) {
                            "a transaction is already active on this card"
                        } else {
                            "card handle is closed"
                        };
                        let _ = reply.send(Err(TransportError::Other(msg.into())));
                        continue;
                    };
                    let flow = {
                        let mut card = lock(&shared);
                        let flow = match card.transaction() {
                            Ok(tx) => {
                                let _ = reply.send(Ok(()));
                                self.serve(rx, Some((id, &name, tx)))
                            }
                            Err(e) => {
                                let _ = reply.send(Err(map_error(e, &name)));
                                Flow::Ended
                            }
                        };
                        flow
                    };
                    match flow {
                        Flow::Shutdown => return Flow::Shutdown,
                        Flow::Ended => {
                            self.cards.insert(id, (shared, name));
                        }
                        Flow::Disconnected => disconnect(shared),
                    }
                }
                Request::End { id, reply } => {
                    if let Some((aid, name, tx)) = active.take() {
                        if aid == id {
                            let result = tx
                                .end(Disposition::LeaveCard)
                                .map_err(|(_, e)| map_error(e, name));
                            let _ = reply.send(result);
                            return Flow::Ended;
                        }
                        active = Some((aid, name, tx));
                    }
                    let _ = reply.send(Err(TransportError::Other(
                        "no transaction is active on this card".into(),
                    )));
                }
                Request::Disconnect { id } => {
                    if active.as_ref().is_some_and(|a| a.0 == id) {
                        return Flow::Disconnected;
                    }
                    if let Some((card, _)) = self.cards.remove(&id) {
                        disconnect(card);
                    }
                }
            }
        }
        Flow::Shutdown
    }

    /// Connects to a reader in shared mode and registers the card.
    fn connect(&mut self, reader: &str) -> Result<(u64, Vec<u8>, SharedCard), TransportError> {
        let cname =
            CString::new(reader).map_err(|_| TransportError::NoReader(reader.to_string()))?;
        let card = self
            .ctx
            .connect(&cname, ShareMode::Shared, Protocols::ANY)
            .map_err(|e| map_error(e, reader))?;
        let atr = card_atr(&card, reader)?;
        let id = self.next_id;
        self.next_id += 1;
        let card = Arc::new(Mutex::new(card));
        self.cards.insert(id, (card.clone(), reader.to_string()));
        Ok((id, atr, card))
    }
}

/// ATR of a connected card.
fn card_atr(card: &Card, reader: &str) -> Result<Vec<u8>, TransportError> {
    card.status2_owned()
        .map(|s| s.atr().to_vec())
        .map_err(|e| map_error(e, reader))
}

/// How long a failed transmit waits for pcscd to notice a pulled card (its reader polling runs
/// every 400 ms or so) before calling it a communication error.
const REMOVAL_CONFIRM: Duration = Duration::from_millis(1200);

/// Sends one APDU. `NotTransacted` (the reader got no answer) means "card gone" once pcscd
/// confirms the card is no longer there; a card still present after [`REMOVAL_CONFIRM`] is a
/// communication error.
fn transmit(
    card: &Card,
    reader: &str,
    apdu: &[u8],
    buf: &mut Vec<u8>,
) -> Result<Vec<u8>, TransportError> {
    if apdu.len() > pcsc::MAX_BUFFER_SIZE_EXTENDED {
        return Err(TransportError::TooLarge(apdu.len()));
    }
    buf.resize(pcsc::MAX_BUFFER_SIZE_EXTENDED, 0);
    match card.transmit(apdu, buf) {
        Ok(resp) => Ok(resp.to_vec()),
        Err(pcsc::Error::NotTransacted) => {
            let deadline = std::time::Instant::now() + REMOVAL_CONFIRM;
            loop {
                match card.status2_owned() {
                    Ok(s) if s.status().contains(pcsc::Status::PRESENT) => {}
                    _ => return Err(TransportError::CardRemoved),
                }
                if std::time::Instant::now() >= deadline {
                    return Err(TransportError::Other(format!(
                        "PC/SC error on {reader:?}: the card did not answer (communication error)"
                    )));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Err(e) => Err(map_error(e, reader)),
    }
}

/// Lists readers and asks, without waiting, whether each has a card.
fn list_readers(ctx: &Context) -> Result<Vec<ReaderInfo>, TransportError> {
    let names = match ctx.list_readers_owned() {
        Ok(names) => names,
        Err(pcsc::Error::NoReadersAvailable) => return Ok(Vec::new()),
        Err(e) => return Err(map_error(e, "")),
    };
    let mut states: Vec<ReaderState> = names
        .into_iter()
        .map(|n| ReaderState::new(n, State::UNAWARE))
        .collect();
    if !states.is_empty() {
        match ctx.get_status_change(Duration::ZERO, &mut states) {
            Ok(()) | Err(pcsc::Error::Timeout) => {}
            Err(e) => return Err(map_error(e, "")),
        }
    }
    Ok(states
        .iter()
        .map(|rs| {
            let present = rs.event_state().contains(State::PRESENT);
            ReaderInfo {
                name: rs.name().to_string_lossy().into_owned(),
                card_present: present,
                atr: (present && !rs.atr().is_empty()).then(|| rs.atr().to_vec()),
                exclusive: rs.event_state().contains(State::EXCLUSIVE),
            }
        })
        .collect())
}

/// The service thread's handle; dropping the last clone stops the thread.
struct Inner {
    /// Requests to the service thread; `None` once dropping.
    tx: Option<Sender<Request>>,
    /// The service thread, joined on drop.
    thread: Option<JoinHandle<()>>,
}

impl Inner {
    /// Sends a request and waits for its answer.
    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Request) -> Result<T, TransportError> {
        let (reply, answer) = bounded(1);
        let tx = self.tx.as_ref().ok_or(TransportError::NoService)?;
        tx.send(make(reply))
            .map_err(|_| TransportError::Other("PC/SC service thread stopped".into()))?;
        answer
            .recv()
            .map_err(|_| TransportError::Other("PC/SC service thread stopped".into()))?
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A connection to the PC/SC service (pcscd), served by one dedicated thread. Cheap to clone.
#[derive(Clone)]
pub struct Pcsc {
    /// Shared with every [`PcscTransport`] made from it, so the thread outlives them.
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Pcsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pcsc")
    }
}

impl Pcsc {
    /// Establishes a PC/SC context on a new service thread. [`TransportError::NoService`] when
    /// pcscd is not running.
    pub fn establish() -> Result<Pcsc, TransportError> {
        let (tx, rx) = unbounded::<Request>();
        let (ready_tx, ready_rx) = bounded::<Result<(), TransportError>>(1);
        let thread = std::thread::Builder::new()
            .name("pcsc".into())
            .spawn(move || {
                let ctx = match Context::establish(Scope::User) {
                    Ok(ctx) => ctx,
                    Err(e) => {
                        let _ = ready_tx.send(Err(map_error(e, "")));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut svc = Service {
                    ctx,
                    cards: HashMap::new(),
                    next_id: 1,
                    buf: Vec::new(),
                };
                svc.serve(&rx, None);
            })
            .map_err(|e| TransportError::Other(format!("cannot start the PC/SC thread: {e}")))?;
        let inner = Inner {
            tx: Some(tx),
            thread: Some(thread),
        };
        ready_rx
            .recv()
            .map_err(|_| TransportError::Other("PC/SC thread died".into()))??;
        Ok(Pcsc {
            inner: Arc::new(inner),
        })
    }

    /// Lists the readers and whether each has a card.
    pub fn list_readers(&self) -> Result<Vec<ReaderInfo>, TransportError> {
        self.inner.call(Request::List)
    }

    /// Connects to the card in `reader` (shared mode, T=0 or T=1).
    pub fn connect(&self, reader: &str) -> Result<PcscTransport, TransportError> {
        let (id, atr, card) = self.inner.call(|reply| Request::Connect {
            reader: reader.to_string(),
            reply,
        })?;
        Ok(PcscTransport {
            inner: Arc::clone(&self.inner),
            id,
            reader: reader.to_string(),
            caps: capabilities_from_atr(&atr),
            atr,
            in_transaction: false,
            card: Some(card),
            buf: Vec::new(),
        })
    }

    /// Starts a hot-plug monitor on its own thread and context.
    pub fn monitor(&self) -> Result<ReaderMonitor, TransportError> {
        ReaderMonitor::start()
    }
}

/// A card connected through PC/SC. Implements [`Transport`].
pub struct PcscTransport {
    /// The service thread that owns the card handle.
    inner: Arc<Inner>,
    /// The card's handle id on the service thread.
    id: u64,
    /// Reader name, for [`Transport::reader_name`] and errors.
    reader: String,
    /// ATR read at connect (or after the last reset).
    atr: Vec<u8>,
    /// What the card can carry (default: conservative, or set by [`Self::with_capabilities`]).
    caps: Capabilities,
    /// A transaction begun by [`Self::begin_transaction`] is open.
    in_transaction: bool,
    /// The card's handle, for APDUs outside a transaction; `None` only while dropping.
    card: Option<SharedCard>,
    /// Receive buffer of those APDUs (extended length), reused.
    buf: Vec<u8>,
}

impl std::fmt::Debug for PcscTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PcscTransport")
            .field("reader", &self.reader)
            .field("atr", &hex::encode_upper(&self.atr))
            .finish()
    }
}

impl PcscTransport {
    /// Declares the card's capabilities, known from configuration (by default they come from
    /// the ATR, see [`capabilities_from_atr`]).
    pub fn with_capabilities(mut self, caps: Capabilities) -> Self {
        self.caps = caps;
        self
    }

    /// Reconnects after [`TransportError::CardReset`] without resetting the card again; the
    /// card's security state is already lost, so sessions must be re-established.
    pub fn reconnect(&mut self) -> Result<(), TransportError> {
        let id = self.id;
        self.atr = self.inner.call(|reply| Request::Reconnect {
            id,
            reset: false,
            reply,
        })?;
        Ok(())
    }

    /// Begins an exclusive PC/SC transaction: other applications wait until it ends.
    pub fn begin_transaction(&mut self) -> Result<(), TransportError> {
        let id = self.id;
        self.inner.call(|reply| Request::Begin { id, reply })?;
        self.in_transaction = true;
        Ok(())
    }

    /// Ends the transaction begun by [`Self::begin_transaction`] (leaving the card as it is).
    pub fn end_transaction(&mut self) -> Result<(), TransportError> {
        let id = self.id;
        self.in_transaction = false;
        self.inner.call(|reply| Request::End { id, reply })
    }

    /// Runs `f` inside an exclusive transaction, ending it whatever `f` returns.
    pub fn transaction<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> Result<R, TransportError> {
        self.begin_transaction()?;
        let out = f(self);
        self.end_transaction()?;
        Ok(out)
    }
}

impl Transport for PcscTransport {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        if let (false, Some(card)) = (self.in_transaction, &self.card) {
            return transmit(&lock(card), &self.reader, apdu, &mut self.buf);
        }
        let id = self.id;
        let apdu = apdu.to_vec();
        self.inner
            .call(|reply| Request::Transmit { id, apdu, reply })
    }

    fn capabilities(&self) -> Capabilities {
        self.caps
    }

    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn reader_name(&self) -> &str {
        &self.reader
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        let id = self.id;
        self.atr = self.inner.call(|reply| Request::Reconnect {
            id,
            reset: true,
            reply,
        })?;
        Ok(())
    }
}

impl Drop for PcscTransport {
    fn drop(&mut self) {
        if self.in_transaction {
            let _ = self.end_transaction();
        }
        // Let go of the card first so the service thread is its only owner and can disconnect
        // it without a reset.
        self.card = None;
        if let Some(tx) = &self.inner.tx {
            let _ = tx.send(Request::Disconnect { id: self.id });
        }
    }
}

/// Hot-plug monitor: a thread blocked in `SCardGetStatusChange`, sending [`ReaderEvent`]s.
/// Dropping it cancels the wait and joins the thread.
pub struct ReaderMonitor {
    /// A clone of the monitor thread's context, used only for `cancel()`.
    ctx: Context,
    /// Set on drop; the thread checks it between waits (a cancel that lands between two waits
    /// is otherwise lost).
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// The events.
    events: Receiver<ReaderEvent>,
    /// The monitor thread.
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for ReaderMonitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReaderMonitor")
    }
}

impl ReaderMonitor {
    /// Establishes a context and starts the monitor thread. The first events describe the
    /// readers and cards already present.
    pub fn start() -> Result<ReaderMonitor, TransportError> {
        let ctx = Context::establish(Scope::User).map_err(|e| map_error(e, ""))?;
        let (tx, events) = unbounded();
        let thread_ctx = ctx.clone();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("pcsc-monitor".into())
            .spawn(move || monitor_loop(&thread_ctx, &tx, &thread_stop))
            .map_err(|e| TransportError::Other(format!("cannot start the PC/SC monitor: {e}")))?;
        Ok(ReaderMonitor {
            ctx,
            stop,
            events,
            thread: Some(thread),
        })
    }

    /// The event channel (a tokio consumer can bridge it with `spawn_blocking`).
    pub fn events(&self) -> &Receiver<ReaderEvent> {
        &self.events
    }
}

impl Drop for ReaderMonitor {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = self.ctx.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The monitor thread (after pcsc-rust's `examples/monitor.rs`): waits for any change on the
/// known readers and the PnP pseudo-reader, then reports what changed.
fn monitor_loop(ctx: &Context, tx: &Sender<ReaderEvent>, stop: &std::sync::atomic::AtomicBool) {
    let pnp = pcsc::PNP_NOTIFICATION();
    let mut states = vec![ReaderState::new(pnp, State::UNAWARE)];
    loop {
        let names = match ctx.list_readers_owned() {
            Ok(names) => names,
            Err(pcsc::Error::NoReadersAvailable) => Vec::new(),
            Err(_) => {
                let _ = tx.send(ReaderEvent::ServiceStopped);
                return;
            }
        };
        // Readers that went away.
        let mut i = 0;
        while i < states.len() {
            let rs = &states[i];
            let gone = rs.event_state().intersects(State::UNKNOWN | State::IGNORE)
                || !names.iter().any(|n| n.as_c_str() == rs.name());
            if rs.name() != pnp && gone {
                let reader = rs.name().to_string_lossy().into_owned();
                if rs.current_state().contains(State::PRESENT) {
                    let _ = tx.send(ReaderEvent::CardRemoved {
                        reader: reader.clone(),
                    });
                }
                let _ = tx.send(ReaderEvent::ReaderRemoved { reader });
                states.swap_remove(i);
            } else {
                i += 1;
            }
        }
        // Readers that arrived.
        for name in names {
            if !states.iter().any(|rs| rs.name() == name.as_c_str()) {
                let reader = name.to_string_lossy().into_owned();
                let _ = tx.send(ReaderEvent::ReaderAdded { reader });
                states.push(ReaderState::new(name, State::UNAWARE));
            }
        }
        for rs in &mut states {
            rs.sync_current_state();
        }
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        // A bounded wait, so a stop request is seen even if its cancel() came too early.
        match ctx.get_status_change(Duration::from_millis(500), &mut states) {
            Ok(()) => {}
            Err(pcsc::Error::Cancelled) => return,
            Err(pcsc::Error::Timeout) => continue,
            // A reader vanished between listing and waiting: the next listing drops it.
            Err(pcsc::Error::UnknownReader) => continue,
            Err(_) => {
                let _ = tx.send(ReaderEvent::ServiceStopped);
                return;
            }
        }
        for rs in &states {
            if rs.name() == pnp || rs.event_state().intersects(State::UNKNOWN | State::IGNORE) {
                continue;
            }
            let was = rs.current_state().contains(State::PRESENT);
            let now = rs.event_state().contains(State::PRESENT);
            let reader = rs.name().to_string_lossy().into_owned();
            if now && !was {
                let _ = tx.send(ReaderEvent::CardInserted {
                    reader,
                    atr: rs.atr().to_vec(),
                });
            } else if was && !now {
                let _ = tx.send(ReaderEvent::CardRemoved { reader });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_come_from_the_atr_historical_bytes() {
        // The simulated card's ATR: T=0/T=1, category 80, 73 C0 21 40 (extended length).
        let atr = hex::decode("3B8B800180 73C02140 4549445349 4D".replace(' ', "")).unwrap();
        let caps = capabilities_from_atr(&atr);
        assert!(caps.extended_length && !caps.chaining);
        assert_eq!(caps.max_command_data, ASSUMED_EXTENDED_MAX);
        let short = hex::decode("3B8B80018073C021004549445349 4D".replace(' ', "")).unwrap();
        assert_eq!(
            capabilities_from_atr(&short),
            Capabilities {
                chaining: false,
                ..Capabilities::default()
            }
        );
        // Chaining only, category 00 with a status indicator.
        let chain = [0x3B, 0x88, 0x00, 0x73, 0x00, 0x00, 0x80, 0x00, 0x90, 0x00];
        let caps = capabilities_from_atr(&chain);
        assert!(caps.chaining && !caps.extended_length);
        // Truncated or without historical bytes: the conservative default, no panic.
        for atr in [
            &[][..],
            &[0x3B],
            &[0x3B, 0x8F, 0x80],
            &[0x3B, 0xF0],
            &[0x3B, 0x00],
        ] {
            assert_eq!(capabilities_from_atr(atr), Capabilities::default());
        }
    }

    #[test]
    fn errors_map_to_actionable_transport_errors() {
        assert_eq!(
            map_error(pcsc::Error::NoService, "r"),
            TransportError::NoService
        );
        assert_eq!(
            map_error(pcsc::Error::ServiceStopped, "r"),
            TransportError::NoService
        );
        assert_eq!(
            map_error(pcsc::Error::UnknownReader, "r"),
            TransportError::NoReader("r".into())
        );
        assert_eq!(
            map_error(pcsc::Error::NoSmartcard, "r"),
            TransportError::NoCard("r".into())
        );
        assert_eq!(
            map_error(pcsc::Error::RemovedCard, "r"),
            TransportError::CardRemoved
        );
        assert_eq!(
            map_error(pcsc::Error::ResetCard, "r"),
            TransportError::CardReset
        );
        assert!(
            matches!(map_error(pcsc::Error::SharingViolation, "r"), TransportError::Other(m) if m.contains("\"r\""))
        );
    }
}
