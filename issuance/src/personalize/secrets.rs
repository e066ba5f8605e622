//! Per-card transport PIN and PUK, and the PIN mailer file they go to.
//!
//! Policy: every card gets its own random transport PIN (length from the profile's PIN policy)
//! and a random 10-digit PUK, drawn from the operating system's generator (`ring`'s
//! `SystemRandom`). They are never logged, never journaled and never returned in API replies
//! or batch reports. They are appended, before they are set on the card, to a PIN mailer file
//! (`pin-mailer.jsonl`, mode 0600, fsynced) that the mailer print shop consumes; the line for a
//! card that was written again after a crash is superseded by the later line with the same
//! serial. Sealing that file for the print shop (encryption to its key) is not done yet.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use super::PersoError;

/// A card's transport PIN and PUK. `Debug` prints REDACTED; the digits are zeroized on drop.
#[derive(Clone)]
pub struct CardSecrets {
    /// The transport PIN: the holder replaces it at delivery.
    pub transport_pin: Zeroizing<String>,
    /// The PUK: unblocks the PIN.
    pub puk: Zeroizing<String>,
}

impl fmt::Debug for CardSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardSecrets(REDACTED)")
    }
}

/// `n` uniformly random decimal digits (rejection sampling: bytes >= 250 are redrawn).
fn random_digits(rng: &SystemRandom, n: usize) -> Result<Zeroizing<String>, PersoError> {
    let mut out = Zeroizing::new(String::with_capacity(n));
    let mut buf = Zeroizing::new([0u8; 32]);
    while out.len() < n {
        rng.fill(&mut buf[..])
            .map_err(|_| PersoError::Hook("the system random generator failed".into()))?;
        for &b in buf.iter() {
            if b < 250 && out.len() < n {
                out.push(char::from(b'0' + b % 10));
            }
        }
    }
    Ok(out)
}

impl CardSecrets {
    /// Fresh random secrets: a transport PIN of `pin_len` digits and a PUK of `puk_len`.
    pub fn generate(pin_len: usize, puk_len: usize) -> Result<CardSecrets, PersoError> {
        let rng = SystemRandom::new();
        Ok(CardSecrets {
            transport_pin: random_digits(&rng, pin_len)?,
            puk: random_digits(&rng, puk_len)?,
        })
    }
}

/// The append-only PIN mailer file.
#[derive(Debug)]
pub struct PinMailer {
    /// Where it is (for messages).
    path: PathBuf,
    /// Opened for appending, mode 0600.
    file: File,
}

impl PinMailer {
    /// Opens (creating with mode 0600) the mailer file at `path`; a file left looser by an
    /// older version is tightened to 0600 (issue 18).
    pub fn open(path: &Path) -> Result<PinMailer, PersoError> {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(crate::store::FILE_MODE)
            .open(path)
            .map_err(|e| PersoError::Hook(format!("opening {}: {e}", path.display())))?;
        let mode = file
            .metadata()
            .map_err(|e| PersoError::Hook(format!("reading {}: {e}", path.display())))?
            .permissions()
            .mode();
        if mode & 0o7777 != crate::store::FILE_MODE {
            tracing::warn!(
                "{} was mode {:04o}: tightened to 0600 (it holds transport PINs)",
                path.display(),
                mode & 0o7777
            );
            file.set_permissions(std::fs::Permissions::from_mode(crate::store::FILE_MODE))
                .map_err(|e| PersoError::Hook(format!("tightening {}: {e}", path.display())))?;
        }
        Ok(PinMailer {
            path: path.to_path_buf(),
            file,
        })
    }

    /// Appends one card's line and syncs it to disk before returning, so secrets are never set
    /// on a card without being on record.
    pub fn append(
        &mut self,
        tracking_code: &str,
        serial: &str,
        secrets: &CardSecrets,
    ) -> Result<(), PersoError> {
        let line = Zeroizing::new(format!(
            "{}\n",
            serde_json::json!({
                "tracking_code": tracking_code,
                "serial": serial,
                "transport_pin": secrets.transport_pin.as_str(),
                "puk": secrets.puk.as_str(),
            })
        ));
        self.file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| PersoError::Hook(format!("writing {}: {e}", self.path.display())))
    }

    /// The latest secrets recorded for card `serial` (what the mailer prints for it).
    pub fn lookup(path: &Path, serial: &str) -> Result<Option<CardSecrets>, PersoError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| PersoError::Hook(format!("reading {}: {e}", path.display())))?,
        );
        let mut found = None;
        for line in text.lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue; // a line torn by a crash
            };
            if v["serial"] == serial {
                if let (Some(pin), Some(puk)) = (v["transport_pin"].as_str(), v["puk"].as_str()) {
                    found = Some(CardSecrets {
                        transport_pin: Zeroizing::new(pin.to_string()),
                        puk: Zeroizing::new(puk.to_string()),
                    });
                }
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_digits_of_the_asked_length_and_redacted() {
        let s = CardSecrets::generate(6, 10).unwrap();
        assert_eq!(s.transport_pin.len(), 6);
        assert_eq!(s.puk.len(), 10);
        assert!(s.puk.bytes().all(|b| b.is_ascii_digit()));
        let debug = format!("{s:?}");
        assert!(!debug.contains(s.puk.as_str()) && debug.contains("REDACTED"));
        let other = CardSecrets::generate(6, 10).unwrap();
        assert_ne!(s.puk.as_str(), other.puk.as_str());
    }

    #[test]
    fn mailer_is_private_and_the_latest_line_wins() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin-mailer.jsonl");
        let mut m = PinMailer::open(&path).unwrap();
        let a = CardSecrets::generate(6, 10).unwrap();
        let b = CardSecrets::generate(6, 10).unwrap();
        m.append("T-1", "AA", &a).unwrap();
        m.append("T-1", "AA", &b).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let got = PinMailer::lookup(&path, "AA").unwrap().unwrap();
        assert_eq!(got.puk.as_str(), b.puk.as_str());
        assert!(PinMailer::lookup(&path, "BB").unwrap().is_none());
    }
}
