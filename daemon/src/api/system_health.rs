//! `system.health`: is the daemon working, what is it doing, what is set up.
//!
//! Request: `{"jsonrpc":"2.0","id":1,"method":"system.health"}`
//! Reply: `{"status":"ok","uptime_s":12.5,"in_flight":1,"readers":[{"name":"sim:0","busy":false}],
//! "journal":{"present":true,"backend":"sqlite","location":"sqlite:/var/lib/idcardd/journal.sqlite",
//! "station_id":"line1-st2","reachable":true},"pki":{"configured":true,"present":true},"trust":{"configured":1,"present":1},
//! "keys":{"token":"idcardd","status":"ok","problems":[]}}`; `status` is `degraded` while the
//! key store is `unavailable` (the token does not answer) or in `error` (a key missing or
//! breaking the policy), each problem named in `keys.problems`, and while the journal's
//! database is not `reachable` (a line's PostgreSQL server away: the station takes no work).
//!
//! Cheap by design (no card I/O), so a kiosk or a monitor can poll it.

use std::sync::atomic::Ordering;
use std::time::Instant;

use serde::Serialize;

use super::{ApiError, Call, Reply};
use crate::service::Service;

/// The reply, serialized straight from these fields (no intermediate JSON tree).
#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    uptime_s: f64,
    in_flight: usize,
    readers: Vec<ReaderState<'a>>,
    journal: JournalHealth,
    pki: Configured,
    trust: TrustFiles,
    keys: crate::service::KeysHealth,
}

#[derive(Serialize)]
struct ReaderState<'a> {
    busy: bool,
    name: &'a str,
}

/// The journal: where it is, this station's identity, and whether its database answered the
/// last lease renewal (a line's PostgreSQL server that went away: `reachable` false, status
/// `degraded`, the station takes no work until it is back).
#[derive(Serialize)]
struct JournalHealth {
    present: bool,
    backend: &'static str,
    location: String,
    station_id: String,
    reachable: bool,
}

#[derive(Serialize)]
struct Configured {
    configured: bool,
    present: bool,
}

#[derive(Serialize)]
struct TrustFiles {
    configured: usize,
    present: usize,
}

/// Answers status, uptime, requests in progress, readers with their busy flag, and whether
/// the journal and the signing PKI are there (looked at most once per [`crate::service::SETUP_CHECK_TTL`]).
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let _: serde::de::IgnoredAny = call.params()?;
    let names = svc.readers.names();
    let now = Instant::now();
    let setup = svc.stats.setup.get(&svc.config, now);
    let keys = svc.stats.keys.get(&svc.keys, now);
    let journal = svc.batches.journal();
    let reachable = svc.stats.journal_up.load(Ordering::Relaxed);
    let backend = journal.db().backend();
    Reply::of(&Health {
        // Without its keys or its journal the daemon can neither personalize nor deliver.
        status: if keys.status == "ok" && reachable {
            "ok"
        } else {
            "degraded"
        },
        uptime_s: (svc.stats.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        in_flight: svc.stats.in_flight.load(Ordering::Relaxed),
        readers: names
            .iter()
            .map(|name| ReaderState {
                busy: svc.readers.is_busy(name),
                name,
            })
            .collect(),
        journal: JournalHealth {
            present: setup.journal || backend == issuance::db::Backend::Postgres,
            backend: backend.as_str(),
            location: journal.db().describe(),
            station_id: journal.station_id().to_string(),
            reachable,
        },
        pki: Configured {
            configured: svc.config.pki_dir.is_some(),
            present: setup.pki,
        },
        trust: TrustFiles {
            configured: svc.config.trust.len(),
            present: setup.trust,
        },
        keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::{ServiceConfig, SetupCache, SETUP_CHECK_TTL};
    use serde_json::json;

    #[test]
    fn reports_readers_and_missing_setup() {
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            ServiceConfig::new(dir.path().into(), vec!["sim:0".into(), "sim:1".into()])
                .with_keys(test_support::hsm::shared_config());
        config.pki_dir = Some(dir.path().join("nope"));
        let svc = Service::open(config).unwrap();
        let r = call(&svc, Call::default()).unwrap().result;
        assert_eq!(r["status"], "ok");
        assert_eq!(r["readers"][1], json!({"name": "sim:1", "busy": false}));
        // Opening the service creates the journal.
        assert_eq!(r["journal"]["present"], true);
        assert_eq!(r["journal"]["backend"], "sqlite");
        assert_eq!(r["journal"]["reachable"], true);
        assert!(r["journal"]["station_id"]
            .as_str()
            .is_some_and(|s| !s.is_empty()));
        assert_eq!(r["pki"], json!({"configured": true, "present": false}));
        assert_eq!(r["in_flight"], 0);
        assert_eq!(r["keys"]["status"], "ok", "{r}");
        assert_eq!(r["keys"]["token"], test_support::hsm::SHARED);
        let bad = call(&svc, Call::json(json!([1, 2])));
        assert!(
            bad.is_ok(),
            "positional params are ignored like an empty object"
        );
    }

    #[test]
    fn setup_files_are_looked_at_again_after_the_ttl() {
        let dir = tempfile::tempdir().unwrap();
        let svc = Service::open(
            ServiceConfig::new(dir.path().into(), vec![])
                .with_keys(test_support::hsm::shared_config()),
        )
        .unwrap();
        let journal = svc.config.state_dir.join(issuance::journal::FILE_NAME);
        let _ = std::fs::remove_file(&journal);
        let t0 = Instant::now();
        let cache = SetupCache::default();
        assert!(!cache.get(&svc.config, t0).journal);
        std::fs::write(&journal, b"").unwrap();
        assert!(
            !cache.get(&svc.config, t0 + SETUP_CHECK_TTL / 2).journal,
            "reused within the TTL"
        );
        assert!(cache.get(&svc.config, t0 + SETUP_CHECK_TTL).journal);
        std::fs::remove_file(&journal).unwrap();
        assert!(!cache.get(&svc.config, t0 + SETUP_CHECK_TTL * 2).journal);
    }
}
