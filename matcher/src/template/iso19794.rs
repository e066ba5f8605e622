//! ISO/IEC 19794-2:2005 finger minutiae record format (§7).
//!
//! Record header, 24 bytes, big-endian:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | format identifier "FMR\0" |
//! | 4 | 4 | version " 20\0" |
//! | 8 | 4 | total record length in bytes |
//! | 12 | 2 | capture equipment: 4-bit compliance, 12-bit device id |
//! | 14 | 2 | image width in pixels |
//! | 16 | 2 | image height in pixels |
//! | 18 | 2 | horizontal resolution, pixels per centimetre |
//! | 20 | 2 | vertical resolution, pixels per centimetre |
//! | 22 | 1 | number of finger views |
//! | 23 | 1 | reserved, 0 |
//!
//! followed by the finger views (see [`super::record`]), angles in units of 360/256 degrees
//! counter-clockwise from the x axis.
//!
//! Validation on read: magic and version, record length equal to the input length, non-zero
//! image size, plausible resolution, reserved byte zero, 1 to [`MAX_VIEWS`] views, every view
//! and minutia field in range and inside the image, no trailing bytes. A view with zero minutiae
//! is accepted (the standard allows it) and converts to a [`Fingerprint`] without minutiae.

use super::reader::{invalid, Reader};
use super::record::{
    check_views, geometry_of, read_view, validate_geometry, view_from_fingerprint,
    view_to_fingerprint, write_view, AngleUnit, FingerView, Geometry, MAX_VIEWS,
};
use crate::{Error, Fingerprint};

/// Format identifier shared by ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004.
pub const MAGIC: &[u8; 4] = b"FMR\0";
/// Version of the 2005 ISO record (also used by ANSI 378-2004).
pub const VERSION: &[u8; 4] = b" 20\0";
/// Size of the record header.
pub const HEADER_LEN: usize = 24;
const FORMAT: &str = "ISO/IEC 19794-2:2005 record";

/// A decoded ISO/IEC 19794-2:2005 finger minutiae record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IsoRecord {
    /// Capture equipment: 4-bit compliance and 12-bit device id, kept as stored.
    pub capture_equipment: u16,
    /// Image width in pixels.
    pub width: u16,
    /// Image height in pixels.
    pub height: u16,
    /// Horizontal resolution in pixels per centimetre.
    pub x_resolution: u16,
    /// Vertical resolution in pixels per centimetre.
    pub y_resolution: u16,
    /// The finger views, in record order.
    pub views: Vec<FingerView>,
}

impl IsoRecord {
    /// A one-view record (view 0, live-scan plain) of `fp` for the given finger position.
    pub fn from_fingerprint(fp: &Fingerprint, finger_position: u8) -> Result<IsoRecord, Error> {
        let g = geometry_of(fp)?;
        let view = view_from_fingerprint(fp, finger_position, g, AngleUnit::Iso256)?;
        Ok(IsoRecord {
            capture_equipment: 0,
            width: g.width,
            height: g.height,
            x_resolution: g.x_resolution,
            y_resolution: g.y_resolution,
            views: vec![view],
        })
    }

    /// View `index` as a [`Fingerprint`] (pixels, radians, dpi rounded from px/cm).
    pub fn fingerprint(&self, index: usize) -> Option<Fingerprint> {
        self.views
            .get(index)
            .map(|v| view_to_fingerprint(v, self.geometry(), AngleUnit::Iso256))
    }

    /// Every view as a [`Fingerprint`].
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        let g = self.geometry();
        self.views
            .iter()
            .map(|v| view_to_fingerprint(v, g, AngleUnit::Iso256))
            .collect()
    }

    pub(crate) fn geometry(&self) -> Geometry {
        Geometry {
            width: self.width,
            height: self.height,
            x_resolution: self.x_resolution,
            y_resolution: self.y_resolution,
        }
    }
}

/// Decodes and validates an ISO/IEC 19794-2:2005 record.
pub fn decode(bytes: &[u8]) -> Result<IsoRecord, Error> {
    let mut r = Reader::new(bytes, FORMAT);
    if bytes.len() < HEADER_LEN {
        return Err(invalid(
            FORMAT,
            bytes.len(),
            format_args!(
                "truncated: {} bytes cannot hold the {HEADER_LEN}-byte header",
                bytes.len()
            ),
        ));
    }
    if r.take(4, "format identifier")? != MAGIC {
        return Err(r.error_at(0, "format identifier is not \"FMR\\0\""));
    }
    if r.take(4, "version")? != VERSION {
        return Err(r.error_at(4, "version is not \" 20\\0\" (2005 edition)"));
    }
    let length = r.u32("record length")?;
    if u64::from(length) != bytes.len() as u64 {
        return Err(r.error_at(
            8,
            format_args!(
                "record length field says {length} bytes but {} bytes were given",
                bytes.len()
            ),
        ));
    }
    let capture_equipment = r.u16("capture equipment")?;
    let g = Geometry {
        width: r.u16("image width")?,
        height: r.u16("image height")?,
        x_resolution: r.u16("horizontal resolution")?,
        y_resolution: r.u16("vertical resolution")?,
    };
    validate_geometry(&r, g, 14)?;
    let view_count = usize::from(r.u8("number of finger views")?);
    if view_count == 0 || view_count > MAX_VIEWS {
        return Err(r.error_at(
            22,
            format_args!("number of finger views {view_count} is not in 1-{MAX_VIEWS}"),
        ));
    }
    if r.u8("reserved byte")? != 0 {
        return Err(r.error_at(23, "reserved byte is not zero"));
    }
    // Each view takes at least 6 bytes: refuse absurd counts before allocating.
    if view_count * 6 > r.remaining() {
        return Err(r.error_at(
            22,
            format_args!(
                "{view_count} finger views cannot fit in the {} bytes that remain",
                r.remaining()
            ),
        ));
    }
    let mut views = Vec::with_capacity(view_count);
    for _ in 0..view_count {
        views.push(read_view(&mut r, g, AngleUnit::Iso256)?);
    }
    if r.remaining() != 0 {
        return Err(r.error_at(
            r.pos(),
            format_args!("{} trailing bytes after the last view", r.remaining()),
        ));
    }
    Ok(IsoRecord {
        capture_equipment,
        width: g.width,
        height: g.height,
        x_resolution: g.x_resolution,
        y_resolution: g.y_resolution,
        views,
    })
}

/// Encodes a record; fails with [`Error::Encode`] on anything the format cannot hold.
pub fn encode(record: &IsoRecord) -> Result<Vec<u8>, Error> {
    let g = record.geometry();
    if g.width == 0 || g.height == 0 {
        return Err(Error::Encode(format!(
            "image size {}x{} has a zero side",
            g.width, g.height
        )));
    }
    let body = check_views(&record.views, g, AngleUnit::Iso256)?;
    let total = HEADER_LEN + body;
    let length = u32::try_from(total)
        .map_err(|_| Error::Encode(format!("record of {total} bytes exceeds 32-bit length")))?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(VERSION);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(&record.capture_equipment.to_be_bytes());
    for v in [g.width, g.height, g.x_resolution, g.y_resolution] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.push(u8::try_from(record.views.len()).unwrap_or(u8::MAX));
    out.push(0);
    for view in &record.views {
        write_view(&mut out, view);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Header + one view with one minutia, 36 bytes.
    fn sample() -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(b"FMR\0 20\0");
        b.extend_from_slice(&36u32.to_be_bytes());
        b.extend_from_slice(&[0, 0, 0x01, 0x2c, 0x01, 0x90, 0, 197, 0, 197, 1, 0]);
        b.extend_from_slice(&[1, 0, 60, 1]);
        b.extend_from_slice(&[0x40, 100, 0, 50, 64, 80]);
        b.extend_from_slice(&[0, 0]);
        b
    }

    #[test]
    fn decodes_a_hand_made_record() {
        let rec = decode(&sample()).unwrap();
        assert_eq!((rec.width, rec.height), (300, 400));
        let fp = rec.fingerprint(0).unwrap();
        assert_eq!(fp.dpi_x, 500);
        assert_eq!(fp.minutiae.len(), 1);
        let m = fp.minutiae[0];
        assert_eq!((m.x, m.y, m.quality), (100.0, 50.0, 80));
        assert!((m.direction - std::f32::consts::FRAC_PI_2).abs() < 1e-6);
        assert_eq!(encode(&rec).unwrap(), sample());
    }

    #[test]
    fn reserved_byte_and_reserved_bits_are_rejected() {
        let mut b = sample();
        b[23] = 1;
        assert!(decode(&b).unwrap_err().to_string().contains("offset 23"));
        let mut b = sample();
        b[30] |= 0x80; // reserved bits above y
        assert!(decode(&b).unwrap_err().to_string().contains("offset 30"));
    }
}
