//! The production line's data model: national and postal codes, the Solar Hijri calendar, card
//! profiles and applicant quality control.
//!
//! The fixture records use the project's synthetic scans (`fixtures/fingerprints`); one test also
//! reads the real scans in `../shared/fingerprints` (next to the repository) and skips with a
//! message when they are absent; the others use synthetic templates made here.

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine as _;
use issuance::applicant::calendar::{is_leap, DateError, GregorianDate, SolarDate};
use issuance::applicant::ids::{IdError, NationalCode, PostalCode};
use issuance::applicant::qc::{check_on, Gender, MatcherCheck, QcCode, QcReport};
use issuance::applicant::{Applicant, Blob, FileAccess, Finger, FingerSample};
use issuance::profile::{Profile, ProfileError, ProfileSet, BUILTIN};
use matcher::template::{iso19794, CardFormat, IsoRecord};
use matcher::{Fingerprint, Minutia, MinutiaKind};
use test_support::paths;

/// The day the fixture expectations hold on (ages are computed on it): 1405-09-01 SH.
const TODAY: GregorianDate = GregorianDate {
    year: 2026,
    month: 11,
    day: 22,
};

fn builtin(name: &str) -> Profile {
    ProfileSet::builtin().unwrap().get(name).unwrap().clone()
}

fn sh(text: &str) -> SolarDate {
    SolarDate::parse(text).unwrap()
}

fn greg(text: &str) -> GregorianDate {
    GregorianDate::parse(text).unwrap()
}

// ---- national code, postal code ----

#[test]
fn national_code_check_digit() {
    for good in [
        "0499370899",
        "0012345679",
        "2270105621",
        "4481234571",
        "0790419904",
    ] {
        let code = NationalCode::parse(good).unwrap();
        assert_eq!(code.to_string(), good);
    }
    // Every wrong last digit is refused, and the error says which digit was expected.
    for d in 0..10u8 {
        let text = format!("049937089{d}");
        match NationalCode::parse(&text) {
            Ok(_) => assert_eq!(d, 9),
            Err(IdError::CheckDigit {
                found, expected, ..
            }) => {
                assert_eq!((found, expected), (d, 9));
            }
            Err(e) => panic!("{text}: unexpected {e}"),
        }
    }
    // s < 2 keeps s: 100000001 -> s = 10 + 2 = 12 mod 11 = 1 -> check 1.
    assert_eq!(NationalCode::check_digit(&[1, 0, 0, 0, 0, 0, 0, 0, 1]), 1);
    assert!(NationalCode::parse("1000000011").is_ok());
}

#[test]
fn national_code_repeated_digits_and_shape() {
    for d in 0..10 {
        let text = d.to_string().repeat(10);
        assert!(
            matches!(NationalCode::parse(&text), Err(IdError::Repeated(_))),
            "{text} must be refused"
        );
    }
    for bad in [
        "",
        "049937089",
        "04993708990",
        "049937089a",
        "０499370899",
        " 499370899",
    ] {
        assert!(
            matches!(NationalCode::parse(bad), Err(IdError::Digits(_))),
            "{bad:?}"
        );
    }
}

#[test]
fn postal_code() {
    assert_eq!(
        PostalCode::parse("1438913111").unwrap().to_string(),
        "1438913111"
    );
    for bad in [
        "143891311",
        "14389131110",
        "14389-1311",
        "abcdefghij",
        "0000000000",
    ] {
        assert!(PostalCode::parse(bad).is_err(), "{bad:?}");
    }
}

// ---- calendar ----

#[test]
fn solar_hijri_known_conversion_pairs() {
    let pairs = [
        ("1403-01-01", "2024-03-20"),
        ("1399-12-30", "2021-03-20"),
        ("1370-01-01", "1991-03-21"),
        ("1402-12-29", "2024-03-19"),
        ("1404-01-01", "2025-03-21"),
        ("1357-11-22", "1979-02-11"),
        ("1405-09-01", "2026-11-22"),
        ("1348-10-11", "1970-01-01"),
    ];
    for (s, g) in pairs {
        assert_eq!(sh(s).to_gregorian(), greg(g), "{s} -> {g}");
        assert_eq!(
            SolarDate::from_gregorian(greg(g)).unwrap(),
            sh(s),
            "{g} -> {s}"
        );
        assert_eq!(sh(s).to_string(), s);
    }
}

#[test]
fn solar_hijri_leap_years_and_month_lengths() {
    for y in [1370, 1375, 1379, 1383, 1387, 1391, 1395, 1399, 1403, 1408] {
        assert!(is_leap(y), "{y} is leap");
        assert!(SolarDate::parse(&format!("{y}-12-30")).is_ok());
    }
    for y in [1400, 1401, 1402, 1404, 1405] {
        assert!(!is_leap(y), "{y} is not leap");
    }
    assert!(SolarDate::parse("1370-06-31").is_ok());
    assert!(SolarDate::parse("1370-11-30").is_ok());
}

#[test]
fn solar_hijri_invalid_dates() {
    assert_eq!(
        SolarDate::parse("1402-12-30"),
        Err(DateError::Day {
            year: 1402,
            month: 12,
            day: 30,
            len: 29
        })
    );
    assert_eq!(SolarDate::parse("1370-13-01"), Err(DateError::Month(13)));
    assert_eq!(SolarDate::parse("1370-00-01"), Err(DateError::Month(0)));
    assert!(matches!(
        SolarDate::parse("1370-01-32"),
        Err(DateError::Day { len: 31, .. })
    ));
    assert!(matches!(
        SolarDate::parse("1370-07-31"),
        Err(DateError::Day { len: 30, .. })
    ));
    assert!(matches!(
        SolarDate::parse("1370-01-00"),
        Err(DateError::Day { .. })
    ));
    for bad in [
        "1370/01/01",
        "1370-1-01",
        "",
        "۱۳۷۰-۰۱-۰۱",
        "13700-1-01",
        "+370-01-01",
    ] {
        assert!(
            matches!(SolarDate::parse(bad), Err(DateError::Syntax(_))),
            "{bad:?}"
        );
    }
    assert_eq!(
        SolarDate::parse("0999-01-01"),
        Err(DateError::YearOutOfRange(999))
    );
}

#[test]
fn age_counts_completed_years() {
    let birth = sh("1390-06-15");
    assert_eq!(birth.age_on(sh("1405-06-14")), 14);
    assert_eq!(birth.age_on(sh("1405-06-15")), 15);
    assert_eq!(birth.age_on(sh("1390-06-15")), 0);
    assert_eq!(birth.age_on(sh("1389-01-01")), -2);
}

// ---- profiles ----

#[test]
fn builtin_profiles_load() {
    let set = ProfileSet::builtin().unwrap();
    assert_eq!(set.iter().count(), BUILTIN.len());
    let n = set.get("national-id").unwrap();
    assert_eq!(n.minimum_age, 15);
    assert_eq!(n.data_groups, vec![1, 2, 3, 11, 12]);
    assert_eq!(
        n.fingers.positions,
        vec![Finger::RightIndex, Finger::LeftIndex]
    );
    assert_eq!(n.fingers.template_format, CardFormat::Compact);
    assert!((4..=8).contains(&n.pin.min_length) && n.pin.tries == 3);
    let fz = set.get("free-zone-citizen").unwrap();
    assert_eq!(fz.citizen_groups.len(), 14);
    assert!(fz.citizen_groups.iter().any(|g| g.code == "investor"));
    assert!(fz.requires("free_zone.citizen_group"));
    let fr = set.get("foreign-resident").unwrap();
    assert_eq!(fr.validity_years, 1);
    assert!(fr.requires("foreign_resident") && !fr.requires("national_code"));
    assert_eq!(fr.fingers.template_format, CardFormat::Record);
}

fn national_toml() -> String {
    BUILTIN[0].1.to_owned()
}

fn invalid_key(text: &str) -> String {
    match Profile::from_toml("test.toml", text) {
        Err(ProfileError::Invalid { key, .. }) => key,
        other => panic!("expected an invalid value, got {other:?}"),
    }
}

#[test]
fn broken_profiles_are_clear_errors() {
    let err = Profile::from_toml("broken.toml", "name = \"x\"\n[fingers\n").unwrap_err();
    assert!(matches!(err, ProfileError::Syntax { .. }), "{err}");
    assert!(err.to_string().contains("broken.toml"));

    let unknown =
        national_toml().replace("minimum_age = 15", "minimum_age = 15\ncolour = \"blue\"");
    let err = Profile::from_toml("unknown.toml", &unknown).unwrap_err();
    assert!(err.to_string().contains("colour"), "{err}");

    let unknown_nested = national_toml().replace("tries = 3", "tries = 3\npuk = 8");
    let err = Profile::from_toml("nested.toml", &unknown_nested).unwrap_err();
    assert!(err.to_string().contains("puk"), "{err}");

    let missing = national_toml().replace("validity_years = 7\n", "");
    let err = Profile::from_toml("missing.toml", &missing).unwrap_err();
    assert!(err.to_string().contains("validity_years"), "{err}");

    let t = national_toml();
    let cases = [
        (
            "min_quality = 40",
            "min_quality = 101",
            "fingers.min_quality",
        ),
        (
            "min_minutiae = 12",
            "min_minutiae = 400",
            "fingers.min_minutiae",
        ),
        ("min_length = 4", "min_length = 3", "pin"),
        ("max_length = 8", "max_length = 2", "pin"),
        ("tries = 3", "tries = 0", "pin.tries"),
        ("validity_years = 7", "validity_years = 0", "validity_years"),
        ("minimum_age = 15", "minimum_age = 300", "minimum_age"),
        ("\"DG12\"]", "\"DG12\", \"DG17\"]", "data_groups"),
        ("\"DG12\"]", "\"DG12\", \"DG11\"]", "data_groups"),
        ("[\"DG1\", ", "[", "data_groups"),
        ("\"DG3\", ", "", "fingers.positions"),
        ("\"DG2\", ", "", "data_groups"),
        (
            "\"left_index\"]",
            "\"left_index\", \"right_index\"]",
            "fingers.positions",
        ),
        ("\"compact\"", "\"tiny\"", "fingers.template_format"),
        (
            "\"address\",",
            "\"address\", \"shoe_size\",",
            "required_fields",
        ),
        ("name = \"national-id\"", "name = \"National ID\"", "name"),
    ];
    for (from, to, key) in cases {
        assert!(t.contains(from), "{from}");
        assert_eq!(invalid_key(&t.replacen(from, to, 1)), key, "{from} -> {to}");
    }
    // An unknown finger name is a schema error naming the value.
    let err = Profile::from_toml("f.toml", &t.replace("\"left_index\"]", "\"left_pinky\"]"));
    assert!(err.unwrap_err().to_string().contains("left_pinky"));
}

#[test]
fn profiles_are_overridden_from_a_directory() {
    let dir = tempfile::tempdir().unwrap();
    let older = national_toml().replace("minimum_age = 15", "minimum_age = 18");
    std::fs::write(dir.path().join("national-id.toml"), older).unwrap();
    let extra = national_toml().replace("name = \"national-id\"", "name = \"national-id-test\"");
    std::fs::write(dir.path().join("national-id-test.toml"), extra).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a profile").unwrap();
    let set = ProfileSet::load(Some(dir.path())).unwrap();
    assert_eq!(set.get("national-id").unwrap().minimum_age, 18);
    assert_eq!(set.get("national-id-test").unwrap().minimum_age, 15);
    assert_eq!(set.get("foreign-resident").unwrap().validity_years, 1);

    std::fs::write(dir.path().join("wrong-name.toml"), national_toml()).unwrap();
    let err = ProfileSet::load(Some(dir.path())).unwrap_err();
    assert!(err.to_string().contains("wrong-name"), "{err}");

    let err = ProfileSet::load(Some(&dir.path().join("absent"))).unwrap_err();
    assert!(matches!(err, ProfileError::Io { .. }));
}

// ---- QC with synthetic templates ----

/// A deterministic synthetic fingerprint: `n` minutiae scattered by a linear congruential
/// generator seeded with `seed`.
fn synthetic(seed: u64, n: usize, quality: u8) -> Fingerprint {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = |m: f32| {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((s >> 33) as f32 / (1u64 << 31) as f32) * m
    };
    let minutiae = (0..n)
        .map(|i| Minutia {
            x: 40.0 + next(320.0),
            y: 40.0 + next(420.0),
            direction: next(std::f32::consts::TAU - 0.01),
            kind: if i % 2 == 0 {
                MinutiaKind::Ending
            } else {
                MinutiaKind::Bifurcation
            },
            quality: 60,
        })
        .collect();
    Fingerprint {
        width: 400,
        height: 500,
        dpi_x: 500,
        dpi_y: 500,
        quality,
        minutiae,
    }
}

fn inline_template(fp: &Fingerprint, position: u8) -> FingerSample {
    let bytes = iso19794::encode(&IsoRecord::from_fingerprint(fp, position).unwrap()).unwrap();
    FingerSample {
        template: Some(Blob {
            path: None,
            base64: Some(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }),
        ..FingerSample::default()
    }
}

fn face() -> Blob {
    Blob {
        path: Some(paths::applicants().join("face-8x8.jpg")),
        base64: None,
    }
}

/// A valid national-card record with synthetic fingerprints.
fn valid_national() -> Applicant {
    let mut a = Applicant::from_json(
        r#"{
          "tracking_code": "NID-T-1",
          "profile": "national-id",
          "national_code": "0499370899",
          "name": { "fa": { "first": "علی", "last": "رضایی" },
                    "latin": { "first": "Ali", "last": "Rezaei" } },
          "father_name": "حسن",
          "birth_date": "1370-01-01",
          "gender": "male",
          "birth_certificate_serial": "12-345678",
          "postal_code": "1438913111",
          "address": "تهران، خیابان آزادی"
        }"#,
    )
    .unwrap();
    // A record an operator's tool loads: it may name fixture files (issue 18: records from
    // clients may not).
    a.files = FileAccess::Local(paths::applicants());
    a.face = Some(face());
    a.fingers.insert(
        Finger::RightIndex,
        inline_template(&synthetic(1, 40, 80), 2),
    );
    a.fingers
        .insert(Finger::LeftIndex, inline_template(&synthetic(2, 40, 80), 7));
    a
}

fn issues(r: &QcReport) -> BTreeSet<(String, &'static str)> {
    r.issues
        .iter()
        .map(|i| (i.path.clone(), i.code.as_str()))
        .collect()
}

fn set(pairs: &[(&str, &'static str)]) -> BTreeSet<(String, &'static str)> {
    pairs.iter().map(|&(p, c)| (p.to_owned(), c)).collect()
}

#[test]
fn qc_accepts_a_valid_record_and_types_it() {
    let profile = builtin("national-id");
    let v = check_on(&valid_national(), &profile, &MatcherCheck, TODAY).unwrap();
    assert_eq!(v.national_code.unwrap().to_string(), "0499370899");
    assert_eq!(v.birth_date_gregorian, greg("1991-03-21"));
    assert_eq!(v.age, 35);
    assert_eq!(v.gender, Gender::Male);
    assert_eq!(v.gender.icao_code(), 'M');
    assert!(v.face_jpeg.unwrap().starts_with(&[0xFF, 0xD8]));
    let fingers: Vec<Finger> = v.fingers.iter().map(|f| f.finger).collect();
    assert_eq!(fingers, vec![Finger::RightIndex, Finger::LeftIndex]);
    for f in &v.fingers {
        // Compact card format: 3 bytes per minutia.
        assert_eq!(f.card_template.len(), 3 * f.fingerprint.minutiae.len());
        assert_eq!(f.fingerprint.minutiae.len(), 40);
        // Submitted templates: no extractor of ours made them (DG3 names no creator).
        assert_eq!(f.extractor, None);
    }
}

#[test]
fn qc_reports_every_problem_at_once() {
    let profile = builtin("national-id");
    let mut a = valid_national();
    a.tracking_code.clear();
    a.national_code = Some("0499370898".into());
    a.name.fa.first = "Ali".into();
    a.name.latin.last.clear();
    a.birth_date = "1402-12-30".into();
    a.gender = "m".into();
    a.postal_code = Some("12345".into());
    a.father_name = None;
    a.face = Some(Blob {
        path: Some("face.jpg".into()),
        base64: Some("AAAA".into()),
    });
    a.fingers.insert(
        Finger::RightIndex,
        inline_template(&synthetic(3, 40, 10), 2),
    );
    a.fingers
        .insert(Finger::LeftIndex, inline_template(&synthetic(4, 5, 90), 7));
    a.free_zone = Some(Default::default());
    let r = check_on(&a, &profile, &MatcherCheck, TODAY).unwrap_err();
    assert_eq!(
        issues(&r),
        set(&[
            ("tracking_code", "missing_field"),
            ("national_code", "invalid_national_code"),
            ("name.fa.first", "invalid_name"),
            ("name.latin.last", "missing_field"),
            ("father_name", "missing_field"),
            ("birth_date", "invalid_date"),
            ("gender", "invalid_value"),
            ("postal_code", "invalid_postal_code"),
            ("face", "conflicting_fields"),
            ("free_zone", "unexpected_field"),
            ("fingers.right_index.quality", "fingerprint_quality"),
            ("fingers.left_index.minutiae", "fingerprint_minutiae"),
        ]),
        "{r}"
    );
    // Messages are for people: each says something specific.
    assert!(r.issues.iter().all(|i| !i.message.is_empty()));
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["issues"][0]["code"], "missing_field");
}

#[test]
fn qc_age_and_profile_specific_fields() {
    let national = builtin("national-id");
    let mut a = valid_national();
    a.birth_date = "1391-09-02".into(); // 13 on 1405-09-01
    let r = check_on(&a, &national, &MatcherCheck, TODAY).unwrap_err();
    assert_eq!(issues(&r), set(&[("birth_date", "too_young")]));
    a.birth_date = "1390-09-01".into(); // 15 today exactly
    assert_eq!(
        check_on(&a, &national, &MatcherCheck, TODAY).unwrap().age,
        15
    );
    a.birth_date = "1405-09-02".into();
    let r = check_on(&a, &national, &MatcherCheck, TODAY).unwrap_err();
    assert_eq!(issues(&r), set(&[("birth_date", "invalid_date")]));

    let mut a = valid_national();
    let r = check_on(&a, &builtin("free-zone-citizen"), &MatcherCheck, TODAY).unwrap_err();
    assert_eq!(
        issues(&r),
        set(&[
            ("profile", "profile_mismatch"),
            ("free_zone.citizen_group", "missing_field"),
        ])
    );
    a.profile = "foreign-resident".into();
    a.fingers.clear();
    let r = check_on(&a, &builtin("foreign-resident"), &MatcherCheck, TODAY).unwrap_err();
    let expected = set(&[
        ("foreign_resident", "missing_field"),
        ("iris", "missing_field"),
        ("fingers.right_thumb", "missing_field"),
        ("fingers.right_index", "missing_field"),
        ("fingers.left_thumb", "missing_field"),
        ("fingers.left_index", "missing_field"),
    ]);
    assert_eq!(issues(&r), expected, "{r}");
}

#[test]
fn qc_template_problems() {
    let profile = builtin("national-id");
    let mut a = valid_national();
    // Filed under right_index but the record says left index (7).
    a.fingers.insert(
        Finger::RightIndex,
        inline_template(&synthetic(5, 40, 80), 7),
    );
    // Not a template at all.
    a.fingers.insert(
        Finger::LeftIndex,
        FingerSample {
            template: Some(Blob {
                path: None,
                base64: Some("Rk1SACAyMAAAAAAA".into()),
            }),
            dpi: Some(500),
            ..FingerSample::default()
        },
    );
    let r = check_on(&a, &profile, &MatcherCheck, TODAY).unwrap_err();
    assert_eq!(
        issues(&r),
        set(&[
            ("fingers.right_index.template", "finger_position_mismatch"),
            ("fingers.left_index.dpi", "unexpected_field"),
            ("fingers.left_index.template", "fingerprint_unreadable"),
        ]),
        "{r}"
    );
    // A missing file and bad base64 are reported, not panicked on.
    let mut a = valid_national();
    a.face = Some(Blob {
        path: Some("no/such/face.jpg".into()),
        base64: None,
    });
    a.fingers.insert(
        Finger::LeftIndex,
        FingerSample {
            scan: Some(Blob {
                path: None,
                base64: Some("!!not base64!!".into()),
            }),
            ..FingerSample::default()
        },
    );
    let r = check_on(&a, &profile, &MatcherCheck, TODAY).unwrap_err();
    assert_eq!(
        issues(&r),
        set(&[
            ("face.path", "unreadable_file"),
            ("fingers.left_index.scan.base64", "unreadable_file"),
        ]),
        "{r}"
    );
}

#[test]
fn qc_same_template_twice_is_a_duplicate() {
    let profile = builtin("national-id");
    let mut a = valid_national();
    let same = synthetic(9, 40, 80);
    a.fingers
        .insert(Finger::RightIndex, inline_template(&same, 2));
    a.fingers
        .insert(Finger::LeftIndex, inline_template(&same, 7));
    let r = check_on(&a, &profile, &MatcherCheck, TODAY).unwrap_err();
    assert_eq!(
        issues(&r),
        set(&[("fingers.left_index", "duplicate_finger")]),
        "{r}"
    );
}

#[test]
fn malformed_records_are_reports_not_panics() {
    for text in [
        "",
        "{",
        "[]",
        "{\"tracking_code\": 5}",
        "{\"fingers\": {\"thumb\": {}}}",
    ] {
        let r = Applicant::from_json(text).unwrap_err();
        assert_eq!(issues(&r), set(&[("", "malformed_record")]), "{text:?}");
    }
    let r = Applicant::load(paths::applicants().join("absent.json")).unwrap_err();
    assert_eq!(r.issues[0].code, QcCode::MalformedRecord);
    // An empty object parses and then fails QC with every required field listed.
    let a = Applicant::from_json("{}").unwrap();
    let r = check_on(&a, &builtin("national-id"), &MatcherCheck, TODAY).unwrap_err();
    assert!(r.issues.len() >= 12, "{r}");
    assert!(
        r.issues.iter().all(|i| i.code == QcCode::MissingField),
        "{r}"
    );
}

// ---- with the shared FVC scans ----

fn scan(dir: &Path, name: &str) -> FingerSample {
    FingerSample {
        scan: Some(Blob {
            path: Some(dir.join(format!("fvc2002_db1_b/{name}.tif"))),
            base64: None,
        }),
        dpi: Some(500),
        ..FingerSample::default()
    }
}

#[test]
fn duplicate_finger_detection_with_real_scans() {
    let Some(shared) = paths::shared_fingerprints() else {
        return;
    };
    let profile = builtin("national-id");
    let mut a = valid_national();
    a.fingers.insert(Finger::RightIndex, scan(&shared, "101_1"));
    a.fingers.insert(Finger::LeftIndex, scan(&shared, "101_1"));
    let r = check_on(&a, &profile, &MatcherCheck, TODAY).unwrap_err();
    assert_eq!(
        issues(&r),
        set(&[("fingers.left_index", "duplicate_finger")]),
        "{r}"
    );

    a.fingers.insert(Finger::LeftIndex, scan(&shared, "102_1"));
    let v = check_on(&a, &profile, &MatcherCheck, TODAY).unwrap();
    assert_eq!(v.fingers.len(), 2);

    // A third-party ISO record (finger position unknown) is accepted as a template.
    let third_party = shared.join("fvc2002_db1_b/103_1.iso");
    a.fingers.insert(
        Finger::LeftIndex,
        FingerSample {
            template: Some(Blob {
                path: Some(third_party),
                base64: None,
            }),
            ..FingerSample::default()
        },
    );
    // It is read and held to the profile like any template: its extractor reports finger
    // quality 0, below the national card's minimum.
    let r = check_on(&a, &profile, &MatcherCheck, TODAY).unwrap_err();
    assert_eq!(
        issues(&r),
        set(&[("fingers.left_index.quality", "fingerprint_quality")]),
        "{r}"
    );
    let mut lenient = profile.clone();
    lenient.fingers.min_quality = 0;
    let v = check_on(&a, &lenient, &MatcherCheck, TODAY).unwrap();
    assert_eq!(v.fingers[1].finger, Finger::LeftIndex);
}

#[derive(serde::Deserialize)]
struct Manifest {
    record: Vec<ManifestEntry>,
}

#[derive(serde::Deserialize)]
struct ManifestEntry {
    file: String,
    profile: String,
    comment: String,
    expected: Vec<Expected>,
}

#[derive(serde::Deserialize)]
struct Expected {
    path: String,
    code: String,
}

#[test]
fn fixture_records_get_the_manifest_verdicts() {
    let dir = paths::applicants();
    let text = std::fs::read_to_string(dir.join("manifest.toml")).unwrap();
    let manifest: Manifest = toml::from_str(&text).unwrap();
    let listed: BTreeSet<String> = manifest.record.iter().map(|e| e.file.clone()).collect();
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(listed, on_disk, "manifest and records disagree");
    let profiles = ProfileSet::builtin().unwrap();
    let loaded: Vec<Result<Applicant, QcReport>> = manifest
        .record
        .iter()
        .map(|e| Applicant::load(dir.join(&e.file)))
        .collect();
    let mut valid_per_profile = std::collections::BTreeMap::<String, usize>::new();
    for (entry, loaded) in manifest.record.iter().zip(loaded) {
        let result = loaded.and_then(|a| {
            let profile = profiles.get(&entry.profile).unwrap();
            check_on(&a, profile, &MatcherCheck, TODAY)
        });
        let got = match &result {
            Ok(_) => BTreeSet::new(),
            Err(r) => r
                .issues
                .iter()
                .map(|i| (i.path.clone(), i.code.as_str().to_owned()))
                .collect(),
        };
        let want: BTreeSet<(String, String)> = entry
            .expected
            .iter()
            .map(|e| (e.path.clone(), e.code.clone()))
            .collect();
        assert_eq!(got, want, "{} ({}): {result:?}", entry.file, entry.comment);
        if want.is_empty() {
            *valid_per_profile.entry(entry.profile.clone()).or_default() += 1;
        }
    }
    for p in ["national-id", "free-zone-citizen", "foreign-resident"] {
        assert!(valid_per_profile.get(p).copied().unwrap_or(0) >= 2, "{p}");
    }
}

#[test]
fn card_templates_follow_the_profile_format() {
    let profiles = ProfileSet::builtin().unwrap();
    let foreign = Applicant::load(paths::applicants().join("foreign-valid-1.json")).unwrap();
    let v = check_on(
        &foreign,
        profiles.get("foreign-resident").unwrap(),
        &MatcherCheck,
        TODAY,
    )
    .unwrap();
    let filed: Vec<Finger> = v.fingers.iter().map(|f| f.finger).collect();
    assert_eq!(
        filed,
        vec![
            Finger::RightThumb,
            Finger::RightIndex,
            Finger::LeftThumb,
            Finger::LeftIndex
        ]
    );
    for f in &v.fingers {
        // Record format: an ISO record whose one view carries the finger position.
        let rec = iso19794::decode(&f.card_template).unwrap();
        assert_eq!(rec.views.len(), 1);
        assert_eq!(rec.views[0].finger_position, f.finger.iso_position());
    }
    assert_eq!(v.national_code, None);
    assert_eq!(v.gender, Gender::Male);

    let fz = Applicant::load(paths::applicants().join("free-zone-valid-1.json")).unwrap();
    let v = check_on(
        &fz,
        profiles.get("free-zone-citizen").unwrap(),
        &MatcherCheck,
        TODAY,
    )
    .unwrap();
    for f in &v.fingers {
        // Normal card format: 5 bytes per minutia, at most 60 minutiae.
        let n = f.fingerprint.minutiae.len().min(60);
        assert_eq!(f.card_template.len(), 5 * n);
        // Scans: extracted by the default extractor, which DG3 will name.
        assert_eq!(f.extractor.as_deref(), Some("classical"));
    }
    assert_eq!(Finger::from_iso_position(7), Some(Finger::LeftIndex));
    assert_eq!(Finger::from_iso_position(0), None);
    assert_eq!(Finger::from_iso_position(11), None);
}
