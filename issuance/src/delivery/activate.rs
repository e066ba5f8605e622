//! Step 3, `delivery.activate`: the holder's PIN and the card activated.

use std::time::Instant;

use apdu::card::PinError;
use apdu::fcp::LifeCycle;
use apdu::StatusWord;
use serde::Serialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::{db_error, journal, read, refuse_state, set_journal_state, verify, Desk, Timing};
use crate::batch::PIN_MAILER_FILE;
use crate::error::{Error, ErrorKind};

/// What `delivery.activate` answers.
#[derive(Debug, Serialize)]
pub struct ActivateResult {
    /// Always true (a refusal is an error).
    pub delivered: bool,
    /// Card serial.
    pub serial: String,
    /// The card's life cycle now (`activated`).
    pub life_cycle: &'static str,
    /// The holder's PIN had been set by an interrupted earlier attempt and was kept (the new
    /// PIN of this call was not applied).
    pub pin_already_set: bool,
    /// The card had been activated by an interrupted earlier attempt; only the journal was
    /// completed.
    pub recovered: bool,
    /// Time split.
    pub timing_ms: Timing,
}

/// Where the transport PIN comes from.
pub(super) fn transport_pin(
    desk: &Desk<'_>,
    serial: &str,
    given: Option<Zeroizing<String>>,
) -> Result<Zeroizing<String>, Error> {
    if let Some(pin) = given {
        return Ok(pin);
    }
    let path = desk.state_dir.join(PIN_MAILER_FILE);
    let found = if desk.policy.transport_pin_from_mailer && path.is_file() {
        crate::personalize::PinMailer::lookup(&path, desk.keys, serial)
            .map_err(|e| Error::internal(format!("PIN mailer: {e}")))?
    } else {
        None
    };
    found.map(|s| s.transport_pin.clone()).ok_or_else(|| {
        Error::new(
            ErrorKind::TransportPinUnknown,
            "the card's transport PIN is not on record here: give it (transport_pin, from the holder's PIN letter)",
        )
    })
}

/// Checks the session binding, then sets the holder's PIN and activates the card.
pub fn activate(
    desk: &Desk<'_>,
    session_id: &str,
    new_pin: Zeroizing<String>,
    given_transport_pin: Option<Zeroizing<String>>,
) -> Result<ActivateResult, Error> {
    let started = Instant::now();
    let policy = &desk.policy;
    let delivery = &desk.delivery;
    let audit = desk.audit;
    if !apdu::card::PIN_LEN.contains(&new_pin.len()) || !new_pin.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Error::new(
            ErrorKind::Invalid,
            format!(
                "new_pin must be {} to {} digits",
                apdu::card::PIN_LEN.start(),
                apdu::card::PIN_LEN.end()
            ),
        ));
    }
    if !verify::is_session_id(session_id) {
        // Not a session id: journaled with a short prefix only, never the string itself.
        journal(
            audit,
            "delivery.activate_refused",
            json!({"session": verify::session_prefix(session_id), "serial": "",
                   "reason": ErrorKind::SessionUnknown.name(), "malformed_session": true}),
        )?;
        return Err(verify::malformed_session(session_id));
    }
    let refuse = |code: ErrorKind, message: String, serial: &str| -> Result<Error, Error> {
        journal(
            audit,
            "delivery.activate_refused",
            json!({"session": session_id, "serial": serial, "reason": code.name()}),
        )?;
        Ok(Error::new(code, message).with_data(json!({"session": session_id})))
    };
    // The binding lives here: the session must exist, be open, and have a recent successful
    // verification.
    let bound = delivery.sessions.with(session_id, policy.session_ttl, |s| {
        Ok((
            s.reader.clone(),
            s.serial.clone(),
            s.document_number.clone(),
            s.verified_at,
            s.verified_by.clone(),
        ))
    });
    let (reader, serial, document_number, verified_at, verified_by) = match bound {
        Ok(b) => b,
        Err(e) => return Err(refuse(e.kind, e.message, "")?),
    };
    let Some(verified_at) = verified_at else {
        return Err(refuse(
            ErrorKind::NotVerified,
            "no successful fingerprint verification in this session".into(),
            &serial,
        )?);
    };
    if verified_at.elapsed() > policy.activate_window {
        return Err(refuse(
            ErrorKind::VerifyWindowPassed,
            format!(
                "the verification is older than {} s: verify again",
                policy.activate_window.as_secs()
            ),
            &serial,
        )?);
    }
    let pin = transport_pin(desk, &serial, given_transport_pin)?;
    let record = delivery.store.card(&serial).map_err(db_error)?;
    let was_pending = record.activation_pending.is_some();

    let io_start = Instant::now();
    let outcome = desk.readers.with_card(&reader, |card| {
        let lcs = card.open_application()?;
        let in_reader = hex::encode_upper(card.serial()?);
        if in_reader != serial {
            return Ok(Step::Swapped(in_reader));
        }
        match lcs {
            LifeCycle::Deactivated => {}
            LifeCycle::Activated if was_pending => return Ok(Step::FoundActivated),
            other => return Ok(Step::WrongState(other)),
        }
        delivery
            .store
            .set_pending(&serial, session_id)
            .map_err(db_error)?;
        journal(
            audit,
            "activation_pending",
            json!({"session": session_id, "serial": serial}),
        )?;
        let mut session = card.authenticate_terminal(desk.keys.as_ref())?;
        if was_pending {
            // An earlier attempt may have replaced the transport PIN before it was cut off:
            // ACTIVATE FILE succeeds only then, and costs no PIN try either way.
            match session.activate() {
                Ok(()) => {
                    return Ok(Step::Activated {
                        pin_already_set: true,
                    })
                }
                Err(apdu::Error::Status(StatusWord::ConditionsNotSatisfied)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        match session.change_pin(pin.as_bytes(), new_pin.as_bytes()) {
            Ok(()) => {}
            Err(PinError::Wrong { tries_left }) => return Ok(Step::PinRejected { tries_left }),
            Err(PinError::Blocked) => return Ok(Step::PinBlocked),
            Err(PinError::Card(e)) => return Err(e.into()),
        }
        session.activate()?;
        Ok(Step::Activated {
            pin_already_set: false,
        })
    });
    let card_io = read::ms_since(io_start);
    let step = match outcome {
        Ok(step) => step,
        Err(e) if e.kind == ErrorKind::CardRemoved || e.kind == ErrorKind::NoCard => {
            // The card went away mid-activation: a pending record stays (if the card was
            // reached), the session stays verified (within its window) so activate can simply
            // be called again.
            let pending = delivery
                .store
                .card(&serial)
                .map_err(db_error)?
                .activation_pending
                .is_some();
            if pending {
                journal(
                    audit,
                    "activation_interrupted",
                    json!({"session": session_id, "serial": serial, "reason": e.kind.name()}),
                )?;
            }
            return Err(e.with_data(json!({"serial": serial, "activation_pending": pending})));
        }
        Err(e) => return Err(e),
    };
    let (pin_already_set, recovered) = match step {
        Step::Swapped(other) => {
            return Err(refuse(
                ErrorKind::CardSwapped,
                "the card in the reader is not the one verified in this session".into(),
                &serial,
            )?
            .with_data(json!({"session": session_id, "expected": serial, "found": other})));
        }
        Step::WrongState(lcs) => {
            return Err(refuse_state(desk, &serial, lcs, &record, Some(session_id))?);
        }
        Step::PinRejected { tries_left } => {
            delivery.store.clear_pending(&serial).map_err(db_error)?;
            journal(
                audit,
                "activation_failed",
                json!({"session": session_id, "serial": serial, "reason": "pin_rejected", "tries_left": tries_left}),
            )?;
            return Err(Error::new(
                ErrorKind::PinRejected,
                format!("the card refused the transport PIN ({tries_left} tries left)"),
            )
            .with_data(json!({"tries_left": tries_left})));
        }
        Step::PinBlocked => {
            delivery.store.clear_pending(&serial).map_err(db_error)?;
            journal(
                audit,
                "activation_failed",
                json!({"session": session_id, "serial": serial, "reason": "pin_blocked"}),
            )?;
            return Err(Error::new(
                ErrorKind::PinBlocked,
                "the card's PIN is blocked: unblock it with the PUK (card.unblock)",
            ));
        }
        Step::FoundActivated => (true, true),
        Step::Activated { pin_already_set } => (pin_already_set, false),
    };
    delivery.store.mark_delivered(&serial).map_err(db_error)?;
    // What the handover rested on: the holder's own finger, or the household head's.
    let basis = verified_by
        .as_ref()
        .map(|head| format!("activated on the household head's verification ({head})"));
    set_journal_state(
        desk,
        &serial,
        crate::journal::CardState::Delivered,
        basis.as_deref(),
    )?;
    journal(
        audit,
        "delivered",
        json!({"session": session_id, "serial": serial, "document_number": document_number,
               "reader": reader, "recovered": recovered, "pin_already_set": pin_already_set,
               "activated_on": if verified_by.is_some() { "head_verification" } else { "own_finger" },
               "head_serial": verified_by}),
    )?;
    delivery.sessions.close(session_id);
    // The SMS gateway tells the applicant: by tracking code.
    let tracking_code = desk
        .journal
        .card(&serial)
        .ok()
        .flatten()
        .map(|c| c.tracking_code);
    desk.events.publish(
        "card.delivered",
        json!({"reader": reader, "serial": serial, "recovered": recovered,
               "tracking_code": tracking_code}),
    );
    Ok(ActivateResult {
        delivered: true,
        serial,
        life_cycle: "activated",
        pin_already_set,
        recovered,
        timing_ms: {
            let mut t = Timing {
                card_io,
                ..Timing::default()
            };
            t.finish(started);
            t
        },
    })
}

/// Where an activation on the card ended.
enum Step {
    /// Another card is in the reader (its serial).
    Swapped(String),
    /// The card is not deactivated.
    WrongState(LifeCycle),
    /// A pending activation had finished on the card already.
    FoundActivated,
    /// The transport PIN was refused.
    PinRejected { tries_left: u8 },
    /// The PIN is blocked.
    PinBlocked,
    /// Done.
    Activated { pin_already_set: bool },
}
