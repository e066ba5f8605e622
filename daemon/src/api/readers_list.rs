//! `readers.list`: the configured readers and what is in them.
//!
//! Request: `{"jsonrpc":"2.0","id":1,"method":"readers.list"}`
//! Reply: `{"readers":[{"name":"sim:0","kind":"sim","busy":false,"card_present":true,
//! "atr":"3B..","serial":"4944.."}]}`
//!
//! PC/SC readers report presence and ATR from pcscd's reader state (no card connection, so
//! no serial); simulated readers are opened in process, which is cheap, so they also give the
//! serial. A reader busy with another operation is not touched: only `busy: true` is reported.

use apdu::transport::pcsc::{Pcsc, ReaderInfo};
use serde_json::{json, Value};

use super::{ApiError, Call, Reply};
use crate::service::Service;
use issuance::readers::SIM_PREFIX;

/// Lists every configured reader with its busy flag, card presence and, when cheap, ATR and
/// serial.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let _: serde::de::IgnoredAny = call.params()?;
    let names = svc.readers.names();
    let pcsc: Option<Result<Vec<ReaderInfo>, String>> =
        names.iter().any(|n| !n.starts_with(SIM_PREFIX)).then(|| {
            Pcsc::establish()
                .and_then(|p| p.list_readers())
                .map_err(|e| e.to_string())
        });
    let readers: Vec<Value> = names
        .iter()
        .map(|name| {
            let busy = svc.readers.is_busy(name);
            if name.starts_with(SIM_PREFIX) {
                sim_reader(svc, name, busy)
            } else {
                pcsc_reader(name, busy, pcsc.as_ref())
            }
        })
        .collect();
    Ok(Reply::json(json!({ "readers": readers })))
}

/// A simulated reader: its card is always present; ATR and serial when the reader is free.
fn sim_reader(svc: &Service, name: &str, busy: bool) -> Value {
    let mut entry = json!({"name": name, "kind": "sim", "busy": busy, "card_present": true});
    if !busy {
        let read = svc.readers.with_card(name, |card| {
            let serial = card.serial()?;
            Ok((card.channel().transport().atr(), serial))
        });
        match read {
            Ok((atr, serial)) => {
                entry["atr"] = Value::String(hex::encode_upper(atr));
                entry["serial"] = Value::String(hex::encode_upper(serial));
            }
            Err(e) => entry["error"] = ApiError::from(e).to_json(),
        }
    }
    entry
}

/// A PC/SC reader as pcscd reports it.
fn pcsc_reader(name: &str, busy: bool, pcsc: Option<&Result<Vec<ReaderInfo>, String>>) -> Value {
    let mut entry = json!({"name": name, "kind": "pcsc", "busy": busy});
    match pcsc {
        Some(Ok(list)) => match list.iter().find(|r| r.name == name) {
            Some(r) => {
                entry["attached"] = Value::Bool(true);
                entry["card_present"] = Value::Bool(r.card_present);
                if let Some(atr) = &r.atr {
                    entry["atr"] = Value::String(hex::encode_upper(atr));
                }
            }
            None => {
                entry["attached"] = Value::Bool(false);
                entry["card_present"] = Value::Bool(false);
            }
        },
        Some(Err(e)) => entry["error"] = Value::String(e.clone()),
        None => {}
    }
    entry
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::ServiceConfig;

    #[test]
    fn simulated_readers_show_serials() {
        let dir = tempfile::tempdir().unwrap();
        let svc = Service::open(
            ServiceConfig::new(dir.path().into(), vec!["sim:0".into(), "sim:1".into()])
                .with_keys(test_support::hsm::shared_config()),
        )
        .unwrap();
        let r = call(&svc, Call::default()).unwrap().result;
        let list = r["readers"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["name"], "sim:0");
        assert_eq!(list[0]["card_present"], true);
        assert_ne!(list[0]["serial"], list[1]["serial"]);
        assert!(list[0]["atr"].as_str().unwrap().starts_with("3B"));
    }
}
