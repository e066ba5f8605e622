//! `idcardd cards dispatch|receive|report-lost|status`: a card's way after production, through
//! the daemon (see `docs/api.md`: `dispatch.create`, `dispatch.receive`, `card.report_lost`,
//! `document.status`).

use serde_json::{json, Value};

use super::delivery::{call, Connection};

/// Subcommands of `idcardd cards`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Send produced cards to an office as one dispatch; prints the dispatch id and manifest.
    Dispatch {
        /// The office the cards go to.
        #[arg(long)]
        office: String,
        /// Card serials (hex).
        #[arg(required = true)]
        serials: Vec<String>,
        /// Daemon connection.
        #[command(flatten)]
        conn: Connection,
    },
    /// Scan in the cards of a dispatch at the office; reports missing and unexpected cards.
    Receive {
        /// The dispatch id.
        dispatch_id: String,
        /// Card serials scanned in.
        serials: Vec<String>,
        /// The receiving office (default: the station's `[delivery] office`).
        #[arg(long)]
        office: Option<String>,
        /// Daemon connection.
        #[command(flatten)]
        conn: Connection,
    },
    /// Revoke a card reported lost or stolen (by document number).
    ReportLost {
        /// The card's document number.
        document_number: String,
        /// `lost` or `stolen`.
        #[arg(long, default_value = "lost")]
        reason: String,
        /// Daemon connection.
        #[command(flatten)]
        conn: Connection,
    },
    /// Is the card with this document number valid? (valid, not_delivered, revoked,
    /// superseded, expired, unknown)
    Status {
        /// The document number.
        document_number: String,
        /// Daemon connection.
        #[command(flatten)]
        conn: Connection,
    },
}

/// Runs `idcardd cards`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    let (conn, method, params) = match cmd {
        Command::Dispatch {
            office,
            serials,
            conn,
        } => (
            conn,
            "dispatch.create",
            json!({"office": office, "serials": serials}),
        ),
        Command::Receive {
            dispatch_id,
            serials,
            office,
            conn,
        } => {
            let mut p = json!({"dispatch_id": dispatch_id, "serials": serials});
            if let Some(office) = office {
                p["office"] = office.into();
            }
            (conn, "dispatch.receive", p)
        }
        Command::ReportLost {
            document_number,
            reason,
            conn,
        } => (
            conn,
            "card.report_lost",
            json!({"document_number": document_number, "reason": reason}),
        ),
        Command::Status {
            document_number,
            conn,
        } => (
            conn,
            "document.status",
            json!({"document_number": document_number}),
        ),
    };
    let answer = call(&conn, method, params, vec![])?;
    if conn.json {
        println!("{}", serde_json::to_string_pretty(&answer.result)?);
    } else {
        print!("{}", text(method, &answer.result));
    }
    Ok(())
}

/// The answer of `method` for a person.
fn text(method: &str, r: &Value) -> String {
    let s = |v: &Value| v.as_str().unwrap_or("-").to_string();
    let serials = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|c| {
                        c["serial"]
                            .as_str()
                            .or(c.as_str())
                            .unwrap_or("-")
                            .to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    match method {
        "dispatch.create" => format!(
            "dispatch {} to {}: {}\n",
            s(&r["dispatch_id"]),
            s(&r["office"]),
            serials(&r["cards"])
        ),
        "dispatch.receive" => format!(
            "dispatch {} at {}\n  received:         {}\n  already received: {}\n  missing:          {}\n  unexpected:       {}\n",
            s(&r["dispatch_id"]),
            s(&r["office"]),
            serials(&r["received"]),
            serials(&r["already_received"]),
            serials(&r["missing"]),
            serials(&r["unexpected"])
        ),
        "card.report_lost" => format!("card {} revoked ({})\n", s(&r["serial"]), s(&r["reason"])),
        _ => format!("{}: {}\n", s(&r["document_number"]), s(&r["status"])),
    }
}
