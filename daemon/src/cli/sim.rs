//! `idcardd sim`.

/// Subcommands of `idcardd sim`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {}

/// Runs `idcardd sim`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {}
}
