//! Validated identifiers: the national code (with its check digit) and the postal code.

use std::fmt;

/// Why a national code or postal code was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not exactly 10 ASCII digits.
    #[error("{0:?} is not 10 digits")]
    Digits(String),
    /// All ten digits are the same (e.g. 1111111111), never issued.
    #[error("{0:?} is one repeated digit")]
    Repeated(String),
    /// The tenth digit is not the check digit of the first nine.
    #[error("{code:?} has check digit {found}, expected {expected}")]
    CheckDigit {
        /// The code that was given.
        code: String,
        /// Its last digit.
        found: u8,
        /// The check digit its first nine digits call for.
        expected: u8,
    },
}

/// The ten digits of `text`, or an error when it is not exactly 10 ASCII digits.
fn ten_digits(text: &str) -> Result<[u8; 10], IdError> {
    let b = text.as_bytes();
    if b.len() != 10 || !b.iter().all(u8::is_ascii_digit) {
        return Err(IdError::Digits(text.to_owned()));
    }
    let mut d = [0u8; 10];
    for (slot, c) in d.iter_mut().zip(b) {
        *slot = c - b'0';
    }
    Ok(d)
}

/// An Iranian national code (کد ملی) whose check digit is right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NationalCode([u8; 10]);

impl NationalCode {
    /// The check digit for nine digits: weights 10..2, s = Σ d·w mod 11, s if s < 2 else 11 - s.
    pub fn check_digit(first_nine: &[u8; 9]) -> u8 {
        let s: u32 = first_nine
            .iter()
            .zip((2..=10u32).rev())
            .map(|(&d, w)| u32::from(d) * w)
            .sum::<u32>()
            % 11;
        if s < 2 {
            s as u8
        } else {
            (11 - s) as u8
        }
    }

    /// Validates a national code: 10 digits, not one repeated digit, right check digit.
    pub fn parse(text: &str) -> Result<NationalCode, IdError> {
        let d = ten_digits(text)?;
        if d.iter().all(|&x| x == d[0]) {
            return Err(IdError::Repeated(text.to_owned()));
        }
        let mut nine = [0u8; 9];
        nine.copy_from_slice(&d[..9]);
        let expected = NationalCode::check_digit(&nine);
        if d[9] != expected {
            return Err(IdError::CheckDigit {
                code: text.to_owned(),
                found: d[9],
                expected,
            });
        }
        Ok(NationalCode(d))
    }

    /// The ten digits.
    pub fn digits(&self) -> [u8; 10] {
        self.0
    }
}

impl fmt::Display for NationalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|d| write!(f, "{d}"))
    }
}

/// An Iranian postal code: 10 digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PostalCode([u8; 10]);

impl PostalCode {
    /// Validates a postal code: exactly 10 ASCII digits, not one repeated digit.
    pub fn parse(text: &str) -> Result<PostalCode, IdError> {
        let d = ten_digits(text)?;
        if d.iter().all(|&x| x == d[0]) {
            return Err(IdError::Repeated(text.to_owned()));
        }
        Ok(PostalCode(d))
    }
}

impl fmt::Display for PostalCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|d| write!(f, "{d}"))
    }
}
