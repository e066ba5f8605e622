//! Errors of the APDU layer. Every failure is a value a caller can match on; nothing panics on
//! bad input from a card, a file or a user.

use crate::status::StatusWord;

/// What can go wrong talking to a card.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bytes that do not form a valid APDU, TLV, FCP or hex string.
    #[error("malformed data: {0}")]
    Malformed(String),
    /// The reader, the card or the service failed.
    #[error("transport error: {0}")]
    Transport(#[from] TransportError),
    /// The card refused the command.
    #[error("card returned {0}")]
    Status(StatusWord),
    /// Secure messaging failed on the host side (wrong MAC, bad padding, missing object).
    #[error("secure messaging error: {0}")]
    SecureMessaging(String),
    /// The issuer's key store could not give a card key now (token absent, HSM unreachable):
    /// nothing was sent to the card under a wrong key, and the operation can be retried.
    #[error("key store unavailable: {0}")]
    KeyUnavailable(String),
    /// The host refused to do something unsafe (e.g. a request beyond the card's capabilities).
    #[error("{0}")]
    Usage(String),
}

/// Failures below the APDU level: PC/SC, the reader, the card's presence, the simulator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No PC/SC service (pcscd is not running).
    #[error("no PC/SC service: is pcscd running?")]
    NoService,
    /// The named reader does not exist.
    #[error("no such reader: {0}")]
    NoReader(String),
    /// The reader has no card.
    #[error("no card in reader {0}")]
    NoCard(String),
    /// The card was removed (possibly in the middle of a command).
    #[error("card removed")]
    CardRemoved,
    /// The card was reset by another application or the reader; the session is gone.
    #[error("card reset")]
    CardReset,
    /// The card answered fewer than two bytes (no status word): typically a card pulled mid-command.
    #[error("response of {len} bytes has no status word")]
    ShortResponse {
        /// How many bytes came back.
        len: usize,
    },
    /// A response or command larger than the transport can carry.
    #[error("too large for the transport: {0} bytes")]
    TooLarge(usize),
    /// Anything else, with the underlying message.
    #[error("{0}")]
    Other(String),
}
