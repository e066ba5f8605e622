//! Every tuning constant of extraction and comparison, in one place, each with a line saying
//! what it does. Constants are expressed at 500 dpi; images at other resolutions are rescaled
//! before extraction, so nothing here depends on a particular sensor or data set.

// ===== Extraction =====

/// Resolution (dpi) that extraction works at; scans at other resolutions are rescaled to it first.
pub const EXTRACT_DPI: u32 = 500;
/// Smallest accepted image side in pixels (as given, before rescaling).
pub const MIN_IMAGE_SIDE: u32 = 64;
/// Largest accepted image side in pixels (as given, before rescaling); bounds memory and time.
pub const MAX_IMAGE_SIDE: u32 = 2000;
/// Largest accepted encoded image file in bytes (checked before reading it whole).
pub const MAX_IMAGE_FILE_BYTES: u64 = 32 << 20;
/// Lowest accepted declared resolution (dpi).
pub const MIN_DPI: u32 = 250;
/// Highest accepted declared resolution (dpi).
pub const MAX_DPI: u32 = 2000;
/// Resolution (dpi) to assume for a scan that does not state its own, and to convert the
/// millimetre units of a card template to pixels at when nothing better is known: 500 dpi, the
/// resolution of common fingerprint sensors and of the shared data sets. A convention, not a
/// tuning value.
pub const DEFAULT_DPI: u32 = 500;

/// Every tuning value of extraction, expressed at 500 dpi ([`EXTRACT_DPI`]). `Default` is the
/// tuned set; the struct exists so that evaluations can vary one value without recompiling.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtractParams {
    /// Side (pixels) of the square blocks of the block grid (orientation, segmentation, Gabor).
    pub block: usize,
    /// Radius (blocks) of the window over which block contrast is measured for segmentation.
    pub segmentation_radius: usize,
    /// A block is foreground when its contrast exceeds this fraction of the 90th percentile of
    /// block contrast in the image (adapts to sensors with different dynamic ranges).
    pub segmentation_relative_contrast: f32,
    /// ... and when its contrast exceeds this absolute floor (gray levels, standard deviation;
    /// also the smallest divisor of normalization). Only a guard against flat, noiseless areas:
    /// a faint sensor's ridges can have a contrast of 3-5 gray levels (issue 19: 6 until then,
    /// which cut faint prints away; see docs/matcher.md, "Sensor shift").
    pub segmentation_min_contrast: f32,
    /// ... and when its raw (unsmoothed) orientation coherence exceeds this (rejects smudges
    /// and noise, which have contrast but no ridge flow).
    pub segmentation_min_coherence: f32,
    /// Passes of 3x3-block majority voting that smooth the foreground mask.
    pub segmentation_smoothing_passes: usize,
    /// Foreground blocks are eroded by this many blocks from the print's boundary with the
    /// background: minutiae there are mostly artifacts of the print's fading edge.
    pub border_erosion_blocks: usize,
    /// The outermost of those blocks (the band between the foreground eroded by one block less and
    /// the eroded foreground) keeps its minutiae of at least this quality (above 100: none). The
    /// band holds a third of the minutiae that LEADER finds and we miss, mostly among the false
    /// endings of ridges that fade out; a clear and coherent neighbourhood tells the true ones
    /// (issue 19, session 19; see docs/matcher.md, "The erosion band at a quality floor").
    pub border_band_min_quality: u8,
    /// Minutiae closer than this (pixels) to the scan's own edge are dropped: ridges cut by the
    /// sensor's edge end there, and the Gabor filter (radius 7) sees padding within it. Until
    /// issue 19 the erosion above also ran from the scan's edge, losing 16 px of print on every
    /// side that a small sensor fills.
    pub image_edge_margin: f32,
    /// Noise-to-contrast ratio of a scan (`extract::noise`) above which its gradients are
    /// smoothed before the orientation stage. The shared sets span 0.01-0.23, so they are
    /// extracted as before; a noisier sensor is brought back toward that range (issue 19).
    pub gradient_smoothing_onset: f32,
    /// Ratio above the onset at which the smoothing reaches its maximum.
    pub gradient_smoothing_span: f32,
    /// Largest standard deviation (pixels) of that Gaussian smoothing.
    pub max_gradient_smoothing: f32,
    /// Standard deviation (pixels) of the Gaussian whose blur is taken off the scan before its
    /// gradients (orientation, coherence and with them the segmentation) are measured (0: none).
    /// A smooth gray ramp has gradients that all point one way and passed for ridge flow:
    /// blurred scans grew a foreground of background. Chosen on shifted copies of the shared
    /// sets (docs/matcher.md, "Gradients without the low frequencies"), issue 19.
    pub orientation_highpass_sigma: f32,
    /// Radius (blocks) of the Gaussian that smooths the doubled-angle orientation vectors.
    pub orientation_smoothing_radius: usize,
    /// Standard deviation (blocks) of that Gaussian.
    pub orientation_smoothing_sigma: f32,
    /// Length (pixels) of the ridge-crossing signature used to measure ridge frequency.
    pub frequency_window_length: usize,
    /// Width (pixels, along the ridges) over which that signature is averaged.
    pub frequency_window_width: usize,
    /// Shortest plausible ridge period (pixels); measured periods are clamped to it.
    pub min_ridge_period: f32,
    /// Longest plausible ridge period (pixels).
    pub max_ridge_period: f32,
    /// Radius (blocks) of the averaging that smooths the measured ridge periods.
    pub frequency_smoothing_radius: usize,
    /// Standard deviation (pixels) of the Gaussian whose blur is taken off the normalized image
    /// before the Gabor filter (0: none); ridge clarity is measured against what is left.
    /// Chosen on shifted copies of the shared sets (docs/matcher.md, "The Gabor filter's input
    /// without its low frequencies"), issue 19.
    pub enhancement_highpass_sigma: f32,
    /// Number of quantized orientations of the Gabor filter bank (over half a turn).
    pub gabor_orientations: usize,
    /// Step (pixels) between the ridge periods of the Gabor filter bank.
    pub gabor_period_step: f32,
    /// Radius (pixels) of the Gabor kernels (kernel side is 2 * radius + 1).
    pub gabor_radius: usize,
    /// Gaussian envelope standard deviation across the ridges, as a fraction of the ridge period.
    pub gabor_sigma_across: f32,
    /// Gaussian envelope standard deviation along the ridges (pixels); larger bridges ridge gaps.
    pub gabor_sigma_along: f32,
    /// Connected ridge or valley islands smaller than this (pixels) are flipped in the binary
    /// image (dots, pores, specks).
    pub min_island_area: usize,
    /// Ridges shorter than this (pixels) between two endings are fragments: both endings dropped.
    pub min_fragment_length: usize,
    /// Ridges shorter than this (pixels) from an ending to a bifurcation are spurs: dropped
    /// together with the bifurcation they create.
    pub min_spur_length: usize,
    /// Ridges shorter than this (pixels) between two bifurcations are bridges or pore walls:
    /// both bifurcations dropped.
    pub min_bridge_length: usize,
    /// Two endings closer than this (pixels) facing each other are a broken ridge: both dropped.
    pub max_gap_length: f32,
    /// Angle tolerance (radians) for the "facing each other" test of a gap.
    pub gap_angle_tolerance: f32,
    /// Distance (pixels) along the ridge over which a minutia's direction is traced.
    pub direction_trace_length: usize,
    /// A traced direction within this angle (radians) of the smoothed ridge orientation is
    /// replaced by it (0 keeps the traced directions; the trace then only picks the sense).
    /// 0.5 until issue 19, session 17: since the gradients lost their low frequencies the field
    /// is the better guess even 60° off a trace that wobbles near a fork or a break (chosen
    /// leave-one-set-out and on shifted copies, see docs/matcher.md, "Minutia directions from
    /// the field").
    pub direction_snap_tolerance: f32,
    /// Minutiae closer than this (pixels) to each other, more than [`Self::cluster_size`] of
    /// them, are a noisy cluster and all dropped.
    pub cluster_radius: f32,
    /// Neighbour count within [`Self::cluster_radius`] above which a minutia is in a cluster.
    pub cluster_size: usize,
    /// Minutiae where the smoothed orientation coherence is below this are dropped.
    /// (0.2 until issue 19; 0.1 chosen leave-one-set-out on the shared sets, see docs/matcher.md.)
    pub min_minutia_coherence: f32,
    /// Minutiae where the ridge clarity (Gabor-kept energy share) is below this are dropped.
    pub min_minutia_clarity: f32,
    /// A minutia's quality takes the lowest ridge clarity of the blocks within this many blocks
    /// of its own (0: its own block's): a minutia beside a crease, a smudge or the print's edge
    /// is as doubtful as that neighbour. (1 since issue 19, session 16; see docs/matcher.md.)
    pub minutia_clarity_radius: usize,
    /// Ridge clarity that maps to no / full clarity part of a minutia's quality.
    pub minutia_clarity_range: (f32, f32),
    /// The no-clarity end of [`Self::minutia_clarity_range`] is at most this share of the
    /// print's median clarity (inside the eroded foreground), so that a sensor whose noise
    /// lowers clarity all over does not put every minutia at the floor. (Issue 19, session 16.)
    pub minutia_clarity_floor_share: f32,
    /// At most this many minutiae are kept (the best by quality).
    pub max_minutiae: usize,
    /// Foreground area (pixels at 500 dpi) below which the image holds no usable fingerprint.
    pub min_foreground_area: usize,
    /// Fewer minutiae than this means no usable fingerprint.
    pub min_minutiae: usize,
    /// Foreground area (pixels at 500 dpi) at which the area part of image quality is full.
    pub quality_full_area: f32,
    /// Mean foreground coherence that maps to no / full flow part of image quality.
    pub quality_coherence_range: (f32, f32),
    /// Mean foreground ridge clarity that maps to no / full clarity part of image quality.
    pub quality_clarity_range: (f32, f32),
}

impl Default for ExtractParams {
    fn default() -> Self {
        ExtractParams {
            block: 8,
            segmentation_radius: 1,
            segmentation_relative_contrast: 0.3,
            segmentation_min_contrast: 1.5,
            segmentation_min_coherence: 0.15,
            segmentation_smoothing_passes: 3,
            border_erosion_blocks: 2,
            border_band_min_quality: 55,
            image_edge_margin: 8.0,
            gradient_smoothing_onset: 0.25,
            gradient_smoothing_span: 0.25,
            max_gradient_smoothing: 1.0,
            orientation_highpass_sigma: 4.0,
            orientation_smoothing_radius: 3,
            orientation_smoothing_sigma: 1.6,
            frequency_window_length: 36,
            frequency_window_width: 12,
            min_ridge_period: 5.0,
            max_ridge_period: 15.0,
            frequency_smoothing_radius: 3,
            enhancement_highpass_sigma: 4.0,
            gabor_orientations: 16,
            gabor_period_step: 1.0,
            gabor_radius: 7,
            gabor_sigma_across: 0.45,
            gabor_sigma_along: 4.0,
            min_island_area: 40,
            min_fragment_length: 12,
            min_spur_length: 8,
            min_bridge_length: 7,
            max_gap_length: 16.0,
            gap_angle_tolerance: 0.7,
            direction_trace_length: 12,
            direction_snap_tolerance: 1.1,
            cluster_radius: 10.0,
            cluster_size: 2,
            min_minutia_coherence: 0.1,
            min_minutia_clarity: 0.0,
            minutia_clarity_radius: 1,
            minutia_clarity_range: (0.2, 0.65),
            minutia_clarity_floor_share: 0.5,
            max_minutiae: 120,
            min_foreground_area: 9000,
            min_minutiae: 5,
            quality_full_area: 60_000.0,
            quality_coherence_range: (0.2, 0.75),
            quality_clarity_range: (0.3, 0.6),
        }
    }
}

impl ExtractParams {
    /// Sets the field `name` from its text `value` (an evaluation hook: `idcardd bench fvc
    /// --param NAME=VALUE` and `idcardd extract --param` try a value without recompiling).
    /// Pair fields take `LOW,HIGH`. Fails on an unknown name or a value that does not parse.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        fn parse<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
            v.trim()
                .parse()
                .map_err(|_| format!("{name}: cannot read {v:?}"))
        }
        fn pair(name: &str, v: &str) -> Result<(f32, f32), String> {
            let (a, b) = v
                .split_once(',')
                .ok_or_else(|| format!("{name}: expected LOW,HIGH, got {v:?}"))?;
            Ok((parse(name, a)?, parse(name, b)?))
        }
        macro_rules! fields {
            ($($f:ident),* ; $($g:ident),*) => {
                match name {
                    $(stringify!($f) => self.$f = parse(name, value)?,)*
                    $(stringify!($g) => self.$g = pair(name, value)?,)*
                    _ => return Err(format!("unknown extraction parameter {name:?}")),
                }
            };
        }
        fields!(
            block, segmentation_radius, segmentation_relative_contrast, segmentation_min_contrast,
            segmentation_min_coherence, segmentation_smoothing_passes, border_erosion_blocks,
            border_band_min_quality,
            image_edge_margin, gradient_smoothing_onset, gradient_smoothing_span, max_gradient_smoothing,
            orientation_highpass_sigma, orientation_smoothing_radius, orientation_smoothing_sigma, frequency_window_length,
            frequency_window_width, min_ridge_period, max_ridge_period, frequency_smoothing_radius,
            enhancement_highpass_sigma, gabor_orientations, gabor_period_step, gabor_radius, gabor_sigma_across,
            gabor_sigma_along, min_island_area, min_fragment_length, min_spur_length,
            min_bridge_length, max_gap_length, gap_angle_tolerance, direction_trace_length,
            direction_snap_tolerance, cluster_radius, cluster_size, min_minutia_coherence,
            min_minutia_clarity, minutia_clarity_radius, minutia_clarity_floor_share, max_minutiae,
            min_foreground_area, min_minutiae, quality_full_area;
            quality_coherence_range, quality_clarity_range, minutia_clarity_range
        );
        Ok(())
    }

    /// Applies `NAME=VALUE` settings in order (see [`Self::set`]).
    pub fn with_settings<S: AsRef<str>>(mut self, settings: &[S]) -> Result<Self, String> {
        for s in settings {
            let s = s.as_ref();
            let (name, value) = s
                .split_once('=')
                .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))?;
            self.set(name.trim(), value)?;
        }
        Ok(self)
    }
}

// ===== Comparison =====

/// Resolution (dpi) that prepared templates are normalized to; all comparison distances below are
/// pixels at this resolution.
pub const COMPARE_DPI: f32 = 500.0;
/// Most minutiae kept per prepared template (highest quality first); bounds the comparison cost
/// and keeps minutia indices within a byte.
pub const MAX_PREPARED_MINUTIAE: usize = 128;
/// Coordinates (after normalization) beyond this magnitude are treated as corrupt and the minutia
/// is dropped during preparation.
pub const MAX_COORDINATE: f32 = 20_000.0;
/// Each minutia gets edges to at most this many nearest neighbours (the local structure).
pub const EDGE_NEIGHBOURS: usize = 7;
/// Neighbours farther than this (pixels) are not part of a minutia's local structure.
pub const EDGE_MAX_LENGTH: f32 = 140.0;
/// Neighbours closer than this (pixels) are skipped: their relative angles are unstable.
pub const EDGE_MIN_LENGTH: f32 = 6.0;
/// Absolute edge-length tolerance (pixels) when two edges are compared.
pub const EDGE_LENGTH_TOLERANCE: f32 = 8.0;
/// Edge-length tolerance proportional to the length (skin distortion grows with distance).
pub const EDGE_LENGTH_TOLERANCE_RATIO: f32 = 0.08;
/// Tolerance (radians) on each of the two relative angles of an edge.
pub const EDGE_ANGLE_TOLERANCE: f32 = 0.35;
/// Number of best local-structure pairs tried as alignment seeds.
pub const SEED_COUNT: usize = 16;
/// Number of seeds (best by a quick greedy pairing) that get the full pairing, rigid refit and
/// score.
pub const REFINED_SEEDS: usize = 2;
/// Position tolerance (pixels) of a minutia pair near the seed after alignment.
pub const PAIR_DISTANCE_TOLERANCE: f32 = 14.0;
/// Extra position tolerance per pixel of distance from the seed (distortion grows outwards).
pub const PAIR_DISTANCE_TOLERANCE_SLOPE: f32 = 0.08;
/// Largest position tolerance (pixels) of a minutia pair, however far from the seed.
pub const PAIR_DISTANCE_TOLERANCE_MAX: f32 = 32.0;
/// Smallest cell (pixels) of the reach table used to find pair partners after alignment (each
/// cell lists the minutiae within [`PAIR_DISTANCE_TOLERANCE_MAX`] of it): smaller cells give
/// shorter lists and a larger table.
pub const REACH_CELL: f32 = 16.0;
/// Most cells per side of the reach table; very spread-out templates get coarser cells.
pub const REACH_MAX_CELLS: usize = 64;
/// Direction bins of the reach table (over a full turn): a point's list holds only the minutiae
/// whose direction is within [`PAIR_ANGLE_TOLERANCE`] of the bin, about a quarter of those in
/// reach, so that pairing tests fewer partners.
pub const REACH_DIRECTION_BINS: usize = 8;
/// Direction tolerance (radians) of a minutia pair after alignment.
pub const PAIR_ANGLE_TOLERANCE: f32 = 0.45;
/// Margin (pixels) around the other print's minutiae hull within which a minutia counts as lying
/// in the overlap of both prints.
pub const OVERLAP_MARGIN: f32 = 16.0;
/// Minimum summed minutia weight of an overlap used when normalizing the score (about six
/// minutiae of average quality), so that a tiny overlap with a couple of chance pairs cannot
/// score high.
pub const MIN_OVERLAP_WEIGHT: f32 = 4.0;
/// Evidence weight of a minutia whose quality is not reported (quality 0, e.g. every minutia of
/// the card formats): about the mean quality our extractor reports, so that such templates
/// score on the same scale.
pub const UNREPORTED_QUALITY_WEIGHT: f32 = 0.65;
/// Minutiae of a lower quality (1-100; 0, "not reported", excepted) are written to a compact
/// card template with the type "other" (type not determined): the compact format has no room
/// for quality, and the type is what a doubtful minutia is least sure of (a ridge break or a
/// faint bridge turns an ending into a bifurcation). Chosen leave-one-set-out on the compact
/// card format with [`UNTYPED_CARD_MINUTIA_WEIGHT`] (issue 19, session 26; `docs/matcher.md`).
pub const UNTYPED_CARD_MINUTIA_QUALITY: u8 = 50;
/// Share of its weight that a minutia of type "other" keeps in a template read from a card
/// format (`compare::prepare_stored`): a card that does not say a minutia's type says it is
/// doubtful, whichever encoder wrote it.
pub const UNTYPED_CARD_MINUTIA_WEIGHT: f32 = 0.8;
/// Mean distances (pixels at 500 dpi) to the two nearest other minutiae over which a minutia
/// whose quality is not reported goes from [`CROWDED_MINUTIA_WEIGHT`] to the full
/// [`UNREPORTED_QUALITY_WEIGHT`]. Without a reported quality, crowding is the evidence left in
/// the template: the extractor's false minutiae come in clusters (ridge breaks and bridges
/// leave two or three minutiae within a ridge period or two), true ones are spread more
/// evenly. Chosen leave-one-set-out on the compact card format (issue 19).
pub const CROWDED_MINUTIA_DISTANCE: (f32, f32) = (16.0, 36.0);
/// Share of [`UNREPORTED_QUALITY_WEIGHT`] that a quality-less minutia keeps at or below the
/// first of [`CROWDED_MINUTIA_DISTANCE`] (above 0: a crowded true minutia still counts when it
/// pairs; 0 measured worse than no crowding at all).
pub const CROWDED_MINUTIA_WEIGHT: f32 = 0.1;
/// A pair's weight in the score is multiplied by the geometric mean of both minutiae's weights
/// raised to this power: below 1, so that a pair of doubtful minutiae still counts for more than
/// their share of the overlap (a pair is rarely made by chance twice).
pub const PAIR_EVIDENCE_EXPONENT: f32 = 0.7;
/// A pair of an ending with a bifurcation counts this much less, scaled by how sure both
/// minutiae are (the geometric mean of their weights): pressure and a faint gap turn one kind
/// into the other, most often where the print is doubtful, while between different fingers the
/// kinds of chance pairs agree no more often than the kinds' shares make them. Chosen by
/// leave-one-set-out among 0.2-0.6 (every fold chose 0.25); minutiae of kind "other" are not
/// penalised (issue 19, session 20).
pub const KIND_MISMATCH_PENALTY: f32 = 0.25;
/// An edge's vote for the local similarity of the minutiae it starts from counts this much
/// less when the minutiae it ends at are an ending and a bifurcation, scaled like
/// [`KIND_MISMATCH_PENALTY`] by how sure both are: two neighbourhoods of the same shape whose
/// neighbours' kinds disagree are less likely the same. Leave-one-set-out on the shared sets
/// among 0.05-0.5 chose 0.25 (four folds; one 0.05); under the sensor-shift proxy 0.25 cost
/// EER in 10 of 14 conditions while 0.15 held it level with a lower FMR1000 on every proxy, so
/// the weaker value is used (issue 19, sessions 21-22; see `docs/matcher.md`).
pub const NEIGHBOUR_KIND_MISMATCH_PENALTY: f32 = 0.15;
/// Pair count at which the support factor of the score is one half: the score is scaled by
/// `n² / (n² + SCORE_HALF_SUPPORT_PAIRS²)` for `n` pairs, since a handful of pairs in a small
/// overlap is what chance produces between different fingers, while every further pair is
/// more evidence (a smooth curve: a hard cap at 10 pairs ranked impostors with 10-12 pairs in
/// a tiny overlap above genuine pairs with many pairs in a large one).
pub const SCORE_HALF_SUPPORT_PAIRS: f32 = 7.0;
/// Seeds (the most similar local pairs) that the cascade's screening stage quick-pairs; the best
/// of them by quick weight is refined and scored.
pub const CASCADE_SCREEN_SEEDS: usize = 4;
/// A pair whose screening score is below this is rejected with that score, without the full
/// search over all [`SEED_COUNT`] seeds. Far below every classical decision threshold (0.069
/// and up since issue 19's session 22) and below every shared set's EER point (0.038-0.062), so
/// that only pairs that cannot matter are cut short. Measured when it was set: every EER,
/// FMR1000 and FVC rate the same as with the earlier floor of 0.012 over 6 screened seeds, which
/// rejected 41 % of the impostor pairs instead of 57 %. Against no cascade at all (issue 19,
/// session 20, with the kind penalty): at least 48 % of the shared sets' impostor pairs and 4 of
/// 1 400 genuine ones rejected, the genuine ones at full scores of 0.044 at most (below every
/// threshold), but also impostors whose full search reaches 0.106, so the cascade lowers the
/// impostor tail: macro EER / FMR1000 1.34 / 3.64 % against 1.43 / 3.79 % with the full search.
pub const CASCADE_REJECT_BELOW: f32 = 0.015;

#[cfg(test)]
mod tests {
    use super::ExtractParams;

    #[test]
    fn issue19_settings_change_one_field_and_reject_unknown_names() {
        let p = ExtractParams::default()
            .with_settings(&["border_erosion_blocks=3", "quality_clarity_range=0.1,0.9"])
            .unwrap();
        assert_eq!(p.border_erosion_blocks, 3);
        assert_eq!(p.quality_clarity_range, (0.1, 0.9));
        assert_eq!(
            ExtractParams {
                border_erosion_blocks: 2,
                image_edge_margin: 8.0,
                quality_clarity_range: (0.3, 0.6),
                ..p
            },
            ExtractParams::default()
        );
        assert!(ExtractParams::default()
            .with_settings(&["no_such=1"])
            .is_err());
        assert!(ExtractParams::default()
            .with_settings(&["block=x"])
            .is_err());
        assert!(ExtractParams::default().with_settings(&["block"]).is_err());
    }
}
