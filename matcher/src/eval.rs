//! Accuracy figures from genuine and impostor score lists: EER, FMR100, FMR1000 and ZeroFMR, as
//! in the Fingerprint Verification Competitions.
//!
//! A comparison is accepted when its score is **at or above** the threshold, so for a threshold
//! `t`: FMR(t) = share of impostor scores ≥ t, FNMR(t) = share of genuine scores < t. Ties are
//! therefore never split: every score equal to the threshold is accepted. The thresholds examined
//! are every distinct score plus "accept nothing" (just above the highest score) and "accept
//! everything". NaN scores count as the lowest possible score.
//!
//! - **EER** follows FVC (Maio et al., FVC2000 report): `t1` = the highest threshold with
//!   FNMR ≤ FMR, `t2` = the lowest with FNMR ≥ FMR; the EER interval is `[FNMR(t1), FMR(t1)]` if
//!   `FNMR(t1) + FMR(t1) ≤ FMR(t2) + FNMR(t2)`, else `[FMR(t2), FNMR(t2)]`; EER is its middle.
//! - **FMR100 / FMR1000**: the lowest FNMR over thresholds with FMR ≤ 1 % / 0.1 %.
//! - **ZeroFMR**: the lowest FNMR over thresholds with FMR = 0.

pub mod calibrate;
pub mod fvc;
pub mod shift;
pub mod truth;

use serde::{Deserialize, Serialize};

/// Error rates of one experiment, as fractions in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    /// Equal error rate.
    pub eer: f64,
    /// Lowest FNMR with FMR ≤ 1 %.
    pub fmr100: f64,
    /// Lowest FNMR with FMR ≤ 0.1 %.
    pub fmr1000: f64,
    /// Lowest FNMR with FMR = 0.
    pub zero_fmr: f64,
}

/// Sorted copies of both score lists, NaN mapped to −∞.
struct Sorted {
    genuine: Vec<f32>,
    impostor: Vec<f32>,
}

impl Sorted {
    fn new(genuine: &[f32], impostor: &[f32]) -> Sorted {
        let clean = |v: &[f32]| {
            let mut v: Vec<f32> = v
                .iter()
                .map(|&s| if s.is_nan() { f32::NEG_INFINITY } else { s })
                .collect();
            v.sort_by(f32::total_cmp);
            v
        };
        Sorted {
            genuine: clean(genuine),
            impostor: clean(impostor),
        }
    }

    /// FMR at threshold `t` (accept score ≥ t).
    fn fmr(&self, t: f32) -> f64 {
        let n = self.impostor.len();
        if n == 0 {
            return 0.0;
        }
        (n - self.impostor.partition_point(|&s| s < t)) as f64 / n as f64
    }

    /// FNMR at threshold `t` (reject score < t).
    fn fnmr(&self, t: f32) -> f64 {
        let n = self.genuine.len();
        if n == 0 {
            return 0.0;
        }
        self.genuine.partition_point(|&s| s < t) as f64 / n as f64
    }

    /// Every threshold worth examining, ascending.
    fn thresholds(&self) -> Vec<f32> {
        let mut t: Vec<f32> = Vec::with_capacity(self.genuine.len() + self.impostor.len() + 2);
        t.push(f32::NEG_INFINITY);
        t.extend(self.genuine.iter().chain(self.impostor.iter()).copied());
        let top = t.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        t.push(if top == f32::INFINITY {
            top
        } else {
            top.next_up()
        });
        t.sort_by(f32::total_cmp);
        t.dedup();
        t
    }
}

/// Computes EER, FMR100, FMR1000 and ZeroFMR. Empty lists give rates of 0 for the missing side.
pub fn rates(genuine: &[f32], impostor: &[f32]) -> Rates {
    let s = Sorted::new(genuine, impostor);
    let ts = s.thresholds();
    let curve: Vec<(f64, f64)> = ts.iter().map(|&t| (s.fmr(t), s.fnmr(t))).collect();
    let best_fnmr_at = |max_fmr: f64| {
        curve
            .iter()
            .filter(|(fmr, _)| *fmr <= max_fmr + 1e-12)
            .map(|&(_, fnmr)| fnmr)
            .fold(1.0f64, f64::min)
    };
    // t1: highest threshold with FNMR <= FMR; t2: lowest with FNMR >= FMR. The first threshold
    // (accept everything) always satisfies FNMR = 0 <= FMR and the last (accept nothing)
    // FNMR = 1 >= FMR = 0, so both exist.
    let (fmr1, fnmr1) = curve
        .iter()
        .rev()
        .find(|(fmr, fnmr)| fnmr <= fmr)
        .copied()
        .unwrap_or((0.0, 0.0));
    let (fmr2, fnmr2) = curve
        .iter()
        .find(|(fmr, fnmr)| fnmr >= fmr)
        .copied()
        .unwrap_or((0.0, 0.0));
    let (lo, hi) = if fnmr1 + fmr1 <= fmr2 + fnmr2 {
        (fnmr1, fmr1)
    } else {
        (fmr2, fnmr2)
    };
    Rates {
        eer: (lo + hi) / 2.0,
        fmr100: best_fnmr_at(0.01),
        fmr1000: best_fnmr_at(0.001),
        zero_fmr: best_fnmr_at(0.0),
    }
}

/// FNMR of the genuine scores at a fixed threshold (accept score ≥ threshold).
pub fn fnmr_at(genuine: &[f32], threshold: f32) -> f64 {
    Sorted::new(genuine, &[]).fnmr(threshold)
}

/// FMR of the impostor scores at a fixed threshold (accept score ≥ threshold).
pub fn fmr_at(impostor: &[f32], threshold: f32) -> f64 {
    Sorted::new(&[], impostor).fmr(threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn perfectly_separated() {
        // Every genuine above every impostor: a threshold between them makes no error.
        let r = rates(&[0.8, 0.9, 0.7], &[0.1, 0.2, 0.3]);
        assert!(close(r.eer, 0.0));
        assert!(close(r.fmr100, 0.0));
        assert!(close(r.zero_fmr, 0.0));
    }

    #[test]
    fn one_overlap_gives_quarter_eer() {
        // Genuine 0.6 lies below impostor 0.65. At t = 0.65: FMR = 1/4, FNMR = 1/4 -> EER 25 %.
        // FMR = 0 needs t > 0.65, which rejects 0.6: ZeroFMR = FMR100 = 1/4 (with 4 impostors an
        // FMR of 1/4 exceeds 1 %, so FMR100 equals ZeroFMR).
        let r = rates(&[0.9, 0.8, 0.7, 0.6], &[0.1, 0.2, 0.3, 0.65]);
        assert!(close(r.eer, 0.25), "{r:?}");
        assert!(close(r.zero_fmr, 0.25));
        assert!(close(r.fmr100, 0.25));
        assert!(close(r.fmr1000, 0.25));
    }

    #[test]
    fn ties_are_not_split() {
        // All four scores equal 0.5. Thresholds: t <= 0.5 accepts all (FMR 1, FNMR 0), t > 0.5
        // rejects all (FMR 0, FNMR 1). t1 = 0.5 gives [FNMR, FMR] = [0, 1]; t2 = next above
        // gives [FMR, FNMR] = [0, 1]; both sums equal 1, so the interval is [0, 1] and EER = 0.5.
        // ZeroFMR = 1: no threshold accepts a genuine without accepting the tied impostors.
        let r = rates(&[0.5, 0.5], &[0.5, 0.5]);
        assert!(close(r.eer, 0.5), "{r:?}");
        assert!(close(r.zero_fmr, 1.0));
    }

    #[test]
    fn tie_with_top_impostor_counts_as_false_match() {
        // Genuine 0.4 ties impostor 0.4. 100 impostors: 99 at 0.0, one at 0.4; 10 genuine: one
        // at 0.4, nine at 0.9. At t = 0.4 FMR = 1/100 = 1 % (allowed for FMR100) and FNMR = 0,
        // so FMR100 = 0. FMR1000 needs FMR = 0, i.e. t > 0.4, rejecting the tied genuine: 1/10.
        let mut imp = vec![0.0f32; 99];
        imp.push(0.4);
        let mut gen = vec![0.9f32; 9];
        gen.push(0.4);
        let r = rates(&gen, &imp);
        assert!(close(r.fmr100, 0.0), "{r:?}");
        assert!(close(r.fmr1000, 0.1), "{r:?}");
        assert!(close(r.zero_fmr, 0.1));
        // EER: at t = 0.4 FMR = 0.01, FNMR = 0 (FNMR <= FMR, t1); just above 0.4 FMR = 0,
        // FNMR = 0.1 (t2). Sums 0.01 < 0.1, so the interval is [0, 0.01] and EER = 0.005.
        assert!(close(r.eer, 0.005), "{r:?}");
    }

    #[test]
    fn eer_between_unequal_steps() {
        // Genuine {1,2,3,4}, impostor {2.5, 3.5}. Thresholds ascending with (FMR, FNMR):
        // t=2: (1, 1/4); t=2.5: (1, 1/2); t=3: (1/2, 1/2); t=3.5: (1/2, 3/4); t=4: (0, 3/4).
        // t1 (highest with FNMR <= FMR) = 3 -> (1/2, 1/2): EER = 0.5.
        let r = rates(&[1.0, 2.0, 3.0, 4.0], &[2.5, 3.5]);
        assert!(close(r.eer, 0.5), "{r:?}");
        // ZeroFMR: t > 3.5 keeps only 4 -> FNMR 3/4.
        assert!(close(r.zero_fmr, 0.75));
    }

    #[test]
    fn fixed_threshold_rates() {
        assert!(close(fnmr_at(&[0.1, 0.5, 0.9, 0.5], 0.5), 0.25));
        assert!(close(fmr_at(&[0.1, 0.5, 0.9, 0.5], 0.5), 0.75));
        assert!(close(fmr_at(&[f32::NAN, 0.2], 0.1), 0.5));
    }
}
