//! `idcardd readers`: PC/SC readers with card presence, and simulated readers `sim:N`.

use std::path::PathBuf;

use apdu::transport::pcsc::ReaderEvent;

use issuance::readers::{self, Listing};

/// Arguments of `idcardd readers`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// How many simulated readers (`sim:0` .. `sim:N-1`) to list.
    #[arg(long, default_value_t = 1)]
    pub sim: usize,
    /// Directory of the simulated cards' state (default: $XDG_STATE_HOME/idcardd/sim).
    #[arg(long)]
    pub sim_dir: Option<PathBuf>,
    /// After listing, print PC/SC reader and card events (hot-plug) until interrupted.
    #[arg(long)]
    pub watch: bool,
}

/// Runs `idcardd readers`.
pub fn run(args: Args) -> anyhow::Result<()> {
    let sim_dir = args.sim_dir.unwrap_or_else(readers::default_sim_dir);
    let listing = readers::list(args.sim, &sim_dir);
    if args.json {
        println!("{}", to_json(&listing));
    } else {
        print!("{}", to_text(&listing));
    }
    if args.watch {
        watch(args.json)?;
    }
    Ok(())
}

/// Prints hot-plug events, one per line, until pcscd stops or the process is interrupted.
fn watch(json: bool) -> anyhow::Result<()> {
    let monitor = apdu::transport::pcsc::ReaderMonitor::start().map_err(issuance::Error::from)?;
    for event in monitor.events() {
        println!("{}", event_line(&event, json));
        if event == ReaderEvent::ServiceStopped {
            anyhow::bail!("pcscd stopped");
        }
    }
    Ok(())
}

/// One hot-plug event as a line of text or JSON.
pub fn event_line(event: &ReaderEvent, json: bool) -> String {
    let (kind, reader, atr) = match event {
        ReaderEvent::ReaderAdded { reader } => ("reader_added", reader.as_str(), None),
        ReaderEvent::ReaderRemoved { reader } => ("reader_removed", reader.as_str(), None),
        ReaderEvent::CardInserted { reader, atr } => (
            "card_inserted",
            reader.as_str(),
            Some(hex::encode_upper(atr)),
        ),
        ReaderEvent::CardRemoved { reader } => ("card_removed", reader.as_str(), None),
        ReaderEvent::ServiceStopped => ("service_stopped", "", None),
    };
    if json {
        return serde_json::json!({"event": kind, "reader": reader, "atr": atr}).to_string();
    }
    match atr {
        Some(atr) => format!("{kind} {reader:?} ATR {atr}"),
        None if reader.is_empty() => kind.to_string(),
        None => format!("{kind} {reader:?}"),
    }
}

/// The listing as JSON: `{"pcsc": {"status": .., "readers": [..]}, "sim": [..]}`.
pub fn to_json(l: &Listing) -> serde_json::Value {
    let pcsc = match &l.pcsc {
        Ok(rs) => serde_json::json!({
            "status": "ok",
            "readers": rs.iter().map(|r| serde_json::json!({
                "name": r.name,
                "card_present": r.card_present,
                "atr": r.atr.as_ref().map(hex::encode_upper),
                "exclusive": r.exclusive,
            })).collect::<Vec<_>>(),
        }),
        Err(e) => serde_json::json!({
            "status": if l.pcsc_no_service { "no_service" } else { "error" },
            "error": e,
            "readers": [],
        }),
    };
    let sim: Vec<_> = l
        .sim
        .iter()
        .map(|s| serde_json::json!({"name": s.name, "card_present": true, "state": s.state, "created": s.created}))
        .collect();
    serde_json::json!({ "pcsc": pcsc, "sim": sim })
}

/// The listing as text, one reader per line.
pub fn to_text(l: &Listing) -> String {
    let mut out = String::new();
    match &l.pcsc {
        Ok(rs) if rs.is_empty() => out.push_str("PC/SC: no readers\n"),
        Ok(rs) => {
            out.push_str("PC/SC:\n");
            for r in rs {
                let card = match (&r.card_present, &r.atr) {
                    (true, Some(atr)) => format!("card present, ATR {}", hex::encode_upper(atr)),
                    (true, None) => "card present".to_string(),
                    (false, _) => "no card".to_string(),
                };
                let excl = if r.exclusive {
                    " (in exclusive use)"
                } else {
                    ""
                };
                out.push_str(&format!("  {:<32} {card}{excl}\n", r.name));
            }
        }
        Err(_) if l.pcsc_no_service => out.push_str("PC/SC: no service (pcscd not running)\n"),
        Err(e) => out.push_str(&format!("PC/SC: {e}\n")),
    }
    if !l.sim.is_empty() {
        out.push_str("Simulated:\n");
        for s in &l.sim {
            let state = if s.created {
                "state"
            } else {
                "new card, state will be"
            };
            out.push_str(&format!(
                "  {:<32} card present ({state} in {})\n",
                s.name,
                s.state.display()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use apdu::transport::pcsc::ReaderInfo;

    fn listing(pcsc: Result<Vec<ReaderInfo>, String>, no_service: bool) -> Listing {
        let sim = vec![readers::SimReaderInfo {
            name: "sim:0".into(),
            state: "/s/card-0.json".into(),
            created: false,
        }];
        Listing {
            pcsc,
            pcsc_no_service: no_service,
            sim,
        }
    }

    #[test]
    fn no_service_is_said_plainly_and_sim_readers_still_listed() {
        let l = listing(Err("no PC/SC service: is pcscd running?".into()), true);
        let text = to_text(&l);
        assert!(
            text.starts_with("PC/SC: no service (pcscd not running)\n"),
            "{text}"
        );
        assert!(
            text.contains("sim:0") && text.contains("/s/card-0.json"),
            "{text}"
        );
        assert_eq!(to_json(&l)["pcsc"]["status"], "no_service");
    }

    #[test]
    fn pcsc_readers_show_card_presence_and_atr() {
        let r = |name: &str, atr: Option<Vec<u8>>| ReaderInfo {
            name: name.into(),
            card_present: atr.is_some(),
            atr,
            exclusive: false,
        };
        let l = listing(
            Ok(vec![r("A", Some(vec![0x3B, 0x00])), r("B", None)]),
            false,
        );
        let text = to_text(&l);
        assert!(
            text.contains("card present, ATR 3B00") && text.contains("no card"),
            "{text}"
        );
        let json = to_json(&l);
        assert_eq!(json["pcsc"]["readers"][0]["atr"], "3B00");
        assert_eq!(json["pcsc"]["readers"][1]["card_present"], false);
    }

    #[test]
    fn events_print_as_text_or_json() {
        let ev = ReaderEvent::CardInserted {
            reader: "R".into(),
            atr: vec![0x3B],
        };
        assert_eq!(event_line(&ev, false), "card_inserted \"R\" ATR 3B");
        let v: serde_json::Value = serde_json::from_str(&event_line(&ev, true)).unwrap();
        assert_eq!(
            (v["event"].as_str(), v["reader"].as_str(), v["atr"].as_str()),
            (Some("card_inserted"), Some("R"), Some("3B"))
        );
        assert_eq!(
            event_line(&ReaderEvent::ServiceStopped, false),
            "service_stopped"
        );
    }
}
