//! Personalization of simulated cards from the fixture applicants: written, read back under a
//! terminal session and passive-authenticated; torn at every APDU position and written again;
//! never overwritten once personalized.

use std::time::SystemTime;

use apdu::card::IdCard;
use apdu::fcp::LifeCycle;
use cardsim::{FaultHandle, Faults, SimCard, SimConfig, SimTransport};
use issuance::lds;
use issuance::personalize::{
    personalize, CardSecrets, Found, NoHooks, PersoError, PersoHooks, Plan,
};
use issuance::pki::{self, DocumentSigner};
use test_support::paths;
use test_support::perso;
use test_support::pki::temp_signer;

/// The plan of fixture record `name` (QC'd against its profile).
fn plan_for(name: &str, signer: &DocumentSigner, doc: &str) -> Plan {
    perso::plan(&paths::applicants().join(name), signer, doc)
}

/// The issuer's keys: masters in the shared SoftHSM test token.
fn keys() -> std::sync::Arc<keystore::KeyStore> {
    test_support::hsm::shared()
}

fn fresh_card(seed: u64) -> (IdCard<SimTransport>, FaultHandle) {
    // A blank card holding the keys the token derives for its serial (the card maker's load).
    let config = SimConfig {
        seed: Some(seed),
        keys: keys(),
        ..SimConfig::default()
    };
    let reader = SimTransport::new(SimCard::create(None, config).unwrap());
    let faults = reader.faults();
    (IdCard::new(reader), faults)
}

/// Reads every file of the plan back under a terminal session and passive-authenticates.
fn read_back_and_verify(card: &mut IdCard<SimTransport>, plan: &Plan, signer: &DocumentSigner) {
    assert_eq!(card.life_cycle().unwrap(), LifeCycle::Deactivated);
    let mut session = card.authenticate_terminal(keys().as_ref()).unwrap();
    let mut groups = Vec::new();
    for f in &plan.files {
        let data = session.read_file(f.fid).unwrap();
        assert_eq!(data, f.data, "EF {:04X}", f.fid);
        if let Some(dg) = f.dg {
            groups.push((dg, data));
        }
    }
    let sod = session.read_file(apdu::layout::EF_SOD).unwrap();
    let refs: Vec<(u8, &[u8])> = groups.iter().map(|(n, d)| (*n, d.as_slice())).collect();
    let report = pki::verify_sod(
        &sod,
        &refs,
        std::slice::from_ref(signer.csca()),
        SystemTime::now(),
    )
    .unwrap();
    // Every data group the plan writes, DG4 (iris, terminal session only) included.
    let written: Vec<u8> = plan.files.iter().filter_map(|f| f.dg).collect();
    assert_eq!(report.checked, written);
}

#[test]
fn fixture_applicants_are_personalized_read_back_and_passive_authenticated() {
    let (_pki, signer) = temp_signer();
    for (i, name) in [
        "national-valid-1.json",
        "free-zone-valid-1.json",
        "foreign-valid-1.json",
    ]
    .iter()
    .enumerate()
    {
        let plan = plan_for(name, &signer, &format!("A{:08}", i + 1));
        let (mut card, _) = fresh_card(i as u64 + 1);
        let outcome = personalize(&mut card, &plan, keys().as_ref(), &mut NoHooks).unwrap();
        assert_eq!(outcome.found, Found::Fresh);
        assert_eq!(outcome.bytes_written, plan.total_bytes());
        // SELECT with the FCP (life cycle) and GET DATA serial, 2 authentication (GET
        // CHALLENGE, MUTUAL AUTHENTICATE: the application is selected and the serial read),
        // create + write + read per file, 2 PINs, 1 deactivate.
        assert_eq!(
            outcome.apdus,
            2 + 2 + 3 * plan.files.len() as u64 + 3,
            "{name}"
        );
        read_back_and_verify(&mut card, &plan, &signer);
        let dg4 = plan.data_group(4);
        assert_eq!(dg4.is_some(), name.starts_with("foreign-"), "{name}");
        if let Some(dg4) = dg4 {
            let eyes = lds::iris::parse_dg4(dg4).unwrap();
            assert_eq!(
                eyes.iter().map(|e| e.eye).collect::<Vec<_>>(),
                [lds::Eye::Right, lds::Eye::Left]
            );
        }

        // DG1 and DG11 carry the applicant: Latin names in the MRZ, Persian in DG11.
        let mrz = lds::mrz::parse_dg1(plan.data_group(1).unwrap()).unwrap();
        assert_eq!(mrz.document_number, format!("A{:08}", i + 1));
        let dg11 = lds::details::parse_dg11(plan.data_group(11).unwrap()).unwrap();
        assert!(dg11.surname.chars().all(|c| !c.is_ascii_alphabetic()));

        // The transport PIN works for delivery: the holder replaces it, the card activates.
        let secrets = outcome.secrets.unwrap();
        let mut session = card.authenticate_terminal(keys().as_ref()).unwrap();
        session
            .change_pin(secrets.transport_pin.as_bytes(), b"4829")
            .unwrap();
        session.activate().unwrap();
    }
}

#[test]
fn a_personalized_card_is_not_overwritten_and_a_finished_one_is_recognised() {
    let (_pki, signer) = temp_signer();
    let plan = plan_for("national-valid-1.json", &signer, "A00000001");
    let other = plan_for("national-valid-2.json", &signer, "A00000002");
    let (mut card, faults) = fresh_card(7);
    personalize(&mut card, &plan, keys().as_ref(), &mut NoHooks).unwrap();
    let before = faults.with_card(|c| c.app_file(0x0101));

    // Another record on the same card: refused, nothing written.
    let err = personalize(&mut card, &other, keys().as_ref(), &mut NoHooks).unwrap_err();
    assert!(
        matches!(err, PersoError::AlreadyPersonalized { .. }),
        "{err}"
    );
    assert_eq!(faults.with_card(|c| c.app_file(0x0101)), before);

    // The same plan again (a crash after the card was finished): recognised, nothing written.
    let again = personalize(&mut card, &plan, keys().as_ref(), &mut NoHooks).unwrap();
    assert_eq!(again.found, Found::AlreadyDone);
    assert!(again.secrets.is_none());
    read_back_and_verify(&mut card, &plan, &signer);
}

/// Records what the hooks saw, to check the order of the points of no return.
#[derive(Default)]
struct Recorder {
    events: Vec<String>,
}

impl PersoHooks for Recorder {
    fn before_write(&mut self, serial: &[u8; 8], found: Found) -> Result<(), PersoError> {
        self.events
            .push(format!("write {} {found:?}", hex::encode_upper(serial)));
        Ok(())
    }
    fn secrets_chosen(&mut self, _: &[u8; 8], _: &CardSecrets) -> Result<(), PersoError> {
        self.events.push("secrets".into());
        Ok(())
    }
}

#[test]
fn tearing_at_every_apdu_leaves_a_card_that_is_found_incomplete_and_written_again() {
    let (_pki, signer) = temp_signer();
    let plan = plan_for("national-valid-1.json", &signer, "A00000001");
    let (mut probe, _) = fresh_card(100);
    let total = personalize(&mut probe, &plan, keys().as_ref(), &mut NoHooks)
        .unwrap()
        .apdus;

    // SELECT, GET DATA and 2 authentication APDUs change nothing on the card; APDU 4, the
    // first CREATE FILE, is the first that does.
    let first_write = 4;
    for n in 0..total {
        let (mut card, faults) = fresh_card(200 + n);
        faults.set(Faults {
            tear_after: Some(n),
            ..Faults::default()
        });
        let err = personalize(&mut card, &plan, keys().as_ref(), &mut NoHooks).unwrap_err();
        assert!(err.is_card_removed(), "APDU {n}: {err}");
        faults.reinsert();
        let lcs = faults.with_card(|c| c.life_cycle());
        let mut hooks = Recorder::default();
        let outcome = personalize(&mut card, &plan, keys().as_ref(), &mut hooks)
            .unwrap_or_else(|e| panic!("after a tear at APDU {n}: {e}"));
        let expected = if n <= first_write {
            Found::Fresh
        } else {
            Found::Incomplete
        };
        assert_eq!(outcome.found, expected, "tear at APDU {n} (LCS {lcs:?})");
        assert_eq!(hooks.events.len(), 2, "{:?}", hooks.events);
        read_back_and_verify(&mut card, &plan, &signer);
    }

    // Torn inside each UPDATE BINARY with half of its data written.
    let updates: Vec<u64> = (0..plan.files.len() as u64)
        .map(|i| first_write + 2 * i + 1)
        .collect();
    for (i, &n) in updates.iter().enumerate() {
        let (mut card, faults) = fresh_card(500 + n);
        faults.set(Faults {
            tear_in_update: Some((n, plan.files[i].data.len() / 2)),
            ..Faults::default()
        });
        let err = personalize(&mut card, &plan, keys().as_ref(), &mut NoHooks).unwrap_err();
        assert!(err.is_card_removed(), "{err}");
        faults.reinsert();
        let outcome = personalize(&mut card, &plan, keys().as_ref(), &mut NoHooks).unwrap();
        assert_eq!(outcome.found, Found::Incomplete);
        read_back_and_verify(&mut card, &plan, &signer);
    }
}
