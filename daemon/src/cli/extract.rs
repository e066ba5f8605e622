//! `idcardd extract`.

/// Arguments of `idcardd extract`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `idcardd extract`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("idcardd extract is not built yet")
}
