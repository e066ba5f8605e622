//! The event side: the PUB socket, PC/SC hot-plug, and `pcsc` in the reader list.
//!
//! Every [`issuance::events::Events`] event goes out on the PUB socket as two frames, the topic
//! (`reader.attached`, `card.inserted`, ...) and its JSON body, so a subscriber can filter by
//! topic prefix. The PUB socket belongs to the I/O thread (libzmq sockets are not thread-safe):
//! [`forward`] carries events to it, and [`publish`] sends without waiting. PC/SC readers report hot-plug through [`apdu::transport::pcsc::ReaderMonitor`];
//! simulated readers have no hot-plug (their card is always present) and send no such events.

use std::sync::Arc;
use std::time::Duration;

use apdu::transport::pcsc::{Pcsc, ReaderEvent, ReaderMonitor};
use serde_json::json;

use super::background::Background;
use crate::service::Service;
use issuance::events::Event;

/// Replaces the name `pcsc` in a reader list by every PC/SC reader present now.
pub fn expand_pcsc(names: Vec<String>) -> anyhow::Result<Vec<String>> {
    if !names.iter().any(|n| n == "pcsc") {
        return Ok(names);
    }
    let present = Pcsc::establish()
        .and_then(|p| p.list_readers())
        .map_err(issuance::Error::from)?;
    let mut out = Vec::new();
    for name in names {
        if name == "pcsc" {
            out.extend(present.iter().map(|r| r.name.clone()));
        } else {
            out.push(name);
        }
    }
    out.dedup();
    if out.is_empty() {
        anyhow::bail!("readers = [\"pcsc\"] but pcscd reports no reader: plug one in or use sim:N");
    }
    Ok(out)
}

/// Sends one event on the PUB socket without waiting: a subscriber that does not keep up loses
/// it (PUB drops at its high-water mark).
pub fn publish(socket: &zmq::Socket, event: &Event) {
    let body = event.body.to_string();
    let frames = [event.topic.as_bytes(), body.as_bytes()];
    if let Err(e) = socket.send_multipart(frames, zmq::DONTWAIT) {
        tracing::debug!("event not published: {e}");
    }
}

pub use issuance::events::forward;

/// The topic and body of a hot-plug event.
pub fn hot_plug_event(event: &ReaderEvent) -> (&'static str, serde_json::Value) {
    match event {
        ReaderEvent::ReaderAdded { reader } => ("reader.attached", json!({"reader": reader})),
        ReaderEvent::ReaderRemoved { reader } => ("reader.removed", json!({"reader": reader})),
        ReaderEvent::CardInserted { reader, atr } => (
            "card.inserted",
            json!({"reader": reader, "atr": hex::encode_upper(atr)}),
        ),
        ReaderEvent::CardRemoved { reader } => ("card.removed", json!({"reader": reader})),
        ReaderEvent::ServiceStopped => ("pcsc.stopped", json!({})),
    }
}

/// A thread relaying PC/SC hot-plug events to [`issuance::events::Events`]; stops on drop.
pub struct HotPlug {
    /// The relay thread, stopped on drop.
    _thread: Background,
}

impl HotPlug {
    /// Starts relaying when any configured reader is a PC/SC reader; `None` for simulated
    /// readers only, or when pcscd cannot be reached (logged).
    pub fn start(svc: &Arc<Service>) -> Option<HotPlug> {
        let names = svc.readers.names();
        if names
            .iter()
            .all(|n| n.starts_with(issuance::readers::SIM_PREFIX))
        {
            return None;
        }
        let monitor = match ReaderMonitor::start() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("no PC/SC hot-plug events: {e}");
                return None;
            }
        };
        let svc = svc.clone();
        let thread = Background::spawn("hot-plug", move |stop| {
            while !stop.is_set() {
                match monitor.events().recv_timeout(Duration::from_millis(200)) {
                    Ok(event) => {
                        let stopped = event == ReaderEvent::ServiceStopped;
                        let (topic, body) = hot_plug_event(&event);
                        svc.events.publish(topic, body);
                        if stopped {
                            tracing::warn!("pcscd stopped: no more hot-plug events");
                            return;
                        }
                    }
                    Err(e) if e.is_timeout() => {}
                    Err(_) => return,
                }
            }
        })
        .ok()?;
        Some(HotPlug { _thread: thread })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_plug_topics() {
        let (topic, body) = hot_plug_event(&ReaderEvent::CardInserted {
            reader: "R".into(),
            atr: vec![0x3B, 0x80],
        });
        assert_eq!(topic, "card.inserted");
        assert_eq!(body, json!({"reader": "R", "atr": "3B80"}));
        assert_eq!(
            hot_plug_event(&ReaderEvent::ReaderRemoved { reader: "R".into() }).0,
            "reader.removed"
        );
    }

    #[test]
    fn sim_lists_need_no_pcscd() {
        let names = vec!["sim:0".to_string(), "sim:1".to_string()];
        assert_eq!(expand_pcsc(names.clone()).unwrap(), names);
    }
}
