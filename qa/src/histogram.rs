//! Genuine and impostor score histograms.
//!
//! Both distributions share one set of bins from 0 to just above the highest score. Each is
//! shown as the share of its own pairs per bin, on a log scale: impostor pairs outnumber genuine
//! pairs by orders of magnitude, and the tails where the two overlap are what matters. The
//! default decision thresholds of [`matcher::compare::Threshold`] are marked.

use std::path::Path;

use matcher::compare::Threshold;
use plotters::coord::Shift;
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::det::{percent, PALETTE, SIZE};
use crate::font;

/// Number of bins.
pub const BINS: usize = 50;

/// Binned genuine and impostor scores.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Lower edge of the first bin.
    pub lo: f64,
    /// Width of every bin.
    pub bin_width: f64,
    /// Genuine pairs per bin.
    pub genuine: Vec<u64>,
    /// Impostor pairs per bin.
    pub impostor: Vec<u64>,
}

impl Histogram {
    /// Bins both score lists over `[min(0, lowest), highest]`, [`BINS`] bins. Non-finite scores
    /// go to the first bin (NaN, −∞) or the last (+∞).
    pub fn new(genuine: &[f32], impostor: &[f32]) -> Histogram {
        let finite = || genuine.iter().chain(impostor).filter(|s| s.is_finite());
        let lo = finite().fold(0.0f32, |a, &b| a.min(b)) as f64;
        let hi = finite().fold(f32::MIN, |a, &b| a.max(b)) as f64;
        // Round the top up to a tidy value so that bin edges are readable.
        let span = (hi - lo).max(1e-6);
        let step = 10f64.powf(span.log10().floor() - 1.0);
        let top = lo + ((span / step).floor() + 1.0) * step;
        let bin_width = (top - lo) / BINS as f64;
        let count = |scores: &[f32]| {
            let mut bins = vec![0u64; BINS];
            for &s in scores {
                let i = if s.is_nan() {
                    0
                } else {
                    (((s as f64 - lo) / bin_width).floor().max(0.0) as usize).min(BINS - 1)
                };
                bins[i] += 1;
            }
            bins
        };
        Histogram {
            lo,
            bin_width,
            genuine: count(genuine),
            impostor: count(impostor),
        }
    }

    /// Upper edge of the last bin.
    pub fn hi(&self) -> f64 {
        self.lo + self.bin_width * self.genuine.len() as f64
    }

    /// Draws the histogram into `path`: SVG when it ends in `.svg`, else PNG.
    pub fn plot(&self, title: &str, path: &Path) -> anyhow::Result<()> {
        if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("svg"))
        {
            self.draw(SVGBackend::new(path, SIZE).into_drawing_area(), title)
        } else {
            self.draw(BitMapBackend::new(path, SIZE).into_drawing_area(), title)
        }
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: DrawingArea<DB, Shift>,
        title: &str,
    ) -> Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| format!("{e:?}");
        let text = font::available();
        root.fill(&WHITE).map_err(e)?;
        let shares = |bins: &[u64]| -> Vec<f64> {
            let total: u64 = bins.iter().sum();
            bins.iter()
                .map(|&c| {
                    if total == 0 {
                        0.0
                    } else {
                        c as f64 / total as f64
                    }
                })
                .collect()
        };
        let genuine = shares(&self.genuine);
        let impostor = shares(&self.impostor);
        let smallest = genuine
            .iter()
            .chain(&impostor)
            .copied()
            .filter(|&s| s > 0.0)
            .fold(1.0f64, f64::min);
        // Half a decade below the smallest share's decade, so that decade keeps its label.
        let floor = 10f64.powf(smallest.log10().floor()).clamp(1e-7, 0.1) / 2.0;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(24);
        if text {
            builder
                .caption(title, (font::FAMILY, 30).into_font())
                .x_label_area_size(70)
                .y_label_area_size(100);
        } else {
            builder.x_label_area_size(10).y_label_area_size(10);
        }
        let mut chart = builder
            .build_cartesian_2d(self.lo..self.hi(), (floor..1.0f64).log_scale())
            .map_err(e)?;
        let format_score = |x: &f64| format!("{x:.2}");
        let format_share = |y: &f64| percent(*y);
        let mut mesh = chart.configure_mesh();
        mesh.light_line_style(RGBColor(235, 235, 235))
            .bold_line_style(RGBColor(200, 200, 200));
        if text {
            mesh.x_desc("Comparison score")
                .y_desc("Share of pairs per bin")
                .axis_desc_style((font::FAMILY, 24))
                .label_style((font::FAMILY, 20))
                .x_label_formatter(&format_score)
                .y_label_formatter(&format_share);
        } else {
            mesh.x_labels(0).y_labels(0);
        }
        mesh.draw().map_err(e)?;

        let sides = [
            (
                "impostor",
                &impostor,
                self.impostor.iter().sum::<u64>(),
                PALETTE[1],
            ),
            (
                "genuine",
                &genuine,
                self.genuine.iter().sum::<u64>(),
                PALETTE[0],
            ),
        ];
        for (name, shares, total, colour) in sides {
            let bars = shares
                .iter()
                .enumerate()
                .filter(|(_, &s)| s > 0.0)
                .map(|(i, &s)| {
                    let x0 = self.lo + i as f64 * self.bin_width;
                    Rectangle::new(
                        [(x0, floor), (x0 + self.bin_width, s)],
                        colour.mix(0.45).filled(),
                    )
                });
            let drawn = chart.draw_series(bars).map_err(e)?;
            if text {
                drawn
                    .label(format!("{name} pairs ({total})"))
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 8), (x + 24, y + 8)], colour.mix(0.6).filled())
                    });
            }
            // Outline so that overlapping bars stay readable.
            let outline = shares
                .iter()
                .enumerate()
                .filter(|(_, &s)| s > 0.0)
                .map(|(i, &s)| {
                    let x0 = self.lo + i as f64 * self.bin_width;
                    Rectangle::new(
                        [(x0, floor), (x0 + self.bin_width, s)],
                        colour.stroke_width(2),
                    )
                });
            chart.draw_series(outline).map_err(e)?;
        }
        let grey = RGBColor(110, 110, 110);
        for (i, t) in [Threshold::FMR_1_PERCENT, Threshold::FMR_0_1_PERCENT]
            .into_iter()
            .enumerate()
        {
            let x = t.score as f64;
            if x <= self.lo || x >= self.hi() {
                continue;
            }
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, floor), (x, 1.0)],
                    6,
                    5,
                    grey.stroke_width(2),
                ))
                .map_err(e)?;
            if text {
                // Labels one above the other: the thresholds lie close together.
                let name = format!("default threshold, FMR {}", percent(t.target_fmr));
                chart
                    .draw_series([Text::new(
                        name,
                        (x + self.bin_width * 0.3, 0.75 / 2.5f64.powi(i as i32)),
                        (font::FAMILY, 18).into_font().color(&grey),
                    )])
                    .map_err(e)?;
            }
        }
        if text {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_score_lands_in_one_bin() {
        let genuine = [0.5f32, 0.9, 0.31, f32::NAN];
        let impostor = [0.0f32, 0.01, 0.02, 0.9];
        let h = Histogram::new(&genuine, &impostor);
        assert_eq!(h.genuine.iter().sum::<u64>(), 4);
        assert_eq!(h.impostor.iter().sum::<u64>(), 4);
        assert!(h.hi() > 0.9);
        assert_eq!(h.lo, 0.0);
        // The highest score falls in the last bin or just before, never beyond.
        let last = ((0.9 - h.lo) / h.bin_width) as usize;
        assert_eq!(h.genuine[last.min(BINS - 1)], 1);
        assert_eq!(h.genuine[0], 1, "NaN goes to the first bin");
    }
}
