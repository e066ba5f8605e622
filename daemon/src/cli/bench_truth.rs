//! `idcardd bench truth DIR`: the extractor's minutiae against the ground truth of a set made by
//! `idcardd fixtures synth` (see [`matcher::eval::truth`]): precision, recall and type agreement
//! at a stated tolerance, overall, per extractor quality score and per generated skin condition.

use anyhow::Context;
use matcher::eval::truth::{self, Group, Tolerance, TruthReport};
use std::path::PathBuf;

/// Arguments of `idcardd bench truth`.
#[derive(Debug, clap::Args)]
pub struct TruthArgs {
    /// Folder of `<finger>_<impression>.png` scans with `.json` ground truth beside them.
    pub dir: PathBuf,
    /// Scan resolution in dpi.
    #[arg(long, default_value_t = matcher::params::DEFAULT_DPI)]
    pub dpi: u32,
    /// Largest distance (pixels) between a detected and a true minutia.
    #[arg(long, default_value_t = 15.0)]
    pub tolerance_px: f32,
    /// Largest direction difference (degrees) between a detected and a true minutia.
    #[arg(long, default_value_t = 30.0)]
    pub tolerance_deg: f32,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `idcardd bench truth`.
pub fn run(args: TruthArgs) -> anyhow::Result<()> {
    if !(args.tolerance_px > 0.0 && args.tolerance_px.is_finite()) {
        anyhow::bail!("--tolerance-px must be a positive number");
    }
    if !(0.0..=180.0).contains(&args.tolerance_deg) {
        anyhow::bail!("--tolerance-deg must be between 0 and 180");
    }
    let tolerance = Tolerance {
        distance_px: args.tolerance_px,
        angle_deg: args.tolerance_deg,
    };
    let report = truth::evaluate_dir(&args.dir, args.dpi, &tolerance)
        .with_context(|| format!("bench truth {}", args.dir.display()))?;
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", table(&report));
    }
    Ok(())
}

/// The human-readable report.
fn table(r: &TruthReport) -> String {
    let line = |g: &Group| {
        format!(
            "{:<24} {:>5} {:>7} {:>7} {:>7}  {:6.1} % {:6.1} % {:6.1} %\n",
            g.name,
            g.counts.impressions,
            g.counts.truth,
            g.counts.found,
            g.counts.paired,
            100.0 * g.precision,
            100.0 * g.recall,
            100.0 * g.type_agreement
        )
    };
    let mut s = format!(
        "set {}: tolerance {} px, {}°\n{:<24} {:>5} {:>7} {:>7} {:>7}  {:>8} {:>8} {:>8}\n",
        r.set,
        r.tolerance.distance_px,
        r.tolerance.angle_deg,
        "group",
        "scans",
        "true",
        "found",
        "paired",
        "precis.",
        "recall",
        "type"
    );
    s += &line(&r.overall);
    for g in r
        .by_quality
        .iter()
        .chain(&r.by_skin)
        .chain(&r.by_faint_contact)
    {
        s += &line(g);
    }
    for f in &r.failures {
        s += &format!("  extraction failed: {f}\n");
    }
    s
}
