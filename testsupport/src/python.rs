//! Python for the tests that drive the daemon as clients do (`examples/idcardd_client.py`).

use std::process::{Command, Stdio};

/// A python3 that can `import zmq` (`scripts/setup.sh` installs python3-zmq for
/// /usr/bin/python3), or `None`: the caller prints why it skips and returns.
pub fn python_with_zmq() -> Option<String> {
    ["python3", "/usr/bin/python3"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import zmq"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        })
        .map(str::to_string)
}
