//! The request layer: a ZeroMQ message body (JSON frame, then binary frames) parsed as the
//! server does (`idcardd::server::protocol::parse`), then `idcardd::api::dispatch` on a
//! `Service` over simulated readers in a temporary state directory. Never panic (issue 18).
//!
//! Input: the JSON frame, then binary frames, separated by the byte sequence `\0\xff\0` (at
//! most `MAX_BINARY_FRAMES` of them, as the server allows).
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use idcardd::api::{dispatch, dispatch_without_blocking, Immediate};
use idcardd::server::protocol::{parse, Incoming, MAX_BINARY_FRAMES};
use idcardd::service::{Service, ServiceConfig};
use libfuzzer_sys::fuzz_target;

const SEPARATOR: &[u8] = b"\0\xff\0";

fn service() -> &'static Service {
    static SERVICE: OnceLock<(tempfile::TempDir, Service)> = OnceLock::new();
    &SERVICE
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let config = ServiceConfig::new(
                dir.path().join("state"),
                vec!["sim:0".into(), "sim:1".into()],
            );
            let svc = Service::open(config).expect("service");
            (dir, svc)
        })
        .1
}

fn frames(data: &[u8]) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        out.push(Bytes::copy_from_slice(&rest[..at]));
        rest = &rest[at + SEPARATOR.len()..];
    }
    out.push(Bytes::copy_from_slice(rest));
    out.truncate(1 + MAX_BINARY_FRAMES);
    out
}

fuzz_target!(|data: &[u8]| {
    let svc = service();
    if let Incoming::Request { method, call, .. } = parse(frames(data)) {
        let result = match dispatch_without_blocking(svc, &method, call) {
            Immediate::Answered(r) => r,
            Immediate::NeedsWorker(call) => dispatch(svc, &method, call),
        };
        if let Err(e) = result {
            // Whatever the client sent, an error stays small.
            assert!(e.to_json().to_string().len() < 64 * 1024, "{}", e.message);
        }
    }
});
