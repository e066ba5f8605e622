//! Household delivery: the household head, verified against the head's own card, collects the
//! household members' cards in the same visit. Whether a member's card may be activated on
//! the head's verification is the kind's rule (`[household] member_activation`).

use serde_json::json;

use super::{begin, journal, BeginResult, Desk, FaceFrame};
use crate::error::{Error, ErrorKind};
use crate::profile::MemberActivation;

/// Hands the member card in `reader` over on the verification of head session `head_session`:
/// the card is read and passive-authenticated like at `begin`, must be of the head's household
/// and kind, and gets a session of its own that counts as verified by the head (activate it
/// with the member's new PIN through `activate`). The journal records the basis when it is
/// activated; the audit trail gets `delivery.handover`.
pub fn handover(
    desk: &Desk<'_>,
    head_session: &str,
    reader: &str,
) -> Result<(BeginResult, FaceFrame), Error> {
    let policy = desk.policy;
    let (head_serial, verified_at) =
        desk.delivery
            .sessions
            .with(head_session, policy.session_ttl, |s| {
                Ok((s.serial.clone(), s.verified_at))
            })?;
    let verified_at = verified_at.ok_or_else(|| {
        Error::new(
            ErrorKind::NotVerified,
            "the household head is not verified in this session",
        )
    })?;
    if verified_at.elapsed() > policy.activate_window {
        return Err(Error::new(
            ErrorKind::VerifyWindowPassed,
            "the head's verification is too old: verify the head again",
        ));
    }
    let journal_error = |e| Error::internal(format!("production journal: {e}"));
    let head = desk
        .journal
        .card(&head_serial)
        .map_err(journal_error)?
        .filter(|c| c.household_head && c.household.is_some())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotInHousehold,
                "this session's card is not a household head's",
            )
        })?;
    let rule = head
        .kind
        .as_deref()
        .and_then(|k| desk.profiles.get(k))
        .and_then(|p| p.household)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::NotInHousehold,
                "the head's card kind has no household rule",
            )
        })?;
    if rule.member_activation == MemberActivation::OwnFinger {
        return Err(Error::new(
            ErrorKind::MemberVerificationRequired,
            "this card kind wants each member's own finger: deliver the member's card with \
             delivery.begin and delivery.verify",
        ));
    }
    let (result, face) = begin(desk, reader)?;
    let member = desk.journal.card(&result.serial).map_err(journal_error)?;
    let same = member.as_ref().is_some_and(|m| {
        m.household == head.household && m.kind == head.kind && m.serial != head.serial
    });
    if !same {
        desk.delivery.sessions.close(&result.session);
        journal(
            desk.audit,
            "delivery.handover_refused",
            json!({"head_session": head_session, "head_serial": head.serial,
                   "serial": result.serial, "reason": ErrorKind::NotInHousehold.name()}),
        )?;
        return Err(Error::new(
            ErrorKind::NotInHousehold,
            format!(
                "card {} is not of household {}",
                result.serial,
                head.household.as_deref().unwrap_or("-")
            ),
        ));
    }
    desk.delivery
        .sessions
        .with(&result.session, policy.session_ttl, |s| {
            s.verified_at = Some(verified_at);
            s.verified_by = Some(head.serial.clone());
            Ok(())
        })?;
    journal(
        desk.audit,
        "delivery.handover",
        json!({"head_session": head_session, "head_serial": head.serial,
               "session": result.session, "serial": result.serial,
               "household": head.household, "activated_on": "head_verification"}),
    )?;
    Ok((result, face))
}
