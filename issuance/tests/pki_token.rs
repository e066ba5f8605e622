//! The Document Signer and the test CSCA keys live in the token (SoftHSM here): the PKI folder
//! holds certificates only, every signature is made in the token, OpenSSL accepts the SODs,
//! rotation keeps earlier SODs verifying, and a folder loaded against a token without its keys
//! is refused clearly.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::SystemTime;

use issuance::pki::{self, CscaCertificate, DocumentSigner, PkiError};
use keystore::{KeyStore, KeyStoreError};
use test_support::hsm;

fn dgs() -> Vec<(u8, Vec<u8>)> {
    vec![
        (1, b"\x61\x05\x5F\x1F\x02AB".to_vec()),
        (2, b"\x75\x03\x7F\x61\x00".to_vec()),
        (3, b"\x63\x02\x02\x00".to_vec()),
    ]
}

fn refs(dgs: &[(u8, Vec<u8>)]) -> Vec<(u8, &[u8])> {
    dgs.iter().map(|(n, b)| (*n, b.as_slice())).collect()
}

/// The CMS ContentInfo inside the `77` wrapper of an EF.SOD.
fn cms_of(sod: &[u8]) -> &[u8] {
    let (tag, tag_len) = apdu::tlv::Tag::parse(sod).unwrap();
    assert_eq!(tag, apdu::tlv::Tag(0x77));
    let (len, len_len) = apdu::tlv::parse_length(&sod[tag_len..]).unwrap();
    let cms = &sod[tag_len + len_len..];
    assert_eq!(cms.len(), len);
    cms
}

/// `openssl cms -verify` of the SOD's CMS against `csca.pem` of `pki_dir`; the output and
/// whether it succeeded.
fn openssl_verify(sod: &[u8], pki_dir: &Path, work: &Path) -> (bool, String) {
    let sod_der = work.join(format!("sod-{}.der", std::process::id()));
    fs::write(&sod_der, cms_of(sod)).unwrap();
    // No -binary, no -noverify: the DS certificate is embedded (found by its
    // issuerAndSerialNumber) and chains to the CSCA given as the only trusted CA; -purpose any
    // because a DS certificate carries no extendedKeyUsage for S/MIME.
    let out = Command::new("openssl")
        .args(["cms", "-verify", "-inform", "DER", "-in"])
        .arg(&sod_der)
        .arg("-CAfile")
        .arg(pki_dir.join("csca.pem"))
        .args(["-purpose", "any", "-out", "/dev/null"])
        .output()
        .expect("openssl is installed by scripts/setup.sh");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The names of the files in `dir`, sorted.
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Every file of the PKI folder is a certificate or the README: none holds key material.
fn assert_no_private_key(dir: &Path) {
    for name in files_in(dir) {
        let bytes = fs::read(dir.join(&name)).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("PRIVATE KEY"), "{name} holds a private key");
        if name.ends_with(".pem") {
            let labels: Vec<&str> = text
                .lines()
                .filter_map(|l| l.strip_prefix("-----BEGIN "))
                .collect();
            assert_eq!(labels, ["CERTIFICATE-----"], "{name}");
        } else if name.ends_with(".der") {
            CscaCertificate::from_der(bytes).unwrap();
        } else {
            assert_eq!(name, "README", "unexpected file {name}");
        }
    }
}

#[test]
fn a_sod_signed_in_softhsm_passes_openssl_cms_verify() {
    let store = hsm::shared();
    let dir = tempfile::tempdir().unwrap();
    pki::init(dir.path(), &store).unwrap();
    let signer = DocumentSigner::load(dir.path(), Arc::clone(&store)).unwrap();
    let dgs = dgs();
    let sod = pki::sign_sod(&signer, &refs(&dgs)).unwrap();
    let csca = CscaCertificate::load(&dir.path().join("csca.pem")).unwrap();
    pki::verify_sod(&sod, &refs(&dgs), &[csca], SystemTime::now()).unwrap();
    let (ok, text) = openssl_verify(&sod, dir.path(), dir.path());
    assert!(ok, "openssl refused the SOD: {text}");
    assert!(text.contains("Verification successful"), "{text}");
    // Against another token's CSCA (same name, other key) openssl refuses it.
    let other = tempfile::tempdir().unwrap();
    pki::init(other.path(), &hsm::token("other-csca").0).unwrap();
    let (ok, text) = openssl_verify(&sod, other.path(), dir.path());
    assert!(!ok, "openssl accepted the SOD against another CSCA: {text}");
}

#[test]
fn the_csca_and_ds_keys_are_sensitive_unextractable_and_unreadable() {
    let store = hsm::shared();
    let dir = tempfile::tempdir().unwrap();
    let files = pki::init(dir.path(), &store).unwrap();
    assert_eq!(files.csca_label, store.config().labels.csca);
    assert!(files
        .ds_label
        .starts_with(&format!("{}-", store.config().labels.ds_prefix)));
    let keys = store.list().unwrap();
    for label in [&files.csca_label, &files.ds_label] {
        let private: Vec<_> = keys
            .iter()
            .filter(|k| &k.label == label && k.class == "private")
            .collect();
        assert_eq!(private.len(), 1, "{label}: {keys:?}");
        let k = private[0];
        assert_eq!(k.key_type, "EC", "{label}");
        assert_eq!(k.sensitive, Some(true), "{label}");
        assert_eq!(k.extractable, Some(false), "{label}");
        assert_eq!(k.always_sensitive, Some(true), "{label}");
        assert_eq!(k.never_extractable, Some(true), "{label}");
        assert_eq!(k.local, Some(true), "{label}: generated in the token");
        assert!(k.allows.iter().any(|a| a == "sign"), "{label}");
        assert!(!store.value_is_readable(label).unwrap(), "{label}");
    }
    // The DS certificate's key id is the token key's CKA_ID.
    let signer = DocumentSigner::load(dir.path(), Arc::clone(&store)).unwrap();
    let ds = keys
        .iter()
        .find(|k| k.label == files.ds_label && k.class == "private")
        .unwrap();
    assert_eq!(ds.id, hex::encode(signer.key_id()));
}

#[test]
fn the_pki_folder_holds_certificates_only() {
    let store = hsm::shared();
    let dir = tempfile::tempdir().unwrap();
    pki::init(dir.path(), &store).unwrap();
    assert_eq!(
        files_in(dir.path()),
        ["README", "csca.der", "csca.pem", "ds.pem"]
    );
    assert_no_private_key(dir.path());
    let readme = fs::read_to_string(dir.path().join("README")).unwrap();
    assert!(readme.contains("TEST ONLY"));
    assert!(readme.contains(&store.config().labels.csca));
    assert!(readme.contains(&store.config().token_label));
    assert!(pki::signer_present(dir.path()));
    fs::remove_file(dir.path().join("ds.pem")).unwrap();
    assert!(!pki::signer_present(dir.path()));
}

#[test]
fn pki_folders_in_one_token_share_its_csca_key() {
    let store = hsm::token("shared-csca").0;
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let fa = pki::init(a.path(), &store).unwrap();
    let fb = pki::init(b.path(), &store).unwrap();
    assert!(!fa.csca_reused);
    assert!(fb.csca_reused);
    assert_ne!(fa.ds_label, fb.ds_label, "each init makes its own DS key");
    let sa = DocumentSigner::load(a.path(), Arc::clone(&store)).unwrap();
    let sb = DocumentSigner::load(b.path(), Arc::clone(&store)).unwrap();
    assert_ne!(sa.key_id(), sb.key_id());
    // Same CSCA key and name: each DS chains to the other folder's CSCA too.
    let dgs = dgs();
    let sod = pki::sign_sod(&sa, &refs(&dgs)).unwrap();
    let csca_b = CscaCertificate::load(&b.path().join("csca.pem")).unwrap();
    pki::verify_sod(&sod, &refs(&dgs), &[csca_b], SystemTime::now()).unwrap();
}

#[test]
fn rotation_keeps_earlier_sods_verifying() {
    let store = hsm::shared();
    let dir = tempfile::tempdir().unwrap();
    let files = pki::init(dir.path(), &store).unwrap();
    let before = DocumentSigner::load(dir.path(), Arc::clone(&store)).unwrap();
    let dgs = dgs();
    let old_sod = pki::sign_sod(&before, &refs(&dgs)).unwrap();

    let rotation = pki::rotate(dir.path(), &store).unwrap();
    assert_ne!(rotation.ds_label, files.ds_label);
    assert_eq!(rotation.csca_label, files.csca_label);
    // The previous certificate is kept under its serial; ds.pem is the new one.
    let old_pem = fs::read_to_string(&rotation.previous).unwrap();
    let name = rotation.previous.file_name().unwrap().to_string_lossy();
    assert!(name.starts_with("ds-") && name.ends_with(".pem"), "{name}");
    let after = DocumentSigner::load(dir.path(), Arc::clone(&store)).unwrap();
    assert_ne!(after.certificate_der(), before.certificate_der());
    assert_ne!(after.key_id(), before.key_id());
    assert_ne!(
        old_pem,
        fs::read_to_string(dir.path().join("ds.pem")).unwrap()
    );
    let new_sod = pki::sign_sod(&after, &refs(&dgs)).unwrap();

    let csca = CscaCertificate::load(&dir.path().join("csca.pem")).unwrap();
    assert_eq!(&csca, after.csca());
    let now = SystemTime::now();
    let r_old = pki::verify_sod(&old_sod, &refs(&dgs), std::slice::from_ref(&csca), now).unwrap();
    let r_new = pki::verify_sod(&new_sod, &refs(&dgs), std::slice::from_ref(&csca), now).unwrap();
    assert_eq!(r_old.ds_subject, r_new.ds_subject);
    // They carry different DS certificates.
    let old_cert = before.certificate_der();
    let new_cert = after.certificate_der();
    assert!(old_sod.windows(old_cert.len()).any(|w| w == old_cert));
    assert!(!old_sod.windows(new_cert.len()).any(|w| w == new_cert));
    assert!(new_sod.windows(new_cert.len()).any(|w| w == new_cert));
    for sod in [&old_sod, &new_sod] {
        let (ok, text) = openssl_verify(sod, dir.path(), dir.path());
        assert!(ok, "openssl refused an SOD after rotation: {text}");
    }
    // The old DS key stays in the token (its certificate is still valid): the kept
    // certificate can be loaded back as a signer.
    let kept = pki::check_ds_certificate(&csca, old_cert, now);
    assert!(kept.is_ok());
    fs::remove_file(
        dir.path()
            .join("sod-".to_string() + &std::process::id().to_string() + ".der"),
    )
    .unwrap();
    assert_no_private_key(dir.path());
    // A second rotation keeps the first rotated certificate too.
    let second = pki::rotate(dir.path(), &store).unwrap();
    assert_ne!(second.previous, rotation.previous);
    assert!(rotation.previous.is_file() && second.previous.is_file());
}

#[test]
fn a_ds_whose_key_is_not_in_the_token_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    pki::init(dir.path(), &hsm::shared()).unwrap();
    let (other, _) = hsm::token("other");
    let err = DocumentSigner::load(dir.path(), Arc::clone(&other)).unwrap_err();
    let PkiError::KeyNotInToken { token, key_id } = &err else {
        panic!("expected KeyNotInToken, got {err}");
    };
    assert_eq!(token, "other");
    assert_eq!(key_id.len(), 40);
    assert!(!err.is_unavailable());
    assert!(err.to_string().contains("not in token \"other\""), "{err}");
    // Rotation needs the CSCA key: refused the same way, and nothing changes in the folder.
    let before = files_in(dir.path());
    let err = pki::rotate(dir.path(), &other).unwrap_err();
    assert!(matches!(err, PkiError::KeyNotInToken { .. }), "{err}");
    assert_eq!(files_in(dir.path()), before);
}

#[test]
fn token_errors_keep_whether_they_are_transient() {
    let unavailable = PkiError::from(KeyStoreError::Unavailable {
        label: "t".into(),
        reason: "removed".into(),
    });
    assert!(unavailable.is_unavailable());
    let refused = PkiError::from(KeyStoreError::Crypto {
        operation: "ECDSA signature".into(),
        reason: "CKR_FUNCTION_FAILED".into(),
    });
    assert!(!refused.is_unavailable());
    let _: fn(&Path, &Arc<KeyStore>) -> Result<pki::PkiFiles, PkiError> = pki::init;
}
