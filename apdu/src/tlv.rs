//! BER-TLV (ISO/IEC 7816-4 §6.3 / ISO/IEC 8825-1) as used by smart cards.
//!
//! - [`Tag`]: one to four tag bytes kept as a big-endian number (`Tag(0x5F2E)`, `Tag(0x7F61)`).
//! - [`Tlv`]: a tag and a [`Value`], either primitive bytes or constructed children.
//! - [`Tlv::decode_all`] decodes a sequence; [`Tlv::decode`] decodes one object and returns the
//!   rest; [`Tlv::encode`] writes the definite, minimal-length form.
//! - [`Tlv::find`] follows a tag path; [`Tlv::find_all`] lists every match depth-first.
//!
//! Lengths use the short form (`00`-`7F`) or the long forms `81`-`84`; the indefinite form
//! (`80`) and lengths running past the input are rejected with [`Error::Malformed`]. Nesting is
//! limited to [`MAX_DEPTH`] levels so hostile input cannot exhaust the stack. Between objects of a
//! sequence, `00` and `FF` padding bytes are skipped, as ISO/IEC 7816-4 §6.3 allows.
//!
//! ```
//! use apdu::tlv::{Tag, Tlv};
//! let bit = Tlv::constructed(Tag(0x7F61), vec![
//!     Tlv::primitive(Tag(0x02), [1]),
//!     Tlv::constructed(Tag(0x7F60), vec![Tlv::primitive(Tag(0x5F2E), vec![0xAB; 3])]),
//! ]);
//! let bytes = bit.encode();
//! let back = Tlv::decode_all(&bytes).unwrap();
//! assert_eq!(back, [bit]);
//! let bdb = back[0].find(&[Tag(0x7F60), Tag(0x5F2E)]).and_then(Tlv::as_bytes);
//! assert_eq!(bdb, Some(&[0xAB; 3][..]));
//! ```

use std::fmt;

use crate::error::Error;

/// Deepest nesting of constructed objects the decoder accepts.
pub const MAX_DEPTH: usize = 32;

/// Most bytes a tag may take (the whole tag must fit a `u32`).
pub const MAX_TAG_BYTES: usize = 4;

/// Most bytes after `8x` in a long-form length (`84 xx xx xx xx`).
pub const MAX_LENGTH_BYTES: usize = 4;

/// A BER-TLV tag: its one to four wire bytes as a big-endian number, so the tag written `5F2E`
/// in the specifications is `Tag(0x5F2E)`.
///
/// The decoder only ever builds well-formed tags. A tag built by hand from a number that is not
/// a well-formed tag (see [`Tag::is_valid`]) is encoded as its raw bytes and will not decode back
/// to itself; use [`Tag::try_from`] for numbers that come from input.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(pub u32);

/// The class of a tag (bits 8-7 of its first byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TagClass {
    /// `00xxxxxx`: universal (ISO/IEC 8825-1).
    Universal,
    /// `01xxxxxx`: application (ISO/IEC 7816 interindustry templates such as `61`, `7F61`).
    Application,
    /// `10xxxxxx`: context-specific (e.g. `80`-`8F` inside an FCP).
    Context,
    /// `11xxxxxx`: private.
    Private,
}

impl Tag {
    /// Number of bytes the tag takes on the wire.
    pub fn encoded_len(self) -> usize {
        match self.0 {
            0..=0xFF => 1,
            0x100..=0xFFFF => 2,
            0x1_0000..=0xFF_FFFF => 3,
            _ => 4,
        }
    }

    /// The first wire byte (class, constructed bit, tag number or `1F`).
    pub fn first_byte(self) -> u8 {
        let shift = 8 * (self.encoded_len() - 1);
        (self.0 >> shift) as u8
    }

    /// True when bit 6 of the first byte is set: the value is a sequence of TLV objects.
    pub fn is_constructed(self) -> bool {
        self.first_byte() & 0x20 != 0
    }

    /// The tag's class.
    pub fn class(self) -> TagClass {
        match self.first_byte() >> 6 {
            0 => TagClass::Universal,
            1 => TagClass::Application,
            2 => TagClass::Context,
            _ => TagClass::Private,
        }
    }

    /// The wire bytes of the tag (the first `encoded_len()` bytes of the array are used).
    pub fn to_bytes(self) -> ([u8; MAX_TAG_BYTES], usize) {
        let n = self.encoded_len();
        let mut out = [0u8; MAX_TAG_BYTES];
        out[..n].copy_from_slice(&self.0.to_be_bytes()[MAX_TAG_BYTES - n..]);
        (out, n)
    }

    /// Appends the tag's wire bytes to `out`.
    pub fn write_to(self, out: &mut Vec<u8>) {
        let (bytes, n) = self.to_bytes();
        out.extend_from_slice(&bytes[..n]);
    }

    /// True when the number is a well-formed tag: first byte not `00` or `FF` (ISO/IEC 7816-4
    /// §6.3 reserves them as padding); a single byte unless its low five bits are `1F`; after
    /// `xx1F`, every subsequent byte but the last has bit 8 set.
    pub fn is_valid(self) -> bool {
        let (bytes, n) = self.to_bytes();
        let bytes = &bytes[..n];
        matches!(Tag::parse(bytes), Ok((tag, used)) if used == n && tag == self)
    }

    /// Parses the tag at the start of `input`; returns it and how many bytes it took.
    pub fn parse(input: &[u8]) -> Result<(Tag, usize), Error> {
        let Some(&first) = input.first() else {
            return Err(Error::Malformed("TLV: missing tag".into()));
        };
        if first == 0x00 || first == 0xFF {
            return Err(Error::Malformed(format!(
                "TLV: invalid tag byte {first:02X}"
            )));
        }
        let mut value = first as u32;
        if first & 0x1F != 0x1F {
            return Ok((Tag(value), 1));
        }
        for i in 1..MAX_TAG_BYTES {
            let Some(&b) = input.get(i) else {
                return Err(Error::Malformed(format!(
                    "TLV: tag {} truncated after {i} bytes",
                    hex::encode_upper(input)
                )));
            };
            value = (value << 8) | b as u32;
            if b & 0x80 == 0 {
                return Ok((Tag(value), i + 1));
            }
        }
        Err(Error::Malformed(format!(
            "TLV: tag {} longer than {MAX_TAG_BYTES} bytes",
            hex::encode_upper(&input[..MAX_TAG_BYTES])
        )))
    }
}

impl TryFrom<u32> for Tag {
    type Error = Error;

    /// Checks that a number taken from input (e.g. P1-P2 of GET DATA) is a well-formed tag.
    fn try_from(value: u32) -> Result<Self, Error> {
        let tag = Tag(value);
        if tag.is_valid() {
            Ok(tag)
        } else {
            Err(Error::Malformed(format!(
                "{value:X} is not a well-formed BER-TLV tag"
            )))
        }
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (bytes, n) = self.to_bytes();
        for b in &bytes[..n] {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Tag({self})")
    }
}

/// Parses a BER length at the start of `input`; returns the length and how many bytes it took.
/// Accepts `00`-`7F` and `81`-`84`; rejects the indefinite form `80` and longer forms.
pub fn parse_length(input: &[u8]) -> Result<(usize, usize), Error> {
    let Some(&first) = input.first() else {
        return Err(Error::Malformed("TLV: missing length".into()));
    };
    if first < 0x80 {
        return Ok((first as usize, 1));
    }
    let n = (first & 0x7F) as usize;
    if n == 0 {
        return Err(Error::Malformed(
            "TLV: indefinite length (80) is not allowed".into(),
        ));
    }
    if n > MAX_LENGTH_BYTES {
        return Err(Error::Malformed(format!(
            "TLV: length form {first:02X} is not supported"
        )));
    }
    let Some(bytes) = input.get(1..1 + n) else {
        return Err(Error::Malformed(format!(
            "TLV: length {first:02X} truncated"
        )));
    };
    let len = bytes.iter().fold(0u64, |acc, &b| (acc << 8) | b as u64);
    let len = usize::try_from(len)
        .map_err(|_| Error::Malformed(format!("TLV: length {len} too large")))?;
    Ok((len, 1 + n))
}

/// Bytes the minimal encoding of `len` takes.
pub fn length_size(len: usize) -> usize {
    match len {
        0..=0x7F => 1,
        0x80..=0xFF => 2,
        0x100..=0xFFFF => 3,
        0x1_0000..=0xFF_FFFF => 4,
        _ => 1 + (usize::BITS as usize / 8 - len.leading_zeros() as usize / 8),
    }
}

/// Appends the minimal definite encoding of `len` (`xx`, `81 xx`, `82 xx xx`, ...).
pub fn write_length(len: usize, out: &mut Vec<u8>) {
    let size = length_size(len);
    if size == 1 {
        out.push(len as u8);
    } else {
        let n = size - 1;
        out.push(0x80 | n as u8);
        out.extend_from_slice(&len.to_be_bytes()[std::mem::size_of::<usize>() - n..]);
    }
}

/// The value of a TLV object.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// Raw value bytes.
    Primitive(Vec<u8>),
    /// A sequence of nested TLV objects.
    Constructed(Vec<Tlv>),
}

/// One BER-TLV data object.
#[derive(Clone, PartialEq, Eq)]
pub struct Tlv {
    /// The tag; its constructed bit decides how the decoder reads the value.
    pub tag: Tag,
    /// Primitive bytes or constructed children.
    pub value: Value,
}

impl Tlv {
    /// A primitive object.
    pub fn primitive(tag: Tag, value: impl Into<Vec<u8>>) -> Tlv {
        Tlv {
            tag,
            value: Value::Primitive(value.into()),
        }
    }

    /// A constructed object with the given children.
    pub fn constructed(tag: Tag, children: Vec<Tlv>) -> Tlv {
        Tlv {
            tag,
            value: Value::Constructed(children),
        }
    }

    /// The bytes of a primitive object (`None` for a constructed one).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Value::Primitive(v) => Some(v),
            Value::Constructed(_) => None,
        }
    }

    /// The children of a constructed object (empty for a primitive one).
    pub fn children(&self) -> &[Tlv] {
        match &self.value {
            Value::Primitive(_) => &[],
            Value::Constructed(c) => c,
        }
    }

    /// Adds a child to a constructed object; a primitive object becomes constructed (its bytes
    /// are dropped). Returns `self` for building templates in one expression.
    pub fn with_child(mut self, child: Tlv) -> Tlv {
        match &mut self.value {
            Value::Constructed(c) => c.push(child),
            Value::Primitive(_) => self.value = Value::Constructed(vec![child]),
        }
        self
    }

    /// Length of the value field on the wire.
    pub fn value_len(&self) -> usize {
        match &self.value {
            Value::Primitive(v) => v.len(),
            Value::Constructed(c) => c.iter().map(Tlv::encoded_len).sum(),
        }
    }

    /// Length of the whole object on the wire (tag, length and value).
    pub fn encoded_len(&self) -> usize {
        let len = self.value_len();
        self.tag.encoded_len() + length_size(len) + len
    }

    /// Encodes the object (definite, minimal lengths).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Appends the encoded object to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.tag.write_to(out);
        write_length(self.value_len(), out);
        match &self.value {
            Value::Primitive(v) => out.extend_from_slice(v),
            Value::Constructed(c) => c.iter().for_each(|t| t.encode_into(out)),
        }
    }

    /// Encodes a sequence of objects back to back.
    pub fn encode_all(list: &[Tlv]) -> Vec<u8> {
        let mut out = Vec::with_capacity(list.iter().map(Tlv::encoded_len).sum());
        list.iter().for_each(|t| t.encode_into(&mut out));
        out
    }

    /// Decodes one object at the start of `input` and returns it with the bytes after it.
    pub fn decode(input: &[u8]) -> Result<(Tlv, &[u8]), Error> {
        let (tlv, used) = decode_at(input, 0, 0)?;
        Ok((tlv, &input[used..]))
    }

    /// Decodes exactly one object; trailing bytes other than `00`/`FF` padding are an error.
    pub fn decode_one(input: &[u8]) -> Result<Tlv, Error> {
        let (tlv, rest) = Tlv::decode(input)?;
        if rest.iter().any(|&b| b != 0x00 && b != 0xFF) {
            return Err(Error::Malformed(format!(
                "TLV {}: {} unexpected bytes after the object",
                tlv.tag,
                rest.len()
            )));
        }
        Ok(tlv)
    }

    /// Decodes a sequence of objects filling `input`, skipping `00`/`FF` padding between them.
    pub fn decode_all(input: &[u8]) -> Result<Vec<Tlv>, Error> {
        decode_seq(input, 0, 0)
    }

    /// Follows `path` down from this object's children: `path[0]` is a child of `self`,
    /// `path[1]` a child of that, and so on. Returns the first object (depth-first) at the end
    /// of the path; an empty path returns `self`.
    pub fn find(&self, path: &[Tag]) -> Option<&Tlv> {
        match path {
            [] => Some(self),
            _ => find(self.children(), path),
        }
    }

    /// Every object with `tag` in this subtree, `self` included, in depth-first pre-order.
    pub fn find_all(&self, tag: Tag) -> Vec<&Tlv> {
        let mut out = Vec::new();
        collect(self, tag, &mut out);
        out
    }
}

/// Follows `path` from a sequence: `path[0]` is matched against the objects of `list`, the next
/// tag against the children of each match, and so on. Returns the first object at the end of the
/// path in depth-first order, or `None` (also for an empty path).
pub fn find<'a>(list: &'a [Tlv], path: &[Tag]) -> Option<&'a Tlv> {
    let (first, rest) = path.split_first()?;
    list.iter()
        .filter(|t| t.tag == *first)
        .find_map(|t| match rest {
            [] => Some(t),
            _ => find(t.children(), rest),
        })
}

/// Every object with `tag` in a sequence and its subtrees, in depth-first pre-order.
pub fn find_all(list: &[Tlv], tag: Tag) -> Vec<&Tlv> {
    let mut out = Vec::new();
    list.iter().for_each(|t| collect(t, tag, &mut out));
    out
}

fn collect<'a>(tlv: &'a Tlv, tag: Tag, out: &mut Vec<&'a Tlv>) {
    if tlv.tag == tag {
        out.push(tlv);
    }
    tlv.children().iter().for_each(|c| collect(c, tag, out));
}

/// Decodes one object at `input[0..]`; `base` is its offset in the outermost buffer (for error
/// messages), `depth` how many constructed objects enclose it.
fn decode_at(input: &[u8], base: usize, depth: usize) -> Result<(Tlv, usize), Error> {
    let at = |e: Error| match e {
        Error::Malformed(m) => Error::Malformed(format!("{m} at offset {base}")),
        other => other,
    };
    let (tag, tag_len) = Tag::parse(input).map_err(at)?;
    let (len, len_len) = parse_length(&input[tag_len..]).map_err(at)?;
    let start = tag_len + len_len;
    let available = input.len() - start;
    if len > available {
        return Err(Error::Malformed(format!(
            "TLV {tag}: length {len} exceeds the {available} bytes left at offset {base}"
        )));
    }
    let body = &input[start..start + len];
    let value = if tag.is_constructed() {
        if depth + 1 > MAX_DEPTH {
            return Err(Error::Malformed(format!(
                "TLV {tag}: nesting deeper than {MAX_DEPTH} levels at offset {base}"
            )));
        }
        Value::Constructed(decode_seq(body, base + start, depth + 1)?)
    } else {
        Value::Primitive(body.to_vec())
    };
    Ok((Tlv { tag, value }, start + len))
}

fn decode_seq(input: &[u8], base: usize, depth: usize) -> Result<Vec<Tlv>, Error> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < input.len() {
        if input[pos] == 0x00 || input[pos] == 0xFF {
            pos += 1;
            continue;
        }
        let (tlv, used) = decode_at(&input[pos..], base + pos, depth)?;
        out.push(tlv);
        pos += used;
    }
    Ok(out)
}

impl fmt::Debug for Tlv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Value::Primitive(v) => write!(f, "{} [{}]", self.tag, hex::encode_upper(v)),
            Value::Constructed(c) => {
                write!(f, "{} ", self.tag)?;
                f.debug_list().entries(c).finish()
            }
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Primitive(v) => write!(f, "Primitive({})", hex::encode_upper(v)),
            Value::Constructed(c) => f.debug_tuple("Constructed").field(c).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn multi_byte_tags() {
        assert_eq!(Tag::parse(&[0x5F, 0x2E, 0x01]).unwrap(), (Tag(0x5F2E), 2));
        assert_eq!(Tag::parse(&[0x7F, 0x61]).unwrap(), (Tag(0x7F61), 2));
        assert_eq!(Tag::parse(&[0x9F, 0x81, 0x01]).unwrap(), (Tag(0x9F8101), 3));
        assert_eq!(Tag::parse(&[0x84]).unwrap(), (Tag(0x84), 1));
        assert!(Tag(0x7F61).is_constructed() && !Tag(0x5F2E).is_constructed());
        assert!(Tag(0x62).is_constructed() && !Tag(0x83).is_constructed());
        assert_eq!(Tag(0x5F2E).class(), TagClass::Application);
        assert_eq!(Tag(0x83).class(), TagClass::Context);
        assert_eq!(Tag(0x5F2E).to_string(), "5F2E");
        // Truncated, too long, padding bytes as tags.
        assert!(Tag::parse(&[0x5F]).is_err());
        assert!(Tag::parse(&[0x5F, 0x81, 0x81, 0x81, 0x01]).is_err());
        assert!(Tag::parse(&[0x00]).is_err() && Tag::parse(&[0xFF, 0x01]).is_err());
        assert!(Tag::parse(&[]).is_err());
    }

    #[test]
    fn tag_validity() {
        for ok in [0x01, 0x5F2E, 0x7F61, 0x9F8101, 0x5F818101] {
            assert!(Tag(ok).is_valid(), "{ok:X}");
            assert!(Tag::try_from(ok).is_ok());
        }
        for bad in [0x00, 0xFF, 0x1F, 0x5F81, 0x8201, 0x5F818181] {
            assert!(!Tag(bad).is_valid(), "{bad:X}");
            assert!(Tag::try_from(bad).is_err());
        }
    }

    #[test]
    fn lengths_short_and_long() {
        assert_eq!(parse_length(&[0x7F]).unwrap(), (0x7F, 1));
        assert_eq!(parse_length(&[0x81, 0x80]).unwrap(), (0x80, 2));
        assert_eq!(parse_length(&[0x82, 0x01, 0x00]).unwrap(), (0x100, 3));
        assert_eq!(
            parse_length(&[0x83, 0x01, 0x00, 0x00]).unwrap(),
            (0x1_0000, 4)
        );
        assert_eq!(
            parse_length(&[0x84, 0x01, 0, 0, 0]).unwrap(),
            (0x100_0000, 5)
        );
        assert!(parse_length(&[0x80]).is_err());
        assert!(parse_length(&[0x85, 1, 1, 1, 1, 1]).is_err());
        assert!(parse_length(&[0x82, 0x01]).is_err());
        for len in [0, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x1_0000, 0x100_0000] {
            let mut out = Vec::new();
            write_length(len, &mut out);
            assert_eq!(out.len(), length_size(len));
            assert_eq!(parse_length(&out).unwrap(), (len, out.len()), "{len}");
        }
    }

    #[test]
    fn decodes_nested_template_and_finds_by_path() {
        // 7F61 { 02 01 01, 7F60 { A1 { 81 01 02 }, 5F2E 82 0003 AABBCC } }
        let bytes = unhex("7F61 13 020101 7F60 0D A103 810102 5F2E 820003 AABBCC");
        let list = Tlv::decode_all(&bytes).unwrap();
        assert_eq!(list.len(), 1);
        let bit = &list[0];
        assert_eq!(bit.tag, Tag(0x7F61));
        assert_eq!(
            bit.find(&[Tag(0x02)]).and_then(Tlv::as_bytes),
            Some(&[1][..])
        );
        let bdb = find(&list, &[Tag(0x7F61), Tag(0x7F60), Tag(0x5F2E)]).unwrap();
        assert_eq!(bdb.as_bytes(), Some(&[0xAA, 0xBB, 0xCC][..]));
        assert_eq!(
            bit.find(&[Tag(0x7F60), Tag(0xA1), Tag(0x81)])
                .unwrap()
                .as_bytes(),
            Some(&[2][..])
        );
        assert!(bit.find(&[Tag(0x5F2E)]).is_none());
        assert_eq!(bit.find(&[]), Some(bit));
        // The long form 82 0003 is re-encoded minimally.
        assert_eq!(bit.encoded_len(), bytes.len() - 2);
        assert_eq!(Tlv::decode_all(&bit.encode()).unwrap(), list);
    }

    #[test]
    fn find_backtracks_and_find_all_is_depth_first() {
        // 61 { 4F 01 01 }, 61 { 4F 01 02, 50 00 }, 70 { 61 { 50 01 03 } }
        let bytes = unhex("6103 4F0101 6105 4F0102 5000 7005 6103 500103");
        let list = Tlv::decode_all(&bytes).unwrap();
        // The first 61 has no 50: the search goes on to the second.
        assert_eq!(
            find(&list, &[Tag(0x61), Tag(0x50)]).unwrap().as_bytes(),
            Some(&[][..])
        );
        let all: Vec<_> = find_all(&list, Tag(0x61))
            .iter()
            .map(|t| t.encode())
            .collect();
        assert_eq!(
            all,
            [
                unhex("61034F0101"),
                unhex("61054F01025000"),
                unhex("6103500103")
            ]
        );
        assert_eq!(list[2].find_all(Tag(0x50)).len(), 1);
        assert!(find(&list, &[]).is_none());
    }

    #[test]
    fn rejects_bad_lengths_with_clear_errors() {
        let err = Tlv::decode_all(&unhex("5F2E 05 0102"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("5F2E") && err.contains("exceeds"), "{err}");
        let err = Tlv::decode_all(&unhex("7F61 80 0000"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("indefinite"), "{err}");
        // A child running past its parent's value is an error even if the buffer is longer.
        assert!(Tlv::decode_all(&unhex("6103 4F05 0102 030405")).is_err());
        assert!(Tlv::decode_one(&unhex("4F0101 02")).is_err());
        assert_eq!(
            Tlv::decode_one(&unhex("4F0101 FFFF")).unwrap().tag,
            Tag(0x4F)
        );
    }

    #[test]
    fn padding_between_objects_is_skipped() {
        let list = Tlv::decode_all(&unhex("00 4F0101 FFFF 500100 00")).unwrap();
        assert_eq!(
            list,
            [
                Tlv::primitive(Tag(0x4F), [1]),
                Tlv::primitive(Tag(0x50), [0])
            ]
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut deep = Tlv::primitive(Tag(0x80), [1]);
        for _ in 0..MAX_DEPTH {
            deep = Tlv::constructed(Tag(0xA0), vec![deep]);
        }
        assert!(Tlv::decode_one(&deep.encode()).is_ok());
        let too_deep = Tlv::constructed(Tag(0xA0), vec![deep]);
        let err = Tlv::decode_one(&too_deep.encode()).unwrap_err().to_string();
        assert!(err.contains("nesting"), "{err}");
        // A hostile run of nested headers with no content fails cleanly.
        let hostile: Vec<u8> = std::iter::repeat_n([0xA0u8, 0x80], 10_000)
            .flatten()
            .collect();
        assert!(Tlv::decode_all(&hostile).is_err());
    }

    #[test]
    fn builders_and_encode_all() {
        let t = Tlv::constructed(Tag(0x62), vec![])
            .with_child(Tlv::primitive(Tag(0x83), [0x01, 0x1E]))
            .with_child(Tlv::primitive(Tag(0x5F2E), vec![0; 0x80]));
        let bytes = t.encode();
        assert_eq!(&bytes[..2], &[0x62, 0x81]);
        assert_eq!(bytes[2] as usize, 4 + 4 + 0x80);
        let seq = Tlv::encode_all(&[t.clone(), t.clone()]);
        assert_eq!(Tlv::decode_all(&seq).unwrap(), [t.clone(), t]);
    }
}
