//! `idcardd batch`: personalize a manifest of applicant records on several readers, resumable
//! after a crash (see [`crate::batch`]).
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

use crate::batch::{self, LineSource, Progress, Runner};
use crate::journal::Journal;
use crate::personalize::PersoKeys;
use crate::pki::DocumentSigner;
use crate::profile::ProfileSet;

/// Options every batch subcommand shares.
#[derive(Debug, clap::Args)]
pub struct Common {
    /// State directory: journal, simulated cards, PIN mailer, reports (default: the parent of
    /// the default simulated-card folder, e.g. ~/.local/state/idcardd).
    #[arg(long, global = true)]
    pub state_dir: Option<PathBuf>,
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
    /// Stop a batch: no more records are claimed (`resume` restarts it).
    Cancel {
        /// Batch id.
        batch: String,
        /// Shared options.
        #[command(flatten)]
        common: Common,
    },
}

fn state_dir(common: &Common) -> PathBuf {
    common.state_dir.clone().unwrap_or_else(|| {
        let sim = crate::readers::default_sim_dir();
        sim.parent().map(Path::to_path_buf).unwrap_or(sim)
    })
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
        if let Some(n) = crate::readers::parse_sim_name(one)? {
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

/// Runs `idcardd batch`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Run {
            manifest,
            write,
            common,
        } => {
            let dir = state_dir(&common);
            let journal = Journal::open_in(&dir)?;
            let readers = parse_readers(write.readers.as_deref().unwrap_or("sim:1"))?;
            let records = batch::read_manifest(&manifest)?;
            let source = manifest
                .canonicalize()
                .unwrap_or(manifest.clone())
                .display()
                .to_string();
            let id = batch::submit(&journal, &source, &readers, &records)?;
            eprintln!(
                "batch {id}: {} records on {}",
                records.len(),
                readers.join(", ")
            );
            execute(&dir, &journal, &id, &readers, &write)
        }
        Command::Resume {
            batch,
            write,
            common,
        } => {
            let dir = state_dir(&common);
            let journal = Journal::open_in(&dir)?;
            let row = match batch {
                Some(id) => journal.batch(&id)?,
                None => journal
                    .batches()?
                    .into_iter()
                    .find(|b| b.state != "finished")
                    .context("no unfinished batch to resume")?,
            };
            let readers = match &write.readers {
                Some(spec) => parse_readers(spec)?,
                None => parse_readers(&row.readers)?,
            };
            eprintln!("resuming batch {} on {}", row.id, readers.join(", "));
            execute(&dir, &journal, &row.id, &readers, &write)
        }
        Command::Status {
            batch,
            json,
            common,
        } => {
            let journal = Journal::open_in(&state_dir(&common))?;
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
            let journal = Journal::open_in(&dir)?;
            let report = batch::report(&journal, &batch)?;
            let (json, csv) = batch::write_report(&dir, &report)?;
            println!("{}\n{}", json.display(), csv.display());
            Ok(())
        }
        Command::Cancel { batch, common } => {
            let journal = Journal::open_in(&state_dir(&common))?;
            batch::cancel(&journal, &batch)?;
            println!("batch {batch} cancelled");
            Ok(())
        }
    }
}

/// Runs (or resumes) batch `id`, drawing a progress bar on a terminal, then writes the report.
fn execute(
    dir: &Path,
    journal: &Journal,
    id: &str,
    readers: &[String],
    write: &WriteOptions,
) -> anyhow::Result<()> {
    let pki_dir = write.pki.clone().unwrap_or_else(|| dir.join("pki"));
    let signer = DocumentSigner::load(&pki_dir).with_context(|| {
        format!(
            "loading the Document Signer from {} (create a test one with `idcardd pki init`)",
            pki_dir.display()
        )
    })?;
    let profiles = ProfileSet::load(write.profiles.as_deref())?;
    let source = LineSource::new(dir);
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
    let runner = Runner {
        journal,
        state_dir: dir.to_path_buf(),
        profiles: &profiles,
        signer: &signer,
        keys: PersoKeys::test(),
        source: &source,
        audit: None,
    };
    let summary = runner.run(id, readers, &stop, &progress);
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
