//! Issue 16: the foreign-resident card carries the enrolment iris images in DG4 (ISO/IEC
//! 19794-6:2005 records in a biometric information group template), protected like DG3.
//! QC of the `iris` field, the profile rule tying DG4 to it, and DG4 in the plan.

use base64::Engine as _;
use issuance::applicant::calendar::GregorianDate;
use issuance::applicant::qc::{check_on, MatcherCheck, QcCode, IRIS_MAX_BYTES};
use issuance::applicant::{Applicant, Blob};
use issuance::lds::{self, Eye, IrisImageFormat};
use issuance::profile::{Profile, ProfileSet, BUILTIN};
use test_support::paths;
use test_support::perso;
use test_support::pki::temp_signer;

const TODAY: GregorianDate = GregorianDate {
    year: 2026,
    month: 11,
    day: 22,
};

fn foreign_profile() -> Profile {
    ProfileSet::builtin()
        .unwrap()
        .get("foreign-resident")
        .unwrap()
        .clone()
}

/// foreign-valid-2 has 64x64 PNG iris images (foreign-valid-1 small JPEGs).
fn foreign_record() -> Applicant {
    Applicant::load(paths::applicants().join("foreign-valid-2.json")).unwrap()
}

fn inline(bytes: &[u8]) -> Blob {
    Blob {
        path: None,
        base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
    }
}

fn issues(a: &Applicant) -> Vec<(String, QcCode)> {
    check_on(a, &foreign_profile(), &MatcherCheck, TODAY)
        .unwrap_err()
        .issues
        .into_iter()
        .map(|i| (i.path, i.code))
        .collect()
}

#[test]
fn fixture_iris_images_pass_qc_as_raw_gray_of_both_eyes() {
    let v = check_on(&foreign_record(), &foreign_profile(), &MatcherCheck, TODAY).unwrap();
    assert_eq!(v.iris.len(), 2);
    assert_eq!((v.iris[0].eye, v.iris[1].eye), (Eye::Right, Eye::Left));
    for i in &v.iris {
        // PNG is not an ISO/IEC 19794-6:2005 format: stored as raw 8-bit gray.
        assert_eq!(i.format, IrisImageFormat::MonoRaw);
        assert_eq!((i.width, i.height, i.data.len()), (64, 64, 64 * 64));
    }
    // Other kinds neither need nor read iris images.
    let national = ProfileSet::builtin().unwrap();
    assert!(!national.get("national-id").unwrap().requires("iris"));
}

#[test]
fn missing_iris_or_eye_is_missing_field() {
    let mut a = foreign_record();
    a.iris = None;
    assert_eq!(issues(&a), vec![("iris".to_string(), QcCode::MissingField)]);
    let mut a = foreign_record();
    a.iris.as_mut().unwrap().left = None;
    assert_eq!(
        issues(&a),
        vec![("iris.left".to_string(), QcCode::MissingField)]
    );
}

#[test]
fn undecodable_or_oversized_iris_is_refused() {
    let mut a = foreign_record();
    a.iris.as_mut().unwrap().right = Some(inline(b"not an image at all"));
    assert_eq!(
        issues(&a),
        vec![("iris.right".to_string(), QcCode::InvalidImage)]
    );
    // A PNG signature with garbage after it: OpenCV cannot decode it.
    let mut a = foreign_record();
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend_from_slice(&[0u8; 40]);
    a.iris.as_mut().unwrap().left = Some(inline(&png));
    assert_eq!(
        issues(&a),
        vec![("iris.left".to_string(), QcCode::InvalidImage)]
    );
    // A JPEG without a frame header.
    let mut a = foreign_record();
    a.iris.as_mut().unwrap().left = Some(inline(&[0xFF, 0xD8, 0xFF, 0xD9]));
    assert_eq!(
        issues(&a),
        vec![("iris.left".to_string(), QcCode::InvalidImage)]
    );
    // Larger than DG4 takes per eye.
    let mut a = foreign_record();
    // A JPEG is checked by its frame header and markers only; this one is too long.
    let mut big = vec![
        0xFF, 0xD8, 0xFF, 0xC0, 0, 11, 8, 0, 200, 0, 200, 1, 1, 0x11, 0,
    ];
    big.resize(IRIS_MAX_BYTES + 1, 0);
    big.extend_from_slice(&[0xFF, 0xD9]);
    a.iris.as_mut().unwrap().right = Some(inline(&big));
    assert_eq!(
        issues(&a),
        vec![("iris.right".to_string(), QcCode::ImageTooLarge)]
    );
}

#[test]
fn a_jpeg_iris_is_stored_as_given() {
    let jpeg = std::fs::read(paths::applicants().join("face-8x8.jpg")).unwrap();
    let mut a = foreign_record();
    a.iris.as_mut().unwrap().left = Some(inline(&jpeg));
    let v = check_on(&a, &foreign_profile(), &MatcherCheck, TODAY).unwrap();
    assert_eq!(v.iris[1].format, IrisImageFormat::MonoJpeg);
    assert_eq!((v.iris[1].width, v.iris[1].height), (8, 8));
    assert_eq!(v.iris[1].data, jpeg);
}

#[test]
fn dg4_and_the_iris_field_go_together_in_a_profile() {
    let text = BUILTIN
        .iter()
        .find(|(n, _)| *n == "foreign-resident")
        .unwrap()
        .1;
    let no_dg4 = text.replace("\"DG4\", ", "");
    let e = Profile::from_toml("t", &no_dg4).unwrap_err();
    assert!(e.to_string().contains("DG4"), "{e}");
    let no_field = text.replace("    \"iris\",\n", "");
    assert_ne!(no_field, text);
    let e = Profile::from_toml("t", &no_field).unwrap_err();
    assert!(e.to_string().contains("DG4"), "{e}");
    assert_eq!(
        Profile::from_toml("t", text).unwrap().data_groups,
        vec![1, 2, 3, 4, 11, 12]
    );
}

#[test]
fn the_foreign_resident_plan_writes_dg4_that_round_trips() {
    let (_pki, signer) = temp_signer();
    let plan = perso::plan(
        &paths::applicants().join("foreign-valid-2.json"),
        &signer,
        "A00000042",
    );
    let dg4 = plan.data_group(4).expect("DG4 in the plan");
    let f = plan.files.iter().find(|f| f.dg == Some(4)).unwrap();
    assert_eq!(f.fid, apdu::layout::EF_DG4);
    let eyes = lds::iris::parse_dg4(dg4).unwrap();
    assert_eq!(eyes.len(), 2);
    assert_eq!(lds::iris::build_dg4(&eyes).unwrap(), dg4);
    // Hashed in the SOD like every other data group.
    let dgs: Vec<u8> = plan.data_groups().iter().map(|(n, _)| *n).collect();
    assert_eq!(dgs, vec![1, 2, 3, 4, 11, 12]);
}
