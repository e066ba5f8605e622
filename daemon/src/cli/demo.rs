//! `idcardd demo`: the product end to end on simulated readers, no hardware needed.
//!
//! Today it walks the card layer and the matcher: simulated cards are personalized under a
//! personalization session (mutual authentication + secure messaging), read back, left
//! deactivated; at "delivery" a live scan is compared with the template read from the chip
//! under a terminal session, the holder PIN is set and the card activated; one card is
//! terminated as lost and shown to refuse service. The chain grows as the daemon lands.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use apdu::card::{IdCard, PersoSession};
use apdu::fcp::LifeCycle;
use apdu::sim::{SimCard, SimConfig, SimTransport};
use apdu::sm::AesKey;
use apdu::Transport;
use matcher::compare::{compare, prepare, Scratch};
use matcher::template::CardFormat;
use serde::Serialize;

/// EF.COM (LDS1 common data).
const EF_COM: u16 = 0x011E;
/// DG1: document data.
const EF_DG1: u16 = 0x0101;
/// DG3: finger minutiae templates.
const EF_DG3: u16 = 0x0103;
/// Transport PIN set at personalization, replaced by the holder at delivery (demo values).
const TRANSPORT_PIN: &[u8] = b"000000";
/// PUK set at personalization (demo value).
const DEMO_PUK: &[u8] = b"12345678";
/// The holder's PIN chosen at the kiosk (demo value).
const HOLDER_PIN: &[u8] = b"482913";
/// The real scan set the demo enrols from, when the shared scans are present.
const SHARED_SET: &str = "../shared/fingerprints/fvc2002_db1_b";
/// The project's own synthetic scans (`idcardd fixtures synth`), used otherwise.
const FIXTURE_SET: &str = "fixtures/fingerprints";

/// Arguments of `idcardd demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the summary as one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Number of simulated readers (one card each).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(2..=16))]
    pub readers: u8,
    /// Folder of FVC-named scans (`<finger>_<impression>.png|tif`) for enrolment and live
    /// scans; default: `../shared/fingerprints/fvc2002_db1_b` when present, else the
    /// project's synthetic `fixtures/fingerprints`.
    #[arg(long)]
    pub scans: Option<PathBuf>,
    /// Keep the simulated cards' state here instead of a temporary folder.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// What happened to one card.
#[derive(Debug, Serialize)]
struct CardReport {
    reader: String,
    serial: String,
    /// Life-cycle state after each phase: fresh, personalized, delivered.
    states: Vec<String>,
    /// APDUs of the personalization (authentication, file creation, writes, read-back).
    perso_apdus: u64,
    perso_ms: f64,
    /// Bytes written to the chip.
    bytes_written: usize,
    /// Minutiae in the template stored on the chip, when scans were available.
    template_minutiae: Option<usize>,
    /// Score of a genuine live scan against the chip template.
    genuine_score: Option<f32>,
    /// Score of another finger's scan against the chip template.
    impostor_score: Option<f32>,
    delivered: bool,
    terminated: bool,
    /// The status the card gave after termination, as proof it refuses service.
    after_termination: Option<String>,
    /// Why a card was left alone (e.g. delivered in an earlier run).
    note: Option<String>,
}

#[derive(Debug, Serialize)]
struct Summary {
    cards: Vec<CardReport>,
    personalized: usize,
    delivered: usize,
    impostors_refused: usize,
    terminated: usize,
    /// Score threshold used for the delivery decision.
    threshold: Option<f32>,
    biometrics: String,
}

/// A live scan and an impostor scan for the finger enrolled on a card.
struct Biometrics {
    enrol: matcher::Fingerprint,
    live: matcher::Fingerprint,
    impostor: matcher::Fingerprint,
}

/// Runs `idcardd demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let temp;
    let state_dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    std::fs::create_dir_all(&state_dir)
        .with_context(|| format!("creating {}", state_dir.display()))?;
    let scans = args.scans.clone().or_else(default_scans);
    let biometrics_note = match &scans {
        Some(dir) => format!("scans from {}", dir.display()),
        None => "no scans found (run from the repository root): biometric steps skipped".into(),
    };
    let threshold = Some(matcher::compare::Threshold::FMR_0_1_PERCENT.score);

    let mut cards = Vec::new();
    for i in 0..args.readers as usize {
        let path = state_dir.join(format!("card{i}.json"));
        let config = SimConfig {
            seed: Some(1000 + i as u64),
            ..SimConfig::default()
        };
        let card = SimCard::open_or_create(&path, config)
            .with_context(|| format!("opening simulated card {}", path.display()))?;
        let reader = SimTransport::with_name(card, format!("sim:{i}"));
        let bio = match &scans {
            Some(dir) => Some(load_biometrics(dir, i)?),
            None => None,
        };
        let lost = i + 1 == args.readers as usize;
        cards.push(run_card(reader, bio.as_ref(), threshold, lost)?);
    }

    let summary = Summary {
        personalized: cards.iter().filter(|c| c.perso_apdus > 0).count(),
        delivered: cards.iter().filter(|c| c.delivered).count(),
        impostors_refused: cards
            .iter()
            .filter(|c| matches!((c.impostor_score, threshold), (Some(s), Some(t)) if s < t))
            .count(),
        terminated: cards.iter().filter(|c| c.terminated).count(),
        threshold,
        biometrics: biometrics_note,
        cards,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_tables(&summary);
    }
    Ok(())
}

fn default_scans() -> Option<PathBuf> {
    [SHARED_SET, FIXTURE_SET]
        .iter()
        .map(PathBuf::from)
        .find(|dir| dir.is_dir())
}

/// Enrols impression 1 of the `i`-th finger of the folder; the live scan is impression 2 of the
/// same finger, the impostor impression 2 of the next finger.
fn load_biometrics(dir: &Path, i: usize) -> anyhow::Result<Biometrics> {
    let samples = matcher::eval::fvc::scan_dir(dir)
        .with_context(|| format!("reading scans in {}", dir.display()))?;
    let mut fingers: Vec<u32> = samples.iter().map(|s| s.finger).collect();
    fingers.sort_unstable();
    fingers.dedup();
    if fingers.len() < 2 {
        bail!("{} needs scans of at least two fingers", dir.display());
    }
    let scan = |finger: u32, impression: u32| -> anyhow::Result<matcher::Fingerprint> {
        let sample = samples
            .iter()
            .find(|s| s.finger == finger && s.impression == impression)
            .with_context(|| format!("no scan {finger}_{impression} in {}", dir.display()))?;
        matcher::extract::extract_file(&sample.path, 500)
            .with_context(|| format!("extracting {}", sample.path.display()))
    };
    let finger = fingers[i % fingers.len()];
    let other = fingers[(i + 1) % fingers.len()];
    Ok(Biometrics {
        enrol: scan(finger, 1)?,
        live: scan(finger, 2)?,
        impostor: scan(other, 2)?,
    })
}

/// Personalizes, delivers (or terminates) one card and reports what happened.
fn run_card(
    reader: SimTransport,
    bio: Option<&Biometrics>,
    threshold: Option<f32>,
    lost: bool,
) -> anyhow::Result<CardReport> {
    let name = reader.reader_name().to_string();
    let faults = reader.faults();
    let mut card = IdCard::new(reader);
    let info = card.info().context("reading card info")?;
    let mut report = CardReport {
        reader: name,
        serial: hex::encode_upper(info.serial),
        states: vec![lcs_name(info.life_cycle)],
        perso_apdus: 0,
        perso_ms: 0.0,
        bytes_written: 0,
        template_minutiae: None,
        genuine_score: None,
        impostor_score: None,
        delivered: false,
        terminated: false,
        after_termination: None,
        note: None,
    };

    if info.life_cycle == LifeCycle::Creation {
        let dg1 = demo_dg1(&report.serial);
        let dg3 = match bio {
            Some(b) => {
                report.template_minutiae = Some(b.enrol.minutiae.len());
                matcher::template::encode(&b.enrol, CardFormat::Record)?
            }
            None => Vec::new(),
        };
        let ef_com = [0x60, 0x06, 0x5C, 0x04, 0x61, 0x63, 0x75, 0x6E];
        let start = Instant::now();
        let before = faults.apdu_count();
        let mut perso = card
            .authenticate_perso(&AesKey::test_perso_master())
            .context("personalization authentication")?;
        let mut files: Vec<(u16, &[u8])> = vec![(EF_COM, &ef_com), (EF_DG1, &dg1)];
        if !dg3.is_empty() {
            files.push((EF_DG3, &dg3));
        }
        write_files(&mut perso, &files)?;
        perso.set_pins(TRANSPORT_PIN, DEMO_PUK)?;
        perso.deactivate()?;
        drop(perso);
        report.perso_apdus = faults.apdu_count() - before;
        report.perso_ms = start.elapsed().as_secs_f64() * 1e3;
        report.bytes_written = files.iter().map(|(_, d)| d.len()).sum();
    }
    let state = card.life_cycle()?;
    report.states.push(lcs_name(state));
    if state != LifeCycle::Deactivated {
        // A card kept from an earlier run (--state-dir) was delivered or terminated already.
        report.note = Some(format!("already {}: nothing to deliver", lcs_name(state)));
        return Ok(report);
    }

    let terminal_master = AesKey::test_terminal_master();
    let mut session = card
        .authenticate_terminal(&terminal_master)
        .context("terminal authentication")?;
    if lost {
        session.terminate()?;
        drop(session);
        report.terminated = true;
        report.after_termination = Some(match card.select_application() {
            Ok(()) => "still answers (unexpected)".into(),
            Err(e) => e.to_string(),
        });
    } else {
        let accepted = match (bio, threshold) {
            (Some(b), Some(t)) => {
                let chip = session.read_file(EF_DG3)?;
                let stored = matcher::template::decode(&chip, CardFormat::Record, 500)?;
                let candidate = prepare(&stored);
                let mut scratch = Scratch::new();
                let genuine = compare(&prepare(&b.live), &candidate, &mut scratch);
                let impostor = compare(&prepare(&b.impostor), &candidate, &mut scratch);
                report.genuine_score = Some(genuine);
                report.impostor_score = Some(impostor);
                genuine >= t
            }
            // Without scans the demo cannot check the holder; it says so and still activates.
            _ => true,
        };
        if accepted {
            session
                .change_pin(TRANSPORT_PIN, HOLDER_PIN)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            session.activate()?;
            report.delivered = true;
        }
        drop(session);
    }
    report.states.push(lcs_name(card.life_cycle()?));
    Ok(report)
}

/// Creates and writes each file, then reads it back and compares.
fn write_files<T: Transport>(
    perso: &mut PersoSession<'_, T>,
    files: &[(u16, &[u8])],
) -> anyhow::Result<()> {
    for &(fid, data) in files {
        let sfi = (fid & 0x1F) as u8;
        perso.create_file(fid, Some(sfi), data.len() as u32)?;
        perso.write_file(fid, data)?;
        let back = perso.read_file(fid)?;
        if back != data {
            bail!("read-back of file {fid:04X} differs from what was written");
        }
    }
    Ok(())
}

/// A DG1 with a TD1-style machine-readable zone (ICAO 9303-10 §4.7.1: tag 61 { 5F1F MRZ }).
fn demo_dg1(serial: &str) -> Vec<u8> {
    let doc = &serial[serial.len().saturating_sub(9)..];
    let mrz = format!(
        "I<IRN{doc:<9}<0012345678<<<<<<<8501011M3601019IRN<<<<<<<<<<<0REZAEI<<ALI<<<<<<<<<<<<<<<<<<<<"
    );
    let mrz = &mrz.as_bytes()[..90];
    let inner = apdu::tlv::Tlv::primitive(apdu::tlv::Tag(0x5F1F), mrz.to_vec());
    apdu::tlv::Tlv::constructed(apdu::tlv::Tag(0x61), vec![inner]).encode()
}

fn lcs_name(lcs: LifeCycle) -> String {
    format!("{lcs:?}")
}

fn print_tables(s: &Summary) {
    println!(
        "idcardd demo: {} simulated readers ({})",
        s.cards.len(),
        s.biometrics
    );
    println!();
    println!(
        "{:<7} {:<17} {:<44} {:>6} {:>8} {:>6} {:>8} {:>8}",
        "reader", "serial", "life cycle", "APDUs", "perso ms", "bytes", "genuine", "impostor"
    );
    for c in &s.cards {
        let score = |v: Option<f32>| v.map_or("-".to_string(), |v| format!("{v:.3}"));
        println!(
            "{:<7} {:<17} {:<44} {:>6} {:>8.1} {:>6} {:>8} {:>8}",
            c.reader,
            c.serial,
            c.states.join(" -> "),
            c.perso_apdus,
            c.perso_ms,
            c.bytes_written,
            score(c.genuine_score),
            score(c.impostor_score)
        );
        if let Some(why) = &c.after_termination {
            println!("        terminated as lost; the card now answers: {why}");
        }
        if let Some(note) = &c.note {
            println!("        {note}");
        }
    }
    println!();
    println!(
        "personalized {}  delivered {}  impostors refused {}  terminated {}  threshold {}",
        s.personalized,
        s.delivered,
        s.impostors_refused,
        s.terminated,
        s.threshold.map_or("-".into(), |t| format!("{t:.3}"))
    );
}
