//! Request times as V4 signs them (`YYYYMMDDTHHMMSSZ`, UTC) and as S3
//! clients send them in `Date` (HTTP dates), converted to and from Unix
//! seconds without a calendar library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (negative before it, which no real clock is).
#[must_use]
pub fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// `YYYYMMDDTHHMMSSZ` (ISO 8601 basic, UTC), the V4 timestamp format.
#[must_use]
pub fn format_amz_date(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Parses `YYYYMMDDTHHMMSSZ` into Unix seconds.
#[must_use]
pub fn parse_amz_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(digits.iter().fold(0_i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    to_unix(num(0..4)?, num(4..6)?, num(6..8)?, num(9..11)?, num(11..13)?, num(13..15)?)
}

/// Parses an HTTP date as S3 clients send it: `Tue, 27 Mar 2007 19:36:42 GMT`
/// (IMF-fixdate), also with `+0000` or `UTC` for the zone, the weekday
/// optional. Other zones and the obsolete RFC 850/asctime forms are refused.
#[must_use]
pub fn parse_http_date(s: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let s = s.trim();
    let s = match s.split_once(',') {
        Some((_weekday, rest)) => rest.trim_start(),
        None => s,
    };
    let mut fields = s.split_ascii_whitespace();
    let day: i64 = fields.next()?.parse().ok()?;
    let month = fields.next()?;
    let year: i64 = fields.next()?.parse().ok()?;
    let time = fields.next()?;
    let zone = fields.next()?;
    if fields.next().is_some() || !matches!(zone, "GMT" | "UTC" | "+0000" | "Z") {
        return None;
    }
    let month = (1..).zip(MONTHS).find(|(_, m)| m.eq_ignore_ascii_case(month))?.0;
    let mut hms = time.split(':');
    let mut part = || -> Option<i64> {
        let p = hms.next()?;
        if p.len() == 2 { p.parse().ok() } else { None }
    };
    let (h, mi, sec) = (part()?, part()?, part()?);
    if hms.next().is_some() {
        return None;
    }
    to_unix(year, month, day, h, mi, sec)
}

fn to_unix(year: i64, month: i64, day: i64, hour: i64, minute: i64, second: i64) -> Option<i64> {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    let max_day = *month_days.get(usize::try_from(month - 1).ok()?)?;
    let valid = (1970..=9999).contains(&year)
        && (1..=max_day).contains(&day)
        && (0..24).contains(&hour)
        && (0..60).contains(&minute)
        && (0..61).contains(&second);
    valid.then(|| days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates_round_trip() {
        let t = parse_amz_date("20130524T000000Z").unwrap();
        assert_eq!(t, 1_369_353_600);
        assert_eq!(format_amz_date(t), "20130524T000000Z");
        assert_eq!(format_amz_date(0), "19700101T000000Z");
        let leap = parse_amz_date("20240229T235959Z").unwrap();
        assert_eq!(format_amz_date(leap), "20240229T235959Z");
        for bad in ["20130524T000000", "2013052AT000000Z", "20130230T000000Z", "20131324T000000Z", "20130524T250000Z"] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn http_dates_as_clients_send_them() {
        let t = parse_http_date("Tue, 27 Mar 2007 19:36:42 +0000").unwrap();
        assert_eq!(format_amz_date(t), "20070327T193642Z");
        assert_eq!(parse_http_date("Tue, 27 Mar 2007 19:36:42 GMT"), Some(t));
        assert_eq!(parse_http_date("27 Mar 2007 19:36:42 UTC"), Some(t));
        assert_eq!(parse_http_date("Tue, 27 Mar 2007 19:36:42 +0100"), None);
        assert_eq!(parse_http_date("Tue, 27 Foo 2007 19:36:42 GMT"), None);
        assert_eq!(parse_http_date("Tue, 27 Mar 2007 19:36 GMT"), None);
    }
}
