//! [`Events`]: what happened, for whoever listens (the daemon's PUB socket, tests).

use serde_json::Value;
use tokio::sync::broadcast;

/// One event on the PUB socket: `topic` is the first frame, `body` (JSON) the second.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// E.g. `reader.attached`, `card.inserted`, `batch.progress`, `card.personalized`.
    pub topic: String,
    /// Event details (never personal data beyond identifiers such as serials and tracking codes).
    pub body: Value,
}

/// Publishes events to whoever listens (the PUB socket task, tests). Never blocks: a slow
/// listener loses old events rather than slowing card work.
#[derive(Debug, Clone)]
pub struct Events {
    sender: broadcast::Sender<Event>,
}

impl Events {
    /// A publisher keeping at most `capacity` undelivered events per listener.
    pub fn new(capacity: usize) -> Events {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Events { sender }
    }

    /// Publishes an event (dropped when nobody listens).
    pub fn publish(&self, topic: &str, body: Value) {
        let _ = self.sender.send(Event {
            topic: topic.to_string(),
            body,
        });
    }

    /// A new listener receiving events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

/// Starts a thread that hands every event to `deliver` until `deliver` returns false or the
/// events' sender is gone (detached: it holds no socket, only what `deliver` holds).
pub fn forward(
    mut events: broadcast::Receiver<Event>,
    deliver: impl Fn(Event) -> bool + Send + 'static,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("idcardd-events".into())
        .spawn(move || loop {
            match events.blocking_recv() {
                Ok(event) => {
                    if !deliver(event) {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!("{n} events dropped: the publisher fell behind");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        })
        .map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_reach_subscribers() {
        let events = Events::new(4);
        let mut rx = events.subscribe();
        events.publish("card.inserted", serde_json::json!({"reader": "sim:0"}));
        let e = rx.try_recv().unwrap();
        assert_eq!(e.topic, "card.inserted");
        assert_eq!(e.body["reader"], "sim:0");
    }
}
