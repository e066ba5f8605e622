//! `idcardd extract`: minutiae of one scan, as a summary, JSON or an ISO template.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use matcher::extract::extract_with;
use matcher::image::GrayImage;
use matcher::params::ExtractParams;
use matcher::template::{self, CardFormat};
use matcher::transparency::{Collector, NoTransparency, Transparency};

/// Arguments of `idcardd extract`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The scans (PNG, TIFF or BMP; colour is converted to gray). With several scans only the
    /// summary lines are printed.
    #[arg(required = true)]
    pub images: Vec<PathBuf>,
    /// Resolution of the scan in dots per inch.
    #[arg(long, default_value_t = matcher::params::DEFAULT_DPI)]
    pub dpi: u32,
    /// Print the extracted fingerprint as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Write the extracted fingerprint as JSON to this file.
    #[arg(long, value_name = "FILE.json")]
    pub out: Option<PathBuf>,
    /// Write an ISO/IEC 19794-2:2005 minutiae record to this file.
    #[arg(long, value_name = "FILE.iso")]
    pub template: Option<PathBuf>,
    /// Draw what the extractor saw over the scan into this PNG (the scan's size): background
    /// outside the segmentation mask tinted blue, the ridge orientation field as amber segments,
    /// minutiae as circles with a direction tick (red endings, blue bifurcations). Written even
    /// when extraction fails, with whatever it got to.
    #[arg(long, value_name = "OUT.png")]
    pub show: Option<PathBuf>,
    /// Write the intermediate images (mask, orientation, enhanced, binary, skeleton...) as PNG
    /// files into this directory.
    #[arg(long, value_name = "DIR")]
    pub stages: Option<PathBuf>,
    /// Try another value of an extraction parameter (a field of `matcher::params::ExtractParams`,
    /// e.g. `border_erosion_blocks=3`); repeatable. For evaluations: the defaults are the tuned set.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

/// Runs `idcardd extract`.
pub fn run(args: Args) -> anyhow::Result<()> {
    if args.images.len() > 1 {
        if args.json
            || args.out.is_some()
            || args.template.is_some()
            || args.show.is_some()
            || args.stages.is_some()
        {
            anyhow::bail!("--json, --out, --template, --show and --stages take a single image");
        }
        for image in &args.images {
            if let Err(e) = run_one(&args, image) {
                say(&format!("{}: {e:#}", image.display()))?;
            }
        }
        return Ok(());
    }
    match args.images.first() {
        Some(image) => run_one(&args, image),
        None => anyhow::bail!("no image given"),
    }
}

/// Extracts one scan and prints or writes what `args` asks for.
fn run_one(args: &Args, path: &std::path::Path) -> anyhow::Result<()> {
    // The matcher's errors already name their cause; `{e}` keeps it to one line.
    let image =
        GrayImage::open(path).map_err(|e| anyhow::anyhow!("reading {}: {e}", path.display()))?;
    let params = ExtractParams::default()
        .with_settings(&args.params)
        .map_err(|e| anyhow::anyhow!("--param: {e}"))?;
    let mut collector = Collector::default();
    let mut none = NoTransparency;
    let t: &mut dyn Transparency = if args.show.is_some() || args.stages.is_some() {
        &mut collector
    } else {
        &mut none
    };
    let start = Instant::now();
    let extracted = extract_with(&image, args.dpi, &params, t);
    let elapsed = start.elapsed();
    if let Some(out) = &args.show {
        let minutiae = extracted.as_ref().map(|fp| &fp.minutiae[..]).unwrap_or(&[]);
        qa::overlay::draw(&image, args.dpi, params.block, &collector, minutiae, out)?;
    }
    if let Some(dir) = &args.stages {
        collector
            .write_pngs(dir)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", dir.display()))?;
    }
    let fp = extracted.map_err(|e| anyhow::anyhow!("extracting {}: {e}", path.display()))?;
    let json = serde_json::to_string_pretty(&fp)?;
    if let Some(out) = &args.out {
        std::fs::write(out, &json).with_context(|| format!("writing {}", out.display()))?;
    }
    if let Some(path) = &args.template {
        let bytes = template::encode(&fp, CardFormat::Record)?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    if args.json {
        say(&json)?;
    } else {
        let endings = fp
            .minutiae
            .iter()
            .filter(|m| m.kind == matcher::MinutiaKind::Ending)
            .count();
        say(&format!(
            "{}: {}x{} px at {} dpi, {} minutiae ({} endings, {} bifurcations), quality {}, {:.1} ms",
            path.display(),
            fp.width,
            fp.height,
            fp.dpi_x,
            fp.minutiae.len(),
            endings,
            fp.minutiae.len() - endings,
            fp.quality,
            elapsed.as_secs_f64() * 1000.0
        ))?;
    }
    Ok(())
}

/// Prints one line on stdout; a closed pipe (`| head`) is not an error.
fn say(line: &str) -> anyhow::Result<()> {
    use std::io::Write;
    match writeln!(std::io::stdout().lock(), "{line}") {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}
