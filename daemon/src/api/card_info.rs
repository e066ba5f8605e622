//! `card.info`: what card is in a reader.
//!
//! Request: `{"jsonrpc":"2.0","id":1,"method":"card.info","params":{"reader":"sim:0"}}`
//! Reply: `{"reader":"sim:0","atr":"3B..","serial":"4944..","life_cycle":"Personalization",
//! "life_cycle_byte":"03","files":[{"fid":"011E","size":64}]}`
//!
//! Plain reads only (no authentication); the reader is held for the duration.

use serde::Deserialize;

use super::{ApiError, Call, Reply};
use crate::service::Service;

/// Parameters of `card.info`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The reader, as `readers.list` names it.
    reader: String,
}

/// Reads the card's ATR, serial, life-cycle state and file list.
pub fn call(svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    let info = svc.readers.with_card(&p.reader, |card| Ok(card.info()?))?;
    Ok(Reply::json(crate::cli::card::to_json(&p.reader, &info)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::ErrorCode;
    use crate::service::ServiceConfig;
    use serde_json::json;

    #[test]
    fn reads_a_simulated_card_and_names_bad_params() {
        let dir = tempfile::tempdir().unwrap();
        let svc =
            Service::open(ServiceConfig::new(dir.path().into(), vec!["sim:0".into()])).unwrap();
        let r = call(&svc, Call::json(json!({"reader": "sim:0"})))
            .unwrap()
            .result;
        assert_eq!(r["reader"], "sim:0");
        assert_eq!(r["serial"].as_str().unwrap().len(), 16);
        let missing = call(&svc, Call::json(json!({}))).unwrap_err();
        assert_eq!(missing.code, ErrorCode::InvalidParams);
        assert!(missing.message.contains("reader"), "{}", missing.message);
        let wrong = call(&svc, Call::json(json!({"reader": 5}))).unwrap_err();
        assert_eq!(wrong.code, ErrorCode::InvalidParams);
        let unknown = call(&svc, Call::json(json!({"reader": "sim:7"}))).unwrap_err();
        assert_eq!(unknown.code, ErrorCode::ReaderNotFound);
    }
}
