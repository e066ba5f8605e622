//! The transport trait: how raw APDU bytes reach a card.
//!
//! Implementations: [`pcsc`] (real readers through pcscd) and the in-process simulated card
//! (`cardsim::SimTransport`, in the `cardsim` crate). Everything above this trait (the
//! [`crate::transmit`] chokepoint, card workflows) is tested against both.

pub mod pcsc;

use crate::error::TransportError;

/// What the card (and reader) can carry, so the chokepoint can split large reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// The card accepts extended-length APDUs (ISO/IEC 7816-4 §5.1).
    pub extended_length: bool,
    /// The card accepts command chaining (CLA bit 0x10).
    pub chaining: bool,
    /// Largest command data field (Nc) the card takes in one APDU.
    pub max_command_data: usize,
    /// Largest response data field (Ne) the card returns in one APDU.
    pub max_response_data: usize,
}

impl Default for Capabilities {
    /// A conservative card: short APDUs only, chaining allowed.
    fn default() -> Self {
        Capabilities {
            extended_length: false,
            chaining: true,
            max_command_data: 255,
            max_response_data: 256,
        }
    }
}

/// A channel to one card. `transmit_raw` sends one command APDU and returns the raw response
/// bytes (data + SW1 SW2); it does no GET RESPONSE, retries or logging: that is the job of the
/// [`crate::transmit`] chokepoint.
pub trait Transport: Send {
    /// Sends one APDU and returns the raw response bytes.
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError>;

    /// The card's capabilities (from its ATR / EF.ATR or known configuration).
    fn capabilities(&self) -> Capabilities {
        Capabilities::default()
    }

    /// Answer-to-reset of the card currently connected.
    fn atr(&self) -> Vec<u8>;

    /// Name of the reader this transport talks through (`sim:0`, `Virtual PCD 00 00`, ...).
    fn reader_name(&self) -> &str;

    /// Resets the card (warm reset); all security state on the card is lost.
    fn reset(&mut self) -> Result<(), TransportError>;
}

impl<T: Transport + ?Sized> Transport for Box<T> {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        (**self).transmit_raw(apdu)
    }
    fn capabilities(&self) -> Capabilities {
        (**self).capabilities()
    }
    fn atr(&self) -> Vec<u8> {
        (**self).atr()
    }
    fn reader_name(&self) -> &str {
        (**self).reader_name()
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        (**self).reset()
    }
}
