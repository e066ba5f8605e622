//! Binding the endpoints safely: ipc socket files with mode 0660 in a 0750 directory, tcp only
//! on loopback unless allowed, and beyond loopback only with CURVE.
//!
//! libzmq creates an ipc socket file in `zmq_bind` itself, on the calling thread: the umask is
//! narrowed around that call, so the file is never usable by "other", then its mode is set to
//! 0660 and its group given. A runtime directory the daemon creates is made 0750 before the
//! socket exists, so nobody outside the owner and group can reach the file in the moment
//! between bind and chmod.

use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::curve::ServerKey;

/// Mode of the socket files.
pub const SOCKET_MODE: u32 = 0o660;
/// Mode of a runtime directory the daemon creates.
pub const DIR_MODE: u32 = 0o750;

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `ipc://PATH`.
    Ipc(PathBuf),
    /// `tcp://HOST:PORT` (host as written).
    Tcp {
        /// Host or address.
        host: String,
        /// The whole endpoint string, for ZeroMQ.
        endpoint: String,
    },
}

/// Parses `ipc://PATH` or `tcp://HOST:PORT`.
pub fn parse_endpoint(endpoint: &str) -> anyhow::Result<Endpoint> {
    if let Some(path) = endpoint.strip_prefix("ipc://") {
        if path.is_empty() {
            anyhow::bail!("endpoint {endpoint:?} has no path");
        }
        return Ok(Endpoint::Ipc(PathBuf::from(path)));
    }
    if let Some(rest) = endpoint.strip_prefix("tcp://") {
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| anyhow::anyhow!("endpoint {endpoint:?} has no port"))?;
        port.parse::<u16>()
            .map_err(|_| anyhow::anyhow!("endpoint {endpoint:?}: bad port {port:?}"))?;
        return Ok(Endpoint::Tcp {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            endpoint: endpoint.to_string(),
        });
    }
    anyhow::bail!("endpoint {endpoint:?}: expected ipc://PATH or tcp://HOST:PORT")
}

/// Whether a tcp host is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Refuses a tcp endpoint on a non-loopback address unless `allow` and `curve` (CURVE
/// configured); logs the listed clients' reach when allowed.
pub fn check_exposure(endpoint: &Endpoint, allow: bool, curve: bool) -> anyhow::Result<()> {
    if let Endpoint::Tcp { host, endpoint } = endpoint {
        if !is_loopback(host) {
            if !allow {
                anyhow::bail!(
                    "refusing to listen on {endpoint}: {host:?} is not a loopback address; set \
                     server.allow_non_loopback = true and CURVE (server.curve_key_file, \
                     server.curve_clients) to accept it"
                );
            }
            if !curve {
                anyhow::bail!(
                    "refusing to listen on {endpoint} without CURVE: {host:?} is not a loopback \
                     address; set server.curve_key_file and server.curve_clients"
                );
            }
            tracing::warn!(
                %endpoint,
                "listening on a non-loopback address: the listed CURVE clients can drive the card readers"
            );
        }
    }
    Ok(())
}

/// Looks up a group by name.
fn group_id(name: &str) -> anyhow::Result<nix::unistd::Gid> {
    nix::unistd::Group::from_name(name)
        .with_context(|| format!("cannot look up group {name:?}"))?
        .map(|g| g.gid)
        .ok_or_else(|| anyhow::anyhow!("socket_group {name:?}: no such group"))
}

/// Creates the socket's directory (mode 0750 for every level it creates) and refuses to bind
/// over a socket that another process still answers on; a stale file is removed.
fn prepare_ipc_path(path: &Path, gid: Option<nix::unistd::Gid>) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            // The process umask may have narrowed the mode; state it exactly.
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))
                .with_context(|| format!("cannot set the mode of {}", dir.display()))?;
            if let Some(gid) = gid {
                nix::unistd::chown(dir, None, Some(gid)).with_context(|| {
                    format!("cannot give {} to the socket group", dir.display())
                })?;
            }
        }
    }
    if std::fs::symlink_metadata(path).is_ok() {
        if UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "{} is in use by another process (is idcardd already running?)",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("cannot remove the stale socket {}", path.display()))?;
    }
    Ok(())
}

/// Binds `endpoint` on `socket`, with CURVE (`curve`) on a tcp endpoint. Returns the socket
/// file for an ipc endpoint, to be removed at exit.
pub fn bind(
    socket: &zmq::Socket,
    endpoint: &str,
    group: Option<&str>,
    allow_non_loopback: bool,
    curve: Option<&ServerKey>,
) -> anyhow::Result<Option<PathBuf>> {
    let parsed = parse_endpoint(endpoint)?;
    check_exposure(&parsed, allow_non_loopback, curve.is_some())?;
    match parsed {
        Endpoint::Tcp { endpoint, .. } => {
            if let Some(key) = curve {
                key.apply(socket)
                    .with_context(|| format!("cannot set up CURVE on {endpoint}"))?;
            }
            socket
                .bind(&endpoint)
                .with_context(|| format!("cannot bind {endpoint}"))?;
            Ok(None)
        }
        Endpoint::Ipc(path) => {
            let gid = group.map(group_id).transpose()?;
            prepare_ipc_path(&path, gid)?;
            // With this umask nobody outside the owner and group can use the file even before
            // the chmod below, in a directory the daemon did not create too. It only takes
            // rights away from "other", so a file or directory another thread creates meanwhile
            // stays usable by its owner.
            let previous = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o007));
            let bound = socket.bind(&format!("ipc://{}", path.display()));
            nix::sys::stat::umask(previous);
            bound.with_context(|| format!("cannot bind {}", path.display()))?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(SOCKET_MODE))
                .with_context(|| format!("cannot set the mode of {}", path.display()))?;
            if let Some(gid) = gid {
                nix::unistd::chown(&path, None, Some(gid)).with_context(|| {
                    format!("cannot give {} to the socket group", path.display())
                })?;
            }
            Ok(Some(path))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            parse_endpoint("ipc:///run/x.sock").unwrap(),
            Endpoint::Ipc("/run/x.sock".into())
        );
        assert!(parse_endpoint("ipc://").is_err());
        assert!(parse_endpoint("tcp://127.0.0.1").is_err());
        assert!(parse_endpoint("tcp://127.0.0.1:x").is_err());
        assert!(parse_endpoint("udp://a:1").is_err());
    }

    #[test]
    fn only_loopback_without_permission() {
        let ok = |e: &str, allow, curve| {
            check_exposure(&parse_endpoint(e).unwrap(), allow, curve).is_ok()
        };
        assert!(ok("tcp://127.0.0.1:5555", false, false));
        assert!(ok("tcp://127.9.9.9:5555", false, false));
        assert!(ok("tcp://[::1]:5555", false, false));
        assert!(ok("tcp://localhost:5555", false, false));
        assert!(!ok("tcp://0.0.0.0:5555", false, false));
        assert!(!ok("tcp://*:5555", false, false));
        assert!(!ok("tcp://192.168.1.10:5555", false, false));
        assert!(!ok("tcp://kiosk.example:5555", false, false));
        assert!(!ok("tcp://0.0.0.0:5555", false, true));
        assert!(!ok("tcp://0.0.0.0:5555", true, false), "CURVE is required");
        assert!(ok("tcp://0.0.0.0:5555", true, true));
        assert!(ok("ipc:///tmp/x.sock", false, false));
    }
}
