//! Stage 3: the network's output map as minutiae on the original scan.
//!
//! The map has four channels per canvas pixel: position heat, direction (radians, already the
//! ISO/IEC 19794-2 direction: counter-clockwise on screen, an ending pointing into its ridge),
//! type (ending when at or above [`ENDING_THRESHOLD`]) and the non-maximum-suppressed
//! confidence. Every scan pixel whose confidence reaches [`DETECTION_THRESHOLD`] is a minutia;
//! at most [`MAX_MINUTIAE`] are kept, the most confident.

use crate::input::NetworkInput;
use crate::params::{DETECTION_THRESHOLD, ENDING_THRESHOLD, MAX_MINUTIAE};
use matcher::{Minutia, MinutiaKind};
use std::f32::consts::TAU;

/// Channels per pixel of the output map.
pub const CHANNELS: usize = 4;

/// The minutiae of `map` (`input.height` x `input.width` x [`CHANNELS`], row-major), in the
/// original scan's pixels, most confident first. A map of the wrong size gives none.
pub fn minutiae(map: &[f32], input: &NetworkInput) -> Vec<Minutia> {
    if map.len() != input.width * input.height * CHANNELS {
        return Vec::new();
    }
    let mut found: Vec<(f32, Minutia)> = Vec::new();
    for row in 0..input.scan_height {
        let line = (input.top + row) * input.width + input.left;
        for col in 0..input.scan_width {
            let px = &map[(line + col) * CHANNELS..][..CHANNELS];
            let confidence = px[3];
            // A NaN anywhere is no detection: a broken output finds nothing rather than garbage.
            if confidence.is_nan() || confidence < DETECTION_THRESHOLD || !px[1].is_finite() {
                continue;
            }
            let kind = if px[2] >= ENDING_THRESHOLD {
                MinutiaKind::Ending
            } else {
                MinutiaKind::Bifurcation
            };
            found.push((
                confidence,
                Minutia {
                    x: col as f32 / input.scale_x,
                    y: row as f32 / input.scale_y,
                    direction: px[1].rem_euclid(TAU) % TAU,
                    kind,
                    quality: (confidence.min(1.0) * 100.0).round() as u8,
                },
            ));
        }
    }
    // Most confident first; ties in scan order (the sort is stable).
    found.sort_by(|a, b| b.0.total_cmp(&a.0));
    found.truncate(MAX_MINUTIAE);
    found.into_iter().map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canvas(w: usize, h: usize) -> (NetworkInput, Vec<f32>) {
        let input = NetworkInput {
            values: vec![0.0; w * h],
            width: w,
            height: h,
            left: 2,
            top: 1,
            scan_width: w - 4,
            scan_height: h - 2,
            scale_x: 0.5,
            scale_y: 0.5,
        };
        (input, vec![0.0; w * h * CHANNELS])
    }

    fn set(map: &mut [f32], w: usize, x: usize, y: usize, px: [f32; 4]) {
        map[(y * w + x) * CHANNELS..][..CHANNELS].copy_from_slice(&px);
    }

    #[test]
    fn maps_detections_back_to_the_scan() {
        let (input, mut map) = canvas(32, 32);
        set(&mut map, 32, 7, 5, [0.9, -1.0, 0.8, 0.9]); // ending, scan (5, 4)
        set(&mut map, 32, 12, 9, [0.9, 1.0, 0.2, 0.6]); // bifurcation, scan (10, 8)
        set(&mut map, 32, 20, 20, [0.9, 1.0, 0.2, 0.5]); // below the threshold
        set(&mut map, 32, 0, 0, [0.9, 1.0, 0.2, 0.99]); // in the margin, not the scan
        let found = minutiae(&map, &input);
        assert_eq!(found.len(), 2);
        assert_eq!((found[0].x, found[0].y), (10.0, 8.0));
        assert_eq!(found[0].kind, MinutiaKind::Ending);
        assert_eq!(found[0].quality, 90);
        assert!((found[0].direction - (TAU - 1.0)).abs() < 1e-5);
        assert_eq!((found[1].x, found[1].y), (20.0, 16.0));
        assert_eq!(found[1].kind, MinutiaKind::Bifurcation);
        assert_eq!(found[1].quality, 60);
    }

    #[test]
    fn keeps_the_most_confident_and_ignores_broken_values() {
        let (input, mut map) = canvas(64, 64);
        for i in 0..200usize {
            let (x, y) = (2 + i % 60, 1 + i / 60);
            set(&mut map, 64, x, y, [0.0, 0.0, 1.0, 0.56 + i as f32 * 1e-3]);
        }
        set(&mut map, 64, 30, 30, [0.0, f32::NAN, 1.0, 0.99]);
        set(&mut map, 64, 31, 30, [0.0, 0.0, 1.0, f32::NAN]);
        let found = minutiae(&map, &input);
        assert_eq!(found.len(), MAX_MINUTIAE);
        assert!(found.windows(2).all(|w| w[0].quality >= w[1].quality));
        assert_eq!(found[0].quality, 76);
        assert!(minutiae(&map[1..], &input).is_empty());
    }
}
