//! `idcardd card`: card-level tools: `card info`; `card terminate` and `card unblock`, which
//! run the same code as the API methods (`issuance::delivery`) on a local service and journal to
//! the state directory's audit trail.

use std::path::PathBuf;

use apdu::card::{CardInfo, IdCard};

use issuance::readers;

/// Subcommands of `idcardd card`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show the card's ATR, serial, life-cycle state and the application's files.
    Info(InfoArgs),
    /// End a lost, stolen, replaced or damaged card for good (TERMINATE CARD USAGE).
    Terminate(TerminateArgs),
    /// Unblock the PIN with the PUK and set a new PIN (PUK from --puk-file, $IDCARDD_PUK or
    /// stdin; new PIN from --pin-file, $IDCARDD_NEW_PIN or stdin).
    Unblock(UnblockArgs),
}

/// Where a local card operation runs and journals.
#[derive(Debug, clap::Args)]
pub struct LocalArgs {
    /// Reader: a PC/SC reader name (see `idcardd readers`) or `sim:N`.
    #[arg(long, short)]
    pub reader: String,
    /// The daemon's state directory (audit trail, delivery state).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Directory of the simulated cards' state (default: $XDG_STATE_HOME/idcardd/sim).
    #[arg(long)]
    pub sim_dir: Option<PathBuf>,
    /// A daemon configuration file whose `[keys]` section names the issuer's token (default:
    /// the embedded SoftHSM token of the state directory).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Arguments of `idcardd card terminate`.
#[derive(Debug, clap::Args)]
pub struct TerminateArgs {
    /// Reader, state and sim directories.
    #[command(flatten)]
    pub local: LocalArgs,
    /// Why: lost, stolen, replaced or damaged.
    #[arg(long, value_parser = parse_reason)]
    pub reason: issuance::delivery::TerminateReason,
}

/// Arguments of `idcardd card unblock`.
#[derive(Debug, clap::Args)]
pub struct UnblockArgs {
    /// Reader, state and sim directories.
    #[command(flatten)]
    pub local: LocalArgs,
    /// File whose first line is the PUK.
    #[arg(long)]
    pub puk_file: Option<PathBuf>,
    /// File whose first line is the new PIN.
    #[arg(long)]
    pub pin_file: Option<PathBuf>,
}

fn parse_reason(s: &str) -> Result<issuance::delivery::TerminateReason, String> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|_| format!("{s:?}: expected lost, stolen, replaced or damaged"))
}

/// A service over the one reader of `args`.
fn local_service(args: &LocalArgs) -> anyhow::Result<crate::service::Service> {
    let state = args
        .state_dir
        .clone()
        .unwrap_or_else(crate::server::config::default_state_dir);
    let mut config = crate::service::ServiceConfig::new(state, vec![args.reader.clone()]);
    config.keys = super::keys::configured_keys(args.config.as_deref())?;
    config.sim_dir = args
        .sim_dir
        .clone()
        .unwrap_or_else(readers::default_sim_dir);
    crate::service::Service::open(config)
}

/// `idcardd card terminate`.
fn terminate(args: TerminateArgs) -> anyhow::Result<()> {
    let svc = local_service(&args.local)?;
    let r = issuance::delivery::terminate(&svc.desk(), &args.local.reader, args.reason)
        .map_err(crate::api::ApiError::from)
        .map_err(|e| anyhow::anyhow!("{} [{}]", e.message, e.code.name()))?;
    println!(
        "card {} terminated ({}; was {})",
        r.serial,
        r.reason.name(),
        r.was
    );
    Ok(())
}

/// `idcardd card unblock`.
fn unblock(args: UnblockArgs) -> anyhow::Result<()> {
    use super::delivery::read_secret;
    let puk = read_secret("PUK", args.puk_file.as_deref(), "IDCARDD_PUK")?;
    let new_pin = read_secret("new PIN", args.pin_file.as_deref(), "IDCARDD_NEW_PIN")?;
    let svc = local_service(&args.local)?;
    let r = issuance::delivery::unblock(&svc.desk(), &args.local.reader, puk, new_pin)
        .map_err(crate::api::ApiError::from)
        .map_err(|e| anyhow::anyhow!("{} [{}]", e.message, e.code.name()))?;
    println!("card {} unblocked", r["serial"].as_str().unwrap_or("-"));
    Ok(())
}

/// Arguments of `idcardd card info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Reader: a PC/SC reader name (see `idcardd readers`) or `sim:N`.
    #[arg(long, short)]
    pub reader: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Directory of the simulated cards' state (default: $XDG_STATE_HOME/idcardd/sim).
    #[arg(long)]
    pub sim_dir: Option<PathBuf>,
}

/// Runs `idcardd card`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Info(args) => info(args),
        Command::Terminate(args) => terminate(args),
        Command::Unblock(args) => unblock(args),
    }
}

/// `idcardd card info`.
fn info(args: InfoArgs) -> anyhow::Result<()> {
    let sim_dir = args.sim_dir.unwrap_or_else(readers::default_sim_dir);
    let transport = readers::open_or_blank(&args.reader, &sim_dir)?;
    let info = IdCard::new(transport)
        .info()
        .map_err(|e| anyhow::anyhow!("reading card info from {:?}: {e}", args.reader))?;
    if args.json {
        println!("{}", crate::api::card_info::to_json(&args.reader, &info));
    } else {
        print!("{}", to_text(&args.reader, &info));
    }
    Ok(())
}

/// Card info as text.
pub fn to_text(reader: &str, info: &CardInfo) -> String {
    let mut out = format!(
        "Reader:      {reader}\nATR:         {}\nSerial:      {}\nLife cycle:  {:?} ({:02X})\n",
        hex::encode_upper(&info.atr),
        hex::encode_upper(info.serial),
        info.life_cycle,
        u8::from(info.life_cycle)
    );
    if info.files.is_empty() {
        out.push_str("Files:       none\n");
    } else {
        out.push_str("Files:\n");
        for (fid, size) in &info.files {
            match size {
                Some(n) => out.push_str(&format!("  EF {fid:04X}  {n} bytes\n")),
                None => out.push_str(&format!("  EF {fid:04X}  size unknown\n")),
            }
        }
    }
    out
}
