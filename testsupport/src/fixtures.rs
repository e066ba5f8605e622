//! The committed fixtures, read.

use serde_json::Value;

use crate::paths;

/// Applicant record `name` of `fixtures/applicants` (`"national-valid-1.json"`) as JSON, to
/// edit before use.
pub fn applicant(name: &str) -> Value {
    let path = paths::applicants().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The bytes of scan `name` of `fixtures/fingerprints` (`"1_2.png"`).
pub fn scan(name: &str) -> Vec<u8> {
    let path = paths::fingerprints().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Copies scans `<finger>_<impression>.png` of `fixtures/fingerprints`, fingers `1..=fingers`
/// and impressions `1..=impressions`, into `dir`: a small set for a bench run.
pub fn copy_scans(dir: &std::path::Path, fingers: u32, impressions: u32) {
    for finger in 1..=fingers {
        for impression in 1..=impressions {
            let name = format!("{finger}_{impression}.png");
            std::fs::copy(paths::fingerprints().join(&name), dir.join(&name))
                .unwrap_or_else(|e| panic!("cannot copy {name}: {e}"));
        }
    }
}

/// The ISO templates (`*.iso`) in `dir` that reach `min_quality` and `min_minutiae`, the first
/// in name order for each synthetic finger (`<finger>_<impression>.iso`). The synthetic
/// fixtures are regenerated from time to time: tests choose templates by content, not name.
#[cfg(feature = "issuance")]
pub fn usable_templates(
    dir: &std::path::Path,
    min_quality: u8,
    min_minutiae: usize,
) -> Vec<std::path::PathBuf> {
    use matcher::template::{decode, CardFormat};

    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "iso"))
        .collect();
    paths.sort();
    let mut by_finger = std::collections::BTreeMap::new();
    for p in paths {
        let finger = p
            .file_stem()
            .unwrap()
            .to_str()
            .unwrap()
            .split('_')
            .next()
            .unwrap()
            .to_string();
        let bytes = std::fs::read(&p).unwrap();
        let Ok(fp) = decode(&bytes, CardFormat::Record, 500) else {
            continue;
        };
        if fp.quality >= min_quality && fp.minutiae.len() >= min_minutiae {
            by_finger.entry(finger).or_insert(p);
        }
    }
    by_finger.into_values().collect()
}
