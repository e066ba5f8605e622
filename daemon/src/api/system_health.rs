//! `system.health`: is the daemon working, what is it doing, what is set up.
//!
//! Request: `{"jsonrpc":"2.0","id":1,"method":"system.health"}`
//! Reply: `{"status":"ok","uptime_s":12.5,"in_flight":1,"readers":[{"name":"sim:0","busy":false}],
//! "journal":{"present":true},"pki":{"configured":true,"present":true},"trust":{"configured":1,"present":1}}`
//!
//! Cheap by design (no card I/O), so a kiosk or a monitor can poll it.

use serde_json::json;

use super::{ApiError, Call, Reply};
use crate::service::Service;

/// The journal's file name in the state directory.
pub const JOURNAL_FILE: &str = "journal.db";

/// Answers status, uptime, requests in progress, readers with their busy flag, and whether
/// the journal and the signing PKI are there.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let _: serde::de::IgnoredAny = call.params()?;
    let readers: Vec<_> = svc
        .readers
        .names()
        .into_iter()
        .map(|name| json!({"busy": svc.readers.is_busy(&name), "name": name}))
        .collect();
    let pki = svc.config.pki_dir.as_ref();
    let pki_present = pki.is_some_and(|dir| {
        // The Document Signer's key and certificate, as `idcardd pki init` names them.
        dir.join("ds.key").is_file() && dir.join("ds.pem").is_file()
    });
    let trust_present = svc.config.trust.iter().filter(|t| t.is_file()).count();
    Ok(Reply::json(json!({
        "status": "ok",
        "uptime_s": (svc.stats.started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0,
        "in_flight": svc.stats.in_flight.load(std::sync::atomic::Ordering::Relaxed),
        "readers": readers,
        "journal": {"present": svc.config.state_dir.join(JOURNAL_FILE).is_file()},
        "pki": {"configured": pki.is_some(), "present": pki_present},
        "trust": {"configured": svc.config.trust.len(), "present": trust_present},
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ServiceConfig;

    #[test]
    fn reports_readers_and_missing_setup() {
        let dir = tempfile::tempdir().unwrap();
        let mut config =
            ServiceConfig::new(dir.path().into(), vec!["sim:0".into(), "sim:1".into()]);
        config.pki_dir = Some(dir.path().join("nope"));
        let svc = Service::open(config).unwrap();
        let r = call(&svc, Call::default()).unwrap().result;
        assert_eq!(r["status"], "ok");
        assert_eq!(r["readers"][1], json!({"name": "sim:1", "busy": false}));
        assert_eq!(r["journal"]["present"], false);
        assert_eq!(r["pki"], json!({"configured": true, "present": false}));
        assert_eq!(r["in_flight"], 0);
        let bad = call(&svc, Call::json(json!([1, 2])));
        assert!(
            bad.is_ok(),
            "positional params are ignored like an empty object"
        );
    }
}
