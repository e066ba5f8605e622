//! `idcardd apdu`: send raw APDUs (hex) through the transmit chokepoint and print the decoded
//! responses, like `opensc-tool -s`.

use std::path::PathBuf;

use apdu::transmit::Channel;
use apdu::{Command, RawResponse};

use issuance::readers;

/// Arguments of `idcardd apdu`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Reader: a PC/SC reader name (see `idcardd readers`) or `sim:N`.
    #[arg(long, short)]
    pub reader: String,
    /// Command APDUs in hex (spaces and colons allowed inside one argument), sent in order.
    #[arg(required = true, value_name = "HEX")]
    pub apdus: Vec<String>,
    /// Keep going after a command that does not end in 9000.
    #[arg(long)]
    pub keep_going: bool,
    /// Directory of the simulated cards' state (default: $XDG_STATE_HOME/idcardd/sim).
    #[arg(long)]
    pub sim_dir: Option<PathBuf>,
}

/// Runs `idcardd apdu`. All APDUs are parsed before the reader is opened, so a typo sends
/// nothing.
pub fn run(args: Args) -> anyhow::Result<()> {
    let commands = args
        .apdus
        .iter()
        .map(|h| Command::from_hex(h).map_err(|e| anyhow::anyhow!("APDU {h:?}: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sim_dir = args.sim_dir.unwrap_or_else(readers::default_sim_dir);
    let mut channel = Channel::new(readers::open_or_blank(&args.reader, &sim_dir)?);
    for cmd in &commands {
        println!("> {}", hex::encode_upper(cmd.to_bytes()?));
        let resp = channel
            .transmit(cmd)
            .map_err(|e| anyhow::anyhow!("{}: {e}", args.reader))?;
        println!("< {}", format_response(&resp));
        if !resp.sw.is_success() && !resp.sw.to_bytes().starts_with(&[0x62]) && !args.keep_going {
            anyhow::bail!(
                "card answered {} (use --keep-going to send the rest)",
                resp.sw
            );
        }
    }
    Ok(())
}

/// `DATA SW1SW2 (meaning)`, the data in hex.
pub fn format_response(resp: &RawResponse) -> String {
    if resp.data.is_empty() {
        resp.sw.to_string()
    } else {
        format!("{} {}", hex::encode_upper(&resp.data), resp.sw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use apdu::StatusWord;

    #[test]
    fn responses_print_data_and_the_decoded_status_word() {
        let ok = RawResponse {
            data: vec![0x01, 0xAB],
            sw: StatusWord::Success,
        };
        assert_eq!(
            format_response(&ok),
            format!("01AB {}", StatusWord::Success)
        );
        assert!(format_response(&ok).starts_with("01AB 9000 ("));
        let wrong = RawResponse::status(StatusWord::WrongPin { tries_left: 2 });
        assert!(
            format_response(&wrong).starts_with("63C2 ("),
            "{}",
            format_response(&wrong)
        );
        assert!(format_response(&wrong).contains("2 tries left"));
    }
}
