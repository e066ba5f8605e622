//! File Control Parameters (ISO/IEC 7816-4 §7.4.3, template `62`) and the life-cycle status
//! byte (ISO/IEC 7816-4 §7.4.10, ISO/IEC 7816-9).
//!
//! The simulated card builds an [`Fcp`] and answers SELECT with [`Fcp::to_bytes`]; CREATE FILE
//! carries the same bytes; the host reads them back with [`Fcp::parse`]. Data objects this module
//! does not interpret are kept, in order, so nothing a card sends is lost.
//!
//! ```
//! use apdu::fcp::{Fcp, LifeCycle};
//! let ef = Fcp::transparent_ef(0x011E, 1024).with_sfi(0x1E).with_life_cycle(LifeCycle::Activated);
//! let back = Fcp::parse(&ef.to_bytes()).unwrap();
//! assert_eq!(back, ef);
//! assert!(back.descriptor.is_transparent_ef());
//! assert_eq!((back.fid, back.size, back.sfi), (Some(0x011E), Some(1024), Some(0x1E)));
//! ```

use crate::error::Error;
use crate::tlv::{Tag, Tlv, Value};

/// Tag of the FCP template.
pub const TAG_FCP: Tag = Tag(0x62);
/// Tag of the FCI template (SELECT with P2 = 00), which may enclose an FCP.
pub const TAG_FCI: Tag = Tag(0x6F);
/// Number of data bytes in the file (transparent EF size).
pub const TAG_SIZE: Tag = Tag(0x80);
/// File descriptor byte, data coding byte and record information.
pub const TAG_DESCRIPTOR: Tag = Tag(0x82);
/// File identifier.
pub const TAG_FID: Tag = Tag(0x83);
/// DF name (application identifier).
pub const TAG_DF_NAME: Tag = Tag(0x84);
/// Short EF identifier.
pub const TAG_SFI: Tag = Tag(0x88);
/// Life-cycle status byte.
pub const TAG_LCS: Tag = Tag(0x8A);

/// Longest DF name ISO/IEC 7816-4 §8.2.1.2 allows.
pub const MAX_DF_NAME: usize = 16;

/// Tags of the security attribute data objects (ISO/IEC 7816-4 Table 12: `86`, `8B`, `8C`,
/// `8D`, `A0`, `A1`, `A2`, `AB`).
pub const SECURITY_TAGS: [Tag; 8] = [
    Tag(0x86),
    Tag(0x8B),
    Tag(0x8C),
    Tag(0x8D),
    Tag(0xA0),
    Tag(0xA1),
    Tag(0xA2),
    Tag(0xAB),
];

/// Tags of proprietary information (`85` primitive, `A5` constructed).
pub const PROPRIETARY_TAGS: [Tag; 2] = [Tag(0x85), Tag(0xA5)];

/// The file descriptor byte (ISO/IEC 7816-4 §7.4.5, Table 14), kept verbatim so every value
/// round-trips; the methods decode its bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileDescriptor(pub u8);

/// The structure of an EF (bits 3-1 of the file descriptor byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EfStructure {
    /// `000`: no information given.
    NoInformation,
    /// `001`: transparent (binary) EF.
    Transparent,
    /// `010`/`011`: linear fixed records (`011`: TLV records).
    LinearFixed,
    /// `100`/`101`: linear variable records (`101`: TLV records).
    LinearVariable,
    /// `110`/`111`: cyclic records (`111`: TLV records).
    Cyclic,
}

impl FileDescriptor {
    /// A DF (`38`).
    pub const DF: FileDescriptor = FileDescriptor(0x38);
    /// A working transparent EF (`01`).
    pub const TRANSPARENT_EF: FileDescriptor = FileDescriptor(0x01);
    /// An internal transparent EF (`09`), e.g. a key or PIN object the card uses itself.
    pub const INTERNAL_TRANSPARENT_EF: FileDescriptor = FileDescriptor(0x09);

    /// True for a DF (bits 6-4 = `111`).
    pub fn is_df(self) -> bool {
        self.0 & 0x80 == 0 && self.0 & 0x38 == 0x38
    }

    /// True for a working EF (bits 6-4 = `000`): its data is for the outside world.
    pub fn is_working_ef(self) -> bool {
        self.0 & 0x80 == 0 && self.0 & 0x38 == 0x00
    }

    /// True for an internal EF (bits 6-4 = `001`): its data is for the card itself.
    pub fn is_internal_ef(self) -> bool {
        self.0 & 0x80 == 0 && self.0 & 0x38 == 0x08
    }

    /// True for a transparent EF, working or internal.
    pub fn is_transparent_ef(self) -> bool {
        (self.is_working_ef() || self.is_internal_ef()) && self.0 & 0x07 == 0x01
    }

    /// True when bit 7 says the file is shareable.
    pub fn is_shareable(self) -> bool {
        self.0 & 0xC0 == 0x40
    }

    /// The EF structure, or `None` for a DF or a proprietary value.
    pub fn ef_structure(self) -> Option<EfStructure> {
        if !(self.is_working_ef() || self.is_internal_ef()) {
            return None;
        }
        Some(match self.0 & 0x07 {
            0 => EfStructure::NoInformation,
            1 => EfStructure::Transparent,
            2 | 3 => EfStructure::LinearFixed,
            4 | 5 => EfStructure::LinearVariable,
            _ => EfStructure::Cyclic,
        })
    }
}

/// Life-cycle status byte (ISO/IEC 7816-4 §7.4.10 Table 15, ISO/IEC 7816-9 §5).
///
/// The named variants are the values this project writes; every other byte is kept in
/// [`LifeCycle::Other`], so `u8 -> LifeCycle -> u8` is the identity. The `is_*` methods decode
/// by bit pattern, so e.g. `07` (also "operational, activated") is recognised too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifeCycle {
    /// `01`: creation state (the file exists, nothing is checked yet).
    Creation,
    /// `03`: initialisation state (being personalised).
    Initialisation,
    /// `05`: operational state, activated (access conditions enforced).
    Activated,
    /// `04`: operational state, deactivated (only ACTIVATE FILE is accepted).
    Deactivated,
    /// `0C`: termination state (the file can never be used again).
    Terminated,
    /// Any other value, kept verbatim (`00` no information, `07`, `0D`-`0F`, proprietary).
    Other(u8),
}

impl LifeCycle {
    /// True for an operational, activated file (`0000 01x1`).
    pub fn is_activated(self) -> bool {
        u8::from(self) & 0xFD == 0x05
    }

    /// True for an operational, deactivated file (`0000 01x0`).
    pub fn is_deactivated(self) -> bool {
        u8::from(self) & 0xFD == 0x04
    }

    /// True for a terminated file (`0000 11xx`).
    pub fn is_terminated(self) -> bool {
        u8::from(self) & 0xFC == 0x0C
    }
}

impl From<u8> for LifeCycle {
    fn from(b: u8) -> Self {
        match b {
            0x01 => LifeCycle::Creation,
            0x03 => LifeCycle::Initialisation,
            0x05 => LifeCycle::Activated,
            0x04 => LifeCycle::Deactivated,
            0x0C => LifeCycle::Terminated,
            other => LifeCycle::Other(other),
        }
    }
}

impl From<LifeCycle> for u8 {
    fn from(l: LifeCycle) -> u8 {
        match l {
            LifeCycle::Creation => 0x01,
            LifeCycle::Initialisation => 0x03,
            LifeCycle::Activated => 0x05,
            LifeCycle::Deactivated => 0x04,
            LifeCycle::Terminated => 0x0C,
            LifeCycle::Other(b) => b,
        }
    }
}

/// File Control Parameters of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fcp {
    /// File descriptor byte (DO `82`, first byte): DF or EF, working or internal, structure.
    pub descriptor: FileDescriptor,
    /// Data coding byte (DO `82`, second byte), when present.
    pub data_coding: Option<u8>,
    /// Record information after the data coding byte (DO `82`, bytes 3-6: maximum record size
    /// and number of records), verbatim; empty for transparent EFs and DFs.
    pub record_info: Vec<u8>,
    /// File identifier (DO `83`).
    pub fid: Option<u16>,
    /// Number of data bytes in a transparent EF (DO `80`, up to four bytes).
    pub size: Option<u32>,
    /// Short EF identifier 1-30 (DO `88`, value `sfi << 3`).
    pub sfi: Option<u8>,
    /// Life-cycle status (DO `8A`).
    pub life_cycle: Option<LifeCycle>,
    /// DF name / application identifier (DO `84`, 1-16 bytes).
    pub df_name: Option<Vec<u8>>,
    /// Security attributes (DOs `86`, `8B`, `8C`, `8D`, `A0`, `A1`, `A2`, `AB`), in card order.
    pub security: Vec<Tlv>,
    /// Proprietary information (DOs `85`, `A5`), in card order.
    pub proprietary: Vec<Tlv>,
    /// Any other data object (e.g. `81` total size, an empty `88`), kept in card order.
    pub other: Vec<Tlv>,
}

impl Fcp {
    /// FCP with only a file descriptor; the other fields are empty.
    pub fn new(descriptor: FileDescriptor) -> Fcp {
        Fcp {
            descriptor,
            data_coding: None,
            record_info: Vec::new(),
            fid: None,
            size: None,
            sfi: None,
            life_cycle: None,
            df_name: None,
            security: Vec::new(),
            proprietary: Vec::new(),
            other: Vec::new(),
        }
    }

    /// FCP of a DF with a file identifier and, optionally, a DF name (AID).
    pub fn df(fid: u16, df_name: Option<&[u8]>) -> Fcp {
        let mut fcp = Fcp::new(FileDescriptor::DF);
        fcp.fid = Some(fid);
        fcp.df_name = df_name.map(<[u8]>::to_vec);
        fcp
    }

    /// FCP of a working transparent EF of `size` bytes.
    pub fn transparent_ef(fid: u16, size: u32) -> Fcp {
        let mut fcp = Fcp::new(FileDescriptor::TRANSPARENT_EF);
        fcp.fid = Some(fid);
        fcp.size = Some(size);
        fcp
    }

    /// Sets the short EF identifier (1-30).
    pub fn with_sfi(mut self, sfi: u8) -> Fcp {
        self.sfi = Some(sfi);
        self
    }

    /// Sets the life-cycle status.
    pub fn with_life_cycle(mut self, lcs: LifeCycle) -> Fcp {
        self.life_cycle = Some(lcs);
        self
    }

    /// Adds a security attribute data object (e.g. `8C` compact form).
    pub fn with_security(mut self, attribute: Tlv) -> Fcp {
        self.security.push(attribute);
        self
    }

    /// Parses an FCP template (`62 ...`), or an FCI template (`6F ...`) enclosing one.
    /// Trailing `00`/`FF` padding is allowed; any other trailing byte is an error.
    pub fn parse(bytes: &[u8]) -> Result<Fcp, Error> {
        let outer = Tlv::decode_one(bytes)?;
        Fcp::from_tlv(&outer)
    }

    /// Reads an FCP from a decoded `62` template, or a `6F` template holding a `62`.
    pub fn from_tlv(tlv: &Tlv) -> Result<Fcp, Error> {
        let template = match tlv.tag {
            TAG_FCP => tlv,
            TAG_FCI => tlv
                .find(&[TAG_FCP])
                .ok_or_else(|| Error::Malformed("FCI template 6F without an FCP (62)".into()))?,
            other => {
                return Err(Error::Malformed(format!(
                    "expected an FCP template 62, found tag {other}"
                )))
            }
        };
        let mut descriptor = None;
        let mut fcp = Fcp::new(FileDescriptor(0));
        let mut seen: Vec<Tag> = Vec::new();
        for child in template.children() {
            let known = [
                TAG_SIZE,
                TAG_DESCRIPTOR,
                TAG_FID,
                TAG_DF_NAME,
                TAG_SFI,
                TAG_LCS,
            ];
            if known.contains(&child.tag) {
                if seen.contains(&child.tag) {
                    return Err(Error::Malformed(format!(
                        "FCP: duplicate data object {}",
                        child.tag
                    )));
                }
                seen.push(child.tag);
            }
            let v = match &child.value {
                Value::Primitive(v) => v.as_slice(),
                Value::Constructed(_) => {
                    sort_other(&mut fcp, child);
                    continue;
                }
            };
            match child.tag {
                TAG_DESCRIPTOR => {
                    let Some((&first, rest)) = v.split_first() else {
                        return Err(bad_len(child, "1 to 6"));
                    };
                    if rest.len() > 5 {
                        return Err(bad_len(child, "1 to 6"));
                    }
                    descriptor = Some(FileDescriptor(first));
                    if let Some((&coding, info)) = rest.split_first() {
                        fcp.data_coding = Some(coding);
                        fcp.record_info = info.to_vec();
                    }
                }
                TAG_FID => match v {
                    [hi, lo] => fcp.fid = Some(u16::from_be_bytes([*hi, *lo])),
                    _ => return Err(bad_len(child, "2")),
                },
                TAG_SIZE => {
                    if v.is_empty() || v.len() > 4 {
                        return Err(bad_len(child, "1 to 4"));
                    }
                    fcp.size = Some(v.iter().fold(0u32, |acc, &b| (acc << 8) | b as u32));
                }
                TAG_SFI => match v {
                    [] => fcp.other.push(child.clone()),
                    [b] if b & 0x07 == 0 && (1..=30).contains(&(b >> 3)) => fcp.sfi = Some(b >> 3),
                    [b] => {
                        return Err(Error::Malformed(format!(
                            "FCP: invalid SFI byte {b:02X} in 88"
                        )))
                    }
                    _ => return Err(bad_len(child, "0 or 1")),
                },
                TAG_LCS => match v {
                    [b] => fcp.life_cycle = Some(LifeCycle::from(*b)),
                    _ => return Err(bad_len(child, "1")),
                },
                TAG_DF_NAME => {
                    if v.is_empty() || v.len() > MAX_DF_NAME {
                        return Err(bad_len(child, "1 to 16"));
                    }
                    fcp.df_name = Some(v.to_vec());
                }
                _ => sort_other(&mut fcp, child),
            }
        }
        fcp.descriptor = descriptor
            .ok_or_else(|| Error::Malformed("FCP: missing file descriptor (82)".into()))?;
        Ok(fcp)
    }

    /// The FCP as a `62` template. Fields are written in the order 82, 83, 84, 80, 88, 8A, then
    /// security attributes, proprietary and other objects.
    pub fn to_tlv(&self) -> Tlv {
        let mut children = Vec::with_capacity(6 + self.security.len() + self.other.len());
        let mut d = vec![self.descriptor.0];
        if let Some(coding) = self.data_coding {
            d.push(coding);
            d.extend_from_slice(&self.record_info);
        }
        children.push(Tlv::primitive(TAG_DESCRIPTOR, d));
        if let Some(fid) = self.fid {
            children.push(Tlv::primitive(TAG_FID, fid.to_be_bytes()));
        }
        if let Some(name) = &self.df_name {
            children.push(Tlv::primitive(TAG_DF_NAME, name.clone()));
        }
        if let Some(size) = self.size {
            let b = size.to_be_bytes();
            let skip = (size.leading_zeros() as usize / 8).min(3);
            children.push(Tlv::primitive(TAG_SIZE, &b[skip..]));
        }
        if let Some(sfi) = self.sfi {
            children.push(Tlv::primitive(TAG_SFI, [sfi << 3]));
        }
        if let Some(lcs) = self.life_cycle {
            children.push(Tlv::primitive(TAG_LCS, [u8::from(lcs)]));
        }
        children.extend(self.security.iter().cloned());
        children.extend(self.proprietary.iter().cloned());
        children.extend(self.other.iter().cloned());
        Tlv::constructed(TAG_FCP, children)
    }

    /// The encoded `62` template.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.to_tlv().encode()
    }
}

fn sort_other(fcp: &mut Fcp, child: &Tlv) {
    if SECURITY_TAGS.contains(&child.tag) {
        fcp.security.push(child.clone());
    } else if PROPRIETARY_TAGS.contains(&child.tag) {
        fcp.proprietary.push(child.clone());
    } else {
        fcp.other.push(child.clone());
    }
}

fn bad_len(child: &Tlv, expected: &str) -> Error {
    Error::Malformed(format!(
        "FCP: data object {} has {} bytes, expected {expected}",
        child.tag,
        child.value_len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhex(s: &str) -> Vec<u8> {
        hex::decode(s.replace(' ', "")).unwrap()
    }

    #[test]
    fn life_cycle_round_trips_every_byte() {
        for b in 0..=u8::MAX {
            assert_eq!(u8::from(LifeCycle::from(b)), b);
        }
        let named = [
            (LifeCycle::Creation, 0x01),
            (LifeCycle::Initialisation, 0x03),
            (LifeCycle::Activated, 0x05),
            (LifeCycle::Deactivated, 0x04),
            (LifeCycle::Terminated, 0x0C),
        ];
        for (lcs, b) in named {
            assert_eq!(u8::from(lcs), b);
            assert_eq!(LifeCycle::from(b), lcs);
        }
        assert!(LifeCycle::from(0x07).is_activated() && LifeCycle::Activated.is_activated());
        assert!(LifeCycle::from(0x06).is_deactivated() && !LifeCycle::Activated.is_deactivated());
        assert!(LifeCycle::from(0x0F).is_terminated() && !LifeCycle::Creation.is_terminated());
    }

    #[test]
    fn parses_a_card_ef_fcp() {
        // 62 { 82 01 01, 83 02 011E, 80 02 0400, 88 01 F0, 8A 01 05, 8C 03 03FF00, A5 03 800100 }
        let bytes = unhex("621B 820101 8302011E 80020400 8801F0 8A0105 8C0303FF00 A503 800100");
        let fcp = Fcp::parse(&bytes).unwrap();
        assert_eq!(fcp.descriptor, FileDescriptor::TRANSPARENT_EF);
        assert!(fcp.descriptor.is_transparent_ef() && fcp.descriptor.is_working_ef());
        assert_eq!(
            fcp.descriptor.ef_structure(),
            Some(EfStructure::Transparent)
        );
        assert_eq!(fcp.fid, Some(0x011E));
        assert_eq!(fcp.size, Some(1024));
        assert_eq!(fcp.sfi, Some(0x1E));
        assert_eq!(fcp.life_cycle, Some(LifeCycle::Activated));
        assert_eq!(
            fcp.security,
            [Tlv::primitive(Tag(0x8C), [0x03, 0xFF, 0x00])]
        );
        assert_eq!(fcp.proprietary.len(), 1);
        assert_eq!(fcp.to_bytes(), bytes);
    }

    #[test]
    fn df_with_name_round_trips_and_fci_is_accepted() {
        let aid = unhex("A0000002471001");
        let df = Fcp::df(0x3F00, Some(&aid)).with_life_cycle(LifeCycle::Initialisation);
        assert!(df.descriptor.is_df() && !df.descriptor.is_transparent_ef());
        assert_eq!(df.descriptor.ef_structure(), None);
        let bytes = df.to_bytes();
        assert_eq!(Fcp::parse(&bytes).unwrap(), df);
        let fci = Tlv::constructed(TAG_FCI, vec![Tlv::decode_one(&bytes).unwrap()]).encode();
        assert_eq!(Fcp::parse(&fci).unwrap(), df);
    }

    #[test]
    fn descriptor_with_record_info_and_sizes() {
        let mut fcp = Fcp::new(FileDescriptor(0x42));
        fcp.data_coding = Some(0x21);
        fcp.record_info = vec![0x00, 0x40, 0x0A];
        fcp.size = Some(0);
        let back = Fcp::parse(&fcp.to_bytes()).unwrap();
        assert_eq!(back, fcp);
        assert_eq!(
            back.descriptor.ef_structure(),
            Some(EfStructure::LinearFixed)
        );
        assert!(back.descriptor.is_shareable());
        for size in [0, 1, 0xFF, 0x100, 0xFFFF_FFFF] {
            let f = Fcp::transparent_ef(1, size);
            assert_eq!(Fcp::parse(&f.to_bytes()).unwrap().size, Some(size));
        }
        assert!(FileDescriptor::INTERNAL_TRANSPARENT_EF.is_internal_ef());
    }

    #[test]
    fn absurd_or_missing_objects_are_errors() {
        let cases = [
            ("6207 830211 1E 800105", "no descriptor"),
            ("620A 820101 80050000000001", "size of 5 bytes"),
            ("6206 820101 830101", "FID of 1 byte"),
            ("6206 820101 8800", "truncated template"),
            ("6206 820101 880107", "SFI low bits set"),
            ("6206 820101 8801F8", "SFI 31"),
            ("6207 820101 8A020505", "LCS of 2 bytes"),
            (
                "6216 820138 8411 000102030405060708090A0B0C0D0E0F10",
                "DF name of 17 bytes",
            ),
            ("6206 820101 820101", "duplicate descriptor"),
            ("6209 8207 01020304050607", "descriptor of 7 bytes"),
            ("6F03 840100", "FCI without FCP"),
            ("6403 820101", "wrong template"),
            ("6284FFFFFFFF 820101", "length beyond input"),
        ];
        for (hex, why) in cases {
            assert!(Fcp::parse(&unhex(hex)).is_err(), "{why}");
        }
        // An empty 88 (no SFI) is kept, not rejected.
        let f = Fcp::parse(&unhex("6205 820101 8800")).unwrap();
        assert_eq!((f.sfi, f.other.len()), (None, 1));
    }
}
