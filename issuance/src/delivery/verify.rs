//! Step 2, `delivery.verify`: the live scans against the chip's templates.

use std::time::Instant;

use base64::Engine as _;
use matcher::compare::{compare, fuse, prepare, Fusion, ScoreScale, Scratch, Threshold};
use serde::Serialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::{
    db_error, journal, read, ChipTemplate, Desk, Timing, MIN_SCAN_MINUTIAE, MIN_SCAN_QUALITY,
};
use crate::error::{Error, ErrorKind};
use crate::scan::MAX_SCAN_BYTES;

/// Most live scans one verify request may carry: one per finger.
pub const MAX_LIVE_SCANS: usize = 10;

/// Length of a session id: 16 random bytes in lower-case hex (see [`super::session`]).
pub const SESSION_ID_LEN: usize = 32;

/// How many characters of a malformed session id are echoed in a refusal or the audit trail.
const SESSION_ECHO_CHARS: usize = 8;

/// True when `id` has the form of a session id (32 lower-case hex digits). Anything else
/// cannot be a session and is refused before it is looked up, journaled or echoed.
pub fn is_session_id(id: &str) -> bool {
    id.len() == SESSION_ID_LEN && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// At most a few characters of `id`, for refusals of a malformed one (`…` marks the cut).
pub(super) fn session_prefix(id: &str) -> String {
    let mut out: String = id
        .chars()
        .take(SESSION_ECHO_CHARS)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if id.chars().nth(SESSION_ECHO_CHARS).is_some() {
        out.push('…');
    }
    out
}

/// `session_unknown` for an id that is not a session id (only a short prefix echoed).
pub(super) fn malformed_session(id: &str) -> Error {
    Error::new(
        ErrorKind::SessionUnknown,
        "no such delivery session (not a session id): start with delivery.begin",
    )
    .with_data(json!({"session": session_prefix(id)}))
}

/// Checks that `session_id` names a live session (well-formed, open, not expired), before a
/// request's scans are decoded or copied: a request for no session costs nothing.
pub fn check_session(desk: &Desk<'_>, session_id: &str) -> Result<(), Error> {
    if !is_session_id(session_id) {
        return Err(malformed_session(session_id));
    }
    desk.delivery
        .sessions
        .with(session_id, desk.policy.session_ttl, |_| Ok(()))
}

/// One live scan in a verify request.
#[derive(Debug)]
pub struct LiveScan {
    /// ISO/IEC 19794-2 finger position the holder presented.
    pub finger: u8,
    /// The encoded image (PNG, TIFF, BMP, ...). Never logged or journaled.
    pub image: Zeroizing<Vec<u8>>,
    /// Its resolution.
    pub dpi: u32,
}

/// Decodes a base64 scan from the request (the bytes are image data; never echoed).
pub fn scan_from_base64(text: &str) -> Result<Zeroizing<Vec<u8>>, Error> {
    if text.len() > MAX_SCAN_BYTES * 4 / 3 + 4 {
        return Err(Error::new(ErrorKind::TooLarge, "the scan is too large"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map(Zeroizing::new)
        .map_err(|e| Error::new(ErrorKind::Invalid, format!("scan is not base64: {e}")))
}

/// What `delivery.verify` answers on a match.
#[derive(Debug, Serialize)]
pub struct VerifyResult {
    /// `match`. The score is not in the reply (a kiosk needs the decision; a score would be a
    /// hill-climbing aid for forged scans); the audit trail has it.
    pub decision: &'static str,
    /// Target false-match rate of the decision.
    pub target_fmr: f64,
    /// Per finger: position and the live scan's quality (no score).
    pub fingers: Vec<FingerScore>,
    /// Failed attempts still allowed on this card.
    pub attempts_left: u32,
    /// Seconds left to call `delivery.activate`.
    pub activate_within_s: u64,
    /// Time split.
    pub timing_ms: Timing,
}

/// One finger's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct FingerScore {
    /// Finger position.
    pub finger: u8,
    /// Best score against the chip's templates of that finger: for the audit trail only,
    /// never in the reply.
    #[serde(skip)]
    pub score: f32,
    /// Image quality of the live scan (0-100).
    pub quality: u8,
    /// Minutiae extracted from the live scan.
    pub minutiae: usize,
}

/// Marks the session as not verifying any more, whatever happens.
struct VerifyingGuard<'a> {
    desk: &'a Desk<'a>,
    session: &'a str,
}

impl Drop for VerifyingGuard<'_> {
    fn drop(&mut self) {
        let ttl = self.desk.policy.session_ttl;
        let _ = self.desk.delivery.sessions.with(self.session, ttl, |s| {
            s.verifying = false;
            Ok(())
        });
    }
}

/// Verifies live scans against the chip templates of session `session_id`.
pub fn verify(
    desk: &Desk<'_>,
    session_id: &str,
    scans: &[LiveScan],
) -> Result<VerifyResult, Error> {
    let started = Instant::now();
    let policy = &desk.policy;
    let delivery = &desk.delivery;
    let audit = desk.audit;
    if !is_session_id(session_id) {
        return Err(malformed_session(session_id));
    }
    if scans.is_empty() {
        return Err(Error::new(ErrorKind::Invalid, "no scan given"));
    }
    if scans.len() > MAX_LIVE_SCANS {
        return Err(Error::new(
            ErrorKind::Invalid,
            format!(
                "{} scans given; at most {MAX_LIVE_SCANS} (one per finger)",
                scans.len()
            ),
        ));
    }
    if let Some(big) = scans.iter().find(|s| s.image.len() > MAX_SCAN_BYTES) {
        return Err(Error::new(
            ErrorKind::TooLarge,
            format!(
                "the scan of finger {} is too large ({} bytes; at most {MAX_SCAN_BYTES})",
                big.finger,
                big.image.len()
            ),
        ));
    }
    let (serial, templates) = delivery
        .sessions
        .with(session_id, policy.session_ttl, |s| {
            if s.verifying {
                return Err(Error::new(
                    ErrorKind::Busy,
                    "a verification of this session is already running",
                ));
            }
            s.verifying = true;
            Ok((s.serial.clone(), s.templates.clone()))
        })?;
    let _guard = VerifyingGuard {
        desk,
        session: session_id,
    };
    let failed = delivery
        .store
        .card(&serial)
        .map_err(db_error)?
        .failed_attempts;
    if failed >= policy.max_attempts {
        mark_unverified(desk, session_id);
        journal(
            audit,
            "delivery.verify",
            json!({"session": session_id, "serial": serial, "decision": "refused_attempts_exhausted"}),
        )?;
        return Err(attempts_exhausted(&serial, policy.max_attempts));
    }
    for scan in scans {
        if !templates
            .iter()
            .any(|t| t.position == scan.finger || t.position == 0)
        {
            return Err(Error::new(
                ErrorKind::FingerNotEnrolled,
                format!("the card holds no template of finger {}", scan.finger),
            )
            .with_data(json!({
                "finger": scan.finger,
                "enrolled": templates.iter().map(|t| t.position).collect::<Vec<_>>(),
            })));
        }
    }

    let mut timing = Timing::default();
    let mut probes = Vec::with_capacity(scans.len());
    let extract_start = Instant::now();
    for scan in scans {
        let print = extract_scan(scan)?;
        probes.push((scan.finger, print));
    }
    timing.extraction = read::ms_since(extract_start);
    // Too poor to compare fairly: ask for a rescan. Not counted as an attempt (no comparison
    // was made), but journaled.
    if let Some((finger, print)) = probes
        .iter()
        .find(|(_, p)| p.quality < MIN_SCAN_QUALITY || p.minutiae.len() < MIN_SCAN_MINUTIAE)
    {
        journal(
            audit,
            "delivery.verify",
            json!({"session": session_id, "serial": serial, "finger": finger,
                   "decision": "rescan", "quality": print.quality, "minutiae": print.minutiae.len()}),
        )?;
        return Err(rescan(format!(
            "the scan of finger {finger} is too poor (quality {}, {} minutiae; at least {MIN_SCAN_QUALITY} and {MIN_SCAN_MINUTIAE} needed)",
            print.quality,
            print.minutiae.len()
        ))
        .with_data(json!({"finger": finger, "quality": print.quality, "minutiae": print.minutiae.len()})));
    }

    let compare_start = Instant::now();
    let mut scratch = Scratch::new();
    let mut per_finger = best_scores(&probes, &templates, &mut scratch);
    // One finger: its score. Several: the mean (sum rule), so that one good finger cannot
    // carry an impostor's other fingers (the max rule would raise the false-match rate with
    // every finger added). The mean has its own calibrated threshold (issue 19): the
    // single-finger one is far stricter than its target on fused scores.
    let mut score = fuse(&per_finger, Fusion::Mean);
    let mut threshold = Threshold::calibrated_fused(policy.fmr, per_finger.len());
    timing.comparison = read::ms_since(compare_start);
    // Close to the threshold: the learned extractor's second opinion decides, when configured.
    let mut second_opinion = serde_json::Value::Null;
    if let Some(so) = policy
        .second_opinion
        .as_ref()
        .filter(|so| so.asks(score, threshold.score))
    {
        let start = Instant::now();
        let again: Result<Vec<(u8, matcher::Fingerprint)>, Error> = scans
            .iter()
            .map(|scan| Ok((scan.finger, extract_scan_by(scan, so.extractor.as_ref())?)))
            .collect();
        match again {
            Ok(again) => {
                let first = (score, threshold.score);
                per_finger = best_scores(&again, &templates, &mut scratch);
                score = fuse(&per_finger, Fusion::Mean);
                // Its own extractor's thresholds when the card's templates are its own.
                let own = templates
                    .iter()
                    .all(|t| t.extractor.as_deref() == Some(so.extractor.name()));
                let scale = if own {
                    so.extractor.score_scale()
                } else {
                    ScoreScale::Classical
                };
                threshold = Threshold::calibrated_fused_on(scale, policy.fmr, per_finger.len());
                second_opinion = json!({"extractor": so.extractor.name(), "first_score": first.0,
                                        "first_threshold": first.1, "scale": scale.name(),
                                        "score": score, "finger_scores": per_finger});
            }
            // The second opinion is optional: without it the first decision stands.
            Err(e) => {
                tracing::warn!(error = %e, "second opinion failed; the first decision stands");
                second_opinion = json!({"extractor": so.extractor.name(), "error": e.to_string()});
            }
        }
        timing.second_opinion = read::ms_since(start);
    }
    let accepted = threshold.accepts(score);
    let fingers: Vec<FingerScore> = probes
        .iter()
        .zip(&per_finger)
        .map(|((finger, print), &score)| FingerScore {
            finger: *finger,
            score,
            quality: print.quality,
            minutiae: print.minutiae.len(),
        })
        .collect();

    let finger_list: Vec<u8> = fingers.iter().map(|f| f.finger).collect();
    if !accepted {
        let failed = delivery
            .store
            .add_failed_attempt(&serial)
            .map_err(db_error)?;
        mark_unverified(desk, session_id);
        let attempts_left = policy.max_attempts.saturating_sub(failed);
        journal(
            audit,
            "delivery.verify",
            json!({"session": session_id, "serial": serial, "fingers": finger_list,
                   "score": score, "finger_scores": per_finger,
                   "threshold": threshold.score, "decision": "no_match",
                   "second_opinion": second_opinion,
                   "attempt": failed, "attempts_left": attempts_left}),
        )?;
        return Err(Error::new(
            ErrorKind::NoMatch,
            format!("the live fingerprint does not match the card ({attempts_left} attempts left)"),
        )
        .with_data(json!({"attempts_left": attempts_left})));
    }
    delivery
        .sessions
        .with(session_id, policy.session_ttl, |s| {
            s.verified_at = Some(Instant::now());
            Ok(())
        })?;
    journal(
        audit,
        "delivery.verify",
        json!({"session": session_id, "serial": serial, "fingers": finger_list,
               "score": score, "finger_scores": per_finger,
               "threshold": threshold.score, "decision": "match",
               "second_opinion": second_opinion}),
    )?;
    timing.finish(started);
    Ok(VerifyResult {
        decision: "match",
        target_fmr: threshold.target_fmr,
        fingers,
        attempts_left: policy.max_attempts.saturating_sub(failed),
        activate_within_s: policy.activate_window.as_secs(),
        timing_ms: timing,
    })
}

pub(super) fn rescan(message: String) -> Error {
    Error::new(ErrorKind::Rescan, message)
}

pub(super) fn attempts_exhausted(serial: &str, max: u32) -> Error {
    Error::new(
        ErrorKind::AttemptsExhausted,
        format!("{max} failed fingerprint attempts on this card: a supervisor must check the holder and reset the attempts"),
    )
    .with_data(json!({"serial": serial, "max_attempts": max}))
}

/// A failed or refused verification withdraws an earlier success in the same session.
pub(super) fn mark_unverified(desk: &Desk<'_>, session_id: &str) {
    let ttl = desk.policy.session_ttl;
    let _ = desk.delivery.sessions.with(session_id, ttl, |s| {
        s.verified_at = None;
        Ok(())
    });
}

/// The best score of each live print against the chip's templates of its finger.
fn best_scores(
    probes: &[(u8, matcher::Fingerprint)],
    templates: &[ChipTemplate],
    scratch: &mut Scratch,
) -> Vec<f32> {
    probes
        .iter()
        .map(|(finger, print)| {
            let probe = prepare(print);
            // Templates of exactly this finger; a card written without positions (0) is
            // compared with whatever finger is presented.
            let exact: Vec<&ChipTemplate> =
                templates.iter().filter(|t| t.position == *finger).collect();
            let pool: Vec<&ChipTemplate> = if exact.is_empty() {
                templates.iter().filter(|t| t.position == 0).collect()
            } else {
                exact
            };
            pool.iter()
                .map(|t| compare(&probe, &t.prepared, scratch))
                .fold(0.0f32, f32::max)
        })
        .collect()
}

/// Decodes and extracts one live scan; an image without a usable print is `rescan`.
pub(super) fn extract_scan(scan: &LiveScan) -> Result<matcher::Fingerprint, Error> {
    extract_scan_by(scan, &matcher::extract::Classical::default())
}

/// [`extract_scan`] with another extractor.
fn extract_scan_by(
    scan: &LiveScan,
    extractor: &dyn matcher::extract::MinutiaeExtractor,
) -> Result<matcher::Fingerprint, Error> {
    use crate::scan::ScanError;
    let finger = scan.finger;
    crate::scan::extract_by(&scan.image, scan.dpi, extractor).map_err(|e| match e {
        ScanError::TooLarge { .. } => Error::new(ErrorKind::TooLarge, "the scan is too large"),
        ScanError::Unreadable(e) => Error::invalid(format!(
            "the scan of finger {finger} is not a readable image: {e}"
        )),
        ScanError::NoFingerprint(why) => rescan(format!(
            "no usable fingerprint in the scan of finger {finger}: {why}"
        ))
        .with_data(json!({"finger": finger})),
        ScanError::Unusable(e) => Error::invalid(format!(
            "the scan of finger {finger} cannot be processed: {e}"
        )),
    })
}
