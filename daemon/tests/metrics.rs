//! Issue 17: the metrics endpoint scraped while a batch runs. The real `idcardd serve` on two
//! simulated readers with `[metrics] listen` on a free loopback port; a batch of generated and
//! fixture records (some rejected by data QC) submitted over the socket; `/metrics` read over
//! plain HTTP during the run and after it, each answer parsed as Prometheus text.

mod common;

use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::Daemon;
use idcardd::client::Client;
use serde_json::{json, Value};
use test_support::fixtures;
use test_support::perso::generated_record;

/// Valid records in the batch.
const VALID: u64 = 24;

/// A loopback address with a port nobody listens on now.
fn free_address() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// One HTTP/1.1 request to `addr`: the status code, the headers (lower-cased names) and the
/// body.
fn get(
    addr: SocketAddr,
    path: &str,
    accept: Option<&str>,
) -> (u16, BTreeMap<String, String>, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").expect("an HTTP answer");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect::<BTreeMap<_, _>>();
    if let Some(length) = headers.get("content-length") {
        assert_eq!(length.parse::<usize>().unwrap(), body.len());
    }
    (status, headers, body.to_string())
}

/// Parses one sample line `name{label="value",...} value`; `None` when it is not one.
fn sample(line: &str) -> Option<(String, f64)> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let mut chars = name.chars();
    let first = chars.next()?;
    if !(first.is_ascii_alphabetic() || first == '_' || first == ':')
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    {
        return None;
    }
    let mut rest = &line[name_end..];
    let mut key = name.to_string();
    if rest.starts_with('{') {
        // Labels: name="value" pairs, values with \\, \" and \n escapes.
        let bytes = rest.as_bytes();
        let mut i = 1;
        let mut in_value = false;
        loop {
            let c = *bytes.get(i)?;
            match (in_value, c) {
                (true, b'\\') => i += 1,
                (true, b'"') => in_value = false,
                (false, b'"') => in_value = true,
                (false, b'}') => break,
                (false, c) if !(c.is_ascii_alphanumeric() || b"_=,".contains(&c)) => return None,
                _ => {}
            }
            i += 1;
        }
        key.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
    }
    let mut fields = rest.strip_prefix(' ')?.split(' ');
    let value = match fields.next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    // An optional timestamp, then nothing.
    if let Some(ts) = fields.next() {
        ts.parse::<f64>().ok()?;
    }
    fields.next().is_none().then_some((key, value))
}

/// `/metrics` as Prometheus text: every sample by `name{labels}`, after checking that every
/// line is a comment or a sample.
fn scrape(addr: SocketAddr) -> BTreeMap<String, f64> {
    let (status, headers, body) = get(addr, "/metrics", None);
    assert_eq!(status, 200, "{body}");
    assert!(
        headers["content-type"].starts_with("text/plain; version=0.0.4"),
        "{headers:?}"
    );
    parse(&body)
}

/// Every sample of an exposition, checking each line.
fn parse(body: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    for line in body.lines() {
        if line.starts_with('#') {
            assert!(
                line.starts_with("# HELP ") || line.starts_with("# TYPE ") || line == "# EOF",
                "comment line {line:?}"
            );
            continue;
        }
        let (key, value) = sample(line).unwrap_or_else(|| panic!("not a sample: {line:?}"));
        assert!(samples.insert(key, value).is_none(), "repeated: {line:?}");
    }
    samples
}

/// The value of sample `key`, which must be there.
fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    *samples
        .get(key)
        .unwrap_or_else(|| panic!("no {key} in {samples:#?}"))
}

/// Calls `method` on the daemon.
fn call(rt: &tokio::runtime::Runtime, client: &mut Client, method: &str, params: Value) -> Value {
    rt.block_on(client.call(method, params, Vec::new()))
        .unwrap_or_else(|e| panic!("{e}"))
        .result
}

#[test]
fn the_metrics_endpoint_scraped_while_a_batch_runs() {
    let files = tempfile::tempdir().unwrap();
    let pki = files.path().join("pki");
    test_support::pki::signer_in(&pki);
    let keys = test_support::hsm::config_toml(test_support::hsm::SHARED);
    let addr = free_address();
    let mut daemon = Daemon::start(&format!(
        "[metrics]\nlisten = \"{addr}\"\n[pki]\ndir = {pki:?}\n{keys}"
    ));

    // Before any work: both readers up, the journal up, nothing counted.
    let idle = scrape(addr);
    assert_eq!(value(&idle, "idcardd_reader_up{reader=\"sim:0\"}"), 1.0);
    assert_eq!(value(&idle, "idcardd_reader_up{reader=\"sim:1\"}"), 1.0);
    assert_eq!(value(&idle, "idcardd_journal_up"), 1.0);
    assert_eq!(value(&idle, "idcardd_cards_personalized_total"), 0.0);
    assert_eq!(
        value(&idle, "idcardd_record_failures_total{reason=\"data_qc\"}"),
        0.0
    );
    assert_eq!(value(&idle, "idcardd_batches_running"), 0.0);
    // Other paths are not served.
    assert_eq!(get(addr, "/", None).0, 404);

    // The batch: valid records, and three that data QC rejects.
    let mut records: Vec<Value> = (0..VALID).map(generated_record).collect();
    records.push(fixtures::applicant("national-bad-check-digit.json")); // NID-1001
    records.push(fixtures::applicant("national-month-13.json")); // NID-1004
    let mut bad = generated_record(900);
    bad["national_code"] = json!("1234567890");
    records.push(bad);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut client = rt
        .block_on(Client::connect(&daemon.endpoint(), Duration::from_secs(60)))
        .unwrap();
    let submitted = call(
        &rt,
        &mut client,
        "batch.submit",
        json!({"records": records}),
    );
    let id = submitted["batch_id"].as_str().unwrap().to_string();

    // Scrape, then ask the journal: a scrape followed by a status that still says running was
    // taken while the batch ran.
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut during_run = Vec::new();
    let mut last = 0.0;
    let status = loop {
        let samples = scrape(addr);
        let cards = value(&samples, "idcardd_cards_personalized_total");
        assert!(
            cards >= last,
            "the counter went back from {last} to {cards}"
        );
        last = cards;
        let status = call(&rt, &mut client, "batch.status", json!({"batch_id": id}));
        if status["running"] == true {
            during_run.push(samples);
        } else if status["state"] == "finished" {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the batch did not finish: {status}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!during_run.is_empty(), "no scrape while the batch ran");
    let counts = &status["counts"];
    let personalized = counts["personalized"].as_f64().unwrap();
    let qc_failed = counts["qc_failed"].as_f64().unwrap();
    assert_eq!((personalized, qc_failed), (VALID as f64, 3.0), "{status}");
    let first = value(&during_run[0], "idcardd_cards_personalized_total");
    assert!(
        first < personalized,
        "the first scrape already counted every card"
    );
    assert!(
        during_run
            .iter()
            .any(|s| value(s, "idcardd_batches_running") == 1.0),
        "no scrape during the run showed the batch running"
    );

    // Events reach the metrics a moment after the journal: wait for the last ones.
    let settle = Instant::now() + Duration::from_secs(10);
    let done = loop {
        let samples = scrape(addr);
        if value(&samples, "idcardd_cards_personalized_total") == personalized
            && value(&samples, "idcardd_batches_running") == 0.0
        {
            break samples;
        }
        assert!(
            Instant::now() < settle,
            "metrics never caught up: {samples:#?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(last <= personalized);
    assert_eq!(
        value(&done, "idcardd_record_failures_total{reason=\"data_qc\"}"),
        qc_failed
    );
    let failures: f64 = done
        .iter()
        .filter(|(k, _)| k.starts_with("idcardd_record_failures_total{"))
        .map(|(_, v)| v)
        .sum();
    assert_eq!(failures, qc_failed, "only QC failures in this batch");
    let per_minute = value(&done, "idcardd_cards_per_minute");
    assert!(
        per_minute > 0.0 && per_minute <= personalized,
        "{per_minute}"
    );
    assert_eq!(
        value(
            &done,
            "idcardd_api_requests_total{method=\"batch.submit\",outcome=\"ok\"}"
        ),
        1.0
    );
    assert!(
        value(
            &done,
            "idcardd_api_requests_total{method=\"batch.status\",outcome=\"ok\"}"
        ) >= 1.0
    );
    assert_eq!(
        value(
            &done,
            "idcardd_api_request_seconds_count{method=\"batch.submit\"}"
        ),
        1.0
    );
    assert!(
        value(
            &done,
            "idcardd_api_request_seconds_sum{method=\"batch.submit\"}"
        ) > 0.0
    );
    let buckets: Vec<(&String, &f64)> = done
        .iter()
        .filter(|(k, _)| {
            k.starts_with("idcardd_api_request_seconds_bucket{")
                && k.contains("method=\"batch.submit\"")
        })
        .collect();
    assert_eq!(buckets.len(), 15, "14 bounds and +Inf: {buckets:?}");
    assert!(buckets
        .iter()
        .any(|(k, v)| k.contains("le=\"+Inf\"") && **v == 1.0));
    assert_eq!(value(&done, "idcardd_reader_up{reader=\"sim:0\"}"), 1.0);
    assert_eq!(value(&done, "idcardd_reader_up{reader=\"sim:1\"}"), 1.0);

    // An error outcome is counted by its name, and a made-up method as `unknown`.
    let missing = rt.block_on(client.call("batch.status", json!({"batch_id": "nope"}), Vec::new()));
    assert_eq!(missing.unwrap_err().name, "not_found");
    let unknown = rt.block_on(client.call("no.such.method", json!({}), Vec::new()));
    assert_eq!(unknown.unwrap_err().name, "method_not_found");
    let after = scrape(addr);
    assert_eq!(
        value(
            &after,
            "idcardd_api_requests_total{method=\"batch.status\",outcome=\"not_found\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &after,
            "idcardd_api_requests_total{method=\"unknown\",outcome=\"method_not_found\"}"
        ),
        1.0
    );
    assert!(!after.keys().any(|k| k.contains("no.such.method")));

    // OpenMetrics for a scraper that asks for it.
    let (status, headers, body) = get(
        addr,
        "/metrics",
        Some("application/openmetrics-text; version=1.0.0"),
    );
    assert_eq!(status, 200);
    assert!(headers["content-type"].starts_with("application/openmetrics-text"));
    assert!(body.ends_with("# EOF\n"));
    assert_eq!(
        value(&parse(&body), "idcardd_cards_personalized_total"),
        personalized
    );

    // The endpoint stops with the daemon.
    let (_, exit) = daemon.terminate();
    assert!(exit.success(), "{exit}");
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

/// A metrics endpoint beyond loopback would publish the line's figures to anyone: refused.
#[test]
fn a_non_loopback_metrics_address_stops_the_start() {
    let err = common::refused_start("[metrics]\nlisten = \"0.0.0.0:9187\"\n", &[]);
    assert!(err.contains("not a loopback address"), "{err}");
}

/// A request head that never ends is cut off; the daemon keeps answering scrapes meanwhile.
#[test]
fn a_slow_or_oversized_client_does_not_block_scrapes() {
    let addr = free_address();
    let _daemon = Daemon::start(&format!("[metrics]\nlisten = \"{addr}\"\n"));
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(b"GET /metr").unwrap();
    let started = Instant::now();
    assert_eq!(value(&scrape(addr), "idcardd_journal_up"), 1.0);
    assert!(started.elapsed() < Duration::from_secs(2));
    // The slow one is closed within the connection timeout.
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
    assert!(started.elapsed() < Duration::from_secs(10));
    // An endless head is refused, not buffered.
    let mut big = TcpStream::connect(addr).unwrap();
    big.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut head = b"GET /metrics HTTP/1.1\r\n".to_vec();
    head.extend(std::iter::repeat_n(b'x', 16 * 1024));
    let _ = big.write_all(&head);
    let mut answer = String::new();
    let _ = big.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer:?}");
}
