//! `idcardd keys` and the daemon's key store at start (issue 15): the embedded SoftHSM token
//! made in a state directory, keys listed by attributes only, and a clear refusal to start on a
//! missing module, a wrong PIN, an absent token, a missing key or a key with the wrong
//! attributes.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::{refused_start, Daemon};
use test_support::process;

fn idcardd(args: &[&str]) -> std::process::Output {
    process::run(env!("CARGO_BIN_EXE_idcardd"), args)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn keys_init_makes_a_private_token_in_the_state_directory_and_list_shows_no_key_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state_arg = state.to_str().unwrap();
    let out = idcardd(&["keys", "init", "--state-dir", state_arg]);
    assert!(out.status.success(), "{}", process::text(&out));
    let text = process::text(&out);
    assert!(text.contains("token \"idcardd\" created"), "{text}");
    for label in [
        "idcardd-perso-master",
        "idcardd-terminal-master",
        "idcardd-audit-hmac",
        "idcardd-pin-mailer",
    ] {
        assert!(text.contains(&format!("{label}: generated")), "{text}");
    }
    // Everything of the token is inside the state directory, owner-only; the PIN is not shown.
    let hsm = state.join("hsm");
    assert_eq!(mode(&hsm), 0o700);
    assert_eq!(mode(&hsm.join("idcardd.pin")), 0o600);
    assert_eq!(mode(&hsm.join("softhsm2.conf")), 0o600);
    let pin = std::fs::read_to_string(hsm.join("idcardd.pin")).unwrap();
    assert!(!text.contains(pin.trim()), "{text}");
    let conf = std::fs::read_to_string(hsm.join("softhsm2.conf")).unwrap();
    assert!(
        conf.contains(&hsm.join("tokens").display().to_string()),
        "{conf}"
    );

    // Again: nothing new, nothing lost.
    let out = idcardd(&["keys", "init", "--state-dir", state_arg]);
    assert!(out.status.success(), "{}", process::text(&out));
    assert!(process::text(&out).contains("idcardd-pin-mailer: present"));

    let out = idcardd(&["keys", "list", "--json", "--state-dir", state_arg]);
    assert!(out.status.success(), "{}", process::text(&out));
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let keys = keys.as_array().unwrap();
    assert_eq!(keys.len(), 4, "{keys:?}");
    for k in keys {
        assert_eq!(k["sensitive"], true, "{k}");
        assert_eq!(k["extractable"], false, "{k}");
        assert_eq!(k["never_extractable"], true, "{k}");
        assert_eq!(k["bits"], 256, "{k}");
        assert!(k.get("value").is_none(), "{k}");
    }
    let out = idcardd(&["keys", "list", "--state-dir", state_arg]);
    let table = process::text(&out);
    assert!(table.contains("CKM_AES_CMAC") && table.contains("CKM_SHA256_HMAC"));
    assert!(!table.contains("problem"), "{table}");

    // The test PKI goes into the same token: two EC key pairs more, listed like the others.
    let pki = idcardd(&[
        "pki",
        "init",
        &format!("{state_arg}/pki"),
        "--state-dir",
        state_arg,
    ]);
    assert!(pki.status.success(), "{}", process::text(&pki));
    let out = idcardd(&["keys", "list", "--json", "--state-dir", state_arg]);
    let keys: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let private: Vec<_> = keys
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| k["class"] == "private")
        .collect();
    assert_eq!(private.len(), 2, "CSCA and DS: {keys}");
    for k in private {
        assert_eq!(
            (&k["sensitive"], &k["extractable"]),
            (&true.into(), &false.into()),
            "{k}"
        );
        assert_eq!(k["mechanism"], "CKM_ECDSA");
    }
}

#[test]
fn the_daemon_refuses_to_start_on_a_missing_module_pin_token_or_key() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("token");
    let out = idcardd(&["keys", "init", "--state-dir", state.to_str().unwrap()]);
    assert!(out.status.success(), "{}", process::text(&out));
    let hsm = state.join("hsm");
    let module = keystore::softhsm_module().unwrap();
    let keys = |module: &Path, token: &str, pin_file: &Path, extra: &str| {
        format!(
            "[keys]\nmodule = {:?}\ntoken_label = {token:?}\npin = {{ file = {:?} }}\nsofthsm_conf = {:?}\n{extra}",
            module.display().to_string(),
            pin_file.display().to_string(),
            hsm.join("softhsm2.conf").display().to_string()
        )
    };
    let pin = hsm.join("idcardd.pin");
    let wrong_pin = dir.path().join("wrong.pin");
    std::fs::write(&wrong_pin, "000000\n").unwrap();
    let empty_pin = dir.path().join("empty.pin");
    std::fs::write(&empty_pin, "\n").unwrap();

    let cases = [
        (
            keys(Path::new("/nonexistent/libhsm.so"), "idcardd", &pin, ""),
            "PKCS#11 module /nonexistent/libhsm.so",
        ),
        (
            keys(&module, "idcardd", &wrong_pin, ""),
            "refused the user PIN",
        ),
        (keys(&module, "idcardd", &empty_pin, ""), "is empty"),
        (
            keys(&module, "no-such-token", &pin, ""),
            "no token labelled \"no-such-token\"",
        ),
        (
            keys(
                &module,
                "idcardd",
                &pin,
                "[keys.labels]\naudit_hmac = \"no-such-key\"\n",
            ),
            "key \"no-such-key\" is not in token",
        ),
        (
            // The mailer's AES key offered as the HMAC key: wrong type.
            keys(
                &module,
                "idcardd",
                &pin,
                "[keys.labels]\naudit_hmac = \"idcardd-pin-mailer\"\n",
            ),
            "has the wrong attributes: key type",
        ),
        (
            // The mailer key offered as a card master: an AES key that may not sign (CMAC).
            keys(
                &module,
                "idcardd",
                &pin,
                "[keys.labels]\nperso_master = \"idcardd-pin-mailer\"\n",
            ),
            "CKA_SIGN is false",
        ),
    ];
    for (config, want) in cases {
        let err = refused_start(&config, &[]);
        assert!(
            err.contains(want),
            "want {want:?} in:\n{err}\nconfig:\n{config}"
        );
        assert!(!err.contains("panicked"), "{err}");
        // Never the PIN itself.
        let secret = std::fs::read_to_string(&pin).unwrap();
        assert!(!err.contains(secret.trim()), "{err}");
    }

    // The same token, rightly configured: the daemon starts and reports it healthy.
    let daemon = Daemon::start(&keys(&module, "idcardd", &pin, ""));
    drop(daemon);
}
