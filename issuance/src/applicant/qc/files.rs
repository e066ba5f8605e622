//! Sample files: a record's blobs inline or read from a file, size-limited, and files only
//! where the record's [`FileAccess`] allows them.

use std::path::Path;

use base64::Engine as _;

use super::{QcCode, QcReport, MAX_SAMPLE_BYTES};
use crate::applicant::{Applicant, Blob, FileAccess};

use std::path::{Component, PathBuf};

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
        (Some(p), None) => {
            let field = format!("{path}.path");
            let file = allowed_file(&a.files, p, &field, r)?;
            read_file(&file, &field, r)
        }
        (None, Some(b64)) => {
            // Checked before decoding: base64 is 4 characters for 3 bytes.
            if b64.len() as u64 / 4 * 3 > MAX_SAMPLE_BYTES {
                r.push(
                    format!("{path}.base64"),
                    QcCode::UnreadableFile,
                    format!("{} base64 characters is too large", b64.len()),
                );
                return None;
            }
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

/// The file `p` names when `access` allows it, or a `path_not_allowed` problem (nothing is
/// opened; the message says why without saying whether the file exists).
fn allowed_file(access: &FileAccess, p: &Path, field: &str, r: &mut QcReport) -> Option<PathBuf> {
    let refuse = |r: &mut QcReport, why: &str| {
        r.push(field, QcCode::PathNotAllowed, why.to_string());
        None
    };
    let dir = match access {
        FileAccess::None => {
            return refuse(
                r,
                "this record may not name files: give the data inline (base64)",
            )
        }
        FileAccess::Local(dir) => {
            return Some(if p.is_absolute() {
                p.to_path_buf()
            } else {
                dir.join(p)
            })
        }
        FileAccess::RelativeTo(dir) => dir,
    };
    if p.components().any(|c| c == Component::ParentDir) {
        return refuse(r, "a path may not contain '..'");
    }
    let file = if p.is_absolute() {
        p.to_path_buf()
    } else {
        dir.join(p)
    };
    // The file must lie inside the folder, symbolic links resolved on both sides.
    let inside = match (dir.canonicalize(), file.canonicalize()) {
        (Ok(dir), Ok(canonical)) => canonical.starts_with(dir),
        // No such file (read_file says so) when lexically inside; refused otherwise.
        _ => !p.is_absolute() || (dir.is_absolute() && p.starts_with(dir)),
    };
    if inside {
        Some(file)
    } else {
        refuse(r, "the path must name a file inside the manifest's folder")
    }
}

/// Reads a sample file: a regular file (checked before it is opened for reading, and opened
/// without blocking so a FIFO swapped in meanwhile cannot hold the reader), at most
/// [`MAX_SAMPLE_BYTES`].
pub(super) fn read_file(file: &Path, path: &str, r: &mut QcReport) -> Option<Vec<u8>> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let metadata = match std::fs::metadata(file) {
        Ok(m) => m,
        Err(e) => {
            r.push(
                path,
                QcCode::UnreadableFile,
                format!("{}: {e}", file.display()),
            );
            return None;
        }
    };
    if !metadata.is_file() {
        r.push(
            path,
            QcCode::PathNotAllowed,
            format!("{} is not a regular file", file.display()),
        );
        return None;
    }
    let result = (|| {
        if metadata.len() > MAX_SAMPLE_BYTES {
            return Err(std::io::Error::other(format!(
                "{} bytes is too large (at most {MAX_SAMPLE_BYTES})",
                metadata.len()
            )));
        }
        let f = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_o_nonblock())
            .open(file)?;
        if !f.metadata()?.is_file() {
            return Err(std::io::Error::other("not a regular file"));
        }
        let mut bytes = Vec::new();
        f.take(MAX_SAMPLE_BYTES + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_SAMPLE_BYTES {
            return Err(std::io::Error::other(format!(
                "more than {MAX_SAMPLE_BYTES} bytes"
            )));
        }
        Ok(bytes)
    })();
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

/// `O_NONBLOCK` on Linux (every architecture this runs on uses the generic value).
const fn libc_o_nonblock() -> i32 {
    0o4000
}
