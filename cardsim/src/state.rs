//! The card's non-volatile memory: everything that survives power loss (files, life cycle, PIN
//! and PUK with their counters, card keys with their failure counters, serial), persisted as
//! JSON with an atomic replace (write a temporary file, fsync, rename, fsync the directory) so a
//! crash of the simulator leaves either the old or the new state, like an EEPROM page write.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use apdu::error::{Error, TransportError};
use apdu::fcp::LifeCycle;
use apdu::layout;
use apdu::sm::{AesKey, KeyRef};
use serde::{Deserialize, Serialize};

use crate::fs::{FileSystem, Node, NodeId};
use crate::hexser;

/// Version of the state file layout.
pub(crate) const FORMAT: u32 = 1;

/// Mode of a card state file: owner only (issue 18: they were 0644 and hold PINs and keys).
pub(crate) const STATE_FILE_MODE: u32 = 0o600;

/// The card's fixed properties, chosen at creation (what the ATR advertises).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Geometry {
    /// Extended-length APDUs accepted.
    pub extended_length: bool,
    /// Largest command data field.
    pub max_command_data: usize,
    /// Largest response data field.
    pub max_response_data: usize,
    /// Bytes of memory for files.
    pub memory_capacity: usize,
}

/// A PIN or PUK: its value (ASCII digits) and remaining tries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Secret {
    /// The reference value; `None` until personalization sets it.
    #[serde(with = "hexser::opt")]
    pub value: Option<Vec<u8>>,
    /// Presentations left before blocking (0 = blocked).
    pub tries_left: u8,
}

/// One diversified card key and its failed-authentication counter.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CardKey {
    /// The key bytes (16 or 32).
    #[serde(with = "hexser::vec")]
    pub key: Vec<u8>,
    /// Failed MUTUAL AUTHENTICATE attempts in a row; blocked at [`layout::KEY_MAX_FAILURES`].
    pub failures: u8,
}

impl std::fmt::Debug for CardKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CardKey {{ key: REDACTED, failures: {} }}",
            self.failures
        )
    }
}

impl CardKey {
    /// The key as an [`AesKey`]; validated at load, so this only fails on a corrupted state.
    pub fn aes(&self) -> Option<AesKey> {
        AesKey::from_slice(&self.key).ok()
    }

    /// True once the key reference is blocked.
    pub fn blocked(&self) -> bool {
        self.failures >= layout::KEY_MAX_FAILURES
    }
}

/// Everything the card keeps across power cycles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct CardState {
    /// [`FORMAT`].
    pub format: u32,
    /// The 8-byte card serial (GET DATA 0101), the diversification input of the card keys.
    #[serde(with = "hexser::vec")]
    pub serial: Vec<u8>,
    /// Fixed card properties.
    pub geometry: Geometry,
    /// Files.
    pub fs: FileSystem,
    /// Id of the LDS1 application DF, whose life-cycle byte is the card's life cycle.
    pub app: NodeId,
    /// The PIN (transport PIN, then the holder's).
    pub pin: Secret,
    /// The PUK.
    pub puk: Secret,
    /// True while the PIN is still the transport PIN set at personalization.
    pub pin_is_transport: bool,
    /// Personalization key (key reference 01).
    pub perso_key: CardKey,
    /// Terminal key (key reference 02).
    pub terminal_key: CardKey,
}

impl CardState {
    /// A fresh card: MF with an empty LDS1 application DF in the creation state, holding its
    /// own personalization and terminal keys.
    pub fn fresh(
        serial: [u8; 8],
        geometry: Geometry,
        perso_key: &AesKey,
        terminal_key: &AesKey,
    ) -> CardState {
        let mut fs = FileSystem::new();
        let app = fs.next_id;
        fs.next_id += 1;
        let root = fs.root_id();
        fs.insert(
            root,
            Node::df(
                app,
                Some(layout::APP_DF_FID),
                Some(layout::LDS1_AID.to_vec()),
                LifeCycle::Creation,
            ),
        );
        let key = |k: &AesKey| CardKey {
            key: k.as_bytes().to_vec(),
            failures: 0,
        };
        CardState {
            format: FORMAT,
            serial: serial.to_vec(),
            geometry,
            fs,
            app,
            pin: Secret {
                value: None,
                tries_left: layout::PIN_MAX_TRIES,
            },
            puk: Secret {
                value: None,
                tries_left: layout::PUK_MAX_TRIES,
            },
            pin_is_transport: false,
            perso_key: key(perso_key),
            terminal_key: key(terminal_key),
        }
    }

    /// The serial as an array (validated at load).
    pub fn serial(&self) -> [u8; 8] {
        let mut s = [0u8; 8];
        if self.serial.len() == 8 {
            s.copy_from_slice(&self.serial);
        }
        s
    }

    /// The application life cycle.
    pub fn lcs(&self) -> LifeCycle {
        self.fs
            .get(self.app)
            .map_or(LifeCycle::Terminated, Node::life_cycle)
    }

    /// Sets the application life cycle.
    pub fn set_lcs(&mut self, lcs: LifeCycle) {
        if let Some(n) = self.fs.get_mut(self.app) {
            n.lcs = lcs.into();
        }
    }

    /// The key for a key reference.
    pub fn key(&self, r: KeyRef) -> &CardKey {
        match r {
            KeyRef::Personalization => &self.perso_key,
            KeyRef::Terminal => &self.terminal_key,
        }
    }

    /// The key for a key reference, for changing its counter.
    pub fn key_mut(&mut self, r: KeyRef) -> &mut CardKey {
        match r {
            KeyRef::Personalization => &mut self.perso_key,
            KeyRef::Terminal => &mut self.terminal_key,
        }
    }

    /// Checks a loaded state for anything a card could not be in.
    pub fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format {} (this simulator reads {FORMAT})",
                self.format
            ));
        }
        if self.serial.len() != 8 {
            return Err(format!("serial of {} bytes", self.serial.len()));
        }
        self.fs.validate()?;
        let app = self
            .fs
            .get(self.app)
            .ok_or("the application DF is missing")?;
        if app.df_name() != Some(&layout::LDS1_AID[..]) {
            return Err("the application DF does not carry the LDS1 AID".into());
        }
        let lcs = app.lcs;
        if ![0x01, 0x03, 0x04, 0x05, 0x0C].contains(&lcs) {
            return Err(format!("application life cycle {lcs:02X}"));
        }
        for (name, s, max, min) in [
            ("PIN", &self.pin, layout::PIN_MAX_TRIES, layout::PIN_MIN_LEN),
            ("PUK", &self.puk, layout::PUK_MAX_TRIES, layout::PUK_MIN_LEN),
        ] {
            if s.tries_left > max {
                return Err(format!("{name} counter {} above {max}", s.tries_left));
            }
            if s.value
                .as_ref()
                .is_some_and(|v| v.len() < min || v.len() > layout::SECRET_MAX_LEN)
            {
                return Err(format!("{name} of invalid length"));
            }
        }
        for k in [&self.perso_key, &self.terminal_key] {
            if k.aes().is_none() {
                return Err(format!("card key of {} bytes", k.key.len()));
            }
        }
        let g = &self.geometry;
        if g.max_command_data == 0 || g.max_response_data == 0 || g.memory_capacity == 0 {
            return Err("zero card capacity".into());
        }
        Ok(())
    }

    /// Reads and validates a state file. A missing file is an I/O error; anything unparsable or
    /// inconsistent is [`Error::Malformed`].
    /// A file left readable by others (before issue 18) is tightened to [`STATE_FILE_MODE`].
    pub fn load(path: &Path) -> Result<CardState, Error> {
        use std::os::unix::fs::PermissionsExt as _;
        let bytes = fs::read(path).map_err(|e| io_error(path, "read", e))?;
        if let Ok(meta) = fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                fs::set_permissions(path, fs::Permissions::from_mode(STATE_FILE_MODE))
                    .map_err(|e| io_error(path, "chmod", e))?;
            }
        }
        let state: CardState = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Malformed(format!("corrupt card state {}: {e}", path.display())))?;
        state.validate().map_err(|why| {
            Error::Malformed(format!("corrupt card state {}: {why}", path.display()))
        })?;
        Ok(state)
    }

    /// Writes the state atomically: `<path>.tmp`, fsync, rename over `path`, fsync the directory.
    /// The file is [`STATE_FILE_MODE`] (0600): it holds the card's PIN, PUK and keys.
    pub fn save(&self, path: &Path) -> Result<(), Error> {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let json = serde_json::to_vec(self)
            .map_err(|e| Error::Malformed(format!("card state does not serialise: {e}")))?;
        let tmp = tmp_path(path);
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(STATE_FILE_MODE)
            .open(&tmp)
            .map_err(|e| io_error(&tmp, "create", e))?;
        // A temporary file left by a crash of an older version may be looser: the mode given
        // above applies only to a new file.
        file.set_permissions(fs::Permissions::from_mode(STATE_FILE_MODE))
            .map_err(|e| io_error(&tmp, "chmod", e))?;
        file.write_all(&json)
            .map_err(|e| io_error(&tmp, "write", e))?;
        file.sync_all().map_err(|e| io_error(&tmp, "fsync", e))?;
        drop(file);
        fs::rename(&tmp, path).map_err(|e| io_error(path, "rename onto", e))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        // Directory fsync makes the rename durable; not every platform allows opening a
        // directory, and the data itself is already on disk, so a failure here is not fatal.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".tmp");
    path.with_file_name(name)
}

fn io_error(path: &Path, what: &str, e: std::io::Error) -> Error {
    Error::Transport(TransportError::Other(format!(
        "simulated card state: cannot {what} {}: {e}",
        path.display()
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry() -> Geometry {
        Geometry {
            extended_length: true,
            max_command_data: 4096,
            max_response_data: 4096,
            memory_capacity: 1 << 16,
        }
    }

    #[test]
    fn fresh_state_saves_and_loads_with_diversified_keys() {
        let serial = *b"SERIAL01";
        let state = CardState::fresh(
            serial,
            geometry(),
            &crate::fixtures::test_perso_master(),
            &crate::fixtures::test_terminal_master(),
        );
        assert!(state.validate().is_ok());
        assert_eq!(state.lcs(), LifeCycle::Creation);
        let want = crate::fixtures::test_terminal_master();
        assert_eq!(state.key(KeyRef::Terminal).aes(), Some(want));
        assert_ne!(state.perso_key.key, state.terminal_key.key);
        assert!(
            !format!("{:?}", state.perso_key).contains(&hex::encode_upper(&state.perso_key.key))
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        state.save(&path).unwrap();
        assert!(!tmp_path(&path).exists());
        assert_eq!(CardState::load(&path).unwrap(), state);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"serial\":\"53455249414C3031\""), "{text}");
    }

    #[test]
    fn issue_18_state_files_are_owner_only() {
        use std::os::unix::fs::PermissionsExt as _;
        let state = CardState::fresh(
            [2; 8],
            geometry(),
            &crate::fixtures::test_perso_master(),
            &crate::fixtures::test_terminal_master(),
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        // A temporary file left loose by a crash of an older version does not leak its mode.
        std::fs::write(tmp_path(&path), b"{}").unwrap();
        std::fs::set_permissions(tmp_path(&path), std::fs::Permissions::from_mode(0o644)).unwrap();
        state.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, STATE_FILE_MODE);
        // Saving over a loose file from before issue 18 replaces it with a private one.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        state.save(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, STATE_FILE_MODE);
    }

    #[test]
    fn inconsistent_states_are_rejected() {
        let fresh = || {
            CardState::fresh(
                [1; 8],
                geometry(),
                &crate::fixtures::test_perso_master(),
                &crate::fixtures::test_terminal_master(),
            )
        };
        let mut cases = Vec::new();
        let mut s = fresh();
        s.pin.tries_left = 4;
        cases.push((s, "PIN counter"));
        let mut s = fresh();
        s.puk.value = Some(b"123".to_vec());
        cases.push((s, "PUK length"));
        let mut s = fresh();
        s.perso_key.key = vec![0; 15];
        cases.push((s, "key length"));
        let mut s = fresh();
        s.app = 0;
        cases.push((s, "application DF"));
        let mut s = fresh();
        s.geometry.max_response_data = 0;
        cases.push((s, "geometry"));
        let mut s = fresh();
        s.format = 2;
        cases.push((s, "format"));
        for (s, why) in cases {
            assert!(s.validate().is_err(), "{why}");
        }
    }
}
