//! `idcardd batch`: personalize a manifest of applicant records on several readers, resumable
//! after a crash (see [`issuance::batch`]).
//!
//! ```text
//! idcardd pki init STATE/pki
//! idcardd batch run records.jsonl --readers sim:4 --state-dir STATE
//! idcardd batch resume --state-dir STATE          # after a crash: finishes the batch
//! idcardd batch status --state-dir STATE [--json]
//! idcardd batch report BATCH --state-dir STATE    # writes STATE/reports/BATCH.{json,csv}
//! ```

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::{bail, Context as _};

use crate::service::{Service, ServiceConfig};

use issuance::batch::{self, Progress, Runner};
use issuance::journal::{BatchState, Journal};
use issuance::personalize::NoHooks;
use issuance::pki::DocumentSigner;
use issuance::profile::ProfileSet;
use keystore::KeyStore;

/// Options every batch subcommand shares.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// State directory: journal, simulated cards, PIN mailer, reports (default: the parent of
    /// the default simulated-card folder, e.g. ~/.local/state/idcardd).
    #[arg(long, global = true)]
    pub state_dir: Option<PathBuf>,
    /// A daemon configuration file whose `[keys]` section names the issuer's token (default:
    /// the embedded SoftHSM token of the state directory) and whose `journal` and `station_id`
    /// name a line's shared journal and this station (default: the state directory's own).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
}

/// Options of the subcommands that write cards.
#[derive(Debug, clap::Args)]
pub struct WriteOptions {
    /// Readers: `sim:N` alone means N simulated readers sim:0..sim:N-1; otherwise a
    /// comma-separated list of reader names (PC/SC names, `sim:K`).
    #[arg(long)]
    pub readers: Option<String>,
    /// Document Signer directory (`idcardd pki init`); default STATE/pki.
    #[arg(long)]
    pub pki: Option<PathBuf>,
    /// Folder of card profiles (`*.toml`) replacing the built-in ones.
    #[arg(long)]
    pub profiles: Option<PathBuf>,
    /// Print the run summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// Subcommands of `idcardd batch`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Journal a manifest (one applicant JSON record per line) as a new batch and run it.
    Run {
        /// The manifest (JSONL). Relative paths in records resolve against its folder.
        manifest: PathBuf,
        /// Options.
        #[command(flatten)]
        write: WriteOptions,
        /// Shared options.
        #[command(flatten)]
        common: Common,
    },
    /// Finish a batch a crash or a cancel left unfinished (default: the newest unfinished one).
    Resume {
        /// Batch id.
        batch: Option<String>,
        /// Options (readers default to the batch's own).
        #[command(flatten)]
        write: WriteOptions,
        /// Shared options.
        #[command(flatten)]
        common: Common,
    },
    /// Counts per state of one batch, or of every batch.
    Status {
        /// Batch id (default: every batch).
        batch: Option<String>,
        /// JSON on stdout.
        #[arg(long)]
        json: bool,
        /// Shared options.
        #[command(flatten)]
        common: Common,
    },
    /// Write the batch report (JSON and CSV) under STATE/reports and print their paths.
    Report {
        /// Batch id.
        batch: String,
        /// Shared options.
        #[command(flatten)]
        common: Common,
    },
    /// Figures: cards per minute with 1, 2, 4 simulated readers in-process, APDUs per card, and
    /// (with --pcsc-reader) wall time per card through pcscd + vpcd against the same
    /// personalization over the bare vpcd socket (no pcscd) and in process.
    Bench(BenchArgs),
    /// Claim latency of the journal (`--config`: a line's PostgreSQL journal; default the state
    /// directory's SQLite one): a batch of N small records claimed and settled by W threads at
    /// once; prints p50, p99 and the claims per second.
    BenchClaims {
        /// Records in the batch.
        #[arg(long, default_value_t = 2000)]
        records: u64,
        /// Threads claiming at once (readers of the line).
        #[arg(long, default_value_t = 4)]
        workers: usize,
        /// Shared options.
        #[command(flatten)]
        common: Common,
    },
    /// Print a manifest of N generated valid records (the bench's records, inline images) on
    /// stdout: load for a line's figures (`scripts/bench_line.sh`).
    Manifest {
        /// How many records.
        #[arg(long, default_value_t = 200)]
        cards: u64,
        /// The repository's fixtures folder.
        #[arg(long, default_value = "fixtures")]
        fixtures: PathBuf,
    },
    /// Stop a batch: no more records are claimed (`resume` restarts it).
    Cancel {
        /// Batch id.
        batch: String,
        /// Shared options.
        #[command(flatten)]
        common: Common,
    },
}

/// Arguments of `idcardd batch bench`.
#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Cards per in-process run.
    #[arg(long, default_value_t = 60)]
    pub cards: u64,
    /// Numbers of simulated readers to measure, comma-separated.
    #[arg(long, default_value = "1,2,4")]
    pub readers: String,
    /// The repository's fixtures folder (applicant record and ISO templates).
    #[arg(long, default_value = "fixtures")]
    pub fixtures: PathBuf,
    /// A vpcd reader of a running pcscd (e.g. "Virtual PCD 00 00"): cards are served to it
    /// from this process on --vpcd-port, personalized through PC/SC, and compared with the
    /// same personalization over the bare vpcd socket protocol (this process in vpcd's place)
    /// and on the in-process transport.
    #[arg(long)]
    pub pcsc_reader: Option<String>,
    /// vpcd TCP port of --pcsc-reader.
    #[arg(long, default_value_t = 35963)]
    pub vpcd_port: u16,
    /// Cards personalized through PC/SC (and as many over the socket and in process).
    #[arg(long, default_value_t = 10)]
    pub pcsc_cards: u64,
    /// JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn state_dir(common: &Common) -> PathBuf {
    common.state_dir.clone().unwrap_or_else(|| {
        let sim = issuance::readers::default_sim_dir();
        sim.parent().map(Path::to_path_buf).unwrap_or(sim)
    })
}

/// The journal settings of `--config` (a line's shared journal, this station's id), or the
/// state directory's own journal.
fn journal_config(common: &Common) -> anyhow::Result<issuance::journal::JournalConfig> {
    match &common.config {
        Some(path) => crate::server::config::FileConfig::load(path)?.journal_config(),
        None => Ok(Default::default()),
    }
}

/// The journal `--config` names, or the state directory's own.
fn open_journal(common: &Common) -> anyhow::Result<Journal> {
    Ok(journal_config(common)?.open(&state_dir(common), Default::default())?)
}

/// Expands `--readers`: `sim:N` alone is N simulated readers, else a comma-separated list.
pub fn parse_readers(spec: &str) -> anyhow::Result<Vec<String>> {
    let items: Vec<String> = spec
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    if let [one] = &items[..] {
        if let Some(n) = issuance::readers::parse_sim_name(one)? {
            if n == 0 {
                bail!("--readers sim:0 means no reader; give at least sim:1");
            }
            return Ok((0..n).map(|i| format!("sim:{i}")).collect());
        }
    }
    if items.is_empty() {
        bail!("--readers names no reader");
    }
    Ok(items)
}

/// The station's parts for a run in `dir`, from the composition root: the Document Signer
/// from `--pki` (default `dir/pki`), profiles from `--profiles`.
fn station(dir: &Path, write: &WriteOptions, common: &Common) -> anyhow::Result<Service> {
    let mut config = ServiceConfig::new(dir.to_path_buf(), Vec::new());
    config.keys = super::keys::configured_keys(common.config.as_deref())?;
    config.journal = journal_config(common)?;
    config.pki_dir = Some(write.pki.clone().unwrap_or_else(|| dir.join("pki")));
    config.profiles_dir = write.profiles.clone();
    Service::open(config)
}

/// Runs `idcardd batch`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Run {
            manifest,
            write,
            common,
        } => {
            let svc = station(&state_dir(&common), &write, &common)?;
            let journal = svc.batches.journal();
            let readers = parse_readers(write.readers.as_deref().unwrap_or("sim:1"))?;
            let records = batch::read_manifest(&manifest)?;
            let source = manifest
                .canonicalize()
                .unwrap_or(manifest.clone())
                .display()
                .to_string();
            let id = batch::submit(journal, &source, &readers, &records)?;
            eprintln!(
                "batch {id}: {} records on {}",
                records.len(),
                readers.join(", ")
            );
            execute(&svc, &id, &readers, &write)
        }
        Command::Resume {
            batch,
            write,
            common,
        } => {
            let svc = station(&state_dir(&common), &write, &common)?;
            let journal = svc.batches.journal();
            let row = match batch {
                Some(id) => journal.batch(&id)?,
                None => journal
                    .batches()?
                    .into_iter()
                    .find(|b| b.state != BatchState::Finished)
                    .context("no unfinished batch to resume")?,
            };
            let readers = match &write.readers {
                Some(spec) => parse_readers(spec)?,
                None => parse_readers(&row.readers)?,
            };
            eprintln!("resuming batch {} on {}", row.id, readers.join(", "));
            execute(&svc, &row.id, &readers, &write)
        }
        Command::Status {
            batch,
            json,
            common,
        } => {
            let journal = open_journal(&common)?;
            let rows = match batch {
                Some(id) => vec![journal.batch(&id)?],
                None => journal.batches()?,
            };
            let mut out = Vec::new();
            for b in rows {
                let counts = journal.counts(&b.id)?;
                out.push(serde_json::json!({"batch": b, "counts": counts}));
            }
            if json {
                println!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                println!(
                    "{:<24} {:<9} {:>6} {:>8} {:>8} {:>8} {:>9} {:>7}",
                    "batch", "state", "total", "pending", "writing", "perso", "qc_failed", "failed"
                );
                for o in &out {
                    let c = &o["counts"];
                    println!(
                        "{:<24} {:<9} {:>6} {:>8} {:>8} {:>8} {:>9} {:>7}",
                        o["batch"]["id"].as_str().unwrap_or(""),
                        o["batch"]["state"].as_str().unwrap_or(""),
                        c["total"],
                        c["pending"],
                        c["writing"],
                        c["personalized"],
                        c["qc_failed"],
                        c["failed"]
                    );
                }
            }
            Ok(())
        }
        Command::Report { batch, common } => {
            let dir = state_dir(&common);
            let journal = open_journal(&common)?;
            let report = batch::report(&journal, &batch)?;
            let (json, csv) = batch::write_report(&dir, &report)?;
            println!("{}\n{}", json.display(), csv.display());
            Ok(())
        }
        Command::Bench(args) => bench(&args),
        Command::BenchClaims {
            records,
            workers,
            common,
        } => bench_claims(&open_journal(&common)?, records, workers),
        Command::Manifest { cards, fixtures } => {
            let profiles = ProfileSet::builtin()?;
            let good = usable_templates(&fixtures, &profiles)?;
            for i in 0..cards {
                println!("{}", bench_record(&fixtures, &good, i)?);
            }
            Ok(())
        }
        Command::Cancel { batch, common } => {
            let journal = open_journal(&common)?;
            batch::cancel(&journal, &batch)?;
            println!("batch {batch} cancelled");
            Ok(())
        }
    }
}

/// Runs (or resumes) batch `id`, drawing a progress bar on a terminal, then writes the report.
/// The parts come from the composition root ([`Service::open`]), as for `idcardd serve`.
fn execute(
    svc: &Service,
    id: &str,
    readers: &[String],
    write: &WriteOptions,
) -> anyhow::Result<()> {
    let dir = &svc.config.state_dir;
    let journal = svc.batches.journal();
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).context("installing signals")?;
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let total = journal.counts(id).map_or(0, |c| c.total);
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} {per_sec} eta {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let progress = |p: &Progress| {
        if let Some(bar) = &bar {
            bar.set_position(p.counts.done());
            bar.set_message(format!(
                "perso {} qc_failed {} failed {}",
                p.counts.personalized, p.counts.qc_failed, p.counts.failed
            ));
        }
        tracing::debug!(
            tracking_code = %p.event.tracking_code,
            state = p.event.state.as_str(),
            reader = %p.event.reader,
            "record"
        );
    };
    let summary = svc.batches.run(id, readers, &stop, &progress).map_err(|e| {
        anyhow::anyhow!(
            "{e} (the Document Signer is read from {}; create a test one with `idcardd pki init`)",
            svc.config.pki_dir.as_deref().unwrap_or(dir).display()
        )
    });
    if let Some(bar) = &bar {
        bar.finish();
    }
    let summary = summary?;
    let report = batch::report(journal, id)?;
    let (json_path, csv_path) = batch::write_report(dir, &report)?;
    if write.json {
        let mut v = serde_json::to_value(&summary)?;
        v["report_json"] = json_path.display().to_string().into();
        v["report_csv"] = csv_path.display().to_string().into();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let c = &summary.counts;
        println!(
            "batch {}: {} records: {} personalized, {} qc_failed, {} failed, {} pending",
            id,
            c.total,
            c.personalized,
            c.qc_failed,
            c.failed,
            c.pending + c.writing
        );
        println!(
            "this run: {} cards in {:.1} s ({:.1} cards/min, {} APDUs/card)",
            summary.personalized_now,
            summary.wall_s,
            summary.cards_per_minute,
            summary
                .apdus_per_card
                .map_or("-".into(), |a| format!("{a:.1}"))
        );
        println!("report: {} {}", json_path.display(), csv_path.display());
    }
    Ok(())
}

/// The fixture ISO templates that pass the national profile's QC minimums, one per synthetic
/// finger (chosen by content: the synthetic fixtures are regenerated from time to time).
fn usable_templates(fixtures: &Path, profiles: &ProfileSet) -> anyhow::Result<Vec<PathBuf>> {
    let policy = &profiles
        .get("national-id")
        .context("no national-id profile")?
        .fingers;
    let dir = fixtures.join("fingerprints").canonicalize()?;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "iso"))
        .collect();
    paths.sort();
    let mut by_finger = std::collections::BTreeMap::new();
    for p in paths {
        let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        let finger = stem.split('_').next().unwrap_or_default().to_string();
        let bytes = std::fs::read(&p)?;
        let Ok(fp) = matcher::template::decode(&bytes, matcher::template::CardFormat::Record, 500)
        else {
            continue;
        };
        if fp.quality >= policy.min_quality && fp.minutiae.len() >= policy.min_minutiae {
            by_finger.entry(finger).or_insert(p);
        }
    }
    let good: Vec<PathBuf> = by_finger.into_values().collect();
    if good.len() < 2 {
        bail!("fewer than two usable ISO templates in {}", dir.display());
    }
    Ok(good)
}

/// A valid national-id record `i` for benchmarks: the fixture record with two usable fixture
/// ISO templates (absolute paths) and a national code of its own.
fn bench_record(fixtures: &Path, good: &[PathBuf], i: u64) -> anyhow::Result<String> {
    let path = fixtures.join("applicants/national-valid-1.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut r: serde_json::Value = serde_json::from_str(&text)?;
    let nine = format!("{:09}", 100_000_000 + i * 7_919);
    let digits: [u8; 9] = std::array::from_fn(|k| nine.as_bytes()[k] - b'0');
    let check = issuance::applicant::ids::NationalCode::check_digit(&digits);
    r["tracking_code"] = format!("BENCH-{i:05}").into();
    r["national_code"] = format!("{nine}{check}").into();
    // Inline: a manifest may name files in its own folder only (issue 18).
    let inline = |p: &PathBuf| -> anyhow::Result<String> {
        use base64::Engine as _;
        let bytes = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
    };
    r["fingers"] = serde_json::json!({
        "right_index": {"template": {"base64": inline(&good[i as usize % good.len()])?}},
        "left_index": {"template": {"base64": inline(&good[(i as usize + 1) % good.len()])?}},
    });
    Ok(r.to_string())
}

/// Mean of a list of seconds.
fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Median of card times: the typical card, unmoved by the odd card whose state-file fsync
/// stalled for tens of milliseconds (which hits either transport at random).
fn median(v: &[f64]) -> f64 {
    qa::timing::percentile(v, 0.5)
}

/// Personalizes `card` with `plan` and the card keys of `keys`, timed: seconds and APDUs.
fn timed_personalization<T: apdu::Transport>(
    card: T,
    plan: &issuance::personalize::Plan,
    keys: &KeyStore,
) -> anyhow::Result<(f64, u64)> {
    let mut id = apdu::card::IdCard::new(card);
    let start = std::time::Instant::now();
    let outcome = issuance::personalize::personalize(&mut id, plan, keys, &mut NoHooks)?;
    Ok((start.elapsed().as_secs_f64(), outcome.apdus))
}

/// Medians and means of per-card times of one transport, in ms.
fn card_times(times: &[f64]) -> serde_json::Value {
    serde_json::json!({"median_ms": median(times) * 1e3, "mean_ms": mean(times) * 1e3})
}

/// The same personalization, card after card, through pcscd + vpcd (`reader`), over the bare
/// vpcd socket (the same card on the same bridge thread, no pcscd) and in process.
fn bench_pcsc(
    args: &BenchArgs,
    reader: &str,
    profiles: &ProfileSet,
    good: &[PathBuf],
    keys: &Arc<KeyStore>,
) -> anyhow::Result<serde_json::Value> {
    use cardsim::vpcd::{VpcdBridge, VpcdConfig};
    use cardsim::vpcd_reader::VpcdListener;
    use cardsim::{SimCard, SimConfig, SimTransport};
    use std::time::{Duration, Instant};

    let temp = tempfile::tempdir()?;
    let dir = temp.path();
    issuance::pki::init(&dir.join("pki"), keys)?;
    let signer = DocumentSigner::load(&dir.join("pki"), Arc::clone(keys))?;
    let record = issuance::applicant::Applicant::from_json(&bench_record(&args.fixtures, good, 1)?)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let profile = profiles.get(&record.profile).context("profile")?;
    let valid =
        issuance::applicant::qc::check(&record, profile, &issuance::applicant::qc::MatcherCheck)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    let plan = issuance::personalize::Plan::build(
        &valid,
        profile,
        &signer,
        &issuance::personalize::Issue::today("D00000001"),
    )?;
    let pcsc_ctx = apdu::transport::pcsc::Pcsc::establish().map_err(issuance::Error::from)?;
    let listener = VpcdListener::bind_loopback()?;
    let (mut through, mut socket, mut bare, mut apdus) = (Vec::new(), Vec::new(), Vec::new(), 0);
    let new_card = |name: String| {
        let config = SimConfig {
            keys: keys.clone(),
            ..SimConfig::default()
        };
        SimCard::create(Some(dir.join(name)), config)
    };
    for k in 0..args.pcsc_cards {
        let config = VpcdConfig {
            port: args.vpcd_port,
            reconnect_delay: Duration::from_millis(20),
            ..Default::default()
        };
        let bridge = VpcdBridge::spawn(new_card(format!("pcsc-{k}.json"))?, config)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        let transport = loop {
            match pcsc_ctx.connect(reader) {
                Ok(t) => break t,
                Err(e) if Instant::now() > deadline => {
                    bail!("no card in {reader} after 10 s: {e} (is pcscd running with vpcd?)")
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let (secs, n) = timed_personalization(transport, &plan, keys)?;
        through.push(secs);
        apdus = n;
        bridge.stop()?;
        // Wait until pcscd saw the removal before the next card goes in.
        let deadline = Instant::now() + Duration::from_secs(10);
        while pcsc_ctx.connect(reader).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }

        let config = VpcdConfig {
            port: listener.port(),
            ..Default::default()
        };
        let bridge = VpcdBridge::spawn(new_card(format!("socket-{k}.json"))?, config)?;
        let (secs, n) =
            timed_personalization(listener.accept(Duration::from_secs(10))?, &plan, keys)?;
        socket.push(secs);
        if n != apdus {
            bail!("{n} APDUs over the vpcd socket, {apdus} through pcscd");
        }
        bridge.stop()?;

        let card = SimTransport::new(new_card(format!("bare-{k}.json"))?);
        bare.push(timed_personalization(card, &plan, keys)?.0);
    }
    let per_apdu_us = |a: &[f64], b: &[f64]| (median(a) - median(b)) * 1e6 / apdus.max(1) as f64;
    let figures = serde_json::json!({
        "reader": reader,
        "cards": args.pcsc_cards,
        "apdus_per_card": apdus,
        "through_pcscd": card_times(&through),
        "vpcd_socket": card_times(&socket),
        "in_process": card_times(&bare),
        "ratio_to_in_process": {
            "of_medians": median(&through) / median(&bare),
            "of_means": mean(&through) / mean(&bare),
        },
        "ratio_to_vpcd_socket": {
            "of_medians": median(&through) / median(&socket),
            "of_means": mean(&through) / mean(&socket),
        },
        "us_per_apdu_added": {
            "pcscd_and_socket": per_apdu_us(&through, &bare),
            "pcscd": per_apdu_us(&through, &socket),
            "socket": per_apdu_us(&socket, &bare),
        },
    });
    if !args.json {
        let ms = |v: &[f64]| {
            format!(
                "median {:.1} ms/card (mean {:.1})",
                median(v) * 1e3,
                mean(v) * 1e3
            )
        };
        println!(
            "{apdus} APDUs/card. Through pcscd+vpcd ({reader}): {}; over the bare vpcd socket: {}; in process: {}",
            ms(&through),
            ms(&socket),
            ms(&bare),
        );
        println!(
            "pcscd+vpcd against in process: {:.2}x of medians ({:.2}x of means), {:.0} µs per APDU added; against the bare vpcd socket (what pcscd adds): {:.2}x ({:.2}x), {:.0} µs per APDU",
            median(&through) / median(&bare),
            mean(&through) / mean(&bare),
            per_apdu_us(&through, &bare),
            median(&through) / median(&socket),
            mean(&through) / mean(&socket),
            per_apdu_us(&through, &socket),
        );
    }
    Ok(figures)
}

/// Runs `idcardd batch bench-claims`: every claim timed, then settled (QC failed) so the next
/// claim finds the following record, as a worker does.
fn bench_claims(journal: &Journal, records: u64, workers: usize) -> anyhow::Result<()> {
    let id = batch::new_batch_id();
    let lines: Vec<(String, String)> = (0..records)
        .map(|i| {
            (
                serde_json::json!({"tracking_code": format!("{id}-{i}")}).to_string(),
                String::new(),
            )
        })
        .collect();
    journal.create_batch(&id, "bench-claims", &[], &lines)?;
    let start = std::time::Instant::now();
    let mut times: Vec<f64> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers.max(1))
            .map(|w| {
                let id = &id;
                scope.spawn(move || -> anyhow::Result<Vec<f64>> {
                    let mut times = Vec::new();
                    loop {
                        let t = std::time::Instant::now();
                        let Some(claim) = journal.claim_next(id, "bench", &format!("w{w}"))? else {
                            return Ok(times);
                        };
                        times.push(t.elapsed().as_secs_f64() * 1e3);
                        journal.qc_failed(claim.seq, &serde_json::json!([]))?;
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("worker panicked")))
            })
            .collect::<anyhow::Result<Vec<_>>>()
            .map(|v| v.into_iter().flatten().collect())
    })?;
    let wall = start.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    println!(
        "{} journal ({}), {} claims by {workers} threads: claim p50 {:.2} ms, p99 {:.2} ms; \
         {:.0} claims+settles per second",
        journal.db().backend().as_str(),
        journal.db().describe(),
        times.len(),
        at(0.50),
        at(0.99),
        times.len() as f64 / wall
    );
    journal.set_batch_state(&id, BatchState::Finished)?;
    Ok(())
}

/// Runs `idcardd batch bench`.
fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    let profiles = ProfileSet::builtin()?;
    let good = usable_templates(&args.fixtures, &profiles)?;
    // One SoftHSM token for the whole bench (a process serves one SoftHSM configuration): the
    // card keys, the DS key and the mailer key of every run below, as in production.
    let keys_dir = tempfile::tempdir()?;
    let keys = Arc::new(keystore::init_embedded(keys_dir.path())?.0);
    let mut results = Vec::new();
    for n in args
        .readers
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let n: usize = n.parse().with_context(|| format!("reader count {n:?}"))?;
        let temp = tempfile::tempdir()?;
        let dir = temp.path();
        issuance::pki::init(&dir.join("pki"), &keys)?;
        let signer = DocumentSigner::load(&dir.join("pki"), Arc::clone(&keys))?;
        let journal = Journal::open_in(dir)?;
        let records = (0..args.cards)
            .map(|i| bench_record(&args.fixtures, &good, i).map(|r| (r, String::new())))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let readers: Vec<String> = (0..n).map(|i| format!("sim:{i}")).collect();
        let id = batch::submit(&journal, "bench", &readers, &records)?;
        let source = batch::SimHopper::in_state_dir(dir, keys.clone());
        let runner = Runner {
            journal: &journal,
            state_dir: dir.to_path_buf(),
            profiles: &profiles,
            signer: &signer,
            keys: &keys,
            source: &source,
            audit: None,
            template_extractor: None,
        };
        let summary = runner.run(&id, &readers, &AtomicBool::new(false), &|_| {})?;
        if summary.counts.personalized != args.cards {
            bail!(
                "bench batch personalized {} of {} cards",
                summary.counts.personalized,
                args.cards
            );
        }
        if !args.json {
            println!(
                "{n} simulated reader(s): {} cards in {:.2} s = {:.0} cards/min, {:.1} APDUs/card",
                summary.personalized_now,
                summary.wall_s,
                summary.cards_per_minute,
                summary.apdus_per_card.unwrap_or(0.0)
            );
        }
        results.push(serde_json::json!({"readers": n, "summary": summary}));
    }

    let pcsc = match &args.pcsc_reader {
        Some(reader) => bench_pcsc(args, reader, &profiles, &good, &keys)?,
        None => serde_json::Value::Null,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"in_process": results, "pcsc": pcsc})
            )?
        );
    }
    Ok(())
}
