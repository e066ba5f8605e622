//! `idcardd audit verify|show`: check and read the tamper-evident audit trail
//! (see [`issuance::audit`]). The chain's key is the token's: the key store is the embedded
//! SoftHSM token of the state directory, or the `[keys]` table of the daemon configuration
//! given with `--config`. A configuration naming a line's shared journal verifies every
//! station's chain there (this station's against its head record).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use issuance::audit::{self, AuditEntry};
use keystore::{KeyStore, KeyStoreConfig};

/// Subcommands of `idcardd audit`.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check every entry's MAC and link, the sequence and the head; exit status 1 and the
    /// first bad entry when the trail was edited, reordered or cut.
    Verify(VerifyArgs),
    /// Print entries (oldest first).
    Show(ShowArgs),
}

/// Where the state directory and the key store are: `--state-dir`, `--config`.
#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The daemon's state directory (default: the configuration's `state_dir`, else the
    /// default state directory).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// The daemon's configuration file: its `[keys]` table names the token (absent: the
    /// embedded SoftHSM token of the state directory) and its `state_dir` is the default.
    #[arg(long)]
    pub config: Option<PathBuf>,
}

impl StoreArgs {
    fn file(&self) -> anyhow::Result<Option<crate::server::config::FileConfig>> {
        self.config
            .as_deref()
            .map(crate::server::config::FileConfig::load)
            .transpose()
    }

    fn dir(&self, file: Option<&crate::server::config::FileConfig>) -> PathBuf {
        self.state_dir
            .clone()
            .or_else(|| file.and_then(|f| f.state_dir.clone()))
            .unwrap_or_else(crate::server::config::default_state_dir)
    }

    /// The state directory alone (no token).
    pub fn state_dir(&self) -> anyhow::Result<PathBuf> {
        Ok(self.dir(self.file()?.as_ref()))
    }

    /// The state directory and the key store (opened, never created: `idcardd keys init`
    /// makes the embedded one).
    pub fn open(&self) -> anyhow::Result<(PathBuf, Arc<KeyStore>)> {
        let file = self.file()?;
        let dir = self.dir(file.as_ref());
        let store = open_store(&dir, file.and_then(|f| f.keys).as_ref())?;
        Ok((dir, store))
    }
}

/// Opens the token of `configured`, else the embedded one of `state_dir`.
pub fn open_store(
    state_dir: &Path,
    configured: Option<&KeyStoreConfig>,
) -> anyhow::Result<Arc<KeyStore>> {
    let config = match configured {
        Some(c) => c.clone(),
        None => KeyStoreConfig::embedded(state_dir),
    };
    let store = KeyStore::open(&config).map_err(|e| {
        anyhow::anyhow!(
            "key store (token {:?}{}): {e}",
            config.token_label,
            if configured.is_none() {
                format!(", embedded in {}", state_dir.display())
            } else {
                String::new()
            }
        )
    })?;
    Ok(Arc::new(store))
}

/// Arguments of `idcardd audit verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The state directory (holds audit.db and audit.head) and the key store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Verify a trail chained by an earlier release with its key file (`audit.key` in the
    /// state directory) instead of the token's key: what to run before archiving such a trail,
    /// which this release refuses to open or continue.
    #[arg(long)]
    pub legacy_key_file: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `idcardd audit show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// The state directory and the key store.
    #[command(flatten)]
    pub store: StoreArgs,
    /// Only entries of this kind (e.g. `delivered`, `delivery.verify`, `terminated`).
    #[arg(long)]
    pub kind: Option<String>,
    /// Only entries about this card serial (hex).
    #[arg(long)]
    pub serial: Option<String>,
    /// Only the last N entries (after filtering).
    #[arg(long)]
    pub last: Option<usize>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

/// Runs `idcardd audit`.
pub fn run(cmd: Command) -> anyhow::Result<()> {
    match cmd {
        Command::Verify(args) => verify(args),
        Command::Show(args) => show(args),
    }
}

/// `idcardd audit verify --config` of a station of a line: every station's chain in the
/// shared database, this station's head.
fn verify_line(
    args: &VerifyArgs,
    journal: &issuance::journal::JournalConfig,
) -> anyhow::Result<()> {
    let (dir, store) = args.store.open()?;
    let db = journal.db(&dir, audit::DB_FILE)?;
    let station = journal.station().station_id;
    let reports = audit::verify_line(&dir, &db, &station, &store)
        .map_err(|e| anyhow::anyhow!("cannot check the line's audit trail: {e}"))?;
    if args.json {
        let out: Vec<_> = reports
            .iter()
            .map(|(s, r)| serde_json::json!({"station": s, "report": r}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (s, r) in &reports {
            match &r.problem {
                None => println!(
                    "station {s}: audit chain intact: {} entries, last seq {}",
                    r.entries,
                    r.last_seq.unwrap_or(0)
                ),
                Some(p) => println!("station {s}: audit chain BROKEN at entry {}: {p}", p.seq()),
            }
        }
    }
    if reports.iter().all(|(_, r)| r.is_intact()) {
        Ok(())
    } else {
        std::process::exit(1);
    }
}

fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    if let Some(file) = args.store.file()? {
        let journal = file.journal_config()?;
        if journal.is_shared() && !args.legacy_key_file {
            return verify_line(&args, &journal);
        }
    }
    let dir = args.store.state_dir()?;
    if !dir.join(audit::DB_FILE).is_file() {
        anyhow::bail!("no audit trail in {}", dir.display());
    }
    let key_file = dir.join(audit::KEY_FILE);
    if !args.legacy_key_file && key_file.exists() {
        // Said before the token is opened: such a directory may have no token yet.
        anyhow::bail!(
            "{}",
            audit::AuditError::LegacyKeyFile {
                path: key_file,
                dir: dir.clone(),
            }
        );
    }
    let store = if args.legacy_key_file {
        None
    } else {
        Some(args.store.open()?.1)
    };
    let report = match &store {
        None => audit::verify_legacy(&dir),
        Some(store) => audit::verify(&dir, store),
    }
    .map_err(|e| anyhow::anyhow!("cannot check the audit trail in {}: {e}", dir.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        match &report.problem {
            None => {
                println!(
                    "audit trail intact: {} entries, last seq {}",
                    report.entries,
                    report.last_seq.unwrap_or(0)
                );
                if report.head_behind {
                    println!("note: the head record lags (the daemon stopped mid-append); it is repaired on the next start");
                }
            }
            Some(problem) => println!("audit trail BROKEN at entry {}: {problem}", problem.seq()),
        }
    }
    if report.is_intact() {
        Ok(())
    } else {
        // The report is printed; the exit status tells scripts.
        std::process::exit(1);
    }
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

fn show(args: ShowArgs) -> anyhow::Result<()> {
    let (dir, store) = args.store.open()?;
    let journal = args
        .store
        .file()?
        .map(|f| f.journal_config())
        .transpose()?
        .unwrap_or_default();
    let log = if journal.is_shared() {
        let db = journal.db(&dir, audit::DB_FILE)?;
        audit::AuditLog::open_on(&dir, db, &journal.station().station_id, store)
            .map_err(|e| anyhow::anyhow!("opening this station's audit chain: {e}"))?
    } else {
        if !dir.join(audit::DB_FILE).is_file() {
            anyhow::bail!("no audit trail in {}", dir.display());
        }
        audit::AuditLog::open(&dir, store)
            .map_err(|e| anyhow::anyhow!("opening the audit trail in {}: {e}", dir.display()))?
    };
    let mut entries: Vec<AuditEntry> = log
        .entries()?
        .into_iter()
        .filter(|e| args.kind.as_ref().is_none_or(|k| &e.kind == k))
        .filter(|e| {
            args.serial.as_ref().is_none_or(|s| {
                e.details_json()["serial"]
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(s))
            })
        })
        .collect();
    if let Some(n) = args.last {
        let skip = entries.len().saturating_sub(n);
        entries.drain(..skip);
    }
    for e in &entries {
        if args.json {
            println!(
                "{}",
                serde_json::json!({
                    "seq": e.seq,
                    "time": utc(e.time_ms),
                    "kind": e.kind,
                    "details": e.details_json(),
                    "mac": hex::encode(&e.mac),
                })
            );
        } else {
            println!(
                "{:>6}  {}  {:<24} {}",
                e.seq,
                utc(e.time_ms),
                e.kind,
                e.details
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::utc;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(utc(1_795_305_600_000), "2026-11-22T00:00:00.000Z");
    }
}
