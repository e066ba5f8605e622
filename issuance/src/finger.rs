//! [`Finger`]: the ten finger positions, as applicant records, profiles and the card's
//! templates name them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A finger, by the names records use; [`Finger::iso_position`] gives the ISO/IEC 19794-2 code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finger {
    /// ISO position 1.
    RightThumb,
    /// ISO position 2.
    RightIndex,
    /// ISO position 3.
    RightMiddle,
    /// ISO position 4.
    RightRing,
    /// ISO position 5.
    RightLittle,
    /// ISO position 6.
    LeftThumb,
    /// ISO position 7.
    LeftIndex,
    /// ISO position 8.
    LeftMiddle,
    /// ISO position 9.
    LeftRing,
    /// ISO position 10.
    LeftLittle,
}

impl Finger {
    /// All ten fingers in ISO order.
    pub const ALL: [Finger; 10] = [
        Finger::RightThumb,
        Finger::RightIndex,
        Finger::RightMiddle,
        Finger::RightRing,
        Finger::RightLittle,
        Finger::LeftThumb,
        Finger::LeftIndex,
        Finger::LeftMiddle,
        Finger::LeftRing,
        Finger::LeftLittle,
    ];

    /// ISO/IEC 19794-2 finger position: right thumb 1 .. right little 5, left thumb 6 .. 10.
    pub fn iso_position(self) -> u8 {
        Finger::ALL
            .iter()
            .position(|&f| f == self)
            .map_or(0, |i| i as u8 + 1)
    }

    /// The finger with ISO position `code` (1-10).
    pub fn from_iso_position(code: u8) -> Option<Finger> {
        Finger::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// The record's name, e.g. `right_index`.
    pub fn name(self) -> &'static str {
        match self {
            Finger::RightThumb => "right_thumb",
            Finger::RightIndex => "right_index",
            Finger::RightMiddle => "right_middle",
            Finger::RightRing => "right_ring",
            Finger::RightLittle => "right_little",
            Finger::LeftThumb => "left_thumb",
            Finger::LeftIndex => "left_index",
            Finger::LeftMiddle => "left_middle",
            Finger::LeftRing => "left_ring",
            Finger::LeftLittle => "left_little",
        }
    }
}

impl fmt::Display for Finger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
