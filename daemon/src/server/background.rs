//! [`Background`]: a helper thread of the server (the ZAP handler, the hot-plug relay) that
//! runs until it is dropped: the drop sets its stop flag and joins it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A named thread looking at a stop flag between waits; stopped and joined on drop.
#[derive(Debug)]
pub(crate) struct Background {
    /// Set on drop; the thread checks it between its (short, bounded) waits.
    stop: Arc<AtomicBool>,
    /// The thread, joined on drop.
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What a [`Background`] thread checks between waits.
#[derive(Debug, Clone)]
pub(crate) struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    /// Whether the owner asked the thread to end.
    pub(crate) fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl Background {
    /// Starts `run` on a thread called `name`.
    pub(crate) fn spawn(
        name: &str,
        run: impl FnOnce(StopFlag) + Send + 'static,
    ) -> std::io::Result<Background> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = StopFlag(stop.clone());
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run(flag))?;
        Ok(Background {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
