//! `delivery.handover`: household delivery (foreign-resident cards). The household head was
//! verified in session `session` (delivery.begin + delivery.verify on the head's own card);
//! the member's card in `reader` is read and passive-authenticated like at delivery.begin and,
//! when it is of the head's household and the kind's rule lets the head collect it, gets a
//! session of its own that counts as verified by the head. Activate it with
//! `delivery.activate` and the member's new PIN: the journal and the `delivered` audit entry
//! record `activated_on: head_verification` and the head's card.
//!
//! Request: `{"method":"delivery.handover","params":{"session":"<head session>","reader":"sim:1"}}`
//! Reply: as delivery.begin's, for the member card (its own `session`).
//! Refusals: `not_verified`, `verify_window_passed`, `not_in_household` (not a head's session,
//! or a card of another household), `member_verification_required` (the kind wants each
//! member's own finger), and delivery.begin's.

use serde::Deserialize;

use super::{ApiError, Call, Reply};
use crate::service::Service;

/// Parameters of `delivery.handover`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The household head's verified session.
    session: String,
    /// The reader holding the member's card.
    reader: String,
}

/// Reads the member card and opens its session on the head's verification.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    super::identifier("session", &p.session, 64)?;
    super::configured_reader(svc, &p.reader)?;
    let (result, face) = issuance::delivery::handover(&svc.desk(), &p.session, &p.reader)?;
    let mut reply = Reply::of(&result)?;
    reply.frames.extend(face);
    Ok(reply)
}
