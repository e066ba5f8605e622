//! DET curves: false non-match rate against false match rate over every threshold, drawn on log
//! scales (Martin et al., "The DET curve in assessment of detection task performance", 1997).
//!
//! The rates follow [`matcher::eval`]: a pair is accepted when its score is at or above the
//! threshold, NaN scores count as the lowest possible score, and the thresholds are every
//! distinct score plus "accept nothing" (just above the highest score). The first point of a
//! curve therefore accepts everything (FMR 1, FNMR 0) and the last accepts nothing (FMR 0,
//! FNMR 1); in between FMR never rises and FNMR never falls.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::font;

/// One operating point.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DetPoint {
    /// Lowest accepted score.
    pub threshold: f32,
    /// Share of impostor pairs accepted.
    pub fmr: f64,
    /// Share of genuine pairs rejected.
    pub fnmr: f64,
}

/// The DET curve of two score lists, thresholds ascending. Empty when both lists are empty.
pub fn curve(genuine: &[f32], impostor: &[f32]) -> Vec<DetPoint> {
    let clean = |v: &[f32]| {
        let mut v: Vec<f32> = v
            .iter()
            .map(|&s| if s.is_nan() { f32::NEG_INFINITY } else { s })
            .collect();
        v.sort_by(f32::total_cmp);
        v
    };
    let (genuine, impostor) = (clean(genuine), clean(impostor));
    let mut thresholds: Vec<f32> = genuine.iter().chain(&impostor).copied().collect();
    if thresholds.is_empty() {
        return Vec::new();
    }
    thresholds.sort_by(f32::total_cmp);
    thresholds.dedup();
    let top = *thresholds.last().unwrap_or(&0.0);
    if top < f32::MAX {
        thresholds.push(top.next_up());
    }
    let share = |count: usize, of: usize| {
        if of == 0 {
            0.0
        } else {
            count as f64 / of as f64
        }
    };
    thresholds
        .iter()
        .map(|&t| DetPoint {
            // JSON has no infinities: the "everything" threshold of NaN/-inf scores is written
            // as the lowest finite score, which accepts the same pairs among finite scores.
            threshold: t.clamp(f32::MIN, f32::MAX),
            fmr: share(
                impostor.len() - impostor.partition_point(|&s| s < t),
                impostor.len(),
            ),
            fnmr: share(genuine.partition_point(|&s| s < t), genuine.len()),
        })
        .collect()
}

/// Drops points that would not move the plotted curve: a point is kept when either rate differs
/// from the last kept point by more than 0.5 % of a decade on the log scale, or when a rate turns
/// zero; the first and last points are always kept. Large sets give hundreds of thousands of
/// thresholds, a plot needs a few hundred.
pub fn thin(points: &[DetPoint]) -> Vec<DetPoint> {
    let log = |x: f64| {
        if x > 0.0 {
            x.log10()
        } else {
            f64::NEG_INFINITY
        }
    };
    let moved = |a: f64, b: f64| {
        let (la, lb) = (log(a), log(b));
        if la.is_infinite() || lb.is_infinite() {
            la != lb
        } else {
            (la - lb).abs() > 0.005
        }
    };
    let mut out: Vec<DetPoint> = Vec::new();
    for (i, p) in points.iter().enumerate() {
        let keep = match out.last() {
            None => true,
            Some(last) => {
                i + 1 == points.len() || moved(last.fmr, p.fmr) || moved(last.fnmr, p.fnmr)
            }
        };
        if keep {
            out.push(*p);
        }
    }
    out
}

/// One curve of a DET plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// The curve.
    pub points: Vec<DetPoint>,
    /// Its equal error rate, marked on the curve.
    pub eer: f64,
}

/// Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
pub const PALETTE: &[RGBColor] = &[
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
];

/// Size of the plots in pixels (SVG user units).
pub const SIZE: (u32, u32) = (1000, 760);

/// The lowest labelled decade: the smallest non-zero rate of any series rounded down to a power
/// of ten, between 10⁻⁶ and 10⁻¹.
pub fn floor(series: &[Series]) -> f64 {
    let smallest = series
        .iter()
        .flat_map(|s| s.points.iter())
        .flat_map(|p| [p.fmr, p.fnmr])
        .filter(|&r| r > 0.0)
        .fold(1.0f64, f64::min);
    10f64.powf(smallest.log10().floor()).clamp(1e-6, 0.1)
}

/// Where the axes start: a third of [`floor`], so that the lowest decade keeps its label and
/// rates of zero, drawn on the axes, stay apart from it.
pub fn axis_start(series: &[Series]) -> f64 {
    floor(series) / 3.0
}

/// Draws a DET plot into `path`: SVG when it ends in `.svg`, else PNG.
pub fn plot(series: &[Series], title: &str, path: &Path) -> anyhow::Result<()> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
    {
        draw(
            SVGBackend::new(path, SIZE).into_drawing_area(),
            series,
            title,
        )
    } else {
        draw(
            BitMapBackend::new(path, SIZE).into_drawing_area(),
            series,
            title,
        )
    }
    .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))
}

/// Formats a rate given as a fraction as a percentage without trailing zeros ("0.1 %").
pub fn percent(x: f64) -> String {
    let p = 100.0 * x;
    let digits = if !(p > 0.0 && p.is_finite()) || p >= 1.0 {
        0
    } else {
        ((-p.log10()).ceil() as usize).min(6)
    };
    format!("{p:.digits$} %")
}

/// Formats a rate given as a fraction as a percentage with two decimals ("3.33 %"), as the
/// bench's table does.
pub fn rate(x: f64) -> String {
    format!("{:.2} %", 100.0 * x)
}

/// Plots `series` on `root`; errors are strings because backends differ in error types.
fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    series: &[Series],
    title: &str,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("{e:?}");
    let text = font::available();
    root.fill(&WHITE).map_err(e)?;
    let lo = axis_start(series);
    let mut builder = ChartBuilder::on(&root);
    builder.margin(24).margin_right(48);
    if text {
        builder
            .caption(title, (font::FAMILY, 30).into_font())
            .x_label_area_size(70)
            .y_label_area_size(100);
    } else {
        builder.x_label_area_size(10).y_label_area_size(10);
    }
    let mut chart = builder
        .build_cartesian_2d((lo..1.0f64).log_scale(), (lo..1.0f64).log_scale())
        .map_err(e)?;
    let format_rate = |r: &f64| percent(*r);
    let mut mesh = chart.configure_mesh();
    mesh.light_line_style(RGBColor(235, 235, 235))
        .bold_line_style(RGBColor(200, 200, 200));
    if text {
        mesh.x_desc("False match rate (FMR)")
            .y_desc("False non-match rate (FNMR)")
            .axis_desc_style((font::FAMILY, 24))
            .label_style((font::FAMILY, 20))
            .x_label_formatter(&format_rate)
            .y_label_formatter(&format_rate);
    } else {
        mesh.x_labels(0).y_labels(0);
    }
    mesh.draw().map_err(e)?;

    // Reference lines: equal error (FMR = FNMR) and the FMR100 / FMR1000 operating points.
    let grey = RGBColor(150, 150, 150);
    chart
        .draw_series(DashedLineSeries::new(
            [(lo, lo), (1.0, 1.0)],
            8,
            6,
            grey.stroke_width(1),
        ))
        .map_err(e)?;
    for (x, name) in [(0.01, "FMR100"), (0.001, "FMR1000")] {
        if x <= lo {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(
                [(x, lo), (x, 1.0)],
                4,
                4,
                grey.stroke_width(1),
            ))
            .map_err(e)?;
        if text {
            chart
                .draw_series([Text::new(
                    name,
                    (x * 1.08, 0.25),
                    (font::FAMILY, 18).into_font().color(&grey),
                )])
                .map_err(e)?;
        }
    }
    if text {
        chart
            .draw_series([Text::new(
                "FMR = FNMR",
                (0.2, 0.09),
                (font::FAMILY, 18).into_font().color(&grey),
            )])
            .map_err(e)?;
        chart
            .draw_series([Text::new(
                "rates of 0 are drawn on the axes",
                (lo * 1.5, lo * 1.7),
                (font::FAMILY, 16).into_font().color(&grey),
            )])
            .map_err(e)?;
    }

    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        // Zero rates sit just inside the axes, so that the whole line width stays visible.
        let zero = lo * 1.15;
        let clamp = |p: &DetPoint| (p.fmr.max(zero), p.fnmr.max(zero));
        // Each series is drawn thinner than the one before, so that curves lying on top of
        // each other (a perfect separation runs along both axes) all stay visible.
        let width = 6u32.saturating_sub(2 * i as u32).max(2);
        let line = chart
            .draw_series(LineSeries::new(
                s.points.iter().map(clamp),
                colour.stroke_width(width),
            ))
            .map_err(e)?;
        if text {
            let label = format!("{} (EER {})", s.name, rate(s.eer));
            line.label(label).legend(move |(x, y)| {
                PathElement::new([(x - 4, y), (x + 16, y)], colour.stroke_width(4))
            });
        }
        if s.eer > 0.0 {
            let eer = s.eer.max(lo);
            chart
                .draw_series([Circle::new((eer, eer), 7, colour.stroke_width(3))])
                .map_err(e)?;
        }
    }
    if text && !series.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .margin(16)
            .label_font((font::FAMILY, 20))
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
    }
    root.present().map_err(e)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_accept_everything_then_nothing() {
        let c = curve(&[0.9, 0.5, 0.7], &[0.1, 0.6, 0.2, 0.3]);
        let first = c.first().unwrap();
        assert_eq!((first.fmr, first.fnmr), (1.0, 0.0));
        let last = c.last().unwrap();
        assert_eq!((last.fmr, last.fnmr), (0.0, 1.0));
        // 7 distinct scores plus "accept nothing".
        assert_eq!(c.len(), 8);
    }

    #[test]
    fn monotone_in_threshold() {
        let genuine: Vec<f32> = (0..200).map(|i| ((i * 37) % 101) as f32 / 100.0).collect();
        let impostor: Vec<f32> = (0..500).map(|i| ((i * 13) % 61) as f32 / 100.0).collect();
        let c = curve(&genuine, &impostor);
        for w in c.windows(2) {
            assert!(w[0].threshold < w[1].threshold);
            assert!(w[1].fmr <= w[0].fmr, "{w:?}");
            assert!(w[1].fnmr >= w[0].fnmr, "{w:?}");
        }
        let thinned = thin(&c);
        assert!(thinned.len() <= c.len());
        assert_eq!(thinned.first(), c.first());
        assert_eq!(thinned.last(), c.last());
    }

    #[test]
    fn rates_at_a_score_match_the_evaluation() {
        // Ties are accepted: at t = 0.6 the impostor 0.6 is a false match.
        let genuine = [0.9f32, 0.5, 0.7, 0.6];
        let impostor = [0.1f32, 0.6, 0.2, 0.3];
        let c = curve(&genuine, &impostor);
        let at = c.iter().find(|p| p.threshold == 0.6).unwrap();
        assert_eq!(at.fmr, matcher::eval::fmr_at(&impostor, 0.6));
        assert_eq!(at.fnmr, matcher::eval::fnmr_at(&genuine, 0.6));
        assert_eq!((at.fmr, at.fnmr), (0.25, 0.25));
    }

    #[test]
    fn nan_scores_count_as_lowest_and_serialize() {
        let c = curve(&[f32::NAN, 0.5], &[0.2]);
        assert_eq!((c[0].fmr, c[0].fnmr), (1.0, 0.0));
        assert!(c.iter().all(|p| p.threshold.is_finite()));
        assert!(serde_json::to_string(&c).is_ok());
        assert!(curve(&[], &[]).is_empty());
    }

    #[test]
    fn thinning_bounds_large_curves() {
        let genuine: Vec<f32> = (0..3000).map(|i| 0.3 + (i as f32) / 6000.0).collect();
        let impostor: Vec<f32> = (0..300_000).map(|i| (i as f32) / 700_000.0).collect();
        let c = curve(&genuine, &impostor);
        let t = thin(&c);
        assert!(t.len() < 3000, "{} points", t.len());
        assert_eq!(t.last().map(|p| (p.fmr, p.fnmr)), Some((0.0, 1.0)));
    }

    #[test]
    fn floor_follows_smallest_rate() {
        let s = Series {
            name: "a".into(),
            points: vec![
                DetPoint {
                    threshold: 0.0,
                    fmr: 0.004,
                    fnmr: 0.2,
                },
                DetPoint {
                    threshold: 1.0,
                    fmr: 0.0,
                    fnmr: 1.0,
                },
            ],
            eer: 0.1,
        };
        assert!((floor(&[s]) - 0.001).abs() < 1e-12);
        assert_eq!(percent(0.001), "0.1 %");
        assert_eq!(percent(0.25), "25 %");
        assert_eq!(percent(0.0), "0 %");
        assert_eq!(percent(1e-300), "0.000000 %");
    }
}
