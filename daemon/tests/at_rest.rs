//! Issues 18 and 15 (data and keys at rest): after a whole `idcardd demo` run at trace level
//! (`-vvv`, every APDU in hex), nothing in the state directory is readable by others, no file
//! holds a PIN (the PIN mailer is sealed under the token's key), the journal holds no
//! fingerprint scan of a personalized applicant, the logs carry no PIN, national code, face or
//! fingerprint, and no key leaves where it belongs: no private key file anywhere, each card's
//! own keys only in that card's memory, the token's PIN only in its PIN file.
//!
//! What is allowed where, and why:
//! - the PIN mailer (`pin-mailer.jsonl`) holds each card's transport PIN and PUK sealed with
//!   AES-GCM under the token's mailer key: `idcardd mailer print` (the print shop's step)
//!   is how this test reads them back; the file itself must hold none of them;
//! - the embedded token (`hsm/tokens/`) is the HSM's own storage: not searched;
//! - simulated card state files (`sim/`, `cards/`) are the cards' own memory: they hold the
//!   PIN and PUK reference data (hex) and the data groups, like a chip does; their mode is
//!   checked, and they must not hold a PIN or PUK in plain text;
//! - the journal is the system of record: national codes may be there (the status lookup
//!   searches by them), images may not once the card is personalized.

use std::collections::BTreeSet;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;

/// The holder PIN the demo's kiosk sets at delivery (`HOLDER_PIN` in `daemon/src/cli/demo.rs`).
const HOLDER_PIN: &str = "482913";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/applicants")
}

/// Every path under `dir`, `dir` included (symbolic links not followed).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                todo.push(entry.unwrap().path());
            }
        }
        out.push(path);
    }
    out.sort();
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The forms a PIN takes when it leaks: a quoted string (JSON, `Debug`), the hex of its ASCII
/// digits (an APDU dump), and the digits right after the word "pin" (a log field).
fn pin_leaks(text: &[u8], pin: &str, hex_too: bool) -> Vec<String> {
    let mut found = Vec::new();
    if contains(text, format!("\"{pin}\"").as_bytes()) {
        found.push("quoted".to_string());
    }
    if hex_too {
        for form in [hex::encode_upper(pin), hex::encode(pin)] {
            if contains(text, form.as_bytes()) {
                found.push(format!("hex {form}"));
            }
        }
    }
    let lower = text.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..]
        .windows(pin.len())
        .position(|w| w == pin.as_bytes())
    {
        let start = at + i;
        let before = &lower[start.saturating_sub(24)..start];
        let boundary = lower
            .get(start + pin.len())
            .is_none_or(|c| !c.is_ascii_alphanumeric());
        if boundary && contains(before, b"pin") {
            found.push(format!("after \"pin\" at byte {start}"));
        }
        at = start + 1;
    }
    found
}

/// The applicant fixtures: (file name, record).
fn applicants() -> Vec<(String, serde_json::Value)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            if let Ok(v) = serde_json::from_str(&text) {
                out.push((path.file_name().unwrap().to_string_lossy().into(), v));
            }
        }
    }
    out
}

/// Files (relative to the fixtures) a record refers to for its fingers.
fn finger_files(record: &serde_json::Value) -> BTreeSet<String> {
    let mut files = BTreeSet::new();
    if let Some(fingers) = record["fingers"].as_object() {
        for sample in fingers.values() {
            for kind in ["scan", "template"] {
                if let Some(p) = sample[kind]["path"].as_str() {
                    files.insert(p.to_string());
                }
            }
        }
    }
    files
}

/// Finger files used only by records data QC accepts (so only by personalized applicants):
/// the journal may keep a rejected record's images for the retention period, never these.
fn personalized_only_fingers() -> Vec<PathBuf> {
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(fixtures().join("manifest.toml")).unwrap())
            .unwrap();
    let valid: BTreeSet<String> = manifest["record"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["expected"].as_array().is_some_and(|e| e.is_empty()))
        .map(|r| r["file"].as_str().unwrap().to_string())
        .collect();
    let (mut ours, mut others) = (BTreeSet::new(), BTreeSet::new());
    for (name, record) in applicants() {
        let set = if valid.contains(&name) {
            &mut ours
        } else {
            &mut others
        };
        set.extend(finger_files(&record));
    }
    // Malformed records are submitted as written too: leave out whatever they name.
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap_or_default();
        if serde_json::from_str::<serde_json::Value>(&text).is_err() {
            others.extend(ours.iter().filter(|f| text.contains(f.as_str())).cloned());
        }
    }
    ours.difference(&others)
        .map(|f| fixtures().join(f))
        .collect()
}

/// Needles for one biometric file: a 64-character window from the middle of its base64, and
/// 64 raw bytes from its middle (32 for a small template; with their hex, as an APDU dump would
/// show them).
struct Needles {
    name: String,
    base64: String,
    raw: Vec<u8>,
    hex: String,
}

impl Needles {
    fn of(path: &Path) -> Needles {
        let bytes = std::fs::read(path).unwrap();
        // Templates are ~120 bytes: half of one is still specific enough.
        let n = 64.min(bytes.len() / 2);
        assert!(n >= 32, "{} too small", path.display());
        let text = b64(&bytes);
        let (t, r) = (text.len() / 2 - n / 2, bytes.len() / 2 - n / 2);
        let raw = bytes[r..r + n].to_vec();
        Needles {
            name: path.file_name().unwrap().to_string_lossy().into(),
            base64: text[t..t + 64].to_string(),
            hex: hex::encode_upper(&raw),
            raw,
        }
    }

    /// `hex_too`: an APDU dump; not for a card's own memory, which holds DG3 in hex.
    fn found_in(&self, bytes: &[u8], hex_too: bool) -> bool {
        contains(bytes, self.base64.as_bytes())
            || contains(bytes, &self.raw)
            || (hex_too && contains(bytes, self.hex.as_bytes()))
    }
}

#[test]
fn issue_18_nothing_personal_is_left_readable_or_in_the_logs() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("state");
    let out = Command::new(env!("CARGO_BIN_EXE_idcardd"))
        .env_remove("RUST_LOG")
        .env_remove("IDCARDD_DEMO_DATA")
        .args(["-vvv", "demo", "--json", "--readers", "2", "--state-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    let logs = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr[out.stderr.len().saturating_sub(8000)..])
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let personalized = summary["personalized"].as_u64().unwrap();
    assert!(personalized > 0, "{summary:#}");
    // The logs really are at trace level, APDUs and all.
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("apdu::transmit"),
        "no APDU trace in the logs"
    );

    // 1. Modes: directories 0700, files 0600, the state directory itself included.
    let mailer = dir.join("pin-mailer.jsonl");
    let paths = walk(&dir);
    let mut wrong = Vec::new();
    for path in &paths {
        let meta = std::fs::symlink_metadata(path).unwrap();
        let mode = meta.permissions().mode() & 0o7777;
        let want = if meta.is_dir() {
            0o700
        } else if meta.is_file() {
            0o600
        } else if meta.file_type().is_socket() {
            // The ipc sockets are removed at exit; one left behind must not be open to others.
            if mode & 0o007 != 0 {
                wrong.push(format!("{} socket {mode:04o}", path.display()));
            }
            continue;
        } else {
            wrong.push(format!("{}: not a file or folder", path.display()));
            continue;
        };
        if mode != want {
            wrong.push(format!("{} {mode:04o}, want {want:04o}", path.display()));
        }
    }
    assert!(wrong.is_empty(), "modes:\n{}", wrong.join("\n"));
    assert!(mailer.is_file(), "no PIN mailer in {paths:?}");
    let files: Vec<&PathBuf> = paths.iter().filter(|p| p.is_file()).collect();
    for name in ["journal.sqlite", "audit.db", "delivery.db", "audit.head"] {
        assert!(dir.join(name).is_file(), "{name} missing: {paths:?}");
    }

    // 2. PINs: the mailer's transport PINs and PUKs (opened by the print step, through the
    //    token), and the holder's new PIN.
    let printed = Command::new(env!("CARGO_BIN_EXE_idcardd"))
        .args(["mailer", "print", "--json", "--state-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(
        printed.status.success(),
        "{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    let mut pins: Vec<String> = vec![HOLDER_PIN.to_string()];
    let mut puks = Vec::new();
    for line in String::from_utf8_lossy(&printed.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        pins.push(v["transport_pin"].as_str().unwrap().to_string());
        puks.push(v["puk"].as_str().unwrap().to_string());
    }
    // The demo's later steps make two more cards (a replacement, a renewal).
    let later = summary["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| {
            let step = h["step"].as_str().unwrap_or("");
            step.starts_with("replacement") || step.starts_with("renewal approved")
        })
        .count() as u64;
    assert_eq!(later, 2, "{summary:#}");
    assert_eq!(
        puks.len() as u64,
        personalized + later,
        "one mailer letter per card"
    );
    let is_card = |p: &Path| p.starts_with(dir.join("sim")) || p.starts_with(dir.join("cards"));
    let in_token = |p: &Path| p.starts_with(dir.join("hsm/tokens"));
    let files: Vec<&PathBuf> = files.into_iter().filter(|p| !in_token(p)).collect();
    let mut leaks = Vec::new();
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        for pin in &pins {
            // A card's own memory holds its PIN reference data in hex (a chip holds its PIN).
            for how in pin_leaks(&bytes, pin, !is_card(path)) {
                leaks.push(format!("PIN {pin} in {} ({how})", path.display()));
            }
        }
        for puk in &puks {
            if contains(&bytes, puk.as_bytes()) {
                leaks.push(format!("PUK {puk} in {}", path.display()));
            }
        }
    }
    for secret in pins.iter().chain(&puks) {
        for how in pin_leaks(&logs, secret, true) {
            leaks.push(format!("PIN/PUK {secret} in the logs ({how})"));
        }
        if secret.len() >= 8 && contains(&logs, secret.as_bytes()) {
            leaks.push(format!("PUK {secret} in the logs"));
        }
    }

    // 3. National codes (DG1 optional data, DG11): never in the logs, as text or APDU hex. The
    //    journal may hold them: it is the system of record and the status lookup searches it.
    let codes: BTreeSet<String> = applicants()
        .iter()
        .filter_map(|(_, r)| r["national_code"].as_str().map(str::to_string))
        .filter(|c| c.len() >= 8)
        .collect();
    assert!(codes.contains("0012345679"), "{codes:?}");
    for code in &codes {
        for form in [code.clone(), hex::encode_upper(code), hex::encode(code)] {
            if contains(&logs, form.as_bytes()) {
                leaks.push(format!("national code {code} in the logs ({form})"));
            }
        }
    }

    // 4. Biometrics: the fingers of personalized applicants are gone from every file (the
    //    journal scrubbed them at `personalized`); no finger and no face is in the logs.
    let ours = personalized_only_fingers();
    assert!(
        ours.iter()
            .any(|p| p.extension().is_some_and(|e| e == "png")),
        "no scan used by valid records only: {ours:?}"
    );
    for needles in ours.iter().map(|p| Needles::of(p)) {
        for path in &files {
            let bytes = std::fs::read(path).unwrap();
            if needles.found_in(&bytes, !is_card(path)) {
                leaks.push(format!("{} in {}", needles.name, path.display()));
            }
        }
    }
    let mut every_finger: Vec<PathBuf> = std::fs::read_dir(fixtures().join("../fingerprints"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "iso"))
        .collect();
    every_finger.sort();
    for needles in every_finger.iter().map(|p| Needles::of(p)) {
        if needles.found_in(&logs, true) {
            leaks.push(format!("{} in the logs", needles.name));
        }
    }
    // 5. Keys: no private key file; each card's own keys (its state file holds them, as a chip
    //    does) nowhere else, nor in the logs; the token's user PIN only in its PIN file.
    let mut card_keys = Vec::new();
    for path in files.iter().filter(|p| is_card(p)) {
        let state: serde_json::Value =
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap_or_default();
        for k in ["perso_key", "terminal_key"] {
            if let Some(hex_key) = state[k]["key"].as_str() {
                card_keys.push(((*path).clone(), hex::decode(hex_key).unwrap()));
            }
        }
    }
    assert!(
        card_keys.len() >= 2 * personalized as usize,
        "{card_keys:?}"
    );
    let token_pin = std::fs::read_to_string(dir.join("hsm/idcardd.pin")).unwrap();
    let token_pin = token_pin.trim();
    assert!(token_pin.len() >= 16);
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        if contains(&bytes, b"PRIVATE KEY") {
            leaks.push(format!("a private key in {}", path.display()));
        }
        for (own, key) in &card_keys {
            let forms = [
                key.clone(),
                hex::encode_upper(key).into_bytes(),
                hex::encode(key).into_bytes(),
            ];
            if own != *path && forms.iter().any(|f| contains(&bytes, f)) {
                leaks.push(format!(
                    "the card key of {} in {}",
                    own.display(),
                    path.display()
                ));
            }
        }
        if *path != &dir.join("hsm/idcardd.pin") && contains(&bytes, token_pin.as_bytes()) {
            leaks.push(format!("the token PIN in {}", path.display()));
        }
    }
    for (own, key) in &card_keys {
        for form in [
            key.clone(),
            hex::encode_upper(key).into_bytes(),
            hex::encode(key).into_bytes(),
        ] {
            if contains(&logs, &form) {
                leaks.push(format!("the card key of {} in the logs", own.display()));
            }
        }
    }
    if contains(&logs, token_pin.as_bytes()) {
        leaks.push("the token PIN in the logs".into());
    }
    assert!(!dir.join("audit.key").exists(), "no audit key file");
    assert!(!dir.join("pki/ds.key").exists(), "no DS key file");

    let face = std::fs::read(fixtures().join("face-8x8.jpg")).unwrap();
    for form in [b64(&face), hex::encode_upper(&face), hex::encode(&face)] {
        if contains(&logs, form.as_bytes()) {
            leaks.push("the face image in the logs".to_string());
        }
    }

    assert!(
        leaks.is_empty(),
        "{} leak(s):\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

/// A state directory an older version left open (0755 folders, 0644 files: journal, mailer,
/// card files, reports) is made owner-only by `Service::open`, the journal's WAL and SHM
/// included.
#[test]
fn issue_18_service_open_tightens_an_old_state_dir() {
    use idcardd::service::{Service, ServiceConfig};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("state");
    for sub in ["cards", "reports", "sim"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    drop(issuance::journal::Journal::open_in(&dir).unwrap());
    for (file, text) in [
        ("pin-mailer.jsonl", "{}\n"),
        ("cards/AA.json", "{}"),
        ("reports/B1.json", "{}"),
    ] {
        std::fs::write(dir.join(file), text).unwrap();
    }
    for path in walk(&dir) {
        let mode = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let svc = Service::open(
        ServiceConfig::new(dir.clone(), vec!["sim:0".into()])
            .with_keys(test_support::hsm::shared_config()),
    )
    .unwrap();
    svc.batches.journal().records("none").unwrap();
    for path in walk(&dir) {
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{}", path.display());
    }
    let wal = dir.join("journal.sqlite-wal");
    assert!(wal.exists(), "the journal is open in WAL mode");
    drop(svc);
}
