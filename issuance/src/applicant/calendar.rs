//! Solar Hijri (Iranian) dates, validated, and their conversion to and from Gregorian dates.
//!
//! Leap years follow the 33-year arithmetic rule: year `y` is leap when `y mod 33` is one of
//! 1, 5, 9, 13, 17, 22, 26, 30. It agrees with the official (astronomical) calendar over the
//! birth dates of living applicants (e.g. 1370, 1399 and 1403 are leap, 1402 is not); years
//! outside [`MIN_YEAR`]..=[`MAX_YEAR`] are rejected rather than guessed. Months 1-6 have 31 days, 7-11 have 30, Esfand (12) has 29 or
//! 30 in a leap year.
//!
//! Conversion counts days: both calendars map to a day number (days since 1970-01-01), anchored
//! on 1 Farvardin 1403 = 2024-03-20.

use std::fmt;

/// Earliest Solar Hijri year accepted (1821 CE): older than any living applicant.
pub const MIN_YEAR: i32 = 1200;
/// Latest Solar Hijri year accepted (2121 CE).
pub const MAX_YEAR: i32 = 1500;

/// Residues of `year mod 33` that are leap years in the 33-year rule.
const LEAP_RESIDUES: [i32; 8] = [1, 5, 9, 13, 17, 22, 26, 30];

/// Day number (days since 1970-01-01) of 1 Farvardin 1403 (2024-03-20).
const ANCHOR_DAY: i64 = 19_802;
/// The Solar Hijri year of [`ANCHOR_DAY`].
const ANCHOR_YEAR: i32 = 1403;

/// Why a date was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// The text is not `YYYY-MM-DD` with ASCII digits.
    #[error("{0:?} is not a date of the form YYYY-MM-DD")]
    Syntax(String),
    /// The year is outside the supported range.
    #[error("year {0} is outside {MIN_YEAR}..={MAX_YEAR}")]
    YearOutOfRange(i32),
    /// The month is not 1-12.
    #[error("month {0} does not exist (1-12)")]
    Month(u8),
    /// The day does not exist in that month of that year.
    #[error("day {day} does not exist in month {month} of {year} ({len} days)")]
    Day {
        /// The year, to say which Esfand was meant.
        year: i32,
        /// The month that was given.
        month: u8,
        /// The day that was given.
        day: u8,
        /// How many days that month has in that year.
        len: u8,
    },
}

/// True when `year` is a Solar Hijri leap year (Esfand has 30 days).
pub fn is_leap(year: i32) -> bool {
    LEAP_RESIDUES.contains(&year.rem_euclid(33))
}

/// Number of days of `month` (1-12) in Solar Hijri `year`; 0 for a month that does not exist.
pub fn month_len(year: i32, month: u8) -> u8 {
    match month {
        1..=6 => 31,
        7..=11 => 30,
        12 if is_leap(year) => 30,
        12 => 29,
        _ => 0,
    }
}

/// Splits `YYYY-MM-DD` into numbers, checking only the shape.
fn split_ymd(text: &str) -> Result<(i32, u8, u8), DateError> {
    let syntax = || DateError::Syntax(text.to_owned());
    let b = text.as_bytes();
    let shape_ok = b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit());
    if !shape_ok {
        return Err(syntax());
    }
    let year = text[0..4].parse().map_err(|_| syntax())?;
    let month = text[5..7].parse().map_err(|_| syntax())?;
    let day = text[8..10].parse().map_err(|_| syntax())?;
    Ok((year, month, day))
}

/// A valid Solar Hijri calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SolarDate {
    /// Year (SH), within [`MIN_YEAR`]..=[`MAX_YEAR`].
    year: i32,
    /// Month 1 (Farvardin) to 12 (Esfand).
    month: u8,
    /// Day of the month, 1 to [`month_len`].
    day: u8,
}

impl SolarDate {
    /// Validates a date.
    pub fn new(year: i32, month: u8, day: u8) -> Result<SolarDate, DateError> {
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(DateError::YearOutOfRange(year));
        }
        if !(1..=12).contains(&month) {
            return Err(DateError::Month(month));
        }
        let len = month_len(year, month);
        if day == 0 || day > len {
            return Err(DateError::Day {
                year,
                month,
                day,
                len,
            });
        }
        Ok(SolarDate { year, month, day })
    }

    /// Parses and validates `YYYY-MM-DD` (e.g. `1370-01-01`).
    pub fn parse(text: &str) -> Result<SolarDate, DateError> {
        let (y, m, d) = split_ymd(text)?;
        SolarDate::new(y, m, d)
    }

    /// The year (SH).
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The month, 1 (Farvardin) to 12 (Esfand).
    pub fn month(&self) -> u8 {
        self.month
    }

    /// The day of the month.
    pub fn day(&self) -> u8 {
        self.day
    }

    /// Days since 1970-01-01.
    pub fn day_number(&self) -> i64 {
        let days_in_months: i64 = (1..self.month)
            .map(|m| i64::from(month_len(self.year, m)))
            .sum();
        new_year_day(self.year) + days_in_months + i64::from(self.day) - 1
    }

    /// The date with day number `n` (days since 1970-01-01), if its year is supported.
    pub fn from_day_number(n: i64) -> Result<SolarDate, DateError> {
        // 365.2424 days per year; then correct by at most a year either way.
        let mut year = ANCHOR_YEAR + ((n - ANCHOR_DAY) as f64 / 365.2424).floor() as i32;
        while new_year_day(year + 1) <= n {
            year += 1;
        }
        while new_year_day(year) > n {
            year -= 1;
        }
        if !(MIN_YEAR..=MAX_YEAR).contains(&year) {
            return Err(DateError::YearOutOfRange(year));
        }
        let mut rest = n - new_year_day(year);
        let mut month = 1u8;
        while rest >= i64::from(month_len(year, month)) {
            rest -= i64::from(month_len(year, month));
            month += 1;
        }
        SolarDate::new(year, month, rest as u8 + 1)
    }

    /// The same day in the Gregorian calendar.
    pub fn to_gregorian(&self) -> GregorianDate {
        GregorianDate::from_day_number(self.day_number())
    }

    /// The same day as a Solar Hijri date.
    pub fn from_gregorian(date: GregorianDate) -> Result<SolarDate, DateError> {
        SolarDate::from_day_number(date.day_number())
    }

    /// Completed years between `self` (a birth date) and `on`; negative when `on` is earlier.
    pub fn age_on(&self, on: SolarDate) -> i32 {
        let before_birthday = (on.month, on.day) < (self.month, self.day);
        on.year - self.year - i32::from(before_birthday)
    }
}

impl fmt::Display for SolarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Number of leap years in 1..year under the 33-year rule.
fn leap_years_before(year: i32) -> i64 {
    let y = i64::from(year) - 1;
    let cycles = y.div_euclid(33);
    let rest = y.rem_euclid(33) as i32;
    cycles * 8 + LEAP_RESIDUES.iter().filter(|&&r| r <= rest).count() as i64
}

/// Day number of 1 Farvardin of `year`.
fn new_year_day(year: i32) -> i64 {
    let days = |y: i32| 365 * i64::from(y - 1) + leap_years_before(y);
    ANCHOR_DAY + days(year) - days(ANCHOR_YEAR)
}

/// A proleptic Gregorian calendar date, as data groups (DG1, DG11) and the journal write it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GregorianDate {
    /// Year (CE).
    pub year: i32,
    /// Month 1-12.
    pub month: u8,
    /// Day of the month.
    pub day: u8,
}

impl GregorianDate {
    /// Validates a Gregorian date.
    pub fn new(year: i32, month: u8, day: u8) -> Result<GregorianDate, DateError> {
        if !(1..=12).contains(&month) {
            return Err(DateError::Month(month));
        }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let len = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        if day == 0 || day > len {
            return Err(DateError::Day {
                year,
                month,
                day,
                len,
            });
        }
        Ok(GregorianDate { year, month, day })
    }

    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<GregorianDate, DateError> {
        let (y, m, d) = split_ymd(text)?;
        GregorianDate::new(y, m, d)
    }

    /// Today in UTC, from the system clock.
    pub fn today_utc() -> GregorianDate {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        GregorianDate::from_day_number((secs / 86_400) as i64)
    }

    /// Days since 1970-01-01 (H. Hinnant's `days_from_civil`).
    pub fn day_number(&self) -> i64 {
        let y = i64::from(self.year) - i64::from(self.month <= 2);
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = i64::from(self.month);
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + i64::from(self.day) - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date of day number `n` (H. Hinnant's `civil_from_days`).
    pub fn from_day_number(n: i64) -> GregorianDate {
        let z = n + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        GregorianDate { year, month, day }
    }
}

impl fmt::Display for GregorianDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchor_is_2024_03_20() {
        assert_eq!(
            GregorianDate::new(2024, 3, 20).unwrap().day_number(),
            ANCHOR_DAY
        );
        assert_eq!(GregorianDate::from_day_number(0).to_string(), "1970-01-01");
    }

    #[test]
    fn every_day_round_trips() {
        let start = SolarDate::new(1300, 1, 1).unwrap().day_number();
        let end = SolarDate::new(1450, 12, 29).unwrap().day_number();
        for n in start..=end {
            let d = SolarDate::from_day_number(n).unwrap();
            assert_eq!(d.day_number(), n);
            assert_eq!(GregorianDate::from_day_number(n).day_number(), n);
        }
    }
}
