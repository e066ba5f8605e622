//! `dispatch.create`: produced cards go to an office together, as one dispatch with a manifest.
//!
//! Request: `{"method":"dispatch.create","params":{"office":"THR-12",
//! "serials":["3F00A1B2C3D4E5F6","..."]}}`, or `{"office":"THR-12","household":"7730012"}`:
//! every produced card of a household (foreign-resident yearly renewal) goes together.
//! Reply: `{"dispatch_id":"D1796..-1a2b","office":"THR-12","cards":[{"serial","tracking_code",
//! "document_number"}]}`; each card becomes `dispatched` (status lookup: `dispatched` to the
//! office); event `dispatch.created` (`{"dispatch_id","office","cards":N}`).
//! Errors: `dispatch_refused` when any card is unknown, not produced, already dispatched or no
//! longer usable, with `data.problems` = `[{serial, problem}]`: nothing is written;
//! `invalid_params`.

use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;

/// Most cards in one dispatch (a box of cards for one office).
pub const MAX_DISPATCH_CARDS: usize = 10_000;

/// Parameters of `dispatch.create`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The office the cards go to.
    office: String,
    /// Card serials (hex).
    #[serde(default)]
    serials: Vec<String>,
    /// Or a household code: every produced card of the household goes, together.
    #[serde(default)]
    household: Option<String>,
}

/// Journals the dispatch.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    super::identifier("office", &p.office, 32)?;
    if p.serials.len() > MAX_DISPATCH_CARDS {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!("at most {MAX_DISPATCH_CARDS} cards per dispatch"),
        ));
    }
    let mut serials = Vec::with_capacity(p.serials.len());
    for s in &p.serials {
        super::identifier("serial", s, 16)?;
        serials.push(s.to_ascii_uppercase());
    }
    if let Some(household) = &p.household {
        super::identifier("household", household, 32)?;
        if !serials.is_empty() {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                "give serials or household, not both",
            ));
        }
        serials = svc
            .batches
            .journal()
            .household_cards(household)
            .map_err(issuance::Error::from)?;
        if serials.is_empty() {
            return Err(ApiError::new(
                ErrorCode::DispatchRefused,
                format!("household {household} has no produced card waiting to be dispatched"),
            )
            .with_data(json!({"problems": [{"serial": "", "problem": "no produced card"}]})));
        }
    }
    let made = svc
        .batches
        .journal()
        .create_dispatch(&p.office, &serials)
        .map_err(issuance::Error::from)?;
    let dispatch = made.map_err(|problems| {
        ApiError::new(
            ErrorCode::DispatchRefused,
            format!(
                "{} card(s) cannot be dispatched: nothing was",
                problems.len()
            ),
        )
        .with_data(json!({ "problems": problems }))
    })?;
    svc.audit
        .append(
            "dispatched",
            json!({"dispatch_id": dispatch.id, "office": dispatch.office,
                   "serials": dispatch.cards.iter().map(|c| &c.serial).collect::<Vec<_>>()}),
        )
        .map_err(|e| issuance::Error::internal(format!("audit log: {e}")))?;
    svc.events.publish(
        "dispatch.created",
        json!({"dispatch_id": dispatch.id, "office": dispatch.office, "cards": dispatch.cards.len()}),
    );
    Ok(Reply::json(json!({
        "dispatch_id": dispatch.id,
        "office": dispatch.office,
        "cards": dispatch.cards,
    })))
}
