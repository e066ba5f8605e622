//! One codec for the two finger minutiae records ("FMR"), ISO/IEC 19794-2:2005 §7 and
//! ANSI INCITS 378-2004 §6, with what differs between them as data: [`ISO_19794_2_2005`] and
//! [`ANSI_378_2004`]. The header layouts and what is validated are in [the module
//! overview](super).

use super::reader::{invalid, Reader};
use super::record::{
    check_views, geometry_of, read_view, view_from_fingerprint, write_view, AngleUnit, FingerView,
    Geometry, MAX_RESOLUTION_PX_PER_CM, MAX_VIEWS, MIN_RESOLUTION_PX_PER_CM, VIEW_HEADER_LEN,
};
use crate::{Error, Fingerprint};

/// Format identifier shared by ISO/IEC 19794-2:2005 and ANSI INCITS 378-2004.
pub const MAGIC: &[u8; 4] = b"FMR\0";
/// Version of the 2005 ISO record, also used by ANSI 378-2004.
pub const VERSION: &[u8; 4] = b" 20\0";

/// Fewest bytes a finger view takes: its header and the extended data block length.
const MIN_VIEW_LEN: usize = VIEW_HEADER_LEN + 2;

/// What differs between the ISO and the ANSI record.
#[derive(Debug)]
pub(crate) struct RecordFormat {
    /// Name of the format, the prefix of every error message.
    pub name: &'static str,
    /// Edition named when the version does not match.
    pub edition: &'static str,
    /// Bytes of the record length field: 4, or 2 where 0x0000 followed by 4 bytes is the long
    /// form for records over 65535 bytes.
    pub length_len: usize,
    /// Whether the header holds a CBEFF product identifier after the record length.
    pub product_id: bool,
    /// Unit of the minutia angles.
    pub angle: AngleUnit,
}

/// ISO/IEC 19794-2:2005 finger minutiae record.
pub(crate) const ISO_19794_2_2005: RecordFormat = RecordFormat {
    name: "ISO/IEC 19794-2:2005 record",
    edition: "2005 edition",
    length_len: 4,
    product_id: false,
    angle: AngleUnit::Iso256,
};

/// ANSI INCITS 378-2004 finger minutiae record.
pub(crate) const ANSI_378_2004: RecordFormat = RecordFormat {
    name: "ANSI INCITS 378-2004 record",
    edition: "2004 edition",
    length_len: 2,
    product_id: true,
    angle: AngleUnit::Ansi2Deg,
};

impl RecordFormat {
    /// Size of the header (with the short length form where there are two).
    pub(crate) const fn header_len(&self) -> usize {
        // Magic and version (8), length, product id, capture equipment to reserved byte (12).
        8 + self.length_len + if self.product_id { 4 } else { 0 } + 12
    }
}

/// The header fields of either record but its length, which follows from the content.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Header {
    /// CBEFF product identifier owner; 0 and not written where the format has none.
    pub product_owner: u16,
    /// CBEFF product identifier type; 0 and not written where the format has none.
    pub product_type: u16,
    /// Capture equipment: 4-bit compliance and 12-bit device id, kept as stored.
    pub capture_equipment: u16,
    /// Image size and resolution.
    pub geometry: Geometry,
}

/// Decodes and validates a record of format `f`.
pub(crate) fn decode(bytes: &[u8], f: &RecordFormat) -> Result<(Header, Vec<FingerView>), Error> {
    let header_len = f.header_len();
    if bytes.len() < header_len {
        return Err(invalid(
            f.name,
            bytes.len(),
            format_args!(
                "truncated: {} bytes cannot hold the {header_len}-byte header",
                bytes.len()
            ),
        ));
    }
    let mut r = Reader::new(bytes, f.name);
    if r.take(4, "format identifier")? != MAGIC {
        return Err(r.error_at(0, "format identifier is not \"FMR\\0\""));
    }
    if r.take(4, "version")? != VERSION {
        return Err(r.error_at(4, format_args!("version is not \" 20\\0\" ({})", f.edition)));
    }
    let length = if f.length_len == 2 {
        match r.u16("record length")? {
            0 => u64::from(r.u32("long record length")?),
            short => u64::from(short),
        }
    } else {
        u64::from(r.u32("record length")?)
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
    let (product_owner, product_type) = if f.product_id {
        (r.u16("CBEFF product owner")?, r.u16("CBEFF product type")?)
    } else {
        (0, 0)
    };
    let capture_equipment = r.u16("capture equipment")?;
    let geometry_at = r.pos();
    let g = Geometry {
        width: r.u16("image width")?,
        height: r.u16("image height")?,
        x_resolution: r.u16("horizontal resolution")?,
        y_resolution: r.u16("vertical resolution")?,
    };
    validate_geometry(&r, g, geometry_at)?;
    let count_at = r.pos();
    let view_count = usize::from(r.u8("number of finger views")?);
    if view_count == 0 || view_count > MAX_VIEWS {
        return Err(r.error_at(
            count_at,
            format_args!("number of finger views {view_count} is not in 1-{MAX_VIEWS}"),
        ));
    }
    if r.u8("reserved byte")? != 0 {
        return Err(r.error_at(count_at + 1, "reserved byte is not zero"));
    }
    // Refuse absurd counts before allocating.
    if view_count * MIN_VIEW_LEN > r.remaining() {
        return Err(r.error_at(
            count_at,
            format_args!(
                "{view_count} finger views cannot fit in the {} bytes that remain",
                r.remaining()
            ),
        ));
    }
    let mut views = Vec::with_capacity(view_count);
    for _ in 0..view_count {
        views.push(read_view(&mut r, g, f.angle)?);
    }
    if r.remaining() != 0 {
        return Err(r.error_at(
            r.pos(),
            format_args!("{} trailing bytes after the last view", r.remaining()),
        ));
    }
    let header = Header {
        product_owner,
        product_type,
        capture_equipment,
        geometry: g,
    };
    Ok((header, views))
}

/// Encodes a record of format `f`; fails with [`Error::Encode`] on anything it cannot hold.
/// The ANSI long length form is used only when the record exceeds 65535 bytes.
pub(crate) fn encode(
    header: &Header,
    views: &[FingerView],
    f: &RecordFormat,
) -> Result<Vec<u8>, Error> {
    let g = header.geometry;
    if g.width == 0 || g.height == 0 {
        return Err(Error::Encode(format!(
            "image size {}x{} has a zero side",
            g.width, g.height
        )));
    }
    let body = check_views(views, g, f.angle)?;
    let mut out = Vec::with_capacity(f.header_len() + body + 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(VERSION);
    write_length(&mut out, f, f.header_len() + body)?;
    if f.product_id {
        out.extend_from_slice(&header.product_owner.to_be_bytes());
        out.extend_from_slice(&header.product_type.to_be_bytes());
    }
    for v in [
        header.capture_equipment,
        g.width,
        g.height,
        g.x_resolution,
        g.y_resolution,
    ] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.push(u8::try_from(views.len()).unwrap_or(u8::MAX));
    out.push(0);
    for view in views {
        write_view(&mut out, view);
    }
    Ok(out)
}

/// Appends the length field of a record of `total` bytes, counted with a 2-byte field where
/// the format has the short form.
fn write_length(out: &mut Vec<u8>, f: &RecordFormat, mut total: usize) -> Result<(), Error> {
    if f.length_len == 2 {
        if let Ok(short) = u16::try_from(total) {
            out.extend_from_slice(&short.to_be_bytes());
            return Ok(());
        }
        out.extend_from_slice(&[0, 0]);
        total += 4;
    }
    let length = u32::try_from(total)
        .map_err(|_| Error::Encode(format!("record of {total} bytes exceeds 32-bit length")))?;
    out.extend_from_slice(&length.to_be_bytes());
    Ok(())
}

/// Checks the image size and resolution of a record header whose width is at `offset`.
fn validate_geometry(r: &Reader<'_>, g: Geometry, offset: usize) -> Result<(), Error> {
    if g.width == 0 || g.height == 0 {
        return Err(r.error_at(
            offset,
            format_args!("image size {}x{} has a zero side", g.width, g.height),
        ));
    }
    for (name, res, at) in [
        ("horizontal", g.x_resolution, offset + 4),
        ("vertical", g.y_resolution, offset + 6),
    ] {
        if !(MIN_RESOLUTION_PX_PER_CM..=MAX_RESOLUTION_PX_PER_CM).contains(&res) {
            return Err(r.error_at(
                at,
                format_args!(
                    "{name} resolution {res} px/cm is outside the plausible range \
                     {MIN_RESOLUTION_PX_PER_CM}-{MAX_RESOLUTION_PX_PER_CM} px/cm"
                ),
            ));
        }
    }
    Ok(())
}

/// The header of a new record of `fp` (no product identifier, no capture equipment) and its one
/// view (view 0, live-scan plain) for the given finger position.
pub(crate) fn one_view(
    fp: &Fingerprint,
    finger_position: u8,
    f: &RecordFormat,
) -> Result<(Header, FingerView), Error> {
    let geometry = geometry_of(fp)?;
    let view = view_from_fingerprint(fp, finger_position, geometry, f.angle)?;
    let header = Header {
        geometry,
        ..Header::default()
    };
    Ok((header, view))
}
