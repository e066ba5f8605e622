//! The PC/SC transport against a real pcscd + vsmartcard-vpcd, with a loopback card served by
//! the vpcd bridge on a thread of this process.

use std::time::Duration;

use apdu::transmit::Channel;
use apdu::transport::pcsc::{ReaderEvent, ReaderMonitor};
use apdu::{Command, Error, Transport, TransportError};
use idcardd_e2e::{CardInReader, LoopbackCard, Pcscd, PORT0, PORT1, READER0, READER1};

#[test]
fn lists_connects_and_transmits_short_and_extended() {
    let pcscd = Pcscd::start();
    let card = CardInReader::insert(&pcscd, LoopbackCard::new(), PORT0);

    let readers = pcscd.pcsc.list_readers().unwrap();
    let r0 = readers.iter().find(|r| r.name == READER0).unwrap();
    assert!(r0.card_present);
    assert_eq!(
        r0.atr.as_deref(),
        Some(&LoopbackCard::new().atr_bytes()[..])
    );
    let r1 = readers.iter().find(|r| r.name == READER1).unwrap();
    assert!(!r1.card_present && r1.atr.is_none());

    let mut t = pcscd.pcsc.connect(READER0).unwrap();
    assert_eq!(t.reader_name(), READER0);
    assert_eq!(t.atr(), LoopbackCard::new().atr_bytes());
    assert_eq!(
        t.transmit_raw(&[0x80, 0x10, 0, 0, 4]).unwrap(),
        [0xA5, 0xA5, 0xA5, 0xA5, 0x90, 0x00]
    );
    assert_eq!(t.transmit_raw(&[0x00, 0xCA, 0, 0]).unwrap(), [0x6D, 0x00]);

    // A 10 KiB extended-length command goes through pcscd and vpcd unchanged.
    let data: Vec<u8> = (0..10 * 1024).map(|i| (i % 251) as u8).collect();
    let cmd = Command::new(0x80, 0x12, 0, 0)
        .with_data(data.clone())
        .with_ne(65_536);
    let resp = t.transmit_raw(&cmd.to_bytes().unwrap()).unwrap();
    assert_eq!(&resp[..resp.len() - 2], &data[..]);
    assert_eq!(&resp[resp.len() - 2..], [0x90, 0x00]);
    drop(t);
    card.pull();
}

#[test]
fn missing_reader_and_empty_reader_are_distinct_errors() {
    let pcscd = Pcscd::start();
    assert_eq!(
        pcscd.pcsc.connect("No Such Reader 99").unwrap_err(),
        TransportError::NoReader("No Such Reader 99".into())
    );
    assert!(pcscd.wait_card(READER1, false, Duration::from_secs(5)));
    assert_eq!(
        pcscd.pcsc.connect(READER1).unwrap_err(),
        TransportError::NoCard(READER1.into())
    );
}

#[test]
fn hot_plug_events_follow_insertion_and_removal() {
    let pcscd = Pcscd::start();
    let monitor = ReaderMonitor::start().unwrap();
    let next = |want: &dyn Fn(&ReaderEvent) -> bool| -> ReaderEvent {
        loop {
            let ev = monitor
                .events()
                .recv_timeout(Duration::from_secs(10))
                .expect("an event within 10 s");
            if want(&ev) {
                return ev;
            }
        }
    };
    // The initial snapshot lists the readers.
    next(&|e| matches!(e, ReaderEvent::ReaderAdded { reader } if reader == READER1));
    let card = CardInReader::insert(&pcscd, LoopbackCard::new(), PORT1);
    let ev = next(&|e| matches!(e, ReaderEvent::CardInserted { reader, .. } if reader == READER1));
    assert_eq!(
        ev,
        ReaderEvent::CardInserted {
            reader: READER1.into(),
            atr: LoopbackCard::new().atr_bytes()
        }
    );
    card.pull();
    next(&|e| matches!(e, ReaderEvent::CardRemoved { reader } if reader == READER1));
    // Dropping the monitor cancels its blocking wait and joins the thread.
    drop(monitor);
}

#[test]
fn card_pulled_mid_command_is_a_clean_transport_error() {
    let pcscd = Pcscd::start();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (gate_tx, gate_rx) = std::sync::mpsc::channel();
    let card = LoopbackCard {
        gate: Some(gate_rx),
        started: Some(started_tx),
        power_ons: 0,
    };
    let card = CardInReader::insert(&pcscd, card, PORT0);
    let mut channel = Channel::new(pcscd.pcsc.connect(READER0).unwrap());
    assert!(channel
        .transmit(&Command::new(0x80, 0x10, 0, 0).with_ne(2))
        .unwrap()
        .sw
        .is_success());

    let stop = card.stop_signal();
    let puller = std::thread::spawn(move || {
        started_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the blocking command reached the card");
        stop.stop();
        let _ = gate_tx.send(());
    });
    let first = channel.transmit(&Command::new(0x80, 0x14, 0, 0));
    puller.join().unwrap();
    match first {
        Err(Error::Transport(
            TransportError::CardRemoved
            | TransportError::ShortResponse { .. }
            | TransportError::NoCard(_),
        )) => {}
        other => panic!("expected a transport error for the pulled card, got {other:?}"),
    }
    // Whatever pcsc-lite reported first, the session is gone and says so.
    assert!(pcscd.wait_card(READER0, false, Duration::from_secs(5)));
    let later = channel.transmit(&Command::new(0x80, 0x10, 0, 0).with_ne(2));
    assert!(
        matches!(
            later,
            Err(Error::Transport(
                TransportError::CardRemoved | TransportError::NoCard(_)
            ))
        ),
        "after removal: {later:?}"
    );
    drop(channel);
    drop(card);
}

#[test]
fn transactions_and_reset() {
    let pcscd = Pcscd::start();
    let card = CardInReader::insert(&pcscd, LoopbackCard::new(), PORT0);
    let mut t = pcscd.pcsc.connect(READER0).unwrap();
    let out = t
        .transaction(|t| {
            let a = t.transmit_raw(&[0x80, 0x10, 0, 0, 1]);
            let b = t.transmit_raw(&[0x80, 0x12, 0, 0, 1, 0x42]);
            (a, b)
        })
        .unwrap();
    assert_eq!(out.0.unwrap(), [0xA5, 0x90, 0x00]);
    assert_eq!(out.1.unwrap(), [0x42, 0x90, 0x00]);
    // Nested begin on the same card is refused, and the first transaction still ends cleanly.
    t.begin_transaction().unwrap();
    assert!(t.begin_transaction().is_err());
    t.end_transaction().unwrap();
    assert!(t.end_transaction().is_err());

    let before = t.atr();
    t.reset().unwrap();
    assert_eq!(t.atr(), before);
    assert_eq!(
        t.transmit_raw(&[0x80, 0x10, 0, 0, 1]).unwrap(),
        [0xA5, 0x90, 0x00]
    );
    drop(t);
    let card = card.pull();
    assert!(
        card.power_ons >= 2,
        "reset powered the card again ({} power-ons)",
        card.power_ons
    );
}

/// APDUs outside a transaction go out on the caller's thread through the card handle it shares
/// with the service thread: two readers driven from two threads at once, while one of them
/// also takes a transaction now and then, get every answer right and in order.
#[test]
fn two_readers_from_two_threads_with_transactions_in_between() {
    let pcscd = Pcscd::start();
    let card0 = CardInReader::insert(&pcscd, LoopbackCard::new(), PORT0);
    let card1 = CardInReader::insert(&pcscd, LoopbackCard::new(), PORT1);
    let drive = |reader: &'static str, with_transactions: bool| {
        let pcsc = pcscd.pcsc.clone();
        std::thread::spawn(move || {
            let mut t = pcsc.connect(reader).unwrap();
            for i in 0..300u32 {
                let byte = (i % 251) as u8;
                let echo = [0x80, 0x12, 0, 0, 2, byte, reader.len() as u8];
                let answer = if with_transactions && i % 50 == 0 {
                    t.transaction(|t| t.transmit_raw(&echo)).unwrap()
                } else {
                    t.transmit_raw(&echo)
                };
                assert_eq!(
                    answer.unwrap(),
                    [byte, reader.len() as u8, 0x90, 0x00],
                    "{reader}, APDU {i}"
                );
            }
        })
    };
    let a = drive(READER0, true);
    let b = drive(READER1, false);
    a.join().unwrap();
    b.join().unwrap();
    card0.pull();
    card1.pull();
}
