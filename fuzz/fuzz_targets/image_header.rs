//! Image headers (PNG, TIFF, BMP) and the decoder behind them: `GrayImage::decode` checks the
//! header against the size limits, then OpenCV decodes. Never panic, and never hand back an
//! image outside the limits. Run with `OPENCV_IO_MAX_IMAGE_PIXELS=4000000` in the environment
//! (as `idcardd` sets it) so the decoder enforces the pixel limit too (issue 18).
#![no_main]

use libfuzzer_sys::fuzz_target;
use matcher::image::GrayImage;
use matcher::params::{MAX_IMAGE_SIDE, MIN_IMAGE_SIDE};

fuzz_target!(|data: &[u8]| {
    if let Ok(image) = GrayImage::decode(data) {
        let sides = MIN_IMAGE_SIDE..=MAX_IMAGE_SIDE;
        assert!(sides.contains(&image.width()) && sides.contains(&image.height()));
        assert_eq!(
            image.pixels().len(),
            image.width() as usize * image.height() as usize
        );
    }
});
