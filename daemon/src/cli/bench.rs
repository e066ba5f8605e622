//! `idcardd bench`.

/// Subcommands of `idcardd bench`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

/// Runs `idcardd bench`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {}
}
