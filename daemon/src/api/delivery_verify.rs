//! `delivery.verify`: compare the holder's live fingerprint(s) with the chip's templates.
//!
//! Request, one finger, scan in binary frame 0 (or `"scan"` as base64):
//! `{"method":"delivery.verify","params":{"session":"9f..","finger":2}}` + frame 0 = PNG bytes.
//! Several fingers combined: `{"session":"9f..","scans":[{"finger":2,"frame":0},
//! {"finger":7,"scan":"iVBOR..."}]}`. Optional `dpi` per scan (default 500).
//!
//! Reply on a match: `{"decision":"match","score":0.31,"threshold":0.086,"target_fmr":0.001,
//! "fingers":[{"finger":2,"score":0.31,"quality":64,"minutiae":41}],"attempts_left":3,
//! "activate_within_s":120,"timing_ms":{"extraction":..,"comparison":..,"total":..}}`
//!
//! Refusals: `no_match` (`data.score`, `data.attempts_left`), `rescan` (scan too poor; not
//! counted as an attempt), `attempts_exhausted`, `finger_not_enrolled`, `session_unknown`,
//! `session_expired`, `busy` (a verification of the session is running). The scan itself is
//! never logged, journaled or echoed.

use serde::Deserialize;

use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;
use issuance::delivery::{scan_from_base64, LiveScan};
use matcher::params::DEFAULT_DPI;

/// One scan: the image as base64 (`scan`) or in a binary frame (`frame`, default 0).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanParam {
    /// ISO/IEC 19794-2 finger position (1-10; 0 unknown).
    finger: u8,
    /// The image, base64.
    scan: Option<String>,
    /// Index of the binary frame holding the image.
    frame: Option<usize>,
    /// Resolution of the image.
    dpi: Option<u32>,
}

/// Parameters of `delivery.verify`: either one finger (`finger` + `scan`/`frame`) or `scans`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The delivery session from `delivery.begin`.
    session: String,
    /// The finger of a single scan.
    finger: Option<u8>,
    /// A single scan, base64.
    scan: Option<String>,
    /// Binary frame of a single scan.
    frame: Option<usize>,
    /// Resolution of a single scan.
    dpi: Option<u32>,
    /// Several fingers, combined into one decision.
    scans: Option<Vec<ScanParam>>,
}

fn live_scan(call: &Call, p: ScanParam) -> Result<LiveScan, ApiError> {
    if !(0..=10).contains(&p.finger) {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!(
                "finger {} is not an ISO/IEC 19794-2 finger position (0-10)",
                p.finger
            ),
        ));
    }
    let image = match (p.scan, p.frame) {
        (Some(_), Some(_)) => {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                "give the scan either as base64 (scan) or as a frame, not both",
            ))
        }
        (Some(text), None) => scan_from_base64(&text)?,
        (None, frame) => {
            let index = frame.unwrap_or(0);
            zeroize::Zeroizing::new(call.frame(index, "the scan image")?.to_vec())
        }
    };
    Ok(LiveScan {
        finger: p.finger,
        image,
        dpi: p.dpi.unwrap_or(DEFAULT_DPI),
    })
}

/// Checks the live scan(s) against the session's chip templates.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    let single = p.finger.map(|finger| ScanParam {
        finger,
        scan: p.scan,
        frame: p.frame,
        dpi: p.dpi,
    });
    let params = match (single, p.scans) {
        (Some(one), None) => vec![one],
        (None, Some(many)) if !many.is_empty() => many,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidParams,
                "give either finger (with scan or a frame) or a non-empty scans list",
            ))
        }
    };
    let scans = params
        .into_iter()
        .map(|sp| live_scan(&call, sp))
        .collect::<Result<Vec<_>, _>>()?;
    let result = issuance::delivery::verify(&svc.desk(), &p.session, &scans)?;
    Reply::of(&result)
}
