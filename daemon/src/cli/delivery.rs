//! `idcardd delivery`: the delivery office from a terminal, through the running daemon's
//! socket (sessions live in the daemon): `begin`, `verify`, `activate`; and
//! `reset-attempts`, the supervisor's override after the attempt limit.
//!
//! PINs are never command-line arguments (other users see those in `ps`): they come from a
//! file, an environment variable, or standard input ([`read_secret`]), into zeroized buffers.
//! The JSON text of the request that carries them to the daemon is an ordinary string (the
//! client does not zeroize it).

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::client::{Answer, Client};

/// Subcommands of `idcardd delivery`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Read and authenticate the card in a reader; print the holder summary and a session id.
    Begin(BeginArgs),
    /// Household delivery: on the household head's verified session, read a member's card
    /// in another reader and open its session (activate it with the member's PIN).
    Handover(HandoverArgs),
    /// Compare live scan(s) with the chip's templates in a session.
    Verify(VerifyArgs),
    /// Set the holder's PIN and activate the verified card (new PIN from --pin-file,
    /// $IDCARDD_NEW_PIN or standard input).
    Activate(ActivateArgs),
    /// Supervisor: clear the failed fingerprint attempts of a card (after checking the holder
    /// another way). Works on the state directory directly.
    ResetAttempts(ResetArgs),
}

/// How to reach the daemon.
#[derive(Debug, clap::Args)]
pub struct Connection {
    /// Request endpoint of `idcardd serve` (default: the daemon's default ipc socket).
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Seconds to wait for an answer.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// Print the raw JSON result.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `idcardd delivery handover`.
#[derive(Debug, clap::Args)]
pub struct HandoverArgs {
    /// The household head's verified delivery session.
    #[arg(long)]
    pub session: String,
    /// The reader holding the member's card.
    #[arg(long, short)]
    pub reader: String,
    /// Write the face image from the member's chip here.
    #[arg(long)]
    pub face_out: Option<PathBuf>,
    /// Daemon connection.
    #[command(flatten)]
    pub conn: Connection,
}

/// Arguments of `idcardd delivery begin`.
#[derive(Debug, clap::Args)]
pub struct BeginArgs {
    /// The reader holding the card.
    #[arg(long, short)]
    pub reader: String,
    /// Write the face image from the chip here.
    #[arg(long)]
    pub face_out: Option<PathBuf>,
    /// Daemon connection.
    #[command(flatten)]
    pub conn: Connection,
}

/// Arguments of `idcardd delivery verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The session from `delivery begin`.
    #[arg(long)]
    pub session: String,
    /// A live scan as FINGER:FILE (ISO finger position 1-10, image file); repeat to combine
    /// fingers into one decision.
    #[arg(long = "scan", required = true, value_parser = parse_scan)]
    pub scans: Vec<(u8, PathBuf)>,
    /// Resolution of the scans.
    #[arg(long, default_value_t = 500)]
    pub dpi: u32,
    /// Daemon connection.
    #[command(flatten)]
    pub conn: Connection,
}

/// Arguments of `idcardd delivery activate`.
#[derive(Debug, clap::Args)]
pub struct ActivateArgs {
    /// The session from `delivery begin`, verified.
    #[arg(long)]
    pub session: String,
    /// File whose first line is the holder's new PIN (else $IDCARDD_NEW_PIN, else stdin).
    #[arg(long)]
    pub pin_file: Option<PathBuf>,
    /// File whose first line is the transport PIN from the holder's PIN letter (else
    /// $IDCARDD_TRANSPORT_PIN if set, else the daemon looks it up).
    #[arg(long)]
    pub transport_pin_file: Option<PathBuf>,
    /// Daemon connection.
    #[command(flatten)]
    pub conn: Connection,
}

/// Arguments of `idcardd delivery reset-attempts`.
#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// Card serial (hex, as `delivery begin` prints it).
    #[arg(long)]
    pub serial: String,
    /// Who authorizes the reset (journaled).
    #[arg(long)]
    pub supervisor: String,
    /// The daemon's state directory.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The daemon's configuration: its `[keys]` token, and on a line its shared journal
    /// (the attempts are the line's, the audit entry goes to this station's chain).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

fn parse_scan(s: &str) -> Result<(u8, PathBuf), String> {
    let (finger, file) = s
        .split_once(':')
        .ok_or_else(|| format!("expected FINGER:FILE, e.g. 2:scan.png, not {s:?}"))?;
    let finger: u8 = finger
        .parse()
        .ok()
        .filter(|f| *f <= 10)
        .ok_or_else(|| format!("finger {finger:?} is not a finger position 0-10"))?;
    Ok((finger, PathBuf::from(file)))
}

/// Reads a secret: the first line of `file` if given, else environment variable `env` if set,
/// else one line of standard input. Never from the command line.
pub fn read_secret(
    what: &str,
    file: Option<&Path>,
    env: &str,
) -> anyhow::Result<Zeroizing<String>> {
    let raw = if let Some(path) = file {
        Zeroizing::new(
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?,
        )
    } else if let Some(v) = std::env::var_os(env) {
        Zeroizing::new(
            v.into_string()
                .map_err(|_| anyhow::anyhow!("${env} is not UTF-8"))?,
        )
    } else {
        eprintln!("{what} (then Enter):");
        let mut line = Zeroizing::new(String::new());
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .with_context(|| format!("reading the {what} from standard input"))?;
        line
    };
    let value = Zeroizing::new(raw.lines().next().unwrap_or("").trim().to_string());
    if value.is_empty() {
        anyhow::bail!("no {what} given");
    }
    Ok(value)
}

/// The daemon's default request endpoint.
fn default_endpoint() -> String {
    format!(
        "ipc://{}",
        crate::server::config::default_runtime_dir()
            .join("idcardd.sock")
            .display()
    )
}

/// Calls one method on the daemon.
pub(crate) fn call(
    conn: &Connection,
    method: &str,
    params: Value,
    frames: Vec<Vec<u8>>,
) -> anyhow::Result<Answer> {
    let endpoint = conn.endpoint.clone().unwrap_or_else(default_endpoint);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut client = Client::connect(&endpoint, Duration::from_secs(conn.timeout)).await?;
        client
            .call(method, params, frames)
            .await
            .map_err(|e| anyhow::anyhow!("{} [{}]", e.message, e.name))
    })
}

/// Runs `idcardd delivery`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Begin(args) => begin(args),
        Command::Handover(args) => {
            let answer = call(
                &args.conn,
                "delivery.handover",
                json!({"session": args.session, "reader": args.reader}),
                vec![],
            )?;
            print_opened(&answer, args.face_out.as_deref(), args.conn.json)
        }
        Command::Verify(args) => verify(args),
        Command::Activate(args) => activate(args),
        Command::ResetAttempts(args) => reset_attempts(args),
    }
}

fn begin(args: BeginArgs) -> anyhow::Result<()> {
    let answer = call(
        &args.conn,
        "delivery.begin",
        json!({"reader": args.reader}),
        vec![],
    )?;
    print_opened(&answer, args.face_out.as_deref(), args.conn.json)
}

/// Prints a session opened on a card (delivery.begin, delivery.handover): the holder summary
/// and the session id; the face image to `face_out`.
fn print_opened(
    answer: &Answer,
    face_out: Option<&std::path::Path>,
    json: bool,
) -> anyhow::Result<()> {
    let r = &answer.result;
    if let (Some(path), Some(face)) = (face_out, answer.frames.first()) {
        std::fs::write(path, face).with_context(|| format!("writing {}", path.display()))?;
    }
    if json {
        println!("{}", serde_json::to_string_pretty(r)?);
        return Ok(());
    }
    let h = &r["holder"];
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    println!("Session:      {}", s(&r["session"]));
    println!("Card serial:  {}", s(&r["serial"]));
    println!("Document:     {}", s(&h["document_number"]));
    println!(
        "Name:         {} {}",
        s(&h["given_names"]),
        s(&h["surname"])
    );
    println!(
        "Name (Latin): {} {}",
        s(&h["given_names_latin"]),
        s(&h["surname_latin"])
    );
    println!(
        "Born:         {}   Expires: {}",
        s(&h["birth_date"]),
        s(&h["expiry_date"])
    );
    println!("Fingers:      {}", h["fingers"]);
    println!(
        "Signed by:    {} (CSCA {})",
        s(&r["passive_auth"]["ds_subject"]),
        s(&r["passive_auth"]["csca_subject"])
    );
    println!("Attempts left: {}", r["attempts_left"]);
    if r["activation_pending"] == true {
        println!("An earlier activation was interrupted: verify and activate to complete it.");
    }
    Ok(())
}

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let mut frames = Vec::new();
    let mut scans = Vec::new();
    for (i, (finger, path)) in args.scans.iter().enumerate() {
        frames.push(std::fs::read(path).with_context(|| format!("reading {}", path.display()))?);
        scans.push(json!({"finger": finger, "frame": i, "dpi": args.dpi}));
    }
    let answer = call(
        &args.conn,
        "delivery.verify",
        json!({"session": args.session, "scans": scans}),
        frames,
    )?;
    let r = &answer.result;
    if args.conn.json {
        println!("{}", serde_json::to_string_pretty(r)?);
    } else {
        println!(
            "MATCH: score {:.3} >= {:.3}; activate within {} s",
            r["score"].as_f64().unwrap_or(0.0),
            r["threshold"].as_f64().unwrap_or(0.0),
            r["activate_within_s"]
        );
    }
    Ok(())
}

fn activate(args: ActivateArgs) -> anyhow::Result<()> {
    let new_pin = read_secret("new PIN", args.pin_file.as_deref(), "IDCARDD_NEW_PIN")?;
    let transport = match (
        &args.transport_pin_file,
        std::env::var_os("IDCARDD_TRANSPORT_PIN"),
    ) {
        (None, None) => None,
        (file, _) => Some(read_secret(
            "transport PIN",
            file.as_deref(),
            "IDCARDD_TRANSPORT_PIN",
        )?),
    };
    let mut params = json!({"session": args.session, "new_pin": new_pin.as_str()});
    if let Some(t) = &transport {
        params["transport_pin"] = Value::String(t.to_string());
    }
    // The JSON text of the request is not zeroized by the client (see the module notes).
    let result = call(&args.conn, "delivery.activate", params, vec![]);
    let r = result?.result;
    if args.conn.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "DELIVERED: card {} is activated",
            r["serial"].as_str().unwrap_or("-")
        );
        if r["pin_already_set"] == true {
            println!("note: the PIN chosen in the interrupted attempt is in force");
        }
    }
    Ok(())
}

fn reset_attempts(args: ResetArgs) -> anyhow::Result<()> {
    let file = args
        .config
        .as_deref()
        .map(crate::server::config::FileConfig::load)
        .transpose()?;
    let dir = args
        .state_dir
        .or_else(|| file.as_ref().and_then(|f| f.state_dir.clone()))
        .unwrap_or_else(crate::server::config::default_state_dir);
    let mut config = crate::service::ServiceConfig::new(dir.clone(), Vec::new());
    if let Some(file) = file {
        config.journal = file.journal_config()?;
        config.keys = file.keys;
    }
    let store = issuance::delivery::DeliveryStore::on(
        config
            .journal
            .db(&dir, issuance::delivery::store::DB_FILE)?,
    )
    .with_context(|| format!("opening the delivery state of {}", dir.display()))?;
    let serial = args.serial.to_ascii_uppercase();
    let before = store.card(&serial)?.failed_attempts;
    store.reset_attempts(&serial)?;
    let keys = std::sync::Arc::new(crate::service::open_key_store(&dir, config.keys.as_ref())?);
    let audit = crate::service::open_audit(&config, None, keys)?;
    audit.append(
        "delivery.attempts_reset",
        json!({"serial": serial, "supervisor": args.supervisor, "failed_attempts": before}),
    )?;
    println!("card {serial}: {before} failed attempts cleared");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_parse_as_finger_and_file() {
        assert_eq!(parse_scan("2:a.png").unwrap(), (2, PathBuf::from("a.png")));
        assert!(parse_scan("a.png").is_err());
        assert!(parse_scan("11:a.png").is_err());
    }

    #[test]
    fn secrets_come_from_a_file_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin");
        std::fs::write(&path, "4829\n").unwrap();
        assert_eq!(
            read_secret("PIN", Some(&path), "IDCARDD_TEST_UNSET")
                .unwrap()
                .as_str(),
            "4829"
        );
        std::fs::write(&path, "\n").unwrap();
        assert!(read_secret("PIN", Some(&path), "IDCARDD_TEST_UNSET").is_err());
    }
}
