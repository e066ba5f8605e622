//! The chip's data (LDS: EF.COM, DG1, DG2, DG3, DG11, DG12) and its signature (EF.SOD):
//! round trips, ICAO check digits, the test PKI, and passive authentication with every failure
//! it must name, plus OpenSSL's opinion of our CMS.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use issuance::lds::biometric::{build_dg2, build_dg3, parse_dg2, parse_dg3};
use issuance::lds::com::{build_com, parse_com};
use issuance::lds::details::{build_dg11, build_dg12, parse_dg11, parse_dg12};
use issuance::lds::mrz::{build_dg1, check_digit, parse_dg1, parse_zone};
use issuance::lds::{
    Date, DocumentData, FaceImage, FingerTemplate, ImageFormat, LdsError, PersonalData, Sex,
};
use issuance::pki::{
    self, sign_sod, verify_sod, CscaCertificate, DocumentSigner, InitOptions, PaError, PkiError,
};
use keystore::KeyStore;
use test_support::hsm;
use test_support::pki::temp_signer;

const YEAR: Duration = Duration::from_secs(365 * 86_400);

fn person() -> PersonalData {
    PersonalData {
        surname: "رضایی".into(),
        given_names: "علی رضا".into(),
        surname_latin: "REZAEI".into(),
        given_names_latin: "ALI REZA".into(),
        other_names: vec!["علی".into()],
        personal_number: "0012345679".into(),
        birth_date: Date::new(1990, 3, 21).unwrap(),
        place_of_birth: "تهران".into(),
        father_name: "حسن".into(),
        sex: Sex::Male,
        nationality: "IRN".into(),
    }
}

fn document() -> DocumentData {
    DocumentData {
        document_number: "A12345678".into(),
        issuing_state: "IRN".into(),
        date_of_issue: Date::new(2026, 11, 1).unwrap(),
        date_of_expiry: Date::new(2033, 10, 31).unwrap(),
        issuing_authority: "سازمان ثبت احوال کشور".into(),
    }
}

fn face() -> FaceImage {
    let mut jpeg = vec![0xFF, 0xD8, 0xFF, 0xE0];
    jpeg.extend((0..1500u32).map(|i| (i * 7 % 251) as u8));
    jpeg.extend([0xFF, 0xD9]);
    FaceImage {
        data: jpeg,
        format: ImageFormat::Jpeg,
        width: 480,
        height: 640,
    }
}

fn fingers() -> Vec<FingerTemplate> {
    [2u8, 7]
        .iter()
        .map(|&position| {
            let mut rec = b"FMR\0 20\0".to_vec();
            rec.extend((0..40u8).map(|i| i.wrapping_mul(position)));
            FingerTemplate {
                position,
                iso_record: rec,
                creator: None,
            }
        })
        .collect()
}

/// DG1, DG2, DG3, DG11, DG12 of the sample holder.
fn data_groups() -> Vec<(u8, Vec<u8>)> {
    vec![
        (1, build_dg1(&person(), &document()).unwrap()),
        (2, build_dg2(&face()).unwrap()),
        (3, build_dg3(&fingers()).unwrap()),
        (11, build_dg11(&person()).unwrap()),
        (12, build_dg12(&document()).unwrap()),
    ]
}

fn refs(dgs: &[(u8, Vec<u8>)]) -> Vec<(u8, &[u8])> {
    dgs.iter().map(|(n, b)| (*n, b.as_slice())).collect()
}

#[test]
fn check_digits_match_the_icao_9303_worked_example() {
    assert_eq!(check_digit("L898902C3"), Some(6));
    assert_eq!(check_digit("740812"), Some(2));
    assert_eq!(check_digit("120415"), Some(9));
    assert_eq!(
        check_digit("L898902C<"),
        Some(check_digit("L898902C0").unwrap())
    );
    assert_eq!(check_digit("l898"), None);
}

#[test]
fn the_icao_td1_specimen_parses_and_a_changed_digit_is_refused() {
    let zone = "I<UTOD231458907<<<<<<<<<<<<<<<\
                7408122F1204159UTO<<<<<<<<<<<6\
                ERIKSSON<<ANNA<MARIA<<<<<<<<<<";
    let mrz = parse_zone(zone).unwrap();
    assert_eq!(mrz.document_code, "I");
    assert_eq!(mrz.issuing_state, "UTO");
    assert_eq!(mrz.document_number, "D23145890");
    assert_eq!(mrz.birth_date, Date::new(1974, 8, 12).unwrap());
    assert_eq!(mrz.expiry_date, Date::new(2012, 4, 15).unwrap());
    assert_eq!(mrz.sex, Sex::Female);
    assert_eq!(mrz.surname, "ERIKSSON");
    assert_eq!(mrz.given_names, "ANNA MARIA");
    let changed = zone.replacen("D2314", "D2315", 1);
    let err = parse_zone(&changed).unwrap_err();
    assert!(err.to_string().contains("document number"), "{err}");
    let composite = zone.replacen("UTO<<<<<<<<<<<6", "UTO<<<<<<<<<<<5", 1);
    assert!(parse_zone(&composite)
        .unwrap_err()
        .to_string()
        .contains("composite"));
}

#[test]
fn dg1_round_trips_as_a_90_character_td1_zone() {
    let dg1 = build_dg1(&person(), &document()).unwrap();
    let mrz = parse_dg1(&dg1).unwrap();
    assert_eq!(mrz.zone.len(), 90);
    assert_eq!(&mrz.zone[..30], "IDIRNA1234567840012345679<<<<<");
    assert_eq!(&mrz.zone[60..], "REZAEI<<ALI<REZA<<<<<<<<<<<<<<");
    assert_eq!(mrz.document_number, "A12345678");
    assert_eq!(mrz.optional_data, "0012345679");
    assert_eq!(mrz.birth_date, person().birth_date);
    assert_eq!(mrz.expiry_date, document().date_of_expiry);
    assert_eq!(mrz.nationality, "IRN");
    assert_eq!(mrz.given_names, "ALI REZA");
    // Persian in the MRZ is refused: transliteration comes first.
    let mut p = person();
    p.surname_latin = "رضایی".into();
    assert!(matches!(
        build_dg1(&p, &document()),
        Err(LdsError::InvalidField { .. })
    ));
    let mut d = document();
    d.document_number = "A123456789".into();
    assert!(build_dg1(&person(), &d).is_err());
}

#[test]
fn ef_com_lists_the_data_groups() {
    let com = build_com(&[1, 2, 3, 11, 12]).unwrap();
    assert_eq!(&com[..2], &[0x60, 0x17]);
    let parsed = parse_com(&com).unwrap();
    assert_eq!(parsed.lds_version, "0108");
    assert_eq!(parsed.unicode_version, "040000");
    assert_eq!(parsed.data_groups, [1, 2, 3, 11, 12]);
    assert!(build_com(&[17]).is_err());
}

#[test]
fn biometric_groups_round_trip() {
    let dg2 = build_dg2(&face()).unwrap();
    assert_eq!(dg2[0], 0x75);
    let bdb = &dg2[dg2.windows(2).position(|w| w == [0x5F, 0x2E]).unwrap()..];
    let record = &bdb[bdb.windows(4).position(|w| w == b"FAC\0").unwrap()..];
    assert_eq!(&record[4..8], b"010\0");
    assert_eq!(parse_dg2(&dg2).unwrap(), [face()]);
    let dg3 = build_dg3(&fingers()).unwrap();
    assert_eq!(dg3[0], 0x63);
    assert_eq!(parse_dg3(&dg3).unwrap(), fingers());
    // Finger position 2 (right index) is CBEFF subtype 0x09; 7 (left index) is 0x0A.
    assert!(dg3.windows(3).any(|w| w == [0x82, 0x01, 0x09]));
    assert!(dg3.windows(3).any(|w| w == [0x82, 0x01, 0x0A]));
    let not_jpeg = FaceImage {
        data: vec![1, 2, 3],
        ..face()
    };
    assert!(build_dg2(&not_jpeg).is_err());
    let bad_position = [FingerTemplate {
        position: 11,
        iso_record: fingers()[0].iso_record.clone(),
        creator: None,
    }];
    assert!(build_dg3(&bad_position).is_err());
}

#[test]
fn detail_groups_round_trip_in_persian() {
    let dg11 = parse_dg11(&build_dg11(&person()).unwrap()).unwrap();
    assert_eq!(dg11.surname, "رضایی");
    assert_eq!(dg11.given_names, "علی رضا");
    assert_eq!(dg11.other_names, ["علی"]);
    assert_eq!(dg11.personal_number, "0012345679");
    assert_eq!(dg11.birth_date, person().birth_date);
    assert_eq!(dg11.place_of_birth.as_deref(), Some("تهران"));
    assert_eq!(dg11.father_name.as_deref(), Some("حسن"));
    let dg12 = parse_dg12(&build_dg12(&document()).unwrap()).unwrap();
    assert_eq!(dg12.issuing_authority, "سازمان ثبت احوال کشور");
    assert_eq!(dg12.date_of_issue, document().date_of_issue);
}

#[test]
fn every_truncated_or_mislabelled_data_group_is_an_error() {
    let com = build_com(&[1, 2]).unwrap();
    let mut all = data_groups();
    all.push((0, com));
    for (dg, bytes) in &all {
        for len in 0..bytes.len() {
            let cut = &bytes[..len];
            let result = match dg {
                0 => parse_com(cut).map(drop),
                1 => parse_dg1(cut).map(drop),
                2 => parse_dg2(cut).map(drop),
                3 => parse_dg3(cut).map(drop),
                11 => parse_dg11(cut).map(drop),
                _ => parse_dg12(cut).map(drop),
            };
            assert!(result.is_err(), "DG{dg} cut to {len} bytes parsed");
        }
    }
    // DG11's bytes are not a DG12.
    assert!(parse_dg12(&all[3].1).is_err());
}

fn init(dir: &Path) {
    pki::init(dir, &hsm::shared()).unwrap();
}

/// A token with another CSCA key: a PKI made in it has a CSCA of the same name as the shared
/// token's but another key (PKIs in one token share its CSCA key).
fn other_token() -> Arc<KeyStore> {
    hsm::token("other-csca").0
}

#[test]
fn init_writes_a_test_pki_and_refuses_to_overwrite_it() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path());
    for f in ["csca.pem", "csca.der", "ds.pem", "README"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    // No key file: the keys are in the token.
    assert!(!dir.path().join("ds.key").exists());
    let readme = fs::read_to_string(dir.path().join("README")).unwrap();
    assert!(readme.contains("TEST ONLY"));
    assert!(readme.contains("idcardd-csca"), "{readme}");
    let csca = CscaCertificate::load(&dir.path().join("csca.der")).unwrap();
    assert_eq!(
        csca,
        CscaCertificate::load(&dir.path().join("csca.pem")).unwrap()
    );
    assert!(csca.subject().contains("TEST CSCA"));
    assert!(matches!(
        pki::init(dir.path(), &hsm::shared()),
        Err(PkiError::AlreadyExists(_))
    ));
    let signer = DocumentSigner::load(dir.path(), hsm::shared()).unwrap();
    assert!(format!("{signer:?}").contains(&hex::encode(signer.key_id())));
    // The DS is not a CA: it is not accepted as a trust anchor.
    let ds_pem = dir.path().join("ds.pem");
    assert!(CscaCertificate::load(&ds_pem).is_err());
}

#[test]
fn loading_refuses_an_expired_misused_or_foreign_ds() {
    let now = SystemTime::now();
    let expired = tempfile::tempdir().unwrap();
    let options = InitOptions {
        ds_not_before: now - 4 * YEAR,
        ds_not_after: now - YEAR,
        csca_not_before: now - 5 * YEAR,
        ..InitOptions::default()
    };
    pki::init_with(expired.path(), &hsm::shared(), &options).unwrap();
    let err = DocumentSigner::load(expired.path(), hsm::shared()).unwrap_err();
    assert!(matches!(err, PkiError::Expired { .. }), "{err}");
    DocumentSigner::load_at(expired.path(), hsm::shared(), now - 2 * YEAR).unwrap();

    let future = tempfile::tempdir().unwrap();
    let options = InitOptions {
        ds_not_before: now + YEAR,
        ..InitOptions::default()
    };
    pki::init_with(future.path(), &hsm::shared(), &options).unwrap();
    let err = DocumentSigner::load(future.path(), hsm::shared()).unwrap_err();
    assert!(matches!(err, PkiError::NotYetValid { .. }), "{err}");

    let misused = tempfile::tempdir().unwrap();
    let options = InitOptions {
        ds_digital_signature: false,
        ..InitOptions::default()
    };
    pki::init_with(misused.path(), &hsm::shared(), &options).unwrap();
    let err = DocumentSigner::load(misused.path(), hsm::shared()).unwrap_err();
    assert!(matches!(err, PkiError::WrongKeyUsage), "{err}");

    // A DS next to another PKI's CSCA of the same name: the signature gives it away.
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    init(a.path());
    pki::init(b.path(), &other_token()).unwrap();
    fs::copy(b.path().join("csca.pem"), a.path().join("csca.pem")).unwrap();
    let err = DocumentSigner::load(a.path(), hsm::shared()).unwrap_err();
    assert!(matches!(err, PkiError::WrongChain(_)), "{err}");
    // And a DS whose key is in another token.
    let err = DocumentSigner::load(b.path(), hsm::shared()).unwrap_err();
    assert!(matches!(err, PkiError::KeyNotInToken { .. }), "{err}");
    DocumentSigner::load(b.path(), other_token()).unwrap();
}

#[test]
fn a_signed_sod_passes_passive_authentication() {
    let (dir, signer) = temp_signer();
    let dgs = data_groups();
    let sod = sign_sod(&signer, &refs(&dgs)).unwrap();
    assert_eq!(sod[0], 0x77);
    let csca = CscaCertificate::load(&dir.path().join("csca.pem")).unwrap();
    let now = SystemTime::now();
    let report = verify_sod(&sod, &refs(&dgs), std::slice::from_ref(&csca), now).unwrap();
    assert_eq!(report.covered, [1, 2, 3, 11, 12]);
    assert_eq!(report.checked, [1, 2, 3, 11, 12]);
    assert_eq!(report.hash_algorithm, "2.16.840.1.101.3.4.2.1");
    assert!(report.ds_subject.contains("Document Signer"));
    assert!(report.csca_subject.contains("TEST CSCA"));
    let signed = report.signing_time.unwrap();
    assert!(signed <= now && now.duration_since(signed).unwrap() < Duration::from_secs(60));
    // A reader that read only DG1 checks only DG1.
    let only_dg1 = verify_sod(&sod, &refs(&dgs)[..1], &[csca], now).unwrap();
    assert_eq!(only_dg1.checked, [1]);
    // Signing refuses nonsense.
    assert!(sign_sod(&signer, &[(1, b"x".as_slice())]).is_err());
    assert!(sign_sod(&signer, &[(1, b"x".as_slice()), (1, b"y".as_slice())]).is_err());
    assert!(sign_sod(&signer, &[(1, b"x".as_slice()), (17, b"y".as_slice())]).is_err());
}

#[test]
fn passive_authentication_names_what_is_wrong() {
    let (dir, signer) = temp_signer();
    let csca = CscaCertificate::load(&dir.path().join("csca.pem")).unwrap();
    let dgs = data_groups();
    let sod = sign_sod(&signer, &refs(&dgs)).unwrap();
    let now = SystemTime::now();

    // A tampered data group is named.
    let mut tampered = dgs.clone();
    let last = tampered[1].1.len() - 3;
    tampered[1].1[last] ^= 0x01;
    let err = verify_sod(&sod, &refs(&tampered), std::slice::from_ref(&csca), now).unwrap_err();
    assert_eq!(err, PaError::TamperedDataGroup { dg: 2 });
    assert!(err.to_string().contains("data group 2"));
    // A data group the SOD does not cover.
    let extra = [(1, dgs[0].1.as_slice()), (5, b"\x65\x00".as_slice())];
    let err = verify_sod(&sod, &extra, std::slice::from_ref(&csca), now).unwrap_err();
    assert_eq!(err, PaError::DataGroupNotCovered { dg: 5 });

    // Another PKI's CSCA of the same name: the DS certificate does not verify with it.
    let other = tempfile::tempdir().unwrap();
    pki::init(other.path(), &other_token()).unwrap();
    let other_csca = CscaCertificate::load(&other.path().join("csca.pem")).unwrap();
    let err = verify_sod(&sod, &refs(&dgs), std::slice::from_ref(&other_csca), now).unwrap_err();
    assert!(matches!(err, PaError::BadDsCertificate { .. }), "{err}");
    // Both in the trust list (a CSCA rollover): the right one is found.
    verify_sod(&sod, &refs(&dgs), &[other_csca, csca.clone()], now).unwrap();
    // A CSCA of another country: unknown.
    let foreign = tempfile::tempdir().unwrap();
    let options = InitOptions {
        country: "FR".into(),
        ..InitOptions::default()
    };
    pki::init_with(foreign.path(), &hsm::shared(), &options).unwrap();
    let fr = CscaCertificate::load(&foreign.path().join("csca.pem")).unwrap();
    let err = verify_sod(&sod, &refs(&dgs), &[fr], now).unwrap_err();
    assert!(matches!(err, PaError::UnknownCsca { .. }), "{err}");
    assert!(matches!(
        verify_sod(&sod, &refs(&dgs), &[], now),
        Err(PaError::UnknownCsca { .. })
    ));

    // The signature: its last byte is the end of the ECDSA s value.
    let mut bad_sig = sod.clone();
    *bad_sig.last_mut().unwrap() ^= 0x01;
    let err = verify_sod(&bad_sig, &refs(&dgs), std::slice::from_ref(&csca), now).unwrap_err();
    assert_eq!(err, PaError::BadSignature);

    // The security object itself (DG1's hash inside it) no longer matches messageDigest.
    let dg1_hash = ring::digest::digest(&ring::digest::SHA256, &dgs[0].1);
    let at = sod
        .windows(32)
        .position(|w| w == dg1_hash.as_ref())
        .unwrap();
    let mut bad_lds = sod.clone();
    bad_lds[at] ^= 0x80;
    let err = verify_sod(&bad_lds, &refs(&dgs), std::slice::from_ref(&csca), now).unwrap_err();
    assert!(matches!(err, PaError::SignedAttributes(_)), "{err}");

    // Checked after the DS expires: refused.
    let err = verify_sod(&sod, &refs(&dgs), &[csca], now + 4 * YEAR).unwrap_err();
    assert!(matches!(err, PaError::ExpiredDs { .. }), "{err}");
}

#[test]
fn an_sod_signed_by_an_expired_ds_is_refused() {
    let now = SystemTime::now();
    let dir = tempfile::tempdir().unwrap();
    let options = InitOptions {
        ds_not_before: now - 4 * YEAR,
        ds_not_after: now - YEAR,
        csca_not_before: now - 5 * YEAR,
        ..InitOptions::default()
    };
    pki::init_with(dir.path(), &hsm::shared(), &options).unwrap();
    let signer = DocumentSigner::load_at(dir.path(), hsm::shared(), now - 2 * YEAR).unwrap();
    let dgs = data_groups();
    let sod = sign_sod(&signer, &refs(&dgs)).unwrap();
    let csca = CscaCertificate::load(&dir.path().join("csca.pem")).unwrap();
    let err = verify_sod(&sod, &refs(&dgs), std::slice::from_ref(&csca), now).unwrap_err();
    assert!(matches!(err, PaError::ExpiredDs { .. }), "{err}");
    // At a time the DS was valid, the same SOD verifies.
    verify_sod(&sod, &refs(&dgs), &[csca], now - 2 * YEAR).unwrap();
}

#[test]
fn corrupt_or_truncated_sods_are_errors_not_panics() {
    let (dir, signer) = temp_signer();
    let csca = CscaCertificate::load(&dir.path().join("csca.pem")).unwrap();
    let dgs = data_groups();
    let sod = sign_sod(&signer, &refs(&dgs)).unwrap();
    let now = SystemTime::now();
    let trust = [csca];
    for len in 0..sod.len() {
        let err = verify_sod(&sod[..len], &refs(&dgs), &trust, now).unwrap_err();
        assert!(
            matches!(err, PaError::MalformedSod(_)),
            "cut at {len}: {err}"
        );
    }
    // Every single-byte corruption either fails or leaves the verdict unchanged; none panics.
    for i in 0..sod.len() {
        let mut bad = sod.clone();
        bad[i] ^= 0xFF;
        if let Ok(report) = verify_sod(&bad, &refs(&dgs), &trust, now) {
            assert_eq!(report.checked, [1, 2, 3, 11, 12], "byte {i}");
        }
    }
    for garbage in [
        &b""[..],
        b"\x77",
        b"\x77\x00",
        b"\x77\x84\xFF\xFF\xFF\xFF",
        b"\x30\x00",
    ] {
        assert!(matches!(
            verify_sod(garbage, &refs(&dgs), &trust, now),
            Err(PaError::MalformedSod(_))
        ));
    }
}

#[test]
fn openssl_cms_verify_accepts_our_sod() {
    let (dir, signer) = temp_signer();
    let dgs = data_groups();
    let sod = sign_sod(&signer, &refs(&dgs)).unwrap();
    // The CMS ContentInfo inside the 77 wrapper.
    let (tag, tag_len) = apdu::tlv::Tag::parse(&sod).unwrap();
    assert_eq!(tag, apdu::tlv::Tag(0x77));
    let (len, len_len) = apdu::tlv::parse_length(&sod[tag_len..]).unwrap();
    let cms = &sod[tag_len + len_len..];
    assert_eq!(cms.len(), len);
    let sod_der = dir.path().join("sod.der");
    fs::write(&sod_der, cms).unwrap();
    let lds_out = dir.path().join("lds.der");
    let out = Command::new("openssl")
        .args(["cms", "-verify", "-inform", "DER", "-in"])
        .arg(&sod_der)
        .arg("-CAfile")
        .arg(dir.path().join("csca.pem"))
        .args(["-purpose", "any", "-binary", "-out"])
        .arg(&lds_out)
        .output()
        .expect("openssl is installed by scripts/setup.sh");
    assert!(
        out.status.success(),
        "openssl refused our SOD: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What it extracted is the LDS security object: a SEQUENCE holding DG1's hash.
    let lds = fs::read(&lds_out).unwrap();
    assert_eq!(lds[0], 0x30);
    let dg1_hash = ring::digest::digest(&ring::digest::SHA256, &dgs[0].1);
    assert!(lds.windows(32).any(|w| w == dg1_hash.as_ref()));

    // And it refuses the SOD against another CSCA.
    let other = tempfile::tempdir().unwrap();
    pki::init(other.path(), &other_token()).unwrap();
    let out = Command::new("openssl")
        .args(["cms", "-verify", "-inform", "DER", "-in"])
        .arg(&sod_der)
        .arg("-CAfile")
        .arg(other.path().join("csca.pem"))
        .args(["-purpose", "any", "-binary", "-out", "/dev/null"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn dg3_carries_the_matchers_iso_records_unchanged() {
    use matcher::template::{decode, encode, CardFormat};
    use matcher::{Fingerprint, Minutia, MinutiaKind};
    let fp = Fingerprint {
        width: 400,
        height: 500,
        dpi_x: 500,
        dpi_y: 500,
        quality: 80,
        minutiae: (0..12)
            .map(|i| Minutia {
                x: 20.0 + 25.0 * i as f32,
                y: 40.0 + 30.0 * i as f32,
                direction: 0.5 * i as f32,
                kind: if i % 2 == 0 {
                    MinutiaKind::Ending
                } else {
                    MinutiaKind::Bifurcation
                },
                quality: 60,
            })
            .collect(),
    };
    let record = encode(&fp, CardFormat::Record).unwrap();
    let fingers = [FingerTemplate {
        position: 1,
        iso_record: record.clone(),
        creator: None,
    }];
    let back = parse_dg3(&build_dg3(&fingers).unwrap()).unwrap();
    assert_eq!(back[0].position, 1);
    assert_eq!(back[0].iso_record, record);
    assert_eq!(back[0].creator, None);
    assert_eq!(back[0].idcardd_extractor(), None);
    let decoded = decode(&back[0].iso_record, CardFormat::Record, 500).unwrap();
    assert_eq!(decoded.minutiae.len(), 12);
    // The compact card format is not an ISO record: DG3 refuses it.
    let compact = encode(&fp, CardFormat::Compact).unwrap();
    let fingers = [FingerTemplate {
        position: 1,
        iso_record: compact,
        creator: None,
    }];
    assert!(build_dg3(&fingers).is_err());
}

#[test]
fn dg3_names_the_extractor_that_made_each_template() {
    let mut fingers = fingers();
    fingers[0].creator = Some(b"idcardd/leader".to_vec());
    fingers[1].creator = Some(b"other vendor v2".to_vec());
    let dg3 = build_dg3(&fingers).unwrap();
    // ICAO 9303-10's header order: 82 subtype, 86 creator, 87 format owner.
    let at = dg3
        .windows(16)
        .position(|w| w == b"\x86\x0eidcardd/leader")
        .expect("creator in the header");
    assert_eq!(&dg3[at + 16..at + 18], &[0x87, 0x02]);
    let back = parse_dg3(&dg3).unwrap();
    assert_eq!(back, fingers);
    assert_eq!(back[0].idcardd_extractor(), Some("leader"));
    // Another issuer's creator names no idcardd extractor.
    assert_eq!(back[1].idcardd_extractor(), None);
    // ICAO allows 1 to 18 bytes.
    for bad in [vec![], vec![b'x'; 19]] {
        fingers[0].creator = Some(bad);
        assert!(build_dg3(&fingers).is_err());
    }
    fingers[0].creator = Some(vec![b'x'; 18]);
    assert!(build_dg3(&fingers).is_ok());
}
