//! Synthetic fingerprints with ground truth, in the spirit of SFinGe (Cappelli, Maio,
//! Maltoni).
//!
//! A finger is a *master*: a class with its singular points ([`class`]), an orientation field
//! from the zero-pole model ([`orientation`]), a ridge density map ([`density`]) and a clean
//! ridge pattern grown by iterative Gabor filtering from random seeds ([`growth`]). Its
//! ground-truth minutiae come from the master's skeleton ([`truth`]). Each *impression*
//! ([`impression`]) places, rotates and elastically distorts the master, applies pressure
//! (dry/wet), a partial contact area, noise and scan artefacts, and moves the ground truth
//! with the same transform.
//!
//! Everything is driven by [`rng::Rng`], a SplitMix64 seeded by the caller: one seed gives
//! byte-identical sets on any machine, and each finger has its own derived seed so fingers can
//! be generated in parallel.
//!
//! ```no_run
//! use matcher::synth::{Master, SynthParams};
//! let params = SynthParams::default();
//! let master = Master::generate(&params, 7).unwrap();
//! let imp = master.impression(&params, 1).unwrap();
//! println!("{} ground-truth minutiae", imp.truth.minutiae.len());
//! ```

pub mod class;
pub mod density;
pub mod growth;
pub mod impression;
pub mod orientation;
pub mod rng;
pub mod truth;

use std::path::Path;

use opencv::core::Vector;
use opencv::imgcodecs;
use rayon::prelude::*;

use serde::{Deserialize, Serialize};

use crate::image::GrayImage;
use crate::template::{self, CardFormat};
use crate::{Error, Fingerprint, Minutia};
use rng::Rng;
use truth::TrueMinutia;

/// What a generated set looks like.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SynthParams {
    /// Impression width in pixels.
    pub width: u32,
    /// Impression height in pixels.
    pub height: u32,
    /// Resolution in dpi (ridge periods and distances scale with it).
    pub dpi: u32,
}

impl Default for SynthParams {
    /// 288 x 384 at 500 dpi, the format of FVC2004 DB4 (itself made by SFinGe).
    fn default() -> Self {
        SynthParams {
            width: 288,
            height: 384,
            dpi: 500,
        }
    }
}

impl SynthParams {
    /// Ridge scale relative to 500 dpi.
    fn scale(&self) -> f32 {
        self.dpi as f32 / 500.0
    }

    /// Master margin around the impression frame (room for displacement and rotation).
    fn margin(&self) -> usize {
        (48.0 * self.scale()).round() as usize
    }

    fn check(&self) -> Result<(), Error> {
        if !(250..=1000).contains(&self.dpi) {
            return Err(Error::ImageLimits(format!(
                "{} dpi is outside 250-1000 dpi",
                self.dpi
            )));
        }
        if !(64..=1024).contains(&self.width) || !(64..=1024).contains(&self.height) {
            return Err(Error::ImageLimits(format!(
                "{}x{} px is outside 64-1024 px",
                self.width, self.height
            )));
        }
        Ok(())
    }
}

/// A synthetic finger: its clean ridge pattern and ground-truth minutiae.
#[derive(Debug, Clone)]
pub struct Master {
    /// Master width (impression width plus margins).
    pub width: usize,
    /// Master height.
    pub height: usize,
    /// Ridge pattern, row-major, in [-1, 1], negative on ridges.
    pub ridges: Vec<f32>,
    /// Ground-truth minutiae in master pixels.
    pub minutiae: Vec<TrueMinutia>,
    /// Henry class.
    pub class: class::Class,
    /// Finger centre (master pixels): where contact areas are centred.
    pub center: (f32, f32),
    /// The finger's seed; impressions derive theirs from it.
    pub seed: u64,
}

/// One impression with its ground truth.
#[derive(Debug, Clone)]
pub struct Impression {
    /// The scan.
    pub image: GrayImage,
    /// Ground-truth minutiae (impression pixels), as an extractor would report them.
    pub truth: Fingerprint,
    /// Fraction of the image inside the contact area.
    pub contact_fraction: f32,
    /// Contact area, row-major: true where the finger touches the sensor.
    pub contact: Vec<bool>,
    /// For each ground-truth minutia, its index in the master's minutiae (shared by all
    /// impressions of the finger).
    pub master_index: Vec<usize>,
    /// What the impression went through (skin, noise, distortion, contact).
    pub conditions: impression::Conditions,
}

/// Share of the frame a full fingertip print covers; the ground truth's quality is the contact
/// area relative to it.
const FULL_PRINT_FRACTION: f32 = 0.5;

/// ISO direction (counter-clockwise, y up) of a traced image angle (y down; an ending pointing
/// out of its ridge, as the extractor's detection stage traces it), turned half a turn so that
/// an ending points into its ridge and a bifurcation between its branches (ISO/IEC 19794-2).
fn iso_direction(image_angle: f32) -> f32 {
    use std::f32::consts::{PI, TAU};
    let a = (TAU - image_angle + PI).rem_euclid(TAU);
    if a >= std::f32::consts::TAU {
        0.0
    } else {
        a
    }
}

impl Master {
    /// Generates finger `seed` (see [`finger_seed`] for sets).
    pub fn generate(params: &SynthParams, seed: u64) -> Result<Master, Error> {
        params.check()?;
        let scale = params.scale();
        let m = params.margin();
        let (width, height) = (
            params.width as usize + 2 * m,
            params.height as usize + 2 * m,
        );
        let mut rng = Rng::new(seed);
        let center = (
            width as f32 / 2.0 + rng.range(-10.0, 10.0) * scale,
            height as f32 / 2.0 + rng.range(-10.0, 10.0) * scale,
        );
        let sing = class::draw(&mut rng, center.0, center.1, scale);
        let orient = orientation::compute(&mut rng, &sing, width, height, scale);
        let period = density::compute(&mut rng, &sing, width, height, scale);
        let ridges = growth::grow(&mut rng, &orient, &period, width, height);
        let mut minutiae = truth::compute(&ridges, width, height, (12.0 * scale) as usize);
        // Snap each direction to the known ridge orientation, keeping the traced sense.
        for mt in &mut minutiae {
            let t = orient[mt.y as usize * width + mt.x as usize];
            let d = |a: f32| {
                let e = (a - mt.angle).rem_euclid(std::f32::consts::TAU);
                e.min(std::f32::consts::TAU - e)
            };
            let snapped = if d(t) <= d(t + std::f32::consts::PI) {
                t
            } else {
                t + std::f32::consts::PI
            };
            if d(snapped) < 0.6 {
                mt.angle = snapped.rem_euclid(std::f32::consts::TAU);
            }
        }
        Ok(Master {
            width,
            height,
            ridges,
            minutiae,
            class: sing.class,
            center,
            seed,
        })
    }

    /// Impression number `index` (1-based in sets) of this finger.
    pub fn impression(&self, params: &SynthParams, index: u32) -> Result<Impression, Error> {
        params.check()?;
        let mut rng = Rng::derive(self.seed, u64::from(index));
        let (w, h) = (params.width as usize, params.height as usize);
        let r = impression::render(self, &mut rng, w, h, params.scale());
        let minutiae = r
            .minutiae
            .iter()
            .map(|m| Minutia {
                x: m.x,
                y: m.y,
                direction: iso_direction(m.angle),
                kind: m.kind,
                quality: 100,
            })
            .collect();
        let image = GrayImage::from_raw(params.width, params.height, r.pixels)?;
        Ok(Impression {
            image,
            truth: Fingerprint {
                width: params.width,
                height: params.height,
                dpi_x: params.dpi,
                dpi_y: params.dpi,
                // A full fingertip print fills about half of the frame (FVC2004 DB4): quality
                // is the share of such a print that touched, so partial prints score lower.
                quality: (100.0 * (r.contact_fraction / FULL_PRINT_FRACTION).clamp(0.0, 1.0)) as u8,
                minutiae,
            },
            contact_fraction: r.contact_fraction,
            contact: r.contact,
            master_index: r.master_index,
            conditions: r.conditions,
        })
    }
}

/// The seed of finger `finger` (1-based) of the set made with `set_seed`.
pub fn finger_seed(set_seed: u64, finger: u32) -> u64 {
    Rng::derive(set_seed, u64::from(finger)).next_u64()
}

/// PNG bytes of an image (OpenCV imgcodecs, strongest compression: sets are kept in the
/// repository).
pub fn encode_png(image: &GrayImage) -> Result<Vec<u8>, Error> {
    let mat = image.to_mat()?;
    let mut buf = Vector::<u8>::new();
    let params = Vector::from_slice(&[imgcodecs::IMWRITE_PNG_COMPRESSION, 9]);
    imgcodecs::imencode(".png", &mat, &mut buf, &params)?;
    Ok(buf.iter().collect())
}

/// The three files of one impression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpressionFiles {
    /// The scan, PNG.
    pub png: Vec<u8>,
    /// The ground truth, `matcher::Fingerprint` as pretty JSON.
    pub json: Vec<u8>,
    /// The ground truth as an ISO/IEC 19794-2 record.
    pub iso: Vec<u8>,
}

/// The three files of one impression: PNG scan, JSON ground truth, ISO/IEC 19794-2 record.
pub fn impression_files(imp: &Impression) -> Result<ImpressionFiles, Error> {
    let png = encode_png(&imp.image)?;
    let mut json = serde_json::to_vec_pretty(&imp.truth)
        .map_err(|e| Error::Encode(format!("ground truth JSON: {e}")))?;
    json.push(b'\n');
    let iso = template::encode(&imp.truth, CardFormat::Record)?;
    Ok(ImpressionFiles { png, json, iso })
}

/// Name of the file, beside a generated set, that records how it was made and each
/// impression's [`impression::Conditions`].
pub const SET_FILE: &str = "synth.json";

/// How a set was made and what each impression went through: the content of [`SET_FILE`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SetInfo {
    /// Seed of the whole set.
    pub seed: u64,
    /// Number of fingers.
    pub fingers: u32,
    /// Impressions per finger.
    pub impressions: u32,
    /// Impression width (pixels).
    pub width: u32,
    /// Impression height (pixels).
    pub height: u32,
    /// Resolution (dpi).
    pub dpi: u32,
    /// One entry per impression, finger by finger.
    pub conditions: Vec<NamedConditions>,
}

/// The conditions of one impression of a set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct NamedConditions {
    /// Finger number (from 1).
    pub finger: u32,
    /// Impression number (from 1).
    pub impression: u32,
    /// What it went through.
    #[serde(flatten)]
    pub conditions: impression::Conditions,
}

impl SetInfo {
    /// Reads [`SET_FILE`] in `dir`.
    pub fn load(dir: &Path) -> Result<SetInfo, Error> {
        let bytes = std::fs::read(dir.join(SET_FILE))?;
        serde_json::from_slice(&bytes).map_err(|e| {
            Error::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", dir.join(SET_FILE).display()),
            ))
        })
    }

    /// The conditions of impression `impression` of finger `finger`.
    pub fn get(&self, finger: u32, impression: u32) -> Option<&impression::Conditions> {
        self.conditions
            .iter()
            .find(|c| c.finger == finger && c.impression == impression)
            .map(|c| &c.conditions)
    }
}

/// Writes `fingers` x `impressions` scans to `dir` as `<finger>_<impression>.png|json|iso`
/// (fingers and impressions numbered from 1), fingers in parallel, and [`SET_FILE`]. Returns
/// the number of impressions written.
pub fn write_set(
    dir: &Path,
    params: &SynthParams,
    seed: u64,
    fingers: u32,
    impressions: u32,
) -> Result<usize, Error> {
    params.check()?;
    std::fs::create_dir_all(dir)?;
    let per_finger = (1..=fingers)
        .into_par_iter()
        .map(|f| {
            let master = Master::generate(params, finger_seed(seed, f))?;
            let mut conditions = Vec::with_capacity(impressions as usize);
            for i in 1..=impressions {
                let imp = master.impression(params, i)?;
                let ImpressionFiles { png, json, iso } = impression_files(&imp)?;
                std::fs::write(dir.join(format!("{f}_{i}.png")), png)?;
                std::fs::write(dir.join(format!("{f}_{i}.json")), json)?;
                std::fs::write(dir.join(format!("{f}_{i}.iso")), iso)?;
                conditions.push(NamedConditions {
                    finger: f,
                    impression: i,
                    conditions: imp.conditions,
                });
            }
            Ok(conditions)
        })
        .collect::<Result<Vec<Vec<NamedConditions>>, Error>>()?;
    let info = SetInfo {
        seed,
        fingers,
        impressions,
        width: params.width,
        height: params.height,
        dpi: params.dpi,
        conditions: per_finger.into_iter().flatten().collect(),
    };
    let mut json =
        serde_json::to_vec_pretty(&info).map_err(|e| Error::Encode(format!("{SET_FILE}: {e}")))?;
    json.push(b'\n');
    std::fs::write(dir.join(SET_FILE), json)?;
    Ok(info.conditions.len())
}
