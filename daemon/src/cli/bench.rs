//! `idcardd bench`: accuracy and speed reports.
//!
//! `idcardd bench fvc DIR` runs the FVC protocol of [`matcher::eval::fvc`] on a folder of scans
//! named `<finger>_<impression>.<ext>` and prints EER, FMR100, FMR1000 and ZeroFMR for the FVC
//! and the extended impostor sets, extraction time, comparison speed and minutiae count.

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use matcher::eval::fvc::{self, Options, Progress, Report, Source};
use matcher::eval::shift::SensorShift;
use matcher::eval::Rates;
use matcher::extract::MinutiaeExtractor;
use matcher::template::CardFormat;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Subcommands of `idcardd bench`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// FVC protocol on a folder of `<finger>_<impression>.tif|png|bmp` scans.
    Fvc(FvcArgs),
    /// Overlay the DET curves of several `bench fvc --report` runs on one plot.
    Compare(CompareArgs),
    /// Extracted minutiae against the ground truth of a generated set (precision, recall).
    Truth(super::bench_truth::TruthArgs),
    /// Thresholds, fused thresholds, rescan limits and the counter experience on pooled sets.
    Calibrate(super::bench_calibrate::CalibrateArgs),
    /// A bare ZeroMQ echo ROUTER, the baseline of benches/zmq_load.py.
    #[command(hide = true)]
    ZmqEcho(super::bench_echo::EchoArgs),
}

/// Arguments of `idcardd bench fvc`.
#[derive(Debug, clap::Args)]
pub struct FvcArgs {
    /// Folder of scans.
    pub dir: PathBuf,
    /// Scan resolution in dpi.
    #[arg(long, default_value_t = matcher::params::DEFAULT_DPI)]
    pub dpi: u32,
    /// Write every compared pair as `probe<TAB>candidate<TAB>score<TAB>genuine|impostor`.
    #[arg(long)]
    pub scores: Option<PathBuf>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Store every candidate template in this format (record, normal, compact) and read it back
    /// before comparing.
    #[arg(long)]
    pub card_format: Option<CardFormat>,
    /// Threads for extraction and scoring (speed figures are always single-threaded).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Use the third-party ISO/IEC 19794-2 records `<name>.iso` beside the images instead of
    /// extracting minutiae.
    #[arg(long)]
    pub iso: bool,
    /// MINEX-style interoperability: every candidate (reference) is the third-party record
    /// `<name>.iso` beside the image, mapped onto the image's pixels (uniform rescale, centred),
    /// and every probe is our extraction of the image.
    #[arg(long, conflicts_with = "iso")]
    pub reference_iso: bool,
    /// Seconds each single-threaded speed loop runs.
    #[arg(long, default_value_t = 2.0)]
    pub timing_seconds: f64,
    /// Also write plots (DET, score histograms), the worst pairs with their minutiae, per-stage
    /// extraction time, report.json and index.html into this folder.
    #[arg(long, value_name = "OUT")]
    pub report: Option<PathBuf>,
    /// Name of this run in the report's plots and in `bench compare` (default: the folder name).
    #[arg(long)]
    pub label: Option<String>,
    /// Try another value of an extraction parameter (a field of `matcher::params::ExtractParams`,
    /// e.g. `border_erosion_blocks=3`); repeatable. For evaluations: the defaults are the tuned set.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Extractor of the probe side (the live scan).
    #[arg(long, value_enum, default_value_t = ExtractorName::Classical)]
    pub probe_extractor: ExtractorName,
    /// Extractor of the reference side (the enrolled template).
    #[arg(long, value_enum, default_value_t = ExtractorName::Classical)]
    pub reference_extractor: ExtractorName,
    /// Pairs scoring in LOW..HIGH are compared again with the probe extracted by the learned
    /// extractor, as the delivery desk's second opinion does (e.g. `0.05:0.20`).
    #[arg(long, value_name = "LOW:HIGH", value_parser = parse_band)]
    pub second_opinion: Option<(f32, f32)>,
    /// Show every scan as another sensor would (both sides): `faint=0.3` (ridges 30 % as dark),
    /// `gamma=2.2` (darker tone curve), `blur=1.2` (softer optics, pixels), `noise=15` (gray
    /// levels), `scale=1.14` (another resolution, declared dpi scaled too), `crop=0.7` (a smaller
    /// sensor: the central 70 % of each side).
    #[arg(long, value_name = "KIND=VALUE", value_parser = SensorShift::parse)]
    pub shift: Option<SensorShift>,
    /// The same for the probe side only (enrolled on one sensor, verified on another).
    #[arg(long, value_name = "KIND=VALUE", value_parser = SensorShift::parse)]
    pub probe_shift: Option<SensorShift>,
    /// Folder of the learned extractor's model and runtime (default: $IDCARDD_LEARNED_DIR or
    /// /usr/local/lib/idcardd, where scripts/setup.sh installs them).
    #[arg(long, value_name = "DIR")]
    pub learned_dir: Option<PathBuf>,
}

/// Which extractor serves a side of `bench fvc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExtractorName {
    /// The default path (`matcher::extract`).
    Classical,
    /// The optional learned extractor (LEADER, `leader` crate).
    Leader,
}

/// `LOW:HIGH`, two scores with LOW < HIGH.
fn parse_band(s: &str) -> Result<(f32, f32), String> {
    let (low, high) = s
        .split_once(':')
        .ok_or_else(|| format!("{s}: expected LOW:HIGH"))?;
    let parse = |v: &str| {
        v.trim()
            .parse::<f32>()
            .ok()
            .filter(|x| x.is_finite())
            .ok_or_else(|| format!("{v}: not a score"))
    };
    let (low, high) = (parse(low)?, parse(high)?);
    if low >= high {
        return Err(format!("{s}: LOW must be below HIGH"));
    }
    Ok((low, high))
}

/// The extractors `args` asks for, opening the learned one when one side or the second opinion
/// needs it.
fn extractors(args: &FvcArgs) -> anyhow::Result<fvc::Extractors> {
    let wants_learned = args.probe_extractor == ExtractorName::Leader
        || args.reference_extractor == ExtractorName::Leader
        || args.second_opinion.is_some();
    let learned = if wants_learned {
        Some(open_learned(args.learned_dir.as_deref())?)
    } else {
        None
    };
    let side = |name: ExtractorName| match name {
        ExtractorName::Classical => None,
        ExtractorName::Leader => learned.clone(),
    };
    Ok(fvc::Extractors {
        probe: side(args.probe_extractor),
        reference: side(args.reference_extractor),
        second_opinion: match (args.second_opinion, &learned) {
            (Some((low, high)), Some(extractor)) => Some(fvc::SecondOpinion {
                extractor: extractor.clone(),
                low,
                high,
            }),
            _ => None,
        },
    })
}

/// Opens the learned extractor in `dir` (default: where scripts/setup.sh installs it), one
/// thread per extraction (evaluations run one extraction per thread).
pub(super) fn open_learned(
    dir: Option<&std::path::Path>,
) -> anyhow::Result<Arc<dyn MinutiaeExtractor>> {
    let dir = dir.map_or_else(
        leader::LearnedExtractor::default_dir,
        std::path::Path::to_path_buf,
    );
    let extractor = leader::LearnedExtractor::open(&dir, 1)
        .with_context(|| format!("the learned extractor in {}", dir.display()))?;
    Ok(Arc::new(extractor))
}

/// Arguments of `idcardd bench compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The `report.json` files of `bench fvc --report` runs (two or more).
    #[arg(required = true, num_args = 2..)]
    pub reports: Vec<PathBuf>,
    /// Folder for det.png, det.svg, compare.json and index.html.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// Runs `idcardd bench`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Fvc(args) => run_fvc(args),
        Command::Compare(args) => run_compare(args),
        Command::Truth(args) => super::bench_truth::run(args),
        Command::Calibrate(args) => super::bench_calibrate::run(args),
        Command::ZmqEcho(args) => super::bench_echo::run(args),
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
pub(super) fn progress_bar() -> impl Progress {
    Bar {
        bar: Mutex::new(ProgressBar::hidden()),
    }
}

/// A progress bar on stderr, hidden when stderr is not a terminal.
struct Bar {
    /// The bar of the current stage.
    bar: Mutex<ProgressBar>,
}

impl Progress for Bar {
    fn start(&self, stage: &str, total: u64) {
        let bar = ProgressBar::with_draw_target(Some(total), draw_target());
        bar.set_style(
            ProgressStyle::with_template("{msg:8} [{bar:40}] {pos}/{len} {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(stage.to_string());
        *self.bar.lock().unwrap_or_else(|e| e.into_inner()) = bar;
    }
    fn step(&self) {
        self.bar.lock().unwrap_or_else(|e| e.into_inner()).inc(1);
    }
    fn finish(&self) {
        self.bar
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .finish_and_clear();
    }
}

fn draw_target() -> ProgressDrawTarget {
    if std::io::stderr().is_terminal() {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    }
}

fn run_fvc(args: FvcArgs) -> anyhow::Result<()> {
    let options = Options {
        dpi: args.dpi,
        card_format: args.card_format,
        source: if args.iso {
            Source::IsoRecord
        } else if args.reference_iso {
            Source::ReferenceIso
        } else {
            Source::Extract
        },
        timing: Duration::from_secs_f64(args.timing_seconds.max(0.0)),
        params: matcher::params::ExtractParams::default()
            .with_settings(&args.params)
            .map_err(|e| anyhow::anyhow!("--param: {e}"))?,
        extractors: extractors(&args)?,
        shift: args.shift,
        probe_shift: args.probe_shift,
    };
    let bar = Bar {
        bar: Mutex::new(ProgressBar::hidden()),
    };
    let work = || fvc::run(&args.dir, &options, &bar);
    let (report, samples, scored) = match args.threads {
        Some(n) => rayon::ThreadPoolBuilder::new()
            .num_threads(n.max(1))
            .build()
            .context("cannot start the thread pool")?
            .install(work),
        None => work(),
    }
    .with_context(|| format!("bench fvc {}", args.dir.display()))?;
    if let Some(path) = &args.scores {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        fvc::write_scores(std::io::BufWriter::new(file), &samples, &scored)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", table(&report));
    }
    if let Some(out) = &args.report {
        let info = qa::RunInfo {
            label: args.label.as_deref().unwrap_or(&report.set),
            dir: &args.dir,
            dpi: args.dpi,
            source: options.source,
            card_format: args.card_format.map(|f| format!("{f:?}").to_lowercase()),
            params: &options.params,
            shift: args.shift,
            probe_shift: args.probe_shift,
        };
        qa::write_fvc_report(out, &info, &report, &samples, &scored)
            .with_context(|| format!("report in {}", out.display()))?;
        eprintln!("report: {}", out.join("index.html").display());
    }
    Ok(())
}

fn run_compare(args: CompareArgs) -> anyhow::Result<()> {
    let comparison = qa::compare_reports(&args.reports, &args.out)?;
    println!(
        "{} series ({}): {}",
        comparison.series.len(),
        comparison.series.join(", "),
        args.out.join("index.html").display()
    );
    Ok(())
}

/// The human-readable report.
fn table(r: &Report) -> String {
    let pct = |x: f64| format!("{:6.2} %", 100.0 * x);
    let line = |name: &str, pairs: usize, x: &Rates| {
        format!(
            "{name:<9} {pairs:>6} impostor pairs  EER {}  FMR100 {}  FMR1000 {}  ZeroFMR {}\n",
            pct(x.eer),
            pct(x.fmr100),
            pct(x.fmr1000),
            pct(x.zero_fmr)
        )
    };
    let mut s = format!(
        "set {}: {} images, {} genuine pairs, {} failures to enrol\n",
        r.set,
        r.images,
        r.genuine_pairs,
        r.failures_to_enrol.len()
    );
    for f in &r.failures_to_enrol {
        s += &format!("  failed to enrol: {f}\n");
    }
    s += &line("fvc", r.fvc_impostor_pairs, &r.fvc);
    s += &line("extended", r.extended_impostor_pairs, &r.extended);
    s += &format!(
        "extraction {:.1} ms median, {:.1} ms p95; {:.1} minutiae per image\n",
        r.extract_ms.median, r.extract_ms.p95, r.minutiae_mean
    );
    s += &format!(
        "comparisons per second (one thread): {:.0} match only, {:.0} with probe preparation\n",
        r.compare_per_s, r.compare_with_prep_per_s
    );
    if let Some((probe, reference)) = &r.extractors {
        s += &format!("extractors: probe {probe}, reference {reference}\n");
    }
    match (&r.shift, &r.probe_shift) {
        (None, None) => {}
        (both, probe) => {
            let none = "none".to_string();
            s += &format!(
                "sensor shift: both sides {}, probe only {}\n",
                both.as_ref().unwrap_or(&none),
                probe.as_ref().unwrap_or(&none)
            );
        }
    }
    if let Some(so) = &r.second_opinion {
        s += &format!(
            "second opinion ({}) on scores {}..{}: {} genuine and {} impostor pairs asked again; extraction {:.0} ms median, {:.0} ms p95\n",
            so.extractor, so.low, so.high, so.genuine_pairs, so.impostor_pairs, so.extract_ms.median, so.extract_ms.p95
        );
    }
    s
}
