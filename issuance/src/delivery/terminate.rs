//! Outside delivery: a lost card terminated, a blocked PIN reset with the PUK.

use apdu::card::PinError;
use apdu::StatusWord;
use serde::Serialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::{db_error, journal, lcs_name, set_journal_state, Desk};
use crate::error::{Error, ErrorKind};

/// Why a card is terminated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TerminateReason {
    /// Reported lost.
    Lost,
    /// Reported stolen.
    Stolen,
    /// Replaced by a new card (renewal, damage, changed data).
    Replaced,
    /// Physically damaged.
    Damaged,
}

impl TerminateReason {
    /// The snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            TerminateReason::Lost => "lost",
            TerminateReason::Stolen => "stolen",
            TerminateReason::Replaced => "replaced",
            TerminateReason::Damaged => "damaged",
        }
    }
}

/// What `card.terminate` answers.
#[derive(Debug, Serialize)]
pub struct TerminateResult {
    /// Card serial.
    pub serial: String,
    /// Life cycle before.
    pub was: &'static str,
    /// `terminated`.
    pub life_cycle: &'static str,
    /// The reason journaled.
    pub reason: TerminateReason,
}

/// TERMINATE CARD USAGE on the card in `reader` (irreversible), journaled.
pub fn terminate(
    desk: &Desk<'_>,
    reader: &str,
    reason: TerminateReason,
) -> Result<TerminateResult, Error> {
    let (serial, was) = desk.readers.with_card(reader, |card| {
        let lcs = card.open_application()?;
        let serial = hex::encode_upper(card.serial()?);
        if lcs.is_terminated() {
            return Err(
                Error::new(ErrorKind::CardTerminated, "the card is terminated already")
                    .with_data(json!({"serial": serial})),
            );
        }
        let mut session = card.authenticate_terminal(desk.keys.as_ref())?;
        session
            .channel()
            .transmit_ok(&apdu::commands::terminate_card_usage())?;
        drop(session);
        // Read back: the journal must say what the card says.
        let now = card.life_cycle()?;
        if !now.is_terminated() {
            return Err(Error::new(
                ErrorKind::CardError,
                format!(
                    "the card accepted TERMINATE CARD USAGE but reports {}",
                    lcs_name(now)
                ),
            ));
        }
        Ok((serial, lcs))
    })?;
    desk.delivery
        .store
        .mark_terminated(&serial, reason.name())
        .map_err(db_error)?;
    set_journal_state(
        desk,
        &serial,
        crate::journal::CardState::Terminated,
        Some(reason.name()),
    )?;
    journal(
        desk.audit,
        "terminated",
        json!({"serial": serial, "reader": reader, "reason": reason.name(), "was": lcs_name(was)}),
    )?;
    desk.events.publish(
        "card.terminated",
        json!({"reader": reader, "serial": serial, "reason": reason.name()}),
    );
    Ok(TerminateResult {
        serial,
        was: lcs_name(was),
        life_cycle: "terminated",
        reason,
    })
}

/// RESET RETRY COUNTER with the PUK and a new PIN on the card in `reader`, journaled (never
/// with the PUK or PIN).
pub fn unblock(
    desk: &Desk<'_>,
    reader: &str,
    puk: Zeroizing<String>,
    new_pin: Zeroizing<String>,
) -> Result<Value, Error> {
    let result = desk.readers.with_card(reader, |card| {
        let serial = hex::encode_upper(card.serial()?);
        let lcs = card.life_cycle()?;
        if lcs.is_terminated() {
            return Ok((serial, Err((ErrorKind::CardTerminated, None))));
        }
        match card.unblock(puk.as_bytes(), new_pin.as_bytes()) {
            Ok(()) => Ok((serial, Ok(()))),
            Err(PinError::Wrong { tries_left }) => {
                Ok((serial, Err((ErrorKind::PinRejected, Some(tries_left)))))
            }
            Err(PinError::Blocked) => Ok((serial, Err((ErrorKind::PinBlocked, None)))),
            Err(PinError::Card(apdu::Error::Usage(why))) => {
                Err(Error::new(ErrorKind::Invalid, why))
            }
            Err(PinError::Card(apdu::Error::Status(StatusWord::ConditionsNotSatisfied))) => {
                Err(Error::new(
                    ErrorKind::WrongCardState,
                    "the card cannot be unblocked in its life-cycle state",
                ))
            }
            Err(PinError::Card(e)) => Err(e.into()),
        }
    })?;
    let (serial, outcome) = result;
    let audit = desk.audit;
    match outcome {
        Ok(()) => {
            journal(
                audit,
                "unblocked",
                json!({"serial": serial, "reader": reader}),
            )?;
            desk.events.publish(
                "card.unblocked",
                json!({"reader": reader, "serial": serial}),
            );
            Ok(json!({"serial": serial, "unblocked": true}))
        }
        Err((code, tries_left)) => {
            journal(
                audit,
                "unblock_failed",
                json!({"serial": serial, "reader": reader, "reason": code.name(), "tries_left": tries_left}),
            )?;
            let message = match code {
                ErrorKind::PinRejected => format!(
                    "the card refused the PUK ({} tries left)",
                    tries_left.unwrap_or(0)
                ),
                ErrorKind::PinBlocked => "the PUK is blocked: the card must be replaced".into(),
                _ => "the card is terminated".into(),
            };
            Err(Error::new(code, message)
                .with_data(json!({"serial": serial, "tries_left": tries_left})))
        }
    }
}
