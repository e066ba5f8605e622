//! Personalization of one card: the LDS and its signed EF.SOD written under the
//! personalization session, read back, transport PIN and PUK set, the card left deactivated.
//!
//! - [`Plan`] ([`plan`]): the files one card receives (EF.COM, the profile's data groups,
//!   EF.SOD), built from a [`crate::applicant::ValidatedApplicant`], its
//!   [`crate::profile::Profile`] and the [`crate::pki::DocumentSigner`], before a card is
//!   touched. [`Issue`] carries what is decided per card (document number, issue date).
//! - [`personalize`]: the card workflow. It first finds what the card is:
//!   - fresh (LCS `01`): written;
//!   - incomplete (LCS `03`: a card torn or killed mid-personalization): its EFs are deleted
//!     and it is written again from scratch;
//!   - personalized (LCS `04`): when its EF.SOD is this plan's (a crash after the card was
//!     finished but before the journal said so) the outcome is [`Found::AlreadyDone`];
//!     otherwise [`PersoError::AlreadyPersonalized`] and nothing is touched;
//!   - activated or terminated: [`PersoError::AlreadyPersonalized`] / [`PersoError::Terminated`].
//! - [`PersoHooks`]: the caller learns the card serial before anything is written (the batch
//!   journals it) and the fresh secrets before they are set (the PIN mailer records them).
//! - [`secrets`]: per-card random transport PIN and PUK ([`CardSecrets`]) and the PIN mailer.
//!
//! APDUs of a fresh card with the five data groups of the national profile (7 files with
//! EF.COM and EF.SOD): SELECT of the application returning its FCP (the life cycle comes in
//! it, and authentication needs no SELECT of its own), GET DATA serial, GET CHALLENGE and
//! MUTUAL AUTHENTICATE, one CREATE FILE and one UPDATE BINARY per file (CREATE leaves the file
//! selected; the card takes 4 KiB per command), one READ BINARY by short EF identifier per
//! file for the read-back, two CHANGE REFERENCE DATA and one DEACTIVATE FILE naming the
//! application: 28.
//!
//! ```no_run
//! use apdu::card::IdCard;
//! use cardsim::{SimCard, SimConfig, SimTransport};
//! use issuance::personalize::{personalize, NoHooks, Plan};
//! # fn demo(plan: &Plan, keys: &keystore::KeyStore) -> Result<(), issuance::personalize::PersoError> {
//! // The card keys come from the issuer's key store (the masters stay in its token).
//! let mut card = IdCard::new(SimTransport::new(SimCard::create(None, SimConfig::default()).unwrap()));
//! let outcome = personalize(&mut card, plan, keys, &mut NoHooks)?;
//! println!("{} in {} APDUs", outcome.serial_hex(), outcome.apdus);
//! # Ok(()) }
//! ```

use apdu::card::IdCard;
use apdu::fcp::LifeCycle;
use apdu::sm::CardKeys;
use apdu::Transport;

pub mod plan;
pub mod secrets;

pub use plan::{Holder, Issue, Plan, PlanFile};
pub use secrets::{CardSecrets, PinMailer};

/// Why a personalization did not finish.
#[derive(Debug, thiserror::Error)]
pub enum PersoError {
    /// The card or the reader failed (removed, unexpected status word, secure messaging).
    #[error("card: {0}")]
    Card(#[from] apdu::Error),
    /// The card was personalized already (by another record, or delivered): nothing was
    /// overwritten.
    #[error("card {serial} is already personalized (life cycle {state}); it was not overwritten")]
    AlreadyPersonalized {
        /// Card serial, hex.
        serial: String,
        /// Its life-cycle state.
        state: String,
    },
    /// The card is terminated.
    #[error("card {serial} is terminated")]
    Terminated {
        /// Card serial, hex.
        serial: String,
    },
    /// What was read back differs from what was written.
    #[error("read-back of EF {fid:04X} differs from what was written")]
    ReadBack {
        /// The file.
        fid: u16,
    },
    /// The plan could not be built (LDS or signing).
    #[error("cannot build the card's files: {0}")]
    Plan(String),
    /// The caller's hook refused to go on (journal or PIN mailer failure).
    #[error("{0}")]
    Hook(String),
    /// The issuer's key store did not answer (signing the SOD, sealing the PIN letter): the
    /// card was left as it was, to be written again once the token is back.
    #[error("key store unavailable: {0}")]
    KeyStoreUnavailable(String),
}

impl PersoError {
    /// Whether the issuer's key store was away (a card key, the SOD signature, the PIN letter's
    /// sealing): nothing is wrong with the record or the card, retry once the token is back.
    pub fn is_key_store_unavailable(&self) -> bool {
        matches!(
            self,
            PersoError::KeyStoreUnavailable(_) | PersoError::Card(apdu::Error::KeyUnavailable(_))
        )
    }
}

impl From<PersoError> for crate::Error {
    fn from(e: PersoError) -> crate::Error {
        use crate::ErrorKind as K;
        let kind = match &e {
            _ if e.is_card_removed() => K::CardRemoved,
            _ if e.is_key_store_unavailable() => K::KeyStoreUnavailable,
            PersoError::AlreadyPersonalized { .. } => K::AlreadyPersonalized,
            PersoError::Terminated { .. } => K::WrongCardState,
            PersoError::Card(_) | PersoError::ReadBack { .. } => K::CardError,
            PersoError::Plan(_) | PersoError::Hook(_) => K::Internal,
            PersoError::KeyStoreUnavailable(_) => K::KeyStoreUnavailable,
        };
        crate::Error::new(kind, e.to_string())
    }
}

impl PersoError {
    /// True when the card was pulled or the reader lost it: the card may be incomplete and is
    /// written again when it comes back.
    pub fn is_card_removed(&self) -> bool {
        matches!(
            self,
            PersoError::Card(apdu::Error::Transport(
                apdu::TransportError::CardRemoved
                    | apdu::TransportError::CardReset
                    | apdu::TransportError::ShortResponse { .. }
                    | apdu::TransportError::NoCard(_)
            ))
        )
    }
}

/// What the card was when personalization found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    /// Empty, straight from the fab.
    Fresh,
    /// Partly written by an interrupted personalization: emptied and written again.
    Incomplete,
    /// Finished earlier with this very plan (its EF.SOD): nothing was written.
    AlreadyDone,
}

/// A finished personalization.
#[derive(Debug)]
pub struct Outcome {
    /// The card serial.
    pub serial: [u8; 8],
    /// What the card was.
    pub found: Found,
    /// APDUs on the wire for this card (GET RESPONSEs included).
    pub apdus: u64,
    /// Bytes of file contents written.
    pub bytes_written: usize,
    /// The transport PIN and PUK set (`None` for [`Found::AlreadyDone`]: they were set, and
    /// recorded, by the earlier run).
    pub secrets: Option<CardSecrets>,
}

impl Outcome {
    /// The serial in upper-case hex, as the journal and reports show it.
    pub fn serial_hex(&self) -> String {
        hex::encode_upper(self.serial)
    }
}

/// What the caller does at the two points of no return.
pub trait PersoHooks {
    /// The card is identified and about to be written (`found` is fresh or incomplete):
    /// record the serial durably first. An error stops before the card is touched.
    fn before_write(&mut self, serial: &[u8; 8], found: Found) -> Result<(), PersoError>;
    /// Fresh secrets are about to be set: record them durably first.
    fn secrets_chosen(&mut self, serial: &[u8; 8], secrets: &CardSecrets)
        -> Result<(), PersoError>;
}

/// Hooks that record nothing (tests, benchmarks): the secrets come back in [`Outcome`] only.
#[derive(Debug, Default)]
pub struct NoHooks;

impl PersoHooks for NoHooks {
    fn before_write(&mut self, _: &[u8; 8], _: Found) -> Result<(), PersoError> {
        Ok(())
    }
    fn secrets_chosen(&mut self, _: &[u8; 8], _: &CardSecrets) -> Result<(), PersoError> {
        Ok(())
    }
}

/// Personalizes `card` with `plan` (see the module documentation for what each card state
/// leads to).
pub fn personalize<T: Transport>(
    card: &mut IdCard<T>,
    plan: &Plan,
    keys: &dyn CardKeys,
    hooks: &mut dyn PersoHooks,
) -> Result<Outcome, PersoError> {
    let start = card.apdu_count();
    let life_cycle = card.open_application()?;
    let serial = card.serial()?;
    let serial_hex = hex::encode_upper(serial);
    let found = match life_cycle {
        LifeCycle::Creation => Found::Fresh,
        LifeCycle::Initialisation => Found::Incomplete,
        LifeCycle::Deactivated => {
            let mut session = card.authenticate_terminal(keys)?;
            let sod = match session.read_file(apdu::layout::EF_SOD) {
                Ok(sod) => sod,
                // No readable EF.SOD: not this plan's card.
                Err(apdu::Error::Status(_)) => Vec::new(),
                Err(e) => return Err(e.into()),
            };
            drop(session);
            if sod == plan.sod() {
                return Ok(Outcome {
                    serial,
                    found: Found::AlreadyDone,
                    apdus: card.apdu_count() - start,
                    bytes_written: 0,
                    secrets: None,
                });
            }
            return Err(PersoError::AlreadyPersonalized {
                serial: serial_hex,
                state: "deactivated".into(),
            });
        }
        lcs if lcs.is_terminated() => return Err(PersoError::Terminated { serial: serial_hex }),
        lcs => {
            return Err(PersoError::AlreadyPersonalized {
                serial: serial_hex,
                state: format!("{lcs:?}").to_lowercase(),
            })
        }
    };

    let mut session = card.authenticate_perso(keys)?;
    hooks.before_write(&serial, found)?;
    if found == Found::Incomplete {
        let existing = session.file_list()?;
        session.delete_files(&existing)?;
    }
    for f in &plan.files {
        session.create_and_write(f.fid, Some(f.sfi), &f.data)?;
    }
    for f in &plan.files {
        let back = session.read_file_sfi(f.sfi, f.data.len())?;
        let same = ring::digest::digest(&ring::digest::SHA256, &back).as_ref()
            == ring::digest::digest(&ring::digest::SHA256, &f.data).as_ref();
        if !same {
            return Err(PersoError::ReadBack { fid: f.fid });
        }
    }
    let secrets = CardSecrets::generate(plan.transport_pin_len, plan::PUK_DIGITS)?;
    hooks.secrets_chosen(&serial, &secrets)?;
    session.set_pins(secrets.transport_pin.as_bytes(), secrets.puk.as_bytes())?;
    session.deactivate_by_name()?;
    drop(session);
    Ok(Outcome {
        serial,
        found,
        apdus: card.apdu_count() - start,
        bytes_written: plan.total_bytes(),
        secrets: Some(secrets),
    })
}
