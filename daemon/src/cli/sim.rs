//! `idcardd sim`: run a simulated national ID card outside the host process.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use anyhow::Context as _;
use cardsim::vpcd::{self, StopSignal, VpcdConfig, VpcdStats};
use cardsim::{SimCard, SimConfig};

/// Subcommands of `idcardd sim`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Serve a simulated card behind vsmartcard-vpcd (pcscd then shows it in "Virtual PCD 00 00"
    /// for port 35963, "00 01" for 35964) until SIGTERM or Ctrl-C.
    Vpcd(VpcdArgs),
}

/// Arguments of `idcardd sim vpcd`.
#[derive(Debug, clap::Args)]
pub struct VpcdArgs {
    /// vpcd's TCP port (35963 + reader index).
    #[arg(long, default_value_t = vpcd::DEFAULT_PORT)]
    pub port: u16,
    /// Host running pcscd with the vpcd driver.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// The card's state file (created with a new card when missing).
    #[arg(long)]
    pub state: PathBuf,
    /// When creating a new card: short APDUs only (no extended length).
    #[arg(long)]
    pub short_only: bool,
    /// When creating a new card: load it with the card keys the key store of this daemon
    /// state directory derives for its serial (the card maker given the issuer's keys), so the
    /// daemon can personalize it. Without it, the card holds keys from the public TEST masters
    /// (`cardsim::fixtures`), which only tests and tools without an issuer use.
    #[arg(long)]
    pub keys_state_dir: Option<PathBuf>,
}

/// Runs `idcardd sim`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Vpcd(args) => serve_vpcd(args),
    }
}

/// `idcardd sim vpcd`: the bridge on this thread; SIGTERM/SIGINT stop it cleanly.
fn serve_vpcd(args: VpcdArgs) -> anyhow::Result<()> {
    let mut config = SimConfig {
        extended_length: !args.short_only,
        ..SimConfig::default()
    };
    if let Some(dir) = &args.keys_state_dir {
        config.keys = std::sync::Arc::new(crate::service::open_key_store(dir, None)?);
    } else if !args.state.exists() {
        tracing::warn!(
            "the new card holds keys from the public TEST masters: give --keys-state-dir to key \
             it for a daemon"
        );
    }
    let config = if args.short_only {
        SimConfig {
            max_command_data: 255,
            max_response_data: 256,
            ..config
        }
    } else {
        config
    };
    let mut card = SimCard::open_or_create(&args.state, config)
        .with_context(|| format!("cannot open the simulated card {}", args.state.display()))?;
    let stop = StopSignal::new();
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.flag())
            .context("cannot install the signal handler")?;
    }
    let vpcd_config = VpcdConfig {
        host: args.host.clone(),
        port: args.port,
        ..VpcdConfig::default()
    };
    let stats = VpcdStats::default();
    tracing::info!(
        "simulated card {} ({}) waiting for vpcd at {}:{}",
        hex::encode_upper(card.serial()),
        args.state.display(),
        args.host,
        args.port
    );
    vpcd::run(&mut card, &vpcd_config, &stop, &stats)
        .with_context(|| format!("vpcd bridge to {}:{}", args.host, args.port))?;
    tracing::info!(
        "stopped after {} connections and {} APDUs",
        stats.connections.load(Ordering::Relaxed),
        stats.apdus.load(Ordering::Relaxed)
    );
    Ok(())
}
