//! `delivery.begin`: read and authenticate the card in a reader, open a delivery session.
//!
//! Request: `{"method":"delivery.begin","params":{"reader":"sim:0"}}`
//! Reply: `{"session":"9f..","reader":"sim:0","serial":"49..","holder":{"document_number":
//! "A12345678","surname_latin":"REZAEI","given_names_latin":"ALI","surname":"رضایی",
//! "given_names":"علی","birth_date":"1990-03-21","expiry_date":"2036-11-22","sex":"M",
//! "nationality":"IRN","fingers":[2,7],"face":{"format":"jpeg","width":240,"height":320,
//! "bytes":5120,"frame":0}},"passive_auth":{"ds_subject":"..","csca_subject":"..",
//! "checked":[1,2,3,11,12]},"attempts_left":3,"activation_pending":false,"timing_ms":{..}}`
//! plus the face image in binary frame 0 when the card has one.
//!
//! Refusals: `pa_failed` (`data.reason`), `already_delivered`, `card_terminated`,
//! `wrong_card_state`, `card_removed`, `busy`, `reader_not_found`.

use serde::Deserialize;

use super::{ApiError, Call, Reply};
use crate::service::Service;

/// Parameters of `delivery.begin`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The reader holding the card to deliver.
    reader: String,
}

/// Reads the card, runs passive authentication, opens a session.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    super::configured_reader(svc, &p.reader)?;
    let (result, face) = issuance::delivery::begin(&svc.desk(), &p.reader)?;
    let mut reply = Reply::of(&result)?;
    reply.frames.extend(face);
    Ok(reply)
}
