//! Loading scans: files via OpenCV imgcodecs, raw 8-bit buffers, resolution handling.
//!
//! [`GrayImage`] is the only image type extraction accepts: 8-bit grayscale, row-major, no
//! padding. Every constructor enforces the size limits of [`crate::params`] before anything
//! large is allocated: encoded files have their header read first (PNG, TIFF, BMP), so a small
//! file that claims 20000 x 20000 pixels is refused without being decoded.

use std::path::Path;

use opencv::core::{Mat, Size, Vector};
use opencv::prelude::*;
use opencv::{imgcodecs, imgproc};

use crate::params::{MAX_IMAGE_FILE_BYTES, MAX_IMAGE_SIDE, MIN_IMAGE_SIDE};
use crate::Error;

/// An 8-bit grayscale image, row-major without padding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrayImage {
    /// Width in pixels.
    width: u32,
    /// Height in pixels.
    height: u32,
    /// `width * height` gray levels, 0 black to 255 white.
    pixels: Vec<u8>,
}

/// Checks that a width and height are within the accepted limits.
fn check_limits(width: u64, height: u64) -> Result<(), Error> {
    let (min, max) = (u64::from(MIN_IMAGE_SIDE), u64::from(MAX_IMAGE_SIDE));
    if width < min || height < min {
        return Err(Error::ImageLimits(format!(
            "{width}x{height} px is smaller than the minimum {min}x{min} px"
        )));
    }
    if width > max || height > max {
        return Err(Error::ImageLimits(format!(
            "{width}x{height} px is larger than the maximum {max}x{max} px"
        )));
    }
    Ok(())
}

impl GrayImage {
    /// Wraps raw 8-bit gray levels (`width * height` bytes, row-major). Fails with
    /// [`Error::ImageLimits`] outside the size limits and [`Error::InvalidImage`] when the
    /// buffer length does not match.
    pub fn from_raw(width: u32, height: u32, pixels: Vec<u8>) -> Result<Self, Error> {
        check_limits(u64::from(width), u64::from(height))?;
        let expected = u64::from(width) * u64::from(height);
        if pixels.len() as u64 != expected {
            return Err(Error::InvalidImage(format!(
                "{width}x{height} px needs {expected} bytes, got {}",
                pixels.len()
            )));
        }
        Ok(GrayImage {
            width,
            height,
            pixels,
        })
    }

    /// Decodes an encoded image (PNG, TIFF or BMP; colour is converted to gray).
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() as u64 > MAX_IMAGE_FILE_BYTES {
            return Err(Error::ImageLimits(format!(
                "encoded image of {} bytes exceeds {MAX_IMAGE_FILE_BYTES} bytes",
                bytes.len()
            )));
        }
        let (w, h) = header_size(bytes)?;
        check_limits(w, h)?;
        let buf = Vector::<u8>::from_slice(bytes);
        let mat = imgcodecs::imdecode(&buf, imgcodecs::IMREAD_GRAYSCALE)
            .map_err(|e| Error::InvalidImage(format!("cannot decode: {e}")))?;
        if mat.empty() {
            return Err(Error::InvalidImage("cannot decode the image".into()));
        }
        let image = Self::from_mat(&mat)?;
        check_limits(u64::from(image.width), u64::from(image.height))?;
        Ok(image)
    }

    /// Reads and decodes an image file (PNG, TIFF or BMP).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, Error> {
        let path = path.as_ref();
        let len = std::fs::metadata(path)?.len();
        if len > MAX_IMAGE_FILE_BYTES {
            return Err(Error::ImageLimits(format!(
                "{}: {len} bytes exceeds {MAX_IMAGE_FILE_BYTES} bytes",
                path.display()
            )));
        }
        let bytes = std::fs::read(path)?;
        Self::decode(&bytes).map_err(|e| match e {
            Error::InvalidImage(m) => Error::InvalidImage(format!("{}: {m}", path.display())),
            Error::ImageLimits(m) => Error::ImageLimits(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.height
    }

    /// The gray levels, row-major.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// Builds an image of any size (internal: rescaled copies may exceed the input limits).
    pub(crate) fn from_parts(width: u32, height: u32, pixels: Vec<u8>) -> Self {
        debug_assert_eq!(pixels.len(), width as usize * height as usize);
        GrayImage {
            width,
            height,
            pixels,
        }
    }

    /// Copies an 8-bit single-channel OpenCV matrix.
    pub fn from_mat(mat: &Mat) -> Result<Self, Error> {
        if mat.typ() != opencv::core::CV_8UC1 {
            return Err(Error::InvalidImage(format!(
                "expected an 8-bit gray matrix, got OpenCV type {}",
                mat.typ()
            )));
        }
        let (w, h) = (mat.cols(), mat.rows());
        let (width, height) = (
            u32::try_from(w).map_err(|_| Error::InvalidImage("negative width".into()))?,
            u32::try_from(h).map_err(|_| Error::InvalidImage("negative height".into()))?,
        );
        let mut pixels = Vec::with_capacity(width as usize * height as usize);
        for r in 0..h {
            pixels.extend_from_slice(mat.at_row::<u8>(r)?);
        }
        Ok(GrayImage {
            width,
            height,
            pixels,
        })
    }

    /// Copies the image into an OpenCV matrix.
    pub fn to_mat(&self) -> Result<Mat, Error> {
        let rows = i32::try_from(self.height).map_err(|_| Error::ImageLimits("height".into()))?;
        let cols = i32::try_from(self.width).map_err(|_| Error::ImageLimits("width".into()))?;
        let view = Mat::new_rows_cols_with_data(rows, cols, &self.pixels)?;
        Ok(view.try_clone()?)
    }

    /// Resamples to `width` x `height` (area averaging when shrinking, bilinear when enlarging).
    pub fn resized(&self, width: u32, height: u32) -> Result<Self, Error> {
        if width == 0 || height == 0 || width > 4 * MAX_IMAGE_SIDE || height > 4 * MAX_IMAGE_SIDE {
            return Err(Error::ImageLimits(format!(
                "cannot resample to {width}x{height} px"
            )));
        }
        let src = self.to_mat()?;
        let mut dst = Mat::default();
        let shrinking =
            u64::from(width) * u64::from(height) < u64::from(self.width) * u64::from(self.height);
        let interpolation = if shrinking {
            imgproc::INTER_AREA
        } else {
            imgproc::INTER_LINEAR
        };
        imgproc::resize(
            &src,
            &mut dst,
            Size::new(width as i32, height as i32),
            0.0,
            0.0,
            interpolation,
        )?;
        Self::from_mat(&dst)
    }
}

/// Reads the pixel size from an encoded image's header without decoding it.
fn header_size(bytes: &[u8]) -> Result<(u64, u64), Error> {
    let unsupported =
        || Error::InvalidImage("unsupported or truncated image (PNG, TIFF, BMP)".into());
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        // libpng requires IHDR as the first chunk: anything else is not what we measured.
        if bytes.get(12..16) != Some(b"IHDR".as_slice()) {
            return Err(unsupported());
        }
        let w = bytes.get(16..20).ok_or_else(unsupported)?;
        let h = bytes.get(20..24).ok_or_else(unsupported)?;
        let be = |b: &[u8]| u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        return Ok((be(w), be(h)));
    }
    if bytes.starts_with(b"BM") {
        let w = bytes.get(18..22).ok_or_else(unsupported)?;
        let h = bytes.get(22..26).ok_or_else(unsupported)?;
        let le = |b: &[u8]| i32::from_le_bytes([b[0], b[1], b[2], b[3]]).unsigned_abs();
        return Ok((u64::from(le(w)), u64::from(le(h))));
    }
    let little = bytes.starts_with(b"II*\0");
    if little || bytes.starts_with(b"MM\0*") {
        return tiff_size(bytes, little);
    }
    Err(unsupported())
}

/// Most directory entries a TIFF header may have: a scan needs about fifteen.
const MAX_TIFF_ENTRIES: usize = 256;

/// Width and height from the image file directory of a single-page classic TIFF.
///
/// It must agree with libtiff (what OpenCV decodes with) on every tag, so anything the two
/// could read differently is refused rather than guessed: a tag given twice (libtiff keeps the
/// first, a naive reader the last), a size that is not one SHORT or LONG, more than one page
/// (OpenCV decodes the first; there is nothing to choose between), a directory that overlaps
/// the header or runs past the end.
fn tiff_size(bytes: &[u8], little: bool) -> Result<(u64, u64), Error> {
    let bad = |why: String| Error::InvalidImage(format!("TIFF header refused: {why}"));
    let truncated = || bad("truncated".into());
    let u16_at = |o: usize| {
        let b = bytes.get(o..o.checked_add(2)?)?;
        Some(if little {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |o: usize| {
        let b = bytes.get(o..o.checked_add(4)?)?;
        Some(if little {
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        } else {
            u32::from_be_bytes([b[0], b[1], b[2], b[3]])
        })
    };
    let ifd = u32_at(4).ok_or_else(truncated)? as usize;
    if ifd < 8 {
        return Err(bad(format!(
            "directory at offset {ifd} overlaps the header"
        )));
    }
    let count = u16_at(ifd).ok_or_else(truncated)? as usize;
    if count == 0 || count > MAX_TIFF_ENTRIES {
        return Err(bad(format!(
            "{count} directory entries (1 to {MAX_TIFF_ENTRIES} expected)"
        )));
    }
    let mut seen = std::collections::BTreeSet::new();
    let (mut width, mut height) = (None, None);
    for i in 0..count {
        let entry = ifd + 2 + 12 * i;
        let tag = u16_at(entry).ok_or_else(truncated)?;
        let typ = u16_at(entry + 2).ok_or_else(truncated)?;
        let n = u32_at(entry + 4).ok_or_else(truncated)?;
        if !seen.insert(tag) {
            return Err(bad(format!("tag {tag} appears twice")));
        }
        if tag != 256 && tag != 257 {
            continue;
        }
        let value = match (typ, n) {
            (3, 1) => u64::from(u16_at(entry + 8).ok_or_else(truncated)?),
            (4, 1) => u64::from(u32_at(entry + 8).ok_or_else(truncated)?),
            _ => {
                return Err(bad(format!(
                    "tag {tag} (image size) has type {typ} and count {n}, not one SHORT or LONG"
                )))
            }
        };
        if tag == 256 {
            width = Some(value);
        } else {
            height = Some(value);
        }
    }
    let next = u32_at(ifd + 2 + 12 * count).ok_or_else(truncated)?;
    if next != 0 {
        return Err(bad("more than one page (a scan is one image)".into()));
    }
    match (width, height) {
        (Some(w), Some(h)) => Ok((w, h)),
        _ => Err(bad("no image width or length tag".into())),
    }
}

/// The pixel limit OpenCV's decoders enforce themselves (`OPENCV_IO_MAX_IMAGE_PIXELS`):
/// [`MAX_IMAGE_SIDE`] squared, so an image our header check misjudged still cannot make the
/// decoder allocate more than the extractor takes.
pub const DECODER_MAX_PIXELS: u64 = MAX_IMAGE_SIDE as u64 * MAX_IMAGE_SIDE as u64;

/// The environment variable (and its value) that sets [`DECODER_MAX_PIXELS`] in OpenCV's
/// imgcodecs.
///
/// imgcodecs reads it into a static when the shared library is loaded, before `main` runs, so
/// setting it from inside the process (`std::env::set_var`) has no effect: it must be in the
/// environment the process starts with. [`reexec_with_decoder_limit`] arranges that.
pub fn decoder_limit_env() -> (&'static str, String) {
    ("OPENCV_IO_MAX_IMAGE_PIXELS", DECODER_MAX_PIXELS.to_string())
}

/// Whether the running process's OpenCV enforces [`DECODER_MAX_PIXELS`] (the variable was in
/// the environment at start with that value or lower).
pub fn decoder_limit_active() -> bool {
    let (name, _) = decoder_limit_env();
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|v| v > 0 && v <= DECODER_MAX_PIXELS)
}

/// For a program's `main`, first thing: when the decoder limit is not in the environment,
/// runs the same executable again (same pid, arguments, descriptors) with it set. Returns only
/// when nothing needed doing, or with the error when the re-execution failed (the caller then
/// goes on with the header check alone).
pub fn reexec_with_decoder_limit() -> Result<(), std::io::Error> {
    use std::os::unix::process::CommandExt;
    if decoder_limit_active() {
        return Ok(());
    }
    let (name, value) = decoder_limit_env();
    let exe = std::env::current_exe()?;
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_else(|| exe.clone().into_os_string());
    Err(std::process::Command::new(&exe)
        .arg0(argv0)
        .args(args)
        .env(name, value)
        .exec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(image: &GrayImage, ext: &str) -> Vec<u8> {
        let mut buf = Vector::<u8>::new();
        imgcodecs::imencode(ext, &image.to_mat().unwrap(), &mut buf, &Vector::new()).unwrap();
        buf.to_vec()
    }

    fn gradient(w: u32, h: u32) -> GrayImage {
        let pixels = (0..w * h).map(|i| ((i % w) * 255 / w) as u8).collect();
        GrayImage::from_raw(w, h, pixels).unwrap()
    }

    #[test]
    fn png_tiff_bmp_round_trip_with_header_sizes() {
        let image = gradient(100, 70);
        for ext in [".png", ".tiff", ".bmp"] {
            let bytes = encode(&image, ext);
            assert_eq!(header_size(&bytes).unwrap(), (100, 70), "{ext}");
            assert_eq!(GrayImage::decode(&bytes).unwrap(), image, "{ext}");
        }
    }

    #[test]
    fn huge_header_is_refused_before_decoding() {
        let mut bytes = encode(&gradient(100, 70), ".png");
        bytes[16..20].copy_from_slice(&20000u32.to_be_bytes());
        bytes[20..24].copy_from_slice(&20000u32.to_be_bytes());
        assert!(matches!(
            GrayImage::decode(&bytes),
            Err(Error::ImageLimits(_))
        ));
    }

    use test_support::images::tiff;

    #[test]
    fn a_hand_made_tiff_decodes() {
        let image = GrayImage::decode(&tiff(100, 70, &[], 0)).unwrap();
        assert_eq!((image.width(), image.height()), (100, 70));
    }

    #[test]
    fn issue_18_duplicated_size_tags_are_refused_before_decoding() {
        // libtiff reads the first width/length (30 000 x 30 000), a last-wins reader the
        // second (100 x 70): the file is refused, whichever way round.
        let mut bomb = tiff(100, 70, &[(256, 100), (257, 70)], 0);
        bomb[8 + 2 + 8..8 + 2 + 12].copy_from_slice(&30_000u32.to_le_bytes());
        bomb[8 + 2 + 12 + 8..8 + 2 + 24].copy_from_slice(&30_000u32.to_le_bytes());
        let started = std::time::Instant::now();
        let e = GrayImage::decode(&bomb).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_millis(200));
        assert!(
            matches!(&e, Error::InvalidImage(m) if m.contains("tag 256 appears twice")),
            "{e}"
        );
    }

    #[test]
    fn huge_multi_page_and_odd_tiffs_are_refused() {
        let mut huge = tiff(100, 70, &[], 0);
        huge[8 + 2 + 8..8 + 2 + 12].copy_from_slice(&30_000u32.to_le_bytes());
        huge[8 + 2 + 12 + 8..8 + 2 + 24].copy_from_slice(&30_000u32.to_le_bytes());
        assert!(matches!(
            GrayImage::decode(&huge),
            Err(Error::ImageLimits(_))
        ));
        let two_pages = tiff(100, 70, &[], 8);
        assert!(matches!(
            GrayImage::decode(&two_pages),
            Err(Error::InvalidImage(m)) if m.contains("more than one page")
        ));
        let mut overlapping = tiff(100, 70, &[], 0);
        overlapping[4..8].copy_from_slice(&2u32.to_le_bytes());
        assert!(matches!(
            GrayImage::decode(&overlapping),
            Err(Error::InvalidImage(_))
        ));
        let truncated = &tiff(100, 70, &[], 0)[..30];
        assert!(matches!(
            GrayImage::decode(truncated),
            Err(Error::InvalidImage(_))
        ));
    }

    /// Run by [`decoder_limit_applies_from_the_start_environment`] in a child process.
    #[test]
    #[ignore = "run in a child process with the limit in its environment"]
    fn decoder_limit_child() {
        assert!(decoder_limit_active());
        // 2100 x 2100 = 4.41 Mpx: OpenCV itself refuses to decode it.
        let big = encode(
            &GrayImage::from_parts(2100, 2100, vec![90; 2100 * 2100]),
            ".png",
        );
        let buf = Vector::<u8>::from_slice(&big);
        let decoded = imgcodecs::imdecode(&buf, imgcodecs::IMREAD_GRAYSCALE);
        assert!(
            decoded.map_or(true, |m| m.empty()),
            "decoded past the limit"
        );
        let small = encode(&gradient(2000, 2000), ".png");
        assert!(GrayImage::decode(&small).is_ok());
    }

    #[test]
    fn decoder_limit_applies_from_the_start_environment() {
        let (name, value) = decoder_limit_env();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "image::tests::decoder_limit_child", "--ignored"])
            .env(name, value)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
    }

    #[test]
    fn decoder_limit_is_the_extractors_largest_image() {
        let (name, value) = decoder_limit_env();
        assert_eq!(name, "OPENCV_IO_MAX_IMAGE_PIXELS");
        assert_eq!(value, "4000000");
    }

    #[test]
    fn raw_limits_and_length() {
        assert!(matches!(
            GrayImage::from_raw(1, 1, vec![0]),
            Err(Error::ImageLimits(_))
        ));
        assert!(matches!(
            GrayImage::from_raw(20000, 20000, vec![]),
            Err(Error::ImageLimits(_))
        ));
        assert!(matches!(
            GrayImage::from_raw(64, 64, vec![0; 10]),
            Err(Error::InvalidImage(_))
        ));
        assert!(GrayImage::from_raw(64, 64, vec![0; 64 * 64]).is_ok());
    }

    #[test]
    fn garbage_is_invalid() {
        assert!(matches!(
            GrayImage::decode(b"hello"),
            Err(Error::InvalidImage(_))
        ));
        assert!(matches!(
            GrayImage::decode(b"\x89PNG\r\n\x1a\n"),
            Err(Error::InvalidImage(_))
        ));
    }

    #[test]
    fn colour_is_converted_to_gray() {
        let colour = Mat::new_rows_cols_with_default(
            80,
            90,
            opencv::core::CV_8UC3,
            opencv::core::Scalar::new(200.0, 200.0, 200.0, 0.0),
        )
        .unwrap();
        let mut buf = Vector::<u8>::new();
        imgcodecs::imencode(".png", &colour, &mut buf, &Vector::new()).unwrap();
        let image = GrayImage::decode(&buf.to_vec()).unwrap();
        assert_eq!((image.width(), image.height()), (90, 80));
        assert!(image.pixels().iter().all(|&p| p == 200));
    }
}
