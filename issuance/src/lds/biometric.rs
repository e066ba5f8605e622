//! DG2 (face) and DG3 (fingerprints): biometric information group templates of ISO/IEC 7816-11
//! as ICAO 9303-10 §4.7.2-4.7.3 profiles them:
//!
//! ```text
//! 75 / 63 {                                   DG2 / DG3
//!   7F61 {                                    biometric information group template
//!     02 count
//!     7F60 {                                  one per face / finger
//!       A1 { 80 0101, 81 type, 82 subtype, [86 creator], 87 format owner, 88 format type }
//!       5F2E biometric data block             ISO/IEC 19794-5 / 19794-2 record
//! } } }
//! ```

use apdu::tlv::{Tag, Tlv};

use super::{decode_outer, required, LdsError};

/// ICAO header version (`80`): 1.1.
pub(super) const HEADER_VERSION: [u8; 2] = [0x01, 0x01];
/// CBEFF biometric type (`81`) of a face: facial features.
const TYPE_FACE: u8 = 0x02;
/// CBEFF biometric type (`81`) of a finger.
const TYPE_FINGER: u8 = 0x08;
/// Format owner (`87`): ISO/IEC JTC 1/SC 37.
pub(super) const FORMAT_OWNER: [u8; 2] = [0x01, 0x01];
/// Format type (`88`) of an ISO/IEC 19794-5 face record.
const FORMAT_FACE: [u8; 2] = [0x00, 0x08];
/// Format type (`88`) this profile writes for an ISO/IEC 19794-2 finger record.
const FORMAT_FINGER: [u8; 2] = [0x00, 0x07];
/// Most biometric entries one template may hold.
const MAX_ENTRIES: usize = 10;
/// Longest creator (`86`, the PID of what made the biometric reference data) ICAO 9303-10
/// allows, in bytes.
pub const MAX_CREATOR_LEN: usize = 18;
/// How idcardd names itself as a template's creator: this prefix, then the extractor's name
/// (`idcardd/classical`, `idcardd/leader`), so that delivery knows which extractor's minutiae
/// the card holds and which thresholds apply (issue 19).
pub const CREATOR_PREFIX: &str = "idcardd/";

/// The encoding of a face image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// JPEG (ISO/IEC 19794-5 image data type 0).
    Jpeg,
    /// JPEG 2000 (image data type 1).
    Jpeg2000,
}

/// A face image for DG2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaceImage {
    /// The encoded image.
    pub data: Vec<u8>,
    /// Its encoding.
    pub format: ImageFormat,
    /// Width in pixels.
    pub width: u16,
    /// Height in pixels.
    pub height: u16,
}

/// One finger's minutiae template for DG3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FingerTemplate {
    /// ISO/IEC 19794-2 finger position: 0 unknown, 1-5 right thumb to little, 6-10 left.
    pub position: u8,
    /// The ISO/IEC 19794-2 record (`matcher::template::encode`).
    pub iso_record: Vec<u8>,
    /// The header's creator (`86`), at most [`MAX_CREATOR_LEN`] bytes: what made the
    /// template ([`CREATOR_PREFIX`] and an extractor's name when idcardd did); absent on
    /// cards of other issuers and on idcardd's cards from before issue 19.
    pub creator: Option<Vec<u8>>,
}

impl FingerTemplate {
    /// The extractor named by an idcardd creator (`idcardd/leader` → `leader`), if any.
    pub fn idcardd_extractor(&self) -> Option<&str> {
        std::str::from_utf8(self.creator.as_deref()?)
            .ok()?
            .strip_prefix(CREATOR_PREFIX)
    }
}

/// `FAC\0`: ISO/IEC 19794-5 format identifier.
const FACE_MAGIC: &[u8; 4] = b"FAC\0";
/// `010\0`: version 1.0.
const FACE_VERSION: &[u8; 4] = b"010\0";
/// General header: identifier, version, record length (4), number of faces (2).
const FACE_HEADER_LEN: usize = 14;
/// Facial information block (record length, feature points, gender, eyes, hair, mask,
/// expression, pose angle and its uncertainty).
const FACE_INFO_LEN: usize = 20;
/// Image information block (type, data type, width, height, colour space, source, device,
/// quality).
const IMAGE_INFO_LEN: usize = 12;

/// Wraps an image in a minimal ISO/IEC 19794-5 record: one face, no feature points,
/// properties unspecified, full frontal image.
pub fn face_record(face: &FaceImage) -> Result<Vec<u8>, LdsError> {
    let magic_ok = match face.format {
        ImageFormat::Jpeg => face.data.starts_with(&[0xFF, 0xD8]),
        ImageFormat::Jpeg2000 => {
            face.data.starts_with(&[0xFF, 0x4F, 0xFF, 0x51])
                || face.data.starts_with(&[0, 0, 0, 0x0C, b'j', b'P'])
        }
    };
    if !magic_ok {
        return Err(LdsError::field(
            "face image",
            format!("not a {:?} image", face.format),
        ));
    }
    if face.width == 0 || face.height == 0 {
        return Err(LdsError::field("face image", "zero width or height"));
    }
    let facial_len = FACE_INFO_LEN + IMAGE_INFO_LEN + face.data.len();
    let total = FACE_HEADER_LEN + facial_len;
    let total32 = u32::try_from(total).map_err(|_| LdsError::field("face image", "too large"))?;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(FACE_MAGIC);
    out.extend_from_slice(FACE_VERSION);
    out.extend_from_slice(&total32.to_be_bytes());
    out.extend_from_slice(&1u16.to_be_bytes());
    // Facial information block.
    out.extend_from_slice(&(facial_len as u32).to_be_bytes());
    out.extend_from_slice(&0u16.to_be_bytes()); // feature points
    out.extend_from_slice(&[0, 0, 0]); // gender, eye colour, hair colour: unspecified
    out.extend_from_slice(&[0, 0, 0]); // feature mask
    out.extend_from_slice(&[0, 0]); // expression unspecified
    out.extend_from_slice(&[0, 0, 0]); // pose angle yaw, pitch, roll: unspecified
    out.extend_from_slice(&[0, 0, 0]); // pose angle uncertainty
                                       // Image information block.
    out.push(0x01); // face image type: full frontal
    out.push(match face.format {
        ImageFormat::Jpeg => 0,
        ImageFormat::Jpeg2000 => 1,
    });
    out.extend_from_slice(&face.width.to_be_bytes());
    out.extend_from_slice(&face.height.to_be_bytes());
    out.push(0x01); // colour space: 24-bit RGB
    out.push(0x02); // source type: digital still camera
    out.extend_from_slice(&[0, 0]); // device type unspecified
    out.extend_from_slice(&[0, 0]); // quality unspecified
    out.extend_from_slice(&face.data);
    Ok(out)
}

/// Reads the first face of an ISO/IEC 19794-5 record.
pub fn parse_face_record(record: &[u8]) -> Result<FaceImage, LdsError> {
    const WHAT: &str = "DG2 face record";
    let bad = |reason: &str| LdsError::malformed(WHAT, reason);
    if record.len() < FACE_HEADER_LEN + FACE_INFO_LEN + IMAGE_INFO_LEN {
        return Err(bad("shorter than its headers"));
    }
    if &record[..4] != FACE_MAGIC || &record[4..8] != FACE_VERSION {
        return Err(bad("not an ISO/IEC 19794-5 version 010 record"));
    }
    let be32 = |at: usize| {
        u32::from_be_bytes([record[at], record[at + 1], record[at + 2], record[at + 3]]) as usize
    };
    let be16 = |at: usize| u16::from_be_bytes([record[at], record[at + 1]]);
    if be32(8) != record.len() {
        return Err(bad("record length does not match the data"));
    }
    if be16(12) == 0 {
        return Err(bad("no facial image"));
    }
    let facial = &record[FACE_HEADER_LEN..];
    let facial_len = be32(FACE_HEADER_LEN);
    if facial_len > facial.len() || facial_len < FACE_INFO_LEN + IMAGE_INFO_LEN {
        return Err(bad("facial record length out of range"));
    }
    let points = be16(FACE_HEADER_LEN + 4) as usize;
    let info = FACE_HEADER_LEN + FACE_INFO_LEN + 8 * points;
    let image_start = info + IMAGE_INFO_LEN;
    let image_end = FACE_HEADER_LEN + facial_len;
    if image_start > image_end {
        return Err(bad("feature points run past the facial record"));
    }
    let format = match record[info + 1] {
        0 => ImageFormat::Jpeg,
        1 => ImageFormat::Jpeg2000,
        t => return Err(bad(&format!("unknown image data type {t}"))),
    };
    Ok(FaceImage {
        data: record[image_start..image_end].to_vec(),
        format,
        width: be16(info + 2),
        height: be16(info + 4),
    })
}

/// The CBEFF finger subtype (`82`) for an ISO/IEC 19794-2 finger position.
pub fn finger_subtype(position: u8) -> Option<u8> {
    match position {
        0 => Some(0),
        1..=5 => Some(0x01 | (position << 2)),
        6..=10 => Some(0x02 | ((position - 5) << 2)),
        _ => None,
    }
}

/// The finger position of a CBEFF finger subtype.
pub fn finger_position(subtype: u8) -> Option<u8> {
    (0..=10).find(|&p| finger_subtype(p) == Some(subtype))
}

pub(super) fn header(
    kind: u8,
    subtype: Option<u8>,
    creator: Option<&[u8]>,
    format: [u8; 2],
) -> Tlv {
    let mut h = vec![
        Tlv::primitive(Tag(0x80), HEADER_VERSION),
        Tlv::primitive(Tag(0x81), [kind]),
    ];
    if let Some(s) = subtype {
        h.push(Tlv::primitive(Tag(0x82), [s]));
    }
    if let Some(c) = creator {
        h.push(Tlv::primitive(Tag(0x86), c.to_vec()));
    }
    h.push(Tlv::primitive(Tag(0x87), FORMAT_OWNER));
    h.push(Tlv::primitive(Tag(0x88), format));
    Tlv::constructed(Tag(0xA1), h)
}

pub(super) fn group(outer: u32, entries: Vec<Tlv>) -> Vec<u8> {
    let mut children = vec![Tlv::primitive(Tag(0x02), [entries.len() as u8])];
    children.extend(entries);
    Tlv::constructed(Tag(outer), vec![Tlv::constructed(Tag(0x7F61), children)]).encode()
}

/// Builds DG2 with one face.
pub fn build_dg2(face: &FaceImage) -> Result<Vec<u8>, LdsError> {
    let bit = Tlv::constructed(
        Tag(0x7F60),
        vec![
            header(TYPE_FACE, None, None, FORMAT_FACE),
            Tlv::primitive(Tag(0x5F2E), face_record(face)?),
        ],
    );
    Ok(group(0x75, vec![bit]))
}

/// Builds DG3 with one entry per finger.
pub fn build_dg3(fingers: &[FingerTemplate]) -> Result<Vec<u8>, LdsError> {
    if fingers.is_empty() || fingers.len() > MAX_ENTRIES {
        return Err(LdsError::field(
            "fingers",
            format!("{} templates; 1 to {MAX_ENTRIES} allowed", fingers.len()),
        ));
    }
    let mut entries = Vec::with_capacity(fingers.len());
    for f in fingers {
        let subtype = finger_subtype(f.position).ok_or_else(|| {
            LdsError::field("finger position", format!("{} is not 0-10", f.position))
        })?;
        if f.iso_record.len() < 4 || &f.iso_record[..4] != b"FMR\0" {
            return Err(LdsError::field(
                "finger template",
                "not an ISO/IEC 19794-2 record (FMR)",
            ));
        }
        if f.creator
            .as_ref()
            .is_some_and(|c| c.is_empty() || c.len() > MAX_CREATOR_LEN)
        {
            return Err(LdsError::field(
                "finger template creator",
                format!("1 to {MAX_CREATOR_LEN} bytes"),
            ));
        }
        entries.push(Tlv::constructed(
            Tag(0x7F60),
            vec![
                header(
                    TYPE_FINGER,
                    Some(subtype),
                    f.creator.as_deref(),
                    FORMAT_FINGER,
                ),
                Tlv::primitive(Tag(0x5F2E), f.iso_record.clone()),
            ],
        ));
    }
    Ok(group(0x63, entries))
}

/// One biometric entry: the header's subtype (`82`) and creator (`86`) if any, and the data
/// block (`5F2E`).
pub(super) type Entry = (Option<u8>, Option<Vec<u8>>, Vec<u8>);

/// The entries of a biometric group: each one's header and data block, after checking the
/// count and the header's type, owner and format.
pub(super) fn parse_group(
    bytes: &[u8],
    outer: u32,
    what: &'static str,
    kind: u8,
    format: [u8; 2],
) -> Result<Vec<Entry>, LdsError> {
    let dg = decode_outer(bytes, outer, what)?;
    let bigt = dg
        .children()
        .iter()
        .find(|c| c.tag == Tag(0x7F61))
        .ok_or_else(|| LdsError::malformed(what, "missing 7F61"))?;
    let count = required(bigt, 0x02, what)?;
    let [count] = *count else {
        return Err(LdsError::malformed(what, "count is not one byte"));
    };
    let entries: Vec<&Tlv> = bigt
        .children()
        .iter()
        .filter(|c| c.tag == Tag(0x7F60))
        .collect();
    if entries.len() != count as usize || entries.is_empty() {
        return Err(LdsError::malformed(
            what,
            format!("count says {count}, {} entries present", entries.len()),
        ));
    }
    let mut out = Vec::new();
    for e in entries {
        let h = e
            .children()
            .iter()
            .find(|c| c.tag == Tag(0xA1))
            .ok_or_else(|| LdsError::malformed(what, "missing biometric header A1"))?;
        if required(h, 0x87, what)? != FORMAT_OWNER || required(h, 0x88, what)? != format {
            return Err(LdsError::malformed(what, "unexpected format owner or type"));
        }
        if let Ok(t) = required(h, 0x81, what) {
            if t != [kind] {
                return Err(LdsError::malformed(
                    what,
                    format!("biometric type {}", hex::encode(t)),
                ));
            }
        }
        let subtype = match h
            .children()
            .iter()
            .find(|c| c.tag == Tag(0x82))
            .and_then(Tlv::as_bytes)
        {
            None => None,
            Some([s]) => Some(*s),
            Some(_) => return Err(LdsError::malformed(what, "subtype is not one byte")),
        };
        let creator = h
            .children()
            .iter()
            .find(|c| c.tag == Tag(0x86))
            .and_then(Tlv::as_bytes)
            .map(<[u8]>::to_vec);
        out.push((subtype, creator, required(e, 0x5F2E, what)?.to_vec()));
    }
    Ok(out)
}

/// Parses DG2 and returns its faces.
pub fn parse_dg2(bytes: &[u8]) -> Result<Vec<FaceImage>, LdsError> {
    parse_group(bytes, 0x75, "DG2", TYPE_FACE, FORMAT_FACE)?
        .into_iter()
        .map(|(_, _, record)| parse_face_record(&record))
        .collect()
}

/// Parses DG3 and returns its finger templates.
pub fn parse_dg3(bytes: &[u8]) -> Result<Vec<FingerTemplate>, LdsError> {
    parse_group(bytes, 0x63, "DG3", TYPE_FINGER, FORMAT_FINGER)?
        .into_iter()
        .map(|(subtype, creator, iso_record)| {
            let position = finger_position(subtype.unwrap_or(0))
                .ok_or_else(|| LdsError::malformed("DG3", "unknown finger subtype"))?;
            if iso_record.len() < 4 || &iso_record[..4] != b"FMR\0" {
                return Err(LdsError::malformed(
                    "DG3",
                    "data block is not an ISO/IEC 19794-2 record",
                ));
            }
            Ok(FingerTemplate {
                position,
                iso_record,
                creator,
            })
        })
        .collect()
}
