//! `idcardd mailer print`: the PIN letters for the print shop, decrypted with the token's
//! mailer key (see [`issuance::personalize::PinMailer`]). This is the only command that shows
//! transport PINs and PUKs; everything else keeps them sealed.

use std::io::Write as _;

use issuance::personalize::PinMailer;

use super::audit::StoreArgs;

/// Subcommands of `idcardd mailer`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Print the PIN letters (the latest of each card, in the order the cards were written) on
    /// stdout. Fails, printing nothing, if any letter does not open with the token's key.
    Print(PrintArgs),
}

/// Arguments of `idcardd mailer print`.
#[derive(Debug, clap::Args)]
pub struct PrintArgs {
    /// The state directory (holds pin-mailer.jsonl) and the key store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only the letter of this card serial (hex).
    #[arg(long)]
    pub serial: Option<String>,
    /// One JSON object per letter.
    #[arg(long)]
    pub json: bool,
}

/// Runs `idcardd mailer`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Print(args) => print(args),
    }
}

fn print(args: PrintArgs) -> anyhow::Result<()> {
    let (dir, store) = args.store.open()?;
    let path = dir.join(issuance::batch::PIN_MAILER_FILE);
    if !path.is_file() {
        anyhow::bail!("no PIN mailer file in {}", dir.display());
    }
    let letters = PinMailer::letters(&path, &store, args.serial.as_deref())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if letters.is_empty() {
        match &args.serial {
            Some(s) => anyhow::bail!("no PIN letter for card {s} in {}", path.display()),
            None => anyhow::bail!("{} holds no PIN letters", path.display()),
        }
    }
    let mut out = std::io::stdout().lock();
    for (i, letter) in letters.iter().enumerate() {
        let text = if args.json {
            zeroize::Zeroizing::new(
                serde_json::json!({
                    "tracking_code": letter.tracking_code,
                    "serial": letter.serial,
                    "time_ms": letter.time_ms,
                    "transport_pin": letter.secrets.transport_pin.as_str(),
                    "puk": letter.secrets.puk.as_str(),
                })
                .to_string()
                    + "\n",
            )
        } else {
            let mut t = letter.render();
            if i + 1 < letters.len() {
                t.push('\n');
            }
            t
        };
        out.write_all(text.as_bytes())?;
    }
    out.flush()?;
    Ok(())
}
