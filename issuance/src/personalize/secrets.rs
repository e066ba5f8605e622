//! Per-card transport PIN and PUK, and the PIN mailer file they go to.
//!
//! Policy: every card gets its own random transport PIN (length from the profile's PIN policy)
//! and a random 10-digit PUK, drawn from the operating system's generator (`ring`'s
//! `SystemRandom`). They are never logged, never journaled and never returned in API replies
//! or batch reports. They are appended, before they are set on the card, to a PIN mailer file
//! (`pin-mailer.jsonl`, mode 0600, fsynced); the line for a card that was written again after a
//! crash is superseded by the later line with the same serial.
//!
//! Every line is sealed under the token's mailer key (AES-256-GCM in the token,
//! [`KeyStore::seal`]): in clear it has only the tracking code, the serial and the time; the PIN
//! and PUK are in `sealed` (base64 of `nonce || ciphertext || tag`), whose associated data binds
//! the line to its serial, tracking code and time, so a line moved to another card, edited, or
//! read with another token's key does not open (a clear error, never a panic). The letters are
//! decrypted only to be printed ([`PinMailer::letters`], `idcardd mailer print`) or to read
//! one card's transport PIN at delivery ([`PinMailer::lookup`]).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use keystore::KeyStore;
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
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

/// Format version of a sealed mailer line.
const LINE_VERSION: u32 = 2;

/// One line of the mailer file as stored: what is not secret in clear, the secrets sealed.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedLine {
    v: u32,
    tracking_code: String,
    serial: String,
    time_ms: i64,
    /// Base64 of `nonce || ciphertext || tag`.
    sealed: String,
}

/// The sealed part of a line.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SealedSecrets {
    transport_pin: String,
    puk: String,
}

/// The associated data of a line: its version, serial, tracking code and time,
/// length-prefixed so no two lines share an encoding.
fn line_aad(serial: &str, tracking_code: &str, time_ms: i64) -> Vec<u8> {
    let mut aad = b"idcardd pin-mailer".to_vec();
    aad.extend_from_slice(&LINE_VERSION.to_be_bytes());
    for field in [serial.as_bytes(), tracking_code.as_bytes()] {
        aad.extend_from_slice(&(field.len() as u64).to_be_bytes());
        aad.extend_from_slice(field);
    }
    aad.extend_from_slice(&time_ms.to_be_bytes());
    aad
}

/// One card's PIN letter, decrypted: for the print shop only.
#[derive(Clone)]
pub struct PinLetter {
    /// The applicant's tracking code.
    pub tracking_code: String,
    /// The card serial (hex).
    pub serial: String,
    /// When the line was written (Unix milliseconds).
    pub time_ms: i64,
    /// The transport PIN and PUK.
    pub secrets: CardSecrets,
}

impl fmt::Debug for PinLetter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinLetter")
            .field("tracking_code", &self.tracking_code)
            .field("serial", &self.serial)
            .field("time_ms", &self.time_ms)
            .field("secrets", &self.secrets)
            .finish()
    }
}

impl PinLetter {
    /// The letter's text as the print shop gets it (holds the PIN and PUK: zeroized on drop).
    pub fn render(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "tracking code: {}\ncard serial:   {}\ntransport PIN: {}\nPUK:           {}\n",
            self.tracking_code,
            self.serial,
            self.secrets.transport_pin.as_str(),
            self.secrets.puk.as_str()
        ))
    }
}

fn mailer_error(path: &Path, line: usize, what: impl fmt::Display) -> PersoError {
    PersoError::Hook(format!("PIN mailer {} line {line}: {what}", path.display()))
}

/// The lines of the mailer file at `path` with their line numbers (from 1), parsed but still
/// sealed. A last line without its newline that does not parse was torn by a crash and is
/// skipped; any other line that does not parse (edited, or secrets in clear from an earlier
/// release) is an error.
fn read_lines(path: &Path) -> Result<Vec<(usize, SealedLine)>, PersoError> {
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| PersoError::Hook(format!("reading {}: {e}", path.display())))?,
    );
    let complete = text.ends_with('\n');
    let count = text.lines().count();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<SealedLine>(line) {
            Ok(l) if l.v == LINE_VERSION => out.push((n, l)),
            Ok(l) => return Err(mailer_error(path, n, format!("unknown version {}", l.v))),
            Err(_) if n == count && !complete => {
                tracing::warn!(
                    "{} line {n} is incomplete (torn by a crash): skipped",
                    path.display()
                );
            }
            Err(_) => {
                // Never echo the line: it may hold secrets in clear.
                let clear = serde_json::from_str::<serde_json::Value>(line)
                    .is_ok_and(|v| v.get("transport_pin").is_some() || v.get("puk").is_some());
                return Err(mailer_error(
                    path,
                    n,
                    if clear {
                        "holds a PIN in clear (written by an earlier release): print it with the \
                         previous release and move the file away"
                    } else {
                        "is not a sealed mailer record (altered or damaged)"
                    },
                ));
            }
        }
    }
    Ok(out)
}

/// Opens one sealed line with the token's mailer key.
fn unseal(
    path: &Path,
    n: usize,
    line: &SealedLine,
    store: &KeyStore,
) -> Result<PinLetter, PersoError> {
    let sealed = base64::engine::general_purpose::STANDARD
        .decode(&line.sealed)
        .map_err(|e| mailer_error(path, n, format!("sealed field is not base64: {e}")))?;
    let aad = line_aad(&line.serial, &line.tracking_code, line.time_ms);
    let plain = store.open_sealed(&aad, &sealed).map_err(|e| match e {
        e if e.is_unavailable() => {
            PersoError::KeyStoreUnavailable(format!("PIN mailer {} line {n}: {e}", path.display()))
        }
        // The token's own words for a tag that does not verify are alarming and say nothing
        // more (SoftHSM: CKR_GENERAL_ERROR).
        keystore::KeyStoreError::Crypto { .. } => mailer_error(
            path,
            n,
            format!(
                "the record of card {} does not open with the mailer key of token {:?} \
                 (sealed by another token, or the line was altered)",
                line.serial,
                store.config().token_label
            ),
        ),
        e => mailer_error(
            path,
            n,
            format!("the record of card {} cannot be opened: {e}", line.serial),
        ),
    })?;
    let secrets: SealedSecrets = serde_json::from_slice(&plain)
        .map_err(|_| mailer_error(path, n, "the sealed record is not a PIN letter"))?;
    let secrets = CardSecrets {
        transport_pin: Zeroizing::new(secrets.transport_pin),
        puk: Zeroizing::new(secrets.puk),
    };
    Ok(PinLetter {
        tracking_code: line.tracking_code.clone(),
        serial: line.serial.clone(),
        time_ms: line.time_ms,
        secrets,
    })
}

/// The append-only PIN mailer file, each line sealed under the token's mailer key.
pub struct PinMailer {
    /// Where it is (for messages).
    path: PathBuf,
    /// Opened for appending, mode 0600.
    file: File,
    /// The token that seals.
    store: Arc<KeyStore>,
}

impl fmt::Debug for PinMailer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PinMailer")
            .field("path", &self.path)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl PinMailer {
    /// Opens (creating with mode 0600) the mailer file at `path`, sealing with the mailer key
    /// of `store`; a file left looser by an older version is tightened to 0600 (issue 18).
    pub fn open(path: &Path, store: Arc<KeyStore>) -> Result<PinMailer, PersoError> {
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
            store,
        })
    }

    /// Appends one card's sealed line and syncs it to disk before returning, so secrets are
    /// never set on a card without being on record. A token that is unavailable fails here
    /// (nothing written), before anything is set on the card.
    pub fn append(
        &mut self,
        tracking_code: &str,
        serial: &str,
        secrets: &CardSecrets,
    ) -> Result<(), PersoError> {
        let time_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let plain = Zeroizing::new(
            serde_json::to_vec(&SealedSecrets {
                transport_pin: secrets.transport_pin.to_string(),
                puk: secrets.puk.to_string(),
            })
            .map_err(|e| PersoError::Hook(format!("PIN mailer record: {e}")))?,
        );
        let sealed = self
            .store
            .seal(&line_aad(serial, tracking_code, time_ms), &plain)
            .map_err(|e| {
                let what = format!(
                    "sealing the PIN letter of card {serial} for {}: {e}",
                    self.path.display()
                );
                // A token away is not this card's fault: the record is written again later.
                if e.is_unavailable() {
                    PersoError::KeyStoreUnavailable(what)
                } else {
                    PersoError::Hook(what)
                }
            })?;
        let line = SealedLine {
            v: LINE_VERSION,
            tracking_code: tracking_code.into(),
            serial: serial.into(),
            time_ms,
            sealed: base64::engine::general_purpose::STANDARD.encode(sealed),
        };
        let mut text = serde_json::to_string(&line)
            .map_err(|e| PersoError::Hook(format!("PIN mailer record: {e}")))?;
        text.push('\n');
        self.file
            .write_all(text.as_bytes())
            .and_then(|()| self.file.sync_data())
            .map_err(|e| PersoError::Hook(format!("writing {}: {e}", self.path.display())))
    }

    /// The latest secrets recorded for card `serial` in the mailer file at `path`, opened with
    /// the mailer key of `store` (the transport PIN at delivery). `Ok(None)` when the card has
    /// no line; a line of the card that does not open is an error.
    pub fn lookup(
        path: &Path,
        store: &KeyStore,
        serial: &str,
    ) -> Result<Option<CardSecrets>, PersoError> {
        let lines = read_lines(path)?;
        let Some((n, line)) = lines.iter().rev().find(|(_, l)| l.serial == serial) else {
            return Ok(None);
        };
        Ok(Some(unseal(path, *n, line, store)?.secrets))
    }

    /// The PIN letters of the mailer file at `path`, decrypted with the mailer key of `store`
    /// for the print shop: the latest line of each card (of card `serial` only when given), in
    /// the order the cards were first written. This (and `idcardd mailer print`) is the only
    /// place PINs are shown. Any line that does not open is an error: nothing is printed from a
    /// file that was tampered with.
    pub fn letters(
        path: &Path,
        store: &KeyStore,
        serial: Option<&str>,
    ) -> Result<Vec<PinLetter>, PersoError> {
        let lines = read_lines(path)?;
        let mut order: Vec<&str> = Vec::new();
        let mut latest: std::collections::HashMap<&str, (usize, &SealedLine)> =
            std::collections::HashMap::new();
        for (n, line) in &lines {
            if serial.is_some_and(|s| !s.eq_ignore_ascii_case(&line.serial)) {
                continue;
            }
            if latest.insert(&line.serial, (*n, line)).is_none() {
                order.push(&line.serial);
            }
        }
        order
            .into_iter()
            .map(|s| {
                let (n, line) = latest[s];
                unseal(path, n, line, store)
            })
            .collect()
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
    fn mailer_is_private_sealed_and_the_latest_line_wins() {
        use std::os::unix::fs::PermissionsExt;
        let store = test_support::hsm::shared();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin-mailer.jsonl");
        let mut m = PinMailer::open(&path, store.clone()).unwrap();
        let a = CardSecrets::generate(8, 10).unwrap();
        let b = CardSecrets::generate(8, 10).unwrap();
        let c = CardSecrets::generate(8, 10).unwrap();
        m.append("T-1", "AA", &a).unwrap();
        m.append("T-2", "CC", &c).unwrap();
        m.append("T-1", "AA", &b).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // No PIN or PUK in clear.
        let text = std::fs::read_to_string(&path).unwrap();
        for s in [&a, &b, &c] {
            assert!(
                !text.contains(s.transport_pin.as_str()),
                "PIN in clear: {text}"
            );
            assert!(!text.contains(s.puk.as_str()), "PUK in clear: {text}");
        }
        assert!(
            !text.contains("transport_pin") && !text.contains("puk"),
            "{text}"
        );
        assert!(
            text.contains("\"serial\":\"AA\"") && text.contains("T-2"),
            "{text}"
        );
        let got = PinMailer::lookup(&path, &store, "AA").unwrap().unwrap();
        assert_eq!(got.puk.as_str(), b.puk.as_str());
        assert_eq!(got.transport_pin.as_str(), b.transport_pin.as_str());
        assert!(PinMailer::lookup(&path, &store, "BB").unwrap().is_none());
        let letters = PinMailer::letters(&path, &store, None).unwrap();
        let serials: Vec<_> = letters.iter().map(|l| l.serial.as_str()).collect();
        assert_eq!(serials, ["AA", "CC"]);
        assert_eq!(letters[0].secrets.puk.as_str(), b.puk.as_str());
        assert!(letters[1].render().contains(c.transport_pin.as_str()));
        assert!(!format!("{:?}", letters[1]).contains(c.puk.as_str()));
        let one = PinMailer::letters(&path, &store, Some("cc")).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].tracking_code, "T-2");
    }

    #[test]
    fn another_tokens_key_does_not_open_the_letters() {
        let store = test_support::hsm::shared();
        let other = test_support::hsm::token("other").0;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin-mailer.jsonl");
        let s = CardSecrets::generate(6, 10).unwrap();
        PinMailer::open(&path, store)
            .unwrap()
            .append("T-1", "AA", &s)
            .unwrap();
        let err = PinMailer::lookup(&path, &other, "AA")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not open") && err.contains("line 1"),
            "{err}"
        );
        assert!(!err.contains(s.transport_pin.as_str()));
        let err = PinMailer::letters(&path, &other, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not open"), "{err}");
    }

    #[test]
    fn an_altered_line_does_not_open() {
        let store = test_support::hsm::shared();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pin-mailer.jsonl");
        let mut m = PinMailer::open(&path, store.clone()).unwrap();
        m.append("T-1", "AA", &CardSecrets::generate(6, 10).unwrap())
            .unwrap();
        m.append("T-2", "BB", &CardSecrets::generate(6, 10).unwrap())
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();

        // Card BB's sealed record moved to card CC: the associated data no longer matches.
        let moved = text.replace("\"serial\":\"BB\"", "\"serial\":\"CC\"");
        std::fs::write(&path, &moved).unwrap();
        let err = PinMailer::lookup(&path, &store, "CC")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("does not open") && err.contains("line 2"),
            "{err}"
        );
        assert!(PinMailer::letters(&path, &store, None).is_err());

        // One character of the ciphertext changed.
        let mut v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        let sealed = v["sealed"].as_str().unwrap().to_string();
        let mut raw = base64::engine::general_purpose::STANDARD
            .decode(&sealed)
            .unwrap();
        raw[20] ^= 1;
        v["sealed"] = base64::engine::general_purpose::STANDARD.encode(raw).into();
        std::fs::write(&path, format!("{v}\n{}\n", lines[1])).unwrap();
        let err = PinMailer::lookup(&path, &store, "AA")
            .unwrap_err()
            .to_string();
        assert!(err.contains("does not open"), "{err}");
        assert!(PinMailer::lookup(&path, &store, "BB").unwrap().is_some());

        // A line of an earlier release, PIN in clear: refused without echoing it.
        std::fs::write(
            &path,
            "{\"tracking_code\":\"T-1\",\"serial\":\"AA\",\"transport_pin\":\"123456\",\"puk\":\"1234567890\"}\n",
        )
        .unwrap();
        let err = PinMailer::lookup(&path, &store, "AA")
            .unwrap_err()
            .to_string();
        assert!(err.contains("in clear") && !err.contains("123456"), "{err}");

        // A torn last line (no newline) is skipped.
        std::fs::write(&path, format!("{}\n{{\"v\":2,\"tra", lines[1])).unwrap();
        assert!(PinMailer::lookup(&path, &store, "BB").unwrap().is_some());
    }
}
