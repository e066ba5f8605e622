//! `idcardd card`.

/// Subcommands of `idcardd card`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

/// Runs `idcardd card`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {}
}
