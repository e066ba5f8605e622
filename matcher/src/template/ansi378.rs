//! ANSI INCITS 378-2004 finger minutiae record format (§6).
//!
//! Record header, 26 bytes (30 with the long length form), big-endian:
//!
//! | offset | bytes | field |
//! |---|---|---|
//! | 0 | 4 | format identifier "FMR\0" |
//! | 4 | 4 | version " 20\0" |
//! | 8 | 2 or 6 | record length: 2 bytes, or 0x0000 followed by 4 bytes when over 65535 |
//! | +0 | 4 | CBEFF product identifier: owner (2), type (2) |
//! | +4 | 2 | capture equipment: compliance (4 bits), device id (12 bits) |
//! | +6 | 2 | image width in pixels |
//! | +8 | 2 | image height in pixels |
//! | +10 | 2 | horizontal resolution, pixels per centimetre |
//! | +12 | 2 | vertical resolution, pixels per centimetre |
//! | +14 | 1 | number of finger views |
//! | +15 | 1 | reserved, 0 |
//!
//! followed by the finger views (see [`super::record`]) with angles in 2-degree units, 0-179.
//! Same validation as [`super::iso19794`], plus the angle range.

use super::reader::{invalid, Reader};
use super::record::{
    check_views, geometry_of, read_view, validate_geometry, view_from_fingerprint,
    view_to_fingerprint, write_view, AngleUnit, FingerView, Geometry, MAX_VIEWS,
};
use crate::{Error, Fingerprint};

pub use super::iso19794::{MAGIC, VERSION};

/// Header size with the 2-byte record length.
pub const HEADER_LEN: usize = 26;
/// Header size with the 6-byte record length (records over 65535 bytes).
pub const LONG_HEADER_LEN: usize = 30;
const FORMAT: &str = "ANSI INCITS 378-2004 record";

/// A decoded ANSI INCITS 378-2004 finger minutiae record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnsiRecord {
    /// CBEFF product identifier owner (IBIA-registered vendor id).
    pub product_owner: u16,
    /// CBEFF product identifier type (vendor-defined).
    pub product_type: u16,
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
    /// The finger views, in record order; angles in 2-degree units.
    pub views: Vec<FingerView>,
}

impl AnsiRecord {
    /// A one-view record (view 0, live-scan plain) of `fp` for the given finger position.
    pub fn from_fingerprint(fp: &Fingerprint, finger_position: u8) -> Result<AnsiRecord, Error> {
        let g = geometry_of(fp)?;
        let view = view_from_fingerprint(fp, finger_position, g, AngleUnit::Ansi2Deg)?;
        Ok(AnsiRecord {
            product_owner: 0,
            product_type: 0,
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
            .map(|v| view_to_fingerprint(v, self.geometry(), AngleUnit::Ansi2Deg))
    }

    /// Every view as a [`Fingerprint`].
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        let g = self.geometry();
        self.views
            .iter()
            .map(|v| view_to_fingerprint(v, g, AngleUnit::Ansi2Deg))
            .collect()
    }

    fn geometry(&self) -> Geometry {
        Geometry {
            width: self.width,
            height: self.height,
            x_resolution: self.x_resolution,
            y_resolution: self.y_resolution,
        }
    }
}

/// Decodes and validates an ANSI INCITS 378-2004 record.
pub fn decode(bytes: &[u8]) -> Result<AnsiRecord, Error> {
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
        return Err(r.error_at(4, "version is not \" 20\\0\" (2004 edition)"));
    }
    let short = r.u16("record length")?;
    let length = if short == 0 {
        u64::from(r.u32("long record length")?)
    } else {
        u64::from(short)
    };
    if length != bytes.len() as u64 {
        return Err(r.error_at(
            8,
            format_args!(
                "record length field says {length} bytes but {} bytes were given",
                bytes.len()
            ),
        ));
    }
    let base = r.pos();
    let product_owner = r.u16("CBEFF product owner")?;
    let product_type = r.u16("CBEFF product type")?;
    let capture_equipment = r.u16("capture equipment")?;
    let g = Geometry {
        width: r.u16("image width")?,
        height: r.u16("image height")?,
        x_resolution: r.u16("horizontal resolution")?,
        y_resolution: r.u16("vertical resolution")?,
    };
    validate_geometry(&r, g, base + 6)?;
    let view_count = usize::from(r.u8("number of finger views")?);
    if view_count == 0 || view_count > MAX_VIEWS {
        return Err(r.error_at(
            base + 14,
            format_args!("number of finger views {view_count} is not in 1-{MAX_VIEWS}"),
        ));
    }
    if r.u8("reserved byte")? != 0 {
        return Err(r.error_at(base + 15, "reserved byte is not zero"));
    }
    if view_count * 6 > r.remaining() {
        return Err(r.error_at(
            base + 14,
            format_args!(
                "{view_count} finger views cannot fit in the {} bytes that remain",
                r.remaining()
            ),
        ));
    }
    let mut views = Vec::with_capacity(view_count);
    for _ in 0..view_count {
        views.push(read_view(&mut r, g, AngleUnit::Ansi2Deg)?);
    }
    if r.remaining() != 0 {
        return Err(r.error_at(
            r.pos(),
            format_args!("{} trailing bytes after the last view", r.remaining()),
        ));
    }
    Ok(AnsiRecord {
        product_owner,
        product_type,
        capture_equipment,
        width: g.width,
        height: g.height,
        x_resolution: g.x_resolution,
        y_resolution: g.y_resolution,
        views,
    })
}

/// Encodes a record, choosing the 6-byte length form only when the record exceeds 65535 bytes.
pub fn encode(record: &AnsiRecord) -> Result<Vec<u8>, Error> {
    let g = record.geometry();
    if g.width == 0 || g.height == 0 {
        return Err(Error::Encode(format!(
            "image size {}x{} has a zero side",
            g.width, g.height
        )));
    }
    let body = check_views(&record.views, g, AngleUnit::Ansi2Deg)?;
    let short_total = HEADER_LEN + body;
    let mut out = Vec::with_capacity(short_total + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(VERSION);
    match u16::try_from(short_total) {
        Ok(len) => out.extend_from_slice(&len.to_be_bytes()),
        Err(_) => {
            let total = LONG_HEADER_LEN + body;
            let len = u32::try_from(total).map_err(|_| {
                Error::Encode(format!("record of {total} bytes exceeds 32-bit length"))
            })?;
            out.extend_from_slice(&[0, 0]);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    for v in [
        record.product_owner,
        record.product_type,
        record.capture_equipment,
        g.width,
        g.height,
        g.x_resolution,
        g.y_resolution,
    ] {
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

    #[test]
    fn angle_over_179_is_rejected_with_offset() {
        let mut b = Vec::new();
        b.extend_from_slice(b"FMR\0 20\0");
        b.extend_from_slice(&38u16.to_be_bytes());
        b.extend_from_slice(&[
            0, 0, 0, 0, 0, 0, 0x01, 0x2c, 0x01, 0x90, 0, 197, 0, 197, 1, 0,
        ]);
        b.extend_from_slice(&[1, 0, 60, 1]);
        b.extend_from_slice(&[0x40, 100, 0, 50, 90, 80]);
        b.extend_from_slice(&[0, 0]);
        let rec = decode(&b).unwrap();
        assert_eq!(encode(&rec).unwrap(), b);
        let fp = rec.fingerprint(0).unwrap();
        assert!((fp.minutiae[0].direction - std::f32::consts::PI).abs() < 1e-5);
        b[34] = 180;
        let err = decode(&b).unwrap_err().to_string();
        assert!(err.contains("offset 34") && err.contains("179"), "{err}");
    }
}
