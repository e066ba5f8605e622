//! One impression of a master finger: placement (displacement, rotation), non-linear elastic
//! skin distortion (Cappelli, Maio, Maltoni 2001: no distortion in the close contact region,
//! a transition band, the rest moved rigidly), pressure (ridge thickness by erosion or dilation:
//! dry or wet), a partial contact area (an ellipse with a noisy border), noise, background and
//! scan artefacts. The same transform moves the ground-truth minutiae; those outside the image
//! or the contact area are dropped.

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
        for _ in 0..5 {
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

/// 3x3 min (erode) or max (dilate) of a float image.
fn morph(img: &[f32], width: usize, height: usize, dilate: bool) -> Vec<f32> {
    let mut out = img.to_vec();
    for y in 0..height {
        for x in 0..width {
            let mut v = img[y * width + x];
            for j in y.saturating_sub(1)..=(y + 1).min(height - 1) {
                for i in x.saturating_sub(1)..=(x + 1).min(width - 1) {
                    let u = img[j * width + i];
                    v = if dilate { v.max(u) } else { v.min(u) };
                }
            }
            out[y * width + x] = v;
        }
    }
    out
}

/// 3x3 binomial blur (the sensor's point spread).
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

/// Renders one impression of `master` at `width` x `height`; `scale` is dpi / 500.
pub fn render(master: &Master, rng: &mut Rng, width: usize, height: usize, scale: f32) -> Rendered {
    let s = scale;
    let pivot = (master.width as f32 / 2.0, master.height as f32 / 2.0);
    let margin = (
        (master.width as f32 - width as f32) / 2.0,
        (master.height as f32 - height as f32) / 2.0,
    );
    // Placement: FVC-like displacement and rotation.
    let rotation = rng.normal().clamp(-2.5, 2.5) * 0.25;
    let shift = (
        -margin.0 + rng.normal().clamp(-2.5, 2.5) * 34.0 * s,
        -margin.1 + rng.normal().clamp(-2.5, 2.5) * 40.0 * s,
    );
    let contact_center = (
        master.center.0 + rng.range(-20.0, 20.0) * s,
        master.center.1 + rng.range(-25.0, 25.0) * s,
    );
    let skin_angle = rng.range(0.0, std::f32::consts::TAU);
    let skin_mag = rng.range(3.0, 16.0) * s;
    let r0 = rng.range(20.0, 50.0) * s;
    let transform = Transform {
        center: contact_center,
        r0,
        r1: r0 + rng.range(110.0, 160.0) * s,
        skin_rotation: rng.normal().clamp(-2.0, 2.0) * 0.04,
        skin_shift: (skin_mag * skin_angle.cos(), skin_mag * skin_angle.sin()),
        wobble: (
            SmoothField::new(rng, 3, 120.0 * s, 300.0 * s),
            SmoothField::new(rng, 3, 120.0 * s, 300.0 * s),
            rng.range(0.5, 2.5) * s,
        ),
        rotation,
        shift,
        pivot,
    };
    // Contact area: pressure sets its size; it may leave the frame.
    let pressure = rng.range(0.0, 1.0);
    let contact = Contact {
        center: contact_center,
        axes: (
            (rng.range(0.28, 0.48) + 0.08 * pressure) * width as f32,
            (rng.range(0.28, 0.45) + 0.08 * pressure) * height as f32,
        ),
        tilt: rng.normal() * 0.15,
        harmonics: (2..6)
            .map(|f| {
                (
                    rng.range(0.0, 0.04),
                    f as f32,
                    rng.range(0.0, std::f32::consts::TAU),
                )
            })
            .collect(),
    };
    // Skin condition: negative dry (thin, broken ridges), positive wet (thick, merged).
    // Skewed toward dry: dry fingers are the commoner hard case on optical sensors.
    let moisture = rng.normal().clamp(-2.0, 2.0) * 0.8 - 0.25;
    let blobs = SmoothField::new(rng, 10, 5.0 * s, 16.0 * s);
    let patches = SmoothField::new(rng, 4, 60.0 * s, 160.0 * s);
    let blobs2 = SmoothField::new(rng, 6, 25.0 * s, 70.0 * s);
    let light = SmoothField::new(rng, 3, 250.0 * s, 600.0 * s);
    let border_noise = SmoothField::new(rng, 6, 10.0 * s, 30.0 * s);

    let n = width * height;
    let mut dark = vec![0.0f32; n];
    let mut inside = vec![0.0f32; n];
    let threshold = 0.12 * moisture.clamp(-1.0, 1.5);
    for y in 0..height {
        for x in 0..width {
            let (mx, my) = transform.inverse(x as f32, y as f32);
            let v = sample(master, mx, my);
            let i = y * width + x;
            // Ridge darkness with a soft edge; the threshold moves with moisture.
            dark[i] = (0.5 + 1.4 * (threshold - v)).clamp(0.0, 1.0);
            let rho = contact.rho(mx, my) + 0.05 * border_noise.at(x as f32, y as f32);
            // Ridges fade in the last 12 % of the contact radius.
            inside[i] = ((1.0 - rho) / 0.12).clamp(0.0, 1.0);
        }
    }
    // Pressure: erosion or dilation of the ridges.
    let steps = (moisture.abs() * 1.2) as usize;
    // At most one erosion: a drier finger shows as breaks (below), not as vanishing ridges.
    let max_steps = if moisture > 0.0 { 2 } else { 1 };
    for _ in 0..steps.min(max_steps) {
        dark = morph(&dark, width, height, moisture > 0.0);
    }
    // Dry skin breaks ridges into dots; wet skin fills valleys with blots.
    let dry = (-moisture).clamp(0.0, 1.0);
    let wet = moisture.max(0.0);
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            let (fx, fy) = (x as f32, y as f32);
            let b = blobs.at(fx, fy);
            let b2 = blobs2.at(fx, fy);
            if dry > 0.0 {
                // Speckled breaks, denser where the skin is driest (patches).
                let p = patches.at(fx, fy);
                let hole =
                    ((b + 0.5 * rng.normal() - 1.3 + 0.5 * dry + 0.4 * p) * 2.0).clamp(0.0, 1.0);
                dark[i] *= 1.0 - hole;
            }
            if wet > 0.0 {
                let blot = ((b2 - 1.3 + 0.4 * wet) * 2.0).clamp(0.0, 1.0);
                dark[i] = dark[i].max(blot * 0.85);
            }
            // Pressure fades toward the border of the contact area.
            dark[i] *= inside[i].sqrt();
        }
    }
    // Random pores and specks in the ridges.
    let specks = (n as f32 * rng.range(0.002, 0.01)) as usize;
    for _ in 0..specks {
        let i = rng.below(n as u32) as usize;
        dark[i] *= rng.range(0.0, 0.5);
    }
    let dark = blur(&dark, width, height);
    let background = rng.range(170.0, 235.0);
    let ink = rng.range(15.0, 70.0);
    let noise = rng.range(6.0, 22.0);
    let vignette = rng.range(0.0, 120.0);
    // Scan artefacts: occasional streak lines and a faint latent smudge.
    let streaks: Vec<(bool, usize, f32)> = (0..rng.below(3))
        .map(|_| {
            let vertical = rng.chance(0.3);
            let at = rng.below(if vertical { width } else { height } as u32) as usize;
            (vertical, at, rng.range(-25.0, 15.0))
        })
        .collect();
    let smudge = rng.chance(0.3).then(|| {
        (
            rng.range(0.0, width as f32),
            rng.range(0.0, height as f32),
            rng.range(20.0, 60.0) * s,
            rng.range(10.0, 35.0),
        )
    });
    let mut pixels = vec![0u8; n];
    let mut contact_count = 0usize;
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            let (fx, fy) = (x as f32, y as f32);
            // Uneven illumination and vignetting.
            let (vx, vy) = (fx / width as f32 - 0.5, fy / height as f32 - 0.5);
            let mut g = background + 12.0 * light.at(fx, fy) - vignette * (vx * vx + vy * vy);
            if let Some((cx, cy, r, a)) = smudge {
                let d2 = ((fx - cx).powi(2) + (fy - cy).powi(2)) / (r * r);
                g -= a * (-d2).exp() * (0.6 + 0.4 * blobs2.at(fx, fy));
            }
            for &(vertical, at, a) in &streaks {
                if (vertical && x == at) || (!vertical && y == at) {
                    g += a;
                }
            }
            g = g - (g - ink) * dark[i] + noise * rng.normal();
            pixels[i] = g.round().clamp(0.0, 255.0) as u8;
            if inside[i] > 0.5 {
                contact_count += 1;
            }
        }
    }
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
            if inside[yi * width + xi] < 0.5 {
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
    Rendered {
        pixels,
        minutiae,
        master_index,
        contact: inside.iter().map(|&v| v >= 0.5).collect(),
        contact_fraction: contact_count as f32 / n as f32,
    }
}
