//! Extraction: errors on unusable input, determinism, consistency under rotation and
//! resolution changes, and plausible output on every shared scan (skipped when absent).

use std::f32::consts::{PI, TAU};
use std::path::{Path, PathBuf};

use matcher::eval::shift::SensorShift;
use matcher::extract::{extract, extract_file, extract_with};
use matcher::image::GrayImage;
use matcher::params::ExtractParams;
use matcher::transparency::{self, Collector, Intermediate};
use matcher::{Error, Fingerprint, Minutia};
use opencv::core::{self as cv, Mat};
use test_support::paths::shared_fingerprints;

const SETS: [(&str, u32); 5] = [
    ("fvc2002_db1_b", 500),
    ("fvc2002_db3_b", 500),
    ("fvc2004_db1_b", 500),
    ("fvc2004_db3_b", 512),
    ("fvc2004_db4_b", 500),
];

/// A synthetic print: parallel ridges of period 9 px whose phase winds around a few points,
/// each of which makes a ridge ending or bifurcation, inside an elliptic finger shape.
fn synthetic(width: u32, height: u32) -> GrayImage {
    let singular = [
        (0.30, 0.30, 1.0),
        (0.62, 0.28, -1.0),
        (0.45, 0.50, 1.0),
        (0.70, 0.62, 1.0),
        (0.35, 0.72, -1.0),
        (0.55, 0.80, -1.0),
    ];
    let (w, h) = (width as f32, height as f32);
    let mut pixels = Vec::with_capacity((width * height) as usize);
    for y in 0..height {
        for x in 0..width {
            let (xf, yf) = (x as f32, y as f32);
            let (ex, ey) = ((xf - w / 2.0) / (0.42 * w), (yf - h / 2.0) / (0.46 * h));
            if ex * ex + ey * ey > 1.0 {
                pixels.push(230);
                continue;
            }
            // Ridges run at about 30 degrees with a gentle curve.
            let mut phase = TAU * (0.5 * xf + 0.866 * yf + 0.0006 * xf * xf) / 9.0;
            for (sx, sy, s) in singular {
                phase += s * (yf - sy * h).atan2(xf - sx * w);
            }
            pixels.push((128.0 - 90.0 * phase.cos()) as u8);
        }
    }
    GrayImage::from_raw(width, height, pixels).unwrap()
}

/// Share of `a`'s minutiae with a partner in `b` within `dist` px and `angle` radians.
fn matched_share(a: &[Minutia], b: &[Minutia], dist: f32, angle: f32) -> f32 {
    if a.is_empty() {
        return 0.0;
    }
    let close = a
        .iter()
        .filter(|m| {
            b.iter().any(|n| {
                let d = ((m.x - n.x).powi(2) + (m.y - n.y).powi(2)).sqrt();
                let da = (m.direction - n.direction).rem_euclid(TAU);
                d <= dist && da.min(TAU - da) <= angle
            })
        })
        .count();
    close as f32 / a.len() as f32
}

fn rotate_clockwise(image: &GrayImage) -> GrayImage {
    let mut out = Mat::default();
    cv::rotate(&image.to_mat().unwrap(), &mut out, cv::ROTATE_90_CLOCKWISE).unwrap();
    GrayImage::from_mat(&out).unwrap()
}

/// Maps minutiae of a 90°-clockwise-rotated copy back to the original image of height `h`.
fn unrotate(fp: &Fingerprint, h: u32) -> Vec<Minutia> {
    fp.minutiae
        .iter()
        .map(|m| Minutia {
            x: m.y,
            y: (h - 1) as f32 - m.x,
            direction: (m.direction + PI / 2.0).rem_euclid(TAU),
            ..*m
        })
        .collect()
}

fn check_rotation(image: &GrayImage, dpi: u32) -> f32 {
    let fp = extract(image, dpi).unwrap();
    let rotated = extract(&rotate_clockwise(image), dpi).unwrap();
    let back = unrotate(&rotated, image.height());
    matched_share(&fp.minutiae, &back, 10.0, PI / 6.0)
}

#[test]
fn unusable_images_are_errors() {
    let blank = GrayImage::from_raw(300, 300, vec![200; 90_000]).unwrap();
    assert!(matches!(
        extract(&blank, 500),
        Err(Error::NoUsableFingerprint(_))
    ));
    // Uniform noise from a fixed linear congruential generator: contrast but no ridge flow.
    let mut state = 12345u32;
    let noise: Vec<u8> = (0..90_000)
        .map(|_| {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12345);
            (state >> 16) as u8
        })
        .collect();
    let noise = GrayImage::from_raw(300, 300, noise).unwrap();
    assert!(matches!(
        extract(&noise, 500),
        Err(Error::NoUsableFingerprint(_))
    ));
    assert!(matches!(
        GrayImage::from_raw(1, 1, vec![0]),
        Err(Error::ImageLimits(_))
    ));
    let print = synthetic(300, 400);
    assert!(matches!(extract(&print, 100), Err(Error::ImageLimits(_))));
    assert!(matches!(
        extract(&print, 20_000),
        Err(Error::ImageLimits(_))
    ));
    // 1500 px at 250 dpi would be 3000 px at the working resolution.
    let wide = GrayImage::from_raw(1500, 100, vec![128; 150_000]).unwrap();
    assert!(matches!(extract(&wide, 250), Err(Error::ImageLimits(_))));
}

#[test]
fn synthetic_print_is_deterministic_and_in_image_coordinates() {
    let image = synthetic(300, 400);
    let a = extract(&image, 500).unwrap();
    let b = extract(&image, 500).unwrap();
    assert_eq!(a, b);
    assert_eq!((a.width, a.height, a.dpi_x, a.dpi_y), (300, 400, 500, 500));
    assert!(a.minutiae.len() >= 5, "{} minutiae", a.minutiae.len());
    for m in &a.minutiae {
        assert!(
            m.x >= 0.0 && m.x < 300.0 && m.y >= 0.0 && m.y < 400.0,
            "{m:?}"
        );
        assert!((0.0..TAU).contains(&m.direction), "{m:?}");
    }
    assert!(a.quality >= 50, "quality {}", a.quality);
}

#[test]
fn synthetic_print_rotation_keeps_minutiae_and_directions() {
    let share = check_rotation(&synthetic(300, 400), 500);
    assert!(
        share >= 0.6,
        "only {:.0} % matched after rotation",
        share * 100.0
    );
}

#[test]
fn extract_file_reads_png_and_transparency_publishes_every_stage() {
    let image = synthetic(300, 400);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("print.png");
    assert!(
        opencv::imgcodecs::imwrite(&path, &image.to_mat().unwrap(), &cv::Vector::new()).unwrap()
    );
    let from_file = extract_file(&path, 500).unwrap();
    assert_eq!(from_file, extract(&image, 500).unwrap());
    let mut collector = Collector::default();
    let fp = extract_with(&image, 500, &ExtractParams::default(), &mut collector).unwrap();
    for key in [
        transparency::KEY_MASK,
        transparency::KEY_NORMALIZED,
        transparency::KEY_ORIENTATION,
        transparency::KEY_COHERENCE,
        transparency::KEY_RIDGE_PERIOD,
        transparency::KEY_ENHANCED,
        transparency::KEY_BINARY,
        transparency::KEY_SKELETON,
        transparency::KEY_MINUTIAE_RAW,
        transparency::KEY_MINUTIAE,
    ] {
        assert!(collector.results.contains_key(key), "{key} not published");
    }
    match &collector.results[transparency::KEY_MINUTIAE] {
        Intermediate::Minutiae(list) => assert_eq!(list.len(), fp.minutiae.len()),
        other => panic!("minutiae published as {other:?}"),
    }
    // The measured ridge period matches the synthetic 9 px.
    if let Intermediate::Grid { values, .. } = &collector.results[transparency::KEY_RIDGE_PERIOD] {
        let inside: Vec<f32> = values.iter().copied().filter(|&v| v > 0.0).collect();
        let mean = inside.iter().sum::<f32>() / inside.len() as f32;
        assert!((mean - 9.0).abs() < 1.0, "mean period {mean}");
    }
    collector.write_pngs(&dir.path().join("show")).unwrap();
    assert!(dir.path().join("show/skeleton.png").exists());
    assert!(dir.path().join("show/minutiae.png").exists());
}

fn first_images(dir: &Path) -> Vec<(PathBuf, u32)> {
    SETS.iter()
        .map(|(set, dpi)| (dir.join(set).join("101_1.tif"), *dpi))
        .collect()
}

#[test]
fn every_shared_scan_extracts_plausibly() {
    let Some(dir) = shared_fingerprints() else {
        return;
    };
    for (set, dpi) in SETS {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir.join(set))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "tif"))
            .collect();
        entries.sort();
        assert_eq!(entries.len(), 80, "{set}");
        let (mut qualities, mut minutiae) = (0u32, 0usize);
        for path in &entries {
            let fp = extract_file(path, dpi).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let n = fp.minutiae.len();
            // Partial prints (a fingertip, a dry corner) may legitimately carry few minutiae.
            assert!((8..=120).contains(&n), "{}: {n} minutiae", path.display());
            minutiae += n;
            assert!(fp.quality > 0, "{}: quality 0", path.display());
            qualities += u32::from(fp.quality);
        }
        let mean = qualities / entries.len() as u32;
        assert!(mean >= 30, "{set}: mean quality {mean}");
        let mean = minutiae / entries.len();
        assert!(
            (20..=80).contains(&mean),
            "{set}: {mean} minutiae per image"
        );
    }
}

#[test]
fn shared_scans_rotated_keep_minutiae_and_directions() {
    let Some(dir) = shared_fingerprints() else {
        return;
    };
    let mut shares = Vec::new();
    for (path, dpi) in first_images(&dir) {
        let share = check_rotation(&GrayImage::open(&path).unwrap(), dpi);
        eprintln!(
            "{}: {:.0} % matched after rotation",
            path.display(),
            share * 100.0
        );
        assert!(share >= 0.6, "{}: {:.0} %", path.display(), share * 100.0);
        shares.push(share);
    }
    let mean = shares.iter().sum::<f32>() / shares.len() as f32;
    assert!(mean >= 0.75, "mean {:.0} %", mean * 100.0);
}

#[test]
fn shared_scans_at_double_resolution_give_the_same_minutiae() {
    let Some(dir) = shared_fingerprints() else {
        return;
    };
    let mut shares = Vec::new();
    for (path, dpi) in first_images(&dir) {
        let image = GrayImage::open(&path).unwrap();
        let big = image
            .resized(image.width() * 2, image.height() * 2)
            .unwrap();
        let fp = extract(&image, dpi).unwrap();
        let fp2 = extract(&big, dpi * 2).unwrap();
        assert_eq!(
            (fp2.width, fp2.height, fp2.dpi_x),
            (image.width() * 2, image.height() * 2, dpi * 2)
        );
        let halved: Vec<Minutia> = fp2
            .minutiae
            .iter()
            .map(|m| Minutia {
                x: (m.x + 0.5) / 2.0 - 0.5,
                y: (m.y + 0.5) / 2.0 - 0.5,
                ..*m
            })
            .collect();
        let share = matched_share(&fp.minutiae, &halved, 10.0, PI / 6.0);
        eprintln!(
            "{}: {:.0} % matched at double resolution",
            path.display(),
            share * 100.0
        );
        shares.push(share);
    }
    let mean = shares.iter().sum::<f32>() / shares.len() as f32;
    assert!(mean >= 0.75, "mean {:.0} %", mean * 100.0);
}

/// Share of `image`'s minutiae found again in a copy as another sensor would show it.
fn shifted_share(image: &GrayImage, dpi: u32, shift: SensorShift, p: &ExtractParams) -> f32 {
    let shifted = shift.apply(image, "shifted").unwrap();
    let fp = extract_with(image, dpi, p, &mut transparency::NoTransparency).unwrap();
    match extract_with(&shifted, dpi, p, &mut transparency::NoTransparency) {
        Ok(shifted) => matched_share(&fp.minutiae, &shifted.minutiae, 10.0, PI / 6.0),
        Err(_) => 0.0,
    }
}

/// Share of `image`'s minutiae found again in a fainter copy (ridges keeping `contrast` of their
/// darkness), as a sensor with weak illumination or a light touch would show them.
fn faint_share(image: &GrayImage, dpi: u32, contrast: f32, p: &ExtractParams) -> f32 {
    shifted_share(image, dpi, SensorShift::Faint { contrast }, p)
}

#[test]
fn a_faint_synthetic_print_keeps_its_minutiae() {
    // Ridges 6 % as dark as drawn: a block contrast of about 4 gray levels, below the old
    // absolute segmentation floor (6).
    let image = synthetic(320, 360);
    let share = faint_share(&image, 500, 0.06, &ExtractParams::default());
    assert!(share >= 0.8, "{:.0} % kept", share * 100.0);
}

#[test]
fn faint_shared_scans_keep_their_minutiae() {
    let Some(dir) = shared_fingerprints() else {
        return;
    };
    for (set, dpi) in SETS {
        let mut shares = Vec::new();
        for i in 1..=8 {
            let path = dir.join(set).join(format!("10{i}_1.tif"));
            let image = GrayImage::open(&path).unwrap();
            shares.push(faint_share(&image, dpi, 0.2, &ExtractParams::default()));
        }
        let mean = shares.iter().sum::<f32>() / shares.len() as f32;
        eprintln!(
            "{set}: {:.0} % of minutiae kept at 20 % contrast",
            mean * 100.0
        );
        assert!(mean >= 0.7, "{set}: {:.0} %", mean * 100.0);
    }
}

/// Mean share of minutiae found again on the first eight scans of each shared set under `shift`.
fn shared_shifted_shares(dir: &Path, shift: SensorShift, p: &ExtractParams) -> Vec<(String, f32)> {
    SETS.iter()
        .map(|(set, dpi)| {
            let shares: Vec<f32> = (1..=8)
                .map(|i| {
                    let path = dir.join(set).join(format!("10{i}_1.tif"));
                    shifted_share(&GrayImage::open(&path).unwrap(), *dpi, shift, p)
                })
                .collect();
            (
                set.to_string(),
                shares.iter().sum::<f32>() / shares.len() as f32,
            )
        })
        .collect()
}

#[test]
fn noisy_shared_scans_keep_more_minutiae_with_smoothed_gradients() {
    let Some(dir) = shared_fingerprints() else {
        return;
    };
    let noise = SensorShift::Noise { sigma: 25.0 };
    let with = shared_shifted_shares(&dir, noise, &ExtractParams::default());
    let without = ExtractParams {
        max_gradient_smoothing: 0.0,
        ..Default::default()
    };
    let without = shared_shifted_shares(&dir, noise, &without);
    let worst = |v: &[(String, f32)]| v.iter().map(|s| s.1).fold(1.0f32, f32::min);
    for ((set, a), (_, b)) in with.iter().zip(&without) {
        eprintln!(
            "{set}: {:.0} % kept at noise 25, {:.0} % without smoothing",
            a * 100.0,
            b * 100.0
        );
    }
    // The noisiest set (FVC2002 DB3, a noise ratio of about 0.2 as scanned) loses most without.
    let (a, b) = (worst(&with), worst(&without));
    assert!(a >= 0.75, "worst set {:.0} %", a * 100.0);
    assert!(
        a >= b + 0.05,
        "worst set {:.0} % against {:.0} %",
        a * 100.0,
        b * 100.0
    );
}

#[test]
fn a_smaller_sensor_keeps_the_minutiae_along_its_edge() {
    let Some(dir) = shared_fingerprints() else {
        return;
    };
    let p = ExtractParams::default();
    let crop = SensorShift::Crop { share: 0.7 };
    let (mut found, mut total) = (0usize, 0usize);
    for (set, dpi) in SETS {
        let px = dpi as f32 / 500.0;
        let (near, far) = (p.image_edge_margin * px + 2.0, 24.0 * px);
        for i in 1..=8 {
            let image = GrayImage::open(dir.join(set).join(format!("10{i}_1.tif"))).unwrap();
            let (w, h) = (image.width() as f32, image.height() as f32);
            let (cw, ch) = ((w * 0.7).round(), (h * 0.7).round());
            let (x0, y0) = (((w - cw) / 2.0).floor(), ((h - ch) / 2.0).floor());
            let fp = extract(&image, dpi).unwrap();
            let Ok(small) = extract(&crop.apply(&image, "crop").unwrap(), dpi) else {
                continue;
            };
            // The scan's minutiae in the band along the window's edge (clear of the edge margin,
            // within three blocks of it), in the window's pixels: the print runs on there, only
            // the smaller sensor ends.
            let band: Vec<Minutia> = fp
                .minutiae
                .iter()
                .map(|m| Minutia {
                    x: m.x - x0,
                    y: m.y - y0,
                    ..*m
                })
                .filter(|m| {
                    let d = m.x.min(m.y).min(cw - 1.0 - m.x).min(ch - 1.0 - m.y);
                    (near..far).contains(&d)
                })
                .collect();
            let share = matched_share(&band, &small.minutiae, 10.0, PI / 6.0);
            found += (share * band.len() as f32).round() as usize;
            total += band.len();
        }
    }
    let share = found as f32 / total as f32;
    eprintln!(
        "{:.0} % of {total} minutiae along the window's edge found again",
        share * 100.0
    );
    assert!(share >= 0.7, "{:.0} %", share * 100.0);
}

/// On the first eight scans of each shared set, blurred as a soft sensor would show them:
/// the mean share of the blurred copy's minutiae that the scan itself has (nothing invented)
/// and of the scan's minutiae that the copy finds again.
fn blurred_agreement(dir: &Path, p: &ExtractParams) -> Vec<(String, f32, f32)> {
    let blur = SensorShift::Blur { sigma: 2.0 };
    SETS.iter()
        .map(|(set, dpi)| {
            let (mut precision, mut recall) = (0.0, 0.0);
            for i in 1..=8 {
                let path = dir.join(set).join(format!("10{i}_1.tif"));
                let image = GrayImage::open(&path).unwrap();
                let fp = extract_with(&image, *dpi, p, &mut transparency::NoTransparency).unwrap();
                let blurred = blur.apply(&image, "blurred").unwrap();
                let soft = extract_with(&blurred, *dpi, p, &mut transparency::NoTransparency)
                    .map(|f| f.minutiae)
                    .unwrap_or_default();
                precision += matched_share(&soft, &fp.minutiae, 10.0, PI / 6.0) / 8.0;
                recall += matched_share(&fp.minutiae, &soft, 10.0, PI / 6.0) / 8.0;
            }
            (set.to_string(), precision, recall)
        })
        .collect()
}

#[test]
fn blurred_shared_scans_invent_fewer_minutiae_with_high_passed_gradients() {
    let Some(dir) = shared_fingerprints() else {
        return;
    };
    let with = blurred_agreement(&dir, &ExtractParams::default());
    let without = ExtractParams {
        orientation_highpass_sigma: 0.0,
        ..Default::default()
    };
    let without = blurred_agreement(&dir, &without);
    for ((set, p, r), (_, p0, r0)) in with.iter().zip(&without) {
        eprintln!(
            "{set}: blurred copy's minutiae on the scan {:.0} % (without the high-pass {:.0} %), \
             scan's found again {:.0} % ({:.0} %)",
            p * 100.0,
            p0 * 100.0,
            r * 100.0,
            r0 * 100.0
        );
    }
    let mean = |v: &[(String, f32, f32)], f: fn(&(String, f32, f32)) -> f32| {
        v.iter().map(f).sum::<f32>() / v.len() as f32
    };
    let (p, p0) = (mean(&with, |s| s.1), mean(&without, |s| s.1));
    let (r, r0) = (mean(&with, |s| s.2), mean(&without, |s| s.2));
    // FVC2002 DB3's gray background turns into smooth ramps when blurred: the most to gain.
    let most = with
        .iter()
        .zip(&without)
        .map(|(a, b)| a.1 - b.1)
        .fold(f32::MIN, f32::max);
    assert!(most >= 0.08, "largest gain {most:.2}");
    assert!(p >= p0 + 0.02, "precision {p:.2} against {p0:.2}");
    assert!(r >= r0 - 0.02, "recall {r:.2} against {r0:.2}");
}
