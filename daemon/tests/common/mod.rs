//! What the tests that run the real `idcardd serve` share: [`Daemon`], the process in its own
//! temporary directory with simulated readers and ipc sockets.
// Each test crate that includes this module uses only part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A running `idcardd serve` in its own temporary directory; killed on drop if still running.
pub struct Daemon {
    /// The process.
    pub child: Child,
    /// Its configuration, state directory (`state/`) and ipc sockets (`run/`).
    pub dir: tempfile::TempDir,
}

impl Daemon {
    /// Starts the daemon with `sim:2` readers and `config` (TOML, may be empty) on ipc
    /// sockets in its directory, and waits until both are bound.
    pub fn start(config: &str) -> Daemon {
        Daemon::start_with(config, None, None)
    }

    /// [`Daemon::start`] with the request endpoint `endpoint` instead of the ipc one (events
    /// stay on ipc), logging at info level (`-v`) into `log` when given.
    pub fn start_with(config: &str, endpoint: Option<&str>, log: Option<&Path>) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("idcardd.toml");
        std::fs::write(&config_path, config).unwrap();
        let ipc = format!("ipc://{}", dir.path().join("run/s.sock").display());
        let mut command = Command::new(env!("CARGO_BIN_EXE_idcardd"));
        if let Some(log) = log {
            command
                .arg("-v")
                .stderr(std::fs::File::create(log).unwrap());
        }
        let child = command
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .args(["--readers", "sim:2", "--state-dir"])
            .arg(dir.path().join("state"))
            .args(["--endpoint", endpoint.unwrap_or(&ipc)])
            .arg("--events")
            .arg(format!("ipc://{}", dir.path().join("run/e.sock").display()))
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let mut daemon = Daemon { child, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        // Both sockets: the events socket may be bound a moment after the request socket.
        let bound =
            |d: &Daemon| d.events_socket().exists() && (endpoint.is_some() || d.socket().exists());
        while !bound(&daemon) {
            if let Some(status) = daemon.child.try_wait().unwrap() {
                panic!("idcardd serve exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "idcardd serve did not bind in 60 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    /// The request socket's file.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("run/s.sock")
    }

    /// The events socket's file.
    pub fn events_socket(&self) -> PathBuf {
        self.dir.path().join("run/e.sock")
    }

    /// The ipc request endpoint.
    pub fn endpoint(&self) -> String {
        format!("ipc://{}", self.socket().display())
    }

    /// The ipc events endpoint.
    pub fn events_endpoint(&self) -> String {
        format!("ipc://{}", self.events_socket().display())
    }

    /// VmRSS of the daemon in MB.
    pub fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap();
        kb / 1024.0
    }

    /// Sends SIGTERM and waits (30 s at most) for the exit: how long it took, and how it ended.
    pub fn terminate(&mut self) -> (Duration, ExitStatus) {
        let started = Instant::now();
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (started.elapsed(), status);
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no exit 30 s after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `idcardd serve` with `args`, expecting it to refuse to start; its stderr.
pub fn refused_start(config: &str, args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("idcardd.toml");
    std::fs::write(&config_path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_idcardd"))
        .arg("serve")
        .arg("--config")
        .arg(&config_path)
        .args(["--readers", "sim:1", "--state-dir"])
        .arg(dir.path())
        .arg("--events")
        .arg(format!("ipc://{}", dir.path().join("e.sock").display()))
        .args(args)
        .output()
        .unwrap();
    assert!(!out.status.success(), "expected a refusal");
    String::from_utf8_lossy(&out.stderr).into_owned()
}
