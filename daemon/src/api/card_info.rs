//! `card.info`: what card is in a reader.
//!
//! Request: `{"jsonrpc":"2.0","id":1,"method":"card.info","params":{"reader":"sim:0"}}`
//! Reply: `{"reader":"sim:0","atr":"3B..","serial":"4944..","life_cycle":"Personalization",
//! "life_cycle_byte":"03","files":[{"fid":"011E","size":64}]}`
//!
//! Plain reads only (no authentication); the reader is held for the duration.

use apdu::card::CardInfo;
use serde::Deserialize;

use super::{ApiError, Call, Immediate, Reply};
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
    super::configured_reader(svc, &p.reader)?;
    let info = svc.readers.with_card(&p.reader, |card| Ok(card.info()?))?;
    Ok(Reply::json(to_json(&p.reader, &info)))
}

/// The same answer without blocking, when it can be given so: bad params, or a simulated card
/// kept in memory and free (see [`issuance::reader_pool::ReaderPool::try_with_kept_card`]). The call
/// comes back when it needs a worker thread (a PC/SC reader, a busy reader, a card to load).
pub fn call_without_blocking(svc: &Service, call: Call) -> Immediate {
    let p: Params = match call.params() {
        Ok(p) => p,
        Err(e) => return Immediate::Answered(Err(e)),
    };
    if let Err(e) = super::configured_reader(svc, &p.reader) {
        return Immediate::Answered(Err(e));
    }
    match svc
        .readers
        .try_with_kept_card(&p.reader, |card| Ok(card.info()?))
    {
        Some(info) => Immediate::Answered(
            info.map(|info| Reply::json(to_json(&p.reader, &info)))
                .map_err(ApiError::from),
        ),
        None => Immediate::NeedsWorker(call),
    }
}

/// Card info as JSON: the reply of `card.info`, also what `idcardd card info --json` prints.
pub fn to_json(reader: &str, info: &CardInfo) -> serde_json::Value {
    serde_json::json!({
        "reader": reader,
        "atr": hex::encode_upper(&info.atr),
        "serial": hex::encode_upper(info.serial),
        "life_cycle": format!("{:?}", info.life_cycle),
        "life_cycle_byte": format!("{:02X}", u8::from(info.life_cycle)),
        "files": info.files.iter().map(|(fid, size)| serde_json::json!({
            "fid": format!("{fid:04X}"),
            "size": size,
        })).collect::<Vec<_>>(),
    })
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
        let svc = Service::open(
            ServiceConfig::new(dir.path().into(), vec!["sim:0".into()])
                .with_keys(test_support::hsm::shared_config()),
        )
        .unwrap();
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
