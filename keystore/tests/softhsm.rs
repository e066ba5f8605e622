//! The key store against a real SoftHSM2 token (Debian's softhsm2), in a temporary folder.
//! One test process holds one SoftHSM configuration: every test here shares the folder and
//! makes its own tokens in it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use apdu::card::IdCard;
use apdu::sm::{CardKeys, KeyRef};
use cardsim::{SimCard, SimConfig, SimTransport};
use keystore::{KeyStore, KeyStoreConfig, KeyStoreError, PinSource};

fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap().keep())
}

fn token(label: &str) -> Arc<KeyStore> {
    static TOKENS: std::sync::Mutex<Vec<(String, Arc<KeyStore>)>> =
        std::sync::Mutex::new(Vec::new());
    let mut t = TOKENS.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, s)) = t.iter().find(|(l, _)| l == label) {
        return Arc::clone(s);
    }
    let (store, report) = keystore::init_softhsm(dir(), label).unwrap();
    assert!(report.token_created);
    assert!(report.keys.iter().all(|(_, made)| *made), "{report:?}");
    let store = Arc::new(store);
    t.push((label.into(), Arc::clone(&store)));
    store
}

#[test]
fn init_is_idempotent_and_every_key_is_sensitive_and_never_extractable() {
    let store = token("attrs");
    let (_, again) = keystore::init_softhsm(dir(), "attrs").unwrap();
    assert!(!again.token_created);
    assert!(again.keys.iter().all(|(_, made)| !*made), "{again:?}");
    assert!(store.check().unwrap().is_empty());
    let keys = store.list().unwrap();
    let labels = &store.config().labels;
    for label in [
        &labels.perso_master,
        &labels.terminal_master,
        &labels.audit_hmac,
        &labels.mailer,
    ] {
        let k = keys.iter().find(|k| &k.label == label).unwrap();
        assert_eq!(k.class, "secret");
        assert_eq!(k.bits, Some(256), "{k:?}");
        assert_eq!(k.sensitive, Some(true), "{k:?}");
        assert_eq!(k.extractable, Some(false), "{k:?}");
        assert_eq!(k.always_sensitive, Some(true), "{k:?}");
        assert_eq!(k.never_extractable, Some(true), "{k:?}");
        assert_eq!(k.local, Some(true), "{k:?}");
        // Asking the token for the value gets "sensitive", not bytes.
        assert!(!store.value_is_readable(label).unwrap(), "{label}");
    }
    let mailer = keys.iter().find(|k| k.label == labels.mailer).unwrap();
    assert_eq!(mailer.mechanism, "CKM_AES_GCM");
    assert_eq!(mailer.allows, ["encrypt", "decrypt"]);
    let master = keys
        .iter()
        .find(|k| k.label == labels.perso_master)
        .unwrap();
    assert_eq!(master.allows, ["sign", "verify"]);
    // The listing carries no key bytes (it cannot: the token never gave any).
    let shown = serde_json::to_string(&keys).unwrap();
    assert!(!shown.contains("value"), "{shown}");
}

#[test]
fn card_keys_are_derived_in_the_token_and_a_card_keyed_from_it_authenticates() {
    let store = token("cards");
    let a = store
        .derive_card_key(KeyRef::Personalization, b"SERIAL01")
        .unwrap();
    assert_eq!(a.len(), 32);
    assert_eq!(
        a,
        store
            .derive_card_key(KeyRef::Personalization, b"SERIAL01")
            .unwrap()
    );
    assert_ne!(
        a,
        store
            .derive_card_key(KeyRef::Terminal, b"SERIAL01")
            .unwrap()
    );
    assert_ne!(
        a,
        store
            .derive_card_key(KeyRef::Personalization, b"SERIAL02")
            .unwrap()
    );
    // Another token's masters give other card keys.
    let other = token("cards-other");
    assert_ne!(
        a,
        other
            .derive_card_key(KeyRef::Personalization, b"SERIAL01")
            .unwrap()
    );

    // A simulated card made with keys from the token (the card holds them) opens sessions for
    // this token's key store only.
    let keys: Arc<dyn CardKeys> = store.clone();
    let card = SimCard::create(
        None,
        SimConfig {
            keys,
            ..SimConfig::default()
        },
    )
    .unwrap();
    let mut client = IdCard::new(SimTransport::new(card));
    assert!(client.authenticate_perso(store.as_ref()).is_ok());
    assert!(client.authenticate_terminal(store.as_ref()).is_ok());
    assert!(client.authenticate_terminal(other.as_ref()).is_err());
    assert!(client
        .authenticate_perso(&cardsim::fixtures::TestMasters)
        .is_err());
}

#[test]
fn sealed_records_open_only_with_the_same_key_and_context() {
    let store = token("mailer");
    let sealed = store.seal(b"serial 01", b"PIN 123456").unwrap();
    assert_eq!(
        sealed.len(),
        keystore::GCM_NONCE_LEN + 10 + keystore::GCM_TAG_LEN
    );
    assert!(!sealed.windows(6).any(|w| w == b"123456"));
    assert_eq!(
        &*store.open_sealed(b"serial 01", &sealed).unwrap(),
        b"PIN 123456"
    );
    // Fresh nonce each time.
    assert_ne!(sealed, store.seal(b"serial 01", b"PIN 123456").unwrap());
    // Other context, altered bytes, another token, a stub: refused.
    assert!(store.open_sealed(b"serial 02", &sealed).is_err());
    let mut altered = sealed.clone();
    altered[14] ^= 1;
    let e = store.open_sealed(b"serial 01", &altered).unwrap_err();
    assert!(matches!(e, KeyStoreError::Crypto { .. }), "{e}");
    assert!(token("mailer-other")
        .open_sealed(b"serial 01", &sealed)
        .is_err());
    assert!(store.open_sealed(b"", &[0; 5]).is_err());
}

#[test]
fn audit_macs_verify_in_the_token_that_made_them_only() {
    let store = token("audit");
    let mac = store.audit_mac(b"entry 1").unwrap();
    assert!(store.audit_mac_verify(b"entry 1", &mac).unwrap());
    assert!(!store.audit_mac_verify(b"entry 2", &mac).unwrap());
    assert!(!token("audit-other")
        .audit_mac_verify(b"entry 1", &mac)
        .unwrap());
}

#[test]
fn ecdsa_signatures_from_the_token_verify_with_its_public_key() {
    let store = token("ecdsa");
    let point = store.generate_p256("idcardd-ds-test").unwrap();
    assert_eq!(point.len(), 65);
    assert_eq!(
        store.p256_public("idcardd-ds-test").unwrap(),
        Some(point.clone())
    );
    let msg = b"signed attributes";
    let digest = ring::digest::digest(&ring::digest::SHA256, msg);
    let sig = store
        .sign_p256_digest(&keystore::ec_key_id(&point), digest.as_ref())
        .unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, &point)
        .verify(msg, &sig)
        .unwrap();
    let keys = store.list().unwrap();
    let private = keys
        .iter()
        .find(|k| k.label == "idcardd-ds-test" && k.class == "private")
        .unwrap();
    assert_eq!(
        (private.sensitive, private.extractable),
        (Some(true), Some(false))
    );
    assert_eq!(private.mechanism, "CKM_ECDSA");
    assert_eq!(private.allows, ["sign"], "{private:?}");
    assert!(!store.value_is_readable("idcardd-ds-test").unwrap());
    assert!(matches!(
        store.sign_p256_digest(&[1; 20], digest.as_ref()),
        Err(KeyStoreError::MissingKey { .. })
    ));
}

#[test]
fn clear_errors_for_a_missing_module_token_or_key_and_for_wrong_attributes() {
    let base = KeyStoreConfig::softhsm(dir(), "errors");
    token("errors");
    let missing_module = KeyStoreConfig {
        module: "/nonexistent/libpkcs11.so".into(),
        ..base.clone()
    };
    let e = KeyStore::open(&missing_module).unwrap_err();
    assert!(matches!(e, KeyStoreError::Module { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/libpkcs11.so"), "{e}");

    let absent = KeyStoreConfig {
        token_label: "no-such-token".into(),
        ..base.clone()
    };
    let e = KeyStore::open(&absent).unwrap_err();
    assert!(matches!(e, KeyStoreError::NoToken { .. }), "{e}");

    let mut no_key = base.clone();
    no_key.labels.audit_hmac = "no-such-key".into();
    let e = KeyStore::open(&no_key).unwrap_err();
    assert!(
        matches!(&e, KeyStoreError::MissingKey { label, .. } if label == "no-such-key"),
        "{e}"
    );

    // A key of the wrong kind under a configured label: the mailer key as a card master has
    // no CKA_SIGN.
    let mut wrong = base.clone();
    wrong.labels.perso_master = base.labels.mailer.clone();
    let e = KeyStore::open(&wrong).unwrap_err();
    assert!(matches!(e, KeyStoreError::WrongAttributes { .. }), "{e}");
    assert!(e.to_string().contains("CKA_SIGN"), "{e}");
    // ...and the HMAC key as the mailer key has the wrong type.
    let mut wrong = base.clone();
    wrong.labels.mailer = base.labels.audit_hmac.clone();
    let e = KeyStore::open(&wrong).unwrap_err();
    assert!(e.to_string().contains("key type"), "{e}");

    // A PIN source that gives nothing is an error naming the source, before any login.
    let no_pin = KeyStoreConfig {
        pin: PinSource::Env("IDCARDD_TEST_UNSET_PIN_VARIABLE".into()),
        token_label: "errors-pin".into(),
        ..base.clone()
    };
    token("errors-pin");
    let store = KeyStore::connect(&KeyStoreConfig {
        token_label: "errors-pin".into(),
        ..base.clone()
    });
    assert!(store.is_ok());
    let e = PinSource::Env("IDCARDD_TEST_UNSET_PIN_VARIABLE".into());
    assert_eq!(no_pin.pin, e);

    // A second SoftHSM configuration in the same process is refused, not silently ignored.
    let other_conf = KeyStoreConfig {
        softhsm_conf: Some("/tmp/other-softhsm2.conf".into()),
        ..base
    };
    let e = KeyStore::open(&other_conf).unwrap_err();
    assert!(e.to_string().contains("one SoftHSM configuration"), "{e}");
}

#[test]
fn parallel_readers_derive_at_once() {
    let store = token("parallel");
    let threads: Vec<_> = (0..4u8)
        .map(|t| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                for i in 0..25u8 {
                    let serial = [t, i, 0, 0, 0, 0, 0, 1];
                    let a = store.derive_card_key(KeyRef::Terminal, &serial).unwrap();
                    let b = store.derive_card_key(KeyRef::Terminal, &serial).unwrap();
                    assert_eq!(a, b);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
}
