//! `idcardd pki`: the document signing PKI (test CSCA and Document Signer).

use std::path::PathBuf;

use issuance::pki;

/// Subcommands of `idcardd pki`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a TEST-ONLY CSCA and Document Signer in DIR (csca.pem, csca.der, ds.pem, ds.key).
    Init {
        /// Directory to create the files in (created if missing; an existing PKI there is never
        /// overwritten: the command fails instead).
        dir: PathBuf,
    },
}

/// Runs `idcardd pki`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Init { dir } => {
            let files = pki::init(&dir)?;
            // Check what was written the way signing will load it.
            let signer = pki::DocumentSigner::load(&dir)?;
            println!("TEST-ONLY PKI created in {}", dir.display());
            println!("  CSCA:            {}", files.csca_pem.display());
            println!("  CSCA (DER):      {}", files.csca_der.display());
            println!("  Document Signer: {}", files.ds_pem.display());
            println!("  DS private key:  {} (mode 0600)", files.ds_key.display());
            println!("  CSCA subject:    {}", signer.csca().subject());
            Ok(())
        }
    }
}
