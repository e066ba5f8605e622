//! Issue 18: which files an applicant record may name ([`FileAccess`]), decided by whoever
//! hands the record over and held by QC: none for records from clients, the manifest's folder
//! (regular files only, no `..`, size-limited) for an operator's manifest.
//! Also: QC reports quote a record's strings by a short prefix only.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use issuance::applicant::qc::{check, MatcherCheck, QcCode, QcReport, MAX_SAMPLE_BYTES};
use issuance::applicant::{Applicant, FileAccess};
use issuance::profile::ProfileSet;
use test_support::paths;

/// Fixture `national-valid-1` with its face named by `face` and both scans by `scan`.
fn record(face: &Path, scan: &Path, files: FileAccess) -> Applicant {
    let text = std::fs::read_to_string(paths::applicants().join("national-valid-1.json")).unwrap();
    let mut a = Applicant::from_json(&text).unwrap();
    a.face = Some(issuance::applicant::Blob {
        path: Some(face.to_path_buf()),
        base64: None,
    });
    for sample in a.fingers.values_mut() {
        sample.scan = Some(issuance::applicant::Blob {
            path: Some(scan.to_path_buf()),
            base64: None,
        });
    }
    a.files = files;
    a
}

fn qc(a: &Applicant) -> Result<(), QcReport> {
    let profiles = ProfileSet::builtin().unwrap();
    check(a, profiles.get("national-id").unwrap(), &MatcherCheck).map(|_| ())
}

const FIELDS: [&str; 3] = [
    "face.path",
    "fingers.right_index.scan.path",
    "fingers.left_index.scan.path",
];

fn mkfifo(path: &Path) {
    assert!(std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success());
}

/// A folder like a manifest's: the fixture face and a fixture scan beside it.
fn manifest_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        paths::applicants().join("face-8x8.jpg"),
        dir.path().join("face.jpg"),
    )
    .unwrap();
    std::fs::copy(
        paths::fingerprints().join("1_1.png"),
        dir.path().join("scan.png"),
    )
    .unwrap();
    std::fs::copy(
        paths::fingerprints().join("2_1.png"),
        dir.path().join("scan2.png"),
    )
    .unwrap();
    dir
}

/// `a` with its left index scan named `path` (two different fingers, so no duplicate).
fn left_index(mut a: Applicant, path: PathBuf) -> Applicant {
    let finger = issuance::applicant::Finger::LeftIndex;
    a.fingers
        .get_mut(&finger)
        .unwrap()
        .scan
        .as_mut()
        .unwrap()
        .path = Some(path);
    a
}

#[test]
fn issue_18_a_record_from_a_client_may_name_no_file_and_nothing_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let started = Instant::now();
    for path in [
        fifo.clone(),
        PathBuf::from("/dev/zero"),
        PathBuf::from("/etc/passwd"),
        PathBuf::from("relative.png"),
        PathBuf::from("/no/such/file"),
    ] {
        let r = qc(&record(&path, &path, FileAccess::None)).unwrap_err();
        for field in FIELDS {
            assert!(r.has(field, QcCode::PathNotAllowed), "{path:?}: {r}");
        }
        // Nothing said about the file: not whether it exists, nor its size.
        let text = r.to_string();
        assert!(
            !text.contains("No such file") && !text.contains("bytes"),
            "{text}"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(FileAccess::default(), FileAccess::None);
    assert_eq!(FileAccess::from_base_dir(""), FileAccess::None);
    assert_eq!(
        FileAccess::from_base_dir("/srv/m"),
        FileAccess::RelativeTo("/srv/m".into())
    );
    assert_eq!(QcCode::PathNotAllowed.as_str(), "path_not_allowed");
}

#[test]
fn issue_18_a_manifest_record_reads_regular_files_in_its_folder_only() {
    let dir = manifest_dir();
    let here = FileAccess::RelativeTo(dir.path().to_path_buf());
    // Relative and absolute names of files in the folder are read.
    let a = record(Path::new("face.jpg"), Path::new("scan.png"), here.clone());
    qc(&left_index(a, "scan2.png".into())).unwrap_or_else(|r| panic!("{r}"));
    let a = record(
        &dir.path().join("face.jpg"),
        &dir.path().join("./scan.png"),
        here.clone(),
    );
    qc(&left_index(a, dir.path().join("scan2.png"))).unwrap_or_else(|r| panic!("{r}"));

    // `..`, absolute paths elsewhere, and links out of the folder are refused.
    std::os::unix::fs::symlink("/dev/zero", dir.path().join("zero")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    for bad in [
        PathBuf::from("../face.jpg"),
        PathBuf::from("sub/../face.jpg"),
        PathBuf::from("/etc/passwd"),
        PathBuf::from("/dev/zero"),
        PathBuf::from("zero"),
        PathBuf::from("passwd"),
    ] {
        let r = qc(&record(&bad, &bad, here.clone())).unwrap_err();
        for field in FIELDS {
            assert!(r.has(field, QcCode::PathNotAllowed), "{bad:?}: {r}");
        }
    }
}

#[test]
fn issue_18_fifos_devices_folders_and_huge_files_are_refused_without_hanging() {
    let dir = manifest_dir();
    let here = FileAccess::RelativeTo(dir.path().to_path_buf());
    mkfifo(&dir.path().join("fifo"));
    std::fs::create_dir(dir.path().join("folder")).unwrap();
    let started = Instant::now();
    for name in ["fifo", "folder"] {
        let r = qc(&record(Path::new(name), Path::new(name), here.clone())).unwrap_err();
        for field in FIELDS {
            assert!(r.has(field, QcCode::PathNotAllowed), "{name}: {r}");
        }
    }
    // A FIFO read by a local tool (FileAccess::Local) is refused as well, not waited on.
    let local = FileAccess::Local(dir.path().to_path_buf());
    let r = qc(&record(Path::new("fifo"), Path::new("fifo"), local)).unwrap_err();
    assert!(r.has("face.path", QcCode::PathNotAllowed), "{r}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // Larger than MAX_SAMPLE_BYTES: refused from its size, not read (a sparse file).
    let big = std::fs::File::create(dir.path().join("big.png")).unwrap();
    big.set_len(MAX_SAMPLE_BYTES + 1).unwrap();
    let r = qc(&record(Path::new("big.png"), Path::new("scan.png"), here)).unwrap_err();
    assert!(r.has("face.path", QcCode::UnreadableFile), "{r}");
    assert!(r.to_string().contains("too large"), "{r}");
}

#[test]
fn issue_18_manifests_journal_their_folder_and_fixture_records_keep_their_relative_paths() {
    let dir = manifest_dir();
    let manifest = dir.path().join("m.jsonl");
    std::fs::write(&manifest, "{\"tracking_code\":\"M-1\"}\n# comment\n\n{}\n").unwrap();
    let lines = issuance::batch::read_manifest(&manifest).unwrap();
    assert_eq!(lines.len(), 2);
    let canonical = dir.path().canonicalize().unwrap();
    assert!(lines
        .iter()
        .all(|(_, base)| Path::new(base) == canonical.as_path()));
    // The fixture records name `../fingerprints/..`: loaded by a local tool they still work.
    let a = Applicant::load(paths::applicants().join("national-valid-1.json")).unwrap();
    assert_eq!(a.files, FileAccess::Local(paths::applicants()));
    qc(&a).unwrap_or_else(|r| panic!("{r}"));
}

#[test]
fn issue_18_qc_reports_quote_a_clients_huge_strings_by_a_prefix_only() {
    let huge = "Z".repeat(1 << 20);
    let mut a = record(
        Path::new("face.jpg"),
        Path::new("scan.png"),
        FileAccess::None,
    );
    a.tracking_code = huge.clone();
    a.profile = huge.clone();
    a.gender = huge.clone();
    a.birth_date = huge.clone();
    a.national_code = Some(huge.clone());
    let r = qc(&a).unwrap_err();
    assert!(r.tracking_code.chars().count() <= 65);
    assert!(r.issues.len() >= 4, "{r}");
    for i in &r.issues {
        assert!(
            i.message.chars().count() <= 201,
            "{}: {}",
            i.path,
            i.message.len()
        );
    }
    let malformed = Applicant::from_json(&format!("{{\"{huge}\": 1}}")).unwrap_err();
    assert!(malformed.issues[0].message.chars().count() <= 201);
}
