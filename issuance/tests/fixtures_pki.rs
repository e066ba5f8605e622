//! The committed TEST-ONLY PKI in `fixtures/pki` (made by an earlier `idcardd pki init`, see
//! its README): the Document Signer chains to the CSCA and is marked test-only. Its key is a
//! software key that no token holds, so a Document Signer is not loaded from it: loading says
//! so clearly, and an SOD from a token PKI does not verify against the fixture CSCA.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use issuance::pki::{self, CscaCertificate, DocumentSigner, PkiError};
use test_support::{hsm, paths};

fn fixture_dir() -> PathBuf {
    paths::fixtures().join("pki")
}

/// A date inside both validity periods (CSCA 2026-11-21..2036-11-19, DS 2026-11-21..2029-11-21),
/// so the test does not expire with the DS: 2027-01-01T00:00:00Z.
fn inside_validity() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_600)
}

fn fixture_ds_der() -> Vec<u8> {
    let pem = std::fs::read_to_string(fixture_dir().join("ds.pem")).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64_decode(&body)
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[test]
fn fixture_ds_chains_to_fixture_csca_and_is_marked_test_only() {
    let csca = CscaCertificate::load(&fixture_dir().join("csca.pem")).unwrap();
    pki::check_ds_certificate(&csca, &fixture_ds_der(), inside_validity()).unwrap();
    assert!(csca.subject().contains("TEST"), "{}", csca.subject());
    let der_file = std::fs::read(fixture_dir().join("csca.der")).unwrap();
    assert_eq!(
        csca.der(),
        der_file.as_slice(),
        "csca.der and csca.pem differ"
    );
    for file in ["README", "README.md"] {
        let text = std::fs::read_to_string(fixture_dir().join(file)).unwrap();
        assert!(text.contains("TEST ONLY"), "{file} does not say TEST ONLY");
    }
}

#[test]
fn fixture_ds_is_refused_for_signing_because_no_token_holds_its_key() {
    let now = inside_validity();
    let err = DocumentSigner::load_at(&fixture_dir(), hsm::shared(), now).unwrap_err();
    assert!(matches!(err, PkiError::KeyNotInToken { .. }), "{err}");
    assert!(!err.is_unavailable());

    // An SOD signed in the token by another PKI does not verify against the fixture CSCA.
    let csca = CscaCertificate::load(&fixture_dir().join("csca.pem")).unwrap();
    let (_dir, signer) = test_support::pki::temp_signer();
    let dg1 = b"\x61\x03\x5F\x1F\x00".to_vec();
    let dg3 = b"\x63\x02\x02\x00".to_vec();
    let sod = pki::sign_sod(&signer, &[(1, &dg1), (3, &dg3)]).unwrap();
    pki::verify_sod(
        &sod,
        &[(1, &dg1), (3, &dg3)],
        std::slice::from_ref(signer.csca()),
        SystemTime::now(),
    )
    .unwrap();
    assert!(pki::verify_sod(&sod, &[(1, &dg1), (3, &dg3)], &[csca], SystemTime::now()).is_err());
}

#[test]
fn fixture_ds_is_refused_outside_its_validity() {
    // 2030-01-01: after the DS expired (2029-11-21).
    let later = SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000);
    let csca = CscaCertificate::load(&fixture_dir().join("csca.pem")).unwrap();
    let err = pki::check_ds_certificate(&csca, &fixture_ds_der(), later).unwrap_err();
    assert!(matches!(err, PkiError::Expired { .. }), "{err}");
    let err = DocumentSigner::load_at(&fixture_dir(), hsm::shared(), later).unwrap_err();
    assert!(matches!(err, PkiError::Expired { .. }), "{err}");
}
