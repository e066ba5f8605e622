//! Delivery through the real daemon: `idcardd serve` on ZeroMQ sockets with simulated readers,
//! driven by pyzmq (daemon/tests/py/delivery_client.py, using examples/idcardd_client.py and
//! examples/kiosk.py), then the operator commands: `idcardd delivery begin` through the socket,
//! `idcardd card terminate|unblock` with secrets from the environment, and
//! `idcardd audit verify|show` on the state directory (including after an edited row).

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use apdu::card::IdCard;
use apdu::fcp::LifeCycle;
use test_support::paths;
use test_support::perso::{national_plan, personalize_sim};
use test_support::pki::signer_in;
use test_support::process::{self, text};
use test_support::python::python_with_zmq;

const BIN: &str = env!("CARGO_BIN_EXE_idcardd");

struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn idcardd(args: &[&str], env: &[(&str, &str)]) -> Output {
    process::run_with_env(BIN, args, env)
}

#[test]
fn a_kiosk_delivers_a_card_through_the_daemon_and_operators_terminate_unblock_and_audit() {
    let Some(python) = python_with_zmq() else {
        eprintln!(
            "SKIPPED: no python3 with the zmq module (scripts/setup.sh installs python3-zmq)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (pki_dir, state) = (dir.path().join("pki"), dir.path().join("state"));
    let signer = signer_in(&pki_dir);
    let plan = national_plan(&signer);
    let (sims, mailer) = (state.join("sim"), state.join("pin-mailer.jsonl"));
    let secrets_0 = personalize_sim(&sims, 0, &plan, &mailer);
    personalize_sim(&sims, 1, &plan, &mailer);

    let config = dir.path().join("idcardd.toml");
    std::fs::write(
        &config,
        format!(
            "[pki]\ndir = {:?}\ntrust = [\"csca.pem\"]\n[delivery]\nmax_attempts = 3\n{}",
            pki_dir.display().to_string(),
            // The issuer's token: the one this test keyed and personalized the cards with.
            test_support::hsm::config_toml(test_support::hsm::SHARED),
        ),
    )
    .unwrap();
    let socket = dir.path().join("run/s.sock");
    let endpoint = format!("ipc://{}", socket.display());
    let events = format!("ipc://{}", dir.path().join("run/e.sock").display());
    let child = Command::new(BIN)
        .arg("serve")
        .arg("--config")
        .arg(&config)
        .args(["--readers", "sim:2", "--state-dir"])
        .arg(&state)
        .args(["--endpoint", &endpoint, "--events", &events])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let mut daemon = Daemon(child);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !socket.exists() {
        assert!(
            daemon.0.try_wait().unwrap().is_none(),
            "idcardd serve exited early"
        );
        assert!(
            Instant::now() < deadline,
            "idcardd serve did not bind in 60 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The kiosk: begin, impostor, holder, activation with the PIN from the environment.
    let script = paths::repo().join("daemon/tests/py/delivery_client.py");
    let fixtures = paths::fingerprints();
    let out = Command::new(&python)
        .arg(&script)
        .args(["--endpoint", &endpoint, "--events", &events])
        .arg("--fixtures")
        .arg(&fixtures)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("all checks passed"), "{}", text(&out));

    // The operator's command line through the socket: the card is delivered already.
    let out = idcardd(
        &[
            "delivery",
            "begin",
            "--reader",
            "sim:0",
            "--endpoint",
            &endpoint,
        ],
        &[],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("already_delivered"), "{}", text(&out));
    // Verify with the right card in another reader, through the CLI.
    let out = idcardd(
        &[
            "delivery",
            "begin",
            "--reader",
            "sim:1",
            "--endpoint",
            &endpoint,
            "--json",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let begun: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let session = begun["session"].as_str().unwrap();
    let scan = format!("2:{}", fixtures.join("1_3.png").display());
    let out = idcardd(
        &[
            "delivery",
            "verify",
            "--session",
            session,
            "--scan",
            &scan,
            "--endpoint",
            &endpoint,
        ],
        &[],
    );
    assert!(text(&out).contains("MATCH"), "{}", text(&out));
    drop(daemon);

    let state_arg = state.display().to_string();
    let sim_arg = state.join("sim").display().to_string();
    let config_arg = config.display().to_string();
    // Unblock the delivered card of sim:0 (PIN blocked first), PUK and PIN from the environment.
    {
        let mut card =
            IdCard::new(issuance::readers::open_existing("sim:0", &state.join("sim")).unwrap());
        for _ in 0..3 {
            assert!(card.verify_pin(b"0000").is_err());
        }
    }
    let local = |reader: &'static str| {
        vec![
            "--reader".to_string(),
            reader.to_string(),
            "--state-dir".to_string(),
            state_arg.clone(),
            "--sim-dir".to_string(),
            sim_arg.clone(),
            "--config".to_string(),
            config_arg.clone(),
        ]
    };
    let args = |cmd: &[&str], reader: &'static str, extra: &[&str]| -> Vec<String> {
        cmd.iter()
            .map(|s| s.to_string())
            .chain(local(reader))
            .chain(extra.iter().map(|s| s.to_string()))
            .collect()
    };
    let run = |a: Vec<String>, env: &[(&str, &str)]| {
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        idcardd(&a, env)
    };
    let out = run(
        args(&["card", "unblock"], "sim:0", &[]),
        &[
            ("IDCARDD_PUK", secrets_0.puk.as_str()),
            ("IDCARDD_NEW_PIN", "2468"),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains(secrets_0.puk.as_str()));
    IdCard::new(issuance::readers::open_existing("sim:0", &state.join("sim")).unwrap())
        .verify_pin(b"2468")
        .unwrap();
    let out = run(
        args(&["card", "terminate"], "sim:1", &["--reason", "stolen"]),
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    let mut card =
        IdCard::new(issuance::readers::open_existing("sim:1", &state.join("sim")).unwrap());
    assert!(card.life_cycle().unwrap().is_terminated());
    let mut card0 =
        IdCard::new(issuance::readers::open_existing("sim:0", &state.join("sim")).unwrap());
    assert_eq!(card0.life_cycle().unwrap(), LifeCycle::Activated);

    // The audit trail holds the whole story and verifies (with the token's key).
    let audit = |cmd: &str, extra: &[&str]| {
        let mut a = vec![
            "audit",
            cmd,
            "--state-dir",
            &state_arg,
            "--config",
            &config_arg,
        ];
        a.extend_from_slice(extra);
        idcardd(&a, &[])
    };
    let out = audit("verify", &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("intact"), "{}", text(&out));
    let out = audit("show", &["--json"]);
    let kinds: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for k in [
        "delivery.begin",
        "delivery.verify",
        "activation_pending",
        "delivered",
        "unblocked",
        "terminated",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} missing from {kinds:?}");
    }
    // An edited row is caught, with a failing exit status.
    let conn = rusqlite::Connection::open(state.join("audit.db")).unwrap();
    conn.execute(
        "UPDATE entries SET details = replace(details, 'stolen', 'lost') WHERE kind = 'terminated'",
        [],
    )
    .unwrap();
    let out = audit("verify", &[]);
    assert!(!out.status.success());
    assert!(text(&out).contains("BROKEN"), "{}", text(&out));
}
