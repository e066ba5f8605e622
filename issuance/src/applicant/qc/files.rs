//! Sample files: a record's blobs inline or read from a file, size-limited.

#[allow(unused_imports)]
use super::*;

/// The bytes of a [`Blob`]: exactly one of path and base64.
pub(super) fn read_blob(
    a: &Applicant,
    blob: &Blob,
    path: &str,
    r: &mut QcReport,
) -> Option<Vec<u8>> {
    match (&blob.path, &blob.base64) {
        (Some(_), Some(_)) => {
            r.push(
                path,
                QcCode::ConflictingFields,
                "give either path or base64, not both",
            );
            None
        }
        (None, None) => {
            r.push(path, QcCode::MissingField, "needs a path or base64");
            None
        }
        (Some(p), None) => read_file(&a.resolve(p), &format!("{path}.path"), r),
        (None, Some(b64)) => {
            let cleaned: String = b64.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            match base64::engine::general_purpose::STANDARD.decode(cleaned) {
                Ok(bytes) => Some(bytes),
                Err(e) => {
                    r.push(
                        format!("{path}.base64"),
                        QcCode::UnreadableFile,
                        format!("bad base64: {e}"),
                    );
                    None
                }
            }
        }
    }
}

/// Reads a sample file, refusing anything over [`MAX_SAMPLE_BYTES`].
pub(super) fn read_file(file: &Path, path: &str, r: &mut QcReport) -> Option<Vec<u8>> {
    let result = std::fs::metadata(file).and_then(|m| {
        if m.len() > MAX_SAMPLE_BYTES {
            Err(std::io::Error::other(format!(
                "{} bytes is too large",
                m.len()
            )))
        } else {
            std::fs::read(file)
        }
    });
    match result {
        Ok(bytes) => Some(bytes),
        Err(e) => {
            r.push(
                path,
                QcCode::UnreadableFile,
                format!("{}: {e}", file.display()),
            );
            None
        }
    }
}
