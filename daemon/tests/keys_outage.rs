//! The issuer's token going away mid-batch: the SoftHSM token's storage disappears (as an HSM's
//! does when its disk or its network goes) while a batch runs, then comes back. Meanwhile
//! `system.health` says the key store is unavailable, no record fails, no card is left
//! half-written and nothing is personalized; once it is back the batch finishes by itself.
//!
//! One test in its own process: the module is initialized again to find the token, which
//! would disturb other tests' tokens in the same process.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use apdu::fcp::LifeCycle;
use idcardd::api::{dispatch, Call};
use idcardd::service::{Service, ServiceConfig};
use issuance::batch::{self, SimHopper};
use issuance::journal::BatchState;
use test_support::perso::generated_record;

/// The folder SoftHSM keeps the token `idcardd` of `state` in.
fn token_dir(state: &Path) -> std::path::PathBuf {
    let tokens = state.join("hsm/tokens");
    let mut dirs: Vec<_> = std::fs::read_dir(&tokens)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    assert_eq!(dirs.len(), 1, "one token in {}", tokens.display());
    dirs.pop().unwrap()
}

fn wait_for(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_batch_pauses_while_the_token_is_away_and_finishes_when_it_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let pki = state.join("pki");
    let readers = vec!["sim:0".to_string(), "sim:1".to_string()];
    // The embedded token of a fresh state directory, made by the daemon's first start.
    let mut config = ServiceConfig::new(state.clone(), readers.clone());
    config.pki_dir = Some(pki.clone());
    let svc = Arc::new(Service::open(config).unwrap());
    issuance::pki::init(&pki, &svc.keys).unwrap();
    let health = |svc: &Service| {
        dispatch(svc, "system.health", Call::default())
            .unwrap()
            .result
    };
    assert_eq!(health(&svc)["keys"]["status"], "ok");

    let records: Vec<(String, String)> = (0..40)
        .map(|i| (generated_record(i).to_string(), String::new()))
        .collect();
    let journal = svc.batches.journal();
    let id = batch::submit(journal, "test", &readers, &records).unwrap();
    svc.batches
        .start(&id, readers.clone(), svc.events.clone())
        .unwrap();
    wait_for("the first cards", Duration::from_secs(60), || {
        journal.counts(&id).unwrap().personalized >= 4
    });

    // The token goes away mid-batch.
    let token = token_dir(&state);
    let away = dir.path().join("token-away");
    std::fs::rename(&token, &away).unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let h = health(&svc);
    assert_eq!(h["keys"]["status"], "unavailable", "{h}");
    assert_eq!(h["status"], "degraded", "{h}");
    let paused = journal.counts(&id).unwrap();
    assert_eq!(paused.failed, 0, "{paused:?}");
    std::thread::sleep(Duration::from_millis(1000));
    let still = journal.counts(&id).unwrap();
    assert_eq!(
        still.personalized, paused.personalized,
        "nothing is personalized without the token"
    );
    assert!(svc.batches.is_running(&id));

    // It comes back: the batch goes on by itself.
    std::fs::rename(&away, &token).unwrap();
    wait_for("the batch to finish", Duration::from_secs(120), || {
        journal.batch(&id).unwrap().state == BatchState::Finished
    });
    let c = journal.counts(&id).unwrap();
    assert_eq!(
        (c.total, c.personalized, c.failed, c.writing, c.pending),
        (40, 40, 0, 0, 0),
        "{c:?}"
    );
    std::thread::sleep(issuance_ttl());
    assert_eq!(health(&svc)["keys"]["status"], "ok");

    // Every card is finished and passes passive authentication; none was left half-written.
    let hopper = SimHopper::in_state_dir(&state, svc.keys.clone());
    let signer = issuance::pki::DocumentSigner::load(&pki, svc.keys.clone()).unwrap();
    let mut finished = 0;
    for entry in std::fs::read_dir(&hopper.dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let mut card = apdu::card::IdCard::new(cardsim::SimTransport::new(
            cardsim::SimCard::open(&path).unwrap(),
        ));
        match card.life_cycle().unwrap() {
            LifeCycle::Creation => continue, // blank, taken while the token was away
            LifeCycle::Deactivated => {}
            other => panic!("{} left in {other:?}", path.display()),
        }
        let mut s = card.authenticate_terminal(svc.keys.as_ref()).unwrap();
        let dg1 = s.read_file(0x0101).unwrap();
        let sod = s.read_file(apdu::layout::EF_SOD).unwrap();
        issuance::pki::verify_sod(
            &sod,
            &[(1, &dg1)],
            std::slice::from_ref(signer.csca()),
            SystemTime::now(),
        )
        .unwrap();
        finished += 1;
    }
    assert_eq!(finished, 40);
    // The audit chain, keyed in the token, is intact across the outage.
    assert!(issuance::audit::verify(&state, &svc.keys)
        .unwrap()
        .is_intact());
}

/// How long `system.health` reuses what it learned of the token.
fn issuance_ttl() -> Duration {
    idcardd::service::SETUP_CHECK_TTL + Duration::from_millis(50)
}
