//! `matcher.extract`: minutiae from a fingerprint scan, as a template.
//!
//! The scan (PNG, TIFF or BMP) travels as binary frame 0 after the JSON frame, or base64 in
//! `scan_b64`. The template comes back as binary frame 0 of the reply when `binary` is true,
//! else base64 in `template_b64`.
//!
//! Request: `{"jsonrpc":"2.0","id":1,"method":"matcher.extract","params":{"dpi":500,
//! "format":"record","binary":true}}` + frame: the PNG bytes
//! Reply: `{"format":"record","minutiae":41,"quality":72,"width":400,"height":500,"dpi":500,
//! "template_frame":0,"template_bytes":238}` + frame: the ISO/IEC 19794-2 record
//!
//! An image that cannot be decoded, is out of limits or has a bad resolution is
//! `invalid_params`; an image with no usable fingerprint is `no_fingerprint` (scan again).

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, Call, ErrorCode, Reply};
use crate::service::Service;
use issuance::scan::MAX_SCAN_BYTES;
use matcher::image::GrayImage;
use matcher::template::{self, CardFormat};

/// Parameters of `matcher.extract`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    /// The scan, base64; absent: the scan is binary frame 0.
    scan_b64: Option<String>,
    /// Scan resolution in dpi.
    #[serde(default = "default_dpi")]
    dpi: u32,
    /// Template format: `record` (ISO/IEC 19794-2:2005), `normal` or `compact` (card formats).
    #[serde(default = "default_format")]
    format: String,
    /// Return the template as a binary frame instead of base64.
    #[serde(default)]
    binary: bool,
}

/// The resolution a scan that states none is read at.
pub(super) fn default_dpi() -> u32 {
    matcher::params::DEFAULT_DPI
}

/// The template format when the request names none: the full ISO record.
pub(super) fn default_format() -> String {
    "record".into()
}

/// Parses a template format name; shared with `matcher.compare`.
pub fn card_format(name: &str) -> Result<CardFormat, ApiError> {
    name.parse().map_err(|_| {
        ApiError::new(
            ErrorCode::InvalidParams,
            format!(
                "unknown template format {}: expected record, normal or compact",
                super::echo(name)
            ),
        )
    })
}

/// Decodes base64 `value` of the field `field`, or `invalid_params` naming it.
pub fn base64_field(field: &str, value: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(value)
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidParams,
                format!("{field} is not valid base64: {e}"),
            )
        })
}

/// Maps a matcher failure on caller-supplied data to a stable code.
pub fn matcher_error(what: &str, e: matcher::Error) -> ApiError {
    use matcher::Error as E;
    match e {
        E::NoUsableFingerprint(m) => ApiError::new(
            ErrorCode::NoFingerprint,
            format!("{what} holds no usable fingerprint ({m}): scan the finger again"),
        ),
        E::InvalidImage(_) | E::ImageLimits(_) | E::InvalidTemplate(_) | E::Encode(_) => {
            ApiError::new(ErrorCode::InvalidParams, format!("{what}: {e}"))
        }
        E::OpenCv(_) | E::Io(_) | E::Extractor(_) => ApiError::internal(format!("{what}: {e}")),
    }
}

/// Extracts minutiae from the scan and encodes them in the requested format.
pub fn call(_svc: &Service, call: Call) -> Result<Reply, ApiError> {
    let p: Params = call.params()?;
    let format = card_format(&p.format)?;
    // Sizes before anything is decoded or copied (issue 18).
    let len = match &p.scan_b64 {
        Some(b64) => b64.len() / 4 * 3,
        None => call.frames.first().map_or(0, Vec::len),
    };
    if len > MAX_SCAN_BYTES {
        return Err(ApiError::new(
            ErrorCode::TooLarge,
            format!("the scan is too large ({len} bytes; at most {MAX_SCAN_BYTES})"),
        ));
    }
    if call.frames.len() > 1 {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!(
                "one scan per request: {} binary frames came",
                call.frames.len()
            ),
        ));
    }
    let decoded;
    let scan: &[u8] = match &p.scan_b64 {
        Some(b64) => {
            if !call.frames.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::InvalidParams,
                    "send the scan either as scan_b64 or as a binary frame, not both",
                ));
            }
            decoded = base64_field("scan_b64", b64)?;
            &decoded
        }
        None => call.frame(0, "the scan (PNG, TIFF or BMP)")?,
    };
    if scan.is_empty() {
        return Err(ApiError::new(ErrorCode::InvalidParams, "the scan is empty"));
    }
    let image = GrayImage::decode(scan).map_err(|e| matcher_error("the scan", e))?;
    let fp = matcher::extract::extract(&image, p.dpi).map_err(|e| matcher_error("the scan", e))?;
    let bytes = template::encode(&fp, format).map_err(|e| matcher_error("the template", e))?;
    let mut result = json!({
        "format": p.format,
        "minutiae": fp.minutiae.len(),
        "quality": fp.quality,
        "width": fp.width,
        "height": fp.height,
        "dpi": p.dpi,
        "template_bytes": bytes.len(),
    });
    if p.binary {
        result["template_frame"] = json!(0);
        Ok(Reply {
            result,
            frames: vec![bytes],
        })
    } else {
        result["template_b64"] = json!(base64::engine::general_purpose::STANDARD.encode(&bytes));
        Ok(Reply::json(result))
    }
}
