//! EF.COM (ICAO 9303-10 §4.6.1): tag `60` { `5F01` LDS version, `5F36` Unicode version, `5C`
//! tag list of the data groups present }.

use apdu::tlv::{Tag, Tlv};

use super::{decode_outer, dg_number, dg_tag, parse_tag_list, required, tag_list, LdsError};

/// LDS version written: 1.8 as ICAO codes it ("aabb": version aa, update level bb).
pub const LDS_VERSION: &str = "0108";

/// Unicode version written: 4.0.0 ("aabbcc").
pub const UNICODE_VERSION: &str = "040000";

/// EF.COM's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Com {
    /// LDS version, four ASCII digits.
    pub lds_version: String,
    /// Unicode version, six ASCII digits.
    pub unicode_version: String,
    /// Data group numbers present, in the order listed.
    pub data_groups: Vec<u8>,
}

/// Builds EF.COM listing `data_groups` (numbers 1..=16).
pub fn build_com(data_groups: &[u8]) -> Result<Vec<u8>, LdsError> {
    let mut tags = Vec::with_capacity(data_groups.len());
    for &dg in data_groups {
        let tag = dg_tag(dg).ok_or_else(|| LdsError::field("data group", format!("DG{dg}")))?;
        tags.push(tag as u32);
    }
    Ok(Tlv::constructed(
        Tag(0x60),
        vec![
            Tlv::primitive(Tag(0x5F01), LDS_VERSION.as_bytes()),
            Tlv::primitive(Tag(0x5F36), UNICODE_VERSION.as_bytes()),
            Tlv::primitive(Tag(0x5C), tag_list(&tags)),
        ],
    )
    .encode())
}

/// Parses and validates EF.COM.
pub fn parse_com(bytes: &[u8]) -> Result<Com, LdsError> {
    const WHAT: &str = "EF.COM";
    let com = decode_outer(bytes, 0x60, WHAT)?;
    let digits = |tag: u32, len: usize| -> Result<String, LdsError> {
        let v = required(&com, tag, WHAT)?;
        if v.len() != len || !v.iter().all(u8::is_ascii_digit) {
            return Err(LdsError::malformed(
                WHAT,
                format!("{tag:X} is not {len} ASCII digits"),
            ));
        }
        Ok(String::from_utf8_lossy(v).into_owned())
    };
    let lds_version = digits(0x5F01, 4)?;
    let unicode_version = digits(0x5F36, 6)?;
    let mut data_groups = Vec::new();
    for tag in parse_tag_list(required(&com, 0x5C, WHAT)?, WHAT)? {
        let dg = u8::try_from(tag)
            .ok()
            .and_then(dg_number)
            .ok_or_else(|| LdsError::malformed(WHAT, format!("{tag:X} is not a data group")))?;
        data_groups.push(dg);
    }
    Ok(Com {
        lds_version,
        unicode_version,
        data_groups,
    })
}
