//! CURVE on tcp endpoints: the server's key file and the ZAP handler that lets in only the
//! listed client keys.
//!
//! The key file is TOML with the z85 `public` and `secret` keys. It is created with mode 0600 at
//! the first start when it does not exist, and refused when group or others may read it. The
//! public key is logged at start: clients need it as their `curve_serverkey`.
//!
//! libzmq asks the ZAP handler bound on `inproc://zeromq.zap.01` (RFC 27) about every CURVE
//! handshake; [`Zap`] answers 200 for a listed client key and 400 for any other, so an unknown
//! client never gets past the handshake and is never answered.

use std::collections::HashSet;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::Context as _;

use super::background::Background;
use super::config::decode_key;
use super::protocol::clip;

/// The ZAP endpoint libzmq asks (RFC 27).
pub const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
/// The ZAP domain of the daemon's CURVE sockets.
pub const ZAP_DOMAIN: &str = "idcardd";

/// The server's CURVE key pair.
pub struct ServerKey {
    /// z85, for the log and for clients.
    pub public: String,
    /// The 32-byte secret key.
    secret: zeroize::Zeroizing<Vec<u8>>,
}

/// The key file as written.
#[derive(serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    /// z85 public key.
    public: String,
    /// z85 secret key.
    secret: String,
}

impl ServerKey {
    /// Reads `path`, or creates it (mode 0600) with a new key pair when it does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<ServerKey> {
        if zmq::has("curve") != Some(true) {
            anyhow::bail!("this libzmq was built without CURVE: cannot use server.curve_key_file");
        }
        if !path.exists() {
            let pair = zmq::CurveKeyPair::new().context("generating a CURVE key pair")?;
            let file = KeyFile {
                public: zmq::z85_encode(&pair.public_key).expect("32 bytes encode"),
                secret: zmq::z85_encode(&pair.secret_key).expect("32 bytes encode"),
            };
            let text = format!(
                "# idcardd CURVE server key: keep it secret (mode 0600). Clients need `public`.\n{}",
                toml::to_string(&file)?
            );
            let mut out = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("cannot create the CURVE key file {}", path.display()))?;
            out.write_all(text.as_bytes())?;
            out.sync_all()?;
            tracing::info!(file = %path.display(), "created a CURVE server key");
        }
        let mode = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            anyhow::bail!(
                "the CURVE key file {} has mode {:o}: group or others may read it; chmod 600 it",
                path.display(),
                mode & 0o777
            );
        }
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?,
        );
        let file: KeyFile =
            toml::from_str(&text).with_context(|| format!("in {}", path.display()))?;
        decode_key(&file.public).with_context(|| format!("`public` of {}", path.display()))?;
        let secret =
            decode_key(&file.secret).with_context(|| format!("`secret` of {}", path.display()))?;
        Ok(ServerKey {
            public: file.public,
            secret: zeroize::Zeroizing::new(secret.to_vec()),
        })
    }

    /// Makes `socket` a CURVE server checked by the ZAP handler (before it binds).
    pub fn apply(&self, socket: &zmq::Socket) -> zmq::Result<()> {
        socket.set_curve_server(true)?;
        socket.set_curve_secretkey(&self.secret)?;
        socket.set_zap_domain(ZAP_DOMAIN)
    }
}

/// The answer to one ZAP request (`[version, request_id, domain, address, identity,
/// mechanism, credentials...]`): `[version, request_id, status, text, user_id, metadata]`.
pub fn zap_reply(request: &[Vec<u8>], allowed: &HashSet<[u8; 32]>) -> Vec<Vec<u8>> {
    let version = request.first().cloned().unwrap_or_else(|| b"1.0".to_vec());
    let request_id = request.get(1).cloned().unwrap_or_default();
    let key = match (request.get(5).map(Vec::as_slice), request.get(6)) {
        (Some(b"CURVE"), Some(key)) => <[u8; 32]>::try_from(key.as_slice()).ok(),
        _ => None,
    };
    let address = request
        .get(3)
        .map(|a| clip(&String::from_utf8_lossy(a)))
        .unwrap_or_default();
    let (status, text, user) = match key {
        Some(key) if allowed.contains(&key) => {
            let z85 = zmq::z85_encode(&key).unwrap_or_default();
            ("200", "OK", z85)
        }
        Some(key) => {
            let z85 = zmq::z85_encode(&key).unwrap_or_default();
            tracing::warn!(%address, key = %z85, "CURVE client refused: key not listed");
            ("400", "client key not allowed", String::new())
        }
        None => {
            tracing::warn!(%address, "refused a ZAP request that is not CURVE");
            ("400", "CURVE required", String::new())
        }
    };
    vec![
        version,
        request_id,
        status.as_bytes().to_vec(),
        text.as_bytes().to_vec(),
        user.into_bytes(),
        Vec::new(),
    ]
}

/// The ZAP handler thread; stops on drop.
pub struct Zap {
    /// The handler, stopped on drop.
    _thread: Background,
}

impl Zap {
    /// Binds the ZAP endpoint in `ctx` (before any CURVE socket binds) and starts answering.
    pub fn start(ctx: &zmq::Context, clients: &[[u8; 32]]) -> anyhow::Result<Zap> {
        let socket = ctx.socket(zmq::REP)?;
        socket.set_linger(0)?;
        socket
            .bind(ZAP_ENDPOINT)
            .context("cannot bind the ZAP handler")?;
        let allowed: HashSet<[u8; 32]> = clients.iter().copied().collect();
        let thread = Background::spawn("idcardd-zap", move |stop| {
            while !stop.is_set() {
                match socket.poll(zmq::POLLIN, 100) {
                    Ok(0) => continue,
                    Ok(_) => {}
                    Err(zmq::Error::EINTR) => continue,
                    Err(_) => return,
                }
                let Ok(request) = socket.recv_multipart(0) else {
                    return;
                };
                if socket
                    .send_multipart(zap_reply(&request, &allowed), 0)
                    .is_err()
                {
                    return;
                }
            }
        })?;
        Ok(Zap { _thread: thread })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(mechanism: &[u8], key: &[u8]) -> Vec<Vec<u8>> {
        vec![
            b"1.0".to_vec(),
            b"7".to_vec(),
            ZAP_DOMAIN.as_bytes().to_vec(),
            b"127.0.0.1".to_vec(),
            Vec::new(),
            mechanism.to_vec(),
            key.to_vec(),
        ]
    }

    #[test]
    fn only_listed_curve_keys_pass() {
        let allowed: HashSet<[u8; 32]> = [[1u8; 32]].into_iter().collect();
        let ok = zap_reply(&request(b"CURVE", &[1; 32]), &allowed);
        assert_eq!(ok[1], b"7");
        assert_eq!(ok[2], b"200");
        assert_eq!(ok[4], zmq::z85_encode(&[1; 32]).unwrap().into_bytes());
        assert_eq!(zap_reply(&request(b"CURVE", &[2; 32]), &allowed)[2], b"400");
        assert_eq!(zap_reply(&request(b"NULL", &[]), &allowed)[2], b"400");
        assert_eq!(zap_reply(&request(b"CURVE", &[1; 3]), &allowed)[2], b"400");
        assert_eq!(zap_reply(&[], &allowed).len(), 6);
    }

    #[test]
    fn key_files_are_created_0600_and_refused_when_readable_by_others() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("server.key");
        let key = ServerKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(ServerKey::load_or_create(&path).unwrap().public, key.public);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = ServerKey::load_or_create(&path).err().unwrap().to_string();
        assert!(e.contains("chmod 600"), "{e}");
    }
}
