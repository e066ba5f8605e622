//! `idcardd serve`: runs the JSON-RPC daemon (see [`crate::server`]).

use std::path::PathBuf;

use crate::server::config::{FileConfig, Overrides, Settings};

/// Arguments of `idcardd serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Configuration file (see idcardd.example.toml); without it, defaults and flags only.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Request endpoint, e.g. ipc:///run/idcardd/idcardd.sock or tcp://127.0.0.1:5555.
    #[arg(long)]
    pub endpoint: Option<String>,
    /// Event (PUB) endpoint.
    #[arg(long)]
    pub events: Option<String>,
    /// Readers: sim:N (N simulated readers), pcsc (every PC/SC reader), or "Name A,Name B".
    #[arg(long)]
    pub readers: Option<String>,
    /// State directory (journal, audit log, simulated cards).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Directory of card profiles (`<name>.toml`) overriding or adding to the built-in ones.
    #[arg(long)]
    pub profiles: Option<PathBuf>,
}

/// Runs `idcardd serve` until SIGTERM or SIGINT.
pub fn run(args: Args) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::default(),
    };
    let flags = Overrides {
        endpoint: args.endpoint,
        events: args.events,
        readers: args.readers,
        state_dir: args.state_dir,
        profiles_dir: args.profiles,
    };
    crate::server::run(Settings::resolve(file, &flags)?)
}
