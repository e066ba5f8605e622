//! Identifiers that pass the applicant checks.

use issuance::applicant::ids::NationalCode;

/// A national code with a valid check digit made from `n`: distinct for distinct `n` below
/// 100 000, never one repeated digit.
pub fn national_code(n: u64) -> String {
    let nine = format!("{:09}", 100_000_000 + n * 7_919);
    let digits: [u8; 9] = std::array::from_fn(|i| nine.as_bytes()[i] - b'0');
    format!("{nine}{}", NationalCode::check_digit(&digits))
}
