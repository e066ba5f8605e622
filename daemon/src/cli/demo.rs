//! `idcardd demo`.

/// Arguments of `idcardd demo`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `idcardd demo`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("idcardd demo is not built yet")
}
