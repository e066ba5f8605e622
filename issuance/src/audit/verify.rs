//! Checking the chain: `idcardd audit verify` and the tests call [`verify`].

use std::path::Path;

use keystore::KeyStore;
use serde::Serialize;

use super::key::MacCheck;
use super::{chain_entries, mac_input, read_head, AuditEntry, AuditError, Chain};
use super::{io_error, refuse_legacy_key, MAC_LEN};
use super::{Head, DB_FILE};
use crate::db::Db;

/// What is wrong with the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "what", rename_all = "snake_case")]
pub enum Problem {
    /// The entry's fields no longer match its MAC: someone changed its time, kind, details or
    /// links.
    Edited {
        /// The entry.
        seq: i64,
    },
    /// Not one entry verifies under the audit key: the trail was chained by another key
    /// (another token, or entries forged wholesale by someone without the key).
    ForeignKey {
        /// The first entry.
        seq: i64,
    },
    /// Entries are missing before this one (a gap in the sequence numbers).
    Removed {
        /// The first entry after the gap.
        seq: i64,
        /// The first missing sequence number.
        missing_from: i64,
        /// The last missing sequence number.
        missing_to: i64,
    },
    /// The entry is intact but was written at another position.
    Reordered {
        /// Where it is now.
        seq: i64,
        /// Where it was written.
        written_as: i64,
    },
    /// The entry is intact but does not follow the entry stored before it (an entry between
    /// them was removed and the rest renumbered consistently, or entries were spliced in from
    /// elsewhere).
    Unlinked {
        /// The entry.
        seq: i64,
    },
    /// Entries were removed from the end: the head record names a later entry.
    Truncated {
        /// The first missing sequence number.
        seq: i64,
        /// The last entry the head record names.
        head_seq: i64,
    },
    /// The head record does not match the entry it names.
    HeadMismatch {
        /// The entry the head names.
        seq: i64,
    },
    /// The head record (`audit.head`) is gone while the log has entries, so removal of the
    /// last entries could not be checked.
    HeadMissing {
        /// The last entry in the database.
        seq: i64,
    },
    /// A stored MAC has the wrong length.
    Malformed {
        /// The entry.
        seq: i64,
    },
}

impl Problem {
    /// The first bad sequence number.
    pub fn seq(&self) -> i64 {
        match *self {
            Problem::Edited { seq }
            | Problem::ForeignKey { seq }
            | Problem::Removed { seq, .. }
            | Problem::Reordered { seq, .. }
            | Problem::Unlinked { seq }
            | Problem::Truncated { seq, .. }
            | Problem::HeadMismatch { seq }
            | Problem::HeadMissing { seq }
            | Problem::Malformed { seq } => seq,
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Edited { seq } => write!(f, "entry {seq} was edited (its MAC does not match)"),
            Problem::ForeignKey { seq } => write!(
                f,
                "from entry {seq} on no entry verifies under the audit key it was checked with: \
                 the trail was chained by another key (another token or key file) or forged"
            ),
            Problem::Removed {
                seq,
                missing_from,
                missing_to,
            } => write!(
                f,
                "entries {missing_from}..={missing_to} were removed (gap before entry {seq})"
            ),
            Problem::Reordered { seq, written_as } => write!(
                f,
                "entry {seq} was moved: it was written as entry {written_as}"
            ),
            Problem::Unlinked { seq } => write!(
                f,
                "entry {seq} does not follow the entry before it (removed or spliced entries)"
            ),
            Problem::Truncated { seq, head_seq } => write!(
                f,
                "entries {seq}..={head_seq} were removed from the end of the log"
            ),
            Problem::HeadMismatch { seq } => {
                write!(f, "the head record does not match entry {seq}")
            }
            Problem::HeadMissing { seq } => write!(
                f,
                "the head record is missing (log has {seq} entries): truncation cannot be ruled out"
            ),
            Problem::Malformed { seq } => write!(f, "entry {seq} has a malformed MAC"),
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditReport {
    /// Entries in the database.
    pub entries: u64,
    /// The last sequence number in the database.
    pub last_seq: Option<i64>,
    /// The sequence number the head record names.
    pub head_seq: Option<i64>,
    /// The head lags behind the database (a process was killed between writing an entry and
    /// updating the head; harmless, the next open repairs it).
    pub head_behind: bool,
    /// The first problem, `None` when the trail is intact.
    pub problem: Option<Problem>,
}

impl AuditReport {
    /// True when every entry verifies and nothing was removed.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }

    /// The first bad sequence number, if any.
    pub fn first_bad_seq(&self) -> Option<i64> {
        self.problem.as_ref().map(Problem::seq)
    }
}

/// Verifies the audit trail in `state_dir` with the audit key of `store`: every MAC, every
/// link, no gaps, and the head. Never creates anything: a missing database is an error, and so
/// is the key file of an earlier release ([`AuditError::LegacyKeyFile`]). A token that is
/// unavailable is [`AuditError::TokenUnavailable`], never a broken report.
pub fn verify(state_dir: &Path, store: &KeyStore) -> Result<AuditReport, AuditError> {
    refuse_legacy_key(state_dir)?;
    let entries = existing_entries(state_dir)?;
    finish(state_dir, store, &entries)
}

/// Verifies every station's chain in a line's shared database `db` (issue 17) with the audit
/// key of `store`: every MAC, link and sequence number, and that each entry names the station
/// whose chain it is in; for the chain of `station` (this station) also the head record of
/// `state_dir`. Other stations' heads are in their own state directories, where their own
/// `idcardd audit verify` checks them. One report per station, in station order; this
/// station's chain is reported even when it has no entry (a head naming entries is then a
/// truncation).
pub fn verify_line(
    state_dir: &Path,
    db: &Db,
    station: &str,
    store: &KeyStore,
) -> Result<Vec<(String, AuditReport)>, AuditError> {
    refuse_legacy_key(state_dir)?;
    super::ensure_line_schema(db)?;
    let mut stations: Vec<String> = db.read(|tx| {
        tx.query(
            "SELECT DISTINCT station FROM audit_entries ORDER BY station",
            &[],
        )?
        .iter()
        .map(|r| r.text(0))
        .collect::<Result<Vec<_>, _>>()
    })?;
    if !stations.iter().any(|s| s == station) {
        stations.push(station.to_string());
    }
    let mut reports = Vec::new();
    for s in stations {
        let chain = Chain::Station(s.clone());
        let entries = db.read(|tx| chain_entries(tx, &chain))?;
        let mut report = check_chain(store, &entries)?;
        if report.problem.is_none() {
            if let Some(e) = entries
                .iter()
                .find(|e| e.details_json()["station"].as_str() != Some(s.as_str()))
            {
                report.problem = Some(Problem::Unlinked { seq: e.seq });
            }
        }
        if s == station {
            let head = read_head(state_dir)?;
            if report.problem.is_none() {
                check_head(&mut report, &entries, head.as_ref());
            } else {
                report.head_seq = head.map(|h| h.seq);
            }
        }
        reports.push((s, report));
    }
    Ok(reports)
}

/// Every entry of the audit database of `state_dir`, which must exist (verification never
/// creates one).
fn existing_entries(state_dir: &Path) -> Result<Vec<AuditEntry>, AuditError> {
    let db = state_dir.join(DB_FILE);
    if !db.is_file() {
        return Err(io_error(&db)(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no audit log here",
        )));
    }
    let db = Db::open_sqlite(&db)?;
    Ok(db.read(|tx| chain_entries(tx, &Chain::Local))?)
}

/// Verifies a trail chained by an earlier release with the key file `state_dir/audit.key`
/// (read only, never written or removed): what to run before archiving such a trail, since
/// this release refuses to open or continue it ([`AuditError::LegacyKeyFile`]).
pub fn verify_legacy(state_dir: &Path) -> Result<AuditReport, AuditError> {
    let key = super::key::FileKey::load(&state_dir.join(super::KEY_FILE))?;
    let entries = existing_entries(state_dir)?;
    finish(state_dir, &key, &entries)
}

/// The chain, then the head when the chain is intact.
fn finish<K: MacCheck + ?Sized>(
    state_dir: &Path,
    key: &K,
    entries: &[AuditEntry],
) -> Result<AuditReport, AuditError> {
    let head = read_head(state_dir)?;
    let mut report = check_chain(key, entries)?;
    if report.problem.is_none() {
        check_head(&mut report, entries, head.as_ref());
    } else {
        report.head_seq = head.map(|h| h.seq);
    }
    Ok(report)
}

/// Checks MACs, links and sequence numbers (not the head).
pub(crate) fn check_chain<K: MacCheck + ?Sized>(
    key: &K,
    entries: &[AuditEntry],
) -> Result<AuditReport, AuditError> {
    let mut report = AuditReport {
        entries: entries.len() as u64,
        last_seq: entries.last().map(|e| e.seq),
        head_seq: None,
        head_behind: false,
        problem: None,
    };
    let mut prev_mac = vec![0u8; MAC_LEN];
    // Rows come sorted by their unique seq and every earlier row matched its position, so a
    // mismatch here can only be a gap.
    for (expected_seq, e) in (1i64..).zip(entries) {
        if e.mac.len() != MAC_LEN || e.prev_mac.len() != MAC_LEN {
            report.problem = Some(Problem::Malformed { seq: e.seq });
            return Ok(report);
        }
        let own = |seq| mac_input(seq, e.time_ms, &e.kind, &e.details, &e.prev_mac);
        if !key.check(&own(e.seq), &e.mac)? {
            // Intact content at the wrong position is a move, not an edit. Searching every
            // position only happens once, for the first bad entry.
            let max = entries
                .last()
                .map_or(0, |l| l.seq)
                .max(entries.len() as i64)
                + 1;
            let mut written_as = None;
            for s in (1..=max).filter(|&s| s != e.seq) {
                if key.check(&own(s), &e.mac)? {
                    written_as = Some(s);
                    break;
                }
            }
            report.problem = Some(match written_as {
                Some(written_as) => Problem::Reordered {
                    seq: e.seq,
                    written_as,
                },
                // The first entry already fails: if no entry verifies at its own position,
                // the chain is another key's (or wholly forged), not one edited entry.
                None if expected_seq == 1 && !any_verifies(key, &entries[1..])? => {
                    Problem::ForeignKey { seq: e.seq }
                }
                None => Problem::Edited { seq: e.seq },
            });
            return Ok(report);
        }
        if e.seq != expected_seq {
            report.problem = Some(Problem::Removed {
                seq: e.seq,
                missing_from: expected_seq,
                missing_to: e.seq - 1,
            });
            return Ok(report);
        }
        if e.prev_mac != prev_mac {
            report.problem = Some(Problem::Unlinked { seq: e.seq });
            return Ok(report);
        }
        prev_mac.clone_from(&e.mac);
    }
    Ok(report)
}

/// Whether any of `entries` verifies at its own position.
fn any_verifies<K: MacCheck + ?Sized>(key: &K, entries: &[AuditEntry]) -> Result<bool, AuditError> {
    for e in entries {
        let input = mac_input(e.seq, e.time_ms, &e.kind, &e.details, &e.prev_mac);
        if key.check(&input, &e.mac)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Compares the head record with a chain that verified.
fn check_head(report: &mut AuditReport, entries: &[AuditEntry], head: Option<&Head>) {
    report.head_seq = head.map(|h| h.seq);
    let last = entries.last().map_or(0, |e| e.seq);
    let Some(head) = head else {
        if last > 0 {
            report.problem = Some(Problem::HeadMissing { seq: last });
        }
        return;
    };
    if head.seq > last {
        report.problem = Some(Problem::Truncated {
            seq: last + 1,
            head_seq: head.seq,
        });
        return;
    }
    // Sequence numbers verified as 1..=last, so entry `seq` sits at index seq - 1.
    let named = usize::try_from(head.seq - 1)
        .ok()
        .and_then(|i| entries.get(i));
    match named {
        Some(e) if hex::encode(&e.mac) == head.mac => report.head_behind = head.seq < last,
        _ => {
            report.problem = Some(Problem::HeadMismatch {
                seq: head.seq.max(1),
            })
        }
    }
}
