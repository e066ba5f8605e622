//! `matcher.compare`: 1:N comparison of a probe template with candidate templates.
//!
//! Templates are in one stated `format` (`record`, `normal`, `compact`; card formats are read at
//! `dpi`). Either all as binary frames (frame 0 the probe, frames 1.. the candidates) or all as
//! base64 (`probe_b64`, `candidates_b64`). The decision uses the calibrated threshold for `fmr`
//! (0.01, 0.001 or 0.0001; default: the delivery policy's) on the format's score scale: records
//! carry minutia quality ([`ScoreScale::Classical`]), card formats do not: their templates are
//! prepared with crowding weights instead (`matcher::compare::prepare_stored`) and scored on
//! [`ScoreScale::CardFormat`], whose thresholds are higher; `scale` in the reply.
//!
//! Request: `{"jsonrpc":"2.0","id":1,"method":"matcher.compare","params":{"format":"record",
//! "fmr":0.001}}` + frames: probe, candidate, candidate...
//! Reply: `{"scores":[0.41,0.02],"matches":[true,false],"best":0,"threshold":0.15,"fmr":0.001,
//! "scale":"classical"}`

use serde::Deserialize;
use serde_json::json;

use super::matcher_extract::{
    base64_field, card_format, default_dpi, default_format, matcher_error,
};
use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;
use matcher::compare::{compare, prepare_stored, ScoreScale, Scratch, Threshold};
use matcher::template::{self, CardFormat};

/// Most candidates in one request.
pub const MAX_CANDIDATES: usize = 15;

/// Largest template accepted (bytes): an ISO/IEC 19794-2 record of one finger with the most
/// minutiae it can hold (255) and extended data is a few kilobytes.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;

/// Parameters of `matcher.compare`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// Format of every template.
    #[serde(default = "default_format")]
    format: String,
    /// Resolution at which card-format templates are read.
    #[serde(default = "default_dpi")]
    dpi: u32,
    /// Target false-match rate of the decision.
    fmr: Option<f64>,
    /// The probe, base64 (instead of binary frame 0).
    probe_b64: Option<String>,
    /// The candidates, base64 (instead of binary frames 1..).
    candidates_b64: Option<Vec<String>>,
}

/// The score scale of two templates in `format`.
pub fn scale_of(format: CardFormat) -> ScoreScale {
    match format {
        CardFormat::Record => ScoreScale::Classical,
        CardFormat::Normal | CardFormat::Compact => ScoreScale::CardFormat,
    }
}

/// The calibrated threshold on `scale` for a false-match rate (see
/// `matcher::compare::Threshold`); other rates have no calibration behind them and are refused.
pub fn threshold_for_fmr(scale: ScoreScale, fmr: f64) -> Result<Threshold, ApiError> {
    Threshold::calibrated_on(scale, fmr).ok_or_else(|| {
        ApiError::new(
            ErrorCode::InvalidParams,
            format!("no calibrated threshold for fmr {fmr}: use 0.01, 0.001 or 0.0001"),
        )
    })
}

/// Scores the probe against every candidate and decides at the threshold.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    let format = card_format(&p.format)?;
    let scale = scale_of(format);
    let threshold = threshold_for_fmr(scale, p.fmr.unwrap_or(svc.config.delivery.fmr))?;
    // Counts and sizes first, before anything is decoded or copied (issue 18).
    let (count, longest) = match (&p.probe_b64, &p.candidates_b64) {
        (Some(probe), Some(c)) => (
            c.len(),
            c.iter()
                .map(|s| s.len() / 4 * 3)
                .chain([probe.len() / 4 * 3])
                .max(),
        ),
        _ => (
            call.frames.len().saturating_sub(1),
            call.frames.iter().map(Vec::len).max(),
        ),
    };
    if count == 0 || count > MAX_CANDIDATES {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!("{count} candidates: send 1 to {MAX_CANDIDATES}"),
        ));
    }
    if let Some(len) = longest.filter(|&l| l > MAX_TEMPLATE_BYTES) {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("a template of {len} bytes: at most {MAX_TEMPLATE_BYTES}"),
        ));
    }
    let templates: Vec<(String, std::borrow::Cow<'_, [u8]>)> =
        match (&p.probe_b64, &p.candidates_b64) {
            (Some(probe), Some(candidates)) => {
                if !call.frames.is_empty() {
                    return Err(ApiError::new(
                        ErrorCode::InvalidParams,
                        "send templates either as base64 or as binary frames, not both",
                    ));
                }
                let mut all = vec![(
                    "probe".to_string(),
                    base64_field("probe_b64", probe)?.into(),
                )];
                for (i, c) in candidates.iter().enumerate() {
                    let field = format!("candidates_b64[{i}]");
                    let bytes = base64_field(&field, c)?;
                    all.push((field, bytes.into()));
                }
                all
            }
            (None, None) => {
                call.frame(0, "the probe template")?;
                call.frames
                    .iter()
                    .enumerate()
                    .map(|(i, f)| {
                        let name = if i == 0 {
                            "probe (frame 0)".to_string()
                        } else {
                            format!("candidate (frame {i})")
                        };
                        (name, f.as_slice().into())
                    })
                    .collect()
            }
            _ => {
                return Err(ApiError::new(
                    ErrorCode::InvalidParams,
                    "probe_b64 and candidates_b64 go together",
                ))
            }
        };
    let candidates = templates.len() - 1;
    if candidates == 0 || candidates > MAX_CANDIDATES {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!("{candidates} candidates: send 1 to {MAX_CANDIDATES}"),
        ));
    }
    let prepared = templates
        .iter()
        .map(|(name, bytes)| {
            template::decode(bytes, format, p.dpi)
                .map(|fp| prepare_stored(&fp, format))
                .map_err(|e| matcher_error(name, e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut scratch = Scratch::new();
    let scores: Vec<f32> = prepared[1..]
        .iter()
        .map(|c| compare(&prepared[0], c, &mut scratch))
        .collect();
    let matches: Vec<bool> = scores.iter().map(|&s| threshold.accepts(s)).collect();
    let best = scores
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i);
    Ok(Reply::json(json!({
        "scores": scores.iter().map(|&s| as_json_number(s)).collect::<Vec<_>>(),
        "matches": matches,
        "best": best,
        "threshold": as_json_number(threshold.score),
        "fmr": threshold.target_fmr,
        "scale": scale.name(),
    })))
}

/// An `f32` as the JSON number with the same shortest decimal form (`0.086`, not
/// `0.0860000029206276` as widening to `f64` would give).
fn as_json_number(x: f32) -> serde_json::Value {
    x.to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(serde_json::Value::Null, serde_json::Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_calibrated_rates() {
        let classical = ScoreScale::Classical;
        assert_eq!(
            threshold_for_fmr(classical, 0.001).unwrap(),
            Threshold::FMR_0_1_PERCENT
        );
        assert_eq!(
            threshold_for_fmr(classical, 0.01).unwrap(),
            Threshold::FMR_1_PERCENT
        );
        assert_eq!(
            threshold_for_fmr(classical, 0.002).unwrap_err().code,
            ErrorCode::InvalidParams
        );
        // Card formats carry no minutia quality: their own, higher thresholds.
        let card = scale_of(CardFormat::Compact);
        assert_eq!(card, scale_of(CardFormat::Normal));
        assert_eq!(scale_of(CardFormat::Record), classical);
        for fmr in [0.01, 0.001, 0.0001] {
            let (c, r) = (
                threshold_for_fmr(card, fmr).unwrap(),
                threshold_for_fmr(classical, fmr).unwrap(),
            );
            assert!(
                c.score > r.score && c.target_fmr == r.target_fmr,
                "{c:?} {r:?}"
            );
        }
        assert_eq!(as_json_number(0.086).to_string(), "0.086");
        assert_eq!(as_json_number(f32::NAN), serde_json::Value::Null);
    }
}
