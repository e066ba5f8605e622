//! ANSI INCITS 378-2004 finger minutiae record format (§6): a 26-byte header (30 with the long
//! length form) holding a CBEFF product identifier, then the finger views (see
//! [`super::record`]) with angles in 2-degree units, 0-179. One codec, shared with
//! [`super::iso19794`], reads and writes it; the header layout and the validation are in
//! [`super`].

use super::fmr::{self, Header, ANSI_378_2004 as FORMAT};
use super::record::{view_to_fingerprint, FingerView, Geometry};
use crate::{Error, Fingerprint};

pub use super::fmr::{MAGIC, VERSION};

/// Header size with the 2-byte record length.
pub const HEADER_LEN: usize = FORMAT.header_len();
/// Header size with the 6-byte record length (records over 65535 bytes).
pub const LONG_HEADER_LEN: usize = HEADER_LEN + 4;

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
        let (header, view) = fmr::one_view(fp, finger_position, &FORMAT)?;
        Ok(AnsiRecord::from_parts(header, vec![view]))
    }

    /// View `index` as a [`Fingerprint`] (pixels, radians, dpi rounded from px/cm).
    pub fn fingerprint(&self, index: usize) -> Option<Fingerprint> {
        let (view, g) = (self.views.get(index)?, self.header().geometry);
        Some(view_to_fingerprint(view, g, FORMAT.angle))
    }

    /// Every view as a [`Fingerprint`].
    pub fn fingerprints(&self) -> Vec<Fingerprint> {
        (0..self.views.len())
            .filter_map(|i| self.fingerprint(i))
            .collect()
    }

    fn header(&self) -> Header {
        Header {
            product_owner: self.product_owner,
            product_type: self.product_type,
            capture_equipment: self.capture_equipment,
            geometry: Geometry {
                width: self.width,
                height: self.height,
                x_resolution: self.x_resolution,
                y_resolution: self.y_resolution,
            },
        }
    }

    fn from_parts(h: Header, views: Vec<FingerView>) -> AnsiRecord {
        AnsiRecord {
            product_owner: h.product_owner,
            product_type: h.product_type,
            capture_equipment: h.capture_equipment,
            width: h.geometry.width,
            height: h.geometry.height,
            x_resolution: h.geometry.x_resolution,
            y_resolution: h.geometry.y_resolution,
            views,
        }
    }
}

/// Decodes and validates an ANSI INCITS 378-2004 record.
pub fn decode(bytes: &[u8]) -> Result<AnsiRecord, Error> {
    let (header, views) = fmr::decode(bytes, &FORMAT)?;
    Ok(AnsiRecord::from_parts(header, views))
}

/// Encodes a record, choosing the 6-byte length form only when the record exceeds 65535 bytes.
pub fn encode(record: &AnsiRecord) -> Result<Vec<u8>, Error> {
    fmr::encode(&record.header(), &record.views, &FORMAT)
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
