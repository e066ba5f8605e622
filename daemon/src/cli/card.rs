//! `idcardd card`: card-level tools (`card info`).

use std::path::PathBuf;

use apdu::card::{CardInfo, IdCard};

use crate::readers;

/// Subcommands of `idcardd card`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show the card's ATR, serial, life-cycle state and the application's files.
    Info(InfoArgs),
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
    }
}

/// `idcardd card info`.
fn info(args: InfoArgs) -> anyhow::Result<()> {
    let sim_dir = args.sim_dir.unwrap_or_else(readers::default_sim_dir);
    let transport = readers::open(&args.reader, &sim_dir)?;
    let info = IdCard::new(transport)
        .info()
        .map_err(|e| anyhow::anyhow!("reading card info from {:?}: {e}", args.reader))?;
    if args.json {
        println!("{}", to_json(&args.reader, &info));
    } else {
        print!("{}", to_text(&args.reader, &info));
    }
    Ok(())
}

/// Card info as JSON.
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
