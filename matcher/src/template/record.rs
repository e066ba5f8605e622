//! What the ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004 finger minutiae records share: the
//! finger view (4-byte view header, 6-byte minutiae, extended data block) and the conversion
//! between record units and [`Fingerprint`].
//!
//! Both standards lay out a finger view the same way (ISO/IEC 19794-2:2005 §7.4-7.6,
//! ANSI INCITS 378-2004 §6.5):
//!
//! | bytes | field |
//! |---|---|
//! | 1 | finger position (0 unknown, 1-10 right thumb .. left little) |
//! | 1 | view number (high 4 bits), impression type (low 4 bits) |
//! | 1 | finger quality 0-100 |
//! | 1 | number of minutiae N |
//! | 6·N | minutiae: 2-bit type + 14-bit x; 2 reserved bits + 14-bit y; angle; quality |
//! | 2 | extended data block length L (0: none) |
//! | L | extended data areas: type id (2), area length (2, including these 4 bytes), data |
//!
//! The only difference is the angle unit: 360/256 degrees in ISO, 2 degrees (0-179) in ANSI.

use super::reader::Reader;
use crate::{Error, Fingerprint, Minutia, MinutiaKind};
use std::f32::consts::TAU;

/// Largest finger position code of the 2005 standards (10: left little finger).
pub const MAX_FINGER_POSITION: u8 = 10;
/// Most minutiae one view can hold: the count is one byte.
pub const MAX_MINUTIAE_PER_VIEW: usize = 255;
/// Most finger views a record may hold: 11 finger positions x 16 view numbers.
pub const MAX_VIEWS: usize = 176;
/// Lowest accepted resolution in pixels per centimetre (99 px/cm = 251 dpi); below this no
/// minutiae can be extracted reliably, so such a header is taken to be corrupt.
pub const MIN_RESOLUTION_PX_PER_CM: u16 = 99;
/// Highest accepted resolution in pixels per centimetre (1969 px/cm = 5000 dpi).
pub const MAX_RESOLUTION_PX_PER_CM: u16 = 1969;
/// Largest coordinate a record minutia can carry (14 bits).
pub const MAX_COORDINATE: u16 = 0x3fff;
/// Bytes of one record minutia.
pub(crate) const MINUTIA_LEN: usize = 6;
/// Bytes of a view header (position, view/impression, quality, count).
pub(crate) const VIEW_HEADER_LEN: usize = 4;
/// Bytes of an extended data area header (type id, length).
const AREA_HEADER_LEN: usize = 4;

/// Impression types of ISO/IEC 19794-2:2005 Table 2 and ANSI INCITS 378-2004 Table 3:
/// live-scan plain (0), live-scan rolled (1), non-live plain (2), non-live rolled (3), swipe (8).
const IMPRESSION_TYPES: [u8; 5] = [0, 1, 2, 3, 8];

/// One minutia as stored in a record, in the record's own units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMinutia {
    /// Ending, bifurcation or other (type bits 01, 10, 00; 11 is reserved and rejected).
    pub kind: MinutiaKind,
    /// Column in pixels (14 bits), less than the record's image width.
    pub x: u16,
    /// Row in pixels (14 bits), less than the record's image height.
    pub y: u16,
    /// Direction in the record's angle unit (ISO: 360/256 degrees; ANSI: 2 degrees, 0-179).
    pub angle: u8,
    /// Minutia quality 0-100 (0: not reported).
    pub quality: u8,
}

/// One extended data area of a view, kept raw so that records round-trip byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtendedArea {
    /// Area type: 1 ridge count data, 2 core and delta data, others vendor-defined.
    pub type_id: u16,
    /// The area's data, without its 4-byte header.
    pub data: Vec<u8>,
}

/// One finger view of a record: the minutiae of one impression of one finger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerView {
    /// Finger position code: 0 unknown, 1-5 right thumb to little, 6-10 left thumb to little.
    pub finger_position: u8,
    /// View number 0-15, distinguishing several impressions of the same finger.
    pub view_number: u8,
    /// Impression type: 0 live-scan plain, 1 live-scan rolled, 2/3 non-live, 8 swipe.
    pub impression_type: u8,
    /// Finger quality 0-100.
    pub quality: u8,
    /// The minutiae (zero is allowed: the standards permit a view without minutiae).
    pub minutiae: Vec<RecordMinutia>,
    /// Extended data (ridge counts, core and delta, vendor data), kept raw.
    pub extended: Vec<ExtendedArea>,
}

/// Fields of the record header needed to validate and convert views.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Geometry {
    /// Image width in pixels.
    pub width: u16,
    /// Image height in pixels.
    pub height: u16,
    /// Horizontal resolution, pixels per centimetre.
    pub x_resolution: u16,
    /// Vertical resolution, pixels per centimetre.
    pub y_resolution: u16,
}

/// The unit of minutia angles, the one thing in a view that differs between the two records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AngleUnit {
    /// ISO/IEC 19794-2:2005: 256 units per circle.
    Iso256,
    /// ANSI INCITS 378-2004: 2-degree units, 0-179.
    Ansi2Deg,
}

impl AngleUnit {
    /// Converts a stored angle to radians in [0, 2π).
    pub(crate) fn to_radians(self, angle: u8) -> f32 {
        match self {
            AngleUnit::Iso256 => f32::from(angle) * (TAU / 256.0),
            AngleUnit::Ansi2Deg => f32::from(angle) * (2.0f32).to_radians(),
        }
    }

    /// Converts radians to the nearest stored angle, wrapping at the full circle.
    pub(crate) fn units_from_radians(self, direction: f32) -> Result<u8, Error> {
        if !direction.is_finite() {
            return Err(Error::Encode(format!(
                "minutia direction {direction} is not a finite number"
            )));
        }
        let steps = match self {
            AngleUnit::Iso256 => 256.0,
            AngleUnit::Ansi2Deg => 180.0,
        };
        let turns = (direction / TAU).rem_euclid(1.0);
        let units = (turns * steps).round() as u32 % steps as u32;
        Ok(u8::try_from(units).unwrap_or(0))
    }
}

/// Decodes the 2-bit minutia type of ISO/IEC 19794-2 and ANSI INCITS 378.
pub(crate) fn kind_from_bits(bits: u16) -> Option<MinutiaKind> {
    match bits {
        0 => Some(MinutiaKind::Other),
        1 => Some(MinutiaKind::Ending),
        2 => Some(MinutiaKind::Bifurcation),
        _ => None,
    }
}

/// Encodes a minutia kind as its 2-bit type code.
pub(crate) fn kind_bits(kind: MinutiaKind) -> u16 {
    match kind {
        MinutiaKind::Other => 0,
        MinutiaKind::Ending => 1,
        MinutiaKind::Bifurcation => 2,
    }
}

/// Reads one finger view, validating every field against the header.
pub(crate) fn read_view(
    r: &mut Reader<'_>,
    g: Geometry,
    unit: AngleUnit,
) -> Result<FingerView, Error> {
    let start = r.pos();
    let finger_position = r.u8("finger position")?;
    if finger_position > MAX_FINGER_POSITION {
        return Err(r.error_at(
            start,
            format_args!("finger position {finger_position} is not a code 0-10"),
        ));
    }
    let view_impression = r.u8("view number and impression type")?;
    let view_number = view_impression >> 4;
    let impression_type = view_impression & 0x0f;
    if !IMPRESSION_TYPES.contains(&impression_type) {
        return Err(r.error_at(
            start + 1,
            format_args!("impression type {impression_type} is reserved"),
        ));
    }
    let quality = r.u8("finger quality")?;
    if quality > 100 {
        return Err(r.error_at(
            start + 2,
            format_args!("finger quality {quality} exceeds 100"),
        ));
    }
    let count = usize::from(r.u8("minutiae count")?);
    // Check the remaining length before allocating for an untrusted count.
    let needed = count * MINUTIA_LEN + 2;
    if needed > r.remaining() {
        return Err(r.error_at(
            start + 3,
            format_args!(
                "{count} minutiae need {needed} bytes (with the extended data length) but only {} remain",
                r.remaining()
            ),
        ));
    }
    let mut minutiae = Vec::with_capacity(count);
    for i in 0..count {
        minutiae.push(read_minutia(r, g, unit, i)?);
    }
    let ext_at = r.pos();
    let ext_len = usize::from(r.u16("extended data block length")?);
    if ext_len > r.remaining() {
        return Err(r.error_at(
            ext_at,
            format_args!(
                "extended data block of {ext_len} bytes exceeds the {} bytes remaining",
                r.remaining()
            ),
        ));
    }
    let block_at = r.pos();
    let block = r.take(ext_len, "extended data block")?;
    let extended = read_extended(r, block, block_at)?;
    Ok(FingerView {
        finger_position,
        view_number,
        impression_type,
        quality,
        minutiae,
        extended,
    })
}

/// Reads one 6-byte record minutia.
fn read_minutia(
    r: &mut Reader<'_>,
    g: Geometry,
    unit: AngleUnit,
    index: usize,
) -> Result<RecordMinutia, Error> {
    let at = r.pos();
    let tx = r.u16("minutia type and x")?;
    let kind = kind_from_bits(tx >> 14).ok_or_else(|| {
        r.error_at(
            at,
            format_args!("minutia {index} has the reserved type code 11"),
        )
    })?;
    let x = tx & MAX_COORDINATE;
    let ry = r.u16("minutia y")?;
    if ry >> 14 != 0 {
        return Err(r.error_at(
            at + 2,
            format_args!("minutia {index} has non-zero reserved bits above y"),
        ));
    }
    let y = ry & MAX_COORDINATE;
    if x >= g.width || y >= g.height {
        return Err(r.error_at(
            at,
            format_args!(
                "minutia {index} at ({x}, {y}) lies outside the {}x{} image",
                g.width, g.height
            ),
        ));
    }
    let angle = r.u8("minutia angle")?;
    if unit == AngleUnit::Ansi2Deg && angle >= 180 {
        return Err(r.error_at(
            at + 4,
            format_args!("minutia {index} angle {angle} exceeds 179 (2-degree units)"),
        ));
    }
    let quality = r.u8("minutia quality")?;
    if quality > 100 {
        return Err(r.error_at(
            at + 5,
            format_args!("minutia {index} quality {quality} exceeds 100"),
        ));
    }
    Ok(RecordMinutia {
        kind,
        x,
        y,
        angle,
        quality,
    })
}

/// Splits an extended data block into its areas.
///
/// Each area is a 2-byte type id, a 2-byte length and the data. NBIS (NIST biomdi) and ANSI
/// INCITS 378-2004 count the 4 header bytes in the area length; some ISO/IEC 19794-2:2005
/// writers (FingerprintIO, for one) do not. The block is read with the inclusive convention
/// first and, only if that does not tile the block exactly, with the exclusive one; writing always
/// uses the inclusive convention.
fn read_extended(
    r: &Reader<'_>,
    block: &[u8],
    block_at: usize,
) -> Result<Vec<ExtendedArea>, Error> {
    if block.is_empty() {
        return Ok(Vec::new());
    }
    match split_areas(block, true) {
        Ok(areas) => Ok(areas),
        Err((offset, message)) => {
            split_areas(block, false).map_err(|_| r.error_at(block_at + offset, message))
        }
    }
}

/// Splits `block` into areas; on failure returns the offset within the block and the problem.
fn split_areas(
    block: &[u8],
    length_includes_header: bool,
) -> Result<Vec<ExtendedArea>, (usize, String)> {
    let mut areas = Vec::new();
    let mut pos = 0usize;
    while pos < block.len() {
        let header = block
            .get(pos..pos + AREA_HEADER_LEN)
            .ok_or_else(|| (pos, "extended data area header is truncated".to_string()))?;
        let type_id = u16::from_be_bytes([header[0], header[1]]);
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if type_id == 0 {
            return Err((
                pos,
                "extended data area has the reserved type id 0".to_string(),
            ));
        }
        let data_len = if length_includes_header {
            length.checked_sub(AREA_HEADER_LEN).ok_or_else(|| {
                (
                    pos + 2,
                    format!("extended data area length {length} is shorter than its header"),
                )
            })?
        } else {
            length
        };
        let data_start = pos + AREA_HEADER_LEN;
        let data = block
            .get(data_start..data_start + data_len)
            .ok_or_else(|| {
                (
                    pos + 2,
                    format!(
                        "extended data area of {length} bytes overruns the block ({} bytes left)",
                        block.len() - pos
                    ),
                )
            })?;
        areas.push(ExtendedArea {
            type_id,
            data: data.to_vec(),
        });
        pos = data_start + data_len;
    }
    Ok(areas)
}

/// Appends one finger view; the caller has validated counts and sizes with [`check_view`].
pub(crate) fn write_view(out: &mut Vec<u8>, view: &FingerView) {
    out.push(view.finger_position);
    out.push((view.view_number << 4) | (view.impression_type & 0x0f));
    out.push(view.quality);
    out.push(u8::try_from(view.minutiae.len()).unwrap_or(u8::MAX));
    for m in &view.minutiae {
        out.extend_from_slice(&((kind_bits(m.kind) << 14) | (m.x & MAX_COORDINATE)).to_be_bytes());
        out.extend_from_slice(&(m.y & MAX_COORDINATE).to_be_bytes());
        out.push(m.angle);
        out.push(m.quality);
    }
    let ext_len: usize = view
        .extended
        .iter()
        .map(|a| a.data.len() + AREA_HEADER_LEN)
        .sum();
    out.extend_from_slice(&u16::try_from(ext_len).unwrap_or(u16::MAX).to_be_bytes());
    for area in &view.extended {
        out.extend_from_slice(&area.type_id.to_be_bytes());
        let len = u16::try_from(area.data.len() + AREA_HEADER_LEN).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&area.data);
    }
}

/// Checks that a view can be written (every field fits its bits and lies inside the image) and
/// returns its encoded size.
pub(crate) fn check_view(
    view: &FingerView,
    index: usize,
    g: Geometry,
    unit: AngleUnit,
) -> Result<usize, Error> {
    let fail = |what: String| Err(Error::Encode(format!("view {index}: {what}")));
    if view.finger_position > MAX_FINGER_POSITION {
        return fail(format!(
            "finger position {} is not a code 0-10",
            view.finger_position
        ));
    }
    if view.view_number > 15 {
        return fail(format!("view number {} exceeds 15", view.view_number));
    }
    if !IMPRESSION_TYPES.contains(&view.impression_type) {
        return fail(format!(
            "impression type {} is reserved",
            view.impression_type
        ));
    }
    if view.quality > 100 {
        return fail(format!("finger quality {} exceeds 100", view.quality));
    }
    if view.minutiae.len() > MAX_MINUTIAE_PER_VIEW {
        return fail(format!(
            "{} minutiae exceed the record limit of {MAX_MINUTIAE_PER_VIEW}",
            view.minutiae.len()
        ));
    }
    for (i, m) in view.minutiae.iter().enumerate() {
        if m.x >= g.width || m.y >= g.height || m.x > MAX_COORDINATE || m.y > MAX_COORDINATE {
            return fail(format!(
                "minutia {i} at ({}, {}) lies outside the {}x{} image or the 14-bit range",
                m.x, m.y, g.width, g.height
            ));
        }
        if unit == AngleUnit::Ansi2Deg && m.angle >= 180 {
            return fail(format!("minutia {i} angle {} exceeds 179", m.angle));
        }
        if m.quality > 100 {
            return fail(format!("minutia {i} quality {} exceeds 100", m.quality));
        }
    }
    let mut ext_len = 0usize;
    for area in &view.extended {
        if area.type_id == 0 {
            return fail("extended data area has the reserved type id 0".to_string());
        }
        if area.data.len() + AREA_HEADER_LEN > usize::from(u16::MAX) {
            return fail(format!(
                "extended data area of {} bytes exceeds 16-bit length",
                area.data.len()
            ));
        }
        ext_len += area.data.len() + AREA_HEADER_LEN;
    }
    if ext_len > usize::from(u16::MAX) {
        return fail(format!(
            "extended data block of {ext_len} bytes exceeds 16-bit length"
        ));
    }
    Ok(VIEW_HEADER_LEN + view.minutiae.len() * MINUTIA_LEN + 2 + ext_len)
}

/// Pixels per centimetre from dots per inch, rounded: 500 dpi -> 197 px/cm.
pub fn px_per_cm_from_dpi(dpi: u32) -> u32 {
    ((f64::from(dpi) / 2.54).round()) as u32
}

/// Dots per inch from pixels per centimetre, rounded: 197 px/cm -> 500 dpi.
pub fn dpi_from_px_per_cm(px_per_cm: u16) -> u32 {
    ((f64::from(px_per_cm) * 2.54).round()) as u32
}

/// Converts one view of a record to the in-memory [`Fingerprint`].
pub(crate) fn view_to_fingerprint(view: &FingerView, g: Geometry, unit: AngleUnit) -> Fingerprint {
    Fingerprint {
        width: u32::from(g.width),
        height: u32::from(g.height),
        dpi_x: dpi_from_px_per_cm(g.x_resolution),
        dpi_y: dpi_from_px_per_cm(g.y_resolution),
        quality: view.quality,
        minutiae: view
            .minutiae
            .iter()
            .map(|m| Minutia {
                x: f32::from(m.x),
                y: f32::from(m.y),
                direction: unit.to_radians(m.angle),
                kind: m.kind,
                quality: m.quality,
            })
            .collect(),
    }
}

/// Header geometry for a fingerprint: image size and resolution in record units.
pub(crate) fn geometry_of(fp: &Fingerprint) -> Result<Geometry, Error> {
    let side = |v: u32, name: &str| {
        u16::try_from(v)
            .ok()
            .filter(|&v| v > 0)
            .ok_or_else(|| Error::Encode(format!("image {name} {v} is not in 1-65535")))
    };
    let res = |dpi: u32, name: &str| {
        u16::try_from(px_per_cm_from_dpi(dpi))
            .ok()
            .filter(|r| (MIN_RESOLUTION_PX_PER_CM..=MAX_RESOLUTION_PX_PER_CM).contains(r))
            .ok_or_else(|| {
                Error::Encode(format!(
                    "{name} resolution {dpi} dpi is outside the plausible range \
                     {}-{} dpi",
                    dpi_from_px_per_cm(MIN_RESOLUTION_PX_PER_CM),
                    dpi_from_px_per_cm(MAX_RESOLUTION_PX_PER_CM)
                ))
            })
    };
    Ok(Geometry {
        width: side(fp.width, "width")?,
        height: side(fp.height, "height")?,
        x_resolution: res(fp.dpi_x, "horizontal")?,
        y_resolution: res(fp.dpi_y, "vertical")?,
    })
}

/// Rounds a pixel coordinate to the record's integer grid, keeping it inside `0..size`.
fn pixel(v: f32, size: u16, what: &str, index: usize) -> Result<u16, Error> {
    if !v.is_finite() || v < 0.0 || v >= f32::from(size) {
        return Err(Error::Encode(format!(
            "minutia {index} {what} {v} lies outside 0..{size}"
        )));
    }
    let p = (v.round() as u32).min(u32::from(size) - 1);
    u16::try_from(p)
        .ok()
        .filter(|&p| p <= MAX_COORDINATE)
        .ok_or_else(|| {
            Error::Encode(format!(
                "minutia {index} {what} {v} exceeds the 14-bit coordinate range"
            ))
        })
}

/// Builds a view (finger position given, view 0, live-scan plain) from a fingerprint.
pub(crate) fn view_from_fingerprint(
    fp: &Fingerprint,
    finger_position: u8,
    g: Geometry,
    unit: AngleUnit,
) -> Result<FingerView, Error> {
    if fp.quality > 100 {
        return Err(Error::Encode(format!(
            "finger quality {} exceeds 100",
            fp.quality
        )));
    }
    if fp.minutiae.len() > MAX_MINUTIAE_PER_VIEW {
        return Err(Error::Encode(format!(
            "{} minutiae exceed the record limit of {MAX_MINUTIAE_PER_VIEW} per view",
            fp.minutiae.len()
        )));
    }
    let mut minutiae = Vec::with_capacity(fp.minutiae.len());
    for (i, m) in fp.minutiae.iter().enumerate() {
        if m.quality > 100 {
            return Err(Error::Encode(format!(
                "minutia {i} quality {} exceeds 100",
                m.quality
            )));
        }
        minutiae.push(RecordMinutia {
            kind: m.kind,
            x: pixel(m.x, g.width, "x", i)?,
            y: pixel(m.y, g.height, "y", i)?,
            angle: unit.units_from_radians(m.direction)?,
            quality: m.quality,
        });
    }
    Ok(FingerView {
        finger_position,
        view_number: 0,
        impression_type: 0,
        quality: fp.quality,
        minutiae,
        extended: Vec::new(),
    })
}

/// Checks the views of a record before writing and returns their total encoded size.
pub(crate) fn check_views(
    views: &[FingerView],
    g: Geometry,
    unit: AngleUnit,
) -> Result<usize, Error> {
    if views.is_empty() {
        return Err(Error::Encode(
            "a record needs at least one finger view".into(),
        ));
    }
    if views.len() > MAX_VIEWS {
        return Err(Error::Encode(format!(
            "{} views exceed the limit of {MAX_VIEWS}",
            views.len()
        )));
    }
    let mut total = 0usize;
    for (i, v) in views.iter().enumerate() {
        total += check_view(v, i, g, unit)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn angle_units_round_trip_and_wrap() {
        for a in 0..=255u8 {
            let rad = AngleUnit::Iso256.to_radians(a);
            assert_eq!(AngleUnit::Iso256.units_from_radians(rad).unwrap(), a);
        }
        for a in 0..180u8 {
            let rad = AngleUnit::Ansi2Deg.to_radians(a);
            assert_eq!(AngleUnit::Ansi2Deg.units_from_radians(rad).unwrap(), a);
        }
        // Just below a full turn rounds to 0, negative angles wrap.
        assert_eq!(
            AngleUnit::Iso256.units_from_radians(TAU - 0.001).unwrap(),
            0
        );
        assert_eq!(
            AngleUnit::Ansi2Deg
                .units_from_radians(-(2f32).to_radians())
                .unwrap(),
            179
        );
        assert!(AngleUnit::Iso256.units_from_radians(f32::NAN).is_err());
    }

    #[test]
    fn resolution_conversions_match_the_shared_files() {
        assert_eq!(px_per_cm_from_dpi(500), 197);
        assert_eq!(dpi_from_px_per_cm(197), 500);
        assert_eq!(px_per_cm_from_dpi(512), 202);
    }

    #[test]
    fn extended_areas_accept_both_length_conventions() {
        // Inclusive: type 2, length 6 (4 header + 2 data).
        let inclusive = [0, 2, 0, 6, 0xaa, 0xbb];
        let areas = split_areas(&inclusive, true).unwrap();
        assert_eq!(
            areas,
            vec![ExtendedArea {
                type_id: 2,
                data: vec![0xaa, 0xbb]
            }]
        );
        // Exclusive: type 2, length 2.
        let exclusive = [0, 2, 0, 2, 0xaa, 0xbb];
        assert!(split_areas(&exclusive, true).is_err());
        assert_eq!(split_areas(&exclusive, false).unwrap(), areas);
        assert!(split_areas(&[0, 0, 0, 4], true).is_err());
    }
}
