//! `idcardd readers`.

/// Arguments of `idcardd readers`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `idcardd readers`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("idcardd readers is not built yet")
}
