//! `idcardd apdu`.

/// Arguments of `idcardd apdu`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs `idcardd apdu`.
pub fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("idcardd apdu is not built yet")
}
