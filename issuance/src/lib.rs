//! The issuance core of idcardd: every rule of how a national ID card is made and handed over,
//! apart from the socket, the command line and the plots that drive it.
//!
//! A card's way through this crate, in the order it happens:
//! - [`applicant`]: the applicant record as registration wrote it; [`applicant::qc`] checks
//!   it against its card [`profile`] (identity fields, then biometrics) and lists every
//!   problem with a field path.
//! - [`profile`]: what a kind of card carries (data groups, fingers, validity, PIN policy), as
//!   TOML data: [`profile::ProfileSet`].
//! - [`lds`]: the ICAO 9303 data groups (DG1 MRZ, DG2 face, DG3 fingers, DG11/DG12 details)
//!   and EF.COM; [`pki`]: the Document Signer, EF.SOD and passive authentication.
//! - [`personalize`]: one card written from a [`personalize::Plan`] under mutual
//!   authentication; [`batch`]: many records over many readers, each a state machine in the
//!   [`journal`], resumable after a crash; [`batch::BatchManager`] is a station's line.
//! - [`delivery`]: at the office, the holder's live finger against the chip, then activation;
//!   lost cards terminated, PINs unblocked. Workflows take a [`delivery::Desk`]: the narrow
//!   set of things they touch.
//! - [`db`]: the one way the stores reach their database: the embedded SQLite file of one
//!   station, or the PostgreSQL server a line of stations shares.
//! - [`audit`]: the HMAC-chained, tamper-evident trail every step writes to.
//! - [`reader_pool::ReaderPool`]: the configured readers, one operation at a time each;
//!   [`readers`] opens one by name (`sim:N` is a [`cardsim`] card, anything else PC/SC).
//! - [`events::Events`]: what happened, for whoever listens (the daemon's PUB socket).
//!
//! Every failure a caller can act on is an [`Error`] with an [`ErrorKind`]; the daemon maps
//! kinds to its stable API codes in one place. Nothing here knows JSON-RPC, ZeroMQ or the CLI.
//!
//! ```
//! use issuance::applicant::ids::NationalCode;
//! use issuance::profile::ProfileSet;
//!
//! let profiles = ProfileSet::builtin().unwrap();
//! assert!(profiles.get("national-id").is_some());
//! assert!(NationalCode::parse("0499370899").is_ok());
//! ```
#![deny(missing_docs)]

pub mod applicant;
pub mod audit;
pub mod batch;
pub mod db;
pub mod delivery;
mod error;
pub mod events;
pub mod finger;
pub mod journal;
pub mod lds;
pub mod personalize;
pub mod pki;
pub mod profile;
pub mod reader_pool;
pub mod readers;
pub mod scan;
pub mod sim_watch;
pub mod store;

pub use error::{Error, ErrorKind, Result};
