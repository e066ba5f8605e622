//! The throwaway PostgreSQL server: it survives a restart with its data, stops for real, kills
//! the journal role's connections, and never outlives the test process.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use test_support::pg::{self, PgServer};

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Runs `sql` as the `idcardd` role over TCP, as the journal would connect.
fn psql_as_client(server: &PgServer, url: &str, sql: &str) -> String {
    let out = Command::new(server.psql_program())
        .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", url, "-c", sql])
        // TCP logins check the password (scram-sha-256), as a line's server does.
        .env("PGPASSWORD", server.password())
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "{}",
        test_support::process::text(&out)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Polls `cond` every 50 ms for up to `limit`.
fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn data_survives_a_restart_and_stop_closes_the_port() {
    if !pg::skip_unless_available() {
        return;
    }
    let started = Instant::now();
    let server = PgServer::start();
    eprintln!("cluster made and started in {:?}", started.elapsed());
    let port = server.port();
    assert_eq!(
        server.url(),
        format!("postgres://idcardd@127.0.0.1:{port}/idcardd")
    );
    assert_eq!(server.password().len(), 32);
    assert_eq!(
        server.url_with_password(),
        format!(
            "postgres://idcardd:{}@127.0.0.1:{port}/idcardd",
            server.password()
        )
    );
    assert_eq!(
        psql_as_client(
            &server,
            &server.url_with_password(),
            "SELECT current_user, current_database()"
        ),
        "idcardd|idcardd"
    );

    server.psql("CREATE TABLE schema_version (v int); INSERT INTO schema_version VALUES (3);");
    let restarted = Instant::now();
    server.restart();
    eprintln!("restarted in {:?}", restarted.elapsed());
    assert_eq!(server.port(), port);
    assert_eq!(server.psql("SELECT v FROM schema_version").trim(), "3");

    server.stop();
    assert!(!accepts(port), "port {port} still accepts after stop");
    server.start_again();
    assert!(accepts(port));
    assert_eq!(server.psql("SELECT v FROM schema_version").trim(), "3");
}

#[test]
fn a_failing_statement_panics_with_the_error() {
    if !pg::skip_unless_available() {
        return;
    }
    let server = pg::shared();
    let err = std::panic::catch_unwind(|| server.psql("SELECT * FROM no_such_table"))
        .expect_err("psql of a bad statement must panic");
    let message = err.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("no_such_table"), "{message}");
}

#[test]
fn shared_is_one_server_with_a_database_per_test() {
    if !pg::skip_unless_available() {
        return;
    }
    let first = pg::shared();
    let second = pg::shared();
    assert!(std::ptr::eq(first, second));
    let url = first.create_database("shared_test_a");
    assert_eq!(
        url,
        format!(
            "postgres://idcardd@127.0.0.1:{}/shared_test_a",
            first.port()
        )
    );
    assert_eq!(
        psql_as_client(first, &url, "SELECT current_database()"),
        "shared_test_a"
    );
    first.psql_in("shared_test_a", "CREATE TABLE only_here (x int)");
    assert_eq!(
        first
            .psql("SELECT count(*) FROM pg_tables WHERE tablename = 'only_here'")
            .trim(),
        "0"
    );
}

#[test]
fn kill_connections_ends_the_roles_sessions() {
    if !pg::skip_unless_available() {
        return;
    }
    let server = PgServer::start();
    assert_eq!(server.kill_connections(), 0);
    let client = Command::new(server.psql_program())
        .args(["-X", &server.url(), "-c", "SELECT pg_sleep(60)"])
        .env("PGPASSWORD", server.password())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run psql");
    assert!(
        eventually(Duration::from_secs(10), || {
            server
                .psql("SELECT count(*) FROM pg_stat_activity WHERE usename = 'idcardd'")
                .trim()
                == "1"
        }),
        "the client never connected"
    );
    assert_eq!(server.kill_connections(), 1);
    let out = client.wait_with_output().expect("wait for psql");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("terminat"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The server itself is still up.
    assert_eq!(psql_as_client(&server, &server.url(), "SELECT 1"), "1");
}

#[test]
fn drop_stops_the_server_and_removes_its_directory() {
    if !pg::skip_unless_available() {
        return;
    }
    let server = PgServer::start();
    let port = server.port();
    let dir = server.socket_dir().parent().unwrap().to_path_buf();
    assert!(dir.is_dir());
    drop(server);
    assert!(!accepts(port), "port {port} still accepts after drop");
    assert!(!dir.exists(), "{} is still there", dir.display());
}

/// Set in the copy of this binary that [`the_watchdog_stops_a_server_never_dropped`] runs.
const CHILD_ENV: &str = "IDCARDD_PG_WATCHDOG_CHILD";

/// In the child: starts a server, says where it is, and exits without dropping it.
#[test]
fn watchdog_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let server = PgServer::start();
    println!(
        "SERVER {} {}",
        server.port(),
        server.socket_dir().parent().unwrap().display()
    );
    std::process::exit(0);
}

#[test]
fn the_watchdog_stops_a_server_never_dropped() {
    if !pg::skip_unless_available() {
        return;
    }
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "watchdog_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .expect("run this test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("SERVER ").map(|(_, rest)| rest))
        .unwrap_or_else(|| panic!("no server line: {}", test_support::process::text(&out)));
    let (port, dir) = line.split_once(' ').unwrap();
    let port: u16 = port.parse().unwrap();
    let dir = PathBuf::from(dir);
    assert!(
        eventually(Duration::from_secs(15), || !accepts(port) && !dir.exists()),
        "the server of a process that exited is still running ({}), or {} is still there",
        accepts(port),
        dir.display()
    );
}
