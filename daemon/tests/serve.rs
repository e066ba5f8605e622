//! `idcardd serve` end to end: the real binary on real ZeroMQ sockets, driven from Rust (the
//! zeromq crate, DEALER and REQ) and from Python (pyzmq, through examples/idcardd_client.py).
//!
//! Every daemon uses simulated readers in a temporary state directory, so no pcscd is needed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{refused_start, Daemon};
use serde_json::{json, Value};
use test_support::python::python_with_zmq;
use test_support::{fixtures, paths};
use zeromq::{DealerSocket, ReqSocket, Socket, SocketRecv, SocketSend, ZmqMessage};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A DEALER client speaking raw frames.
struct Client {
    socket: DealerSocket,
}

impl Client {
    async fn connect(endpoint: &str) -> Client {
        let mut socket = DealerSocket::new();
        socket.connect(endpoint).await.unwrap();
        Client { socket }
    }

    async fn send_frames(&mut self, frames: Vec<Vec<u8>>) {
        let frames: Vec<Bytes> = frames.into_iter().map(Bytes::from).collect();
        self.socket
            .send(ZmqMessage::try_from(frames).unwrap())
            .await
            .unwrap();
    }

    /// The next reply: its JSON and its binary frames.
    async fn recv(&mut self) -> (Value, Vec<Bytes>) {
        let reply = tokio::time::timeout(Duration::from_secs(60), self.socket.recv())
            .await
            .expect("no reply within 60 s")
            .unwrap();
        let mut frames = reply.into_vec();
        // A request that began with an empty frame gets it back as a REQ delimiter.
        if frames.len() > 1 && frames[0].is_empty() {
            frames.remove(0);
        }
        let json = frames.remove(0);
        (serde_json::from_slice(&json).unwrap(), frames)
    }

    async fn request(&mut self, request: Value, frames: Vec<Vec<u8>>) -> (Value, Vec<Bytes>) {
        let mut all = vec![request.to_string().into_bytes()];
        all.extend(frames);
        self.send_frames(all).await;
        self.recv().await
    }

    /// Calls a method; the whole response.
    async fn call(
        &mut self,
        method: &str,
        params: Value,
        frames: Vec<Vec<u8>>,
    ) -> (Value, Vec<Bytes>) {
        let mut request = json!({"jsonrpc": "2.0", "id": method, "method": method});
        if !params.is_null() {
            request["params"] = params;
        }
        let (response, frames) = self.request(request, frames).await;
        assert_eq!(response["id"], method, "{response}");
        (response, frames)
    }

    /// Calls a method that must succeed; its result.
    async fn ok(&mut self, method: &str, params: Value) -> Value {
        let (response, _) = self.call(method, params, vec![]).await;
        assert!(response.get("error").is_none(), "{method}: {response}");
        response["result"].clone()
    }
}

/// The error name of a response (panics on success).
fn error_name(response: &Value) -> String {
    response["error"]["data"]["name"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error: {response}"))
        .to_string()
}

/// A white 24-bit BMP: a valid image with no fingerprint in it.
fn blank_bmp(width: u32, height: u32) -> Vec<u8> {
    let row = (width * 3).div_ceil(4) * 4;
    let size = 54 + row * height;
    let mut b = Vec::with_capacity(size as usize);
    b.extend_from_slice(b"BM");
    b.extend_from_slice(&size.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&54u32.to_le_bytes());
    b.extend_from_slice(&40u32.to_le_bytes());
    b.extend_from_slice(&width.to_le_bytes());
    b.extend_from_slice(&height.to_le_bytes());
    b.extend_from_slice(&1u16.to_le_bytes());
    b.extend_from_slice(&24u16.to_le_bytes());
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&(row * height).to_le_bytes());
    b.extend_from_slice(&[0; 16]);
    b.resize(size as usize, 0xFF);
    b
}

#[test]
fn health_version_readers_and_card_info_over_dealer_and_req() {
    let daemon = Daemon::start("");
    runtime().block_on(async {
        let mut c = Client::connect(&daemon.endpoint()).await;
        let health = c.ok("system.health", json!({})).await;
        assert_eq!(health["status"], "ok");
        assert_eq!(health["readers"].as_array().unwrap().len(), 2);
        assert_eq!(
            health["in_flight"], 1,
            "the health request itself: {health}"
        );
        let version = c.ok("system.version", Value::Null).await;
        assert_eq!(version["name"], "idcardd");
        assert!(version["methods"]
            .as_array()
            .unwrap()
            .contains(&json!("card.info")));
        let readers = c.ok("readers.list", json!({})).await;
        let list = readers["readers"].as_array().unwrap();
        assert_eq!(list[0]["name"], "sim:0");
        assert_eq!(list[1]["name"], "sim:1");
        let info = c.ok("card.info", json!({"reader": "sim:1"})).await;
        assert_eq!(info["serial"], list[1]["serial"]);
        assert!(info["files"].is_array());

        // A REQ client puts an empty delimiter before the JSON frame and needs it back.
        let mut req = ReqSocket::new();
        req.connect(&daemon.endpoint()).await.unwrap();
        req.send(ZmqMessage::from(
            json!({"jsonrpc": "2.0", "id": 9, "method": "card.info", "params": {"reader": "sim:0"}})
                .to_string(),
        ))
        .await
        .unwrap();
        let reply = tokio::time::timeout(Duration::from_secs(60), req.recv())
            .await
            .unwrap()
            .unwrap();
        let reply: Value = serde_json::from_slice(&reply.into_vec()[0]).unwrap();
        assert_eq!(reply["id"], 9);
        assert_eq!(reply["result"]["serial"], list[0]["serial"]);
    });
}

#[test]
fn extract_and_compare_fixture_scans() {
    let daemon = Daemon::start("");
    runtime().block_on(async {
        let mut c = Client::connect(&daemon.endpoint()).await;
        let mut templates = Vec::new();
        for name in ["1_1.png", "1_2.png", "2_1.png"] {
            let (response, frames) = c
                .call(
                    "matcher.extract",
                    json!({"dpi": 500, "binary": true}),
                    vec![fixtures::scan(name)],
                )
                .await;
            let result = &response["result"];
            assert!(
                result["minutiae"].as_u64().unwrap() >= 10,
                "{name}: {response}"
            );
            assert_eq!(frames.len(), 1, "{name}: the template frame");
            assert_eq!(result["template_bytes"], frames[0].len());
            assert_eq!(&frames[0][..4], b"FMR\0", "an ISO/IEC 19794-2 record");
            templates.push(frames[0].to_vec());
        }
        // The same scan as base64 gives the same template.
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let (response, frames) = c
            .call(
                "matcher.extract",
                json!({"scan_b64": b64.encode(fixtures::scan("1_1.png"))}),
                vec![],
            )
            .await;
        assert!(frames.is_empty());
        let again = b64
            .decode(response["result"]["template_b64"].as_str().unwrap())
            .unwrap();
        assert_eq!(again, templates[0]);

        // Probe 1_1 against the same finger (1_2) and another finger (2_1).
        let (response, _) = c
            .call(
                "matcher.compare",
                json!({"format": "record", "fmr": 0.001}),
                templates.clone(),
            )
            .await;
        let r = &response["result"];
        let scores: Vec<f64> = r["scores"]
            .as_array()
            .unwrap_or_else(|| panic!("{response}"))
            .iter()
            .map(|s| s.as_f64().unwrap())
            .collect();
        assert!(scores[0] > scores[1], "genuine above impostor: {r}");
        assert_eq!(r["matches"][1], false, "{r}");
        assert_eq!(
            r["matches"][0],
            scores[0] >= r["threshold"].as_f64().unwrap(),
            "{r}"
        );
        assert_eq!(r["best"], 0);
        // Records carry minutia quality: the classical scale's threshold.
        use matcher::compare::{ScoreScale, Threshold};
        assert_eq!(r["scale"], "classical", "{r}");
        let classical = Threshold::calibrated_on(ScoreScale::Classical, 0.001).unwrap();
        assert_eq!(
            r["threshold"].as_f64().unwrap(),
            classical.score.to_string().parse::<f64>().unwrap()
        );
        // The same scans in the compact card format (no quality, 0.1 mm): the card-format
        // scale's own, higher threshold.
        let mut compact = Vec::new();
        for name in ["1_1.png", "1_2.png", "2_1.png"] {
            let (response, frames) = c
                .call(
                    "matcher.extract",
                    json!({"dpi": 500, "binary": true, "format": "compact"}),
                    vec![fixtures::scan(name)],
                )
                .await;
            assert_eq!(frames.len(), 1, "{name}: {response}");
            compact.push(frames[0].to_vec());
        }
        let (response, _) = c
            .call(
                "matcher.compare",
                json!({"format": "compact", "fmr": 0.001}),
                compact,
            )
            .await;
        let rc = &response["result"];
        assert_eq!(rc["scale"], "card_format", "{response}");
        let card = Threshold::calibrated_on(ScoreScale::CardFormat, 0.001).unwrap();
        assert_eq!(
            rc["threshold"].as_f64().unwrap(),
            card.score.to_string().parse::<f64>().unwrap()
        );
        assert!(card.score > classical.score);
        assert!(
            rc["scores"][0].as_f64().unwrap() > rc["scores"][1].as_f64().unwrap(),
            "{rc}"
        );
        // The same comparison in base64.
        let (response, _) = c
            .call(
                "matcher.compare",
                json!({"probe_b64": b64.encode(&templates[0]),
                       "candidates_b64": [b64.encode(&templates[1]), b64.encode(&templates[2])]}),
                vec![],
            )
            .await;
        assert_eq!(response["result"]["scores"], r["scores"]);
        // An uncalibrated rate is refused.
        let (response, _) = c
            .call("matcher.compare", json!({"fmr": 0.5}), templates.clone())
            .await;
        assert_eq!(error_name(&response), "invalid_params");
    });
}

#[test]
fn malformed_request_catalogue() {
    let daemon = Daemon::start("[server]\nmax_message_bytes = 1048576\n");
    runtime().block_on(async {
        let mut c = Client::connect(&daemon.endpoint()).await;
        let request = |method: &str, params: Value| {
            json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
                .to_string()
                .into_bytes()
        };
        let cases: Vec<(&str, Vec<Vec<u8>>, &str)> = vec![
            (
                "bad JSON",
                vec![b"{\"jsonrpc\": \"2.0\", ".to_vec()],
                "parse_error",
            ),
            ("not UTF-8", vec![vec![0xFF, 0xFE, 0x00]], "parse_error"),
            (
                "not an object",
                vec![b"\"system.health\"".to_vec()],
                "invalid_request",
            ),
            (
                "batch",
                vec![b"[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"system.health\"}]".to_vec()],
                "invalid_request",
            ),
            (
                "wrong version",
                vec![br#"{"jsonrpc":"1.0","id":1,"method":"system.health"}"#.to_vec()],
                "invalid_request",
            ),
            (
                "no version",
                vec![br#"{"id":1,"method":"system.health"}"#.to_vec()],
                "invalid_request",
            ),
            (
                "missing method",
                vec![br#"{"jsonrpc":"2.0","id":1}"#.to_vec()],
                "invalid_request",
            ),
            (
                "method not a string",
                vec![br#"{"jsonrpc":"2.0","id":1,"method":["system.health"]}"#.to_vec()],
                "invalid_request",
            ),
            (
                "id an object",
                vec![br#"{"jsonrpc":"2.0","id":{"a":1},"method":"system.health"}"#.to_vec()],
                "invalid_request",
            ),
            (
                "params a string",
                vec![br#"{"jsonrpc":"2.0","id":1,"method":"card.info","params":"sim:0"}"#.to_vec()],
                "invalid_request",
            ),
            (
                "unknown method",
                vec![request("card.explode", json!({}))],
                "method_not_found",
            ),
            (
                "params of the wrong type",
                vec![request("card.info", json!({"reader": 0}))],
                "invalid_params",
            ),
            (
                "missing required field",
                vec![request("card.info", json!({}))],
                "invalid_params",
            ),
            (
                "unknown field",
                vec![request(
                    "card.info",
                    json!({"reader": "sim:0", "pin": "1234"}),
                )],
                "invalid_params",
            ),
            (
                "unknown reader",
                vec![request("card.info", json!({"reader": "sim:7"}))],
                "reader_not_found",
            ),
            (
                "garbage image",
                vec![
                    request("matcher.extract", json!({})),
                    b"not an image at all".to_vec(),
                ],
                "invalid_params",
            ),
            (
                "truncated PNG",
                vec![
                    request("matcher.extract", json!({})),
                    fixtures::scan("1_1.png")[..200].to_vec(),
                ],
                "invalid_params",
            ),
            (
                "no fingerprint",
                vec![request("matcher.extract", json!({})), blank_bmp(300, 400)],
                "no_fingerprint",
            ),
            (
                "bad dpi",
                vec![
                    request("matcher.extract", json!({"dpi": 5})),
                    fixtures::scan("1_1.png"),
                ],
                "invalid_params",
            ),
            (
                "scan missing",
                vec![request("matcher.extract", json!({}))],
                "invalid_params",
            ),
            (
                "empty scan frame",
                vec![request("matcher.extract", json!({})), vec![]],
                "invalid_params",
            ),
            (
                "bad base64",
                vec![request("matcher.extract", json!({"scan_b64": "***"}))],
                "invalid_params",
            ),
            (
                "garbage template",
                vec![
                    request("matcher.compare", json!({})),
                    b"FMR\0junk".to_vec(),
                    b"x".to_vec(),
                ],
                "invalid_params",
            ),
            (
                "no candidate",
                vec![request("matcher.compare", json!({})), b"FMR\0".to_vec()],
                "invalid_params",
            ),
            (
                "too many frames",
                std::iter::once(request("system.health", json!({})))
                    .chain(std::iter::repeat_n(b"x".to_vec(), 17))
                    .collect(),
                "invalid_request",
            ),
            // Frames each under the limit, together over it. (One frame over the limit is not
            // buffered at all: libzmq drops the connection, see the test below.)
            (
                "oversized",
                vec![
                    request("matcher.extract", json!({})),
                    vec![0x55; 600_000],
                    vec![0x55; 600_000],
                ],
                "too_large",
            ),
            // A DEALER's leading empty frame is read as a REQ delimiter: then no JSON frame.
            ("only an empty frame", vec![vec![]], "invalid_request"),
            ("empty JSON frame", vec![vec![], vec![]], "parse_error"),
        ];
        for (what, frames, expected) in cases {
            c.send_frames(frames).await;
            let (response, _) = c.recv().await;
            assert_eq!(error_name(&response), expected, "{what}: {response}");
            assert!(response["error"]["code"].is_i64(), "{what}: {response}");
            assert!(!response["error"]["message"].as_str().unwrap().is_empty());
            let health = c.ok("system.health", json!({})).await;
            assert_eq!(health["status"], "ok", "still serving after {what}");
        }
        // A notification (no id) gets no reply: the next reply is the health call's.
        c.send_frames(vec![
            br#"{"jsonrpc":"2.0","method":"system.health"}"#.to_vec()
        ])
        .await;
        let health = c.ok("system.health", json!({})).await;
        assert_eq!(health["status"], "ok");
    });
}

#[test]
fn applicant_records_with_a_bad_national_code_or_date_are_refused() {
    // card.personalize needs a Document Signer; QC refuses the record before any card write.
    let pki = tempfile::tempdir().unwrap();
    let init = Command::new(env!("CARGO_BIN_EXE_idcardd"))
        .args(["pki", "init"])
        .arg(pki.path().join("ds"))
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    // `pki init` made its keys in the embedded token of the folder above DIR.
    let daemon = Daemon::start(&format!(
        "[pki]\ndir = \"{}\"\n{}",
        pki.path().join("ds").display(),
        test_support::hsm::embedded_toml(pki.path())
    ));
    runtime().block_on(async {
        let mut c = Client::connect(&daemon.endpoint()).await;
        let cases = [
            (
                "national-bad-check-digit.json",
                "invalid_national_code",
                "national_code",
            ),
            ("national-day-32.json", "invalid_date", "birth_date"),
            ("national-month-13.json", "invalid_date", "birth_date"),
        ];
        for (file, code, path) in cases {
            let record = fixtures::applicant(file);
            let (response, _) = c
                .call(
                    "card.personalize",
                    json!({"reader": "sim:0", "record": record}),
                    vec![],
                )
                .await;
            assert_eq!(error_name(&response), "qc_failed", "{file}: {response}");
            let problems = response["error"]["data"]["problems"].as_array().unwrap();
            assert!(
                problems
                    .iter()
                    .any(|p| p["code"] == code && p["path"] == path),
                "{file}: {response}"
            );
            let info = c.ok("card.info", json!({"reader": "sim:0"})).await;
            assert_eq!(
                info["files"],
                json!([]),
                "{file}: nothing written to the card"
            );
            assert_eq!(c.ok("system.health", json!({})).await["status"], "ok");
        }
    });
}

#[test]
fn busy_when_max_in_flight_is_full_and_timeout_when_slow() {
    // One request at a time; a scan declared at 300 dpi is upscaled 1.67x before extraction, which
    // keeps the only slot taken for a while even on a fast machine.
    let daemon = Daemon::start("[server]\nmax_in_flight = 1\n");
    runtime().block_on(async {
        let mut c = Client::connect(&daemon.endpoint()).await;
        let slow = json!({"jsonrpc": "2.0", "id": "slow", "method": "matcher.extract", "params": {"dpi": 300}});
        c.send_frames(vec![slow.to_string().into_bytes(), fixtures::scan("1_1.png")]).await;
        // system.health takes no slot (it always answers, see tests/hostile.rs): readers.list
        // runs on a worker and does.
        let (busy, _) = c.request(json!({"jsonrpc": "2.0", "id": "h", "method": "readers.list"}), vec![]).await;
        assert_eq!(busy["id"], "h");
        assert_eq!(error_name(&busy), "busy", "{busy}");
        assert_eq!(busy["error"]["data"]["limit"], 1);
        let (slow_reply, _) = c.recv().await;
        assert_eq!(slow_reply["id"], "slow");
        assert!(slow_reply["result"]["minutiae"].is_u64(), "{slow_reply}");
        assert_eq!(c.ok("system.health", json!({})).await["status"], "ok");
    });
    drop(daemon);

    // 2 ms: far below what extracting an upscaled scan takes on any machine (20 ms was not,
    // on an idle one).
    let daemon = Daemon::start("[server]\nrequest_timeout_ms = 2\n");
    runtime().block_on(async {
        let mut c = Client::connect(&daemon.endpoint()).await;
        let (response, _) = c
            .call(
                "matcher.extract",
                json!({"dpi": 300}),
                vec![fixtures::scan("1_1.png")],
            )
            .await;
        assert_eq!(error_name(&response), "timeout", "{response}");
        assert_eq!(response["error"]["data"]["limit_ms"], 2);
        // The daemon keeps answering while the timed-out work finishes.
        let health = c.ok("system.health", json!({})).await;
        assert_eq!(health["status"], "ok");
    });
}

#[test]
fn sockets_are_0660_and_removed_after_sigterm() {
    let mut daemon = Daemon::start("");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&daemon.socket()), 0o660);
    assert_eq!(mode(&daemon.events_socket()), 0o660);
    assert_eq!(
        mode(daemon.socket().parent().unwrap()),
        0o750,
        "the runtime dir it created"
    );
    runtime().block_on(async {
        let mut c = Client::connect(&daemon.endpoint()).await;
        assert_eq!(c.ok("system.health", json!({})).await["status"], "ok");
    });
    let (_, status) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(!daemon.socket().exists(), "request socket removed");
    assert!(!daemon.events_socket().exists(), "events socket removed");
}

#[test]
fn subscribers_hear_server_stopping_on_sigterm() {
    let mut daemon = Daemon::start("");
    let rt = runtime();
    let mut sub = rt.block_on(async {
        let mut sub = zeromq::SubSocket::new();
        sub.connect(&daemon.events_endpoint()).await.unwrap();
        sub.subscribe("server.").await.unwrap();
        // Let the subscription reach the publisher (ZeroMQ's slow joiner).
        tokio::time::sleep(Duration::from_millis(300)).await;
        sub
    });
    let pid = nix::unistd::Pid::from_raw(daemon.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let event = rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(30), sub.recv())
            .await
            .expect("no event within 30 s")
            .unwrap()
            .into_vec()
    });
    assert_eq!(&event[0][..], b"server.stopping");
    let body: Value = serde_json::from_slice(&event[1]).unwrap();
    assert_eq!(body["grace_ms"], 10_000);
    assert_eq!(daemon.terminate().1.code(), Some(0));
}

#[test]
fn sigterm_lets_work_in_progress_finish() {
    let mut daemon = Daemon::start("");
    let rt = runtime();
    let mut c = rt.block_on(Client::connect(&daemon.endpoint()));
    rt.block_on(async {
        let slow = json!({"jsonrpc": "2.0", "id": "slow", "method": "matcher.extract", "params": {"dpi": 300}});
        c.send_frames(vec![slow.to_string().into_bytes(), fixtures::scan("1_2.png")]).await;
        // Let the request be admitted before the signal.
        tokio::time::sleep(Duration::from_millis(30)).await;
    });
    let pid = nix::unistd::Pid::from_raw(daemon.child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    rt.block_on(async {
        let (reply, _) = c.recv().await;
        assert_eq!(reply["id"], "slow");
        assert!(
            reply["result"]["minutiae"].is_u64(),
            "finished, not cut off: {reply}"
        );
    });
    let (_, status) = daemon.terminate();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn non_loopback_tcp_and_unknown_keys_are_refused() {
    let err = refused_start("", &["--endpoint", "tcp://0.0.0.0:47123"]);
    assert!(err.contains("not a loopback address"), "{err}");
    assert!(err.contains("allow_non_loopback"), "{err}");
    let err = refused_start("[server]\nmax_inflight = 4\n", &[]);
    assert!(err.contains("max_inflight"), "{err}");
}

#[test]
fn loopback_tcp_serves() {
    // Find a free port, then let the daemon bind it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_idcardd"))
        .args(["serve", "--readers", "sim:1", "--state-dir"])
        .arg(dir.path())
        .args(["--endpoint", &format!("tcp://127.0.0.1:{port}")])
        .arg("--events")
        .arg(format!("ipc://{}", dir.path().join("e.sock").display()))
        .spawn()
        .unwrap();
    let result = runtime().block_on(async {
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "no listener on {port}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let mut c = Client::connect(&format!("tcp://127.0.0.1:{port}")).await;
        c.ok("system.version", json!({})).await
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(result["name"], "idcardd");
}

#[test]
fn pyzmq_client_library_drives_the_daemon() {
    let Some(python) = python_with_zmq() else {
        eprintln!("SKIPPED pyzmq_client_library_drives_the_daemon: no python3 with the zmq module (scripts/setup.sh installs python3-zmq)");
        return;
    };
    let daemon = Daemon::start("");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/py/serve_client.py");
    let out = Command::new(&python)
        // No __pycache__ left in the source tree.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .arg(script)
        .args(["--endpoint", &daemon.endpoint()])
        .args(["--events", &daemon.events_endpoint()])
        .arg("--fixtures")
        .arg(paths::fingerprints())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
