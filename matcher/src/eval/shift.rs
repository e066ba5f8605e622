//! Sensor shift: the scans of a set as another sensor might have taken them (fainter, darker,
//! softer, noisier, at another resolution, smaller), so that an evaluation can ask how much of the
//! accuracy on the shared sets survives a change of sensor that the matcher was never tuned on.
//! `idcardd bench fvc --shift KIND=VALUE` applies one to both sides of every comparison (a whole
//! set from another sensor); `--probe-shift` only to the live scan (enrolled on one sensor,
//! verified on another, as at a delivery kiosk).
//!
//! Each shift is a plain image operation with one strength; none looks at the print. Noise is
//! seeded by the scan's name, so a run is repeatable.

use crate::image::GrayImage;
use crate::synth::rng::Rng;
use crate::Error;
use opencv::core::{Mat, Size, BORDER_REFLECT};
use opencv::imgproc;

/// One simulated change of sensor and its strength.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SensorShift {
    /// Fainter prints: every gray level keeps `contrast` of its distance from white (0.3: ridges
    /// 30 % as dark as scanned; an optical sensor with weak illumination or a light touch).
    Faint {
        /// Share of the contrast kept, in (0, 1].
        contrast: f32,
    },
    /// Another tone curve: gray levels (0-1) raised to `gamma` (above 1 darkens the mid-tones
    /// and merges dark ridges; below 1 lightens them).
    Gamma {
        /// Exponent, in [0.2, 5].
        gamma: f32,
    },
    /// Softer optics: a Gaussian blur of `sigma` pixels.
    Blur {
        /// Standard deviation (pixels of the scan), in (0, 5].
        sigma: f32,
    },
    /// Sensor noise: independent Gaussian noise of `sigma` gray levels on every pixel.
    Noise {
        /// Standard deviation (gray levels), in (0, 64].
        sigma: f32,
    },
    /// A smaller sensor: the central `share` of the scan's width and of its height (0.7: half
    /// the area).
    Crop {
        /// Share of each side kept, in [0.4, 1].
        share: f32,
    },
    /// Another resolution: the scan resampled by `factor`, and its declared resolution with it
    /// (1.14: a 500 dpi set as a 569 dpi sensor would show it).
    Scale {
        /// Resampling factor, in [0.6, 1.6].
        factor: f32,
    },
}

impl SensorShift {
    /// Reads `faint=0.3`, `gamma=2.2`, `blur=1.2`, `noise=15`, `scale=1.14` or `crop=0.7`.
    pub fn parse(text: &str) -> Result<SensorShift, String> {
        let (kind, value) = text
            .split_once('=')
            .ok_or_else(|| format!("sensor shift {text:?}: expected KIND=VALUE"))?;
        let v: f32 = value
            .trim()
            .parse()
            .map_err(|_| format!("sensor shift {text:?}: {value:?} is not a number"))?;
        let within = |lo: f32, hi: f32, open_low: bool| {
            let above = if open_low { v > lo } else { v >= lo };
            if above && v <= hi {
                Ok(v)
            } else {
                let low = if open_low { "(" } else { "[" };
                Err(format!(
                    "sensor shift {text:?}: {kind} must be in {low}{lo}, {hi}]"
                ))
            }
        };
        match kind.trim() {
            "faint" => within(0.0, 1.0, true).map(|contrast| SensorShift::Faint { contrast }),
            "gamma" => within(0.2, 5.0, false).map(|gamma| SensorShift::Gamma { gamma }),
            "blur" => within(0.0, 5.0, true).map(|sigma| SensorShift::Blur { sigma }),
            "noise" => within(0.0, 64.0, true).map(|sigma| SensorShift::Noise { sigma }),
            "scale" => within(0.6, 1.6, false).map(|factor| SensorShift::Scale { factor }),
            "crop" => within(0.4, 1.0, false).map(|share| SensorShift::Crop { share }),
            other => Err(format!(
                "sensor shift {text:?}: unknown kind {other:?} (faint, gamma, blur, noise, scale, crop)"
            )),
        }
    }

    /// The resolution a scan declared at `dpi` has after this shift.
    pub fn dpi(&self, dpi: u32) -> u32 {
        match *self {
            SensorShift::Scale { factor } => (dpi as f32 * factor).round() as u32,
            _ => dpi,
        }
    }

    /// `image` as the shifted sensor would show it; `name` seeds the noise.
    pub fn apply(&self, image: &GrayImage, name: &str) -> Result<GrayImage, Error> {
        let (w, h) = (image.width(), image.height());
        let per_pixel = |f: &dyn Fn(f32) -> f32| {
            let lut: Vec<u8> = (0..=255u8)
                .map(|g| f(f32::from(g)).round().clamp(0.0, 255.0) as u8)
                .collect();
            let pixels = image.pixels().iter().map(|&p| lut[p as usize]).collect();
            GrayImage::from_raw(w, h, pixels)
        };
        match *self {
            SensorShift::Faint { contrast } => per_pixel(&|g| 255.0 - (255.0 - g) * contrast),
            SensorShift::Gamma { gamma } => per_pixel(&|g| 255.0 * (g / 255.0).powf(gamma)),
            SensorShift::Blur { sigma } => {
                let mut out = Mat::default();
                imgproc::gaussian_blur(
                    &image.to_mat()?,
                    &mut out,
                    Size::new(0, 0),
                    f64::from(sigma),
                    f64::from(sigma),
                    BORDER_REFLECT,
                )?;
                GrayImage::from_mat(&out)
            }
            SensorShift::Noise { sigma } => {
                let mut rng = Rng::new(name_seed(name));
                let pixels = image
                    .pixels()
                    .iter()
                    .map(|&p| {
                        (f32::from(p) + sigma * rng.normal())
                            .round()
                            .clamp(0.0, 255.0) as u8
                    })
                    .collect();
                GrayImage::from_raw(w, h, pixels)
            }
            SensorShift::Scale { factor } => {
                let side = |s: u32| ((s as f32 * factor).round() as u32).max(1);
                image.resized(side(w), side(h))
            }
            SensorShift::Crop { share } => {
                let side = |s: u32| ((s as f32 * share).round() as u32).clamp(1, s);
                let (cw, ch) = (side(w), side(h));
                let (x0, y0) = ((w - cw) / 2, (h - ch) / 2);
                let pixels = (y0..y0 + ch)
                    .flat_map(|y| {
                        let row = (y * w + x0) as usize;
                        image.pixels()[row..row + cw as usize].iter().copied()
                    })
                    .collect();
                GrayImage::from_raw(cw, ch, pixels)
            }
        }
    }
}

impl std::fmt::Display for SensorShift {
    /// The form [`SensorShift::parse`] reads.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            SensorShift::Faint { contrast } => write!(f, "faint={contrast}"),
            SensorShift::Gamma { gamma } => write!(f, "gamma={gamma}"),
            SensorShift::Blur { sigma } => write!(f, "blur={sigma}"),
            SensorShift::Noise { sigma } => write!(f, "noise={sigma}"),
            SensorShift::Scale { factor } => write!(f, "scale={factor}"),
            SensorShift::Crop { share } => write!(f, "crop={share}"),
        }
    }
}

/// A seed from a scan's name (FNV-1a), so that each scan gets its own repeatable noise.
fn name_seed(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp() -> GrayImage {
        let pixels = (0..64 * 64).map(|i| (i % 64 * 4) as u8).collect();
        GrayImage::from_raw(64, 64, pixels).unwrap()
    }

    #[test]
    fn parses_each_kind_and_refuses_nonsense() {
        assert_eq!(
            SensorShift::parse("faint=0.3"),
            Ok(SensorShift::Faint { contrast: 0.3 })
        );
        assert_eq!(
            SensorShift::parse("scale=1.14"),
            Ok(SensorShift::Scale { factor: 1.14 })
        );
        for text in [
            "gamma=2.2",
            "blur=1.2",
            "noise=15",
            "faint=0.3",
            "scale=1.14",
        ] {
            assert_eq!(SensorShift::parse(text).unwrap().to_string(), text);
        }
        for bad in [
            "faint",
            "faint=0",
            "faint=1.5",
            "blur=x",
            "tilt=3",
            "scale=3",
        ] {
            assert!(SensorShift::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn faint_and_gamma_move_gray_levels_as_stated() {
        let faint = SensorShift::Faint { contrast: 0.25 }
            .apply(&ramp(), "a")
            .unwrap();
        // Black becomes 3/4 white; white stays white.
        assert_eq!(faint.pixels()[0], 191);
        assert_eq!(
            faint.pixels()[63],
            255 - ((255 - 252) as f32 * 0.25).round() as u8
        );
        let dark = SensorShift::Gamma { gamma: 2.0 }
            .apply(&ramp(), "a")
            .unwrap();
        // 128 / 255 squared is about a quarter.
        assert_eq!(dark.pixels()[32], 64);
    }

    #[test]
    fn noise_is_repeatable_per_name_and_scale_changes_size_and_dpi() {
        let s = SensorShift::Noise { sigma: 10.0 };
        let a = s.apply(&ramp(), "101_1").unwrap();
        assert_eq!(a, s.apply(&ramp(), "101_1").unwrap());
        assert_ne!(a, s.apply(&ramp(), "101_2").unwrap());
        assert_ne!(a.pixels(), ramp().pixels());
        let scale = SensorShift::Scale { factor: 1.5 };
        let big = scale.apply(&ramp(), "a").unwrap();
        assert_eq!((big.width(), big.height()), (96, 96));
        assert_eq!(scale.dpi(500), 750);
        assert_eq!(SensorShift::Blur { sigma: 1.0 }.dpi(500), 500);
    }

    #[test]
    fn crop_keeps_the_centre() {
        let pixels = (0..100 * 80)
            .map(|i| ((i % 100) + (i / 100)) as u8)
            .collect();
        let image = GrayImage::from_raw(100, 80, pixels).unwrap();
        let crop = SensorShift::Crop { share: 0.8 }.apply(&image, "a").unwrap();
        assert_eq!((crop.width(), crop.height()), (80, 64));
        // The corner of the crop is pixel (10, 8) of the scan.
        assert_eq!(crop.pixels()[0], 18);
        assert_eq!(crop.pixels()[80 * 64 - 1], (10 + 79 + 8 + 63) as u8);
        assert_eq!(SensorShift::Crop { share: 0.8 }.dpi(500), 500);
    }

    #[test]
    fn blur_softens_an_edge() {
        let pixels = (0..64 * 64)
            .map(|i| if i % 64 < 32 { 0 } else { 255 })
            .collect();
        let edge = GrayImage::from_raw(64, 64, pixels).unwrap();
        let soft = SensorShift::Blur { sigma: 2.0 }.apply(&edge, "a").unwrap();
        let row = &soft.pixels()[32 * 64..33 * 64];
        assert!(row[31] > 40 && row[32] < 215, "{row:?}");
        assert!(row[0] < 5 && row[63] > 250);
    }
}
