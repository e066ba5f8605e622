//! Issue 18 (data at rest): applicants' face and finger images leave the journal once their
//! card is personalized (a SHA-256 of each stays), records that failed keep them for the
//! retention period, a record left mid-write keeps them until it is finished, journals written
//! before the rule are scrubbed when opened, and the journal's files are owner-only.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use issuance::journal::{Journal, RecordState, Retention, FILE_NAME};

/// Bytes that look like nobody else's: a 20 KiB "scan" (large enough for SQLite overflow
/// pages) derived from `seed`.
fn scan(seed: u8) -> Vec<u8> {
    (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn sha256(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes))
}

/// An applicant record with an inline face, an inline scan, an inline template and a scan
/// given by path.
fn record(code: &str, seed: u8) -> String {
    serde_json::json!({
        "tracking_code": code,
        "profile": "national-id",
        "national_code": "0012345679",
        "face": { "base64": b64(&scan(seed ^ 0x55)) },
        "fingers": {
            "right_index": { "scan": { "base64": b64(&scan(seed)) }, "dpi": 500 },
            "left_index": { "scan": { "path": "../fingerprints/2_1.png" } },
            "right_thumb": { "template": { "base64": b64(&scan(seed ^ 0xAA)) } }
        }
    })
    .to_string()
}

/// The stored record JSON of `seq`, read behind the journal's back.
fn stored(path: &Path, seq: i64) -> serde_json::Value {
    let conn = rusqlite::Connection::open(path).unwrap();
    let text: String = conn
        .query_row(
            "SELECT record_json FROM records WHERE seq = ?1",
            [seq],
            |r| r.get(0),
        )
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// A 64-character window from the middle of the base64 of `bytes`, and 64 raw bytes.
fn windows(bytes: &[u8]) -> (String, Vec<u8>) {
    let text = b64(bytes);
    let mid = text.len() / 2;
    let raw_mid = bytes.len() / 2;
    (
        text[mid..mid + 64].to_string(),
        bytes[raw_mid..raw_mid + 64].to_vec(),
    )
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// No file of the journal (database, WAL, SHM) holds the scan `seed`, in base64 or raw.
fn assert_gone_from_disk(dir: &Path, seed: u8) {
    let (text, raw) = windows(&scan(seed));
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !contains(&bytes, text.as_bytes()) && !contains(&bytes, &raw),
            "scan {seed} still in {}",
            path.display()
        );
    }
}

fn assert_stripped(v: &serde_json::Value, seed: u8) {
    let text = v.to_string();
    assert!(!text.contains("base64"), "{text}");
    assert_eq!(
        v["fingers"]["right_index"]["scan"]["sha256"],
        sha256(&scan(seed))
    );
    assert_eq!(v["fingers"]["right_index"]["scan"]["bytes"], 20_000);
    assert_eq!(v["face"]["sha256"], sha256(&scan(seed ^ 0x55)));
    assert_eq!(
        v["fingers"]["right_thumb"]["template"]["sha256"],
        sha256(&scan(seed ^ 0xAA))
    );
    // What is not a biometric stays: identifiers (the journal is the system of record), file
    // references, the rest of the record.
    assert_eq!(v["national_code"], "0012345679");
    assert_eq!(
        v["fingers"]["left_index"]["scan"]["path"],
        "../fingerprints/2_1.png"
    );
    assert_eq!(v["fingers"]["right_index"]["dpi"], 500);
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn issue_18_biometrics_leave_the_journal_once_personalized() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let db = state.join(FILE_NAME);
    let journal = Journal::open_in(&state).unwrap();
    let records = vec![
        (record("NID-A", 1), "/base".to_string()),
        (record("NID-B", 2), "/base".to_string()),
    ];
    journal
        .create_batch("b1", "test", &["sim:0".into()], &records)
        .unwrap();

    let a = journal.claim_next("b1", "run-1", "sim:0").unwrap().unwrap();
    assert!(a.record_json.contains("base64"));
    journal
        .begin_write(a.seq, "AA01", "D0001", "20260101", b"sod", &holder())
        .unwrap();
    // Mid-write the record is whole: a resumed run needs it.
    assert!(stored(&db, a.seq).to_string().contains("base64"));
    journal.finish(a.seq, "AA01", 12).unwrap();
    assert_stripped(&stored(&db, a.seq), 1);

    // B: the card is left mid-write (the process dies); reopening keeps its blobs and the
    // resumed claim hands them back whole, so the card can be finished.
    let b = journal.claim_next("b1", "run-1", "sim:0").unwrap().unwrap();
    journal
        .begin_write(b.seq, "AA02", "D0002", "20260101", b"sod", &holder())
        .unwrap();
    drop(journal);
    let journal = Journal::open_in(&state).unwrap();
    journal.start_run("b1", "run-2").unwrap();
    let resumed = journal.claim_next("b1", "run-2", "sim:1").unwrap().unwrap();
    assert_eq!(resumed.seq, b.seq);
    assert!(resumed.resume.is_some());
    assert_eq!(resumed.record_json, record("NID-B", 2));
    journal.finish(b.seq, "AA02", 12).unwrap();
    assert_stripped(&stored(&db, b.seq), 2);
    let rows = journal.records("b1").unwrap();
    assert!(rows.iter().all(|r| r.state == RecordState::Personalized));
    drop(journal);

    // Nothing of the scans is left anywhere on disk (free pages, WAL frames).
    assert_gone_from_disk(&state, 1);
    assert_gone_from_disk(&state, 2);
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&db), 0o600);
}

#[test]
fn issue_18_failed_records_keep_biometrics_for_the_retention_period() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(FILE_NAME);
    let journal = Journal::open(&db).unwrap();
    assert_eq!(journal.retention(), Retention::default());
    assert_eq!(Retention::default().failed_records_days, 30);
    assert_eq!(
        Retention::default().biometrics_after_personalized,
        Duration::ZERO
    );
    let records = vec![
        (record("NID-Q", 3), "/".to_string()),
        (record("NID-F", 4), "/".to_string()),
    ];
    journal
        .create_batch("b", "test", &["sim:0".into()], &records)
        .unwrap();
    let q = journal.claim_next("b", "r", "sim:0").unwrap().unwrap();
    journal
        .qc_failed(q.seq, &serde_json::json!([{"path": "face", "code": "x"}]))
        .unwrap();
    let f = journal.claim_next("b", "r", "sim:0").unwrap().unwrap();
    journal
        .begin_write(f.seq, "AB01", "D1", "20260101", b"s", &holder())
        .unwrap();
    journal.fail(f.seq, "card removed").unwrap();
    // Within 30 days: kept, for an operator to see what was wrong.
    assert_eq!(journal.sweep_retention().unwrap(), 0);
    assert!(stored(&db, q.seq).to_string().contains("base64"));
    assert!(stored(&db, f.seq).to_string().contains("base64"));
    drop(journal);

    // Once the period is over (here: a 0-day period), the next open removes them.
    let over = Retention {
        failed_records_days: 0,
        ..Retention::default()
    };
    let journal = Journal::open_with(&db, over).unwrap();
    assert_stripped(&stored(&db, q.seq), 3);
    assert_stripped(&stored(&db, f.seq), 4);
    assert_eq!(journal.sweep_retention().unwrap(), 0, "done once");
}

#[test]
fn issue_18_a_personalized_record_keeps_biometrics_while_configured() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join(FILE_NAME);
    let keep = Retention {
        biometrics_after_personalized: Duration::from_secs(3600),
        ..Retention::default()
    };
    let journal = Journal::open_with(&db, keep).unwrap();
    journal
        .create_batch(
            "b",
            "t",
            &["sim:0".into()],
            &[(record("NID-K", 5), "/".into())],
        )
        .unwrap();
    let k = journal.claim_next("b", "r", "sim:0").unwrap().unwrap();
    journal
        .begin_write(k.seq, "AC01", "D1", "20260101", b"s", &holder())
        .unwrap();
    journal.finish(k.seq, "AC01", 1).unwrap();
    assert_eq!(journal.sweep_retention().unwrap(), 0);
    assert!(stored(&db, k.seq).to_string().contains("base64"));
    drop(journal);
    // The default (0s) removes them.
    Journal::open(&db).unwrap();
    assert_stripped(&stored(&db, k.seq), 5);
}

/// The journal schema before issue 18 (no `biometrics_removed_at`).
const OLD_SCHEMA: &str = "
CREATE TABLE batches (id TEXT PRIMARY KEY, source TEXT NOT NULL, readers TEXT NOT NULL,
    state TEXT NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE records (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    batch_id TEXT NOT NULL REFERENCES batches(id), tracking_code TEXT NOT NULL,
    record_json TEXT NOT NULL, base_dir TEXT NOT NULL, national_code TEXT,
    birth_certificate_serial TEXT, birth_date TEXT, state TEXT NOT NULL, owner TEXT,
    reader TEXT, card_serial TEXT, reason TEXT, qc_issues TEXT, document_number TEXT,
    date_of_issue TEXT, sod BLOB, attempts INTEGER NOT NULL DEFAULT 0, apdus INTEGER,
    created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
CREATE TABLE cards (serial TEXT PRIMARY KEY, tracking_code TEXT NOT NULL,
    record_seq INTEGER NOT NULL, state TEXT NOT NULL, reason TEXT, updated_at INTEGER NOT NULL);
";

#[test]
fn issue_18_an_old_journal_is_scrubbed_and_tightened_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let db = state.join(FILE_NAME);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.execute_batch(OLD_SCHEMA).unwrap();
        conn.execute(
            "INSERT INTO batches VALUES ('old', 'manifest', 'sim:0', 'running', 1, 1)",
            [],
        )
        .unwrap();
        for (seq, state, seed) in [
            (1, "personalized", 6),
            (2, "writing", 7),
            (3, "qc_failed", 8),
            (4, "pending", 9),
        ] {
            conn.execute(
                "INSERT INTO records (seq, batch_id, tracking_code, record_json, base_dir,
                    state, card_serial, document_number, date_of_issue, sod, created_at,
                    updated_at)
                 VALUES (?1, 'old', ?2, ?3, '/', ?4, ?5, 'D', '20260101', x'00', 1, 1)",
                rusqlite::params![
                    seq,
                    format!("NID-{seq}"),
                    record(&format!("NID-{seq}"), seed),
                    state,
                    format!("CC0{seq}")
                ],
            )
            .unwrap();
        }
    }
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();

    let journal = Journal::open_in(&state).unwrap();
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&db), 0o600);
    for companion in ["journal.sqlite-wal", "journal.sqlite-shm"] {
        let path = state.join(companion);
        if path.exists() {
            assert_eq!(mode(&path), 0o600, "{companion}");
        }
    }
    // Personalized: scrubbed. Writing: kept (it is resumed on its card). QC failed long ago
    // (updated_at 1970): past 30 days, scrubbed. Pending: kept.
    assert_stripped(&stored(&db, 1), 6);
    assert!(stored(&db, 2).to_string().contains("base64"));
    assert_stripped(&stored(&db, 3), 8);
    assert!(stored(&db, 4).to_string().contains("base64"));
    let resumed = journal.claim_next("old", "r", "sim:0").unwrap().unwrap();
    assert_eq!(resumed.seq, 2);
    assert_eq!(resumed.record_json, record("NID-2", 7));
    drop(journal);
    assert_gone_from_disk(&state, 6);
    assert_gone_from_disk(&state, 8);
}

#[test]
fn issue_18_strip_biometrics_handles_odd_records() {
    use issuance::journal::strip_biometrics;
    // Blobs anywhere in the tree, bad base64 hashed as text, paths untouched.
    let v: serde_json::Value = serde_json::from_str(&strip_biometrics(
        r#"{"a":[{"base64":"AAEC"}],"b":{"base64":"%%%"},"c":{"path":"x.png"}}"#,
    ))
    .unwrap();
    assert_eq!(v["a"][0]["sha256"], sha256(&[0, 1, 2]));
    assert_eq!(v["b"]["sha256"], sha256(b"%%%"));
    assert_eq!(v["c"]["path"], "x.png");
    // A record that is not JSON but carries inline data is replaced by its hash.
    let odd = format!("not json {{\"base64\": \"{}\"", b64(&scan(1)));
    let out = strip_biometrics(&odd);
    assert!(
        !out.contains("base64") && out.contains(&sha256(odd.as_bytes())),
        "{out}"
    );
    assert_eq!(strip_biometrics("short"), "short");
    // A malformed record: an image under an unknown key, or the whole record as one string.
    let unknown = serde_json::json!({ "photo": b64(&scan(2)), "name": "x" }).to_string();
    let v: serde_json::Value = serde_json::from_str(&strip_biometrics(&unknown)).unwrap();
    assert_eq!(v["name"], "x");
    assert!(v["photo"].as_str().unwrap().starts_with("sha256:"), "{v}");
    let as_string = serde_json::Value::String(record("NID-S", 3)).to_string();
    assert!(!strip_biometrics(&as_string).contains(&windows(&scan(3)).0));
}

/// Whose card a test card is (any person: retention does not look).
fn holder() -> issuance::personalize::Holder {
    issuance::personalize::Holder {
        person: "0012345679".into(),
        kind: "national-id".into(),
        date_of_expiry: "20360101".into(),
        household: None,
    }
}
