//! Decision thresholds expressed as a target false-match rate.

/// A decision threshold on comparison scores: a comparison is accepted when its score is at or
/// above [`Threshold::score`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// Lowest accepted score.
    pub score: f32,
    /// The false-match rate the threshold was chosen for (a fraction), for reports.
    pub target_fmr: f64,
}

impl Threshold {
    /// Default threshold for a false-match rate of 1 %.
    ///
    /// Calibration: `Threshold::for_fmr` on the pooled extended impostor scores (every
    /// cross-finger pair, 5 x 2880 = 14 400 scores) of the five shared FVC "B" sets, minutiae
    /// from `matcher::extract`, rounded up to 3 decimals. At the time of calibration the
    /// 145th-highest impostor scored 0.06010 (pooled genuine FNMR at 0.061: 4.1 %; recalibrated
    /// after the comparator's reach table, 2026-11-22, whose tolerance is measured from the seed
    /// before alignment). Recalibrate with
    /// `idcardd bench fvc --scores` when the extractor or the comparator changes (see
    /// `docs/matcher.md`).
    pub const FMR_1_PERCENT: Threshold = Threshold {
        score: 0.061,
        target_fmr: 0.01,
    };
    /// Default threshold for a false-match rate of 0.1 %: 15th-highest of the 14 400 pooled
    /// impostor scores 0.0785, pooled FNMR 5.9 % at 0.079 (see [`Threshold::FMR_1_PERCENT`]).
    pub const FMR_0_1_PERCENT: Threshold = Threshold {
        score: 0.079,
        target_fmr: 0.001,
    };
    /// Default threshold for a false-match rate of 0.01 %: 2nd-highest of the 14 400 pooled
    /// impostor scores 0.1048 (the highest was 0.1058), pooled FNMR 9.9 % at 0.105. With one
    /// allowed false match in the calibration data this figure is only indicative.
    pub const FMR_0_01_PERCENT: Threshold = Threshold {
        score: 0.105,
        target_fmr: 0.0001,
    };

    /// Every calibrated default, loosest first.
    pub const CALIBRATED: [Threshold; 3] = [
        Threshold::FMR_1_PERCENT,
        Threshold::FMR_0_1_PERCENT,
        Threshold::FMR_0_01_PERCENT,
    ];

    /// The calibrated default for exactly the false-match rate `fmr` (within rounding), if
    /// there is one: what a caller naming a rate gets.
    pub fn calibrated(fmr: f64) -> Option<Threshold> {
        Threshold::CALIBRATED
            .into_iter()
            .find(|t| (t.target_fmr - fmr).abs() <= t.target_fmr * 1e-6)
    }

    /// The loosest calibrated default whose target is at or below `fmr` (the strictest one
    /// when `fmr` is below all of them): a policy's rate never gets a looser decision.
    pub fn calibrated_within(fmr: f64) -> Threshold {
        Threshold::CALIBRATED
            .into_iter()
            .find(|t| t.target_fmr <= fmr + 1e-12)
            .unwrap_or(Threshold::FMR_0_01_PERCENT)
    }

    /// Defaults for the mean of two fingers' scores (`fuse(.., Fusion::Mean)` of two live
    /// fingers, each against its own enrolled template), loosest first, for the same targets as
    /// [`Threshold::CALIBRATED`]. PLACEHOLDER until calibrated.
    pub const CALIBRATED_MEAN_OF_TWO: [Threshold; 3] = Threshold::CALIBRATED;

    /// The threshold for the mean of `fingers` fingers' scores at target `fmr`: the
    /// single-finger default ([`Threshold::calibrated_within`]) for one finger, the
    /// [`Threshold::CALIBRATED_MEAN_OF_TWO`] default otherwise (calibrated on two; the mean of
    /// more fingers only narrows the impostor scores, so it stays on the safe side).
    pub fn calibrated_fused(fmr: f64, fingers: usize) -> Threshold {
        if fingers <= 1 {
            return Threshold::calibrated_within(fmr);
        }
        let table = Threshold::CALIBRATED_MEAN_OF_TWO;
        table
            .into_iter()
            .find(|t| t.target_fmr <= fmr + 1e-12)
            .unwrap_or(table[table.len() - 1])
    }

    /// The lowest threshold whose false-match rate on `impostor_scores` does not exceed `fmr`.
    /// Ties are never split: if several impostors share the boundary score, the threshold moves
    /// just above it. Returns `None` for an empty list or an `fmr` outside [0, 1]. NaN scores
    /// count as the lowest score.
    pub fn for_fmr(impostor_scores: &[f32], fmr: f64) -> Option<Threshold> {
        if impostor_scores.is_empty() || !(0.0..=1.0).contains(&fmr) {
            return None;
        }
        let mut s: Vec<f32> = impostor_scores
            .iter()
            .map(|&x| if x.is_nan() { f32::NEG_INFINITY } else { x })
            .collect();
        // Descending.
        s.sort_by(|a, b| b.total_cmp(a));
        let allowed = (fmr * s.len() as f64 + 1e-9).floor() as usize;
        let score = if allowed >= s.len() {
            f32::NEG_INFINITY
        } else {
            // Accept only scores strictly above the (allowed + 1)-th highest impostor.
            let bound = s[allowed];
            if bound == f32::INFINITY {
                f32::INFINITY
            } else {
                bound.next_up()
            }
        };
        Some(Threshold {
            score,
            target_fmr: fmr,
        })
    }

    /// True when `score` passes the threshold.
    pub fn accepts(&self, score: f32) -> bool {
        score >= self.score
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn for_fmr_allows_the_requested_share() {
        // Ten impostors 0.1..=1.0; FMR 20 % allows two false matches: threshold just above the
        // third highest (0.8), so 0.9 and 1.0 pass and 0.8 does not.
        let imp: Vec<f32> = (1..=10).map(|i| i as f32 / 10.0).collect();
        let t = Threshold::for_fmr(&imp, 0.2).unwrap();
        assert!(t.accepts(0.9) && !t.accepts(0.8));
        assert_eq!(imp.iter().filter(|&&s| t.accepts(s)).count(), 2);
    }

    #[test]
    fn for_fmr_does_not_split_ties() {
        // Top two impostors tie at 0.9: an FMR of 10 % (one false match of ten) cannot accept
        // one of them without the other, so the threshold rises above 0.9.
        let mut imp = vec![0.1f32; 8];
        imp.extend([0.9, 0.9]);
        let t = Threshold::for_fmr(&imp, 0.1).unwrap();
        assert!(!t.accepts(0.9));
        assert!(t.accepts(0.95));
    }

    #[test]
    fn for_fmr_edge_cases() {
        assert!(Threshold::for_fmr(&[], 0.01).is_none());
        assert!(Threshold::for_fmr(&[0.5], 1.5).is_none());
        assert!(Threshold::for_fmr(&[0.5], 1.0).unwrap().accepts(0.0));
        assert!(!Threshold::for_fmr(&[0.5], 0.0).unwrap().accepts(0.5));
    }

    #[test]
    fn defaults_are_ordered() {
        let d = [
            Threshold::FMR_1_PERCENT,
            Threshold::FMR_0_1_PERCENT,
            Threshold::FMR_0_01_PERCENT,
        ];
        assert!(d[0].score < d[1].score && d[1].score < d[2].score);
        assert!(d[0].target_fmr > d[1].target_fmr && d[1].target_fmr > d[2].target_fmr);
    }
}
