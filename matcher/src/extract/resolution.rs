//! The working image: the scan rescaled to [`EXTRACT_DPI`] and converted to floating point.

use super::grid::Grid;
use crate::image::GrayImage;
use crate::params::{EXTRACT_DPI, MAX_DPI, MAX_IMAGE_SIDE, MIN_DPI};
use crate::Error;

/// The scan at the working resolution.
pub(crate) struct Working {
    /// Gray levels at [`EXTRACT_DPI`].
    pub gray: Grid<f32>,
    /// Working pixels per original pixel (x and y).
    pub scale_x: f32,
    /// Working pixels per original pixel (y).
    pub scale_y: f32,
}

impl Working {
    /// Maps a working-resolution position back to the original image's pixels.
    pub fn to_original(&self, x: f32, y: f32) -> (f32, f32) {
        (
            (x + 0.5) / self.scale_x - 0.5,
            (y + 0.5) / self.scale_y - 0.5,
        )
    }
}

/// Rescales `image`, declared at `dpi`, to the working resolution.
pub(crate) fn compute(image: &GrayImage, dpi: u32) -> Result<Working, Error> {
    if !(MIN_DPI..=MAX_DPI).contains(&dpi) {
        return Err(Error::ImageLimits(format!(
            "resolution {dpi} dpi is outside {MIN_DPI}-{MAX_DPI} dpi"
        )));
    }
    let (w, h) = (image.width(), image.height());
    let rescaled;
    let working = if dpi == EXTRACT_DPI {
        image
    } else {
        let factor = EXTRACT_DPI as f64 / dpi as f64;
        let nw = ((w as f64 * factor).round() as u32).max(1);
        let nh = ((h as f64 * factor).round() as u32).max(1);
        if nw > MAX_IMAGE_SIDE || nh > MAX_IMAGE_SIDE {
            return Err(Error::ImageLimits(format!(
                "{w}x{h} px at {dpi} dpi is {nw}x{nh} px at {EXTRACT_DPI} dpi, above {MAX_IMAGE_SIDE} px"
            )));
        }
        rescaled = image.resized(nw, nh)?;
        &rescaled
    };
    let (ww, wh) = (working.width() as usize, working.height() as usize);
    let gray = Grid {
        width: ww,
        height: wh,
        values: working.pixels().iter().map(|&p| f32::from(p)).collect(),
    };
    Ok(Working {
        gray,
        scale_x: ww as f32 / w as f32,
        scale_y: wh as f32 / h as f32,
    })
}
