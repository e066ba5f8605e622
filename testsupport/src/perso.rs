//! Personalization set-up: plans from fixture records, simulated cards written with them.

use std::path::Path;

use apdu::card::IdCard;
use issuance::applicant::qc::{check, MatcherCheck};
use issuance::applicant::Applicant;
use issuance::personalize::{personalize, CardSecrets, Issue, NoHooks, PersoKeys, PinMailer, Plan};
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
/// card's secrets to the PIN mailer file `pin_mailer`, where the daemon reads the transport
/// PIN from.
pub fn personalize_sim(
    sim_dir: &Path,
    reader: usize,
    plan: &Plan,
    pin_mailer: &Path,
) -> CardSecrets {
    let mut card = IdCard::new(issuance::readers::open_sim(sim_dir, reader).unwrap());
    let outcome = personalize(&mut card, plan, &PersoKeys::test(), &mut NoHooks).unwrap();
    let secrets = outcome.secrets.clone().unwrap();
    PinMailer::open(pin_mailer)
        .unwrap()
        .append(&plan.tracking_code, &outcome.serial_hex(), &secrets)
        .unwrap();
    secrets
}
