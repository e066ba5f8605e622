//! Biometric checks: the face image and every enrolled finger (extraction, quality,
//! minutiae, the card template).

use matcher::compare::{self, Scratch, Threshold};
use matcher::image::GrayImage;
use matcher::params::DEFAULT_DPI;
use matcher::template::{self, CardFormat, IsoRecord};
use matcher::Fingerprint;

use super::files::read_blob;
use super::{EnrolledFinger, QcCode, QcReport};
use crate::applicant::{Applicant, FingerSample};
use crate::finger::Finger;
use crate::lds::{Eye, IrisImage, IrisImageFormat};
use crate::profile::Profile;

/// What QC needs from a fingerprint engine.
pub trait BiometricCheck {
    /// Extracts a fingerprint from an image file's bytes scanned at `dpi`.
    fn extract(&self, image: &[u8], dpi: u32) -> Result<Fingerprint, String>;

    /// Similarity of two fingerprints (higher: more alike).
    fn score(&self, a: &Fingerprint, b: &Fingerprint) -> f32;

    /// The score from which two enrolled fingers are taken to be one finger.
    fn duplicate_threshold(&self) -> Threshold {
        Threshold::FMR_0_01_PERCENT
    }

    /// The name of the extractor [`BiometricCheck::extract`] uses, which DG3 records as the
    /// templates' creator.
    fn extractor_name(&self) -> &str {
        "classical"
    }
}

/// [`BiometricCheck`] with the project's matcher.
#[derive(Debug, Clone, Copy, Default)]
pub struct MatcherCheck;

impl BiometricCheck for MatcherCheck {
    fn extract(&self, image: &[u8], dpi: u32) -> Result<Fingerprint, String> {
        crate::scan::extract(image, dpi).map_err(|e| e.to_string())
    }

    fn score(&self, a: &Fingerprint, b: &Fingerprint) -> f32 {
        let mut scratch = Scratch::new();
        compare::compare(&compare::prepare(a), &compare::prepare(b), &mut scratch)
    }
}

/// [`BiometricCheck`] whose card templates come from another extractor (the learned one,
/// where enrollment time is cheap), while image quality stays the default extractor's: the
/// quality limits were calibrated on it and the learned extractor assesses none.
#[derive(Debug, Clone, Copy)]
pub struct TemplatesBy<'a>(pub &'a dyn matcher::extract::MinutiaeExtractor);

impl BiometricCheck for TemplatesBy<'_> {
    fn extract(&self, image: &[u8], dpi: u32) -> Result<Fingerprint, String> {
        use crate::scan;
        // Decoded once for both extractors.
        let image = scan::decode(image).map_err(|e| e.to_string())?;
        let classical = scan::extract_image(&image, dpi, &matcher::extract::Classical::default())
            .map_err(|e| e.to_string())?;
        let mut print = scan::extract_image(&image, dpi, self.0)
            .map_err(|e| format!("{}: {e}", self.0.name()))?;
        print.quality = classical.quality;
        Ok(print)
    }

    fn score(&self, a: &Fingerprint, b: &Fingerprint) -> f32 {
        MatcherCheck.score(a, b)
    }

    fn extractor_name(&self) -> &str {
        self.0.name()
    }

    /// The 0.01 % threshold of the extractor's own score scale: the templates compared are
    /// its minutiae.
    fn duplicate_threshold(&self) -> Threshold {
        Threshold::calibrated_fused_on(self.0.score_scale(), 0.0001, 1)
    }
}

/// Face photo: a JPEG within the profile's size.
pub(super) fn check_face(a: &Applicant, profile: &Profile, r: &mut QcReport) -> Option<Vec<u8>> {
    let Some(blob) = &a.face else {
        if profile.requires("face") {
            r.push(
                "face",
                QcCode::MissingField,
                format!("face is required by {}", profile.name),
            );
        }
        return None;
    };
    let bytes = read_blob(a, blob, "face", r)?;
    if !(bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && bytes.ends_with(&[0xFF, 0xD9])) {
        r.push(
            "face",
            QcCode::InvalidImage,
            "not a JPEG (no SOI/EOI markers)",
        );
        return None;
    }
    if bytes.len() > profile.face_max_bytes {
        r.push(
            "face",
            QcCode::ImageTooLarge,
            format!(
                "{} bytes, {} allows {}",
                bytes.len(),
                profile.name,
                profile.face_max_bytes
            ),
        );
        return None;
    }
    Some(bytes)
}

/// Largest iris image (bytes as DG4 stores it: the JPEG, or a PNG's raw gray levels) accepted
/// per eye: two eyes and their headers stay below the 65 535 bytes of an EF.
pub const IRIS_MAX_BYTES: usize = 30_000;

/// Iris images, when the profile requires `iris` (DG4): both eyes present, each a JPEG (stored
/// as given) or a PNG (decoded to 8-bit gray with the matcher's OpenCV decoder and stored raw:
/// ISO/IEC 19794-6:2005 has no PNG format), at most [`IRIS_MAX_BYTES`] as stored. Records of
/// other kinds may carry iris images; they are neither read nor checked (as unlisted fingers).
pub(super) fn check_iris(a: &Applicant, profile: &Profile, r: &mut QcReport) -> Vec<IrisImage> {
    if !profile.requires("iris") {
        return Vec::new();
    }
    let Some(iris) = &a.iris else {
        r.push(
            "iris",
            QcCode::MissingField,
            format!("iris images are required by {}", profile.name),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (eye, blob, path) in [
        (Eye::Right, &iris.right, "iris.right"),
        (Eye::Left, &iris.left, "iris.left"),
    ] {
        let Some(blob) = blob else {
            r.push(
                path,
                QcCode::MissingField,
                format!("{path} is required by {}", profile.name),
            );
            continue;
        };
        let Some(bytes) = read_blob(a, blob, path, r) else {
            continue;
        };
        if let Some(image) = iris_image(eye, bytes, path, r) {
            if image.data.len() > IRIS_MAX_BYTES {
                r.push(
                    path,
                    QcCode::ImageTooLarge,
                    format!(
                        "{} bytes as stored ({:?} {}x{} px), at most {IRIS_MAX_BYTES}",
                        image.data.len(),
                        image.format,
                        image.width,
                        image.height
                    ),
                );
                continue;
            }
            out.push(image);
        }
    }
    out
}

/// One eye's image as DG4 stores it, or an `invalid_image` problem.
fn iris_image(eye: Eye, bytes: Vec<u8>, path: &str, r: &mut QcReport) -> Option<IrisImage> {
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        let frame = crate::lds::jpeg_frame(&bytes).filter(|&(w, h, _)| w > 0 && h > 0);
        let format = match frame {
            Some((_, _, 1)) => Some(IrisImageFormat::MonoJpeg),
            Some((_, _, 3)) => Some(IrisImageFormat::RgbJpeg),
            _ => None,
        };
        return match (frame, format, bytes.ends_with(&[0xFF, 0xD9])) {
            (Some((width, height, _)), Some(format), true) => Some(IrisImage {
                eye,
                format,
                width,
                height,
                data: bytes,
            }),
            _ => {
                r.push(
                    path,
                    QcCode::InvalidImage,
                    "not a readable JPEG (no frame header of 1 or 3 components, or no EOI)",
                );
                None
            }
        };
    }
    if !bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        r.push(path, QcCode::InvalidImage, "neither a PNG nor a JPEG");
        return None;
    }
    match GrayImage::decode(&bytes) {
        Ok(gray) => {
            let (Ok(width), Ok(height)) =
                (u16::try_from(gray.width()), u16::try_from(gray.height()))
            else {
                r.push(path, QcCode::ImageTooLarge, "wider or higher than 65535 px");
                return None;
            };
            Some(IrisImage {
                eye,
                format: IrisImageFormat::MonoRaw,
                width,
                height,
                data: gray.pixels().to_vec(),
            })
        }
        Err(e) => {
            r.push(
                path,
                QcCode::InvalidImage,
                format!("cannot decode the PNG: {e}"),
            );
            None
        }
    }
}

/// The profile's fingers: present, readable, good enough, distinct, encodable.
pub(super) fn check_fingers(
    a: &Applicant,
    profile: &Profile,
    bio: &dyn BiometricCheck,
    r: &mut QcReport,
) -> Vec<EnrolledFinger> {
    let policy = &profile.fingers;
    // Each finger with the extractor that made its minutiae (none for a submitted template).
    let mut good: Vec<(Finger, Fingerprint, Option<String>)> = Vec::new();
    for &finger in &policy.positions {
        let path = format!("fingers.{finger}");
        let Some(sample) = a.fingers.get(&finger) else {
            r.push(
                &path,
                QcCode::MissingField,
                format!("{finger} is required by {}", profile.name),
            );
            continue;
        };
        let Some(fp) = fingerprint_of(a, finger, sample, &path, bio, r) else {
            continue;
        };
        let mut ok = true;
        if fp.quality < policy.min_quality {
            r.push(
                format!("{path}.quality"),
                QcCode::FingerprintQuality,
                format!("quality {} is below {}", fp.quality, policy.min_quality),
            );
            ok = false;
        }
        if fp.minutiae.len() < policy.min_minutiae {
            r.push(
                format!("{path}.minutiae"),
                QcCode::FingerprintMinutiae,
                format!(
                    "{} minutiae, {} needs {}",
                    fp.minutiae.len(),
                    profile.name,
                    policy.min_minutiae
                ),
            );
            ok = false;
        }
        if ok {
            let extractor = sample
                .scan
                .is_some()
                .then(|| bio.extractor_name().to_string());
            good.push((finger, fp, extractor));
        }
    }
    let threshold = bio.duplicate_threshold();
    let mut duplicate = vec![false; good.len()];
    for j in 1..good.len() {
        for i in 0..j {
            let score = bio
                .score(&good[i].1, &good[j].1)
                .max(bio.score(&good[j].1, &good[i].1));
            if threshold.accepts(score) {
                r.push(
                    format!("fingers.{}", good[j].0),
                    QcCode::DuplicateFinger,
                    format!(
                        "matches {} (score {score:.3} >= {:.3}): the same finger twice",
                        good[i].0, threshold.score
                    ),
                );
                duplicate[j] = true;
                break;
            }
        }
    }
    let mut enrolled = Vec::new();
    for ((finger, fp, extractor), dup) in good.into_iter().zip(duplicate) {
        if dup {
            continue;
        }
        match card_template(&fp, finger, policy.template_format) {
            Ok(card_template) => enrolled.push(EnrolledFinger {
                finger,
                fingerprint: fp,
                extractor,
                card_template,
            }),
            Err(e) => r.push(
                format!("fingers.{finger}"),
                QcCode::TemplateEncode,
                e.to_string(),
            ),
        }
    }
    enrolled
}

/// Encodes for the card; a record carries the finger position.
pub(super) fn card_template(
    fp: &Fingerprint,
    finger: Finger,
    format: CardFormat,
) -> Result<Vec<u8>, matcher::Error> {
    match format {
        CardFormat::Record => {
            template::iso19794::encode(&IsoRecord::from_fingerprint(fp, finger.iso_position())?)
        }
        other => template::encode(fp, other),
    }
}

/// Extracts a scan or decodes a template; reports why not.
pub(super) fn fingerprint_of(
    a: &Applicant,
    finger: Finger,
    sample: &FingerSample,
    path: &str,
    bio: &dyn BiometricCheck,
    r: &mut QcReport,
) -> Option<Fingerprint> {
    match (&sample.scan, &sample.template) {
        (Some(_), Some(_)) => {
            r.push(
                path,
                QcCode::ConflictingFields,
                "give either a scan or a template, not both",
            );
            None
        }
        (None, None) => {
            r.push(path, QcCode::MissingField, "needs a scan or a template");
            None
        }
        (Some(scan), None) => {
            let dpi = sample.dpi.unwrap_or(DEFAULT_DPI);
            if !(250..=1000).contains(&dpi) {
                r.push(
                    format!("{path}.dpi"),
                    QcCode::InvalidValue,
                    format!("{dpi} dpi is outside 250..=1000"),
                );
                return None;
            }
            let bytes = read_blob(a, scan, &format!("{path}.scan"), r)?;
            match bio.extract(&bytes, dpi) {
                Ok(fp) => Some(fp),
                Err(e) => {
                    r.push(format!("{path}.scan"), QcCode::FingerprintUnreadable, e);
                    None
                }
            }
        }
        (None, Some(t)) => {
            if sample.dpi.is_some() {
                r.push(
                    format!("{path}.dpi"),
                    QcCode::UnexpectedField,
                    "a template states its own resolution",
                );
            }
            let tpath = format!("{path}.template");
            let bytes = read_blob(a, t, &tpath, r)?;
            let record = match template::decode_any(&bytes) {
                Ok((_, record)) => record,
                Err(e) => {
                    r.push(&tpath, QcCode::FingerprintUnreadable, e.to_string());
                    return None;
                }
            };
            let views = record.views();
            let want = finger.iso_position();
            let index = views
                .iter()
                .position(|v| v.finger_position == want)
                .or_else(|| (views.len() == 1 && views[0].finger_position == 0).then_some(0));
            match index.and_then(|i| record.fingerprints().into_iter().nth(i)) {
                Some(fp) => Some(fp),
                None => {
                    let found: Vec<String> = views
                        .iter()
                        .map(|v| match Finger::from_iso_position(v.finger_position) {
                            Some(f) => f.to_string(),
                            None => format!("position {}", v.finger_position),
                        })
                        .collect();
                    r.push(
                        &tpath,
                        QcCode::FingerPositionMismatch,
                        format!(
                            "no view of {finger} (position {want}); the record has: {}",
                            found.join(", ")
                        ),
                    );
                    None
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_judged_on_the_scale_of_the_extractor_that_made_the_templates() {
        let classical = matcher::extract::Classical::default();
        let by = TemplatesBy(&classical);
        assert_eq!(by.extractor_name(), "classical");
        assert_eq!(by.duplicate_threshold(), MatcherCheck.duplicate_threshold());
        assert_eq!(
            MatcherCheck.duplicate_threshold(),
            Threshold::FMR_0_01_PERCENT
        );
        assert_eq!(MatcherCheck.extractor_name(), "classical");
    }
}
