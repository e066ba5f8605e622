//! The reader side of the vpcd protocol without pcscd: a [`Transport`] that listens where vpcd
//! would and carries APDUs to the card that connects (a [`crate::vpcd::VpcdBridge`]).
//!
//! It is the bare socket transport of the benchmarks: the same card, on the same bridge thread,
//! over the same wire protocol (2-byte length, payload) as through pcscd + vpcd, minus pcscd
//! (its client library, its socket and its reader thread). Comparing the two tells what pcscd
//! itself adds per APDU; comparing with [`crate::SimTransport`] tells what the socket and the
//! second thread add.
//!
//! ```no_run
//! # use cardsim::{SimCard, SimConfig, vpcd::{VpcdBridge, VpcdConfig}};
//! # use cardsim::vpcd_reader::VpcdListener;
//! # use apdu::card::IdCard;
//! # fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = VpcdListener::bind_loopback()?;
//! let card = SimCard::create(None, SimConfig::default())?;
//! let config = VpcdConfig { port: listener.port(), ..VpcdConfig::default() };
//! let bridge = VpcdBridge::spawn(card, config)?;
//! let mut id = IdCard::new(listener.accept(std::time::Duration::from_secs(5))?);
//! println!("{:02X?}", id.serial()?);
//! # drop(id); bridge.stop()?; Ok(()) }
//! ```

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use apdu::error::TransportError;
use apdu::transport::pcsc::capabilities_from_atr;
use apdu::transport::{Capabilities, Transport};

use crate::vpcd::{CTRL_ATR, CTRL_ON, CTRL_RESET};

/// Name this transport reports as its reader.
pub const READER_NAME: &str = "vpcd socket (no pcscd)";

/// A loopback port a simulated card connects to, as it would to vpcd.
#[derive(Debug)]
pub struct VpcdListener {
    listener: TcpListener,
}

impl VpcdListener {
    /// Listens on 127.0.0.1, on a port the system picks.
    pub fn bind_loopback() -> io::Result<VpcdListener> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        listener.set_nonblocking(true)?;
        Ok(VpcdListener { listener })
    }

    /// The port to give the card's [`crate::vpcd::VpcdConfig`].
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map_or(0, |a| a.port())
    }

    /// Waits up to `timeout` for a card to connect, powers it on and reads its ATR, as vpcd
    /// does when pcscd sees a card inserted.
    pub fn accept(&self, timeout: Duration) -> Result<VpcdReader, TransportError> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match self.listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(TransportError::NoCard(READER_NAME.into()));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(e) => return Err(io_error(e)),
            }
        };
        let setup = |stream: &TcpStream| -> io::Result<()> {
            stream.set_nonblocking(false)?;
            stream.set_nodelay(true)?;
            stream.set_read_timeout(Some(READ_TIMEOUT))
        };
        setup(&stream).map_err(io_error)?;
        let mut reader = VpcdReader {
            stream,
            atr: Vec::new(),
        };
        reader.send(&[CTRL_ON]).map_err(io_error)?;
        reader.send(&[CTRL_ATR]).map_err(io_error)?;
        reader.atr = reader.receive().map_err(io_error)?;
        Ok(reader)
    }
}

/// How long a command may take before the card counts as gone (a simulated card answers in
/// milliseconds; its state file's fsync is the slowest part).
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A connected simulated card, spoken to over the vpcd wire protocol.
#[derive(Debug)]
pub struct VpcdReader {
    stream: TcpStream,
    atr: Vec<u8>,
}

impl VpcdReader {
    /// Sends one message: length and payload in a single write (unlike vpcd, which makes two).
    fn send(&mut self, payload: &[u8]) -> io::Result<()> {
        let len = u16::try_from(payload.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "message over 65535 bytes"))?;
        let mut msg = Vec::with_capacity(2 + payload.len());
        msg.extend_from_slice(&len.to_be_bytes());
        msg.extend_from_slice(payload);
        self.stream.write_all(&msg)
    }

    /// Receives one message.
    fn receive(&mut self) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 2];
        self.stream.read_exact(&mut len)?;
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.stream.read_exact(&mut body)?;
        Ok(body)
    }
}

/// A closed or reset connection is a pulled card; a timeout is a card that stopped answering.
fn io_error(e: io::Error) -> TransportError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof
        | io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe => TransportError::CardRemoved,
        _ => TransportError::Other(format!("vpcd socket: {e}")),
    }
}

impl Transport for VpcdReader {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        // A 1-byte message would be read as a control code.
        if apdu.len() < 4 {
            return Err(TransportError::Other(format!(
                "an APDU of {} bytes has no header",
                apdu.len()
            )));
        }
        if apdu.len() > usize::from(u16::MAX) {
            return Err(TransportError::TooLarge(apdu.len()));
        }
        self.send(apdu).map_err(io_error)?;
        self.receive().map_err(io_error)
    }

    /// From the ATR, as for a card behind pcscd, so both carry the same APDUs.
    fn capabilities(&self) -> Capabilities {
        capabilities_from_atr(&self.atr)
    }

    fn atr(&self) -> Vec<u8> {
        self.atr.clone()
    }

    fn reader_name(&self) -> &str {
        READER_NAME
    }

    fn reset(&mut self) -> Result<(), TransportError> {
        self.send(&[CTRL_RESET]).map_err(io_error)?;
        self.send(&[CTRL_ATR]).map_err(io_error)?;
        self.atr = self.receive().map_err(io_error)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vpcd::{VpcdBridge, VpcdConfig};
    use crate::{SimCard, SimConfig, SimTransport};
    use apdu::card::IdCard;

    fn connected(card: SimCard) -> (IdCard<VpcdReader>, VpcdBridge<SimCard>) {
        let listener = VpcdListener::bind_loopback().unwrap();
        let config = VpcdConfig {
            port: listener.port(),
            ..VpcdConfig::default()
        };
        let bridge = VpcdBridge::spawn(card, config).unwrap();
        let reader = listener.accept(Duration::from_secs(10)).unwrap();
        (IdCard::new(reader), bridge)
    }

    fn seeded(seed: u64) -> SimCard {
        let config = SimConfig {
            seed: Some(seed),
            ..SimConfig::default()
        };
        SimCard::create(None, config).unwrap()
    }

    #[test]
    fn carries_a_session_like_the_in_process_transport() {
        let (mut over_socket, bridge) = connected(seeded(5));
        let mut in_process = IdCard::new(SimTransport::new(seeded(5)));
        assert_eq!(
            over_socket.channel().transport().atr(),
            in_process.channel().transport().atr()
        );
        assert_eq!(
            over_socket.channel().capabilities(),
            in_process.channel().capabilities()
        );
        let data: Vec<u8> = (0..9000).map(|i| (i % 253) as u8).collect();
        for card in [&mut over_socket as &mut dyn Personalize, &mut in_process] {
            card.write_and_read(&data);
        }
        assert_eq!(
            over_socket.channel().apdu_count(),
            in_process.channel().apdu_count()
        );
        drop(over_socket);
        let card = bridge.stop().unwrap();
        assert_eq!(card.app_file(0x0102).as_deref(), Some(&data[..]));
    }

    /// One personalization step on either transport.
    trait Personalize {
        fn write_and_read(&mut self, data: &[u8]);
    }

    impl<T: Transport> Personalize for IdCard<T> {
        fn write_and_read(&mut self, data: &[u8]) {
            self.open_application().unwrap();
            let mut perso = self
                .authenticate_perso(&crate::fixtures::TestMasters)
                .unwrap();
            perso.create_and_write(0x0102, Some(2), data).unwrap();
            assert_eq!(perso.read_file_sfi(2, data.len()).unwrap(), data);
        }
    }

    #[test]
    fn a_pulled_card_is_a_removed_card() {
        let (mut card, bridge) = connected(seeded(6));
        card.serial().unwrap();
        bridge.stop().unwrap();
        let e = card.serial().unwrap_err();
        assert!(
            matches!(e, apdu::Error::Transport(TransportError::CardRemoved)),
            "{e:?}"
        );
    }

    #[test]
    fn no_card_within_the_timeout_is_no_card() {
        let listener = VpcdListener::bind_loopback().unwrap();
        let e = listener.accept(Duration::from_millis(30)).unwrap_err();
        assert!(matches!(e, TransportError::NoCard(_)), "{e:?}");
    }

    #[test]
    fn apdus_without_a_header_are_refused_before_the_wire() {
        let (mut card, bridge) = connected(seeded(7));
        let transport = card.channel().transport_mut();
        assert!(transport.transmit_raw(&[0x00]).is_err());
        assert_eq!(
            transport
                .transmit_raw(&[0x00, 0xCA, 0x01, 0x01, 0x08])
                .unwrap()
                .len(),
            10
        );
        drop(card);
        bridge.stop().unwrap();
    }
}
