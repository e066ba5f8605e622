//! One impression of a master finger, made hard in the ways real scans are hard (compare with
//! FVC2004 DB4, itself made by SFinGe):
//!
//! - **placement**: large displacement (the print is often cut by the frame) and rotation;
//! - **non-linear elastic skin distortion** (Cappelli, Maio, Maltoni 2001): no distortion in the
//!   close contact region, a transition band, and an outer region moved by a rigid transform of
//!   its own; the stronger the finger is pressed the larger the close contact region;
//! - **pressure and skin condition**, varying over the print: a smooth pressure map leaves faint,
//!   speckled regions where the finger barely touches; a local moisture map thins and breaks
//!   ridges where the skin is dry and thickens and merges them where it is wet;
//! - **ridge texture**: ragged ridge edges and pores/speckle from fine-grained noise;
//! - **creases** of the finger (the same for every impression of it) and **scratches** on the
//!   sensor;
//! - **background**: uneven illumination, vignetting, droplets and smudges, and sensor noise with
//!   a correlated (low-pass) and a white component.
//!
//! The same transform moves the ground-truth minutiae; those outside the image or the contact
//! area (where the ridges are too faint to be seen) are dropped.

use serde::{Deserialize, Serialize};

use super::rng::{Rng, SmoothField};
use super::truth::TrueMinutia;
use super::Master;

/// How one impression is placed and deformed: maps master pixels to impression pixels.
#[derive(Debug, Clone)]
pub struct Transform {
    /// Centre of the close contact region (master pixels): no distortion inside `r0`.
    center: (f32, f32),
    /// Radius of the undistorted region.
    r0: f32,
    /// Outer radius of the transition band, beyond which the skin moves rigidly.
    r1: f32,
    /// Rotation of the outer skin relative to the contact region (radians).
    skin_rotation: f32,
    /// Translation of the outer skin relative to the contact region (pixels).
    skin_shift: (f32, f32),
    /// A small smooth displacement everywhere (pixels, x and y fields).
    wobble: (SmoothField, SmoothField, f32),
    /// Global rotation (radians) about the master centre.
    rotation: f32,
    /// Global translation after rotation, including the margin offset (pixels).
    shift: (f32, f32),
    /// Master centre.
    pivot: (f32, f32),
}

impl Transform {
    /// The skin's own displacement (master pixels) at `p`.
    fn elastic(&self, x: f32, y: f32) -> (f32, f32) {
        let (dx, dy) = (x - self.center.0, y - self.center.1);
        let d = (dx * dx + dy * dy).sqrt();
        let t = ((d - self.r0) / (self.r1 - self.r0)).clamp(0.0, 1.0);
        let brake = t * t * (3.0 - 2.0 * t);
        let (s, c) = self.skin_rotation.sin_cos();
        let rx = c * dx - s * dy - dx + self.skin_shift.0;
        let ry = s * dx + c * dy - dy + self.skin_shift.1;
        let (wx, wy, wa) = &self.wobble;
        (brake * rx + wa * wx.at(x, y), brake * ry + wa * wy.at(x, y))
    }

    /// Master pixel to impression pixel.
    pub fn forward(&self, x: f32, y: f32) -> (f32, f32) {
        let (ex, ey) = self.elastic(x, y);
        let (px, py) = (x + ex - self.pivot.0, y + ey - self.pivot.1);
        let (s, c) = self.rotation.sin_cos();
        (
            c * px - s * py + self.pivot.0 + self.shift.0,
            s * px + c * py + self.pivot.1 + self.shift.1,
        )
    }

    /// Impression pixel to master pixel (fixed-point inversion of the elastic part).
    pub fn inverse(&self, u: f32, v: f32) -> (f32, f32) {
        let (qx, qy) = (
            u - self.shift.0 - self.pivot.0,
            v - self.shift.1 - self.pivot.1,
        );
        let (s, c) = self.rotation.sin_cos();
        let (bx, by) = (
            c * qx + s * qy + self.pivot.0,
            -s * qx + c * qy + self.pivot.1,
        );
        let (mut x, mut y) = (bx, by);
        for _ in 0..6 {
            let (ex, ey) = self.elastic(x, y);
            x = bx - ex;
            y = by - ey;
        }
        (x, y)
    }
}

/// The contact area in master coordinates: an ellipse whose radius wobbles with the angle.
#[derive(Debug, Clone)]
struct Contact {
    /// Centre (master pixels).
    center: (f32, f32),
    /// Semi-axes (pixels).
    axes: (f32, f32),
    /// Tilt of the ellipse (radians).
    tilt: f32,
    /// Border roughness: (amplitude, frequency, phase) of angular harmonics.
    harmonics: Vec<(f32, f32, f32)>,
}

impl Contact {
    /// Normalized radius at `p`: below 1 inside the contact area.
    fn rho(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.center.0, y - self.center.1);
        let (s, c) = self.tilt.sin_cos();
        let (a, b) = (c * dx + s * dy, -s * dx + c * dy);
        let r = ((a / self.axes.0).powi(2) + (b / self.axes.1).powi(2)).sqrt();
        let phi = b.atan2(a);
        let wobble: f32 = self
            .harmonics
            .iter()
            .map(|&(amp, f, p)| amp * (f * phi + p).sin())
            .sum();
        r / (1.0 + wobble)
    }
}

/// A crease of the finger skin (master pixels): a slightly curved line of no ridge.
#[derive(Debug, Clone, Copy)]
struct Crease {
    /// A point on the line.
    at: (f32, f32),
    /// Unit direction along the line.
    dir: (f32, f32),
    /// Half length.
    half_length: f32,
    /// Half width.
    half_width: f32,
    /// Bend: offset across the line per squared pixel along it.
    bend: f32,
}

impl Crease {
    /// How much of the ridge the crease erases at `p`, in [0, 1].
    fn strength(&self, x: f32, y: f32) -> f32 {
        let (dx, dy) = (x - self.at.0, y - self.at.1);
        let along = dx * self.dir.0 + dy * self.dir.1;
        if along.abs() > self.half_length {
            return 0.0;
        }
        let across = -dx * self.dir.1 + dy * self.dir.0 - self.bend * along * along;
        let taper = 1.0 - (along / self.half_length).powi(4);
        ((1.0 - across.abs() / self.half_width) * 1.5).clamp(0.0, 1.0) * taper
    }
}

/// The creases of a finger: drawn from the finger's own seed so every impression shows them.
fn creases(master: &Master, scale: f32) -> Vec<Crease> {
    let mut rng = Rng::derive(master.seed, 0xC8EA5E);
    let count = [0u32, 0, 1, 1, 2, 3][rng.below(6) as usize];
    (0..count)
        .map(|_| {
            // Flexion creases run across the finger; a few run obliquely.
            let a = rng.normal() * 0.35 + if rng.chance(0.2) { 0.8 } else { 0.0 };
            Crease {
                at: (
                    master.center.0 + rng.range(-60.0, 60.0) * scale,
                    master.center.1 + rng.range(-40.0, 150.0) * scale,
                ),
                dir: (a.cos(), a.sin()),
                half_length: rng.range(30.0, 120.0) * scale,
                half_width: rng.range(1.2, 3.0) * scale,
                bend: rng.range(-0.002, 0.002) / scale,
            }
        })
        .collect()
}

/// What an impression went through: the generator's own account of its difficulty, written
/// beside the set so accuracy can be reported per condition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Conditions {
    /// Mean skin moisture: below 0 dry (thin, broken ridges), above 0 wet (thick, merged).
    pub moisture: f32,
    /// `dry`, `normal` or `wet`: `moisture` below -0.5, in between, above 0.5.
    pub skin: Skin,
    /// Standard deviation of the sensor noise (gray levels).
    pub noise: f32,
    /// Largest skin displacement of the elastic distortion (pixels).
    pub distortion_px: f32,
    /// Rotation of the finger on the sensor (degrees).
    pub rotation_deg: f32,
    /// Fraction of the image inside the contact area.
    pub contact_fraction: f32,
    /// Fraction of the touching finger pressed so lightly its ridges are faint and speckled.
    pub faint_fraction: f32,
}

/// Skin condition of an impression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Skin {
    /// Thin, broken ridges.
    Dry,
    /// Neither.
    Normal,
    /// Thick, merged ridges.
    Wet,
}

impl Skin {
    /// The condition of a mean moisture.
    fn of(moisture: f32) -> Skin {
        if moisture < -0.5 {
            Skin::Dry
        } else if moisture > 0.5 {
            Skin::Wet
        } else {
            Skin::Normal
        }
    }
}

/// An impression: gray pixels and the surviving ground truth (impression pixels).
pub struct Rendered {
    /// Gray levels, row-major, `width * height`.
    pub pixels: Vec<u8>,
    /// Ground-truth minutiae in impression pixels.
    pub minutiae: Vec<TrueMinutia>,
    /// Index in the master's minutiae of each ground-truth minutia.
    pub master_index: Vec<usize>,
    /// Contact area, row-major: true where the finger touches the sensor.
    pub contact: Vec<bool>,
    /// Fraction of the image inside the contact area.
    pub contact_fraction: f32,
    /// What the impression went through.
    pub conditions: Conditions,
}

/// Bilinear sample of the master (0 outside).
fn sample(master: &Master, x: f32, y: f32) -> f32 {
    let (w, h) = (master.width, master.height);
    if !(x >= 0.0 && y >= 0.0 && x < (w - 1) as f32 && y < (h - 1) as f32) {
        return 0.0;
    }
    let (x0, y0) = (x as usize, y as usize);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let i = y0 * w + x0;
    let r = &master.ridges;
    let top = r[i] * (1.0 - fx) + r[i + 1] * fx;
    let bottom = r[i + w] * (1.0 - fx) + r[i + w + 1] * fx;
    top * (1.0 - fy) + bottom * fy
}

/// 3x3 binomial blur (the sensor's point spread; repeated, a low-pass for noise).
fn blur(img: &[f32], width: usize, height: usize) -> Vec<f32> {
    let w = [1.0f32, 2.0, 1.0];
    let mut tmp = img.to_vec();
    for y in 0..height {
        for x in 0..width {
            let mut s = 0.0;
            for (k, wk) in w.iter().enumerate() {
                let i = (x + k).saturating_sub(1).min(width - 1);
                s += wk * img[y * width + i];
            }
            tmp[y * width + x] = s / 4.0;
        }
    }
    let mut out = tmp.clone();
    for y in 0..height {
        for x in 0..width {
            let mut s = 0.0;
            for (k, wk) in w.iter().enumerate() {
                let j = (y + k).saturating_sub(1).min(height - 1);
                s += wk * tmp[j * width + x];
            }
            out[y * width + x] = s / 4.0;
        }
    }
    out
}

/// Gaussian-like noise with a correlation length of a few pixels (`passes` binomial blurs of
/// white noise), rescaled to unit standard deviation.
fn correlated_noise(rng: &mut Rng, width: usize, height: usize, passes: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..width * height).map(|_| rng.normal()).collect();
    for _ in 0..passes {
        v = blur(&v, width, height);
    }
    // Each 1-2-1 pass in x and y keeps (6/16)² of the variance of white noise (then less).
    let var = v.iter().map(|a| a * a).sum::<f32>() / v.len().max(1) as f32;
    let k = if var > 0.0 { 1.0 / var.sqrt() } else { 1.0 };
    v.iter_mut().for_each(|a| *a *= k);
    v
}

/// Smooth step from 0 at `e0` to 1 at `e1`.
fn smoothstep(e0: f32, e1: f32, x: f32) -> f32 {
    let t = ((x - e0) / (e1 - e0)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// Renders one impression of `master` at `width` x `height`; `scale` is dpi / 500.
pub fn render(master: &Master, rng: &mut Rng, width: usize, height: usize, scale: f32) -> Rendered {
    let s = scale;
    let pivot = (master.width as f32 / 2.0, master.height as f32 / 2.0);
    let margin = (
        (master.width as f32 - width as f32) / 2.0,
        (master.height as f32 - height as f32) / 2.0,
    );
    // Placement: large displacement and rotation, as in FVC2004 (prints often cut by the frame).
    let rotation = rng.normal().clamp(-2.5, 2.5) * 0.2;
    let shift = (
        -margin.0 + rng.normal().clamp(-2.5, 2.5) * 38.0 * s,
        -margin.1 + rng.normal().clamp(-2.5, 2.5) * 48.0 * s,
    );
    // Which part of the fingertip touches: rolling the finger moves it up or down.
    let contact_center = (
        master.center.0 + rng.range(-25.0, 25.0) * s,
        master.center.1 + rng.range(-40.0, 45.0) * s,
    );
    // Pressure: a firmer press gives a larger contact and a larger undistorted core region.
    let pressure = rng.range(0.0, 1.0);
    let skin_angle = rng.range(0.0, std::f32::consts::TAU);
    let skin_mag = (rng.range(4.0, 22.0) + 8.0 * rng.unit().powi(3)) * s;
    let r0 = (rng.range(10.0, 35.0) + 25.0 * pressure) * s;
    let transform = Transform {
        center: contact_center,
        r0,
        r1: r0 + rng.range(90.0, 150.0) * s,
        skin_rotation: rng.normal().clamp(-2.0, 2.0) * 0.055,
        skin_shift: (skin_mag * skin_angle.cos(), skin_mag * skin_angle.sin()),
        wobble: (
            SmoothField::new(rng, 3, 90.0 * s, 260.0 * s),
            SmoothField::new(rng, 3, 90.0 * s, 260.0 * s),
            rng.range(0.8, 3.0) * s,
        ),
        rotation,
        shift,
        pivot,
    };
    // Contact area: a tall ellipse, as a fingertip leaves; pressure sets its size.
    let contact = Contact {
        center: contact_center,
        axes: (
            (rng.range(0.30, 0.38) + 0.06 * pressure) * width as f32,
            (rng.range(0.38, 0.47) + 0.06 * pressure) * height as f32,
        ),
        tilt: rng.normal() * 0.12,
        harmonics: (2..7)
            .map(|f| {
                (
                    rng.range(0.0, 0.05),
                    f as f32,
                    rng.range(0.0, std::f32::consts::TAU),
                )
            })
            .collect(),
    };
    let creases = creases(master, s);

    // Skin condition: mean moisture of the impression (negative dry, positive wet), skewed
    // toward dry, the commoner hard case, and a local variation of it in blobs.
    let moisture = rng.normal().clamp(-2.2, 2.2) * 0.75 - 0.15;
    let moisture_field = SmoothField::new(rng, 6, 35.0 * s, 110.0 * s);
    let moisture_spread = rng.range(0.3, 0.8);
    // Pressure map: a smooth field plus a tilt (the finger pressed harder on one side).
    let pressure_field = SmoothField::new(rng, 4, 110.0 * s, 300.0 * s);
    let tilt_angle = rng.range(0.0, std::f32::consts::TAU);
    let tilt = rng.range(0.0, 1.0);
    let pressure_level = rng.range(0.1, 1.3) + 0.4 * pressure;
    let light = SmoothField::new(rng, 3, 250.0 * s, 600.0 * s);
    let border_noise = SmoothField::new(rng, 6, 10.0 * s, 30.0 * s);
    // Ridge edges and speckle: fine-grained noise, two textures.
    let edge_noise = correlated_noise(rng, width, height, 1);
    let speckle = correlated_noise(rng, width, height, 1);
    let raggedness = rng.range(0.3, 0.6);

    let n = width * height;
    let mut dark = vec![0.0f32; n];
    let mut inside = vec![0.0f32; n];
    let mut faint = vec![1.0f32; n];
    let (tc, ts) = (tilt_angle.cos(), tilt_angle.sin());
    let (cx, cy) = (width as f32 / 2.0, height as f32 / 2.0);
    for y in 0..height {
        for x in 0..width {
            let (fx, fy) = (x as f32, y as f32);
            let (mx, my) = transform.inverse(fx, fy);
            let i = y * width + x;
            let rho = contact.rho(mx, my) + 0.05 * border_noise.at(fx, fy);
            // Ridges fade in the last 12 % of the contact radius.
            inside[i] = ((1.0 - rho) / 0.12).clamp(0.0, 1.0);
            if inside[i] <= 0.0 {
                continue;
            }
            let v = sample(master, mx, my);
            // Local pressure: low near the border of the contact area and where the field dips.
            let along_tilt = ((fx - cx) * tc + (fy - cy) * ts) / (0.5 * height as f32);
            let p = pressure_level + 0.6 * pressure_field.at(fx, fy) + tilt * along_tilt
                - 0.8 * smoothstep(0.55, 1.0, rho);
            // Faint where barely touching: lighter, and broken into speckles (below).
            faint[i] = 1.0 - smoothstep(-0.35, 0.35, p);
            let contrast = 1.0 - 0.5 * faint[i];
            let wet = moisture + moisture_spread * moisture_field.at(fx, fy);
            // The threshold moves with moisture and pressure: thick ridges when wet or pressed,
            // thin when dry or barely touching; ragged edges come from the fine noise.
            let threshold = (0.22 * wet + 0.12 * p.min(1.5)).clamp(-0.75, 0.8);
            let d = (0.5 + 1.6 * (threshold - v + raggedness * edge_noise[i])).clamp(0.0, 1.0);
            // Dry or faint skin breaks ridges into dots; wet skin merges them.
            let dry = (-wet).max(0.0) + 1.3 * faint[i];
            let hole = smoothstep(1.2 - 0.9 * dry, 1.8 - 0.9 * dry, speckle[i]);
            let mut d = d * (1.0 - hole);
            if wet > 0.6 {
                let fill = smoothstep(0.6, 1.8, wet) * smoothstep(0.2, 1.2, -speckle[i] + 0.3);
                d = d.max(0.8 * fill);
            }
            for c in &creases {
                d *= 1.0 - 0.9 * c.strength(mx, my);
            }
            dark[i] = d * contrast * inside[i].sqrt();
        }
    }
    let dark = blur(&dark, width, height);

    // Sensor and background.
    // Mid-grey to bright platens; little high-frequency noise (FVC2004 DB4 has about 0.4 gray
    // levels of pixel-to-pixel noise, optical sensors a few).
    let background = rng.range(110.0, 215.0);
    let ink = rng.range(10.0, 55.0);
    let noise = rng.range(0.5, 4.0);
    let noise_low = correlated_noise(rng, width, height, 2);
    let vignette = rng.range(20.0, 110.0);
    // Droplets and latent smudges: soft light or dark spots anywhere on the platen.
    let spots: Vec<(f32, f32, f32, f32)> = (0..rng.below(9))
        .map(|_| {
            (
                rng.range(0.0, width as f32),
                rng.range(0.0, height as f32),
                rng.range(3.0, 14.0) * s,
                rng.range(-35.0, 30.0),
            )
        })
        .collect();
    // Scratches on the platen: thin lines that cross everything.
    let scratches: Vec<(f32, f32, f32, f32)> = (0..[0u32, 0, 0, 0, 1, 1][rng.below(6) as usize])
        .map(|_| {
            let a = rng.range(0.0, std::f32::consts::PI);
            (
                rng.range(0.0, width as f32),
                rng.range(0.0, height as f32),
                a,
                rng.range(8.0, 25.0) * if rng.chance(0.7) { 1.0 } else { -1.0 },
            )
        })
        .collect();
    let mut pixels = vec![0u8; n];
    let mut contact_count = 0usize;
    let mut faint_count = 0usize;
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            let (fx, fy) = (x as f32, y as f32);
            // Uneven illumination and vignetting.
            let (vx, vy) = (fx / width as f32 - 0.5, fy / height as f32 - 0.5);
            let mut g = background + 10.0 * light.at(fx, fy) - vignette * (vx * vx + vy * vy);
            for &(sx, sy, r, a) in &spots {
                let d2 = ((fx - sx).powi(2) + (fy - sy).powi(2)) / (r * r);
                if d2 < 9.0 {
                    g += a * (-d2).exp();
                }
            }
            g -= (g - ink) * dark[i];
            for &(sx, sy, a, amount) in &scratches {
                let across = -(fx - sx) * a.sin() + (fy - sy) * a.cos();
                if across.abs() < 1.2 * s {
                    g += amount * (1.0 - across.abs() / (1.2 * s));
                }
            }
            g += noise * (0.9 * noise_low[i] + 0.4 * rng.normal());
            pixels[i] = g.round().clamp(0.0, 255.0) as u8;
            if inside[i] > 0.5 {
                contact_count += 1;
                if faint[i] > 0.5 {
                    faint_count += 1;
                }
            }
        }
    }
    // The contact area of the ground truth: touching the sensor hard enough to show ridges.
    let contact: Vec<bool> = inside
        .iter()
        .zip(&faint)
        .map(|(&a, &f)| a >= 0.5 && f < 0.85)
        .collect();
    // Ground truth through the same transform, kept inside the image and the contact area.
    let edge = 6.0 * s;
    let (master_index, minutiae): (Vec<usize>, Vec<TrueMinutia>) = master
        .minutiae
        .iter()
        .enumerate()
        .filter_map(|(k, m)| {
            let (u, v) = transform.forward(m.x, m.y);
            if !(u >= edge && v >= edge && u < width as f32 - edge && v < height as f32 - edge) {
                return None;
            }
            let (xi, yi) = (u as usize, v as usize);
            if !contact[yi * width + xi] {
                return None;
            }
            // A minutia under a crease is not visible either.
            if creases.iter().any(|c| c.strength(m.x, m.y) > 0.3) {
                return None;
            }
            let step = 4.0;
            let (u2, v2) =
                transform.forward(m.x + step * m.angle.cos(), m.y + step * m.angle.sin());
            let angle = (v2 - v).atan2(u2 - u).rem_euclid(std::f32::consts::TAU);
            Some((
                k,
                TrueMinutia {
                    x: u,
                    y: v,
                    angle,
                    kind: m.kind,
                },
            ))
        })
        .unzip();
    let contact_fraction = contact_count as f32 / n as f32;
    let conditions = Conditions {
        moisture,
        skin: Skin::of(moisture),
        noise,
        distortion_px: skin_mag + transform.skin_rotation.abs() * (transform.r1 - transform.r0),
        rotation_deg: rotation.to_degrees(),
        contact_fraction,
        faint_fraction: faint_count as f32 / contact_count.max(1) as f32,
    };
    Rendered {
        pixels,
        minutiae,
        master_index,
        contact,
        contact_fraction,
        conditions,
    }
}
