//! Scans with their minutiae drawn on them, for the worst pairs of a report.
//!
//! A pair is drawn side by side, each scan enlarged or reduced to [`THUMB_HEIGHT`] pixels high
//! and lightened a little so that the marks stand out: a circle on every minutia and a tick
//! along its direction, red for ridge endings, blue for bifurcations (green for the "other" type
//! of third-party records).

use std::path::Path;

use matcher::image::GrayImage;
use matcher::{Fingerprint, Minutia, MinutiaKind};
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::font;

/// Height of each scan in a pair thumbnail, pixels.
pub const THUMB_HEIGHT: u32 = 480;

/// Colour of ridge endings.
pub const ENDING: RGBColor = RGBColor(230, 20, 20);
/// Colour of bifurcations.
pub const BIFURCATION: RGBColor = RGBColor(0, 90, 255);
/// Colour of minutiae of undetermined type (third-party records).
pub const OTHER: RGBColor = RGBColor(0, 150, 60);

/// The colour a minutia of `kind` is drawn in.
pub fn colour(kind: MinutiaKind) -> RGBColor {
    match kind {
        MinutiaKind::Ending => ENDING,
        MinutiaKind::Bifurcation => BIFURCATION,
        MinutiaKind::Other => OTHER,
    }
}

/// Gray pixels to RGB, lightened (`p * (1 - lighten) + 255 * lighten`) so that marks stand out.
pub fn to_rgb(image: &GrayImage, lighten: f32) -> Vec<u8> {
    let keep = 1.0 - lighten.clamp(0.0, 1.0);
    image
        .pixels()
        .iter()
        .flat_map(|&p| {
            let v = (p as f32 * keep + 255.0 * (1.0 - keep)).round() as u8;
            [v, v, v]
        })
        .collect()
}

/// Draws minutiae (coordinates in scan pixels, ISO directions: counter-clockwise, y up) on
/// `area`, scaled by `scale` and moved by `offset`.
pub fn draw_minutiae<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    minutiae: &[Minutia],
    scale: f64,
    offset: (i32, i32),
    radius: i32,
    stroke: u32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for m in minutiae {
        let c = colour(m.kind);
        let x = offset.0 as f64 + (m.x as f64 + 0.5) * scale;
        let y = offset.1 as f64 + (m.y as f64 + 0.5) * scale;
        let d = m.direction as f64;
        let tick = 2.6 * radius as f64;
        let centre = (x.round() as i32, y.round() as i32);
        let start = (
            (x + radius as f64 * d.cos()).round() as i32,
            (y - radius as f64 * d.sin()).round() as i32,
        );
        let end = (
            (x + tick * d.cos()).round() as i32,
            (y - tick * d.sin()).round() as i32,
        );
        area.draw(&Circle::new(centre, radius, c.stroke_width(stroke)))?;
        area.draw(&PathElement::new([start, end], c.stroke_width(stroke)))?;
    }
    Ok(())
}

/// Minutiae of `fp` moved onto a scan of `width` x `height` pixels. Extracted fingerprints have
/// the scan's size and are returned as they are; a record made for another size (third-party
/// records scale every scan uniformly to fit their own frame and centre it) is mapped back by
/// undoing that fit.
pub fn on_scan(fp: &Fingerprint, width: u32, height: u32) -> Vec<Minutia> {
    if (fp.width, fp.height) == (width, height) || fp.width == 0 || fp.height == 0 {
        return fp.minutiae.clone();
    }
    let (fw, fh) = (fp.width as f32, fp.height as f32);
    let s = (fw / width as f32).min(fh / height as f32);
    let (ox, oy) = (
        (fw - width as f32 * s) / 2.0,
        (fh - height as f32 * s) / 2.0,
    );
    fp.minutiae
        .iter()
        .map(|m| Minutia {
            x: (m.x - ox) / s,
            y: (m.y - oy) / s,
            ..*m
        })
        .collect()
}

/// One side of a pair: the scan (as the run saw it) and its fingerprint (or why there is none).
pub type Side<'a> = (&'a GrayImage, Result<&'a Fingerprint, String>);

/// Draws two scans side by side with their minutiae, a caption and a legend, into a PNG.
pub fn pair(
    probe: Side,
    candidate: Side,
    names: (&str, &str),
    caption: &str,
    out: &Path,
) -> anyhow::Result<()> {
    let load = |side: &Side,
                name: &str|
     -> anyhow::Result<(GrayImage, f64, Result<Vec<Minutia>, String>)> {
        let image = side.0;
        let scale = THUMB_HEIGHT as f64 / image.height() as f64;
        let width = ((image.width() as f64 * scale).round() as u32).max(1);
        let minutiae = match &side.1 {
            Ok(fp) => Ok(on_scan(fp, image.width(), image.height())
                .into_iter()
                .filter(|m| {
                    // Records made elsewhere can hold minutiae off the scan; they are not drawn.
                    (0.0..image.width() as f32).contains(&m.x)
                        && (0.0..image.height() as f32).contains(&m.y)
                })
                .collect()),
            Err(why) => Err(why.clone()),
        };
        let resized = image
            .resized(width, THUMB_HEIGHT)
            .map_err(|e| anyhow::anyhow!("resizing {name}: {e}"))?;
        Ok((resized, scale, minutiae))
    };
    let (a, scale_a, minutiae_a) = load(&probe, names.0)?;
    let (b, scale_b, minutiae_b) = load(&candidate, names.1)?;
    let pad = 16u32;
    let header = 56u32;
    let footer = 78u32;
    let width = (a.width() + b.width() + 3 * pad).max(640);
    let height = header + THUMB_HEIGHT + footer;
    let mut backend = BitMapBackend::new(out, (width, height));
    let blank = vec![255u8; (width * height * 3) as usize];
    backend
        .blit_bitmap((0, 0), (width, height), &blank)
        .map_err(crate::draw_error(out))?;
    let xa = pad as i32;
    let xb = (2 * pad + a.width()) as i32;
    let top = header as i32;
    backend
        .blit_bitmap((xa, top), (a.width(), a.height()), &to_rgb(&a, 0.35))
        .map_err(crate::draw_error(out))?;
    backend
        .blit_bitmap((xb, top), (b.width(), b.height()), &to_rgb(&b, 0.35))
        .map_err(crate::draw_error(out))?;
    let root = backend.into_drawing_area();
    let e = crate::draw_error(out);
    let text = font::available();
    // Each label stays within its own scan's column (a failure's reason can be long).
    let sides = [
        (minutiae_a, names.0, xa, scale_a, xb - xa - pad as i32),
        (
            minutiae_b,
            names.1,
            xb,
            scale_b,
            width as i32 - xb - pad as i32,
        ),
    ];
    for (minutiae, name, x, scale, room) in sides {
        let label = match minutiae {
            Ok(minutiae) => {
                draw_minutiae(&root, &minutiae, scale, (x, top), 7, 2).map_err(&e)?;
                format!("{name}: {} minutiae on the scan", minutiae.len())
            }
            Err(why) => format!("{name}: no minutiae ({why})"),
        };
        if text {
            let style = (font::FAMILY, 20).into_font().color(&BLACK);
            let label = fit(label, room, 20);
            root.draw(&Text::new(label, (x, top + THUMB_HEIGHT as i32 + 8), style))
                .map_err(&e)?;
        }
    }
    if text {
        root.draw(&Text::new(
            caption.to_string(),
            (pad as i32, 14),
            (font::FAMILY, 26).into_font().color(&BLACK),
        ))
        .map_err(&e)?;
        legend(&root, (pad as i32, (header + THUMB_HEIGHT + 44) as i32), 20).map_err(&e)?;
    }
    root.present().map_err(&e)?;
    Ok(())
}

/// `text` cut to about `room` pixels at `size` px high (a character taken as 0.6 of the size,
/// as [`legend`] spaces its entries), with "…" where it was cut.
fn fit(text: String, room: i32, size: u32) -> String {
    let fits = (room.max(0) as usize * 10) / (size as usize * 6);
    if text.chars().count() <= fits {
        return text;
    }
    let mut cut: String = text.chars().take(fits.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Draws "○ ridge ending  ○ bifurcation" at `at` (top left), text `size` px high.
pub fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    size: u32,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let r = (size / 3) as i32;
    let mut x = at.0;
    for (kind, name) in [
        (MinutiaKind::Ending, "ridge ending"),
        (MinutiaKind::Bifurcation, "bifurcation"),
    ] {
        let c = colour(kind);
        let cy = at.1 + size as i32 / 2;
        area.draw(&Circle::new((x + r, cy), r, c.stroke_width(2)))?;
        area.draw(&PathElement::new(
            [(x + 2 * r, cy), (x + 4 * r, cy)],
            c.stroke_width(2),
        ))?;
        let style = (font::FAMILY, size).into_font().color(&BLACK);
        area.draw(&Text::new(name, (x + 5 * r, at.1), style))?;
        x += 5 * r + (size as i32 * name.len() as i32) * 6 / 10 + 2 * size as i32;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_cut_to_their_column() {
        let long = "1_1: no minutiae (no usable fingerprint: only 3 reliable minutiae)".to_string();
        // 300 px at 20 px text: 25 characters, the last one the ellipsis.
        let cut = fit(long.clone(), 300, 20);
        assert_eq!(cut.chars().count(), 25);
        assert!(cut.ends_with('…') && long.starts_with(cut.trim_end_matches('…')));
        assert_eq!(fit("1_2: 20 minutiae".into(), 300, 20), "1_2: 20 minutiae");
        assert_eq!(fit(long, -5, 20), "…");
    }

    fn fp(width: u32, height: u32, x: f32, y: f32) -> Fingerprint {
        Fingerprint {
            width,
            height,
            dpi_x: 500,
            dpi_y: 500,
            quality: 100,
            minutiae: vec![Minutia {
                x,
                y,
                direction: 1.0,
                kind: MinutiaKind::Ending,
                quality: 50,
            }],
        }
    }

    #[test]
    fn extracted_minutiae_stay_where_they_are() {
        let f = fp(388, 374, 10.0, 20.0);
        assert_eq!(on_scan(&f, 388, 374), f.minutiae);
    }

    #[test]
    fn fitted_record_is_mapped_back() {
        // A 388 x 374 scan fitted into a 300 x 400 frame: s = 300/388, centred vertically.
        let s = 300.0f32 / 388.0;
        let oy = (400.0 - 374.0 * s) / 2.0;
        let f = fp(300, 400, 100.0 * s, 200.0 * s + oy);
        let m = on_scan(&f, 388, 374)[0];
        assert!(
            (m.x - 100.0).abs() < 1e-3 && (m.y - 200.0).abs() < 1e-3,
            "{m:?}"
        );
        assert_eq!(m.direction, 1.0);
    }
}
