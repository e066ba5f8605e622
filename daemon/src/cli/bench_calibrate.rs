//! `idcardd bench calibrate DIR[:DPI]... [--synth-fingers N]`: thresholds, fused thresholds,
//! rescan limits and the counter experience on a pool of sets (see
//! [`matcher::eval::calibrate`]). The delivery policy's defaults (target FMR, attempts, rescan
//! limits, fusion of two fingers) are those of `issuance::delivery`.

use anyhow::Context;
use issuance::delivery::{DeliveryPolicy, MIN_SCAN_MINUTIAE, MIN_SCAN_QUALITY};
use matcher::compare::{Fusion, ScoreScale, Threshold};
use matcher::eval::calibrate::{
    self, CounterSetting, Interval, Options, PoolReport, Report, SetSpec, SynthSpec, ThresholdRow,
};
use matcher::synth::SynthParams;
use matcher::template::CardFormat;
use std::path::PathBuf;

/// Arguments of `idcardd bench calibrate`.
#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// Folders of scans, each `DIR` or `DIR:DPI` (default dpi: 500).
    pub sets: Vec<String>,
    /// Generated fingers added to the pool.
    #[arg(long, default_value_t = 0)]
    pub synth_fingers: u32,
    /// Impressions of each generated finger.
    #[arg(long, default_value_t = 4)]
    pub synth_impressions: u32,
    /// Seed of the generated fingers.
    #[arg(long, default_value_t = 19)]
    pub synth_seed: u64,
    /// Store every enrolled template in this card format (record, normal, compact) and read it
    /// back before comparing.
    #[arg(long)]
    pub card_format: Option<CardFormat>,
    /// Store the probe (live) templates in `--card-format` too, as `matcher.compare` compares
    /// two templates of one card format.
    #[arg(long, requires = "card_format")]
    pub both_sides: bool,
    /// Threads for extraction and scoring.
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Extractor of every scan (the learned one is calibrated on its own scores; image
    /// quality, and so the rescan limits, stay the classical extractor's).
    #[arg(long, value_enum, default_value_t = super::bench::ExtractorName::Classical)]
    pub extractor: super::bench::ExtractorName,
    /// Folder of the learned extractor's model and runtime (see `bench fvc --learned-dir`).
    #[arg(long, value_name = "DIR")]
    pub learned_dir: Option<PathBuf>,
    /// One finger present in two sets (a volunteer in two collections), as
    /// `SET/FINGER=SET/FINGER` with SET a folder's name (e.g.
    /// `fvc2002_db3_b/108=fvc2004_db3_b/102`): its pairs are left out of every pool. Repeatable.
    #[arg(long = "same-finger", value_name = "SET/FINGER=SET/FINGER", value_parser = parse_same_finger)]
    pub same_fingers: Vec<calibrate::SameFinger>,
    /// Also write the JSON object to this file.
    #[arg(long, value_name = "FILE")]
    pub save_json: Option<PathBuf>,
}

/// Parses `SET/FINGER=SET/FINGER`.
fn parse_same_finger(s: &str) -> Result<calibrate::SameFinger, String> {
    let side = |v: &str| -> Result<calibrate::FingerRef, String> {
        let (set, finger) = v
            .rsplit_once('/')
            .ok_or_else(|| format!("{v}: expected SET/FINGER"))?;
        let finger = finger
            .parse()
            .map_err(|_| format!("{v}: {finger} is not a finger number"))?;
        if set.is_empty() {
            return Err(format!("{v}: no set name"));
        }
        Ok((set.to_string(), finger))
    };
    let (a, b) = s
        .split_once('=')
        .ok_or_else(|| format!("{s}: expected SET/FINGER=SET/FINGER"))?;
    Ok((side(a)?, side(b)?))
}

/// Parses `DIR` or `DIR:DPI`.
fn set_spec(s: &str) -> anyhow::Result<SetSpec> {
    if let Some((dir, dpi)) = s.rsplit_once(':') {
        if let Ok(dpi) = dpi.parse::<u32>() {
            anyhow::ensure!((250..=1000).contains(&dpi), "{s}: dpi outside 250-1000");
            return Ok(SetSpec {
                dir: PathBuf::from(dir),
                dpi,
            });
        }
    }
    Ok(SetSpec {
        dir: PathBuf::from(s),
        dpi: matcher::params::DEFAULT_DPI,
    })
}

/// Runs `idcardd bench calibrate`.
pub fn run(args: CalibrateArgs) -> anyhow::Result<()> {
    let sets = args
        .sets
        .iter()
        .map(|s| set_spec(s))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        !sets.is_empty() || args.synth_fingers > 0,
        "give at least one folder or --synth-fingers"
    );
    let policy = DeliveryPolicy::default();
    // The defaults this run's scores should be held against.
    let extractor = match args.extractor {
        super::bench::ExtractorName::Classical => None,
        super::bench::ExtractorName::Leader => {
            Some(super::bench::open_learned(args.learned_dir.as_deref())?)
        }
    };
    let scale = match (&extractor, args.card_format) {
        (Some(e), _) => e.score_scale(),
        (None, Some(CardFormat::Normal | CardFormat::Compact)) if args.both_sides => {
            ScoreScale::CardFormat
        }
        (None, _) => ScoreScale::Classical,
    };
    let current = Threshold::calibrated_fused_on(scale, policy.fmr, 1);
    let current_fused = Threshold::calibrated_fused_on(scale, policy.fmr, 2);
    let setting = |name: &str, threshold: f32, fingers: usize| CounterSetting {
        name: name.to_string(),
        threshold,
        fingers,
        fusion: Fusion::Mean,
        min_quality: MIN_SCAN_QUALITY,
        min_minutiae: MIN_SCAN_MINUTIAE,
        max_attempts: policy.max_attempts,
    };
    let options = Options {
        sets,
        synth: (args.synth_fingers > 0).then_some(SynthSpec {
            fingers: args.synth_fingers,
            impressions: args.synth_impressions.max(2),
            seed: args.synth_seed,
            params: SynthParams::default(),
        }),
        policy_fmr: policy.fmr,
        max_attempts: policy.max_attempts,
        current_rescan: (MIN_SCAN_QUALITY, MIN_SCAN_MINUTIAE),
        counter: vec![
            setting(
                "defaults: mean of 2, single-finger threshold",
                current.score,
                2,
            ),
            setting(
                "defaults: mean of 2, fused threshold",
                current_fused.score,
                2,
            ),
            setting("defaults: one finger", current.score, 1),
        ],
        defaults_scale: scale,
        card_format: args.card_format,
        card_format_both_sides: args.both_sides,
        extractor,
        same_fingers: args.same_fingers.clone(),
        ..Options::default()
    };
    let work = || calibrate::run(&options, &super::bench::progress_bar());
    let report = match args.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .context("cannot start the thread pool")?
            .install(work),
        None => work(),
    }
    .context("bench calibrate")?;
    if let Some(path) = &args.save_json {
        std::fs::write(path, serde_json::to_string(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", tables(&report));
    }
    Ok(())
}

fn pct(x: f64) -> String {
    if x != 0.0 && x < 0.0001 {
        format!("{:.5} %", 100.0 * x)
    } else {
        format!("{:.4} %", 100.0 * x)
    }
}

fn ci(i: &Interval) -> String {
    format!("[{}, {}]", pct(i.low), pct(i.high))
}

fn threshold_lines(rows: &[ThresholdRow], label: &str) -> String {
    let mut s = String::new();
    for r in rows {
        s += &format!(
            "| {label} {} | {:.5} | {} of {} | {} | {} | {} of {}: {}{} |\n",
            pct(r.target_fmr),
            r.threshold,
            r.impostors_at_or_above,
            r.impostors,
            pct(r.fmr),
            ci(&r.fmr_ci95),
            (r.fnmr * r.genuine as f64).round(),
            r.genuine,
            pct(r.fnmr),
            if r.indicative { " (indicative)" } else { "" }
        );
    }
    s
}

fn pool(p: &PoolReport) -> String {
    let mut s = format!(
        "\n{}: {} impostor, {} genuine scores, highest impostor {:.5}\n\
         | target | threshold | impostors at or above | FMR | 95 % CI (Clopper-Pearson) | FNMR |\n\
         |---|---|---|---|---|---|\n",
        p.name, p.impostors, p.genuine, p.max_impostor
    );
    s += &threshold_lines(&p.calibrated, "calibrated");
    s += &threshold_lines(&p.checked, "default");
    s += &threshold_lines(&p.single_applied, "single-finger (this run)");
    s
}

/// The human-readable report (Markdown tables).
fn tables(r: &Report) -> String {
    let mut s = format!("pool: {} scans (", r.scans);
    s += &r
        .sources
        .iter()
        .map(|(n, c)| format!("{n} {c}"))
        .collect::<Vec<_>>()
        .join(", ");
    s += &format!("), {} failures to enrol\n", r.failures_to_enrol.len());
    s += &format!(
        "minutiae: {} extractor; templates: {}; \"default\" rows: the {} scale's defaults\n",
        r.extractor, r.templates, r.defaults_scale
    );
    for f in &r.failures_to_enrol {
        s += &format!("  failed to enrol: {f}\n");
    }
    s += "\n## Single finger\n";
    for p in &r.single {
        s += &pool(p);
    }
    s += "\nimpostor pairs of the same source only, at the thresholds calibrated on all:";
    s += &pool(&r.same_source_only);
    s += "\n## Two fingers fused\n";
    for p in &r.fused {
        s += &pool(p);
    }
    let rs = &r.rescan;
    s += &format!(
        "\n## Rescan limits (single-finger genuine comparisons at {:.5}: {} of {} fail)\n\
         | limit | scans rescanned | failures avoided | good scans rescanned | FNMR after |\n|---|---|---|---|---|\n",
        rs.threshold, rs.failures, rs.genuine
    );
    for row in rs.rows.iter().chain([&rs.current_both, &rs.picked_both]) {
        let name = match row.kind.as_str() {
            "both" if std::ptr::eq(row, &rs.current_both) => "current (both)".to_string(),
            "both" => format!(
                "picked quality {} + minutiae {}",
                rs.picked_quality, rs.picked_minutiae
            ),
            k => format!("{k} < {}", row.limit),
        };
        s += &format!(
            "| {name} | {} | {} | {} | {} |\n",
            pct(row.scans_rescanned),
            row.failures_avoided,
            row.good_rescanned,
            pct(row.fnmr_after)
        );
    }
    s += "\n## At the counter (impression 1 on the card, later impressions as attempts)\n\
          | setting | threshold | rescan q/m | holders | accepted at 1/2/3.. | refused | out of scans | refused share (95 % CI) | rescans |\n\
          |---|---|---|---|---|---|---|---|---|\n";
    for c in &r.counter {
        s += &format!(
            "| {} ({}) | {:.5} | {}/{} | {} | {} | {} | {} | {} {} | {} |\n",
            c.setting.name,
            c.group,
            c.setting.threshold,
            c.setting.min_quality,
            c.setting.min_minutiae,
            c.holders,
            c.accepted_at
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join("/"),
            c.refused,
            c.out_of_scans,
            pct(c.refused_share),
            ci(&c.refused_ci95),
            c.rescans
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_specs() {
        let s = set_spec("../shared/fingerprints/fvc2004_db3_b:512").unwrap();
        assert_eq!(s.dpi, 512);
        assert_eq!(s.dir, PathBuf::from("../shared/fingerprints/fvc2004_db3_b"));
        assert_eq!(set_spec("/data/x").unwrap().dpi, 500);
        assert!(set_spec("/data/x:5").is_err());
    }
}
