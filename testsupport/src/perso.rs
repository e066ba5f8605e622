//! Personalization set-up: plans from fixture records, simulated cards written with them.

use std::path::Path;

use apdu::card::IdCard;
use issuance::applicant::qc::{check, MatcherCheck};
use issuance::applicant::Applicant;
use issuance::personalize::{personalize, CardSecrets, Issue, NoHooks, PinMailer, Plan};
use issuance::pki::DocumentSigner;
use issuance::profile::ProfileSet;

use crate::paths;

/// The plan of the applicant record at `record`, checked by QC against its built-in profile
/// and signed by `signer` as document `doc`, issued today.
pub fn plan(record: &Path, signer: &DocumentSigner, doc: &str) -> Plan {
    let applicant = Applicant::load(record).unwrap();
    let profiles = ProfileSet::builtin().unwrap();
    let profile = profiles.get(&applicant.profile).unwrap();
    let valid = check(&applicant, profile, &MatcherCheck).unwrap();
    Plan::build(&valid, profile, signer, &Issue::today(doc)).unwrap()
}

/// The plan of fixture `national-valid-1` as document `A00000001`: right index (2) enrolled
/// from fixture scan 1_1, left index (7) from 2_1.
pub fn national_plan(signer: &DocumentSigner) -> Plan {
    plan(
        &paths::applicants().join("national-valid-1.json"),
        signer,
        "A00000001",
    )
}

/// Personalizes simulated reader `sim:N` of `sim_dir` with `plan` (test keys) and appends the
/// card's secrets to the PIN mailer file `pin_mailer` (sealed under the mailer key of the
/// shared test token, [`crate::hsm::shared`]), where the daemon reads the transport PIN from.
pub fn personalize_sim(
    sim_dir: &Path,
    reader: usize,
    plan: &Plan,
    pin_mailer: &Path,
) -> CardSecrets {
    // The simulated card and the personalization both take their keys from the shared token.
    let store = crate::hsm::shared();
    let keys: std::sync::Arc<dyn apdu::sm::CardKeys> = store.clone();
    let mut card = IdCard::new(issuance::readers::open_sim(sim_dir, reader, &keys).unwrap());
    let outcome = personalize(&mut card, plan, &*store, &mut NoHooks).unwrap();
    let secrets = outcome.secrets.clone().unwrap();
    PinMailer::open(pin_mailer, store)
        .unwrap()
        .append(&plan.tracking_code, &outcome.serial_hex(), &secrets)
        .unwrap();
    secrets
}

/// The fixture ISO templates that pass the national profile's QC minimums, one per synthetic
/// finger (at least two).
pub fn good_templates() -> &'static [std::path::PathBuf] {
    static GOOD: std::sync::OnceLock<Vec<std::path::PathBuf>> = std::sync::OnceLock::new();
    GOOD.get_or_init(|| {
        let profiles = ProfileSet::builtin().unwrap();
        let policy = &profiles.get("national-id").unwrap().fingers;
        let dir = paths::fingerprints().canonicalize().unwrap();
        let good = crate::fixtures::usable_templates(&dir, policy.min_quality, policy.min_minutiae);
        assert!(
            good.len() >= 2,
            "fewer than two usable fixture fingers in {}",
            dir.display()
        );
        good
    })
}

/// A valid national-id record `i` (tracking code `GEN-<i>`, a national code of its own, a
/// surname in letters) whose two fingers are fixture ISO templates inline (no extraction:
/// keeps QC fast; no file: a record from the socket may name none).
pub fn generated_record(i: u64) -> serde_json::Value {
    let mut r = crate::fixtures::applicant("national-valid-1.json");
    let good = good_templates();
    let a = &good[i as usize % good.len()];
    let b = &good[(i as usize + 1) % good.len()];
    r["tracking_code"] = format!("GEN-{i:04}").into();
    r["national_code"] = crate::ids::national_code(i).into();
    r["name"]["latin"]["last"] = format!("Person{}", letters(i)).into();
    let inline = |p: &std::path::PathBuf| crate::data::base64(&std::fs::read(p).unwrap());
    r["fingers"] = serde_json::json!({
        "right_index": {"template": {"base64": inline(a)}},
        "left_index": {"template": {"base64": inline(b)}},
    });
    r
}

/// `i` spelled in letters A-J (MRZ names take no digits).
pub fn letters(i: u64) -> String {
    format!("{i:04}")
        .bytes()
        .map(|d| char::from(b'A' + (d - b'0')))
        .collect()
}

/// DG1 and EF.SOD as read from a card.
pub type Dg1AndSod = (Vec<u8>, Vec<u8>);

/// The life cycle of the simulated card at `path` and, when it is personalized (deactivated),
/// its DG1 and EF.SOD read under a terminal session keyed by the shared test token
/// ([`crate::hsm::shared`]).
pub fn read_personalized(path: &Path) -> (apdu::fcp::LifeCycle, Option<Dg1AndSod>) {
    let sim = cardsim::SimCard::open(path).expect("opening a simulated card");
    let lcs = sim.life_cycle();
    if lcs != apdu::fcp::LifeCycle::Deactivated {
        return (lcs, None);
    }
    let mut card = IdCard::new(cardsim::SimTransport::new(sim));
    let mut s = card
        .authenticate_terminal(crate::hsm::shared().as_ref())
        .expect("terminal authentication");
    let dg1 = s.read_file(0x0101).expect("reading DG1");
    let sod = s.read_file(apdu::layout::EF_SOD).expect("reading EF.SOD");
    (lcs, Some((dg1, sod)))
}

/// Checks a card made from [`generated_record`] `GEN-nnnn`: its DG1 names the record's person
/// and carries `document_number`, and its EF.SOD verifies against `signer`'s CSCA.
pub fn check_generated_card(
    dg1: &[u8],
    sod: &[u8],
    tracking_code: &str,
    document_number: &str,
    signer: &DocumentSigner,
) {
    let mrz = issuance::lds::mrz::parse_dg1(dg1).expect("DG1 parses");
    assert_eq!(mrz.document_number, document_number, "{tracking_code}");
    let i: u64 = tracking_code["GEN-".len()..]
        .parse()
        .expect("a generated tracking code");
    assert_eq!(mrz.surname, format!("PERSON{}", letters(i)));
    issuance::pki::verify_sod(
        sod,
        &[(1, dg1)],
        std::slice::from_ref(signer.csca()),
        std::time::SystemTime::now(),
    )
    .expect("EF.SOD verifies");
}
