//! The host-side ID card client ([`apdu::card`]) against the simulated card: personalization,
//! delivery, PIN handling, authorization and secure messaging failures.

use std::sync::{Arc, Mutex};

use apdu::card::{IdCard, PinError};
use apdu::fcp::LifeCycle;
use apdu::sm::{AesKey, KeyRef, SW_AUTH_FAILED};
use apdu::{Capabilities, TransportError};
use apdu::{Error, StatusWord, Transport};
use cardsim::{FaultHandle, Faults, SimCard, SimConfig, SimTransport};
use test_support::data::pattern;

const SERIAL: [u8; 8] = *b"SN000042";
const TRANSPORT_PIN: &[u8] = b"123456";
const HOLDER_PIN: &[u8] = b"9876";
const PUK: &[u8] = b"11223344";

fn card_with(config: SimConfig) -> (IdCard<SimTransport>, FaultHandle) {
    let card = SimCard::create(
        None,
        SimConfig {
            serial: Some(SERIAL),
            ..config
        },
    )
    .unwrap();
    let reader = SimTransport::new(card);
    let faults = reader.faults();
    (IdCard::new(reader), faults)
}

fn new_card() -> (IdCard<SimTransport>, FaultHandle) {
    card_with(SimConfig::default())
}

/// Personalizes DG1, DG2 (5000 bytes) and DG3, sets the PINs and deactivates.
fn personalize(card: &mut IdCard<SimTransport>) -> Vec<(u16, Vec<u8>)> {
    let files = vec![
        (0x0101, pattern(90, 1)),
        (0x0102, pattern(5000, 2)),
        (0x0103, pattern(700, 3)),
    ];
    let mut perso = card
        .authenticate_perso(&cardsim::fixtures::TestMasters)
        .unwrap();
    for (i, (fid, data)) in files.iter().enumerate() {
        perso
            .create_file(*fid, Some(i as u8 + 1), data.len() as u32)
            .unwrap();
        perso.write_file(*fid, data).unwrap();
        assert_eq!(&perso.read_file(*fid).unwrap(), data);
    }
    perso.set_pins(TRANSPORT_PIN, PUK).unwrap();
    perso.deactivate().unwrap();
    assert_eq!(perso.life_cycle().unwrap(), LifeCycle::Deactivated);
    files
}

fn deliver(card: &mut IdCard<SimTransport>) {
    let mut term = card
        .authenticate_terminal(&cardsim::fixtures::TestMasters)
        .unwrap();
    term.verify_pin(TRANSPORT_PIN).unwrap();
    term.change_pin(TRANSPORT_PIN, HOLDER_PIN).unwrap();
    term.activate().unwrap();
    assert_eq!(term.life_cycle().unwrap(), LifeCycle::Activated);
}

#[test]
fn fresh_card_info() {
    let (mut card, _) = new_card();
    let info = card.info().unwrap();
    assert_eq!(info.serial, SERIAL);
    assert_eq!(info.life_cycle, LifeCycle::Creation);
    assert!(info.files.is_empty());
    assert_eq!(info.atr[0], 0x3B);
}

#[test]
fn personalization_writes_what_the_card_stores() {
    let (mut card, faults) = new_card();
    let files = personalize(&mut card);
    for (fid, data) in &files {
        assert_eq!(
            faults.with_card(|c| c.app_file(*fid)).as_ref(),
            Some(data),
            "{fid:04X}"
        );
    }
    // The data travelled encrypted: the session is gone on the host side after the drop.
    assert!(!card.channel().has_secure_channel());
    let info = card.info().unwrap();
    assert_eq!(info.life_cycle, LifeCycle::Deactivated);
    assert_eq!(
        info.files,
        vec![
            (0x0101, Some(90)),
            (0x0102, Some(5000)),
            (0x0103, Some(700))
        ]
    );
}

#[test]
fn large_write_uses_the_fewest_apdus() {
    // 4096-byte data fields with extended length: a 5000-byte file goes in two UPDATE BINARY.
    let (mut card, _) = new_card();
    let mut perso = card
        .authenticate_perso(&cardsim::fixtures::TestMasters)
        .unwrap();
    perso.create_file(0x0102, None, 5000).unwrap();
    assert!(matches!(
        perso.create_file(0x0103, Some(31), 10),
        Err(Error::Usage(_))
    ));
    let before = perso.channel().apdu_count();
    perso.write_file(0x0102, &pattern(5000, 9)).unwrap();
    assert_eq!(
        perso.channel().apdu_count() - before,
        1 + 2,
        "SELECT + 2 UPDATE BINARY"
    );
}

#[test]
fn short_apdu_card_is_personalized_under_secure_messaging() {
    let (mut card, faults) = card_with(SimConfig {
        extended_length: false,
        max_command_data: 255,
        max_response_data: 256,
        ..SimConfig::default()
    });
    let data = pattern(1000, 5);
    let mut perso = card
        .authenticate_perso(&cardsim::fixtures::TestMasters)
        .unwrap();
    perso.create_file(0x0102, Some(2), 1000).unwrap();
    let before = perso.channel().apdu_count();
    perso.write_file(0x0102, &data).unwrap();
    // 255-byte wrapped bodies hold 223 plain bytes: 1000 bytes need 5 UPDATE BINARY.
    assert_eq!(perso.channel().apdu_count() - before, 1 + 5);
    assert_eq!(perso.read_file(0x0102).unwrap(), data);
    drop(perso);
    assert_eq!(faults.with_card(|c| c.app_file(0x0102)), Some(data));
}

#[test]
fn delivery_then_holder_pin() {
    let (mut card, _) = new_card();
    let files = personalize(&mut card);
    {
        let mut term = card
            .authenticate_terminal(&cardsim::fixtures::TestMasters)
            .unwrap();
        // The terminal reads the fingerprint templates (DG3) for the match at delivery.
        assert_eq!(term.read_file(0x0103).unwrap(), files[2].1);
    }
    deliver(&mut card);
    assert_eq!(card.life_cycle().unwrap(), LifeCycle::Activated);
    // The transport PIN no longer works; the holder's does.
    assert!(matches!(
        card.verify_pin(TRANSPORT_PIN),
        Err(PinError::Wrong { tries_left: 2 })
    ));
    card.verify_pin(HOLDER_PIN).unwrap();
    assert_eq!(card.pin_tries_left().unwrap(), None);
}

#[test]
fn blocked_pin_is_unblocked_with_the_puk() {
    let (mut card, _) = new_card();
    personalize(&mut card);
    deliver(&mut card);
    assert!(matches!(
        card.verify_pin(b"0000"),
        Err(PinError::Wrong { tries_left: 2 })
    ));
    assert!(matches!(
        card.verify_pin(b"0000"),
        Err(PinError::Wrong { tries_left: 1 })
    ));
    assert!(matches!(card.verify_pin(b"0000"), Err(PinError::Blocked)));
    assert!(matches!(
        card.verify_pin(HOLDER_PIN),
        Err(PinError::Blocked)
    ));
    assert_eq!(card.pin_tries_left().unwrap(), Some(0));
    // A wrong PUK costs a PUK try.
    assert!(matches!(
        card.unblock(b"99999999", b"5555"),
        Err(PinError::Wrong { tries_left: 9 })
    ));
    card.unblock(PUK, b"5555").unwrap();
    card.verify_pin(b"5555").unwrap();
}

#[test]
fn malformed_pins_never_reach_the_card() {
    let (mut card, _) = new_card();
    let before = card.channel().apdu_count();
    for pin in [&b"12"[..], b"12345678901234", b"12a4"] {
        assert!(matches!(
            card.verify_pin(pin),
            Err(PinError::Card(Error::Usage(_)))
        ));
    }
    assert!(matches!(
        card.unblock(b"123", b"1234"),
        Err(PinError::Card(Error::Usage(_)))
    ));
    assert_eq!(card.channel().apdu_count(), before);
}

#[test]
fn wrong_master_key_fails_and_three_failures_block_the_key() {
    let (mut card, _) = new_card();
    let wrong = cardsim::fixtures::SoftwareMasters {
        perso: AesKey::Aes256([0x55; 32]),
        terminal: AesKey::Aes256([0x55; 32]),
    };
    for _ in 0..2 {
        let err = card.authenticate_perso(&wrong).err().unwrap();
        assert!(
            matches!(err, Error::Status(sw) if sw == SW_AUTH_FAILED),
            "{err}"
        );
    }
    assert!(!card.channel().has_secure_channel());
    // A success in between resets the counter.
    drop(
        card.authenticate_perso(&cardsim::fixtures::TestMasters)
            .unwrap(),
    );
    for _ in 0..2 {
        assert!(card.authenticate_perso(&wrong).is_err());
    }
    let third = card.authenticate_perso(&wrong).err().unwrap();
    assert!(
        matches!(third, Error::Status(StatusWord::AuthenticationBlocked)),
        "{third}"
    );
    let after = card
        .authenticate_perso(&cardsim::fixtures::TestMasters)
        .err()
        .unwrap();
    assert!(
        matches!(after, Error::Status(StatusWord::AuthenticationBlocked)),
        "{after}"
    );
    // The terminal key has its own counter.
    assert!(card
        .authenticate_terminal(&cardsim::fixtures::TestMasters)
        .is_ok());
}

#[test]
fn keys_are_not_interchangeable() {
    let (mut card, _) = new_card();
    // The terminal key does not open a personalization session, nor the reverse.
    assert!(card.authenticate_perso(&Swapped).is_err());
    assert!(card.authenticate_terminal(&Swapped).is_err());
}

/// Gives each key reference the card key of the other one.
struct Swapped;

impl apdu::sm::CardKeys for Swapped {
    fn card_key(&self, key_ref: KeyRef, serial: &[u8; 8]) -> Result<apdu::sm::AesKey, apdu::Error> {
        let other = match key_ref {
            KeyRef::Personalization => KeyRef::Terminal,
            KeyRef::Terminal => KeyRef::Personalization,
        };
        cardsim::fixtures::TestMasters.card_key(other, serial)
    }
}

#[test]
fn personalization_is_closed_after_deactivation() {
    let (mut card, _) = new_card();
    personalize(&mut card);
    let err = card
        .authenticate_perso(&cardsim::fixtures::TestMasters)
        .err()
        .unwrap();
    assert!(
        matches!(err, Error::Status(StatusWord::ConditionsNotSatisfied)),
        "{err}"
    );
}

#[test]
fn files_are_not_readable_without_a_session() {
    let (mut card, _) = new_card();
    personalize(&mut card);
    deliver(&mut card);
    card.select_application().unwrap();
    let ch = card.channel();
    ch.transmit_ok(&apdu::commands::select_fid(
        0x0101,
        apdu::commands::SelectReturn::Nothing,
    ))
    .unwrap();
    let err = ch.read_binary(0, 10).unwrap_err();
    assert!(
        matches!(err, Error::Status(StatusWord::SecurityStatusNotSatisfied)),
        "{err}"
    );
}

#[test]
fn terminal_session_cannot_write() {
    let (mut card, _) = new_card();
    personalize(&mut card);
    let mut term = card
        .authenticate_terminal(&cardsim::fixtures::TestMasters)
        .unwrap();
    // No write method exists on TerminalSession; a raw UPDATE BINARY through its channel is
    // refused by the card.
    term.read_file(0x0101).unwrap();
    let err = term.channel().update_binary(0, b"X").unwrap_err();
    assert!(
        matches!(err, Error::Status(StatusWord::ConditionsNotSatisfied)),
        "{err}"
    );
}

#[test]
fn terminated_card_reports_only_serial_and_life_cycle() {
    let (mut card, _) = new_card();
    personalize(&mut card);
    deliver(&mut card);
    card.authenticate_terminal(&cardsim::fixtures::TestMasters)
        .unwrap()
        .terminate()
        .unwrap();
    let info = card.info().unwrap();
    assert_eq!(info.serial, SERIAL);
    assert!(info.life_cycle.is_terminated());
    assert!(info.files.is_empty());
    assert!(card
        .authenticate_terminal(&cardsim::fixtures::TestMasters)
        .is_err());
}

#[test]
fn unprotected_error_in_a_session_closes_it() {
    let (mut card, faults) = new_card();
    let mut perso = card
        .authenticate_perso(&cardsim::fixtures::TestMasters)
        .unwrap();
    perso.create_file(0x0101, None, 16).unwrap();
    // The next APDU is answered with a plain 6988, as a card that rejects the MAC does.
    let next = faults.apdu_count();
    faults.set(Faults {
        forced_sw: Some((next, StatusWord::SmObjectsIncorrect)),
        ..Faults::default()
    });
    let err = perso.read_file(0x0101).unwrap_err();
    assert!(matches!(err, Error::SecureMessaging(_)), "{err}");
    // The channel stays closed: nothing more is sent under the old keys.
    let sent = faults.apdu_count();
    assert!(matches!(
        perso.read_file(0x0101),
        Err(Error::SecureMessaging(_))
    ));
    assert_eq!(faults.apdu_count(), sent);
    drop(perso);
    // A new authentication works.
    faults.set(Faults::default());
    assert!(card
        .authenticate_perso(&cardsim::fixtures::TestMasters)
        .is_ok());
}

/// A reader that records the INS byte of every APDU (plain even under secure messaging).
struct InsLog {
    inner: SimTransport,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Transport for InsLog {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        self.sent.lock().unwrap().push(apdu[1]);
        self.inner.transmit_raw(apdu)
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn atr(&self) -> Vec<u8> {
        self.inner.atr()
    }
    fn reader_name(&self) -> &str {
        self.inner.reader_name()
    }
    fn reset(&mut self) -> Result<(), TransportError> {
        self.inner.reset()
    }
}

/// The INS bytes sent since the last call.
fn sent_since(log: &Arc<Mutex<Vec<u8>>>) -> Vec<u8> {
    std::mem::take(&mut *log.lock().unwrap())
}

const SELECT: u8 = 0xA4;
const GET_DATA: u8 = 0xCA;
const GET_CHALLENGE: u8 = 0x84;
const MUTUAL_AUTH: u8 = 0x82;

#[test]
fn open_application_reads_the_life_cycle_and_spares_the_next_select() {
    let sent = Arc::new(Mutex::new(Vec::new()));
    let inner = SimTransport::new(SimCard::create(None, SimConfig::default()).unwrap());
    let mut card = IdCard::new(InsLog {
        inner,
        sent: Arc::clone(&sent),
    });

    // SELECT with FCP, GET DATA serial, then authentication without a SELECT of its own.
    assert_eq!(card.open_application().unwrap(), LifeCycle::Creation);
    card.serial().unwrap();
    drop(
        card.authenticate_perso(&cardsim::fixtures::TestMasters)
            .unwrap(),
    );
    assert_eq!(
        sent_since(&sent),
        [SELECT, GET_DATA, GET_CHALLENGE, MUTUAL_AUTH]
    );

    // Anything else in between (another command, a raw command, a session) and
    // authentication selects the application again: what was selected may have changed.
    card.open_application().unwrap();
    card.file_list().unwrap();
    drop(
        card.authenticate_perso(&cardsim::fixtures::TestMasters)
            .unwrap(),
    );
    assert_eq!(
        sent_since(&sent),
        [SELECT, GET_DATA, SELECT, GET_CHALLENGE, MUTUAL_AUTH]
    );
    card.open_application().unwrap();
    let get_serial = apdu::commands::get_data(apdu::card::TAG_SERIAL, 8).unwrap();
    card.channel().transmit_ok(&get_serial).unwrap();
    drop(
        card.authenticate_perso(&cardsim::fixtures::TestMasters)
            .unwrap(),
    );
    assert_eq!(
        sent_since(&sent),
        [SELECT, GET_DATA, SELECT, GET_CHALLENGE, MUTUAL_AUTH]
    );
    drop(
        card.authenticate_perso(&cardsim::fixtures::TestMasters)
            .unwrap(),
    );
    drop(
        card.authenticate_perso(&cardsim::fixtures::TestMasters)
            .unwrap(),
    );
    assert_eq!(
        sent_since(&sent),
        [
            SELECT,
            GET_CHALLENGE,
            MUTUAL_AUTH,
            SELECT,
            GET_CHALLENGE,
            MUTUAL_AUTH
        ]
    );
}

#[test]
fn open_application_reports_every_life_cycle_like_get_data() {
    let (mut card, _) = new_card();
    let both = |card: &mut IdCard<SimTransport>| {
        let from_select = card.open_application().unwrap();
        assert_eq!(from_select, card.life_cycle().unwrap());
        from_select
    };
    assert_eq!(both(&mut card), LifeCycle::Creation);
    personalize(&mut card);
    assert_eq!(both(&mut card), LifeCycle::Deactivated);
    deliver(&mut card);
    assert_eq!(both(&mut card), LifeCycle::Activated);
    card.authenticate_terminal(&cardsim::fixtures::TestMasters)
        .unwrap()
        .terminate()
        .unwrap();
    assert!(both(&mut card).is_terminated());
    // The terminal key is refused after the SELECT-free path too.
    assert!(card
        .authenticate_terminal(&cardsim::fixtures::TestMasters)
        .is_err());
}
