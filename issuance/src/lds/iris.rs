//! DG4 (iris): the iris images taken at enrolment, as a biometric information group template
//! like DG2 and DG3 (ICAO 9303-10 §4.7.4, ISO/IEC 7816-11):
//!
//! ```text
//! 76 {                                        DG4
//!   7F61 {                                    biometric information group template
//!     02 count                                one entry per eye (right first)
//!     7F60 {
//!       A1 { 80 0101, 81 10, 82 eye, 87 0101, 88 0009 }
//!       5F2E                                  ISO/IEC 19794-6:2005 iris image record
//! } } }
//! ```
//!
//! Each entry holds its own iris image record with one biometric subtype (the eye the CBEFF
//! header `82` names): in the 2005 record the image format, width and height sit in the record
//! header, common to every image of the record, so one record per eye lets the two images
//! differ in size.
//!
//! ISO/IEC 19794-6:2005 knows raw, JPEG, JPEG-LS and JPEG 2000 images, but not PNG (PNG came
//! with the 2011 edition). A JPEG is written as given ([`IrisImageFormat::MonoJpeg`] or
//! [`IrisImageFormat::RgbJpeg`]); QC decodes a PNG to 8-bit gray and it is written as
//! uncompressed [`IrisImageFormat::MonoRaw`] (lossless, within the 2005 formats).
//!
//! Sources of the constants: the ISO/IEC 19794-6:2005 record layout and code values as NIST's
//! BioMDI `iid.h` (ISO/IEC 19794-6:2005 iris image data, `usnistgov/biomdi`) and JMRTD's
//! `IrisInfo` / `IrisImageInfo` / `IrisBiometricSubtypeInfo` (the ICAO reference reader of DG4)
//! write them; the CBEFF header values as ICAO 9303-10 §4.7 and ISO/IEC 19785-1 give them and
//! JMRTD's `CBEFFInfo` and `IrisInfo` use them.

use apdu::tlv::{Tag, Tlv};

use super::biometric::{group, header, parse_group};
use super::LdsError;

/// LDS tag of DG4 (ICAO 9303-10 §4.6, table of data groups: DG4 = `76`).
pub const DG4_TAG: u32 = 0x76;
/// CBEFF biometric type (`81`) of an iris: `0x10` (ISO/IEC 19785-1 / ICAO 9303-10 biometric
/// type table; JMRTD `CBEFFInfo.BIOMETRIC_TYPE_IRIS`).
const TYPE_IRIS: u8 = 0x10;
/// Format type (`88`) of an ISO/IEC 19794-6 iris image record under format owner ISO/IEC JTC 1
/// SC 37 (`87` = `0101`): `0009` (IBIA CBEFF registry, as JMRTD `IrisInfo.FORMAT_TYPE_VALUE`;
/// the FCD of 19794-6 had `0601`).
pub const FORMAT_IRIS: [u8; 2] = [0x00, 0x09];

/// `IIR\0`: ISO/IEC 19794-6 format identifier.
const IRIS_MAGIC: &[u8; 4] = b"IIR\0";
/// `010\0`: version 1.0 (the 2005 edition).
const IRIS_VERSION: &[u8; 4] = b"010\0";
/// Record header: identifier (4), version (4), record length (4), capture device id (2),
/// number of biometric subtypes (1), record header length (2), image properties (2), iris
/// diameter (2), image format (2), width (2), height (2), intensity depth (1), image
/// transformation (1), device unique identifier (16): 45 bytes, the value the record header
/// length field carries (JMRTD `IrisInfo`: "Should be 45").
const RECORD_HEADER_LEN: usize = 45;
/// Biometric subtype header: eye position (1), number of images (2).
const SUBTYPE_HEADER_LEN: usize = 3;
/// Image header: image number (2), quality (1), rotation angle (2), rotation uncertainty (2),
/// image length (4).
const IMAGE_HEADER_LEN: usize = 11;
/// Capture device id `0`: undefined (BioMDI `IID_CAPTURE_DEVICE_UNDEF`).
const CAPTURE_DEVICE_UNDEF: u16 = 0;
/// Image properties bit field `0`: orientations undefined, scan type, occlusion, occlusion
/// filling and boundary extraction all 0 (undefined / not processed).
const IMAGE_PROPERTIES_UNDEF: u16 = 0;
/// Iris diameter `0`: not known.
const DIAMETER_UNDEF: u16 = 0;
/// Image transformation `0`: undefined (rectilinear images; BioMDI `IID_TRANS_UNDEF`).
const TRANSFORMATION_UNDEF: u8 = 0;
/// Device unique identifier: all zeroes, no serial number (JMRTD `IrisInfo`).
const DEVICE_UNIQUE_ID_NONE: [u8; 16] = [0; 16];
/// Image quality `0xFE` (254): undefined (ISO/IEC 19794-6:2005 table 3, JMRTD
/// `IrisImageInfo.IMAGE_QUAL_UNDEF`).
const QUALITY_UNDEF: u8 = 0xFE;
/// Rotation angle and its uncertainty `0xFFFF`: undefined (BioMDI `IID_ROT_ANGLE_UNDEF`,
/// `IID_ROT_UNCERTAIN_UNDEF`).
const ROTATION_UNDEF: u16 = 0xFFFF;
/// Bits per pixel (per colour) written for 8-bit images.
const INTENSITY_DEPTH_8: u8 = 8;

/// An eye: the ISO/IEC 19794-6 eye position and the CBEFF subtype (`82`) are the same values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Eye {
    /// Right eye: eye position `0x01` (BioMDI `IID_EYE_RIGHT`), CBEFF subtype bit `0x01`
    /// (ISO/IEC 19785-1 "right").
    Right,
    /// Left eye: eye position `0x02` (BioMDI `IID_EYE_LEFT`), CBEFF subtype bit `0x02`.
    Left,
}

impl Eye {
    /// The eye position byte (and CBEFF subtype).
    pub fn code(self) -> u8 {
        match self {
            Eye::Right => 0x01,
            Eye::Left => 0x02,
        }
    }

    /// The eye of an eye position byte.
    pub fn from_code(code: u8) -> Option<Eye> {
        match code {
            0x01 => Some(Eye::Right),
            0x02 => Some(Eye::Left),
            _ => None,
        }
    }
}

/// ISO/IEC 19794-6:2005 image formats idcardd writes (record header "image format").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IrisImageFormat {
    /// `0x0002` MONO_RAW: 8-bit gray levels, row-major, `width * height` bytes.
    MonoRaw,
    /// `0x0006` MONO_JPEG: a grayscale JPEG.
    MonoJpeg,
    /// `0x0008` RGB_JPEG: a colour JPEG.
    RgbJpeg,
}

impl IrisImageFormat {
    /// The record's image format code (BioMDI `IID_IMAGEFORMAT_*`, JMRTD
    /// `IrisInfo.IMAGEFORMAT_*`).
    pub fn code(self) -> u16 {
        match self {
            IrisImageFormat::MonoRaw => 0x0002,
            IrisImageFormat::MonoJpeg => 0x0006,
            IrisImageFormat::RgbJpeg => 0x0008,
        }
    }

    /// The format of a code; `None` for formats idcardd does not write (RGB raw, JPEG-LS,
    /// JPEG 2000).
    pub fn from_code(code: u16) -> Option<IrisImageFormat> {
        match code {
            0x0002 => Some(IrisImageFormat::MonoRaw),
            0x0006 => Some(IrisImageFormat::MonoJpeg),
            0x0008 => Some(IrisImageFormat::RgbJpeg),
            _ => None,
        }
    }
}

/// One eye's iris image for DG4.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IrisImage {
    /// Which eye.
    pub eye: Eye,
    /// How `data` is encoded.
    pub format: IrisImageFormat,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
    /// The image: JPEG bytes, or `width * height` gray levels for [`IrisImageFormat::MonoRaw`].
    pub data: Vec<u8>,
}

fn check_image(image: &IrisImage) -> Result<(), LdsError> {
    const FIELD: &str = "iris image";
    if image.width == 0 || image.height == 0 {
        return Err(LdsError::field(FIELD, "zero width or height"));
    }
    match image.format {
        IrisImageFormat::MonoRaw => {
            if image.data.len() != usize::from(image.width) * usize::from(image.height) {
                return Err(LdsError::field(
                    FIELD,
                    format!(
                        "{} raw bytes for {}x{} px",
                        image.data.len(),
                        image.width,
                        image.height
                    ),
                ));
            }
        }
        IrisImageFormat::MonoJpeg | IrisImageFormat::RgbJpeg => {
            if !image.data.starts_with(&[0xFF, 0xD8]) {
                return Err(LdsError::field(FIELD, "not a JPEG image"));
            }
        }
    }
    Ok(())
}

/// Wraps one eye's image in an ISO/IEC 19794-6:2005 iris image record: one biometric subtype
/// (the eye), one image, properties undefined.
pub fn iris_record(image: &IrisImage) -> Result<Vec<u8>, LdsError> {
    check_image(image)?;
    let total = RECORD_HEADER_LEN + SUBTYPE_HEADER_LEN + IMAGE_HEADER_LEN + image.data.len();
    let total32 = u32::try_from(total).map_err(|_| LdsError::field("iris image", "too large"))?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(IRIS_MAGIC);
    out.extend_from_slice(IRIS_VERSION);
    out.extend_from_slice(&total32.to_be_bytes());
    out.extend_from_slice(&CAPTURE_DEVICE_UNDEF.to_be_bytes());
    out.push(1); // number of biometric subtypes (eyes)
    out.extend_from_slice(&(RECORD_HEADER_LEN as u16).to_be_bytes());
    out.extend_from_slice(&IMAGE_PROPERTIES_UNDEF.to_be_bytes());
    out.extend_from_slice(&DIAMETER_UNDEF.to_be_bytes());
    out.extend_from_slice(&image.format.code().to_be_bytes());
    out.extend_from_slice(&image.width.to_be_bytes());
    out.extend_from_slice(&image.height.to_be_bytes());
    out.push(INTENSITY_DEPTH_8);
    out.push(TRANSFORMATION_UNDEF);
    out.extend_from_slice(&DEVICE_UNIQUE_ID_NONE);
    debug_assert_eq!(out.len(), RECORD_HEADER_LEN);
    // Biometric subtype header.
    out.push(image.eye.code());
    out.extend_from_slice(&1u16.to_be_bytes()); // number of images
                                                // Image header.
    out.extend_from_slice(&1u16.to_be_bytes()); // image number
    out.push(QUALITY_UNDEF);
    out.extend_from_slice(&ROTATION_UNDEF.to_be_bytes()); // rotation angle
    out.extend_from_slice(&ROTATION_UNDEF.to_be_bytes()); // rotation uncertainty
    out.extend_from_slice(&(image.data.len() as u32).to_be_bytes());
    out.extend_from_slice(&image.data);
    Ok(out)
}

/// Reads an ISO/IEC 19794-6:2005 record of one eye with one image (what [`iris_record`]
/// writes); other records are refused, not guessed at.
pub fn parse_iris_record(record: &[u8]) -> Result<IrisImage, LdsError> {
    const WHAT: &str = "DG4 iris record";
    let bad = |reason: &str| LdsError::malformed(WHAT, reason);
    if record.len() < RECORD_HEADER_LEN + SUBTYPE_HEADER_LEN + IMAGE_HEADER_LEN {
        return Err(bad("shorter than its headers"));
    }
    if &record[..4] != IRIS_MAGIC || &record[4..8] != IRIS_VERSION {
        return Err(bad("not an ISO/IEC 19794-6 version 010 record"));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]]) as usize
    };
    let be16 = |at: usize| u16::from_be_bytes([record[at], record[at + 1]]);
    if be32(8) != record.len() {
        return Err(bad("record length does not match the data"));
    }
    if record[14] != 1 {
        return Err(bad("not exactly one eye"));
    }
    if usize::from(be16(15)) != RECORD_HEADER_LEN {
        return Err(bad("record header length is not 45"));
    }
    let format = IrisImageFormat::from_code(be16(21))
        .ok_or_else(|| bad(&format!("unsupported image format {:#06x}", be16(21))))?;
    let (width, height) = (be16(23), be16(25));
    let s = RECORD_HEADER_LEN;
    let eye = Eye::from_code(record[s]).ok_or_else(|| bad("unknown eye position"))?;
    if be16(s + 1) != 1 {
        return Err(bad("not exactly one image"));
    }
    let i = s + SUBTYPE_HEADER_LEN;
    let len = be32(i + 7);
    let start = i + IMAGE_HEADER_LEN;
    if start + len != record.len() {
        return Err(bad("image length does not match the record"));
    }
    let image = IrisImage {
        eye,
        format,
        width,
        height,
        data: record[start..].to_vec(),
    };
    check_image(&image).map_err(|e| LdsError::malformed(WHAT, e.to_string()))?;
    Ok(image)
}

/// Builds DG4 with one entry per eye, in the order given (right, then left, by convention).
pub fn build_dg4(images: &[IrisImage]) -> Result<Vec<u8>, LdsError> {
    if images.is_empty() || images.len() > 2 {
        return Err(LdsError::field(
            "iris",
            format!("{} images; one or two eyes allowed", images.len()),
        ));
    }
    if images.len() == 2 && images[0].eye == images[1].eye {
        return Err(LdsError::field("iris", "the same eye twice"));
    }
    let mut entries = Vec::with_capacity(images.len());
    for image in images {
        entries.push(Tlv::constructed(
            Tag(0x7F60),
            vec![
                header(TYPE_IRIS, Some(image.eye.code()), None, FORMAT_IRIS),
                Tlv::primitive(Tag(0x5F2E), iris_record(image)?),
            ],
        ));
    }
    Ok(group(DG4_TAG, entries))
}

/// Parses DG4 and returns its iris images; the header's subtype must name the record's eye.
pub fn parse_dg4(bytes: &[u8]) -> Result<Vec<IrisImage>, LdsError> {
    parse_group(bytes, DG4_TAG, "DG4", TYPE_IRIS, FORMAT_IRIS)?
        .into_iter()
        .map(|(subtype, _, record)| {
            let image = parse_iris_record(&record)?;
            if subtype.is_some_and(|s| s != image.eye.code()) {
                return Err(LdsError::malformed(
                    "DG4",
                    "header subtype and record eye position differ",
                ));
            }
            Ok(image)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(eye: Eye, w: u16, h: u16) -> IrisImage {
        IrisImage {
            eye,
            format: IrisImageFormat::MonoRaw,
            width: w,
            height: h,
            data: (0..usize::from(w) * usize::from(h))
                .map(|i| i as u8)
                .collect(),
        }
    }

    #[test]
    fn dg4_round_trips_and_has_the_icao_layout() {
        let jpeg = IrisImage {
            eye: Eye::Left,
            format: IrisImageFormat::MonoJpeg,
            width: 8,
            height: 8,
            data: vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 0xFF, 0xD9],
        };
        let images = vec![raw(Eye::Right, 64, 48), jpeg];
        let dg4 = build_dg4(&images).unwrap();
        assert_eq!(dg4[0], 0x76);
        assert_eq!(parse_dg4(&dg4).unwrap(), images);
        let tlv = Tlv::decode_one(&dg4).unwrap();
        let bigt = &tlv.children()[0];
        assert_eq!(bigt.tag, Tag(0x7F61));
        assert_eq!(bigt.children()[0].as_bytes(), Some(&[2u8][..]));
        let entry = &bigt.children()[1];
        let a1 = &entry.children()[0];
        let field = |t: u32| {
            a1.children()
                .iter()
                .find(|c| c.tag == Tag(t))
                .and_then(Tlv::as_bytes)
                .unwrap()
                .to_vec()
        };
        assert_eq!(field(0x81), vec![0x10]);
        assert_eq!(field(0x82), vec![0x01]);
        assert_eq!(field(0x87), vec![0x01, 0x01]);
        assert_eq!(field(0x88), vec![0x00, 0x09]);
        let record = entry.children()[1].as_bytes().unwrap();
        assert_eq!(&record[..8], b"IIR\x00010\x00");
        assert_eq!(u16::from_be_bytes([record[15], record[16]]), 45);
        assert_eq!(u16::from_be_bytes([record[21], record[22]]), 0x0002);
        assert_eq!(record[45], 0x01);
        assert_eq!(record.len(), 45 + 3 + 11 + 64 * 48);
    }

    #[test]
    fn bad_inputs_are_refused() {
        assert!(build_dg4(&[]).is_err());
        assert!(build_dg4(&[raw(Eye::Right, 4, 4), raw(Eye::Right, 4, 4)]).is_err());
        let mut short = raw(Eye::Left, 4, 4);
        short.data.pop();
        assert!(build_dg4(&[short]).is_err());
        let dg4 = build_dg4(&[raw(Eye::Left, 4, 4)]).unwrap();
        for cut in 0..dg4.len() {
            assert!(parse_dg4(&dg4[..cut]).is_err(), "cut at {cut}");
        }
        // The header's subtype must match the record's eye.
        let mut swapped = dg4.clone();
        let at = swapped
            .windows(3)
            .position(|w| w == [0x82, 0x01, 0x02])
            .unwrap();
        swapped[at + 2] = 0x01;
        assert!(parse_dg4(&swapped).is_err());
        // DG3's tag is not DG4.
        let mut other = dg4;
        other[0] = 0x63;
        assert!(parse_dg4(&other).is_err());
    }
}
