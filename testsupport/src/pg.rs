//! A throwaway PostgreSQL server for the tests of the PostgreSQL journal (issue 17).
//!
//! [`PgServer::start`] makes a cluster in a temporary directory (`initdb`, no fsync), starts it on
//! a free loopback port with its Unix socket in that directory, and creates the login role
//! `idcardd` (random password) owning the database `idcardd`. Tests connect with [`PgServer::url`]
//! (or [`PgServer::url_with_password`]), look at or tamper with the data as the superuser with
//! [`PgServer::psql`], and cause outages with [`PgServer::stop`], [`PgServer::start_again`],
//! [`PgServer::restart`] and [`PgServer::kill_connections`].
//!
//! PostgreSQL refuses to run as root: when the tests run as root, `initdb` and `pg_ctl` run as
//! the unprivileged `postgres` user (made by Debian's package) through `runuser`, and the
//! directory is `postgres`'s; otherwise they run as the current user.
//!
//! Each server has a watchdog: a detached `sh`, in its own process group, reading a pipe whose
//! other end only this process holds. When the process ends, however it ends (a failed test, an
//! abort, Ctrl-C), the pipe closes and the watchdog stops the server and removes its directory, so
//! no `postgres` process outlives the tests. That is also what stops the process-wide [`shared`]
//! server, which is never dropped.
//!
//! Tests within a binary run in parallel: sharing [`shared`] is fine for tests that only need a
//! database of their own ([`PgServer::create_database`]); a test that stops or restarts the
//! server starts its own.
//!
//! ```no_run
//! use test_support::pg::{self, PgServer};
//!
//! if !pg::skip_unless_available() {
//!     return;
//! }
//! let server = PgServer::start();
//! server.psql("CREATE TABLE t (x int); INSERT INTO t VALUES (1);");
//! server.restart();
//! assert_eq!(server.psql("SELECT x FROM t").trim(), "1");
//! ```

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::process::which;

/// The login role the journal connects as, and the name of its database.
pub const ROLE: &str = "idcardd";

/// What a test prints, and returns on, when PostgreSQL is not installed.
pub const SKIP_MESSAGE: &str =
    "skipped: PostgreSQL is not installed (bash scripts/setup.sh installs it)";

/// How many fresh ports [`PgServer::start`] tries when another process takes the one it picked.
const PORT_ATTEMPTS: usize = 5;

/// How long [`PgServer::kill_connections`] waits for the killed backends to be gone.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// Environment variables that would point libpq or the server elsewhere than the arguments say.
const PG_ENV: &[&str] = &[
    "PGDATA",
    "PGHOST",
    "PGHOSTADDR",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGPASSWORD",
    "PGPASSFILE",
    "PGOPTIONS",
    "PGSERVICE",
    "PGSERVICEFILE",
    "PGSSLMODE",
    "PGTZ",
];

/// The PostgreSQL programs the helpers run.
#[derive(Debug, Clone)]
struct Binaries {
    /// Makes the cluster.
    initdb: PathBuf,
    /// Starts and stops the server.
    pg_ctl: PathBuf,
    /// Runs SQL as the superuser over the socket.
    psql: PathBuf,
}

/// The binaries of the highest version under `/usr/lib/postgresql/*/bin` (Debian keeps them
/// off `PATH`), else those on `PATH`; `None` if some are missing.
fn binaries() -> Option<&'static Binaries> {
    static BINARIES: OnceLock<Option<Binaries>> = OnceLock::new();
    BINARIES
        .get_or_init(|| {
            let in_dir = |dir: &Path| {
                let bins = Binaries {
                    initdb: dir.join("initdb"),
                    pg_ctl: dir.join("pg_ctl"),
                    psql: dir.join("psql"),
                };
                [&bins.initdb, &bins.pg_ctl, &bins.psql]
                    .iter()
                    .all(|p| p.is_file())
                    .then_some(bins)
            };
            let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|entry| {
                    let name = entry.file_name().into_string().ok()?;
                    let version = name
                        .split('.')
                        .map(str::parse)
                        .collect::<Result<Vec<u32>, _>>()
                        .ok()?;
                    Some((version, entry.path().join("bin")))
                })
                .collect();
            versions.sort();
            versions
                .iter()
                .rev()
                .find_map(|(_, dir)| in_dir(dir))
                .or_else(|| {
                    Some(Binaries {
                        initdb: which("initdb")?,
                        pg_ctl: which("pg_ctl")?,
                        psql: which("psql")?,
                    })
                })
        })
        .as_ref()
}

/// Whether this process runs as root (effective uid 0), when PostgreSQL must be run as `postgres`.
fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|status| {
                let uids = status.lines().find(|l| l.starts_with("Uid:"))?.to_owned();
                Some(uids.split_whitespace().nth(2)? == "0")
            })
            .unwrap_or_else(|| {
                Command::new("id")
                    .arg("-u")
                    .output()
                    .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            })
    })
}

/// Whether the `postgres` user exists (needed only when running as root).
fn postgres_user_exists() -> bool {
    Command::new("id")
        .args(["-u", "postgres"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether [`PgServer::start`] can work here: the PostgreSQL binaries are installed and, when
/// running as root, so is the `postgres` user.
pub fn available() -> bool {
    binaries().is_some() && (!is_root() || postgres_user_exists())
}

/// `true` if PostgreSQL is available; otherwise prints [`SKIP_MESSAGE`] and returns `false`, and
/// the test returns.
pub fn skip_unless_available() -> bool {
    let available = available();
    if !available {
        eprintln!("{SKIP_MESSAGE}");
    }
    available
}

/// A free TCP port on 127.0.0.1, as the kernel picks it for a port-0 bind. Another process may
/// take it before the server binds it: [`PgServer::start`] then tries another.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap_or_else(|e| panic!("cannot find a free port on 127.0.0.1: {e}"))
        .port()
}

/// 16 random bytes from the kernel, in hex.
fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .unwrap_or_else(|e| panic!("cannot read /dev/urandom: {e}"));
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A database name the helpers accept: one that needs no quoting in SQL or a URL.
fn check_name(name: &str) {
    assert!(
        !name.is_empty()
            && name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
        "database name {name:?}: use lowercase ASCII letters, digits and '_' (at most 63)"
    );
}

/// A PostgreSQL server of its own, in a temporary directory, on a loopback port; stopped and
/// removed on drop (and by its watchdog if the process ends without dropping it).
#[derive(Debug)]
pub struct PgServer {
    /// The programs, found once per process.
    bins: &'static Binaries,
    /// The directory holding `data/` (the cluster), `sock/` (the Unix socket) and `log`; removed
    /// on drop.
    dir: tempfile::TempDir,
    /// The TCP port on 127.0.0.1, kept across [`PgServer::restart`].
    port: u16,
    /// The `idcardd` role's password.
    password: String,
    /// Stops the server when this process ends; see the module documentation.
    watchdog: Option<Child>,
    /// The write end of the watchdog's pipe: dropping it tells the watchdog to act.
    watchdog_pipe: Option<ChildStdin>,
}

impl PgServer {
    /// Makes and starts a cluster, with the role and database `idcardd`. Panics, saying why, if
    /// it cannot (call [`skip_unless_available`] first). Takes about a second.
    pub fn start() -> PgServer {
        let bins = binaries().unwrap_or_else(|| panic!("{SKIP_MESSAGE}"));
        let root = is_root();
        assert!(
            !root || postgres_user_exists(),
            "running as root, but there is no `postgres` user to run PostgreSQL as (PostgreSQL \
             refuses to run as root; `bash scripts/setup.sh` installs the package that makes it)"
        );
        // As root, /tmp rather than TMPDIR: every directory above the cluster must be
        // traversable by `postgres`.
        let base = if root {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("idcardd-pg-")
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("cannot make a directory in {}: {e}", base.display()));
        std::fs::create_dir(dir.path().join("sock"))
            .unwrap_or_else(|e| panic!("cannot make {}/sock: {e}", dir.path().display()));
        if root {
            let out = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .output()
                .unwrap_or_else(|e| panic!("cannot run chown: {e}"));
            assert!(
                out.status.success(),
                "chown -R postgres: {}: {}",
                dir.path().display(),
                crate::process::text(&out)
            );
        }
        let mut server = PgServer {
            bins,
            dir,
            port: 0,
            password: random_hex(),
            watchdog: None,
            watchdog_pipe: None,
        };
        // The watchdog first, so that a panic from here on leaves nothing running.
        server.spawn_watchdog();

        let data = server.data_dir();
        let mut initdb = server.server_command(&bins.initdb);
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
            ])
            .args(["--locale=C", "--no-sync"]);
        server.run_checked(initdb, "initdb");

        let mut started = false;
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            let out = server.pg_ctl_start();
            if out.status.success() {
                started = true;
                break;
            }
            let log = server.log();
            if !log.contains("Address already in use") && !log.contains("could not bind") {
                panic!(
                    "pg_ctl start failed: {}\n--- server log ---\n{log}",
                    crate::process::text(&out)
                );
            }
        }
        assert!(
            started,
            "pg_ctl start: every port tried was taken\n--- server log ---\n{}",
            server.log()
        );
        server.psql_in(
            "postgres",
            &format!(
                "CREATE ROLE {ROLE} LOGIN PASSWORD '{}';\nCREATE DATABASE {ROLE} OWNER {ROLE};\n",
                server.password
            ),
        );
        server
    }

    /// `postgres://idcardd@127.0.0.1:PORT/idcardd`: no password in it (see [`Self::password`]).
    pub fn url(&self) -> String {
        self.url_of(ROLE)
    }

    /// [`Self::url`] with the password: `postgres://idcardd:PASSWORD@127.0.0.1:PORT/idcardd`.
    pub fn url_with_password(&self) -> String {
        self.url_with_password_of(ROLE)
    }

    /// The URL of `database` on this server, as the `idcardd` role, without the password.
    pub fn url_of(&self, database: &str) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{database}", self.port)
    }

    /// [`Self::url_of`] with the password.
    pub fn url_with_password_of(&self, database: &str) -> String {
        format!(
            "postgres://{ROLE}:{}@127.0.0.1:{}/{database}",
            self.password, self.port
        )
    }

    /// The `idcardd` role's password (random hex, different for every server).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// The TCP port on 127.0.0.1, the same across [`Self::restart`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory of the Unix socket (the `host` for libpq); connections over it as any role
    /// are trusted.
    pub fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// The `psql` program, for a test that connects as a client would: `psql <url> -c ...`.
    pub fn psql_program(&self) -> &Path {
        &self.bins.psql
    }

    /// The server's log so far (what a failing test may want to print).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Runs `sql` (one or more statements) in the database `idcardd` as the superuser over the
    /// socket, stopping at the first error, and returns stdout: rows only, one a line, columns
    /// separated by `|`. Panics with psql's stderr if it fails.
    pub fn psql(&self, sql: &str) -> String {
        self.psql_in(ROLE, sql)
    }

    /// [`Self::psql`] in `database`.
    pub fn psql_in(&self, database: &str, sql: &str) -> String {
        let mut child = Command::new(&self.bins.psql)
            .env_clear_pg()
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .arg("-h")
            .arg(self.socket_dir())
            .arg("-p")
            .arg(self.port.to_string())
            .args(["-U", "postgres", "-d", database, "-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bins.psql.display()));
        // psql reads all of stdin before it exits, so writing everything first cannot block
        // forever.
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(sql.as_bytes())
            .unwrap_or_else(|e| panic!("cannot write SQL to psql: {e}"));
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("psql: {e}"));
        assert!(
            out.status.success(),
            "psql in {database} failed ({}):\n{}\n--- SQL ---\n{sql}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Creates the database `name` (lowercase letters, digits, `_`), owned by `idcardd`, and
    /// returns its URL (as [`Self::url_of`]: no password). Panics if it exists.
    pub fn create_database(&self, name: &str) -> String {
        check_name(name);
        self.psql_in("postgres", &format!("CREATE DATABASE {name} OWNER {ROLE};"));
        self.url_of(name)
    }

    /// Stops the server (`pg_ctl stop -m fast`: connections are closed, the data is kept) and
    /// waits until it is gone.
    pub fn stop(&self) {
        let mut cmd = self.server_command(&self.bins.pg_ctl);
        cmd.arg("-D")
            .arg(self.data_dir())
            .args(["-m", "fast", "-w", "stop"]);
        self.run_checked(cmd, "pg_ctl stop");
    }

    /// Starts the stopped server again, on the same port with the same data, and waits until it
    /// accepts connections. Panics if the port was taken meanwhile.
    pub fn start_again(&self) {
        let out = self.pg_ctl_start();
        assert!(
            out.status.success(),
            "pg_ctl start (again, port {}) failed: {}\n--- server log ---\n{}",
            self.port,
            crate::process::text(&out),
            self.log()
        );
    }

    /// [`Self::stop`] then [`Self::start_again`]: the database restarted under a client.
    pub fn restart(&self) {
        self.stop();
        self.start_again();
    }

    /// Terminates every backend of the `idcardd` role (in every database), waits until they are
    /// gone, and returns how many there were: an outage cheaper than [`Self::restart`]. The
    /// server keeps running and accepts new connections.
    pub fn kill_connections(&self) -> usize {
        // In the select list, so that only the filtered rows are terminated.
        let rows = self.psql_in(
            "postgres",
            &format!(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE usename = '{ROLE}';"
            ),
        );
        let pids: Vec<&str> = rows
            .lines()
            .filter_map(|row| row.split('|').next())
            .filter(|pid| !pid.is_empty())
            .collect();
        if pids.is_empty() {
            return 0;
        }
        let query = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE pid IN ({});",
            pids.join(",")
        );
        let deadline = Instant::now() + KILL_WAIT;
        while self.psql_in("postgres", &query).trim() != "0" {
            assert!(
                Instant::now() < deadline,
                "backends {pids:?} still there {KILL_WAIT:?} after pg_terminate_backend"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        pids.len()
    }

    /// `<dir>/data`, the cluster.
    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `pg_ctl start -w` with the server's options, its output.
    fn pg_ctl_start(&self) -> Output {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=off -c max_connections=200",
            self.port,
            self.socket_dir().display()
        );
        let mut cmd = self.server_command(&self.bins.pg_ctl);
        cmd.arg("-D")
            .arg(self.data_dir())
            .arg("-o")
            .arg(options)
            .arg("-l")
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "start"]);
        self.output(cmd, "pg_ctl start")
    }

    /// A command running `program` as the user PostgreSQL runs as: `postgres` through `runuser`
    /// when this process is root, else this process's user. Runs in the server's directory (the
    /// working directory may not be readable by `postgres`).
    fn server_command(&self, program: &Path) -> Command {
        let mut cmd = if is_root() {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        };
        cmd.env_clear_pg().current_dir(self.dir.path());
        cmd
    }

    /// Runs `cmd` to completion, its stdin closed; panics if it cannot start.
    fn output(&self, mut cmd: Command, what: &str) -> Output {
        cmd.stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"))
    }

    /// [`Self::output`], panicking with the output and the server log if it fails.
    fn run_checked(&self, cmd: Command, what: &str) {
        let out = self.output(cmd, what);
        assert!(
            out.status.success(),
            "{what} failed ({}): {}\n--- server log ---\n{}",
            out.status,
            crate::process::text(&out),
            self.log()
        );
    }

    /// Starts the watchdog: a `sh` in its own process group (Ctrl-C on the tests does not reach
    /// it) that waits for end of file on its stdin, then stops the server at once and removes
    /// the directory. Only this process holds the pipe's write end (std opens it close-on-exec).
    fn spawn_watchdog(&mut self) {
        use std::os::unix::process::CommandExt;
        const SCRIPT: &str = r#"trap '' INT HUP
cat >/dev/null
"$@" -D "$PG_WATCHDOG_DATA" -m immediate stop >/dev/null 2>&1
rm -rf "$PG_WATCHDOG_DIR""#;
        let mut cmd = Command::new("sh");
        cmd.args(["-c", SCRIPT, "idcardd-pg-watchdog"]);
        if is_root() {
            cmd.args(["runuser", "-u", "postgres", "--"]);
        }
        let mut child = cmd
            .arg(&self.bins.pg_ctl)
            .env_clear_pg()
            .env("PG_WATCHDOG_DATA", self.data_dir())
            .env("PG_WATCHDOG_DIR", self.dir.path())
            .current_dir("/")
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the PostgreSQL watchdog (sh): {e}"));
        self.watchdog_pipe = child.stdin.take();
        self.watchdog = Some(child);
    }
}

impl Drop for PgServer {
    /// Stops the server at once (`pg_ctl stop -m immediate`), then lets the watchdog finish
    /// (it removes the directory) and waits for it.
    fn drop(&mut self) {
        if self.port != 0 {
            let mut cmd = self.server_command(&self.bins.pg_ctl);
            cmd.arg("-D")
                .arg(self.data_dir())
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // Not running (stopped by the test, or never started) is fine.
            let _ = cmd.stdin(Stdio::null()).status();
        }
        drop(self.watchdog_pipe.take());
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.wait();
        }
    }
}

/// The process-wide server, started by the first call: for tests that need only a database of
/// their own ([`PgServer::create_database`]) and never stop the server. Never dropped: its
/// watchdog stops it and removes its directory when the test binary exits.
pub fn shared() -> &'static PgServer {
    static SHARED: OnceLock<PgServer> = OnceLock::new();
    SHARED.get_or_init(PgServer::start)
}

/// Removes the libpq and server variables (`PGHOST`, `PGPORT`, ...) a developer's shell may set,
/// so that only the arguments say where to connect.
trait EnvClearPg {
    /// The command, without those variables.
    fn env_clear_pg(&mut self) -> &mut Self;
}

impl EnvClearPg for Command {
    fn env_clear_pg(&mut self) -> &mut Self {
        for var in PG_ENV {
            self.env_remove(var);
        }
        self
    }
}
