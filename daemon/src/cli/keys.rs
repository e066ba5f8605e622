//! `idcardd keys init|list`: the issuer's keys in the PKCS#11 token (see the `keystore` crate).
//!
//! Without `--config`, the embedded SoftHSM token of the state directory (`STATE/hsm`); with
//! it, the `[keys]` section of a daemon configuration file (a production HSM). Nothing here
//! prints, logs or writes a key's value: the token never gives one.

use std::path::PathBuf;

use anyhow::Context as _;
use keystore::{KeyStore, KeyStoreConfig};

use crate::server::config::{default_state_dir, FileConfig};

/// Subcommands of `idcardd keys`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create the embedded SoftHSM token of a state directory (its own SOFTHSM2_CONF under
    /// STATE/hsm; nothing under /etc or /var) or, with --config, use the configured token; then
    /// generate every missing key, sensitive and non-extractable, and print their labels.
    Init(Args),
    /// Show the token's keys: labels, ids, types, mechanisms, attributes. Never key bytes.
    List(ListArgs),
}

/// Where the token is.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The daemon's state directory (default: the daemon's default state directory).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// A daemon configuration file whose `[keys]` section names the token (a production HSM).
    #[arg(long)]
    pub config: Option<PathBuf>,
}

/// Arguments of `idcardd keys list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Where the token is.
    #[command(flatten)]
    pub at: Args,
    /// One JSON array instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The `[keys]` section of `--config`, if given and present.
fn configured(args: &Args) -> anyhow::Result<(PathBuf, Option<KeyStoreConfig>)> {
    let file = match &args.config {
        Some(path) => Some(FileConfig::load(path)?),
        None => None,
    };
    let state_dir = args
        .state_dir
        .clone()
        .or_else(|| file.as_ref().and_then(|f| f.state_dir.clone()))
        .unwrap_or_else(default_state_dir);
    Ok((state_dir, file.and_then(|f| f.keys)))
}

/// Opens the token `args` names (for `list`, which never creates anything).
fn open(args: &Args) -> anyhow::Result<KeyStore> {
    let (state_dir, keys) = configured(args)?;
    let config = keys.unwrap_or_else(|| KeyStoreConfig::embedded(&state_dir));
    KeyStore::connect(&config).context("opening the key store")
}

/// Runs `idcardd keys`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Init(args) => init(&args),
        Command::List(args) => list(&args),
    }
}

fn init(args: &Args) -> anyhow::Result<()> {
    let (state_dir, keys) = configured(args)?;
    let (store, report) = match &keys {
        Some(config) => keystore::init_configured(config),
        None => {
            crate::service::private_dir(&state_dir)?;
            keystore::init_embedded(&state_dir)
        }
    }
    .context("keys init")?;
    let problems = store.check()?;
    if report.token_created {
        println!("token {:?} created", report.token);
    } else {
        println!("token {:?}", report.token);
    }
    if let Some(conf) = &report.softhsm_conf {
        println!("SoftHSM configuration: {}", conf.display());
    }
    for (label, made) in &report.keys {
        println!("  {label}: {}", if *made { "generated" } else { "present" });
    }
    if !problems.is_empty() {
        for p in &problems {
            eprintln!("error: {p}");
        }
        anyhow::bail!("{} key(s) break the policy", problems.len());
    }
    Ok(())
}

fn flag(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "yes",
        Some(false) => "no",
        None => "-",
    }
}

fn list(args: &ListArgs) -> anyhow::Result<()> {
    let store = open(&args.at)?;
    let keys = store.list()?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&keys)?);
        return Ok(());
    }
    println!(
        "{:<28} {:<8} {:<15} {:>4} {:<16} {:<9} {:<11} {:<6} actions",
        "label", "class", "type", "bits", "mechanism", "sensitive", "extractable", "local"
    );
    for k in &keys {
        println!(
            "{:<28} {:<8} {:<15} {:>4} {:<16} {:<9} {:<11} {:<6} {}",
            k.label,
            k.class,
            k.key_type,
            k.bits.map_or("-".into(), |b| b.to_string()),
            k.mechanism,
            flag(k.sensitive),
            flag(k.extractable),
            flag(k.local),
            k.allows.join(",")
        );
    }
    for problem in store.check()? {
        eprintln!("problem: {problem}");
    }
    Ok(())
}

/// The `[keys]` section of the daemon configuration file `config`, if one is given and has it:
/// what every command that uses keys (`batch`, `card`, `pki`, `audit`, `mailer`) takes with
/// `--config`; `None` means the embedded token of the state directory.
pub fn configured_keys(config: Option<&std::path::Path>) -> anyhow::Result<Option<KeyStoreConfig>> {
    match config {
        Some(path) => Ok(FileConfig::load(path)?.keys),
        None => Ok(None),
    }
}
