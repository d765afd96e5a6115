//! UTC calendar dates and times to and from counts since the Unix epoch,
//! for every time AWS's two logs of object reads spell out:
//! - S3 server access logs: a record's `[06/Feb/2019:00:00:38 +0000]` and a
//!   log object's `2019-02-06-00-00-38` name, through [`CivilTime`];
//! - CloudTrail: `2026-12-03T10:00:00Z` inside files
//!   ([`parse_iso8601_micros`]), `20261203T1000Z` / `20261203T100000Z` in
//!   object keys ([`parse_compact_micros`]) and the `YYYY/MM/DD` folders of
//!   its key layout ([`day_path`]).
//!
//! Proleptic Gregorian; the day arithmetic is Howard Hinnant's
//! `days_from_civil` / `civil_from_days`. Times are seconds or microseconds
//! since the epoch as `u64`, like
//! [`AwsRead::time_micros`](crate::AwsRead::time_micros), so only years
//! 1970 to 9999 parse: every format here has four-digit years, and nothing
//! AWS logged predates the epoch.
//!
//! The two logs differ on one point, kept here as each log needs it: an
//! access log time with second 60 is refused, a CloudTrail time with second
//! 60 (a leap second) reads as the first second of the next minute.

pub(crate) const SECONDS_PER_DAY: u64 = 86_400;
pub(crate) const MICROS_PER_SECOND: u64 = 1_000_000;
pub(crate) const MICROS_PER_DAY: u64 = SECONDS_PER_DAY * MICROS_PER_SECOND;
/// 9999-12-31T23:59:59Z, the last second a four-digit year can name.
pub(crate) const MAX_SECONDS: u64 = 253_402_300_799;

/// Days from 0000-03-01 to 1970-01-01 in Hinnant's era arithmetic.
const EPOCH_SHIFT_DAYS: i64 = 719_468;
const DAYS_PER_ERA: i64 = 146_097;

/// A UTC date and time of day to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CivilTime {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl CivilTime {
    /// Seconds since the epoch, or `None` if a part is out of range (31 April,
    /// hour 24, a leap second, a year outside 1970..=9999).
    pub fn unix_seconds(self) -> Option<u64> {
        let valid = (1970..=9999).contains(&self.year)
            && (1..=12).contains(&self.month)
            && (1..=days_in_month(i64::from(self.year), self.month)).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60;
        if !valid {
            return None;
        }
        // Never negative: the year is 1970 or later.
        let days = u64::try_from(days_from_civil(i64::from(self.year), self.month, self.day)).ok()?;
        Some(
            days * SECONDS_PER_DAY + u64::from(self.hour) * 3600 + u64::from(self.minute) * 60 + u64::from(self.second),
        )
    }

    /// The calendar time of `seconds` since the epoch; times past 9999 are
    /// clamped to its last second.
    pub fn from_unix_seconds(seconds: u64) -> CivilTime {
        let seconds = seconds.min(MAX_SECONDS);
        // Both conversions hold after the clamp: under three million days,
        // in years 1970..=9999.
        let (year, month, day) = civil_from_days((seconds / SECONDS_PER_DAY).cast_signed());
        let of_day = seconds % SECONDS_PER_DAY;
        CivilTime {
            year: u32::try_from(year).unwrap_or(9999),
            month,
            day,
            hour: (of_day / 3600) as u32,
            minute: (of_day / 60 % 60) as u32,
            second: (of_day % 60) as u32,
        }
    }

    /// `YYYY-MM-DD-hh-mm-ss`, as in an access log object's name.
    pub fn dashed(self) -> String {
        let CivilTime { year, month, day, hour, minute, second } = self;
        format!("{year:04}-{month:02}-{day:02}-{hour:02}-{minute:02}-{second:02}")
    }
}

fn is_leap_year(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date. `month` is 1..=12,
/// `day` 1..=31; not validated here.
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    // Years start on 1 March, so that the leap day ends one.
    let shifted_year = if month <= 2 { year - 1 } else { year };
    let era = shifted_year.div_euclid(400);
    let year_of_era = shifted_year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - EPOCH_SHIFT_DAYS
}

/// The date of a day since 1970-01-01: `(year, month 1..=12, day 1..=31)`.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let shifted = days + EPOCH_SHIFT_DAYS;
    let era = shifted.div_euclid(DAYS_PER_ERA);
    let day_of_era = shifted - era * DAYS_PER_ERA;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    // Both are small by construction (1..=31, 1..=12).
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

/// The UTC day (days since 1970-01-01) a time in microseconds falls on.
pub(crate) fn day_of(micros: u64) -> i64 {
    i64::try_from(micros / MICROS_PER_DAY).unwrap_or(i64::MAX)
}

/// `YYYY/MM/DD`, the date folders of CloudTrail's key layout.
pub(crate) fn day_path(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}/{month:02}/{day:02}")
}

/// ASCII digits as a number; `None` for anything else or past `u32`.
pub(crate) fn digits(text: &[u8]) -> Option<u32> {
    if text.is_empty() {
        return None;
    }
    text.iter().try_fold(0_u32, |n, &b| {
        if b.is_ascii_digit() { n.checked_mul(10)?.checked_add(u32::from(b - b'0')) } else { None }
    })
}

/// Microseconds since the epoch of a CloudTrail time, whose second may be
/// 60: a leap second reads as the first second of the next minute.
fn micros_reading_leap_second(time: CivilTime) -> Option<u64> {
    let leap_second = time.second == 60;
    let time = CivilTime { second: if leap_second { 59 } else { time.second }, ..time };
    Some((time.unix_seconds()? + u64::from(leap_second)) * MICROS_PER_SECOND)
}

/// `2026-12-03T10:00:00Z`, optionally with a fraction of a second
/// (`2026-12-03T10:00:00.123Z`): the form of CloudTrail's `eventTime` and
/// its digests' times. Only UTC (`Z`) is accepted, which is all CloudTrail
/// writes.
pub(crate) fn parse_iso8601_micros(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let body = b.strip_suffix(b"Z")?;
    if body.len() < 19 || body[4] != b'-' || body[7] != b'-' || body[10] != b'T' || body[13] != b':' || body[16] != b':'
    {
        return None;
    }
    let micros = micros_reading_leap_second(CivilTime {
        year: digits(&body[0..4])?,
        month: digits(&body[5..7])?,
        day: digits(&body[8..10])?,
        hour: digits(&body[11..13])?,
        minute: digits(&body[14..16])?,
        second: digits(&body[17..19])?,
    })?;
    let fraction = match &body[19..] {
        [] => 0,
        [b'.', fraction @ ..] if !fraction.is_empty() && fraction.len() <= 9 => {
            // Microseconds: the first six digits, right-padded with zeros.
            let mut padded = [b'0'; 6];
            let used = fraction.len().min(6);
            padded[..used].copy_from_slice(&fraction[..used]);
            digits(fraction)?; // every digit must be one, even those past microseconds
            u64::from(digits(&padded)?)
        }
        _ => return None,
    };
    micros.checked_add(fraction)
}

/// `20261203T1000Z` (CloudTrail log file names) or `20261203T100000Z`
/// (digest file names).
pub(crate) fn parse_compact_micros(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let body = b.strip_suffix(b"Z")?;
    let second = match body.len() {
        13 => 0,
        15 => digits(&body[13..15])?,
        _ => return None,
    };
    if body[8] != b'T' {
        return None;
    }
    micros_reading_leap_second(CivilTime {
        year: digits(&body[0..4])?,
        month: digits(&body[4..6])?,
        day: digits(&body[6..8])?,
        hour: digits(&body[9..11])?,
        minute: digits(&body[11..13])?,
        second,
    })
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use proptest::prelude::*;

    use super::*;

    fn at(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> CivilTime {
        CivilTime { year, month, day, hour, minute, second }
    }

    #[test]
    fn known_civil_times() {
        assert_eq!(at(1970, 1, 1, 0, 0, 0).unix_seconds(), Some(0));
        assert_eq!(at(2000, 2, 29, 12, 0, 0).unix_seconds(), Some(951_825_600));
        assert_eq!(at(2025, 3, 14, 9, 26, 53).unix_seconds(), Some(1_741_944_413));
        assert_eq!(at(9999, 12, 31, 23, 59, 59).unix_seconds(), Some(MAX_SECONDS));
        assert_eq!(CivilTime::from_unix_seconds(u64::MAX), at(9999, 12, 31, 23, 59, 59));
        assert_eq!(at(2025, 3, 14, 9, 26, 53).dashed(), "2025-03-14-09-26-53");
    }

    #[test]
    fn out_of_range_parts_are_refused() {
        for bad in [
            at(1969, 12, 31, 23, 59, 59),
            at(10_000, 1, 1, 0, 0, 0),
            at(2025, 0, 1, 0, 0, 0),
            at(2025, 13, 1, 0, 0, 0),
            at(2025, 4, 31, 0, 0, 0),
            at(2025, 2, 29, 0, 0, 0),
            at(1900 + 200, 2, 29, 0, 0, 0),
            at(2025, 1, 0, 0, 0, 0),
            at(2025, 1, 1, 24, 0, 0),
            at(2025, 1, 1, 0, 60, 0),
            at(2025, 1, 1, 0, 0, 60),
        ] {
            assert_eq!(bad.unix_seconds(), None, "{bad:?}");
        }
        assert!(at(2024, 2, 29, 0, 0, 0).unix_seconds().is_some());
        assert!(at(2000, 2, 29, 0, 0, 0).unix_seconds().is_some());
    }

    proptest! {
        /// humantime is the oracle: same calendar, independent code.
        #[test]
        fn agrees_with_humantime(seconds in 0..=MAX_SECONDS) {
            let civil = CivilTime::from_unix_seconds(seconds);
            let rfc3339 = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(seconds)).to_string();
            let expected = rfc3339.trim_end_matches('Z').replace(['T', ':'], "-");
            prop_assert_eq!(civil.dashed(), expected);
            prop_assert_eq!(civil.unix_seconds(), Some(seconds));
        }
    }

    #[test]
    fn civil_dates_round_trip_over_six_centuries() {
        for days in -150_000..150_000 {
            let (year, month, day) = civil_from_days(days);
            assert!((1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day), "{days}");
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn known_days() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(civil_from_days(20_790), (2026, 12, 3));
        assert_eq!(day_path(20_790), "2026/12/03");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn iso8601_times() {
        let base = 20_790 * MICROS_PER_DAY + 10 * 3_600_000_000;
        assert_eq!(parse_iso8601_micros("2026-12-03T10:00:00Z"), Some(base));
        assert_eq!(parse_iso8601_micros("2026-12-03T10:00:00.5Z"), Some(base + 500_000));
        assert_eq!(parse_iso8601_micros("2026-12-03T10:00:00.123456789Z"), Some(base + 123_456));
        assert_eq!(parse_iso8601_micros("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_iso8601_micros("2016-12-31T23:59:60Z"), parse_iso8601_micros("2017-01-01T00:00:00Z"));
        assert_eq!(parse_iso8601_micros("9999-12-31T23:59:60Z"), Some((MAX_SECONDS + 1) * MICROS_PER_SECOND));
        for bad in [
            "",
            "2026-12-03T10:00:00",
            "2026-12-03T10:00:00+00:00",
            "2026-12-03 10:00:00Z",
            "2026-13-03T10:00:00Z",
            "2026-02-29T10:00:00Z",
            "2026-12-03T24:00:00Z",
            "2026-12-03T10:00:61Z",
            "2026-12-03T10:00:00.Z",
            "2026-12-03T10:00:00.12a4Z",
            "1969-12-31T23:59:59Z",
            "２026-12-03T10:00:00Z",
        ] {
            assert_eq!(parse_iso8601_micros(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn compact_times() {
        let base = 20_790 * MICROS_PER_DAY + 10 * 3_600_000_000 + 5 * 60_000_000;
        assert_eq!(parse_compact_micros("20261203T1005Z"), Some(base));
        assert_eq!(parse_compact_micros("20261203T100507Z"), Some(base + 7_000_000));
        for bad in ["20261203T1005", "20261203-1005Z", "20261203T10Z", "20261203T10050Z", "2026120xT1005Z"] {
            assert_eq!(parse_compact_micros(bad), None, "{bad:?}");
        }
    }
}
