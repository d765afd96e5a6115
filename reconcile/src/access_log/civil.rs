//! UTC calendar times to and from seconds since the Unix epoch, for the two
//! times an access log spells out: a record's `[06/Feb/2019:00:00:38 +0000]`
//! and a log object's `2019-02-06-00-00-38` name.
//!
//! Proleptic Gregorian, years 1970 to 9999 only: both formats have
//! four-digit years, and nothing S3 logged predates the epoch. The day
//! arithmetic is Howard Hinnant's `days_from_civil` / `civil_from_days`.

pub(super) const SECONDS_PER_DAY: u64 = 86_400;
pub(super) const MICROS_PER_SECOND: u64 = 1_000_000;
/// 9999-12-31T23:59:59Z, the last second a four-digit year can name.
pub(super) const MAX_SECONDS: u64 = 253_402_300_799;

/// Days from 0000-03-01 to 1970-01-01 in Hinnant's era arithmetic.
const EPOCH_SHIFT_DAYS: u64 = 719_468;
const DAYS_PER_ERA: u64 = 146_097;

/// A UTC date and time of day to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct CivilTime {
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
            && (1..=days_in_month(self.year, self.month)).contains(&self.day)
            && self.hour < 24
            && self.minute < 60
            && self.second < 60;
        valid.then(|| {
            days_from_civil(self.year, self.month, self.day) * SECONDS_PER_DAY
                + u64::from(self.hour) * 3600
                + u64::from(self.minute) * 60
                + u64::from(self.second)
        })
    }

    /// The calendar time of `seconds` since the epoch; times past 9999 are
    /// clamped to its last second.
    pub fn from_unix_seconds(seconds: u64) -> CivilTime {
        let seconds = seconds.min(MAX_SECONDS);
        let (year, month, day) = civil_from_days(seconds / SECONDS_PER_DAY);
        let of_day = seconds % SECONDS_PER_DAY;
        CivilTime {
            year,
            month,
            day,
            hour: (of_day / 3600) as u32,
            minute: (of_day / 60 % 60) as u32,
            second: (of_day % 60) as u32,
        }
    }

    /// `YYYY-MM-DD-hh-mm-ss`, as in a log object's name.
    pub fn dashed(self) -> String {
        let CivilTime { year, month, day, hour, minute, second } = self;
        format!("{year:04}-{month:02}-{day:02}-{hour:02}-{minute:02}-{second:02}")
    }
}

fn is_leap_year(year: u32) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

pub(super) fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a valid date in 1970..=9999.
fn days_from_civil(year: u32, month: u32, day: u32) -> u64 {
    // Years start on 1 March, so that the leap day ends one.
    let shifted_year = u64::from(if month <= 2 { year - 1 } else { year });
    let era = shifted_year / 400;
    let year_of_era = shifted_year % 400;
    let month_from_march = u64::from((month + 9) % 12);
    let day_of_year = (153 * month_from_march + 2) / 5 + u64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * DAYS_PER_ERA + day_of_era - EPOCH_SHIFT_DAYS
}

/// Year, month and day of `days` since 1970-01-01.
fn civil_from_days(days: u64) -> (u32, u32, u32) {
    let shifted = days + EPOCH_SHIFT_DAYS;
    let era = shifted / DAYS_PER_ERA;
    let day_of_era = shifted % DAYS_PER_ERA;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 };
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year as u32, month as u32, day as u32)
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
    fn known_dates() {
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
}
