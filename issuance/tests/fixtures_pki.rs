//! The committed TEST-ONLY PKI in `fixtures/pki` (made by `idcardd pki init`, see its README):
//! the Document Signer chains to the CSCA, is marked test-only, and its key signs an EF.SOD that
//! passive authentication accepts against that CSCA and no other.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use issuance::pki::{self, CscaCertificate, DocumentSigner};
use test_support::paths;

fn fixture_dir() -> PathBuf {
    paths::fixtures().join("pki")
}

/// A date inside both validity periods (CSCA 2026-11-21..2036-11-19, DS 2026-11-21..2029-11-21),
/// so the test does not expire with the DS: 2027-01-01T00:00:00Z.
fn inside_validity() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_798_761_600)
}

#[test]
fn fixture_ds_chains_to_fixture_csca_and_is_marked_test_only() {
    let signer = DocumentSigner::load_at(&fixture_dir(), inside_validity()).unwrap();
    let csca = CscaCertificate::load(&fixture_dir().join("csca.pem")).unwrap();
    assert_eq!(signer.csca(), &csca);
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
fn fixture_ds_key_signs_a_sod_that_verifies_against_the_fixture_csca() {
    let now = inside_validity();
    let signer = DocumentSigner::load_at(&fixture_dir(), now).unwrap();
    let csca = CscaCertificate::load(&fixture_dir().join("csca.pem")).unwrap();
    let dg1 = b"\x61\x03\x5F\x1F\x00".to_vec();
    let dg3 = b"\x63\x02\x02\x00".to_vec();
    let sod = pki::sign_sod(&signer, &[(1, &dg1), (3, &dg3)]).unwrap();
    let report = pki::verify_sod(
        &sod,
        &[(1, &dg1), (3, &dg3)],
        std::slice::from_ref(&csca),
        now,
    )
    .unwrap();
    assert_eq!(report.covered, vec![1, 3]);
    assert_eq!(report.checked, vec![1, 3]);
    assert!(report.ds_subject.contains("TEST Document Signer"));
    // A changed data group, or another CSCA as the only trust anchor, is refused.
    let dg1_changed = b"\x61\x03\x5F\x1F\x01".to_vec();
    assert!(pki::verify_sod(&sod, &[(1, &dg1_changed), (3, &dg3)], &[csca], now).is_err());
    let other = tempfile::tempdir().unwrap();
    pki::init(other.path()).unwrap();
    let other_csca = CscaCertificate::load(&other.path().join("csca.pem")).unwrap();
    assert!(pki::verify_sod(&sod, &[(1, &dg1), (3, &dg3)], &[other_csca], now).is_err());
}

#[test]
fn fixture_ds_is_refused_outside_its_validity() {
    // 2030-01-01: after the DS expired (2029-11-21).
    let later = SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000);
    assert!(DocumentSigner::load_at(&fixture_dir(), later).is_err());
}
