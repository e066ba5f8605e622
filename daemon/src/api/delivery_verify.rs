//! `delivery.verify`: compare the holder's live fingerprint(s) with the chip's templates.
//!
//! Request, one finger, scan in binary frame 0 (or `"scan"` as base64):
//! `{"method":"delivery.verify","params":{"session":"9f..","finger":2}}` + frame 0 = PNG bytes.
//! Several fingers combined: `{"session":"9f..","scans":[{"finger":2,"frame":0},
//! {"finger":7,"scan":"iVBOR..."}]}`. Optional `dpi` per scan (default 500).
//!
//! Reply on a match: `{"decision":"match","target_fmr":0.001,
//! "fingers":[{"finger":2,"quality":64,"minutiae":41}],"attempts_left":3,
//! "activate_within_s":120,"timing_ms":{"extraction":..,"comparison":..,"total":..}}`.
//! Neither a match nor a `no_match` carries the score (it would guide forged scans uphill);
//! the audit trail has it.
//!
//! Bounds, checked before any scan is copied or decoded: at most 10 scans, each binary frame
//! referenced by one scan only, each scan at most `issuance::scan::MAX_SCAN_BYTES`
//! (`too_large`), and the session must be live.
//!
//! Refusals: `no_match` (`data.attempts_left`), `rescan` (scan too poor; not
//! counted as an attempt), `attempts_exhausted`, `finger_not_enrolled`, `session_unknown`
//! (also for a string that is not a session id; at most 8 characters of it are echoed),
//! `session_expired`, `busy` (a verification of the session is running), `too_large`,
//! `invalid_params`. The scan itself is never logged, journaled or echoed.

use serde::Deserialize;

use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;
use issuance::delivery::{scan_from_base64, LiveScan, MAX_LIVE_SCANS};
use issuance::scan::MAX_SCAN_BYTES;
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

/// Checks every scan's finger, frame reference and size, without copying or decoding
/// anything: at most [`MAX_LIVE_SCANS`] scans, each frame referenced once, each scan at most
/// [`issuance::scan::MAX_SCAN_BYTES`].
fn check_scans(call: &Call, params: &[ScanParam]) -> Result<(), ApiError> {
    let invalid = |m: String| ApiError::new(ErrorCode::InvalidParams, m);
    if params.len() > MAX_LIVE_SCANS {
        return Err(invalid(format!(
            "{} scans given; at most {MAX_LIVE_SCANS} (one per finger)",
            params.len()
        )));
    }
    let mut used = vec![false; call.frames.len()];
    for p in params {
        if !(0..=10).contains(&p.finger) {
            return Err(invalid(format!(
                "finger {} is not an ISO/IEC 19794-2 finger position (0-10)",
                p.finger
            )));
        }
        let len = match (&p.scan, p.frame) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "give the scan either as base64 (scan) or as a frame, not both".into(),
                ))
            }
            (Some(text), None) => text.len() / 4 * 3,
            (None, frame) => {
                let index = frame.unwrap_or(0);
                let Some(seen) = used.get_mut(index) else {
                    return Err(invalid(format!(
                        "expected the scan image in binary frame {index} of the message ({} frames came)",
                        call.frames.len()
                    )));
                };
                if std::mem::replace(seen, true) {
                    return Err(invalid(format!(
                        "binary frame {index} is referenced by more than one scan"
                    )));
                }
                call.frames[index].len()
            }
        };
        if len > MAX_SCAN_BYTES {
            return Err(ApiError::new(
                ErrorCode::TooLarge,
                format!(
                    "the scan of finger {} is too large ({len} bytes; at most {MAX_SCAN_BYTES})",
                    p.finger
                ),
            ));
        }
    }
    Ok(())
}

/// The scan of `p`, decoded from base64 or moved out of its frame (not copied: each frame is
/// referenced once, [`check_scans`]).
fn live_scan(frames: &mut [Vec<u8>], p: ScanParam) -> Result<LiveScan, ApiError> {
    let image = match p.scan {
        Some(text) => scan_from_base64(&text)?,
        None => zeroize::Zeroizing::new(std::mem::take(&mut frames[p.frame.unwrap_or(0)])),
    };
    Ok(LiveScan {
        finger: p.finger,
        image,
        dpi: p.dpi.unwrap_or(DEFAULT_DPI),
    })
}

/// Checks the live scan(s) against the session's chip templates.
///
/// Order matters (issue 18): counts, sizes and frame references are checked first, then the
/// session, and only then is anything decoded or copied.
pub fn call(svc: &Service, mut call: Call) -> Result<Reply, ApiError> {
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
    check_scans(&call, &params)?;
    let desk = svc.desk();
    issuance::delivery::check_session(&desk, &p.session)?;
    let scans = params
        .into_iter()
        .map(|sp| live_scan(&mut call.frames, sp))
        .collect::<Result<Vec<_>, _>>()?;
    let result = issuance::delivery::verify(&desk, &p.session, &scans)?;
    Reply::of(&result)
}
