//! UTC calendar arithmetic for CloudTrail's timestamps and key layouts:
//! days since the epoch to and from a proleptic Gregorian date, and the two
//! textual forms CloudTrail writes (`2026-12-03T10:00:00Z` inside files,
//! `20261203T1000Z` / `20261203T100000Z` in object keys).
//!
//! Times are microseconds since the Unix epoch as `u64`, like
//! [`AwsRead::time_micros`](crate::AwsRead::time_micros); a time before 1970
//! does not parse.

pub(crate) const MICROS_PER_DAY: u64 = 86_400_000_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`). `month` is 1..=12, `day` 1..=31; not validated here.
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (month, day) = (i64::from(month), i64::from(day));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let shifted_month = (month + 9) % 12; // March is 0, so the leap day ends the year
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The date of a day since 1970-01-01 (Howard Hinnant's `civil_from_days`):
/// `(year, month 1..=12, day 1..=31)`.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    // Both are small by construction (1..=31, 1..=12).
    (year, u32::try_from(month).unwrap_or(1), u32::try_from(day).unwrap_or(1))
}

/// The UTC day (days since 1970-01-01) a time falls on.
pub(crate) fn day_of(micros: u64) -> i64 {
    i64::try_from(micros / MICROS_PER_DAY).unwrap_or(i64::MAX)
}

/// `YYYY/MM/DD`, the date folders of CloudTrail's key layout.
pub(crate) fn day_path(days: i64) -> String {
    let (year, month, day) = civil_from_days(days);
    format!("{year:04}/{month:02}/{day:02}")
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// The value of a run of ASCII digits; `None` if any byte is not a digit.
fn digits(bytes: &[u8]) -> Option<u32> {
    if bytes.is_empty() || bytes.len() > 9 {
        return None;
    }
    bytes.iter().try_fold(0u32, |n, &b| b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0')))
}

/// Microseconds since the epoch of a validated date and time of day.
fn micros_of(year: u32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Option<u64> {
    let year = i64::from(year);
    let valid = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        // 60 is a leap second; it reads as the first second of the next minute.
        && second <= 60;
    if !valid {
        return None;
    }
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    let seconds = u64::from(hour * 3600 + minute * 60 + second);
    days.checked_mul(MICROS_PER_DAY)?.checked_add(seconds * 1_000_000)
}

/// `2026-12-03T10:00:00Z`, optionally with a fraction of a second
/// (`2026-12-03T10:00:00.123Z`): the form of `eventTime` and the digest's
/// times. Only UTC (`Z`) is accepted, which is all CloudTrail writes.
pub(crate) fn parse_iso8601_micros(text: &str) -> Option<u64> {
    let b = text.as_bytes();
    let body = b.strip_suffix(b"Z")?;
    if body.len() < 19 || body[4] != b'-' || body[7] != b'-' || body[10] != b'T' || body[13] != b':' || body[16] != b':'
    {
        return None;
    }
    let micros = micros_of(
        digits(&body[0..4])?,
        digits(&body[5..7])?,
        digits(&body[8..10])?,
        digits(&body[11..13])?,
        digits(&body[14..16])?,
        digits(&body[17..19])?,
    )?;
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

/// `20261203T1000Z` (log file names) or `20261203T100000Z` (digest file
/// names).
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
    micros_of(
        digits(&body[0..4])?,
        digits(&body[4..6])?,
        digits(&body[6..8])?,
        digits(&body[9..11])?,
        digits(&body[11..13])?,
        second,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip_over_six_centuries() {
        for days in -150_000..150_000 {
            let (year, month, day) = civil_from_days(days);
            assert!((1..=12).contains(&month) && (1..=days_in_month(year, month)).contains(&day), "{days}");
            assert_eq!(days_from_civil(year, month, day), days);
        }
    }

    #[test]
    fn known_dates() {
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
        for bad in [
            "",
            "2026-12-03T10:00:00",
            "2026-12-03T10:00:00+00:00",
            "2026-12-03 10:00:00Z",
            "2026-13-03T10:00:00Z",
            "2026-02-29T10:00:00Z",
            "2026-12-03T24:00:00Z",
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
