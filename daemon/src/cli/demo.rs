//! `idcardd demo`: the whole issuance chain on simulated readers, no hardware needed.
//!
//! 1. The issuer's keys in the state directory's SoftHSM token and a test PKI (CSCA +
//!    Document Signer, `issuance::pki::init`) in it.
//! 2. The daemon (`crate::server::serve`) on a private ipc endpoint with `--readers` simulated
//!    readers; everything after this goes through its socket with [`crate::client::Client`],
//!    the way a line controller and a kiosk would.
//! 3. `batch.submit` of the fixture applicants (`fixtures/applicants`, some deliberately
//!    invalid so data QC rejects them), blobs inlined as base64; the demo waits on
//!    `batch.status` and reads `batch.report`.
//! 4. Delivery of every personalized card: the card is put in the kiosk reader (for simulated
//!    cards: its state file is moved into the reader's slot), `delivery.begin` (passive
//!    authentication), `delivery.verify` with another applicant's finger (refused), with a
//!    second impression of the enrolled finger (accepted), `delivery.activate` with the
//!    holder's new PIN. The last personalized card is reported lost instead and terminated
//!    with `card.terminate`; `status.lookup` then shows delivered and terminated cards. A
//!    foreign-resident household head collects the household members' cards: the head is
//!    verified, each member's card (in a second reader) is handed over with
//!    `delivery.handover` and activated with its own PIN.
//! 5. After production (issue 16): the first delivered national card is reported lost
//!    (`card.report_lost`) and replaced (the replacement produced and delivered); the first
//!    delivered free-zone card is renewed with an officer's approval (the old card superseded)
//!    after a renewal the officer rejected; `status.lookup` and `document.status` each time.
//! 6. A table and a summary; `--json` prints the summary as one object.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use base64::Engine as _;
use serde::Serialize;
use serde_json::{json, Value};

use crate::client::{Client, RpcError};
use crate::server::ServerSettings;
use crate::service::{Service, ServiceConfig};
use issuance::applicant::{Applicant, Blob};

/// The fixture applicants the demo submits.
/// Names the demo applicants' folder, before any other place is looked at.
pub const DEMO_DATA_ENV: &str = "IDCARDD_DEMO_DATA";

/// Where the demo applicants may be, in order: beside an installed binary
/// (`<prefix>/bin/idcardd` -> `<prefix>/share/idcardd/applicants`), then the checkout the
/// binary was built from (its records refer to `../fingerprints`, so they stay together), then
/// the current directory's `fixtures/applicants`.
fn demo_data_candidates() -> Vec<PathBuf> {
    let mut places = Vec::new();
    if let Some(prefix) = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.to_path_buf()))
    {
        places.push(prefix.join("share/idcardd/applicants"));
    }
    places.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/applicants"));
    places.push(PathBuf::from("fixtures/applicants"));
    places
}

/// The demo applicants' folder: `$IDCARDD_DEMO_DATA`, else the first of
/// [`demo_data_candidates`] that exists.
fn demo_data() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(DEMO_DATA_ENV).filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    demo_data_candidates().into_iter().find(|p| p.is_dir())
}
/// The holder's PIN chosen at the kiosk (demo value; never logged or printed).
const HOLDER_PIN: &str = "482913";
/// The kiosk reader cards are put into for delivery.
const KIOSK_READER: &str = "sim:0";

/// Arguments of `idcardd demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print the summary as one JSON object instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Number of simulated readers on the production line.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(1..=8))]
    pub readers: u8,
    /// Folder of applicant records (`*.json`) to submit; default: the demo's own records,
    /// wherever the binary finds them (`$IDCARDD_DEMO_DATA`, `<prefix>/share/idcardd/applicants`,
    /// the checkout it was built from).
    #[arg(long)]
    pub applicants: Option<PathBuf>,
    /// Keep the daemon's state (PKI, journal, audit, cards) here instead of a temporary folder.
    /// A second run with the same folder starts a new batch with new cards.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

/// What happened to one applicant record.
#[derive(Debug, Serialize)]
struct RecordOutcome {
    tracking_code: String,
    /// Batch state: `personalized`, `qc_failed`, `failed`.
    state: String,
    serial: Option<String>,
    /// QC problems or the failure reason.
    reason: Option<String>,
    /// Passive authentication at `delivery.begin`: `ok` or the refusal.
    passive_auth: Option<String>,
    impostor_score: Option<f64>,
    impostor_decision: Option<String>,
    genuine_score: Option<f64>,
    genuine_decision: Option<String>,
    /// `delivered`, `terminated (lost)`, or why not.
    outcome: String,
    /// `status.lookup` by tracking code at the end.
    status: Option<String>,
}

/// p50 / p99 / max of one method, milliseconds, measured by the client.
#[derive(Debug, Serialize)]
struct Latency {
    method: String,
    calls: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Serialize)]
struct Summary {
    readers: u8,
    records: usize,
    personalized: usize,
    qc_failed: usize,
    failed: usize,
    delivered: usize,
    impostors_refused: usize,
    /// Household members' cards collected by the household head (`delivery.handover`).
    household_handovers: usize,
    terminated: usize,
    batch_seconds: f64,
    cards_per_minute: f64,
    latency: Vec<Latency>,
    /// Server-side split of `delivery.verify` (mean ms per stage, from `timing_ms`).
    verify_split_ms: Value,
    outcomes: Vec<RecordOutcome>,
    /// After production: a lost card replaced, a free-zone card renewed (issue 16).
    history: Vec<HistoryStep>,
    /// The issuer's token the demo's keys are in.
    key_store: Option<KeyStoreSummary>,
}

/// One step of a card's later life, as the demo shows it.
#[derive(Debug, Clone, Serialize)]
struct HistoryStep {
    /// What was done.
    step: String,
    /// The application it concerns.
    tracking_code: String,
    /// What `status.lookup` answers for it afterwards.
    status: String,
    /// What `document.status` answers for its card afterwards (a verifier's view).
    document_status: Option<String>,
}

/// What the demo says of its key store: never a key, only that they are in the token.
#[derive(Debug, Clone, Serialize)]
struct KeyStoreSummary {
    token: String,
    objects: usize,
    all_sensitive_and_not_extractable: bool,
}

/// Runs `idcardd demo`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let temp;
    let state_dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    // Owner-only from the start: the test PKI below is written before `Service::open`.
    crate::service::owner_only_umask();
    crate::service::private_dir(&state_dir)?;
    let state_dir = state_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", state_dir.display()))?;
    let applicants_dir = match &args.applicants {
        Some(dir) if dir.is_dir() => dir.clone(),
        Some(dir) => bail!("{} not found", dir.display()),
        None => demo_data().with_context(|| {
            format!(
                "no demo applicants found (looked in ${DEMO_DATA_ENV}, {}): pass --applicants DIR",
                demo_data_candidates()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })?,
    };
    let records = load_records(&applicants_dir)?;

    // The issuer's keys: the embedded SoftHSM token of the state directory (made on the first
    // run), the same PKCS#11 path a production HSM takes.
    let keys = std::sync::Arc::new(crate::service::open_key_store(&state_dir, None)?);
    let pki_dir = state_dir.join("pki");
    if !pki_dir.join("ds.pem").is_file() {
        issuance::pki::init(&pki_dir, &keys).context("creating the test PKI")?;
    }
    let listed = keys.list()?;
    let key_store = KeyStoreSummary {
        token: keys.config().token_label.clone(),
        objects: listed.len(),
        all_sensitive_and_not_extractable: listed
            .iter()
            .filter(|k| k.class != "public")
            .all(|k| k.sensitive == Some(true) && k.extractable == Some(false)),
    };
    let readers: Vec<String> = (0..args.readers).map(|i| format!("sim:{i}")).collect();
    let mut config = ServiceConfig::new(state_dir.clone(), readers);
    config.pki_dir = Some(pki_dir.clone());
    config.trust = vec![pki_dir.join("csca.pem")];
    let server = ServerSettings {
        endpoint: format!("ipc://{}", state_dir.join("idcardd.sock").display()),
        events: format!("ipc://{}", state_dir.join("events.sock").display()),
        socket_group: None,
        allow_non_loopback: false,
        max_message_bytes: 64 << 20,
        max_in_flight: 16,
        request_timeout: Duration::from_secs(120),
        shutdown_grace: Duration::from_secs(10),
        metrics_listen: None,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut summary = runtime.block_on(async {
        let svc = Arc::new(Service::open(config)?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let endpoint = server.endpoint.clone();
        let serving = tokio::spawn(crate::server::serve(server, svc.clone(), async move {
            let _ = stopped.await;
        }));
        let outcome = drive(&endpoint, &svc, records, args.readers).await;
        let _ = stop.send(());
        serving.await.context("the server task")??;
        outcome
    })?;

    summary.key_store = Some(key_store);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_tables(&summary, &state_dir, args.state_dir.is_some());
    }
    Ok(())
}

impl RecordOutcome {
    /// An outcome with nothing known yet.
    fn empty(tracking_code: &str) -> RecordOutcome {
        RecordOutcome {
            tracking_code: tracking_code.to_string(),
            state: "personalized".into(),
            serial: None,
            reason: None,
            passive_auth: None,
            impostor_score: None,
            impostor_decision: None,
            genuine_score: None,
            genuine_decision: None,
            outcome: String::new(),
            status: None,
        }
    }
}

/// One fixture record: the applicant (blobs inlined) and the scans the kiosk will use.
struct Record {
    tracking_code: String,
    json: Value,
    /// ISO finger position and the scan file of a second impression of it (the live scan).
    live: Option<(u8, PathBuf)>,
    /// An impression of a finger this applicant does not have (an impostor's scan).
    impostor: Option<PathBuf>,
}

/// Reads every `*.json` applicant in `dir` (sorted), inlining face and finger files as base64
/// so each record travels as one message.
fn load_records(dir: &Path) -> anyhow::Result<Vec<Record>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    let mut records = Vec::new();
    for path in paths {
        let mut applicant = match Applicant::load(&path) {
            Ok(a) => a,
            // A malformed record is still submitted as written: QC rejects it in the batch.
            Err(_) => {
                let text = std::fs::read_to_string(&path)?;
                records.push(Record {
                    tracking_code: path
                        .file_stem()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into(),
                    json: serde_json::from_str(&text).unwrap_or(Value::String(text)),
                    live: None,
                    impostor: None,
                });
                continue;
            }
        };
        let mut live = None;
        let base = applicant
            .files
            .dir()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        for (finger, sample) in &applicant.fingers {
            let enrolled = sample
                .scan
                .as_ref()
                .or(sample.template.as_ref())
                .and_then(|b| b.path.as_deref())
                .map(resolve);
            if let (None, Some(file)) = (&live, enrolled) {
                if let Some(second) = other_impression(&file, 2) {
                    live = Some((finger.iso_position(), second));
                }
            }
        }
        let impostor = live
            .as_ref()
            .and_then(|(_, scan)| impostor_scan(scan, &applicant));
        if let Some(face) = applicant.face.as_mut() {
            inline(face, &base)?;
        }
        for sample in applicant.fingers.values_mut() {
            for blob in [sample.scan.as_mut(), sample.template.as_mut()]
                .into_iter()
                .flatten()
            {
                inline(blob, &base)?;
            }
        }
        records.push(Record {
            tracking_code: applicant.tracking_code.clone(),
            json: serde_json::to_value(&applicant)?,
            live,
            impostor,
        });
    }
    Ok(records)
}

/// Replaces a file reference by its bytes in base64 (a missing file stays a path, for QC to
/// report).
fn inline(blob: &mut Blob, base: &Path) -> anyhow::Result<()> {
    if let Some(path) = blob.path.clone() {
        let full = if path.is_absolute() {
            path
        } else {
            base.join(path)
        };
        if let Ok(bytes) = std::fs::read(&full) {
            blob.base64 = Some(base64::engine::general_purpose::STANDARD.encode(bytes));
            blob.path = None;
        }
    }
    Ok(())
}

/// `<dir>/<finger>_<impression>.png` for another impression of the finger `file` shows
/// (`file` may be a scan or a `.iso` template of the FVC-named fixtures).
fn other_impression(file: &Path, impression: u32) -> Option<PathBuf> {
    let stem = file.file_stem()?.to_str()?;
    let (finger, _) = stem.split_once('_')?;
    let finger: u32 = finger.parse().ok()?;
    let path = file.parent()?.join(format!("{finger}_{impression}.png"));
    path.is_file().then_some(path)
}

/// An impression of a fixture finger the applicant did not enrol.
fn impostor_scan(live: &Path, applicant: &Applicant) -> Option<PathBuf> {
    let dir = live.parent()?;
    let enrolled: Vec<String> = applicant
        .fingers
        .values()
        .filter_map(|s| s.scan.as_ref().or(s.template.as_ref()))
        .filter_map(|b| b.path.as_deref())
        .filter_map(|p| {
            p.file_stem()?
                .to_str()?
                .split_once('_')
                .map(|(f, _)| f.to_string())
        })
        .collect();
    let own: u32 = live
        .file_stem()?
        .to_str()?
        .split_once('_')?
        .0
        .parse()
        .ok()?;
    (1..=50)
        .map(|k| own + k)
        .filter(|f| !enrolled.contains(&f.to_string()))
        .map(|f| dir.join(format!("{f}_2.png")))
        .find(|p| p.is_file())
        .or_else(|| {
            (1..own)
                .filter(|f| !enrolled.contains(&f.to_string()))
                .map(|f| dir.join(format!("{f}_2.png")))
                .find(|p| p.is_file())
        })
}

/// Timings per method, as the client saw them.
#[derive(Default)]
struct Timings(Vec<(String, f64)>);

impl Timings {
    async fn call(
        &mut self,
        client: &mut Client,
        method: &str,
        params: Value,
        frames: Vec<Vec<u8>>,
    ) -> Result<crate::client::Answer, RpcError> {
        let start = Instant::now();
        let answer = client.call(method, params, frames).await;
        self.0
            .push((method.to_string(), start.elapsed().as_secs_f64() * 1e3));
        answer
    }

    fn latency(&self) -> Vec<Latency> {
        let mut methods: Vec<&str> = self.0.iter().map(|(m, _)| m.as_str()).collect();
        methods.sort_unstable();
        methods.dedup();
        methods
            .into_iter()
            .map(|m| {
                let mut ms: Vec<f64> = self
                    .0
                    .iter()
                    .filter(|(n, _)| n == m)
                    .map(|(_, t)| *t)
                    .collect();
                ms.sort_by(f64::total_cmp);
                let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
                Latency {
                    method: m.to_string(),
                    calls: ms.len(),
                    p50_ms: at(0.5),
                    p99_ms: at(0.99),
                    max_ms: ms[ms.len() - 1],
                }
            })
            .collect()
    }
}

/// Everything after the daemon is up: the batch, then delivery, all through the socket.
async fn drive(
    endpoint: &str,
    svc: &Service,
    records: Vec<Record>,
    readers: u8,
) -> anyhow::Result<Summary> {
    let mut client = Client::connect(endpoint, Duration::from_secs(120)).await?;
    let mut timings = Timings::default();
    timings
        .call(&mut client, "system.health", json!({}), vec![])
        .await?;

    let batch_start = Instant::now();
    let report = run_batch(
        &mut client,
        &mut timings,
        records.iter().map(|r| r.json.clone()).collect(),
    )
    .await?;
    let batch_seconds = batch_start.elapsed().as_secs_f64();
    let lines = report["records"].as_array().cloned().unwrap_or_default();

    let mut outcomes = Vec::new();
    let mut verify_splits: Vec<Value> = Vec::new();
    let personalized: Vec<usize> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l["state"] == "personalized")
        .map(|(i, _)| i)
        .collect();
    let lost = personalized.last().copied();
    // Households (foreign-resident): each member's card goes to the head when the head is
    // delivered (a second kiosk reader holds the member's card).
    let household_of = |tracking: &str| -> Option<(String, bool)> {
        let r = &records.iter().find(|r| r.tracking_code == tracking)?.json["foreign_resident"];
        let code = r["household_code"].as_str().filter(|c| !c.is_empty())?;
        Some((code.to_string(), r["household_head"] == json!(true)))
    };
    let member_reader = (readers >= 2).then(|| "sim:1".to_string());
    let produced = |i: usize, l: &Value| {
        l["state"] == "personalized" && Some(i) != lost && l["card_serial"].is_string()
    };
    let heads: Vec<String> = lines
        .iter()
        .enumerate()
        .filter(|(i, l)| produced(*i, l))
        .filter_map(|(_, l)| {
            let t = l["tracking_code"].as_str()?;
            household_of(t)
                .filter(|(_, head)| *head)
                .map(|(code, _)| code)
        })
        .collect();
    let members_of = |code: &str| -> Vec<(String, String)> {
        lines
            .iter()
            .enumerate()
            .filter(|(i, l)| produced(*i, l))
            .filter_map(|(_, l)| {
                let t = l["tracking_code"].as_str()?;
                let (c, head) = household_of(t)?;
                (c == code && !head).then(|| {
                    (
                        l["card_serial"].as_str().unwrap_or_default().to_string(),
                        t.to_string(),
                    )
                })
            })
            .collect()
    };
    let mut handed: Vec<(String, String)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let text = |key: &str| {
            line[key]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let tracking_code = text("tracking_code").unwrap_or_default();
        let mut outcome = RecordOutcome {
            state: text("state").unwrap_or_default(),
            serial: text("card_serial"),
            reason: text("reason"),
            ..RecordOutcome::empty(&tracking_code)
        };
        let state = outcome.state.clone();
        let household = household_of(&tracking_code);
        let collected_by_head = member_reader.is_some()
            && household
                .as_ref()
                .is_some_and(|(code, head)| !head && heads.contains(code));
        match (outcome.serial.clone(), state.as_str()) {
            (Some(_), "personalized") if collected_by_head && Some(i) != lost => {
                let result = handed
                    .iter()
                    .find(|(t, _)| *t == tracking_code)
                    .map(|(_, r)| r.clone())
                    .unwrap_or_else(|| "not handed over".into());
                outcome.passive_auth = Some("ok".into());
                outcome.genuine_decision = Some("head_verification".into());
                outcome.outcome = result;
            }
            (Some(serial), "personalized")
                if Some(i) != lost
                    && member_reader.is_some()
                    && household.as_ref().is_some_and(|(_, head)| *head) =>
            {
                let record = records.iter().find(|r| r.tracking_code == tracking_code);
                let (code, _) = household.clone().unwrap_or_default();
                insert_card(svc, &serial)?;
                let result = deliver_household(
                    &mut client,
                    &mut timings,
                    svc,
                    record,
                    &mut outcome,
                    &members_of(&code),
                    member_reader.as_deref().unwrap_or("sim:1"),
                    &mut verify_splits,
                )
                .await;
                remove_card(svc, &serial)?;
                handed.extend(result?);
            }
            (Some(serial), "personalized") => {
                let record = records.iter().find(|r| r.tracking_code == tracking_code);
                insert_card(svc, &serial)?;
                let delivered = if Some(i) == lost {
                    terminate(&mut client, &mut timings, &mut outcome).await
                } else {
                    deliver(
                        &mut client,
                        &mut timings,
                        record,
                        &mut outcome,
                        &mut verify_splits,
                    )
                    .await
                };
                remove_card(svc, &serial)?;
                delivered?;
            }
            (_, "qc_failed") => outcome.outcome = "rejected by data QC".into(),
            (_, state) => outcome.outcome = format!("not personalized ({state})"),
        }
        if !tracking_code.is_empty() {
            outcome.status = Some(where_now(&mut client, &tracking_code, None).await.0);
        }
        outcomes.push(outcome);
    }

    let count = |f: &dyn Fn(&RecordOutcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let personalized_n = lines
        .iter()
        .filter(|l| l["state"] == "personalized")
        .count();
    Ok(Summary {
        readers,
        records: lines.len(),
        personalized: personalized_n,
        qc_failed: count(&|o| o.state == "qc_failed"),
        failed: count(&|o| o.state == "failed"),
        delivered: count(&|o| o.outcome == "delivered"),
        impostors_refused: count(&|o| o.impostor_decision.as_deref() == Some("refused")),
        household_handovers: count(&|o| o.genuine_decision.as_deref() == Some("head_verification")),
        terminated: count(&|o| o.outcome.starts_with("terminated")),
        batch_seconds,
        cards_per_minute: personalized_n as f64 / batch_seconds.max(1e-9) * 60.0,
        latency: timings.latency(),
        verify_split_ms: mean_split(&verify_splits),
        history: later_life(&mut client, &mut timings, svc, &records, &lines, &outcomes).await?,
        outcomes,
        key_store: None,
    })
}

/// `batch.submit` of `records`, waiting on `batch.status` until the run ends: the report.
async fn run_batch(
    client: &mut Client,
    timings: &mut Timings,
    records: Vec<Value>,
) -> anyhow::Result<Value> {
    let submitted = timings
        .call(client, "batch.submit", json!({"records": records}), vec![])
        .await?;
    let batch_id = submitted.result["batch_id"]
        .as_str()
        .context("batch.submit answered no batch_id")?
        .to_string();
    loop {
        let status = client
            .call("batch.status", json!({"batch_id": batch_id}), vec![])
            .await?;
        if status.result["running"] == json!(false) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(client
        .call("batch.report", json!({"batch_id": batch_id}), vec![])
        .await?
        .result)
}

/// Produces one record as a one-record batch and returns its report line.
async fn produce(
    client: &mut Client,
    timings: &mut Timings,
    record: Value,
) -> anyhow::Result<Value> {
    Ok(run_batch(client, timings, vec![record]).await?["records"][0].clone())
}

/// Produces applicant `json` (another application of `like`'s holder) and delivers the card
/// with `like`'s scans: the delivery's outcome and the card's document number, or `None` when
/// no card was made.
async fn produce_and_deliver(
    client: &mut Client,
    timings: &mut Timings,
    svc: &Service,
    json: Value,
    like: &Record,
) -> anyhow::Result<Option<(String, Option<String>)>> {
    let line = produce(client, timings, json.clone()).await?;
    let Some(serial) = line["card_serial"].as_str() else {
        return Ok(None);
    };
    let record = Record {
        tracking_code: json["tracking_code"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        json,
        live: like.live.clone(),
        impostor: None,
    };
    let mut outcome = RecordOutcome::empty(&record.tracking_code);
    insert_card(svc, serial)?;
    let done = deliver(
        client,
        timings,
        Some(&record),
        &mut outcome,
        &mut Vec::new(),
    )
    .await;
    remove_card(svc, serial)?;
    done?;
    Ok(Some((
        outcome.outcome,
        line["document_number"].as_str().map(str::to_string),
    )))
}

/// `status.lookup` and `document.status` of an application and its card, for the table.
async fn where_now(
    client: &mut Client,
    tracking_code: &str,
    document: Option<&str>,
) -> (String, Option<String>) {
    let status = match client
        .call(
            "status.lookup",
            json!({"tracking_code": tracking_code}),
            vec![],
        )
        .await
    {
        Ok(a) => a.result["matches"][0]["status"]
            .as_str()
            .unwrap_or("-")
            .to_string(),
        Err(e) => format!("({})", e.name),
    };
    let document_status = match document {
        Some(d) => client
            .call("document.status", json!({"document_number": d}), vec![])
            .await
            .ok()
            .and_then(|a| a.result["status"].as_str().map(str::to_string)),
        None => None,
    };
    (status, document_status)
}

/// After production (issue 16): the holder of the first delivered national card reports it
/// lost and gets a replacement (the old one revoked, the new one delivered); the first
/// delivered free-zone card is renewed after an officer's approval (the old one superseded),
/// and a renewal the officer rejected shows what is missing.
async fn later_life(
    client: &mut Client,
    timings: &mut Timings,
    svc: &Service,
    records: &[Record],
    lines: &[Value],
    outcomes: &[RecordOutcome],
) -> anyhow::Result<Vec<HistoryStep>> {
    let mut steps = Vec::new();
    let delivered = |prefix: &str| {
        outcomes
            .iter()
            .find(|o| o.outcome == "delivered" && o.tracking_code.starts_with(prefix))
            .and_then(|o| {
                let line = lines
                    .iter()
                    .find(|l| l["tracking_code"] == o.tracking_code.as_str())?;
                let record = records
                    .iter()
                    .find(|r| r.tracking_code == o.tracking_code)?;
                Some((
                    o.tracking_code.clone(),
                    line["document_number"].as_str()?.to_string(),
                    record,
                ))
            })
    };
    // A lost national card, replaced.
    if let Some((code, document, record)) = delivered("NID-") {
        timings
            .call(
                client,
                "card.report_lost",
                json!({"document_number": document, "reason": "lost"}),
                vec![],
            )
            .await?;
        let (status, doc) = where_now(client, &code, Some(&document)).await;
        steps.push(HistoryStep {
            step: "reported lost: revoked".into(),
            tracking_code: code.clone(),
            status,
            document_status: doc,
        });
        let replacement_code = format!("{code}-R");
        let mut json = record.json.clone();
        json["tracking_code"] = json!(replacement_code);
        if let Some((outcome, doc)) =
            produce_and_deliver(client, timings, svc, json, record).await?
        {
            let (status, doc) = where_now(client, &replacement_code, doc.as_deref()).await;
            steps.push(HistoryStep {
                step: format!("replacement: {outcome}"),
                tracking_code: replacement_code,
                status,
                document_status: doc,
            });
        }
    }
    // A free-zone card renewed after the officer's review; a renewal rejected.
    if let Some((code, document, record)) = delivered("FZ-") {
        let mut rejected = record.json.clone();
        rejected["tracking_code"] = json!(format!("{code}-X"));
        rejected["renewal"] = json!({"of_document": document, "officer": "OFF-DEMO",
                                     "approved": false, "missing": ["lease contract"]});
        produce(client, timings, rejected).await?;
        let (status, _) = where_now(client, &format!("{code}-X"), None).await;
        steps.push(HistoryStep {
            step: "renewal rejected by the officer (missing: lease contract)".into(),
            tracking_code: format!("{code}-X"),
            status,
            document_status: None,
        });
        let renewal_code = format!("{code}-R");
        let mut json = record.json.clone();
        json["tracking_code"] = json!(renewal_code);
        json["renewal"] = json!({"of_document": document, "officer": "OFF-DEMO", "approved": true});
        if let Some((outcome, doc)) =
            produce_and_deliver(client, timings, svc, json, record).await?
        {
            let (status, doc) = where_now(client, &renewal_code, doc.as_deref()).await;
            steps.push(HistoryStep {
                step: format!("renewal approved: {outcome}"),
                tracking_code: renewal_code,
                status,
                document_status: doc,
            });
            let (status, doc) = where_now(client, &code, Some(&document)).await;
            steps.push(HistoryStep {
                step: "the renewed card".into(),
                tracking_code: code,
                status,
                document_status: doc,
            });
        }
    }
    Ok(steps)
}

/// The kiosk reader's card slot (a simulated reader keeps its card in `card-N.json`).
fn slot(svc: &Service, reader: &str) -> anyhow::Result<PathBuf> {
    let n = issuance::readers::parse_sim_name(reader)?.context("the kiosk reader is simulated")?;
    Ok(issuance::readers::sim_state_path(&svc.config.sim_dir, n))
}

/// Puts the personalized card `serial` into the kiosk reader: its state file moves from the
/// production hopper into the reader's slot (a person carrying the card across the office).
fn insert_card(svc: &Service, serial: &str) -> anyhow::Result<()> {
    insert_card_at(svc, serial, KIOSK_READER)
}

/// Takes the card out of the kiosk reader, back into the hopper folder.
fn remove_card(svc: &Service, serial: &str) -> anyhow::Result<()> {
    remove_card_from(svc, serial, KIOSK_READER)
}

/// Puts card `serial` into simulated `reader`.
fn insert_card_at(svc: &Service, serial: &str, reader: &str) -> anyhow::Result<()> {
    let hopper = issuance::batch::SimHopper::in_state_dir(&svc.config.state_dir, svc.keys.clone());
    std::fs::create_dir_all(&svc.config.sim_dir)?;
    std::fs::rename(hopper.card_path(serial), slot(svc, reader)?)
        .with_context(|| format!("putting card {serial} into {reader}"))
}

/// Takes card `serial` out of simulated `reader`, back into the hopper folder.
fn remove_card_from(svc: &Service, serial: &str, reader: &str) -> anyhow::Result<()> {
    let hopper = issuance::batch::SimHopper::in_state_dir(&svc.config.state_dir, svc.keys.clone());
    std::fs::rename(slot(svc, reader)?, hopper.card_path(serial))
        .with_context(|| format!("taking card {serial} out of {reader}"))
}

/// Reads a scan file for a `delivery.verify` frame.
fn scan_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// A kiosk delivery: begin, an impostor's finger (must be refused), the holder's finger,
/// activate.
async fn deliver(
    client: &mut Client,
    timings: &mut Timings,
    record: Option<&Record>,
    outcome: &mut RecordOutcome,
    splits: &mut Vec<Value>,
) -> anyhow::Result<()> {
    if let Some(session) = begin_and_verify(client, timings, record, outcome, splits).await? {
        outcome.outcome = activate(client, timings, &session).await;
    }
    Ok(())
}

/// `delivery.activate` with the holder's new PIN: `delivered`, or why not.
async fn activate(client: &mut Client, timings: &mut Timings, session: &str) -> String {
    match timings
        .call(
            client,
            "delivery.activate",
            json!({"session": session, "new_pin": HOLDER_PIN}),
            vec![],
        )
        .await
    {
        Ok(_) => "delivered".into(),
        Err(e) => format!("activation refused: {} ({})", e.message, e.name),
    }
}

/// The household head collects the household's cards (issue 16): the head's card in the kiosk
/// reader is read and the head verified, each member's card in `member_reader` is handed over
/// on that verification (`delivery.handover`) and activated with its own PIN, then the head's.
/// Returns each member's outcome, by tracking code.
#[allow(clippy::too_many_arguments)]
async fn deliver_household(
    client: &mut Client,
    timings: &mut Timings,
    svc: &Service,
    head: Option<&Record>,
    outcome: &mut RecordOutcome,
    members: &[(String, String)],
    member_reader: &str,
    splits: &mut Vec<Value>,
) -> anyhow::Result<Vec<(String, String)>> {
    let mut handed = Vec::new();
    let Some(session) = begin_and_verify(client, timings, head, outcome, splits).await? else {
        return Ok(handed);
    };
    for (serial, tracking) in members {
        insert_card_at(svc, serial, member_reader)?;
        let result = match timings
            .call(
                client,
                "delivery.handover",
                json!({"session": session, "reader": member_reader}),
                vec![],
            )
            .await
        {
            Ok(a) => {
                let member_session = a.result["session"].as_str().unwrap_or_default().to_string();
                activate(client, timings, &member_session).await
            }
            Err(e) => format!("handover refused: {} ({})", e.message, e.name),
        };
        remove_card_from(svc, serial, member_reader)?;
        handed.push((tracking.clone(), result));
    }
    outcome.outcome = activate(client, timings, &session).await;
    Ok(handed)
}

/// `delivery.begin` on the kiosk reader, an impostor's finger (refused) and the holder's
/// (accepted): the verified session, or `None` with the outcome saying why not.
async fn begin_and_verify(
    client: &mut Client,
    timings: &mut Timings,
    record: Option<&Record>,
    outcome: &mut RecordOutcome,
    splits: &mut Vec<Value>,
) -> anyhow::Result<Option<String>> {
    let begun = match timings
        .call(
            client,
            "delivery.begin",
            json!({"reader": KIOSK_READER}),
            vec![],
        )
        .await
    {
        Ok(a) => a,
        Err(e) => {
            outcome.passive_auth = Some(e.name.clone());
            outcome.outcome = format!("refused at delivery.begin: {}", e.message);
            return Ok(None);
        }
    };
    outcome.passive_auth = Some("ok".into());
    let session = begun.result["session"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let Some((finger, live)) = record.and_then(|r| r.live.clone()) else {
        outcome.outcome = "no live scan for this record's fingers: not delivered".into();
        return Ok(None);
    };
    if let Some(impostor) = record.and_then(|r| r.impostor.as_ref()) {
        let answer = timings
            .call(
                client,
                "delivery.verify",
                json!({"session": session, "finger": finger}),
                vec![scan_bytes(impostor)?],
            )
            .await;
        match answer {
            Ok(a) => {
                outcome.impostor_score = a.result["score"].as_f64();
                outcome.impostor_decision = Some("accepted".into());
            }
            Err(e) => {
                outcome.impostor_score = e.data["score"].as_f64();
                outcome.impostor_decision = Some(match e.name.as_str() {
                    "no_match" => "refused".into(),
                    other => other.to_string(),
                });
            }
        }
    }
    // The holder's finger: a second impression, and a third if the kiosk has to ask again.
    let mut matched = false;
    for impression in [2, 3] {
        let Some(scan) = other_impression(&live, impression) else {
            continue;
        };
        match timings
            .call(
                client,
                "delivery.verify",
                json!({"session": session, "finger": finger}),
                vec![scan_bytes(&scan)?],
            )
            .await
        {
            Ok(a) => {
                outcome.genuine_score = a.result["score"].as_f64();
                outcome.genuine_decision = Some("match".into());
                splits.push(a.result["timing_ms"].clone());
                matched = true;
                break;
            }
            Err(e) => {
                outcome.genuine_score = e.data["score"].as_f64();
                outcome.genuine_decision = Some(e.name.clone());
                if e.name == "attempts_exhausted" {
                    break;
                }
            }
        }
    }
    if !matched {
        outcome.outcome = "holder not verified: card kept for a supervisor".into();
        return Ok(None);
    }
    Ok(Some(session))
}

/// The holder reported the card lost before delivery: terminate it.
async fn terminate(
    client: &mut Client,
    timings: &mut Timings,
    outcome: &mut RecordOutcome,
) -> anyhow::Result<()> {
    outcome.outcome = match timings
        .call(
            client,
            "card.terminate",
            json!({"reader": KIOSK_READER, "reason": "lost"}),
            vec![],
        )
        .await
    {
        Ok(_) => "terminated (reported lost)".into(),
        Err(e) => format!("terminate refused: {} ({})", e.message, e.name),
    };
    Ok(())
}

/// Mean of each numeric key over the `timing_ms` objects.
fn mean_split(splits: &[Value]) -> Value {
    let mut sums: std::collections::BTreeMap<String, (f64, usize)> = Default::default();
    for split in splits {
        if let Some(obj) = split.as_object() {
            for (k, v) in obj {
                if let Some(v) = v.as_f64() {
                    let e = sums.entry(k.clone()).or_default();
                    e.0 += v;
                    e.1 += 1;
                }
            }
        }
    }
    Value::Object(
        sums.into_iter()
            .map(|(k, (s, n))| (k, json!((s / n as f64 * 100.0).round() / 100.0)))
            .collect(),
    )
}

fn print_tables(s: &Summary, state_dir: &Path, kept: bool) {
    println!(
        "idcardd demo: daemon on {} simulated readers, {} applicant records (fixtures/applicants)",
        s.readers, s.records
    );
    if let Some(k) = &s.key_store {
        println!(
            "Issuer keys: PKCS#11 token {:?} (SoftHSM, {}/hsm), {} key objects, all sensitive and non-extractable: {}",
            k.token,
            state_dir.display(),
            k.objects,
            k.all_sensitive_and_not_extractable
        );
    }
    println!();
    println!(
        "{:<10} {:<13} {:<17} {:<4} {:>9} {:>8}  {:<13} outcome",
        "tracking", "batch", "serial", "PA", "impostor", "genuine", "status"
    );
    for o in &s.outcomes {
        let score = |v: Option<f64>, d: &Option<String>| match (v, d) {
            (Some(v), Some(d)) if d == "refused" || d == "match" => format!("{v:.3}"),
            (Some(v), _) => format!("{v:.3}!"),
            (None, Some(d)) => d.clone(),
            (None, None) => "-".into(),
        };
        let outcome = match (&o.outcome, &o.reason) {
            (text, Some(reason)) if o.state != "personalized" => format!("{text}: {reason}"),
            (text, _) => text.clone(),
        };
        println!(
            "{:<10} {:<13} {:<17} {:<4} {:>9} {:>8}  {:<13} {}",
            o.tracking_code,
            o.state,
            o.serial.as_deref().unwrap_or("-"),
            o.passive_auth.as_deref().unwrap_or("-"),
            score(o.impostor_score, &o.impostor_decision),
            score(o.genuine_score, &o.genuine_decision),
            o.status.as_deref().unwrap_or("-"),
            outcome
        );
    }
    println!();
    if !s.history.is_empty() {
        println!();
        println!("After production (status.lookup by tracking code; document.status as a verifier sees the card):");
        for h in &s.history {
            println!(
                "  {:<12} {:<60} status {:<12} document {}",
                h.tracking_code,
                h.step,
                h.status,
                h.document_status.as_deref().unwrap_or("-")
            );
        }
    }
    println!("PA: passive authentication at delivery.begin. Scores: impostor = another person's finger (must be refused), genuine = a second impression of the holder's finger (head_verification: a household member's card collected by the verified household head). status: status.lookup by tracking code.");
    println!(
        "records {}  personalized {}  qc_failed {}  failed {}  delivered {} ({} collected by the household head)  impostors refused {}  terminated {}",
        s.records, s.personalized, s.qc_failed, s.failed, s.delivered, s.household_handovers, s.impostors_refused, s.terminated
    );
    println!(
        "batch: {:.1} s, {:.0} cards/min on {} reader(s)",
        s.batch_seconds, s.cards_per_minute, s.readers
    );
    for l in &s.latency {
        println!(
            "  {:<18} {:>4} calls  p50 {:>7.1} ms  p99 {:>7.1} ms",
            l.method, l.calls, l.p50_ms, l.p99_ms
        );
    }
    println!("  delivery.verify split (mean ms): {}", s.verify_split_ms);
    if kept {
        println!(
            "state (PKI, journal, audit log, cards) kept in {}; check the audit chain with `idcardd audit verify --state-dir {}`",
            state_dir.display(),
            state_dir.display()
        );
    }
}
