//! Stable error codes of the API. Codes and names never change meaning once released: kiosk
//! applications switch on them. JSON-RPC reserves -32768..-32000; ours are positive.

use issuance::ErrorKind;
use serde::Serialize;
use serde_json::Value;

/// Why a request was refused. `code()` and `name()` are the stable identifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The message is not valid JSON.
    ParseError,
    /// Valid JSON but not a JSON-RPC 2.0 request object.
    InvalidRequest,
    /// No such method.
    MethodNotFound,
    /// Params missing, of the wrong type, or invalid.
    InvalidParams,
    /// A bug or an unexpected failure inside the daemon.
    Internal,
    /// Too much work in progress (overall or on that reader): try again later.
    Busy,
    /// The request did not finish within its time limit.
    Timeout,
    /// The message is larger than the configured maximum.
    TooLarge,
    /// The daemon is shutting down.
    ShuttingDown,
    /// No reader with that name is configured.
    ReaderNotFound,
    /// pcscd is not running.
    NoService,
    /// The reader has no card.
    NoCard,
    /// The card was removed (or reset) during the operation.
    CardRemoved,
    /// The card answered with an unexpected status word or malformed data.
    CardError,
    /// The card is not in the life-cycle state the operation needs.
    WrongCardState,
    /// The applicant record failed data QC (every problem is in `data.problems`).
    QcFailed,
    /// The card (or the record) was personalized already; nothing was overwritten.
    AlreadyPersonalized,
    /// No such object (batch, record, tracking code, session, ...).
    NotFound,
    /// The scan holds no usable fingerprint (blank, too small, smudged): scan the finger again.
    NoFingerprint,
    /// The card failed passive authentication (`data.reason`: tampered_data_group, unknown_csca, expired_ds, ...): its data cannot be trusted.
    PaFailed,
    /// The card is activated already: nothing to deliver.
    AlreadyDelivered,
    /// The card is terminated (lost, stolen, replaced): it refuses service for good.
    CardTerminated,
    /// No such delivery session: unknown, already used for an activation, or the daemon restarted.
    SessionUnknown,
    /// The delivery session expired without activity: start again with `delivery.begin`.
    SessionExpired,
    /// The live scan is too poor to compare (quality, minutiae, no print): scan the finger again.
    Rescan,
    /// The live fingerprint does not match the card (`data.attempts_left`).
    NoMatch,
    /// Too many failed fingerprint attempts on this card: a supervisor must check the holder.
    AttemptsExhausted,
    /// The card holds no template of the finger presented (`data.enrolled` lists those it has).
    FingerNotEnrolled,
    /// Activation without a successful fingerprint verification in the session (none, or the last one failed).
    NotVerified,
    /// The successful verification is older than the activate window: verify again.
    VerifyWindowPassed,
    /// The card in the reader is not the card verified in the session.
    CardSwapped,
    /// The card refused the PIN or PUK (`data.tries_left`).
    PinRejected,
    /// The PIN (or PUK) is blocked.
    PinBlocked,
    /// The card's transport PIN is not on record and was not given.
    TransportPinUnknown,
    /// The issuer's key store (HSM token) does not answer: retry once it is back.
    KeyStoreUnavailable,
    /// The journal's database (the line's PostgreSQL server) does not answer: retry once it
    /// is back.
    JournalUnavailable,
    /// The card was reported lost or stolen: not handed over.
    CardRevoked,
    /// A newer card of the same holder was delivered: not handed over.
    CardSuperseded,
    /// The card's validity ended: not handed over.
    CardExpired,
    /// The card was not received at this office.
    CardNotAtOffice,
    /// A dispatch names cards that cannot go; `data.problems` says which and why.
    DispatchRefused,
    /// A dispatch received at an office it was not sent to.
    WrongOffice,
    /// A household handover of a card outside the head's household.
    NotInHousehold,
    /// The kind wants each member's own finger.
    MemberVerificationRequired,
}

impl ErrorCode {
    /// The numeric code sent as `error.code`.
    pub fn code(self) -> i64 {
        match self {
            ErrorCode::ParseError => -32700,
            ErrorCode::InvalidRequest => -32600,
            ErrorCode::MethodNotFound => -32601,
            ErrorCode::InvalidParams => -32602,
            ErrorCode::Internal => -32603,
            ErrorCode::Busy => 1000,
            ErrorCode::Timeout => 1001,
            ErrorCode::TooLarge => 1002,
            ErrorCode::ShuttingDown => 1003,
            ErrorCode::ReaderNotFound => 1100,
            ErrorCode::NoService => 1101,
            ErrorCode::NoCard => 1102,
            ErrorCode::CardRemoved => 1103,
            ErrorCode::CardError => 1104,
            ErrorCode::WrongCardState => 1105,
            ErrorCode::QcFailed => 1200,
            ErrorCode::AlreadyPersonalized => 1201,
            ErrorCode::NotFound => 1300,
            ErrorCode::NoFingerprint => 1400,
            ErrorCode::PaFailed => 1500,
            ErrorCode::AlreadyDelivered => 1501,
            ErrorCode::CardTerminated => 1502,
            ErrorCode::SessionUnknown => 1503,
            ErrorCode::SessionExpired => 1504,
            ErrorCode::Rescan => 1505,
            ErrorCode::NoMatch => 1506,
            ErrorCode::AttemptsExhausted => 1507,
            ErrorCode::FingerNotEnrolled => 1508,
            ErrorCode::NotVerified => 1509,
            ErrorCode::VerifyWindowPassed => 1510,
            ErrorCode::CardSwapped => 1511,
            ErrorCode::PinRejected => 1512,
            ErrorCode::PinBlocked => 1513,
            ErrorCode::TransportPinUnknown => 1514,
            ErrorCode::KeyStoreUnavailable => 1004,
            ErrorCode::JournalUnavailable => 1005,
            ErrorCode::CardRevoked => 1515,
            ErrorCode::CardSuperseded => 1516,
            ErrorCode::CardExpired => 1517,
            ErrorCode::CardNotAtOffice => 1518,
            ErrorCode::DispatchRefused => 1519,
            ErrorCode::WrongOffice => 1520,
            ErrorCode::NotInHousehold => 1521,
            ErrorCode::MemberVerificationRequired => 1522,
        }
    }

    /// The stable snake_case name sent as `error.data.name`.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCode::ParseError => "parse_error",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::MethodNotFound => "method_not_found",
            ErrorCode::InvalidParams => "invalid_params",
            ErrorCode::Internal => "internal",
            ErrorCode::Busy => "busy",
            ErrorCode::Timeout => "timeout",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::ShuttingDown => "shutting_down",
            ErrorCode::ReaderNotFound => "reader_not_found",
            ErrorCode::NoService => "no_service",
            ErrorCode::NoCard => "no_card",
            ErrorCode::CardRemoved => "card_removed",
            ErrorCode::CardError => "card_error",
            ErrorCode::WrongCardState => "wrong_card_state",
            ErrorCode::QcFailed => "qc_failed",
            ErrorCode::AlreadyPersonalized => "already_personalized",
            ErrorCode::NotFound => "not_found",
            ErrorCode::NoFingerprint => "no_fingerprint",
            ErrorCode::PaFailed => "pa_failed",
            ErrorCode::AlreadyDelivered => "already_delivered",
            ErrorCode::CardTerminated => "card_terminated",
            ErrorCode::SessionUnknown => "session_unknown",
            ErrorCode::SessionExpired => "session_expired",
            ErrorCode::Rescan => "rescan",
            ErrorCode::NoMatch => "no_match",
            ErrorCode::AttemptsExhausted => "attempts_exhausted",
            ErrorCode::FingerNotEnrolled => "finger_not_enrolled",
            ErrorCode::NotVerified => "not_verified",
            ErrorCode::VerifyWindowPassed => "verify_window_passed",
            ErrorCode::CardSwapped => "card_swapped",
            ErrorCode::PinRejected => "pin_rejected",
            ErrorCode::PinBlocked => "pin_blocked",
            ErrorCode::TransportPinUnknown => "transport_pin_unknown",
            ErrorCode::KeyStoreUnavailable => "key_store_unavailable",
            ErrorCode::JournalUnavailable => "journal_unavailable",
            ErrorCode::CardRevoked => "card_revoked",
            ErrorCode::CardSuperseded => "card_superseded",
            ErrorCode::CardExpired => "card_expired",
            ErrorCode::CardNotAtOffice => "card_not_at_office",
            ErrorCode::DispatchRefused => "dispatch_refused",
            ErrorCode::WrongOffice => "wrong_office",
            ErrorCode::NotInHousehold => "not_in_household",
            ErrorCode::MemberVerificationRequired => "member_verification_required",
        }
    }
}

/// A refused request: what the JSON-RPC `error` object carries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// Which refusal.
    pub code: ErrorCode,
    /// For a person; never contains secrets or biometric data.
    pub message: String,
    /// Structured details (merged into `error.data` next to `name`).
    pub data: Option<Value>,
}

impl ApiError {
    /// An error with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// Adds structured details.
    pub fn with_data(mut self, data: Value) -> ApiError {
        self.data = Some(data);
        self
    }

    /// An internal error (logged by the server, reported without internals to the client).
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, message)
    }

    /// The JSON-RPC `error` object: `{code, message, data: {name, ...data}}`.
    pub fn to_json(&self) -> Value {
        let mut data = serde_json::Map::new();
        data.insert("name".into(), Value::String(self.code.name().into()));
        match &self.data {
            Some(Value::Object(extra)) => data.extend(extra.clone()),
            Some(other) => {
                data.insert("details".into(), other.clone());
            }
            None => {}
        }
        serde_json::json!({
            "code": self.code.code(),
            "message": self.message,
            "data": data,
        })
    }
}

impl ErrorCode {
    /// The stable code of an issuance failure: the one place where domain kinds become API
    /// codes.
    pub fn of(kind: ErrorKind) -> ErrorCode {
        match kind {
            ErrorKind::Invalid => ErrorCode::InvalidParams,
            ErrorKind::Internal => ErrorCode::Internal,
            ErrorKind::TooLarge => ErrorCode::TooLarge,
            ErrorKind::Busy => ErrorCode::Busy,
            ErrorKind::ReaderNotFound => ErrorCode::ReaderNotFound,
            ErrorKind::NoService => ErrorCode::NoService,
            ErrorKind::NoCard => ErrorCode::NoCard,
            ErrorKind::CardRemoved => ErrorCode::CardRemoved,
            ErrorKind::CardError => ErrorCode::CardError,
            ErrorKind::WrongCardState => ErrorCode::WrongCardState,
            ErrorKind::QcFailed => ErrorCode::QcFailed,
            ErrorKind::AlreadyPersonalized => ErrorCode::AlreadyPersonalized,
            ErrorKind::NotFound => ErrorCode::NotFound,
            ErrorKind::NoFingerprint => ErrorCode::NoFingerprint,
            ErrorKind::PaFailed => ErrorCode::PaFailed,
            ErrorKind::AlreadyDelivered => ErrorCode::AlreadyDelivered,
            ErrorKind::CardTerminated => ErrorCode::CardTerminated,
            ErrorKind::SessionUnknown => ErrorCode::SessionUnknown,
            ErrorKind::SessionExpired => ErrorCode::SessionExpired,
            ErrorKind::Rescan => ErrorCode::Rescan,
            ErrorKind::NoMatch => ErrorCode::NoMatch,
            ErrorKind::AttemptsExhausted => ErrorCode::AttemptsExhausted,
            ErrorKind::FingerNotEnrolled => ErrorCode::FingerNotEnrolled,
            ErrorKind::NotVerified => ErrorCode::NotVerified,
            ErrorKind::VerifyWindowPassed => ErrorCode::VerifyWindowPassed,
            ErrorKind::CardSwapped => ErrorCode::CardSwapped,
            ErrorKind::PinRejected => ErrorCode::PinRejected,
            ErrorKind::PinBlocked => ErrorCode::PinBlocked,
            ErrorKind::TransportPinUnknown => ErrorCode::TransportPinUnknown,
            ErrorKind::KeyStoreUnavailable => ErrorCode::KeyStoreUnavailable,
            ErrorKind::JournalUnavailable => ErrorCode::JournalUnavailable,
            ErrorKind::CardRevoked => ErrorCode::CardRevoked,
            ErrorKind::CardSuperseded => ErrorCode::CardSuperseded,
            ErrorKind::CardExpired => ErrorCode::CardExpired,
            ErrorKind::CardNotAtOffice => ErrorCode::CardNotAtOffice,
            ErrorKind::DispatchRefused => ErrorCode::DispatchRefused,
            ErrorKind::WrongOffice => ErrorCode::WrongOffice,
            ErrorKind::NotInHousehold => ErrorCode::NotInHousehold,
            ErrorKind::MemberVerificationRequired => ErrorCode::MemberVerificationRequired,
        }
    }
}

impl From<issuance::Error> for ApiError {
    fn from(e: issuance::Error) -> ApiError {
        ApiError {
            code: ErrorCode::of(e.kind),
            message: e.message,
            data: e.data,
        }
    }
}

impl From<apdu::Error> for ApiError {
    fn from(e: apdu::Error) -> ApiError {
        issuance::Error::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique() {
        let all = [
            ErrorCode::ParseError,
            ErrorCode::InvalidRequest,
            ErrorCode::MethodNotFound,
            ErrorCode::InvalidParams,
            ErrorCode::Internal,
            ErrorCode::Busy,
            ErrorCode::Timeout,
            ErrorCode::TooLarge,
            ErrorCode::ShuttingDown,
            ErrorCode::ReaderNotFound,
            ErrorCode::NoService,
            ErrorCode::NoCard,
            ErrorCode::CardRemoved,
            ErrorCode::CardError,
            ErrorCode::WrongCardState,
            ErrorCode::QcFailed,
            ErrorCode::AlreadyPersonalized,
            ErrorCode::NotFound,
            ErrorCode::NoFingerprint,
            ErrorCode::PaFailed,
            ErrorCode::AlreadyDelivered,
            ErrorCode::CardTerminated,
            ErrorCode::SessionUnknown,
            ErrorCode::SessionExpired,
            ErrorCode::Rescan,
            ErrorCode::NoMatch,
            ErrorCode::AttemptsExhausted,
            ErrorCode::FingerNotEnrolled,
            ErrorCode::NotVerified,
            ErrorCode::VerifyWindowPassed,
            ErrorCode::CardSwapped,
            ErrorCode::PinRejected,
            ErrorCode::PinBlocked,
            ErrorCode::TransportPinUnknown,
            ErrorCode::KeyStoreUnavailable,
            ErrorCode::JournalUnavailable,
            ErrorCode::CardRevoked,
            ErrorCode::CardSuperseded,
            ErrorCode::CardExpired,
            ErrorCode::CardNotAtOffice,
            ErrorCode::DispatchRefused,
            ErrorCode::WrongOffice,
            ErrorCode::NotInHousehold,
            ErrorCode::MemberVerificationRequired,
        ];
        let mut codes: Vec<i64> = all.iter().map(|c| c.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for c in all {
            assert_eq!(
                serde_json::to_value(c).unwrap(),
                Value::String(c.name().into())
            );
        }
    }

    #[test]
    fn error_json_carries_name_and_data() {
        let e = ApiError::new(ErrorCode::QcFailed, "2 problems")
            .with_data(serde_json::json!({"problems": [{"field": "national_code"}]}));
        let j = e.to_json();
        assert_eq!(j["code"], 1200);
        assert_eq!(j["data"]["name"], "qc_failed");
        assert_eq!(j["data"]["problems"][0]["field"], "national_code");
    }
}
