//! The card layer of idcardd: ISO/IEC 7816-4 APDUs, BER-TLV, status words, one transmit
//! chokepoint, the PC/SC transport and the host-side client of the national ID card. The
//! simulated card is implemented in the `cardsim` crate, on top of this one.
//!
//! Main types:
//! - [`Command`] / [`RawResponse`] / [`Response`]: the APDU codec (cases 1-4, short and extended).
//! - [`StatusWord`]: SW1-SW2 as an enum with data-carrying variants.
//! - [`tlv`]: BER-TLV encode/decode.
//! - [`fcp`]: File Control Parameters (template 62) and the life-cycle status byte.
//! - [`commands`]: the [`commands::Ins`] enum and one constructor per card command.
//! - [`Transport`]: raw bytes to a card; [`transport::pcsc`] implements it (so does the simulated
//!   card's in-process reader, implemented in the `cardsim` crate).
//! - [`transmit`]: the one place every APDU goes through (GET RESPONSE, 6Cxx, chaining, logging).
//! - [`sm`]: AES secure messaging, key diversification and mutual authentication (both sides).
//! - [`card`]: the ID card client; personalization and terminal operations exist only on the
//!   session values a successful mutual authentication returns.
//! - [`layout`]: the card profile in numbers (AID, FIDs, data objects, PIN/PUK references and
//!   limits), what host and card agree on.
#![deny(missing_docs)]

pub mod card;
pub mod command;
pub mod commands;
pub mod error;
pub mod fcp;
pub mod layout;
pub mod response;
pub mod sm;
pub mod status;
pub mod tlv;
pub mod transmit;
pub mod transport;

pub use command::Command;
pub use error::{Error, TransportError};
pub use response::{RawResponse, Response};
pub use status::StatusWord;
pub use transport::{Capabilities, Transport};
