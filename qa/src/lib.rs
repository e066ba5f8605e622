//! Reports people look at: plots, thumbnails and one HTML page over a `bench fvc` run.
//!
//! `idcardd bench fvc DIR --report OUT/` calls [`write_fvc_report`], which writes into `OUT/`:
//! - `det.png` / `det.svg`: the DET curve (FNMR against FMR, both on log scales) for the FVC and
//!   the extended impostor sets ([`det`]);
//! - `histogram.png` / `histogram.svg`: genuine and impostor score distributions ([`histogram`]);
//! - `worst-genuine-N.png` / `worst-impostor-N.png`: the lowest-scoring genuine and the
//!   highest-scoring impostor pairs, side by side with their minutiae drawn ([`thumbnails`]);
//! - `report.json`: every figure ([`ReportJson`], schema [`SCHEMA`]);
//! - `index.html`: one self-contained page showing all of it ([`html`]).
//!
//! `idcardd bench compare A/report.json B/report.json --out DIR` overlays the DET curves of
//! several reports ([`compare_reports`]). `idcardd extract IMAGE --show OUT.png` draws what the
//! extractor saw ([`overlay`]).
//!
//! Text in the plots needs a TrueType font, registered at run time by [`font::ensure`] (DejaVu
//! Sans from Debian's fonts-dejavu-core, installed by `scripts/setup.sh`). Without one the plots
//! are still drawn, without any text.

pub mod det;
pub mod font;
pub mod histogram;
pub mod html;
pub mod overlay;
pub mod thumbnails;
pub mod timing;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use matcher::eval::fvc::{self, PairKind, Report, Sample, ScoredPair, Side, Source};
use matcher::eval::shift::SensorShift;
use matcher::extract::extract_with;
use matcher::image::GrayImage;
use matcher::params::ExtractParams;
use matcher::transparency::NoTransparency;
use matcher::Fingerprint;
use serde::{Deserialize, Serialize};

/// Identifies the layout of `report.json`; bumped when a field changes meaning or disappears.
pub const SCHEMA: &str = "idcardd-bench-report/1";

/// How many worst genuine and worst impostor pairs a report shows.
pub const WORST_PAIRS: usize = 3;

/// Everything `report.json` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportJson {
    /// Always [`SCHEMA`], so readers can refuse files they do not understand.
    pub schema: String,
    /// Name of the run in plots and comparisons (`--label`, by default the set's folder name).
    pub label: String,
    /// Version of idcardd (and so of the matcher) that made the report.
    pub version: String,
    /// The folder of scans.
    pub dir: String,
    /// Resolution the scans were read at.
    pub dpi: u32,
    /// Where the minutiae came from: `extract` or `iso-record`.
    pub source: String,
    /// Card format every candidate template went through, if any.
    pub card_format: Option<String>,
    /// The accuracy and speed figures of [`matcher::eval::fvc::run`].
    pub figures: Report,
    /// DET curves: the FVC impostor set and the extended impostor set.
    pub det: DetCurves,
    /// Score histograms.
    pub histogram: histogram::Histogram,
    /// Per-stage extraction time over the set (empty when minutiae were read from records).
    pub stage_timing: timing::StageTiming,
    /// Lowest-scoring genuine pairs, worst first.
    pub worst_genuine: Vec<WorstPair>,
    /// Highest-scoring impostor pairs, worst first.
    pub worst_impostor: Vec<WorstPair>,
    /// The image files of the report, relative to the report folder.
    pub images: Images,
}

/// The DET curves of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetCurves {
    /// Genuine pairs against the FVC impostor pairs (first impressions only).
    pub fvc: Vec<det::DetPoint>,
    /// Genuine pairs against every cross-finger pair.
    pub extended: Vec<det::DetPoint>,
}

/// One of the worst pairs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorstPair {
    /// Probe image name (`<finger>_<impression>`).
    pub probe: String,
    /// Candidate image name.
    pub candidate: String,
    /// Comparison score.
    pub score: f32,
    /// Thumbnail file (relative to the report folder), when it could be drawn.
    pub image: Option<String>,
    /// Why no thumbnail was drawn.
    pub note: Option<String>,
}

/// The image files of a report, relative to its folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Images {
    /// DET curve, PNG.
    pub det_png: String,
    /// DET curve, SVG.
    pub det_svg: String,
    /// Score histogram, PNG.
    pub histogram_png: String,
    /// Score histogram, SVG.
    pub histogram_svg: String,
}

/// What [`write_fvc_report`] needs besides the protocol's results.
#[derive(Debug, Clone)]
pub struct RunInfo<'a> {
    /// Name of the run in plots.
    pub label: &'a str,
    /// Folder of scans.
    pub dir: &'a Path,
    /// Resolution of the scans.
    pub dpi: u32,
    /// Where minutiae came from.
    pub source: Source,
    /// Card format of the candidates, if any.
    pub card_format: Option<String>,
    /// Extraction parameters of the run: the per-stage timing and the worst pairs' drawings
    /// extract with these, as the run did.
    pub params: &'a ExtractParams,
    /// The run's sensor shift of both sides (`--shift`).
    pub shift: Option<SensorShift>,
    /// The run's further sensor shift of the probe side (`--probe-shift`).
    pub probe_shift: Option<SensorShift>,
}

/// The scans as a run saw them: the per-stage timing extracts, and the worst pairs show, each
/// side shifted as the run's comparisons had it ([`fvc::shifted_sides`]), not the files as read.
#[derive(Debug, Clone, Copy)]
pub struct ScanView {
    /// Resolution of the scans as read.
    pub dpi: u32,
    /// Sensor shift of both sides.
    pub shift: Option<SensorShift>,
    /// Further sensor shift of the probe side.
    pub probe_shift: Option<SensorShift>,
}

impl ScanView {
    /// The scan of `sample` as the run's `side` saw it, with its resolution.
    pub fn scan(&self, sample: &Sample, side: Side) -> Result<fvc::Scan, String> {
        let image = GrayImage::open(&sample.path).map_err(|e| e.to_string())?;
        let (reference, probe) =
            fvc::shifted_sides(&image, &sample.name, self.dpi, self.shift, self.probe_shift)
                .map_err(|e| format!("sensor shift: {e}"))?;
        Ok(match side {
            Side::Probe => probe,
            Side::Reference => reference,
        })
    }
}

/// Writes the whole report of a `bench fvc` run into `out` (created if needed) and returns what
/// went into `report.json`.
pub fn write_fvc_report(
    out: &Path,
    info: &RunInfo,
    report: &Report,
    samples: &[Sample],
    scored: &[ScoredPair],
) -> anyhow::Result<ReportJson> {
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    font::ensure();
    let scores = |keep: &dyn Fn(PairKind) -> bool| -> Vec<f32> {
        scored
            .iter()
            .filter(|p| keep(p.kind))
            .map(|p| p.score)
            .collect()
    };
    let genuine = scores(&|k| k == PairKind::Genuine);
    let extended = scores(&|k| matches!(k, PairKind::Impostor { .. }));
    let fvc_impostor = scores(&|k| k == PairKind::Impostor { fvc: true });
    let det = DetCurves {
        fvc: det::thin(&det::curve(&genuine, &fvc_impostor)),
        extended: det::thin(&det::curve(&genuine, &extended)),
    };
    let images = Images {
        det_png: "det.png".into(),
        det_svg: "det.svg".into(),
        histogram_png: "histogram.png".into(),
        histogram_svg: "histogram.svg".into(),
    };
    let series = [
        det::Series {
            name: format!("{}: extended impostors", info.label),
            points: det.extended.clone(),
            eer: report.extended.eer,
        },
        det::Series {
            name: format!("{}: FVC impostors", info.label),
            points: det.fvc.clone(),
            eer: report.fvc.eer,
        },
    ];
    let title = format!("DET curve: {}", info.label);
    det::plot(&series, &title, &out.join(&images.det_png))?;
    det::plot(&series, &title, &out.join(&images.det_svg))?;
    let histogram = histogram::Histogram::new(&genuine, &extended);
    let title = format!("Score distributions: {}", info.label);
    histogram.plot(&title, &out.join(&images.histogram_png))?;
    histogram.plot(&title, &out.join(&images.histogram_svg))?;

    let worst_genuine = worst(scored, |k| k == PairKind::Genuine, false);
    let worst_impostor = worst(scored, |k| matches!(k, PairKind::Impostor { .. }), true);
    // Minutiae of every image are needed once: timed extraction of the whole set (single
    // thread, so the stage figures are not inflated by contention) also yields the
    // fingerprints the thumbnails draw.
    let needed: Vec<usize> = worst_genuine
        .iter()
        .chain(&worst_impostor)
        .flat_map(|p| [p.probe, p.candidate])
        .collect();
    let view = ScanView {
        dpi: info.dpi,
        shift: info.shift,
        probe_shift: info.probe_shift,
    };
    let (stage_timing, fingerprints) = match info.source {
        // With third-party references the thumbnails show our extraction of both sides.
        Source::Extract | Source::ReferenceIso => {
            timing::measure(samples, &view, info.params, &needed)
        }
        Source::IsoRecord => (
            timing::StageTiming::default(),
            needed
                .iter()
                .map(|&i| (i, fvc::read_iso(&samples[i].path.with_extension("iso"))))
                .map(|(i, r)| (i, r.map_err(|e| e.to_string())))
                .collect(),
        ),
    };
    // Under a probe-only shift the reference side is another scan: extracted here for the
    // candidates drawn (records made elsewhere are drawn on the scans as read).
    let drawn_view = match info.source {
        Source::IsoRecord => ScanView {
            shift: None,
            probe_shift: None,
            ..view
        },
        Source::Extract | Source::ReferenceIso => view,
    };
    let references: HashMap<usize, Result<Fingerprint, String>> =
        match (info.source, view.probe_shift) {
            (Source::Extract | Source::ReferenceIso, Some(_)) => worst_genuine
                .iter()
                .chain(&worst_impostor)
                .map(|p| p.candidate)
                .map(|i| {
                    let fp = view
                        .scan(&samples[i], Side::Reference)
                        .and_then(|(image, dpi)| {
                            extract_with(&image, dpi, info.params, &mut NoTransparency)
                                .map_err(|e| e.to_string())
                        });
                    (i, fp)
                })
                .collect(),
            _ => HashMap::new(),
        };
    let draw = |pairs: &[&ScoredPair], kind: &str| -> Vec<WorstPair> {
        pairs
            .iter()
            .enumerate()
            .map(|(n, p)| {
                let file = format!("worst-{kind}-{}.png", n + 1);
                let (a, b) = (&samples[p.probe], &samples[p.candidate]);
                let fp = |i: usize, side: Side| -> Result<&Fingerprint, String> {
                    let found = match side {
                        Side::Reference => references.get(&i).or(fingerprints.get(&i)),
                        Side::Probe => fingerprints.get(&i),
                    };
                    match found {
                        Some(Ok(fp)) => Ok(fp),
                        Some(Err(e)) => Err(e.clone()),
                        None => Err("not extracted".into()),
                    }
                };
                let caption = format!(
                    "{kind} pair {}: {} vs {}, score {:.4}",
                    n + 1,
                    a.name,
                    b.name,
                    p.score
                );
                let scans = drawn_view
                    .scan(a, Side::Probe)
                    .and_then(|(probe, _)| Ok((probe, drawn_view.scan(b, Side::Reference)?.0)));
                let drawn = scans.map_err(anyhow::Error::msg).and_then(|(pa, pb)| {
                    thumbnails::pair(
                        (&pa, fp(p.probe, Side::Probe)),
                        (&pb, fp(p.candidate, Side::Reference)),
                        (a.name.as_str(), b.name.as_str()),
                        &caption,
                        &out.join(&file),
                    )
                });
                let (image, note) = match drawn {
                    Ok(()) => (Some(file), None),
                    Err(e) => (None, Some(format!("{e:#}"))),
                };
                WorstPair {
                    probe: a.name.clone(),
                    candidate: b.name.clone(),
                    score: p.score,
                    image,
                    note,
                }
            })
            .collect()
    };
    let worst_genuine = draw(&worst_genuine, "genuine");
    let worst_impostor = draw(&worst_impostor, "impostor");

    let json = ReportJson {
        schema: SCHEMA.into(),
        label: info.label.into(),
        version: env!("CARGO_PKG_VERSION").into(),
        dir: info.dir.display().to_string(),
        dpi: info.dpi,
        source: match info.source {
            Source::Extract => "extract".into(),
            Source::IsoRecord => "iso-record".into(),
            Source::ReferenceIso => "reference-iso".into(),
        },
        card_format: info.card_format.clone(),
        figures: report.clone(),
        det,
        histogram,
        stage_timing,
        worst_genuine,
        worst_impostor,
        images,
    };
    let path = out.join("report.json");
    std::fs::write(&path, serde_json::to_string_pretty(&json)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let path = out.join("index.html");
    std::fs::write(&path, html::fvc_page(&json))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(json)
}

/// The [`WORST_PAIRS`] pairs of a kind with the lowest scores (`highest` false) or the highest.
fn worst(
    scored: &[ScoredPair],
    keep: impl Fn(PairKind) -> bool,
    highest: bool,
) -> Vec<&ScoredPair> {
    let mut pairs: Vec<&ScoredPair> = scored.iter().filter(|p| keep(p.kind)).collect();
    pairs.sort_by(|a, b| {
        let order = a.score.total_cmp(&b.score);
        if highest {
            order.reverse()
        } else {
            order
        }
    });
    pairs.truncate(WORST_PAIRS);
    pairs
}

/// Turns a plotters error (whose type names the backend) into one that names the file.
fn draw_error<E: std::fmt::Debug>(path: &Path) -> impl Fn(E) -> anyhow::Error + '_ {
    move |e| anyhow::anyhow!("drawing {}: {e:?}", path.display())
}

/// Reads a `report.json`, refusing other schemas.
pub fn read_report(path: &Path) -> anyhow::Result<ReportJson> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    match value.get("schema").and_then(|s| s.as_str()) {
        Some(SCHEMA) => {}
        Some(other) => anyhow::bail!(
            "{}: report schema {other:?}, this idcardd reads {SCHEMA:?}",
            path.display()
        ),
        None => anyhow::bail!("{}: not a bench report (no \"schema\")", path.display()),
    }
    serde_json::from_value(value).with_context(|| format!("{}: malformed report", path.display()))
}

/// What `bench compare` wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Series names in the plot, one per report, in argument order.
    pub series: Vec<String>,
    /// The reports compared.
    pub reports: Vec<String>,
    /// DET plot files, relative to the output folder.
    pub images: Vec<String>,
}

/// Overlays the extended-impostor DET curves of several reports in `out/det.png|svg` and writes
/// `out/compare.json` and `out/index.html`. Series are named by each report's label; equal
/// labels get the report's folder name appended so that every series stays distinguishable.
pub fn compare_reports(paths: &[PathBuf], out: &Path) -> anyhow::Result<Comparison> {
    if paths.len() < 2 {
        anyhow::bail!("bench compare needs at least two report.json files");
    }
    let reports = paths
        .iter()
        .map(|p| read_report(p))
        .collect::<anyhow::Result<Vec<_>>>()?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    font::ensure();
    let mut names: Vec<String> = reports.iter().map(|r| r.label.clone()).collect();
    for i in 0..names.len() {
        let duplicate = (0..names.len()).any(|j| j != i && reports[j].label == reports[i].label);
        if duplicate {
            let folder = paths[i]
                .parent()
                .and_then(|p| p.file_name())
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_else(|| format!("#{}", i + 1));
            names[i] = format!("{} ({folder})", reports[i].label);
        }
    }
    for i in 0..names.len() {
        if names[..i].contains(&names[i]) {
            names[i] = format!("{} #{}", names[i], i + 1);
        }
    }
    let series: Vec<det::Series> = reports
        .iter()
        .zip(&names)
        .map(|(r, name)| det::Series {
            name: name.clone(),
            points: r.det.extended.clone(),
            eer: r.figures.extended.eer,
        })
        .collect();
    let title = "DET curves (extended impostors)";
    let images = vec!["det.png".to_string(), "det.svg".to_string()];
    for file in &images {
        det::plot(&series, title, &out.join(file))?;
    }
    let comparison = Comparison {
        series: names,
        reports: paths.iter().map(|p| p.display().to_string()).collect(),
        images,
    };
    let path = out.join("compare.json");
    std::fs::write(&path, serde_json::to_string_pretty(&comparison)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    let path = out.join("index.html");
    std::fs::write(&path, html::compare_page(&comparison, &reports))
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(comparison)
}
