//! What the issuance core keeps on disk, and how: the one way it opens a SQLite database
//! (journal, delivery store, audit trail: durable writes, waits instead of failing when another
//! connection writes), and the modes of everything in the state directory.
//!
//! Data at rest (issue 18): the state directory holds applicant records, the audit trail,
//! simulated cards' PINs and keys and the PIN mailer, so it is owner-only. Every directory the
//! core creates there is [`DIR_MODE`] (0700; an existing looser one is tightened with a
//! warning, [`private_dir`]); every file is [`FILE_MODE`] (0600), databases and their `-wal` /
//! `-shm` files included (`open_sqlite`).

use std::io;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use rusqlite::Connection;

/// Mode of every directory in the state directory, and of the state directory itself.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file in the state directory.
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (and missing parents) with mode [`DIR_MODE`]; an existing directory that
/// group or others may enter is tightened to [`DIR_MODE`], with a warning (it was exposed).
pub fn private_dir(dir: &Path) -> io::Result<()> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                tracing::warn!(
                    "{} was mode {mode:04o}: tightened to {DIR_MODE:04o} (it holds personal data)",
                    dir.display()
                );
                std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
            }
            Ok(())
        }
        Ok(_) => Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", dir.display()),
        )),
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir),
        Err(e) => Err(e),
    }
}

/// Writes `bytes` to `path` (created or truncated) as a [`FILE_MODE`] file, whatever the
/// process umask: reports and the like hold identifiers of people.
pub fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(FILE_MODE)
        .open(path)?;
    // An existing file keeps its mode on open: tighten it.
    tighten_file(path)?;
    file.write_all(bytes)
}

/// Makes sure the existing file `path` is [`FILE_MODE`] (a file made before issue 18 was
/// 0644); a missing file is fine.
pub fn tighten_file(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o7777 != FILE_MODE => {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
        }
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Tightens everything under `dir` (itself included) that group or others could reach:
/// directories to [`DIR_MODE`], regular files to [`FILE_MODE`]; symbolic links are not
/// followed and sockets keep their mode (the daemon's ipc socket is meant for its group).
/// Returns the paths it changed, for the caller to warn about: a state directory written
/// before issue 18 had 0755 directories and 0644 files.
pub fn tighten_tree(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut changed = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Removed meanwhile (a card moved between hopper and reader).
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let mode = meta.permissions().mode() & 0o7777;
        let want = if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                todo.push(entry?.path());
            }
            DIR_MODE
        } else if meta.is_file() {
            FILE_MODE
        } else {
            continue;
        };
        if mode & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(want))?;
            changed.push(path);
        }
    }
    Ok(changed)
}

/// The `-wal` and `-shm` companions SQLite keeps beside the database `path` in WAL mode.
pub fn wal_files(path: &Path) -> [PathBuf; 2] {
    let with = |suffix: &str| {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [with("-wal"), with("-shm")]
}

fn sql_io(path: &Path, e: io::Error) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(
        rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
        Some(format!("{}: {e}", path.display())),
    )
}

/// Opens (creating) the database at `path` with the settings every store needs, then runs
/// `schema` (idempotent `CREATE ... IF NOT EXISTS` statements).
///
/// WAL lets readers go on while one connection writes; `synchronous=FULL` makes a committed
/// transaction survive a power cut (a journaled serial must never be lost); `busy_timeout`
/// makes a second process wait for the write lock instead of failing at once;
/// `secure_delete` zeroes what a delete or an update frees, so personal data removed from a
/// row (biometrics scrubbed from the journal) does not linger in free pages.
///
/// Modes: the directory is made private ([`private_dir`]) and the file is created 0600 before
/// SQLite opens it. SQLite gives its `-wal` and `-shm` files the database file's permissions;
/// those left by an older version are tightened here.
pub(crate) fn open_sqlite(path: &Path, schema: &str) -> rusqlite::Result<Connection> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir).map_err(|e| sql_io(dir, e))?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(FILE_MODE)
        .open(path)
        .map_err(|e| sql_io(path, e))?;
    tighten_file(path).map_err(|e| sql_io(path, e))?;
    let conn = Connection::open(path)?;
    // The pragma, not `Connection::busy_timeout`: that one needs SQLite 3.44
    // (sqlite3_set_clientdata) and Debian 12 ships 3.40.
    conn.pragma_update(None, "busy_timeout", 10_000)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "secure_delete", "ON")?;
    conn.execute_batch(schema)?;
    for companion in wal_files(path) {
        tighten_file(&companion).map_err(|e| sql_io(&companion, e))?;
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn databases_and_their_wal_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let db = state.join("x.db");
        let conn = open_sqlite(&db, "CREATE TABLE IF NOT EXISTS t (v TEXT);").unwrap();
        conn.execute("INSERT INTO t VALUES ('x')", []).unwrap();
        assert_eq!(mode(&state), DIR_MODE);
        assert_eq!(mode(&db), FILE_MODE);
        for companion in wal_files(&db) {
            assert!(companion.exists(), "{}", companion.display());
            assert_eq!(mode(&companion), FILE_MODE, "{}", companion.display());
        }
    }

    /// A report written over an older 0644 file, or into a fresh folder, is private without
    /// the daemon's umask (the CLI and tests write reports too).
    #[test]
    fn issue_18_private_writes_do_not_depend_on_the_umask() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let reports = dir.path().join("reports");
        private_dir(&reports).unwrap();
        assert_eq!(mode(&reports), DIR_MODE);
        let fresh = reports.join("B1.json");
        write_private(&fresh, b"{}").unwrap();
        assert_eq!(mode(&fresh), FILE_MODE);
        let old = reports.join("B0.csv");
        std::fs::write(&old, b"old").unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&old, b"new").unwrap();
        assert_eq!(mode(&old), FILE_MODE);
        assert_eq!(std::fs::read(&old).unwrap(), b"new");
    }

    #[test]
    fn issue_18_a_loose_tree_is_tightened() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("state");
        std::fs::create_dir_all(root.join("cards")).unwrap();
        std::fs::write(root.join("cards/AA.json"), b"{}").unwrap();
        std::fs::write(root.join("pin-mailer.jsonl"), b"").unwrap();
        for (p, m) in [("", 0o755), ("cards", 0o755), ("cards/AA.json", 0o644)] {
            std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(m)).unwrap();
        }
        std::fs::set_permissions(
            root.join("pin-mailer.jsonl"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        let changed = tighten_tree(&root).unwrap();
        assert_eq!(changed.len(), 3, "{changed:?}");
        assert_eq!(mode(&root), DIR_MODE);
        assert_eq!(mode(&root.join("cards")), DIR_MODE);
        assert_eq!(mode(&root.join("cards/AA.json")), FILE_MODE);
        assert!(tighten_tree(&root).unwrap().is_empty());
    }

    #[test]
    fn issue_18_loose_state_left_by_an_older_version_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        let db = state.join("x.db");
        drop(open_sqlite(&db, "CREATE TABLE IF NOT EXISTS t (v TEXT);").unwrap());
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
        let conn = open_sqlite(&db, "").unwrap();
        conn.execute("INSERT INTO t VALUES ('x')", []).unwrap();
        assert_eq!(mode(&state), DIR_MODE);
        assert_eq!(mode(&db), FILE_MODE);
        for companion in wal_files(&db) {
            assert_eq!(mode(&companion), FILE_MODE, "{}", companion.display());
        }
    }
}
