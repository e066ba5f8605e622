//! `idcardd fixtures`: generated test data.
//!
//! `idcardd fixtures synth --fingers N --impressions M --seed S --out DIR` writes a synthetic
//! fingerprint set (see [`matcher::synth`]): `<finger>_<impression>.png` scans in FVC naming
//! (so `idcardd bench fvc DIR` reads them), `.json` ground-truth minutiae, `.iso`
//! ISO/IEC 19794-2 records of the ground truth, and `synth.json` with the seed, the size and
//! each impression's conditions (skin, noise, distortion, rotation, contact), which
//! `idcardd bench truth DIR` uses to report accuracy per condition. The same arguments always
//! give the same bytes, on any machine and with any number of threads.

use anyhow::{bail, Context};
use matcher::synth::{self, SynthParams};
use std::path::PathBuf;
use std::time::Instant;

/// Subcommands of `idcardd fixtures`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Synthetic fingerprints with ground truth (SFinGe-style).
    Synth(SynthArgs),
}

/// Arguments of `idcardd fixtures synth`.
#[derive(Debug, clap::Args)]
pub struct SynthArgs {
    /// Number of fingers (numbered from 1).
    #[arg(long, default_value_t = 10)]
    pub fingers: u32,
    /// Impressions per finger (numbered from 1).
    #[arg(long, default_value_t = 8)]
    pub impressions: u32,
    /// Seed of the whole set.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output folder (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Resolution in dpi.
    #[arg(long, default_value_t = 500)]
    pub dpi: u32,
    /// Impression size as WIDTHxHEIGHT pixels.
    #[arg(long, default_value = "288x384")]
    pub size: String,
}

/// Runs `idcardd fixtures`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Synth(args) => run_synth(args),
    }
}

/// Parses `WIDTHxHEIGHT`.
fn parse_size(s: &str) -> anyhow::Result<(u32, u32)> {
    let (w, h) = s
        .split_once(['x', 'X'])
        .with_context(|| format!("size {s:?} is not WIDTHxHEIGHT"))?;
    Ok((
        w.trim()
            .parse()
            .with_context(|| format!("width in {s:?}"))?,
        h.trim()
            .parse()
            .with_context(|| format!("height in {s:?}"))?,
    ))
}

fn run_synth(args: SynthArgs) -> anyhow::Result<()> {
    let (width, height) = parse_size(&args.size)?;
    if args.fingers == 0 || args.impressions == 0 {
        bail!("--fingers and --impressions must be at least 1");
    }
    let params = SynthParams {
        width,
        height,
        dpi: args.dpi,
    };
    let start = Instant::now();
    let n = synth::write_set(
        &args.out,
        &params,
        args.seed,
        args.fingers,
        args.impressions,
    )
    .with_context(|| format!("generating into {}", args.out.display()))?;
    println!(
        "{n} impressions ({} fingers x {}) written to {} in {:.1} s",
        args.fingers,
        args.impressions,
        args.out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
