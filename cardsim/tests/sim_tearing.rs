//! Card tearing during personalization: a multi-file write (EF.COM, DG1, a 3 KiB DG2, EF.SOD)
//! through the transmit chokepoint under secure messaging, with the card pulled at every APDU
//! position. Every time, the host gets a clean error, and the persisted card state is exactly
//! the state after the last whole APDU: no UPDATE BINARY is ever half applied, except when the
//! fault tears that very UPDATE after `k` bytes, and then exactly `k` bytes are written.

use std::path::Path;
use std::sync::{Arc, Mutex};

use apdu::card::IdCard;
use apdu::layout;
use apdu::{Capabilities, Error, Transport, TransportError};
use cardsim::{FaultHandle, Faults, SimCard, SimConfig, SimTransport};

const SERIAL: [u8; 8] = *b"TEAR0001";

/// The files personalization writes: (FID, SFI, contents). Contents never contain 00, so the
/// bytes an UPDATE wrote are exactly the bytes that differ from the erased file.
fn files() -> Vec<(u16, u8, Vec<u8>)> {
    let pattern = |len: usize, seed: u8| -> Vec<u8> {
        (0..len)
            .map(|i| ((i * 31 + seed as usize) % 255 + 1) as u8)
            .collect()
    };
    vec![
        (layout::EF_COM, 0x1E, pattern(30, 1)),
        (layout::EF_DG1, 0x01, pattern(93, 2)),
        (layout::EF_DG2, 0x02, pattern(3072, 3)),
        (layout::EF_SOD, 0x1D, pattern(1500, 4)),
    ]
}

/// What the card holds for each file of [`files`]: `None` before CREATE FILE.
type Snapshot = Vec<Option<Vec<u8>>>;

fn snapshot(card: &SimCard) -> Snapshot {
    files()
        .iter()
        .map(|(fid, _, _)| card.app_file(*fid))
        .collect()
}

/// The personalization run under test: authenticate, then create and write each file.
fn personalize<T: Transport>(card: &mut IdCard<T>) -> Result<(), Error> {
    let mut perso = card.authenticate_perso(&cardsim::fixtures::TestMasters)?;
    for (fid, sfi, data) in files() {
        perso.create_file(fid, Some(sfi), data.len() as u32)?;
        perso.write_file(fid, &data)?;
    }
    Ok(())
}

/// A reader that records, after each APDU, its INS byte (plain even under secure messaging)
/// and the card's files.
struct Recorder {
    inner: SimTransport,
    handle: FaultHandle,
    log: Arc<Mutex<Vec<(u8, Snapshot)>>>,
}

impl Transport for Recorder {
    fn transmit_raw(&mut self, apdu: &[u8]) -> Result<Vec<u8>, TransportError> {
        let out = self.inner.transmit_raw(apdu);
        let snap = self.handle.with_card(|c| snapshot(c));
        self.log.lock().unwrap().push((apdu[1], snap));
        out
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

fn new_card(path: &Path, config: &SimConfig) -> SimTransport {
    SimTransport::new(SimCard::create(Some(path.to_path_buf()), config.clone()).unwrap())
}

/// The untorn run: `states[i]` is the card after the first `i` APDUs, `ins[i]` the INS of
/// APDU `i`.
fn reference(dir: &Path, config: &SimConfig) -> (Vec<Snapshot>, Vec<u8>) {
    let inner = new_card(&dir.join("reference.json"), config);
    let handle = inner.faults();
    let first = handle.with_card(|c| snapshot(c));
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut card = IdCard::new(Recorder {
        inner,
        handle,
        log: Arc::clone(&log),
    });
    personalize(&mut card).unwrap();
    let log = log.lock().unwrap();
    let mut states = vec![first];
    states.extend(log.iter().map(|(_, s)| s.clone()));
    (states, log.iter().map(|(ins, _)| *ins).collect())
}

/// Runs personalization on a fresh card with `faults`, checks the host saw a clean transport
/// error, and returns the state reopened from disk.
fn torn_run(path: &Path, config: &SimConfig, faults: Faults) -> SimCard {
    let transport = new_card(path, config);
    transport.faults().set(faults);
    let mut card = IdCard::new(transport);
    let err = personalize(&mut card).expect_err("the card was pulled");
    assert!(
        matches!(
            err,
            Error::Transport(
                TransportError::ShortResponse { len: 0 } | TransportError::CardRemoved
            )
        ),
        "{faults:?}: {err}"
    );
    drop(card);
    SimCard::open(path).unwrap()
}

/// Each file holds a prefix of its contents followed by erased bytes.
fn assert_prefixes(state: &Snapshot) {
    for ((fid, _, data), held) in files().iter().zip(state) {
        if let Some(held) = held {
            let m = held.iter().position(|&b| b == 0).unwrap_or(held.len());
            assert_eq!(&held[..m], &data[..m], "{fid:04X}");
            assert!(held[m..].iter().all(|&b| b == 0), "{fid:04X}");
        }
    }
}

/// The file and byte range that APDU `i` wrote: the bytes that differ between states.
fn written_range(before: &Snapshot, after: &Snapshot) -> (usize, usize, usize) {
    for (f, (b, a)) in before.iter().zip(after).enumerate() {
        if let (Some(b), Some(a)) = (b, a) {
            let diff: Vec<usize> = (0..a.len()).filter(|&j| a[j] != b[j]).collect();
            if let (Some(&lo), Some(&hi)) = (diff.first(), diff.last()) {
                return (f, lo, hi + 1);
            }
        }
    }
    panic!("the UPDATE BINARY changed nothing");
}

fn tear_everywhere(config: SimConfig, ks: fn(usize) -> Vec<usize>) {
    let dir = tempfile::tempdir().unwrap();
    let (states, ins) = reference(dir.path(), &config);
    let n = ins.len();
    let updates = ins.iter().filter(|&&i| i == 0xD6).count();
    assert!(
        updates >= 6,
        "DG2 and SOD take several UPDATE BINARY commands ({updates})"
    );
    assert_eq!(
        states[n],
        files()
            .into_iter()
            .map(|(_, _, d)| Some(d))
            .collect::<Snapshot>()
    );

    for i in 0..n {
        // Pulled before APDU i: exactly the state after i whole APDUs.
        let path = dir.path().join(format!("after-{i}.json"));
        let card = torn_run(
            &path,
            &config,
            Faults {
                tear_after: Some(i as u64),
                ..Faults::default()
            },
        );
        let state = snapshot(&card);
        assert_eq!(
            state, states[i],
            "tear before APDU {i} (INS {:02X})",
            ins[i]
        );
        assert_prefixes(&state);
        // The torn card still works: the personalization key is not blocked.
        let mut again = IdCard::new(SimTransport::new(card));
        again
            .authenticate_perso(&cardsim::fixtures::TestMasters)
            .unwrap();

        if ins[i] != 0xD6 {
            continue;
        }
        // Pulled during UPDATE BINARY i after k bytes: exactly those k bytes are written.
        let (f, lo, hi) = written_range(&states[i], &states[i + 1]);
        for k in ks(hi - lo) {
            let path = dir.path().join(format!("torn-{i}-{k}.json"));
            let faults = Faults {
                tear_in_update: Some((i as u64, k)),
                ..Faults::default()
            };
            let state = snapshot(&torn_run(&path, &config, faults));
            let mut want = states[i].clone();
            let after = states[i + 1][f].as_ref().unwrap();
            want[f].as_mut().unwrap()[lo..lo + k].copy_from_slice(&after[lo..lo + k]);
            assert_eq!(
                state,
                want,
                "tear in APDU {i} after {k} of {} bytes",
                hi - lo
            );
            assert_prefixes(&state);
        }
    }
}

#[test]
fn tearing_at_every_apdu_extended_length() {
    let config = SimConfig {
        serial: Some(SERIAL),
        max_command_data: 1024,
        max_response_data: 1024,
        ..SimConfig::default()
    };
    tear_everywhere(config, |len| vec![0, 1, len / 2, len - 1, len]);
}

#[test]
fn tearing_at_every_apdu_short_length() {
    let config = SimConfig {
        serial: Some(SERIAL),
        extended_length: false,
        max_command_data: 255,
        max_response_data: 256,
        ..SimConfig::default()
    };
    tear_everywhere(config, |len| vec![len / 3]);
}
