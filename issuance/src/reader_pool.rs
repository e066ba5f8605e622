//! [`ReaderPool`]: the configured readers, each usable by one operation at a time.
//!
//! Card access goes through [`ReaderPool::with_card`], which gives one operation at a time per
//! reader and answers `busy` instead of queueing without bound. Simulated cards are kept open
//! between operations while their state file is unchanged ([`crate::sim_watch`]).

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use apdu::card::IdCard;
use apdu::sm::CardKeys;
use apdu::Transport;
use cardsim::SimTransport;

use crate::error::{Error, ErrorKind};
use crate::sim_watch::{Changes, SimWatch};

/// A card opened on a reader for one operation.
pub type Card = IdCard<Box<dyn Transport>>;

/// The configured readers, each usable by one operation at a time.
pub struct ReaderPool {
    sim_dir: PathBuf,
    /// The keys a new simulated card is made with (the issuer's key store).
    sim_keys: Arc<dyn CardKeys>,
    wait: Duration,
    busy: BTreeMap<String, AtomicBool>,
    /// Faults to inject into the next opening of a simulated reader (tests: a card pulled in
    /// the middle of an operation), taken once.
    sim_faults: std::sync::Mutex<BTreeMap<String, cardsim::Faults>>,
    /// Simulated readers kept open between operations, so that an operation does not reload
    /// and parse the card's state file when nothing else has changed it.
    kept: std::sync::Mutex<KeptSims>,
}

/// Simulated readers kept open, and the watch that tells when their state files change.
#[derive(Default)]
struct KeptSims {
    /// Kept readers (a handle to the reader, the card in memory) by name.
    cards: BTreeMap<String, SimTransport>,
    /// Changes in the simulated cards' directory; `None` until the directory exists (or after
    /// the watch lost track): nothing is kept without it.
    watch: Option<SimWatch>,
}

impl KeptSims {
    /// Forgets every kept card whose state file changed since the last look (all of them when
    /// that is not known) and returns the readers whose files changed; `None` when the watch
    /// had to be started now or lost track (anything may have changed).
    fn refresh(&mut self, sim_dir: &std::path::Path) -> Option<BTreeSet<usize>> {
        let Some(watch) = &self.watch else {
            self.cards.clear();
            self.watch = SimWatch::new(sim_dir).ok();
            return None;
        };
        match watch.changes() {
            Changes::Readers(changed) => {
                self.cards
                    .retain(|name, _| !sim_index(name).is_some_and(|n| changed.contains(&n)));
                Some(changed)
            }
            Changes::Unknown => {
                self.cards.clear();
                self.watch = None;
                None
            }
        }
    }
}

/// `N` of `sim:N`.
fn sim_index(name: &str) -> Option<usize> {
    crate::readers::parse_sim_name(name).ok().flatten()
}

impl std::fmt::Debug for KeptSims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptSims")
            .field("cards", &self.cards.keys())
            .field("watch", &self.watch)
            .finish()
    }
}

/// A simulated reader's handle to keep open after an operation.
struct ToKeep {
    /// The handle.
    transport: SimTransport,
    /// The card's [`SimTransport::commits`] when the operation began: a change of its state
    /// file during the operation is the card's own write only when this moved.
    commits_before: u64,
}

/// Releases a reader when the operation ends, even by panic.
struct Held<'a>(&'a AtomicBool);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl std::fmt::Debug for ReaderPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReaderPool")
            .field("sim_dir", &self.sim_dir)
            .field("readers", &self.busy.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl ReaderPool {
    /// A pool over `names`; simulated cards keep their state in `sim_dir` and a new one is
    /// made holding the card keys `sim_keys` gives for its serial.
    pub fn new(
        names: &[String],
        sim_dir: PathBuf,
        sim_keys: Arc<dyn CardKeys>,
        wait: Duration,
    ) -> ReaderPool {
        ReaderPool {
            sim_dir,
            sim_keys,
            wait,
            busy: names
                .iter()
                .map(|n| (n.clone(), AtomicBool::new(false)))
                .collect(),
            sim_faults: Default::default(),
            kept: Default::default(),
        }
    }

    /// The reader names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.busy.keys().cloned().collect()
    }

    /// Whether an operation is running on `name` now.
    pub fn is_busy(&self, name: &str) -> bool {
        self.busy
            .get(name)
            .is_some_and(|b| b.load(Ordering::Acquire))
    }

    /// Injects `faults` into the next operation on simulated reader `name` (tests only: e.g. a
    /// card pulled after N APDUs). Taken by that one operation.
    pub fn inject_sim_faults(&self, name: &str, faults: cardsim::Faults) {
        let mut pending = self.sim_faults.lock().unwrap_or_else(|p| p.into_inner());
        pending.insert(name.to_string(), faults);
    }

    /// Opens reader `name`, applying faults injected for it. For a simulated reader also
    /// returns a second handle to keep open after the operation (none when faults were
    /// injected: such an operation may leave the card pulled).
    fn open_transport(&self, name: &str) -> Result<(Box<dyn Transport>, Option<ToKeep>), Error> {
        let faults = {
            let mut pending = self.sim_faults.lock().unwrap_or_else(|p| p.into_inner());
            pending.remove(name)
        };
        let Some(n) = crate::readers::parse_sim_name(name)? else {
            return Ok((
                crate::readers::open(name, &self.sim_dir, &self.sim_keys)?,
                None,
            ));
        };
        // Taken in every case: an operation with faults must not leave a kept card behind.
        let kept = self.take_kept(name);
        if let Some(faults) = faults {
            let sim = crate::readers::open_sim(&self.sim_dir, n, &self.sim_keys)?;
            sim.faults().set(faults);
            return Ok((Box::new(sim), None));
        }
        if let Some((transport, keep)) = kept {
            return Ok((Box::new(transport), Some(keep)));
        }
        let sim = crate::readers::open_sim(&self.sim_dir, n, &self.sim_keys)?;
        // What changed up to now (a card just created saved its file) is in the card loaded.
        self.kept
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .refresh(&self.sim_dir);
        let keep = sim.reconnect().map(|transport| ToKeep {
            commits_before: transport.commits(),
            transport,
        });
        Ok((Box::new(sim), keep))
    }

    /// Takes the kept card of simulated reader `name` out of the pool: a connection to run an
    /// operation on and the handle to keep afterwards, or `None` when there is none, the card
    /// is out of the reader, or its state file changed since (then it is not the file's card
    /// any more). Also starts the watch on the directory, before any card is loaded from it.
    fn take_kept(&self, name: &str) -> Option<(SimTransport, ToKeep)> {
        let kept = {
            let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
            kept.refresh(&self.sim_dir);
            kept.cards.remove(name)?
        };
        Some((
            kept.reconnect()?,
            ToKeep {
                commits_before: kept.commits(),
                transport: kept,
            },
        ))
    }

    /// Runs `op` on a connection, then keeps the simulated reader's handle, if any, open.
    fn run_op<R>(
        &self,
        name: &str,
        transport: Box<dyn Transport>,
        keep: Option<ToKeep>,
        op: impl FnOnce(&mut Card) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let mut card = IdCard::new(transport);
        let result = op(&mut card);
        drop(card);
        if let Some(keep) = keep {
            self.keep_open(name, keep);
        }
        result
    }

    /// Keeps simulated reader `name` open after an operation, unless its state file changed
    /// during the operation by another hand than its card's (or nobody can tell).
    fn keep_open(&self, name: &str, keep: ToKeep) {
        let Some(n) = sim_index(name) else {
            return;
        };
        let own_write = keep.transport.commits() != keep.commits_before;
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        let Some(changed) = kept.refresh(&self.sim_dir) else {
            return;
        };
        if changed.contains(&n) && !own_write {
            return;
        }
        kept.cards.insert(name.to_string(), keep.transport);
    }

    /// Runs `op` at once on simulated reader `name` when it needs no waiting and no file
    /// loading: the reader is free and its card is kept open, unchanged since the last
    /// operation. `None` otherwise (the caller goes the [`ReaderPool::with_card`] way). Such an
    /// operation costs microseconds, less than handing it to a worker thread.
    pub fn try_with_kept_card<R>(
        &self,
        name: &str,
        op: impl FnOnce(&mut Card) -> Result<R, Error>,
    ) -> Option<Result<R, Error>> {
        sim_index(name)?;
        let flag = self.busy.get(name)?;
        flag.compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()?;
        let _held = Held(flag);
        let faults_pending = self
            .sim_faults
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(name);
        if faults_pending {
            return None;
        }
        let (transport, handle) = self.take_kept(name)?;
        Some(self.run_op(name, Box::new(transport), Some(handle), op))
    }

    /// Runs `op` with the card in reader `name`, alone on that reader. Waits up to the
    /// configured time for another operation on the same reader, then answers `busy`.
    pub fn with_card<R>(
        &self,
        name: &str,
        op: impl FnOnce(&mut Card) -> Result<R, Error>,
    ) -> Result<R, Error> {
        let flag = self.busy.get(name).ok_or_else(|| {
            Error::new(
                ErrorKind::ReaderNotFound,
                format!("no reader {name:?} is configured"),
            )
        })?;
        let deadline = Instant::now() + self.wait;
        while flag
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::Busy,
                    format!("reader {name:?} is busy with another operation"),
                ));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        let _held = Held(flag);
        let (transport, keep) = self.open_transport(name)?;
        self.run_op(name, transport, keep, op)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the tests below hold: the pool, as the daemon's service holds it.
    struct Service {
        readers: ReaderPool,
    }

    fn service(dir: &std::path::Path) -> Service {
        let names = ["sim:0".to_string(), "sim:1".to_string()];
        Service {
            readers: ReaderPool::new(
                &names,
                dir.join("sim"),
                Arc::new(cardsim::fixtures::TestMasters),
                Duration::from_millis(20),
            ),
        }
    }

    #[test]
    fn one_operation_per_reader_and_busy_after_the_wait() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let serial = svc
            .readers
            .with_card("sim:0", |card| {
                assert!(svc.readers.is_busy("sim:0"));
                let nested = svc.readers.with_card("sim:0", |_| Ok(()));
                assert_eq!(nested.unwrap_err().kind, ErrorKind::Busy);
                // Another reader is independent.
                svc.readers.with_card("sim:1", |_| Ok(()))?;
                Ok(card.serial()?)
            })
            .unwrap();
        assert!(!svc.readers.is_busy("sim:0"));
        let again = svc.readers.with_card("sim:0", |c| Ok(c.serial()?)).unwrap();
        assert_eq!(serial, again);
        let missing = svc.readers.with_card("sim:9", |_| Ok(()));
        assert_eq!(missing.unwrap_err().kind, ErrorKind::ReaderNotFound);
    }

    /// A simulated card stays open between operations, yet a card moved into the reader (its
    /// state file replaced, as the demo and the tests do) or a write by another process is
    /// what the next operation sees; the non-waiting path only runs on a kept, unchanged card.
    #[test]
    fn kept_simulated_cards_follow_their_state_file() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path());
        let serial = |svc: &Service| svc.readers.with_card("sim:0", |c| Ok(c.serial()?));
        let quick = |svc: &Service| svc.readers.try_with_kept_card("sim:0", |c| Ok(c.serial()?));
        // Nothing kept before the first operation.
        assert!(quick(&svc).is_none());
        let first = serial(&svc).unwrap();
        assert_eq!(quick(&svc).unwrap().unwrap(), first);
        // A busy reader is not waited for.
        svc.readers
            .with_card("sim:0", |_| {
                assert!(quick(&svc).is_none());
                Ok(())
            })
            .unwrap();

        // The card's own write (a file created in a personalization session) leaves it kept.
        let wrote = svc.readers.try_with_kept_card("sim:0", |c| {
            Ok(c.authenticate_perso(&cardsim::fixtures::TestMasters)?
                .create_file(0x0101, Some(1), 64)?)
        });
        assert!(matches!(wrote, Some(Ok(()))), "{wrote:?}");
        assert_eq!(
            quick(&svc).unwrap().unwrap(),
            first,
            "kept after its own write"
        );
        assert_eq!(quick(&svc).unwrap().unwrap(), first);
        let path = crate::readers::sim_state_path(&svc.readers.sim_dir, 0);

        // The file rewritten in place with the same content (same length; an mtime a stat
        // might not tell apart): seen all the same, the card is loaded again.
        std::fs::write(&path, std::fs::read(&path).unwrap()).unwrap();
        assert!(quick(&svc).is_none(), "a rewritten file is loaded again");
        assert_eq!(serial(&svc).unwrap(), first);
        assert_eq!(quick(&svc).unwrap().unwrap(), first);

        // A card of its own made at `path`; its serial.
        let card_at = |path: &std::path::Path, seed: u64| {
            let config = cardsim::SimConfig {
                seed: Some(seed),
                ..Default::default()
            };
            cardsim::SimCard::create(Some(path.into()), config)
                .unwrap()
                .serial()
        };
        // Another card moved in by rename.
        let other_path = dir.path().join("other.json");
        let other = card_at(&other_path, 7);
        std::fs::rename(&other_path, &path).unwrap();
        assert!(quick(&svc).is_none(), "a replaced file is loaded again");
        assert_eq!(serial(&svc).unwrap(), other);
        assert_eq!(quick(&svc).unwrap().unwrap(), other);

        // A third card's state written over the file in place (same inode).
        let copy = dir.path().join("third.json");
        let third = card_at(&copy, 8);
        assert_ne!(third, other);
        std::fs::write(&path, std::fs::read(&copy).unwrap()).unwrap();
        assert_eq!(serial(&svc).unwrap(), third);

        // A removed card: the reader makes a new one, as before.
        std::fs::remove_file(&path).unwrap();
        let fresh = serial(&svc).unwrap();
        assert!(fresh != third && fresh != other && fresh != first);
    }
}
