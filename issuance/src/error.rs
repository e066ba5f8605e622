//! [`Error`]: the one error type of the issuance core, with an [`ErrorKind`] the shell maps to
//! its stable API codes in one place (`idcardd`'s `api/error.rs`).
//!
//! Module errors ([`JournalError`](crate::journal::JournalError),
//! [`PkiError`](crate::pki::PkiError), [`apdu::Error`], ...) convert into it with the kind that
//! says what a caller can do about them; a workflow returns it with a message for a person and,
//! where a kiosk needs it, structured `data` (every data-QC problem, the tries left, ...).

use serde_json::Value;

/// What went wrong, as a caller acts on it. The daemon turns each kind into one stable API code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The input is missing, of the wrong shape, or invalid.
    Invalid,
    /// An input is larger than its limit.
    TooLarge,
    /// A bug or an unexpected failure (a store that cannot be written, a random generator that
    /// failed): nothing a caller can fix.
    Internal,
    /// The reader is in use by another operation: try again later.
    Busy,
    /// No reader with that name is configured.
    ReaderNotFound,
    /// The PC/SC service (pcscd) is not running.
    NoService,
    /// The reader has no card.
    NoCard,
    /// The card was removed (or reset) during the operation.
    CardRemoved,
    /// The card answered with an unexpected status word or malformed data.
    CardError,
    /// The card is not in the life-cycle state the operation needs.
    WrongCardState,
    /// The applicant record failed data QC.
    QcFailed,
    /// The card (or the record) was personalized already; nothing was overwritten.
    AlreadyPersonalized,
    /// No such object (batch, record, tracking code, session, ...).
    NotFound,
    /// The scan holds no usable fingerprint.
    NoFingerprint,
    /// The card failed passive authentication: its data cannot be trusted.
    PaFailed,
    /// The card is activated already: nothing to deliver.
    AlreadyDelivered,
    /// The card is terminated (lost, stolen, replaced).
    CardTerminated,
    /// No such delivery session.
    SessionUnknown,
    /// The delivery session expired without activity.
    SessionExpired,
    /// The live scan is too poor to compare: scan the finger again.
    Rescan,
    /// The live fingerprint does not match the card.
    NoMatch,
    /// Too many failed fingerprint attempts on this card.
    AttemptsExhausted,
    /// The card holds no template of the finger presented.
    FingerNotEnrolled,
    /// Activation without a successful fingerprint verification in the session.
    NotVerified,
    /// The successful verification is older than the activate window.
    VerifyWindowPassed,
    /// The card in the reader is not the card verified in the session.
    CardSwapped,
    /// The card refused the PIN or PUK.
    PinRejected,
    /// The PIN (or PUK) is blocked.
    PinBlocked,
    /// The card's transport PIN is not on record and was not given.
    TransportPinUnknown,
    /// The issuer's key store (HSM token) does not answer now; nothing was written with a
    /// partial result and the operation can be retried once it is back.
    KeyStoreUnavailable,
    /// The journal's database (the line's PostgreSQL server) does not answer now; nothing was
    /// written and the operation can be retried once it is back.
    JournalUnavailable,
    /// The card was reported lost or stolen (revoked in the journal): it is not handed over.
    CardRevoked,
    /// A newer card of the same holder and kind was delivered: this one is not handed over.
    CardSuperseded,
    /// The card's validity ended: it is not handed over.
    CardExpired,
    /// The card was not received at this office (not dispatched here, or not scanned in yet).
    CardNotAtOffice,
    /// A dispatch names cards that cannot go (unknown, not produced, already dispatched).
    DispatchRefused,
    /// A dispatch received at an office it was not sent to.
    WrongOffice,
    /// A household handover names a card that is not of the head's household (or the session
    /// is not a household head's).
    NotInHousehold,
    /// The kind's rule wants each household member's own finger: no handover on the head's.
    MemberVerificationRequired,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 39] = [
        ErrorKind::Invalid,
        ErrorKind::TooLarge,
        ErrorKind::Internal,
        ErrorKind::Busy,
        ErrorKind::ReaderNotFound,
        ErrorKind::NoService,
        ErrorKind::NoCard,
        ErrorKind::CardRemoved,
        ErrorKind::CardError,
        ErrorKind::WrongCardState,
        ErrorKind::QcFailed,
        ErrorKind::AlreadyPersonalized,
        ErrorKind::NotFound,
        ErrorKind::NoFingerprint,
        ErrorKind::PaFailed,
        ErrorKind::AlreadyDelivered,
        ErrorKind::CardTerminated,
        ErrorKind::SessionUnknown,
        ErrorKind::SessionExpired,
        ErrorKind::Rescan,
        ErrorKind::NoMatch,
        ErrorKind::AttemptsExhausted,
        ErrorKind::FingerNotEnrolled,
        ErrorKind::NotVerified,
        ErrorKind::VerifyWindowPassed,
        ErrorKind::CardSwapped,
        ErrorKind::PinRejected,
        ErrorKind::PinBlocked,
        ErrorKind::TransportPinUnknown,
        ErrorKind::KeyStoreUnavailable,
        ErrorKind::JournalUnavailable,
        ErrorKind::CardRevoked,
        ErrorKind::CardSuperseded,
        ErrorKind::CardExpired,
        ErrorKind::CardNotAtOffice,
        ErrorKind::DispatchRefused,
        ErrorKind::WrongOffice,
        ErrorKind::NotInHousehold,
        ErrorKind::MemberVerificationRequired,
    ];

    /// The stable snake_case name the audit trail records (the API's error name is the same).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Invalid => "invalid_params",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Internal => "internal",
            ErrorKind::Busy => "busy",
            ErrorKind::ReaderNotFound => "reader_not_found",
            ErrorKind::NoService => "no_service",
            ErrorKind::NoCard => "no_card",
            ErrorKind::CardRemoved => "card_removed",
            ErrorKind::CardError => "card_error",
            ErrorKind::WrongCardState => "wrong_card_state",
            ErrorKind::QcFailed => "qc_failed",
            ErrorKind::AlreadyPersonalized => "already_personalized",
            ErrorKind::NotFound => "not_found",
            ErrorKind::NoFingerprint => "no_fingerprint",
            ErrorKind::PaFailed => "pa_failed",
            ErrorKind::AlreadyDelivered => "already_delivered",
            ErrorKind::CardTerminated => "card_terminated",
            ErrorKind::SessionUnknown => "session_unknown",
            ErrorKind::SessionExpired => "session_expired",
            ErrorKind::Rescan => "rescan",
            ErrorKind::NoMatch => "no_match",
            ErrorKind::AttemptsExhausted => "attempts_exhausted",
            ErrorKind::FingerNotEnrolled => "finger_not_enrolled",
            ErrorKind::NotVerified => "not_verified",
            ErrorKind::VerifyWindowPassed => "verify_window_passed",
            ErrorKind::CardSwapped => "card_swapped",
            ErrorKind::PinRejected => "pin_rejected",
            ErrorKind::PinBlocked => "pin_blocked",
            ErrorKind::TransportPinUnknown => "transport_pin_unknown",
            ErrorKind::KeyStoreUnavailable => "key_store_unavailable",
            ErrorKind::JournalUnavailable => "journal_unavailable",
            ErrorKind::CardRevoked => "card_revoked",
            ErrorKind::CardSuperseded => "card_superseded",
            ErrorKind::CardExpired => "card_expired",
            ErrorKind::CardNotAtOffice => "card_not_at_office",
            ErrorKind::DispatchRefused => "dispatch_refused",
            ErrorKind::WrongOffice => "wrong_office",
            ErrorKind::NotInHousehold => "not_in_household",
            ErrorKind::MemberVerificationRequired => "member_verification_required",
        }
    }
}

/// A refused or failed operation of the issuance core.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    /// Which failure, as a caller acts on it.
    pub kind: ErrorKind,
    /// For a person; never contains secrets or biometric data.
    pub message: String,
    /// Structured details a client needs to act (e.g. every QC problem with its field path).
    pub data: Option<Value>,
}

/// The issuance core's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind` with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            data: None,
        }
    }

    /// Adds structured details.
    pub fn with_data(mut self, data: Value) -> Error {
        self.data = Some(data);
        self
    }

    /// An internal failure (reported without internals by the daemon, logged in full).
    pub fn internal(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Internal, message)
    }

    /// Invalid input, saying which.
    pub fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Invalid, message)
    }

    /// The same error with `context: ` in front of its message.
    pub fn context(mut self, context: impl std::fmt::Display) -> Error {
        self.message = format!("{context}: {}", self.message);
        self
    }
}

impl From<apdu::Error> for Error {
    fn from(e: apdu::Error) -> Error {
        let kind = match &e {
            // A response cut short is what a card pulled mid-command gives.
            apdu::Error::Transport(apdu::TransportError::ShortResponse { .. }) => {
                ErrorKind::CardRemoved
            }
            apdu::Error::Transport(t) => transport_kind(t),
            apdu::Error::KeyUnavailable(_) => ErrorKind::KeyStoreUnavailable,
            _ => ErrorKind::CardError,
        };
        Error::new(kind, e.to_string())
    }
}

impl From<keystore::KeyStoreError> for Error {
    /// An unreachable token is retryable ([`ErrorKind::KeyStoreUnavailable`]); anything else
    /// (a missing key, a refused operation) is internal: the configuration must be fixed.
    fn from(e: keystore::KeyStoreError) -> Error {
        let kind = if e.is_unavailable() {
            ErrorKind::KeyStoreUnavailable
        } else {
            ErrorKind::Internal
        };
        Error::new(kind, e.to_string())
    }
}

impl From<crate::pki::PkiError> for Error {
    /// A signer whose token does not answer is retryable; any other Document Signer problem
    /// (certificate, chain, a key missing from the token) is internal.
    fn from(e: crate::pki::PkiError) -> Error {
        let kind = if e.is_unavailable() {
            ErrorKind::KeyStoreUnavailable
        } else {
            ErrorKind::Internal
        };
        Error::new(kind, format!("Document Signer: {e}"))
    }
}

impl From<apdu::TransportError> for Error {
    fn from(e: apdu::TransportError) -> Error {
        Error::new(transport_kind(&e), explain(&e))
    }
}

/// The kind of a failure to reach a card.
fn transport_kind(e: &apdu::TransportError) -> ErrorKind {
    use apdu::TransportError as T;
    match e {
        T::NoService => ErrorKind::NoService,
        T::NoReader(_) => ErrorKind::ReaderNotFound,
        T::NoCard(_) => ErrorKind::NoCard,
        T::CardRemoved | T::CardReset => ErrorKind::CardRemoved,
        _ => ErrorKind::CardError,
    }
}

/// A transport error's message with what to do about it.
fn explain(e: &apdu::TransportError) -> String {
    match e {
        apdu::TransportError::NoService => {
            format!("{e} (start it with `pcscd` or use a simulated reader, e.g. --reader sim:0)")
        }
        apdu::TransportError::NoReader(_) => format!("{e} (list readers with `idcardd readers`)"),
        e => e.to_string(),
    }
}
