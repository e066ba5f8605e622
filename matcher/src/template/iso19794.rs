//! ISO/IEC 19794-2:2005 finger minutiae record format (§7): a 24-byte header with a 4-byte
//! record length, then the finger views (see [`super::record`]) with angles in units of
//! 360/256 degrees. One codec, shared with [`super::ansi378`], reads and writes it; the header
//! layout and the validation are in [`super`].

use super::fmr::{self, Header, ISO_19794_2_2005 as FORMAT};
use super::record::{view_to_fingerprint, FingerView, Geometry};
use crate::{Error, Fingerprint};

pub use super::fmr::{MAGIC, VERSION};

/// Size of the record header.
pub const HEADER_LEN: usize = FORMAT.header_len();

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
        let (header, view) = fmr::one_view(fp, finger_position, &FORMAT)?;
        Ok(IsoRecord::from_parts(header, vec![view]))
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
            capture_equipment: self.capture_equipment,
            geometry: Geometry {
                width: self.width,
                height: self.height,
                x_resolution: self.x_resolution,
                y_resolution: self.y_resolution,
            },
            ..Header::default()
        }
    }

    fn from_parts(h: Header, views: Vec<FingerView>) -> IsoRecord {
        IsoRecord {
            capture_equipment: h.capture_equipment,
            width: h.geometry.width,
            height: h.geometry.height,
            x_resolution: h.geometry.x_resolution,
            y_resolution: h.geometry.y_resolution,
            views,
        }
    }
}

/// Decodes and validates an ISO/IEC 19794-2:2005 record.
pub fn decode(bytes: &[u8]) -> Result<IsoRecord, Error> {
    let (header, views) = fmr::decode(bytes, &FORMAT)?;
    Ok(IsoRecord::from_parts(header, views))
}

/// Encodes a record; fails with [`Error::Encode`] on anything the format cannot hold.
pub fn encode(record: &IsoRecord) -> Result<Vec<u8>, Error> {
    fmr::encode(&record.header(), &record.views, &FORMAT)
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
