//! ISO/IEC 19794-2:2005 card formats (§8): the normal size and compact size finger minutiae
//! formats stored on smart cards for match-on-card.
//!
//! Card formats carry no header: the minutiae count follows from the data length and the
//! resolution is fixed by the unit, so a decoder is given the dpi at which to express the
//! coordinates, and the image size is not known (see [`decode_normal`]). Layouts, big-endian,
//! as in ISO/IEC 19794-2:2005 §8 and NIST biomdi (NBIS `fmd.c`, `ansi2iso.c`, `ISONC`/`ISOCC`):
//!
//! * normal size, 5 bytes per minutia: 2-bit type + 14-bit x; 2 reserved bits + 14-bit y; angle
//!   (1 byte, 360/256 degrees). Coordinates in units of 0.01 mm. No minutia quality.
//! * compact size, 3 bytes per minutia: x (1 byte), y (1 byte), both in units of 0.1 mm (so at
//!   most 25.5 mm); then 2-bit type in the high bits + 6-bit angle (360/64 = 5.625 degrees).
//!
//! Type codes are those of the record: 01 ridge ending, 10 bifurcation, 00 other, 11 reserved.
//!
//! Encoding, as the card formats require:
//! 1. coordinates are converted from pixels to the card unit using the fingerprint's dpi;
//! 2. if the minutiae do not fit the format's coordinate range at the image origin (the compact
//!    range is 25.5 mm, about 502 px at 500 dpi), every minutia is shifted by the same whole
//!    number of units, chosen so that the window keeps the largest summed minutia quality
//!    (ties: the shift nearest to centring their bounding box, the choice before issue 19), and
//!    those still outside are dropped; comparison is translation-invariant, but decoded
//!    coordinates are then offset from the original image's;
//! 3. at most `max_minutiae` are kept, the highest-quality ones (ties: earlier first);
//! 4. they are sorted by y, then x, ascending: §8 lets a card declare its minutiae order, and
//!    this is the one NBIS calls the Cartesian y-x option;
//! 5. in the compact layout, a minutia whose quality is reported and below
//!    [`UNTYPED_CARD_MINUTIA_QUALITY`] is written with the type "other" (00): the layout cannot
//!    say it is doubtful otherwise, and its type is what it is least sure of (readers weigh
//!    such minutiae less, see `compare::prepare_stored`).

use super::reader::invalid;
use super::record::{kind_bits, kind_from_bits, MAX_COORDINATE};
use crate::params::UNTYPED_CARD_MINUTIA_QUALITY;
use crate::{Error, Fingerprint, Minutia, MinutiaKind};
use std::f32::consts::TAU;

/// Bytes per minutia in the normal size card format.
pub const NORMAL_MINUTIA_LEN: usize = 5;
/// Bytes per minutia in the compact size card format.
pub const COMPACT_MINUTIA_LEN: usize = 3;
/// Millimetres per coordinate unit in the normal size card format.
pub const NORMAL_UNIT_MM: f64 = 0.01;
/// Millimetres per coordinate unit in the compact size card format.
pub const COMPACT_UNIT_MM: f64 = 0.1;
/// Minutiae kept by default when writing a card template. A card announces its own maximum in
/// its biometric algorithm parameters (ISO/IEC 7816-11); 60 is a common match-on-card limit.
pub const DEFAULT_MAX_CARD_MINUTIAE: usize = 60;
/// Lowest dpi accepted to express card coordinates (as for records: 99 px/cm).
pub const MIN_DPI: u32 = 251;
/// Highest dpi accepted to express card coordinates (as for records: 1969 px/cm).
pub const MAX_DPI: u32 = 5001;

/// The two headerless card layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    Normal,
    Compact,
}

impl Layout {
    fn name(self) -> &'static str {
        match self {
            Layout::Normal => "ISO/IEC 19794-2:2005 normal size card template",
            Layout::Compact => "ISO/IEC 19794-2:2005 compact size card template",
        }
    }
    fn unit_mm(self) -> f64 {
        match self {
            Layout::Normal => NORMAL_UNIT_MM,
            Layout::Compact => COMPACT_UNIT_MM,
        }
    }
    fn minutia_len(self) -> usize {
        match self {
            Layout::Normal => NORMAL_MINUTIA_LEN,
            Layout::Compact => COMPACT_MINUTIA_LEN,
        }
    }
    fn max_coordinate(self) -> u16 {
        match self {
            Layout::Normal => MAX_COORDINATE,
            Layout::Compact => u16::from(u8::MAX),
        }
    }
    fn angle_steps(self) -> u32 {
        match self {
            Layout::Normal => 256,
            Layout::Compact => 64,
        }
    }
}

/// Encodes `fp` in the normal size card format, keeping at most `max_minutiae`.
pub fn encode_normal(fp: &Fingerprint, max_minutiae: usize) -> Result<Vec<u8>, Error> {
    encode(fp, max_minutiae, Layout::Normal)
}

/// Encodes `fp` in the compact size card format, keeping at most `max_minutiae`.
pub fn encode_compact(fp: &Fingerprint, max_minutiae: usize) -> Result<Vec<u8>, Error> {
    encode(fp, max_minutiae, Layout::Compact)
}

/// Decodes a normal size card template, expressing coordinates as pixels at `dpi`.
///
/// The card holds no image size or quality: the result's width and height are the smallest that
/// contain every minutia (max coordinate + 1), its quality and every minutia's quality are 0
/// (not reported). An empty template, a length that is not a multiple of 5, more than
/// `max_minutiae` minutiae, a reserved type code or non-zero reserved bits are
/// [`Error::InvalidTemplate`].
pub fn decode_normal(bytes: &[u8], dpi: u32, max_minutiae: usize) -> Result<Fingerprint, Error> {
    decode(bytes, dpi, max_minutiae, Layout::Normal)
}

/// Decodes a compact size card template, expressing coordinates as pixels at `dpi`.
///
/// Same conventions and checks as [`decode_normal`], with 3-byte minutiae.
pub fn decode_compact(bytes: &[u8], dpi: u32, max_minutiae: usize) -> Result<Fingerprint, Error> {
    decode(bytes, dpi, max_minutiae, Layout::Compact)
}

/// One minutia on its way to the card, in card units.
struct Candidate {
    x: f64,
    y: f64,
    angle: u8,
    kind: MinutiaKind,
    quality: u8,
    index: usize,
}

fn check_dpi(dpi: u32, what: &str) -> Result<(), String> {
    if (MIN_DPI..=MAX_DPI).contains(&dpi) {
        Ok(())
    } else {
        Err(format!(
            "{what} {dpi} dpi is outside the plausible range {MIN_DPI}-{MAX_DPI}"
        ))
    }
}

fn encode(fp: &Fingerprint, max_minutiae: usize, layout: Layout) -> Result<Vec<u8>, Error> {
    let fail = |m: String| Error::Encode(format!("{}: {m}", layout.name()));
    check_dpi(fp.dpi_x, "horizontal resolution").map_err(fail)?;
    check_dpi(fp.dpi_y, "vertical resolution").map_err(fail)?;
    if max_minutiae == 0 {
        return Err(fail(
            "a card template needs room for at least one minutia".into(),
        ));
    }
    let unit = layout.unit_mm();
    let steps = layout.angle_steps();
    let mut cands = Vec::with_capacity(fp.minutiae.len());
    for (i, m) in fp.minutiae.iter().enumerate() {
        if !(m.x.is_finite() && m.y.is_finite() && m.x >= 0.0 && m.y >= 0.0) {
            return Err(fail(format!(
                "minutia {i} position ({}, {}) is not a non-negative pixel position",
                m.x, m.y
            )));
        }
        if !m.direction.is_finite() {
            return Err(fail(format!("minutia {i} direction is not finite")));
        }
        if m.quality > 100 {
            return Err(fail(format!(
                "minutia {i} quality {} exceeds 100",
                m.quality
            )));
        }
        let turns = f64::from(m.direction / TAU).rem_euclid(1.0);
        let angle = ((turns * f64::from(steps)).round() as u32 % steps) as u8;
        cands.push(Candidate {
            x: f64::from(m.x) * 25.4 / f64::from(fp.dpi_x) / unit,
            y: f64::from(m.y) * 25.4 / f64::from(fp.dpi_y) / unit,
            angle,
            kind: match layout {
                Layout::Compact if (1..UNTYPED_CARD_MINUTIA_QUALITY).contains(&m.quality) => {
                    MinutiaKind::Other
                }
                _ => m.kind,
            },
            quality: m.quality,
            index: i,
        });
    }
    let limit = f64::from(layout.max_coordinate());
    let weighted = |v: fn(&Candidate) -> f64| -> Vec<(f64, f64)> {
        cands
            .iter()
            .map(|c| (v(c), quality_weight(c.quality)))
            .collect()
    };
    let shift_x = window_shift(&weighted(|c| c.x), limit);
    let shift_y = window_shift(&weighted(|c| c.y), limit);
    let mut kept: Vec<(u16, u16, &Candidate)> = cands
        .iter()
        .filter_map(|c| {
            let x = (c.x - shift_x).round();
            let y = (c.y - shift_y).round();
            ((0.0..=limit).contains(&x) && (0.0..=limit).contains(&y))
                .then_some((x as u16, y as u16, c))
        })
        .collect();
    // Highest quality first, stable on the extractor's order, then cap.
    kept.sort_by(|a, b| {
        b.2.quality
            .cmp(&a.2.quality)
            .then(a.2.index.cmp(&b.2.index))
    });
    kept.truncate(max_minutiae);
    kept.sort_by_key(|&(x, y, c)| (y, x, c.index));
    let mut out = Vec::with_capacity(kept.len() * layout.minutia_len());
    for (x, y, c) in kept {
        match layout {
            Layout::Normal => {
                out.extend_from_slice(&((kind_bits(c.kind) << 14) | x).to_be_bytes());
                out.extend_from_slice(&y.to_be_bytes());
                out.push(c.angle);
            }
            Layout::Compact => {
                out.push(x as u8);
                out.push(y as u8);
                out.push(((kind_bits(c.kind) as u8) << 6) | (c.angle & 0x3f));
            }
        }
    }
    Ok(out)
}

/// Weight of a minutia when choosing the coordinate window: its quality as a fraction, 0.65
/// when not reported (as the comparator weighs it).
fn quality_weight(quality: u8) -> f64 {
    if quality == 0 {
        0.65
    } else {
        f64::from(quality) / 100.0
    }
}

/// Whole-unit shift of the coordinate window `0..=limit` for minutiae at `values` (card units,
/// with their weights) when they do not fit as they are (otherwise 0).
///
/// Issue 19: centring the bounding box dropped minutiae at both ends whatever their number or
/// quality (FVC2004 DB1's 640 px wide scans span 32 mm against the compact format's 25.5 mm).
/// The window now keeps the largest summed quality weight; among equal windows the one nearest
/// the centred one (the old choice) wins.
fn window_shift(values: &[(f64, f64)], limit: f64) -> f64 {
    let max = values.iter().map(|v| v.0).fold(f64::NEG_INFINITY, f64::max);
    if values.is_empty() || max.round() <= limit {
        return 0.0;
    }
    let min = values.iter().map(|v| v.0).fold(f64::INFINITY, f64::min);
    let centred = (((min + max) - limit) / 2.0).round().max(0.0);
    let inside = |shift: f64| -> f64 {
        values
            .iter()
            .filter(|(v, _)| (0.0..=limit).contains(&(v - shift).round()))
            .map(|(_, w)| w)
            .sum()
    };
    let mut best = (inside(centred), centred);
    // A best window can always start at a minutia: try each as the lowest kept coordinate.
    for &(v, _) in values {
        let shift = v.round().max(0.0);
        let w = inside(shift);
        let nearer = (shift - centred).abs() < (best.1 - centred).abs();
        if w > best.0 + 1e-9 || ((w - best.0).abs() <= 1e-9 && nearer) {
            best = (w, shift);
        }
    }
    best.1
}

fn decode(
    bytes: &[u8],
    dpi: u32,
    max_minutiae: usize,
    layout: Layout,
) -> Result<Fingerprint, Error> {
    let name = layout.name();
    check_dpi(dpi, "requested resolution").map_err(|m| invalid(name, 0, m))?;
    let unit_len = layout.minutia_len();
    if bytes.is_empty() {
        return Err(invalid(name, 0, "template holds no minutiae"));
    }
    if !bytes.len().is_multiple_of(unit_len) {
        return Err(invalid(
            name,
            bytes.len() - bytes.len() % unit_len,
            format_args!(
                "length {} is not a multiple of the {unit_len}-byte minutia",
                bytes.len()
            ),
        ));
    }
    let count = bytes.len() / unit_len;
    if count > max_minutiae {
        return Err(invalid(
            name,
            max_minutiae * unit_len,
            format_args!("{count} minutiae exceed the limit of {max_minutiae}"),
        ));
    }
    let px_per_unit = layout.unit_mm() * f64::from(dpi) / 25.4;
    let angle_step = TAU / layout.angle_steps() as f32;
    let mut minutiae = Vec::with_capacity(count);
    for (i, chunk) in bytes.chunks_exact(unit_len).enumerate() {
        let at = i * unit_len;
        let (type_bits, x, y, angle) = match (layout, chunk) {
            (Layout::Normal, &[a, b, c, d, angle]) => {
                let tx = u16::from_be_bytes([a, b]);
                let ry = u16::from_be_bytes([c, d]);
                if ry >> 14 != 0 {
                    return Err(invalid(
                        name,
                        at + 2,
                        format_args!("minutia {i} has non-zero reserved bits above y"),
                    ));
                }
                (tx >> 14, tx & MAX_COORDINATE, ry, angle)
            }
            (Layout::Compact, &[x, y, ta]) => {
                (u16::from(ta >> 6), u16::from(x), u16::from(y), ta & 0x3f)
            }
            _ => return Err(invalid(name, at, "minutia is truncated")),
        };
        let kind = kind_from_bits(type_bits).ok_or_else(|| {
            invalid(
                name,
                at + if layout == Layout::Compact { 2 } else { 0 },
                format_args!("minutia {i} has the reserved type code 11"),
            )
        })?;
        minutiae.push(Minutia {
            x: (f64::from(x) * px_per_unit) as f32,
            y: (f64::from(y) * px_per_unit) as f32,
            direction: f32::from(angle) * angle_step,
            kind,
            quality: 0,
        });
    }
    let extent = |v: f32| v.floor() as u32 + 1;
    Ok(Fingerprint {
        width: minutiae.iter().map(|m| extent(m.x)).max().unwrap_or(0),
        height: minutiae.iter().map(|m| extent(m.y)).max().unwrap_or(0),
        dpi_x: dpi,
        dpi_y: dpi,
        quality: 0,
        minutiae,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(minutiae: Vec<Minutia>) -> Fingerprint {
        Fingerprint {
            width: 640,
            height: 480,
            dpi_x: 500,
            dpi_y: 500,
            quality: 50,
            minutiae,
        }
    }

    fn m(x: f32, y: f32, quality: u8) -> Minutia {
        Minutia {
            x,
            y,
            direction: 1.0,
            kind: MinutiaKind::Ending,
            quality,
        }
    }

    #[test]
    fn compact_layout_bits() {
        // 0.1 mm at 500 dpi is 1.9685 px: x = 19.685 px -> 10 units.
        let fp = print(vec![Minutia {
            x: 19.685,
            y: 39.37,
            direction: std::f32::consts::PI,
            kind: MinutiaKind::Bifurcation,
            quality: 60,
        }]);
        assert_eq!(encode_compact(&fp, 60).unwrap(), vec![10, 20, 0x80 | 32]);
    }

    #[test]
    fn compact_writes_doubtful_minutiae_untyped() {
        // Below the quality floor the type is "other"; at it, or unreported (0), it is kept.
        // The normal layout keeps every type.
        let floor = UNTYPED_CARD_MINUTIA_QUALITY;
        let kinds = [
            (MinutiaKind::Ending, floor - 1),
            (MinutiaKind::Bifurcation, 1),
            (MinutiaKind::Bifurcation, floor),
            (MinutiaKind::Ending, 0),
        ];
        let fp = print(
            kinds
                .iter()
                .enumerate()
                .map(|(i, &(kind, quality))| Minutia {
                    kind,
                    ..m(10.0 + 40.0 * i as f32, 10.0, quality)
                })
                .collect(),
        );
        let read = |bytes: Vec<u8>, decode: fn(&[u8], u32, usize) -> Result<Fingerprint, Error>| {
            let back = decode(&bytes, 500, 60).unwrap();
            back.minutiae.iter().map(|m| m.kind).collect::<Vec<_>>()
        };
        use MinutiaKind::*;
        assert_eq!(
            read(encode_compact(&fp, 60).unwrap(), decode_compact),
            vec![Other, Other, Bifurcation, Ending]
        );
        assert_eq!(
            read(encode_normal(&fp, 60).unwrap(), decode_normal),
            vec![Ending, Bifurcation, Bifurcation, Ending]
        );
    }

    #[test]
    fn normal_layout_bits() {
        let fp = print(vec![Minutia {
            x: 19.685,
            y: 39.37,
            direction: std::f32::consts::FRAC_PI_2,
            kind: MinutiaKind::Ending,
            quality: 10,
        }]);
        // 100 and 200 units of 0.01 mm, angle 64/256.
        assert_eq!(encode_normal(&fp, 60).unwrap(), vec![0x40, 100, 0, 200, 64]);
    }

    #[test]
    fn cap_keeps_highest_quality_and_sorts_by_y_then_x() {
        let fp = print(vec![
            m(10.0, 30.0, 5),
            m(30.0, 10.0, 90),
            m(20.0, 10.0, 80),
            m(5.0, 5.0, 1),
        ]);
        let bytes = encode_compact(&fp, 3).unwrap();
        let back = decode_compact(&bytes, 500, 60).unwrap();
        let q: Vec<(f32, f32)> = back
            .minutiae
            .iter()
            .map(|m| (m.x.round(), m.y.round()))
            .collect();
        assert_eq!(q, vec![(20.0, 10.0), (30.0, 10.0), (10.0, 30.0)]);
    }

    #[test]
    fn wide_prints_keep_the_best_window_for_compact() {
        // 0 px and 600 px apart: 30.5 mm does not fit 25.5 mm. Centring the box kept only the
        // middle two; a window starting at the first keeps three (equal weight: the window
        // nearest the centred one).
        let fp = print(vec![
            m(0.0, 0.0, 50),
            m(200.0, 10.0, 50),
            m(400.0, 10.0, 50),
            m(600.0, 20.0, 50),
        ]);
        let back = decode_compact(&encode_compact(&fp, 60).unwrap(), 500, 60).unwrap();
        assert_eq!(back.minutiae.len(), 3);
        let dx = back.minutiae[1].x - back.minutiae[0].x;
        assert!((dx - 200.0).abs() < 2.0, "{dx}");
    }

    #[test]
    fn issue_19_compact_window_prefers_quality() {
        // The right-hand pair is of higher quality: the window moves to keep it.
        let fp = print(vec![
            m(0.0, 0.0, 20),
            m(200.0, 10.0, 50),
            m(400.0, 10.0, 90),
            m(600.0, 20.0, 90),
        ]);
        let back = decode_compact(&encode_compact(&fp, 60).unwrap(), 500, 60).unwrap();
        assert_eq!(back.minutiae.len(), 3);
        let span = back.minutiae.iter().map(|m| m.x).fold(0.0f32, f32::max)
            - back.minutiae.iter().map(|m| m.x).fold(f32::MAX, f32::min);
        assert!((span - 400.0).abs() < 2.0, "{span}");
    }

    #[test]
    fn decode_rejects_bad_lengths_types_and_counts() {
        assert!(decode_compact(&[], 500, 60).is_err());
        let err = decode_compact(&[1, 2, 3, 4], 500, 60)
            .unwrap_err()
            .to_string();
        assert!(err.contains("offset 3"), "{err}");
        let err = decode_compact(&[1, 2, 0xc0], 500, 60)
            .unwrap_err()
            .to_string();
        assert!(err.contains("reserved type"), "{err}");
        assert!(decode_compact(&[1, 2, 3, 4, 5, 6], 500, 1).is_err());
        let err = decode_normal(&[0, 1, 0x40, 1, 0], 500, 60)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("offset 2") && err.contains("reserved bits"),
            "{err}"
        );
        assert!(decode_normal(&[0, 1, 0, 1, 0], 0, 60).is_err());
    }
}
