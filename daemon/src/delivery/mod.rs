//! The delivery office: check the holder against the chip, then activate the card; terminate
//! lost cards; unblock PINs.
//!
//! The flow a kiosk drives (each step is an API method in `crate::api`):
//!
//! 1. [`begin`]: under a terminal session, reads EF.COM, every data group it lists and EF.SOD,
//!    runs passive authentication ([`read::passive_auth`]: data group hashes, SOD signature,
//!    DS certificate chained to a trusted CSCA, validity dates), checks the card is
//!    personalized and not yet activated, and opens a [`session::Session`] bound to the reader,
//!    the card serial and the DG3 templates. Returns a [`HolderSummary`].
//! 2. [`verify`]: quality check of the live scan (`rescan` when too poor), extraction,
//!    comparison with the chip's template(s) of that finger, fusion over several fingers, the
//!    decision at the configured false-match rate. Failed attempts are counted per card serial
//!    in [`store::DeliveryStore`] (they survive a restart); at the limit the card needs a
//!    supervisor (`attempts_exhausted`).
//! 3. [`activate`]: only for the same card (serial re-read from the reader), within the
//!    activate window after a successful verify in that session. Replaces the transport PIN
//!    with the holder's PIN (CHANGE REFERENCE DATA) and activates the card (ACTIVATE FILE).
//!
//! **The transport PIN.** Personalization (`crate::personalize`) gives every card a random
//! transport PIN and records it in the PIN mailer file (`state_dir/pin-mailer.jsonl`, see
//! [`crate::personalize::PinMailer`]). `delivery.activate` takes it from the `transport_pin`
//! parameter when the kiosk has it (the holder's PIN letter), else looks it up in the mailer
//! file by serial; without either it refuses with `transport_pin_unknown`.
//!
//! **A card pulled during activation.** Before touching the card, activation records
//! `activation_pending` (store and audit). If the card goes away, the card is still
//! deactivated (possibly with the holder's PIN already set) and the journal says "pending, not
//! delivered": they agree. The activation is completed by calling `delivery.activate` again
//! (same session within the window, or a new begin + verify): ACTIVATE FILE is tried first, so
//! a PIN changed by the interrupted attempt is not asked for again; if the card turns out to
//! be activated already (the card finished but the answer was lost), the journal is completed
//! with `delivered` (`recovered: true`).
//!
//! Every step is journaled in the tamper-evident [`crate::audit`] log with identifiers, scores
//! and decisions only: never names, PINs, scans or templates.

use std::time::{Instant, SystemTime};

use apdu::card::PinError;
use apdu::fcp::LifeCycle;
use apdu::sm::AesKey;
use apdu::StatusWord;
use base64::Engine as _;
use matcher::compare::{compare, fuse, prepare, Fusion, Scratch, Threshold};
use serde::Serialize;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::api::{ApiError, ErrorCode};
use crate::audit::AuditLog;
use crate::lds;
use crate::service::Service;

pub mod read;
pub mod session;
pub mod store;

pub use session::{ChipTemplate, Session, Sessions};
pub use store::{CardRecord, DeliveryStore};

/// Scans below this image quality (0-100, `matcher` quality) are refused with `rescan`.
pub const MIN_SCAN_QUALITY: u8 = 20;
/// Scans with fewer reliable minutiae are refused with `rescan`.
pub const MIN_SCAN_MINUTIAE: usize = 12;
/// Resolution assumed for a scan when the request gives none.
pub const DEFAULT_SCAN_DPI: u32 = 500;
/// Largest scan accepted (bytes of the encoded image).
pub const MAX_SCAN_BYTES: usize = 4 * 1024 * 1024;
/// PIN mailer file (written by batch personalization) inside the state directory.
pub const PIN_MAILER_FILE: &str = crate::batch::PIN_MAILER_FILE;

/// Delivery state the service keeps: open sessions and the per-card store.
#[derive(Debug)]
pub struct Delivery {
    /// Open delivery sessions (memory only).
    pub sessions: Sessions,
    /// Per-card attempts, pending activations, delivered/terminated (SQLite).
    pub store: DeliveryStore,
}

impl Delivery {
    /// Opens the store in `state_dir`.
    pub fn open(state_dir: &std::path::Path) -> anyhow::Result<Delivery> {
        Ok(Delivery {
            sessions: Sessions::default(),
            store: DeliveryStore::open(state_dir).map_err(|e| {
                anyhow::anyhow!("opening {}: {e}", state_dir.join(store::DB_FILE).display())
            })?,
        })
    }
}

/// The terminal master key the card's key 02 is diversified from. The simulated card's public
/// test key until the key store exists (like `crate::personalize::PersoKeys::test`).
pub fn terminal_key() -> AesKey {
    AesKey::test_terminal_master()
}

/// The decision threshold for a target false-match rate: the strictest calibrated threshold
/// whose target is at or below `fmr` (the calibrated set is 1 %, 0.1 %, 0.01 %; see
/// `matcher::compare::Threshold` and `docs/matcher.md`). Calibrated on single-finger impostor
/// scores.
pub fn threshold_for(fmr: f64) -> Threshold {
    [
        Threshold::FMR_1_PERCENT,
        Threshold::FMR_0_1_PERCENT,
        Threshold::FMR_0_01_PERCENT,
    ]
    .into_iter()
    .find(|t| t.target_fmr <= fmr + 1e-12)
    .unwrap_or(Threshold::FMR_0_01_PERCENT)
}

fn db_error(e: rusqlite::Error) -> ApiError {
    ApiError::internal(format!("delivery store: {e}"))
}

/// Tells the production journal (what `status.lookup` answers from) the card's new state. A
/// card this daemon did not produce is not in its journal: that is not an error here.
fn set_journal_state(
    svc: &Service,
    serial: &str,
    state: crate::journal::CardState,
    reason: Option<&str>,
) -> Result<(), ApiError> {
    match svc.batches.journal().set_card_state(serial, state, reason) {
        Ok(()) | Err(crate::journal::JournalError::NotFound(_)) => Ok(()),
        Err(e) => Err(ApiError::internal(format!("production journal: {e}"))),
    }
}

/// Appends to the audit log; a journal that cannot be written stops the operation.
fn journal(audit: &AuditLog, kind: &str, details: Value) -> Result<(), ApiError> {
    audit
        .append(kind, details)
        .map(|_| ())
        .map_err(|e| ApiError::internal(format!("audit log: {e}")))
}

fn lcs_name(lcs: LifeCycle) -> &'static str {
    match lcs {
        LifeCycle::Creation => "creation",
        LifeCycle::Initialisation => "initialisation",
        LifeCycle::Deactivated => "deactivated",
        LifeCycle::Activated => "activated",
        l if l.is_terminated() => "terminated",
        _ => "unknown",
    }
}

/// Times of one step, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timing {
    /// APDUs: authentication and reading (begin) or PIN change and activation (activate).
    pub card_io: f64,
    /// Passive authentication (begin).
    pub passive_auth: f64,
    /// Decoding and preparing templates (begin), or decoding the scan and extracting it
    /// (verify).
    pub extraction: f64,
    /// Comparisons and fusion (verify).
    pub comparison: f64,
    /// The rest: audit journal appends (fsynced), delivery store, sessions, trust list
    /// loading.
    pub other: f64,
    /// The whole method.
    pub total: f64,
}

impl Timing {
    /// Sets `total` from `started` and `other` as what the named parts do not cover.
    fn finish(&mut self, started: Instant) {
        self.total = read::ms_since(started);
        let parts = self.card_io + self.passive_auth + self.extraction + self.comparison;
        self.other = (self.total - parts).max(0.0);
    }
}

/// The holder as the operator sees it at begin.
#[derive(Debug, Clone, Serialize)]
pub struct HolderSummary {
    /// Document number (DG1).
    pub document_number: String,
    /// Surname in Latin characters (DG1 MRZ).
    pub surname_latin: String,
    /// Given names in Latin characters (DG1 MRZ).
    pub given_names_latin: String,
    /// Surname in national characters (DG11), when present.
    pub surname: Option<String>,
    /// Given names in national characters (DG11), when present.
    pub given_names: Option<String>,
    /// Date of birth, YYYY-MM-DD (DG11 full date when present, else the MRZ).
    pub birth_date: String,
    /// Date of expiry, YYYY-MM-DD (MRZ).
    pub expiry_date: String,
    /// Sex (MRZ character).
    pub sex: String,
    /// Nationality (MRZ).
    pub nationality: String,
    /// Finger positions the card holds templates for (ISO/IEC 19794-2: 1-5 right thumb to
    /// little, 6-10 left; 0 unknown).
    pub fingers: Vec<u8>,
    /// The face image (DG2), when present: format and size; the bytes travel in binary
    /// frame 0 of the reply.
    pub face: Option<FaceSummary>,
}

/// The face image's description (the bytes are a reply frame).
#[derive(Debug, Clone, Serialize)]
pub struct FaceSummary {
    /// `jpeg` or `jpeg2000`.
    pub format: &'static str,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// Bytes of the encoded image.
    pub bytes: usize,
    /// Index of the binary frame that carries it.
    pub frame: usize,
}

fn date(d: lds::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year, d.month, d.day)
}

/// What `delivery.begin` answers.
#[derive(Debug, Serialize)]
pub struct BeginResult {
    /// The delivery session for verify and activate.
    pub session: String,
    /// The reader.
    pub reader: String,
    /// Card serial (hex).
    pub serial: String,
    /// The holder.
    pub holder: HolderSummary,
    /// Passive authentication: who signed, which data groups were checked.
    pub passive_auth: Value,
    /// Verification attempts left on this card.
    pub attempts_left: u32,
    /// An earlier activation of this card was interrupted: activate completes it.
    pub activation_pending: bool,
    /// Time split.
    pub timing_ms: Timing,
}

/// The face image bytes to send as reply frame 0, if any.
pub type FaceFrame = Option<Vec<u8>>;

/// Reads and authenticates the card in `reader` and opens a delivery session.
pub fn begin(svc: &Service, reader: &str) -> Result<(BeginResult, FaceFrame), ApiError> {
    let started = Instant::now();
    let delivery = &svc.delivery;
    let audit = &*svc.audit;
    let mut timing = Timing::default();
    let (serial, lcs, files) = svc.readers.with_card(reader, |card| {
        let lcs = card.open_application()?;
        let serial = hex::encode_upper(card.serial()?);
        let files = if lcs == LifeCycle::Deactivated {
            let mut session = card.authenticate_terminal(&terminal_key())?;
            Some(read::read_files(&mut session)?)
        } else {
            None
        };
        Ok((serial, lcs, files))
    })?;
    timing.card_io = read::ms_since(started);
    let record = delivery.store.card(&serial).map_err(db_error)?;
    let Some(files) = files else {
        return Err(refuse_state(svc, &serial, lcs, &record, None)?);
    };

    let pa_start = Instant::now();
    let trust = read::load_trust(&svc.config.trust)?;
    let pa = read::passive_auth(&files, &trust, SystemTime::now());
    timing.passive_auth = read::ms_since(pa_start);
    let pa = match pa {
        Ok(pa) => pa,
        Err(e) => {
            let reason = e
                .data
                .as_ref()
                .and_then(|d| d.get("reason").cloned())
                .unwrap_or(Value::Null);
            journal(
                audit,
                "delivery.pa_failed",
                json!({"serial": serial, "reader": reader, "reason": reason}),
            )?;
            return Err(e);
        }
    };

    let summary_start = Instant::now();
    let (holder, face, templates) = summarize(&files)?;
    timing.extraction = read::ms_since(summary_start);
    delivery
        .store
        .set_document_number(&serial, &holder.document_number)
        .map_err(db_error)?;
    let session = delivery.sessions.open(
        reader,
        &serial,
        &holder.document_number,
        templates,
        svc.config.delivery.session_ttl,
    )?;
    journal(
        audit,
        "delivery.begin",
        json!({
            "session": session,
            "serial": serial,
            "reader": reader,
            "document_number": holder.document_number,
            "pa": "ok",
            "ds": pa.ds_subject,
        }),
    )?;
    let max = svc.config.delivery.max_attempts;
    timing.finish(started);
    Ok((
        BeginResult {
            session,
            reader: reader.to_string(),
            serial,
            holder,
            passive_auth: json!({
                "ds_subject": pa.ds_subject,
                "csca_subject": pa.csca_subject,
                "checked": pa.checked,
            }),
            attempts_left: max.saturating_sub(record.failed_attempts),
            activation_pending: record.activation_pending.is_some(),
            timing_ms: timing,
        },
        face,
    ))
}

/// The refusal for a card that is not waiting for delivery. An activated card whose
/// activation was pending gets its journal completed first (the card finished, the answer
/// was lost).
fn refuse_state(
    svc: &Service,
    serial: &str,
    lcs: LifeCycle,
    record: &CardRecord,
    session: Option<&str>,
) -> Result<ApiError, ApiError> {
    if lcs == LifeCycle::Activated && record.activation_pending.is_some() {
        complete_recovered(svc, serial, record, session)?;
    }
    let (code, message) = match lcs {
        LifeCycle::Activated => (ErrorCode::AlreadyDelivered, "the card is already activated"),
        l if l.is_terminated() => (ErrorCode::CardTerminated, "the card is terminated"),
        _ => (
            ErrorCode::WrongCardState,
            "the card is not personalized (nothing to deliver)",
        ),
    };
    Ok(ApiError::new(code, message)
        .with_data(json!({"serial": serial, "life_cycle": lcs_name(lcs)})))
}

/// Journals `delivered` for a card found activated while its activation was pending.
fn complete_recovered(
    svc: &Service,
    serial: &str,
    record: &CardRecord,
    session: Option<&str>,
) -> Result<(), ApiError> {
    svc.delivery
        .store
        .mark_delivered(serial)
        .map_err(db_error)?;
    set_journal_state(svc, serial, crate::journal::CardState::Delivered, None)?;
    journal(
        &svc.audit,
        "delivered",
        json!({
            "serial": serial,
            "session": session.or(record.activation_pending.as_deref()),
            "document_number": record.document_number,
            "recovered": true,
        }),
    )?;
    svc.events.publish(
        "card.delivered",
        json!({"serial": serial, "recovered": true}),
    );
    Ok(())
}

/// Holder summary, face frame and prepared templates from the (authenticated) files.
fn summarize(
    files: &read::ChipFiles,
) -> Result<(HolderSummary, FaceFrame, Vec<ChipTemplate>), ApiError> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        ApiError::new(
            ErrorCode::CardError,
            format!("{what} on the chip is unreadable: {e}"),
        )
    };
    let dg1 = files
        .data_group(1)
        .ok_or_else(|| ApiError::new(ErrorCode::CardError, "the card has no DG1"))?;
    let mrz = lds::mrz::parse_dg1(dg1).map_err(|e| bad("DG1", &e))?;
    let details = files
        .data_group(11)
        .map(lds::details::parse_dg11)
        .transpose()
        .map_err(|e| bad("DG11", &e))?;
    let face = files
        .data_group(2)
        .map(lds::biometric::parse_dg2)
        .transpose()
        .map_err(|e| bad("DG2", &e))?
        .and_then(|faces| faces.into_iter().next());
    let fingers = files
        .data_group(3)
        .map(lds::biometric::parse_dg3)
        .transpose()
        .map_err(|e| bad("DG3", &e))?
        .unwrap_or_default();
    let mut templates = Vec::with_capacity(fingers.len());
    for f in &fingers {
        let (_, record) =
            matcher::template::decode_any(&f.iso_record).map_err(|e| bad("a DG3 template", &e))?;
        for print in record.fingerprints() {
            templates.push(ChipTemplate {
                position: f.position,
                minutiae: print.minutiae.len(),
                prepared: prepare(&print),
            });
        }
    }
    let mut positions: Vec<u8> = fingers.iter().map(|f| f.position).collect();
    positions.sort_unstable();
    positions.dedup();
    let face_summary = face.as_ref().map(|f| FaceSummary {
        format: match f.format {
            lds::ImageFormat::Jpeg => "jpeg",
            lds::ImageFormat::Jpeg2000 => "jpeg2000",
        },
        width: f.width,
        height: f.height,
        bytes: f.data.len(),
        frame: 0,
    });
    let birth_date = details
        .as_ref()
        .map(|d| d.birth_date)
        .unwrap_or(mrz.birth_date);
    let holder = HolderSummary {
        document_number: mrz.document_number.clone(),
        surname_latin: mrz.surname.clone(),
        given_names_latin: mrz.given_names.clone(),
        surname: details.as_ref().map(|d| d.surname.clone()),
        given_names: details.as_ref().map(|d| d.given_names.clone()),
        birth_date: date(birth_date),
        expiry_date: date(mrz.expiry_date),
        sex: mrz.sex.mrz_char().to_string(),
        nationality: mrz.nationality.clone(),
        fingers: positions,
        face: face_summary,
    };
    Ok((holder, face.map(|f| f.data), templates))
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
pub fn scan_from_base64(text: &str) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    if text.len() > MAX_SCAN_BYTES * 4 / 3 + 4 {
        return Err(ApiError::new(ErrorCode::TooLarge, "the scan is too large"));
    }
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map(Zeroizing::new)
        .map_err(|e| ApiError::new(ErrorCode::InvalidParams, format!("scan is not base64: {e}")))
}

/// What `delivery.verify` answers on a match.
#[derive(Debug, Serialize)]
pub struct VerifyResult {
    /// `match`.
    pub decision: &'static str,
    /// The fused score.
    pub score: f32,
    /// The threshold it passed.
    pub threshold: f32,
    /// Target false-match rate of the threshold.
    pub target_fmr: f64,
    /// Per finger: position, best score against the chip's templates of that finger.
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
    /// Best score against the chip's templates of that finger.
    pub score: f32,
    /// Image quality of the live scan (0-100).
    pub quality: u8,
    /// Minutiae extracted from the live scan.
    pub minutiae: usize,
}

/// Marks the session as not verifying any more, whatever happens.
struct VerifyingGuard<'a> {
    svc: &'a Service,
    session: &'a str,
}

impl Drop for VerifyingGuard<'_> {
    fn drop(&mut self) {
        let ttl = self.svc.config.delivery.session_ttl;
        let _ = self.svc.delivery.sessions.with(self.session, ttl, |s| {
            s.verifying = false;
            Ok(())
        });
    }
}

/// Verifies live scans against the chip templates of session `session_id`.
pub fn verify(
    svc: &Service,
    session_id: &str,
    scans: &[LiveScan],
) -> Result<VerifyResult, ApiError> {
    let started = Instant::now();
    let policy = &svc.config.delivery;
    let delivery = &svc.delivery;
    let audit = &*svc.audit;
    if scans.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidParams, "no scan given"));
    }
    let (serial, templates) = delivery
        .sessions
        .with(session_id, policy.session_ttl, |s| {
            if s.verifying {
                return Err(ApiError::new(
                    ErrorCode::Busy,
                    "a verification of this session is already running",
                ));
            }
            s.verifying = true;
            Ok((s.serial.clone(), s.templates.clone()))
        })?;
    let _guard = VerifyingGuard {
        svc,
        session: session_id,
    };
    let failed = delivery
        .store
        .card(&serial)
        .map_err(db_error)?
        .failed_attempts;
    if failed >= policy.max_attempts {
        mark_unverified(svc, session_id);
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
            return Err(ApiError::new(
                ErrorCode::FingerNotEnrolled,
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
    let mut fingers = Vec::with_capacity(probes.len());
    for (finger, print) in &probes {
        let probe = prepare(print);
        // Templates of exactly this finger; a card written without positions (0) is compared
        // with whatever finger is presented.
        let exact: Vec<&ChipTemplate> =
            templates.iter().filter(|t| t.position == *finger).collect();
        let pool: Vec<&ChipTemplate> = if exact.is_empty() {
            templates.iter().filter(|t| t.position == 0).collect()
        } else {
            exact
        };
        let best = pool
            .iter()
            .map(|t| compare(&probe, &t.prepared, &mut scratch))
            .fold(0.0f32, f32::max);
        fingers.push(FingerScore {
            finger: *finger,
            score: best,
            quality: print.quality,
            minutiae: print.minutiae.len(),
        });
    }
    let per_finger: Vec<f32> = fingers.iter().map(|f| f.score).collect();
    // One finger: its score. Several: the mean (sum rule), so that one good finger cannot
    // carry an impostor's other fingers (the max rule would raise the false-match rate with
    // every finger added).
    let score = fuse(&per_finger, Fusion::Mean);
    let threshold = threshold_for(policy.fmr);
    let accepted = threshold.accepts(score);
    timing.comparison = read::ms_since(compare_start);

    let finger_list: Vec<u8> = fingers.iter().map(|f| f.finger).collect();
    if !accepted {
        let failed = delivery
            .store
            .add_failed_attempt(&serial)
            .map_err(db_error)?;
        mark_unverified(svc, session_id);
        let attempts_left = policy.max_attempts.saturating_sub(failed);
        journal(
            audit,
            "delivery.verify",
            json!({"session": session_id, "serial": serial, "fingers": finger_list,
                   "score": score, "threshold": threshold.score, "decision": "no_match",
                   "attempt": failed, "attempts_left": attempts_left}),
        )?;
        return Err(ApiError::new(
            ErrorCode::NoMatch,
            format!("the live fingerprint does not match the card ({attempts_left} attempts left)"),
        )
        .with_data(
            json!({"score": score, "threshold": threshold.score, "attempts_left": attempts_left}),
        ));
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
               "score": score, "threshold": threshold.score, "decision": "match"}),
    )?;
    timing.finish(started);
    Ok(VerifyResult {
        decision: "match",
        score,
        threshold: threshold.score,
        target_fmr: threshold.target_fmr,
        fingers,
        attempts_left: policy.max_attempts.saturating_sub(failed),
        activate_within_s: policy.activate_window.as_secs(),
        timing_ms: timing,
    })
}

fn rescan(message: String) -> ApiError {
    ApiError::new(ErrorCode::Rescan, message)
}

fn attempts_exhausted(serial: &str, max: u32) -> ApiError {
    ApiError::new(
        ErrorCode::AttemptsExhausted,
        format!("{max} failed fingerprint attempts on this card: a supervisor must check the holder and reset the attempts"),
    )
    .with_data(json!({"serial": serial, "max_attempts": max}))
}

/// A failed or refused verification withdraws an earlier success in the same session.
fn mark_unverified(svc: &Service, session_id: &str) {
    let ttl = svc.config.delivery.session_ttl;
    let _ = svc.delivery.sessions.with(session_id, ttl, |s| {
        s.verified_at = None;
        Ok(())
    });
}

/// Decodes and extracts one live scan; an image without a usable print is `rescan`.
fn extract_scan(scan: &LiveScan) -> Result<matcher::Fingerprint, ApiError> {
    if scan.image.len() > MAX_SCAN_BYTES {
        return Err(ApiError::new(ErrorCode::TooLarge, "the scan is too large"));
    }
    let image = matcher::image::GrayImage::decode(&scan.image).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidParams,
            format!(
                "the scan of finger {} is not a readable image: {e}",
                scan.finger
            ),
        )
    })?;
    match matcher::extract::extract(&image, scan.dpi) {
        Ok(print) => Ok(print),
        Err(matcher::Error::NoUsableFingerprint(why)) => Err(rescan(format!(
            "no usable fingerprint in the scan of finger {}: {why}",
            scan.finger
        ))
        .with_data(json!({"finger": scan.finger}))),
        Err(e) => Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!(
                "the scan of finger {} cannot be processed: {e}",
                scan.finger
            ),
        )),
    }
}

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
fn transport_pin(
    svc: &Service,
    serial: &str,
    given: Option<Zeroizing<String>>,
) -> Result<Zeroizing<String>, ApiError> {
    if let Some(pin) = given {
        return Ok(pin);
    }
    let path = svc.config.state_dir.join(PIN_MAILER_FILE);
    let found = if path.is_file() {
        crate::personalize::PinMailer::lookup(&path, serial)
            .map_err(|e| ApiError::internal(format!("PIN mailer: {e}")))?
    } else {
        None
    };
    found.map(|s| s.transport_pin.clone()).ok_or_else(|| {
        ApiError::new(
            ErrorCode::TransportPinUnknown,
            "the card's transport PIN is not on record here: give it (transport_pin, from the holder's PIN letter)",
        )
    })
}

/// Checks the session binding, then sets the holder's PIN and activates the card.
pub fn activate(
    svc: &Service,
    session_id: &str,
    new_pin: Zeroizing<String>,
    given_transport_pin: Option<Zeroizing<String>>,
) -> Result<ActivateResult, ApiError> {
    let started = Instant::now();
    let policy = &svc.config.delivery;
    let delivery = &svc.delivery;
    let audit = &*svc.audit;
    if !apdu::card::PIN_LEN.contains(&new_pin.len()) || !new_pin.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!(
                "new_pin must be {} to {} digits",
                apdu::card::PIN_LEN.start(),
                apdu::card::PIN_LEN.end()
            ),
        ));
    }
    let refuse = |code: ErrorCode, message: String, serial: &str| -> Result<ApiError, ApiError> {
        journal(
            audit,
            "delivery.activate_refused",
            json!({"session": session_id, "serial": serial, "reason": code.name()}),
        )?;
        Ok(ApiError::new(code, message).with_data(json!({"session": session_id})))
    };
    // The binding lives here: the session must exist, be open, and have a recent successful
    // verification.
    let bound = delivery.sessions.with(session_id, policy.session_ttl, |s| {
        Ok((
            s.reader.clone(),
            s.serial.clone(),
            s.document_number.clone(),
            s.verified_at,
        ))
    });
    let (reader, serial, document_number, verified_at) = match bound {
        Ok(b) => b,
        Err(e) => return Err(refuse(e.code, e.message, "")?),
    };
    let Some(verified_at) = verified_at else {
        return Err(refuse(
            ErrorCode::NotVerified,
            "no successful fingerprint verification in this session".into(),
            &serial,
        )?);
    };
    if verified_at.elapsed() > policy.activate_window {
        return Err(refuse(
            ErrorCode::VerifyWindowPassed,
            format!(
                "the verification is older than {} s: verify again",
                policy.activate_window.as_secs()
            ),
            &serial,
        )?);
    }
    let pin = transport_pin(svc, &serial, given_transport_pin)?;
    let record = delivery.store.card(&serial).map_err(db_error)?;
    let was_pending = record.activation_pending.is_some();

    let io_start = Instant::now();
    let outcome = svc.readers.with_card(&reader, |card| {
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
        let mut session = card.authenticate_terminal(&terminal_key())?;
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
        Err(e) if e.code == ErrorCode::CardRemoved || e.code == ErrorCode::NoCard => {
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
                    json!({"session": session_id, "serial": serial, "reason": e.code.name()}),
                )?;
            }
            return Err(e.with_data(json!({"serial": serial, "activation_pending": pending})));
        }
        Err(e) => return Err(e),
    };
    let (pin_already_set, recovered) = match step {
        Step::Swapped(other) => {
            return Err(refuse(
                ErrorCode::CardSwapped,
                "the card in the reader is not the one verified in this session".into(),
                &serial,
            )?
            .with_data(json!({"session": session_id, "expected": serial, "found": other})));
        }
        Step::WrongState(lcs) => {
            return Err(refuse_state(svc, &serial, lcs, &record, Some(session_id))?);
        }
        Step::PinRejected { tries_left } => {
            delivery.store.clear_pending(&serial).map_err(db_error)?;
            journal(
                audit,
                "activation_failed",
                json!({"session": session_id, "serial": serial, "reason": "pin_rejected", "tries_left": tries_left}),
            )?;
            return Err(ApiError::new(
                ErrorCode::PinRejected,
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
            return Err(ApiError::new(
                ErrorCode::PinBlocked,
                "the card's PIN is blocked: unblock it with the PUK (card.unblock)",
            ));
        }
        Step::FoundActivated => (true, true),
        Step::Activated { pin_already_set } => (pin_already_set, false),
    };
    delivery.store.mark_delivered(&serial).map_err(db_error)?;
    set_journal_state(svc, &serial, crate::journal::CardState::Delivered, None)?;
    journal(
        audit,
        "delivered",
        json!({"session": session_id, "serial": serial, "document_number": document_number,
               "reader": reader, "recovered": recovered, "pin_already_set": pin_already_set}),
    )?;
    delivery.sessions.close(session_id);
    svc.events.publish(
        "card.delivered",
        json!({"reader": reader, "serial": serial, "recovered": recovered}),
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
    svc: &Service,
    reader: &str,
    reason: TerminateReason,
) -> Result<TerminateResult, ApiError> {
    let (serial, was) = svc.readers.with_card(reader, |card| {
        let lcs = card.open_application()?;
        let serial = hex::encode_upper(card.serial()?);
        if lcs.is_terminated() {
            return Err(
                ApiError::new(ErrorCode::CardTerminated, "the card is terminated already")
                    .with_data(json!({"serial": serial})),
            );
        }
        let mut session = card.authenticate_terminal(&terminal_key())?;
        session
            .channel()
            .transmit_ok(&apdu::commands::terminate_card_usage())?;
        drop(session);
        // Read back: the journal must say what the card says.
        let now = card.life_cycle()?;
        if !now.is_terminated() {
            return Err(ApiError::new(
                ErrorCode::CardError,
                format!(
                    "the card accepted TERMINATE CARD USAGE but reports {}",
                    lcs_name(now)
                ),
            ));
        }
        Ok((serial, lcs))
    })?;
    svc.delivery
        .store
        .mark_terminated(&serial, reason.name())
        .map_err(db_error)?;
    set_journal_state(
        svc,
        &serial,
        crate::journal::CardState::Terminated,
        Some(reason.name()),
    )?;
    journal(
        &svc.audit,
        "terminated",
        json!({"serial": serial, "reader": reader, "reason": reason.name(), "was": lcs_name(was)}),
    )?;
    svc.events.publish(
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
    svc: &Service,
    reader: &str,
    puk: Zeroizing<String>,
    new_pin: Zeroizing<String>,
) -> Result<Value, ApiError> {
    let result = svc.readers.with_card(reader, |card| {
        let serial = hex::encode_upper(card.serial()?);
        let lcs = card.life_cycle()?;
        if lcs.is_terminated() {
            return Ok((serial, Err((ErrorCode::CardTerminated, None))));
        }
        match card.unblock(puk.as_bytes(), new_pin.as_bytes()) {
            Ok(()) => Ok((serial, Ok(()))),
            Err(PinError::Wrong { tries_left }) => {
                Ok((serial, Err((ErrorCode::PinRejected, Some(tries_left)))))
            }
            Err(PinError::Blocked) => Ok((serial, Err((ErrorCode::PinBlocked, None)))),
            Err(PinError::Card(apdu::Error::Usage(why))) => {
                Err(ApiError::new(ErrorCode::InvalidParams, why))
            }
            Err(PinError::Card(apdu::Error::Status(StatusWord::ConditionsNotSatisfied))) => {
                Err(ApiError::new(
                    ErrorCode::WrongCardState,
                    "the card cannot be unblocked in its life-cycle state",
                ))
            }
            Err(PinError::Card(e)) => Err(e.into()),
        }
    })?;
    let (serial, outcome) = result;
    let audit = &*svc.audit;
    match outcome {
        Ok(()) => {
            journal(
                audit,
                "unblocked",
                json!({"serial": serial, "reader": reader}),
            )?;
            svc.events.publish(
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
                ErrorCode::PinRejected => format!(
                    "the card refused the PUK ({} tries left)",
                    tries_left.unwrap_or(0)
                ),
                ErrorCode::PinBlocked => "the PUK is blocked: the card must be replaced".into(),
                _ => "the card is terminated".into(),
            };
            Err(ApiError::new(code, message)
                .with_data(json!({"serial": serial, "tries_left": tries_left})))
        }
    }
}

/// Delivery state of a card for status lookups: `delivered`, `terminated`,
/// `activation_pending`, `in_delivery` (attempts made) or `None` when delivery never saw it.
pub fn card_status(svc: &Service, serial: &str) -> Result<Option<CardRecord>, ApiError> {
    let rec = svc.delivery.store.card(serial).map_err(db_error)?;
    let seen = rec.failed_attempts > 0
        || rec.activation_pending.is_some()
        || rec.delivered_ms.is_some()
        || rec.terminated_ms.is_some()
        || rec.document_number.is_some();
    Ok(seen.then_some(rec))
}
