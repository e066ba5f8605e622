//! The ID card scenario end to end: real pcscd + vsmartcard-vpcd + the `idcardd sim vpcd`
//! process, driven by the `idcardd` CLI and by the host library through PC/SC.

use apdu::card::IdCard;
use apdu::fcp::LifeCycle;
use apdu::Transport;
use idcardd_e2e::{run_idcardd, Pcscd, SimProcess, PORT0, READER0};
use test_support::data::pattern;

#[test]
fn personalization_through_pcscd_and_the_simulator_process() {
    let pcscd = Pcscd::start();
    let state = pcscd.dir.path().join("card.json");
    let sim = SimProcess::start(&pcscd, &state, PORT0);

    // idcardd readers sees the card in the vpcd reader.
    let (code, out, err) = run_idcardd(&["readers", "--json", "--sim", "0"], &[]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let r0 = v["pcsc"]["readers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == READER0)
        .unwrap()
        .clone();
    assert_eq!(r0["card_present"], true);
    assert!(r0["atr"].as_str().unwrap().starts_with("3B"));

    // idcardd card info on a fresh card.
    let (code, out, err) = run_idcardd(&["card", "info", "--reader", READER0, "--json"], &[]);
    assert_eq!(code, 0, "{err}");
    let info: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(info["life_cycle"], "Creation");
    assert_eq!(info["files"].as_array().unwrap().len(), 0);
    let serial = info["serial"].as_str().unwrap().to_string();
    assert_eq!(serial.len(), 16);

    // idcardd apdu: select the application and read the serial, decoded.
    let (code, out, err) = run_idcardd(
        &[
            "apdu",
            "--reader",
            READER0,
            "00 A4 04 0C 07 A0 00 00 02 47 10 01",
            "00CA010108",
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[1].starts_with("< 9000"), "{out}");
    assert!(lines[3].starts_with(&format!("< {serial} 9000")), "{out}");

    // The host library through PC/SC: personalize three files (one of 10 KiB) under secure
    // messaging and read them back.
    let files = [
        (0x0101u16, pattern(90, 1)),
        (0x0102, pattern(10 * 1024, 2)),
        (0x0103, pattern(700, 3)),
    ];
    {
        let transport = pcscd.pcsc.connect(READER0).unwrap();
        assert!(
            transport.capabilities().extended_length,
            "the ATR announces extended length"
        );
        let mut card = IdCard::new(transport);
        assert_eq!(hex::encode_upper(card.info().unwrap().serial), serial);
        let mut perso = card
            .authenticate_perso(&cardsim::fixtures::TestMasters)
            .unwrap();
        for (i, (fid, data)) in files.iter().enumerate() {
            perso
                .create_file(*fid, Some(i as u8 + 1), data.len() as u32)
                .unwrap();
            perso.write_file(*fid, data).unwrap();
        }
        for (fid, data) in &files {
            assert_eq!(&perso.read_file(*fid).unwrap(), data, "EF {fid:04X}");
        }
    }

    // SIGTERM stops the simulator cleanly; the state survives a restart.
    let status = sim.stop().expect("idcardd sim vpcd exits on SIGTERM");
    assert!(status.success(), "exit status {status:?}");
    assert!(pcscd.wait_card(READER0, false, std::time::Duration::from_secs(5)));
    let _sim = SimProcess::start(&pcscd, &state, PORT0);
    let mut card = IdCard::new(pcscd.pcsc.connect(READER0).unwrap());
    let info = card.info().unwrap();
    assert_eq!(hex::encode_upper(info.serial), serial);
    assert_ne!(info.life_cycle, LifeCycle::Terminated);
    let sizes: Vec<(u16, Option<u32>)> = files
        .iter()
        .map(|(f, d)| (*f, Some(d.len() as u32)))
        .collect();
    assert_eq!(info.files, sizes);
}

#[test]
fn cli_reports_bad_input_and_missing_readers_with_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let sim_dir = dir.path().to_str().unwrap();
    // Malformed hex: nothing is sent, a clear error, exit code 1.
    let (code, out, err) = run_idcardd(
        &["apdu", "--reader", "sim:0", "--sim-dir", sim_dir, "00A4zz"],
        &[],
    );
    assert_eq!(code, 1);
    assert!(
        out.is_empty() && err.contains("00A4zz") && err.contains("invalid hex"),
        "{err}"
    );
    // An APDU with an inconsistent length is refused the same way.
    let (code, _, err) = run_idcardd(
        &[
            "apdu",
            "--reader",
            "sim:0",
            "--sim-dir",
            sim_dir,
            "00A4040C05A0",
        ],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("Lc"), "{err}");
    // A simulated reader works without pcscd, and a failing status word stops with exit 1.
    let (code, out, err) = run_idcardd(
        &[
            "apdu",
            "--reader",
            "sim:0",
            "--sim-dir",
            sim_dir,
            "00A4040C07A0000002471001",
            "00B0000004",
        ],
        &[],
    );
    assert_eq!(code, 1, "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("< 9000"), "{out}");
    assert!(err.contains("use --keep-going"), "{err}");
    let (code, out, _) = run_idcardd(
        &["card", "info", "--reader", "sim:0", "--sim-dir", sim_dir],
        &[],
    );
    assert_eq!(code, 0);
    assert!(out.contains("Life cycle:  Creation (01)"), "{out}");
    let (code, _, err) = run_idcardd(
        &["card", "info", "--reader", "sim:x", "--sim-dir", sim_dir],
        &[],
    );
    assert_eq!(code, 1);
    assert!(err.contains("expected sim:N"), "{err}");
}

/// A card that is pulled (its vpcd connection closed, the command not executed) when the
/// armed number of further APDUs has reached it.
struct PulledMidWrite {
    /// The simulated card.
    inner: cardsim::SimCard,
    /// APDUs still to process before the pull (`None`: not armed).
    left: std::sync::Arc<std::sync::Mutex<Option<usize>>>,
    /// Pulls the card.
    stop: std::sync::Arc<std::sync::Mutex<Option<cardsim::vpcd::StopSignal>>>,
}

impl cardsim::CardHandler for PulledMidWrite {
    fn atr(&self) -> Vec<u8> {
        cardsim::CardHandler::atr(&self.inner)
    }
    fn power_on(&mut self) {
        self.inner.power_on()
    }
    fn power_off(&mut self) {
        self.inner.power_off()
    }
    fn process_apdu(&mut self, apdu: &[u8]) -> Vec<u8> {
        let mut left = self.left.lock().unwrap();
        match *left {
            Some(0) => {
                *left = None;
                if let Some(stop) = self.stop.lock().unwrap().as_ref() {
                    stop.stop();
                }
                Vec::new()
            }
            Some(n) => {
                *left = Some(n - 1);
                self.inner.process_apdu(apdu)
            }
            None => self.inner.process_apdu(apdu),
        }
    }
}

#[test]
fn card_pulled_during_personalization_then_reinserted() {
    use apdu::{Error, TransportError};
    use cardsim::{SimCard, SimConfig};
    use idcardd_e2e::CardInReader;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    let pcscd = Pcscd::start();
    let left = Arc::new(Mutex::new(None));
    let stop = Arc::new(Mutex::new(None));
    let card = PulledMidWrite {
        inner: SimCard::create(
            None,
            SimConfig {
                seed: Some(11),
                ..SimConfig::default()
            },
        )
        .unwrap(),
        left: Arc::clone(&left),
        stop: Arc::clone(&stop),
    };
    let inserted = CardInReader::insert(&pcscd, card, PORT0);
    *stop.lock().unwrap() = Some(inserted.stop_signal());
    let data = pattern(30 * 1024, 5);
    let err = {
        let mut card = IdCard::new(pcscd.pcsc.connect(READER0).unwrap());
        let mut perso = card
            .authenticate_perso(&cardsim::fixtures::TestMasters)
            .unwrap();
        perso
            .create_file(0x0102, Some(2), data.len() as u32)
            .unwrap();
        // The card goes away on the fourth APDU of this 8-APDU write.
        *left.lock().unwrap() = Some(3);
        perso.write_file(0x0102, &data).unwrap_err()
    };
    assert!(
        matches!(
            err,
            Error::Transport(
                TransportError::CardRemoved
                    | TransportError::ShortResponse { .. }
                    | TransportError::NoCard(_)
            )
        ),
        "{err:?}"
    );
    // Reinsert the same card: a new session finishes the job.
    let card = inserted.pull();
    assert!(pcscd.wait_card(READER0, false, Duration::from_secs(5)));
    let _again = CardInReader::insert(&pcscd, card, PORT0);
    let mut card = IdCard::new(pcscd.pcsc.connect(READER0).unwrap());
    let mut perso = card
        .authenticate_perso(&cardsim::fixtures::TestMasters)
        .unwrap();
    perso.write_file(0x0102, &data).unwrap();
    assert_eq!(perso.read_file(0x0102).unwrap(), data);
}

#[test]
fn readers_watch_prints_hot_plug_events() {
    use std::io::BufRead;
    let pcscd = Pcscd::start();
    let mut child = std::process::Command::new(idcardd_e2e::idcardd())
        .args(["readers", "--watch", "--json", "--sim", "0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let mut next_event = |kind: &str| -> serde_json::Value {
        loop {
            let line = lines
                .next()
                .expect("idcardd readers --watch ended")
                .unwrap();
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) {
                if v["event"] == kind && v["reader"] == READER0 {
                    return v;
                }
            }
        }
    };
    next_event("reader_added");
    let state = pcscd.dir.path().join("watched.json");
    let sim = SimProcess::start(&pcscd, &state, PORT0);
    let inserted = next_event("card_inserted");
    assert!(inserted["atr"].as_str().unwrap().starts_with("3B"));
    assert!(sim.stop().is_some_and(|s| s.success()));
    next_event("card_removed");
    idcardd_e2e::terminate(&mut child, std::time::Duration::from_secs(5));
}
