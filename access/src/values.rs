//! Reading typed values out of strings, for policy condition values (where a
//! failure is a policy error) and request context values (where a failure
//! means "does not match"): numbers, dates, booleans and IP addresses.

use std::net::IpAddr;

/// A decimal number as IAM's numeric operators take it: an optional sign,
/// digits with an optional fraction and exponent. Never NaN or infinite.
pub(crate) fn number(text: &str) -> Option<f64> {
    let body = text.strip_prefix(['-', '+']).unwrap_or(text);
    let ok_chars = body.bytes().all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'-' | b'+'));
    if !ok_chars || !body.bytes().next().is_some_and(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// `true` or `false`, any case.
pub(crate) fn boolean(text: &str) -> Option<bool> {
    if text.eq_ignore_ascii_case("true") {
        Some(true)
    } else if text.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// A date as milliseconds since the Unix epoch: ISO 8601
/// (`2026-12-03`, `2026-12-03T11:40Z`, `2026-12-03T11:40:55Z`,
/// `2026-12-03T11:40:55.123+01:00`; no zone means UTC) or epoch seconds
/// (`1796298055`, optionally with a fraction).
pub(crate) fn date(text: &str) -> Option<i64> {
    let t = text.trim();
    if !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && t.bytes().filter(|b| *b == b'.').count() <= 1
    {
        let seconds: f64 = t.parse().ok()?;
        let millis = seconds * 1000.0;
        return (millis.is_finite() && millis < 9.0e15).then(|| millis.round() as i64);
    }
    iso8601(t)
}

fn digits(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok()).flatten()
}

fn iso8601(text: &str) -> Option<i64> {
    let (day_part, time_part) = match text.split_once(['T', 't']) {
        Some((day, rest)) => (day, Some(rest)),
        None => (text, None),
    };
    let mut ymd = day_part.split('-');
    let (year, month, day) = (ymd.next()?, ymd.next()?, ymd.next()?);
    if ymd.next().is_some() || year.len() != 4 || month.len() != 2 || day.len() != 2 {
        return None;
    }
    let (year, month, day) = (digits(year)?, digits(month)?, digits(day)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut millis = days_from_civil(year, month, day) * 86_400_000;
    let Some(time) = time_part else { return Some(millis) };
    // Split off the zone: Z, +hh:mm, -hh:mm, +hhmm, +hh.
    let (clock, offset_minutes) = if let Some(clock) = time.strip_suffix(['Z', 'z']) {
        (clock, 0)
    } else if let Some(pos) = time.rfind(['+', '-']) {
        let (clock, zone) = time.split_at(pos);
        let sign = if zone.starts_with('-') { -1 } else { 1 };
        let zone = zone[1..].replace(':', "");
        let (hh, mm) = match zone.len() {
            2 => (digits(&zone)?, 0),
            4 => (digits(&zone[..2])?, digits(&zone[2..])?),
            _ => return None,
        };
        if hh > 23 || mm > 59 {
            return None;
        }
        (clock, sign * (hh * 60 + mm))
    } else {
        (time, 0)
    };
    let (hms, fraction) = match clock.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (clock, None),
    };
    let mut parts = hms.split(':');
    let hour = digits(parts.next().filter(|p| p.len() == 2)?)?;
    let minute = digits(parts.next().filter(|p| p.len() == 2)?)?;
    let second = match parts.next() {
        Some(s) if s.len() == 2 => digits(s)?,
        None if fraction.is_none() => 0,
        Some(_) | None => return None,
    };
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let frac_millis = match fraction {
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<3}");
            digits(&padded[..3])?
        }
        Some(_) => return None,
        None => 0,
    };
    millis += ((hour * 60 + minute - offset_minutes) * 60 + second) * 1000 + frac_millis;
    Some(millis)
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// An IPv4 or IPv6 network: the address with host bits cleared, and the prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cidr {
    v6: bool,
    network: u128,
    prefix: u8,
}

impl Cidr {
    /// `10.0.0.0/8`, `2001:db8::/32`, or a plain address (a /32 or /128).
    pub(crate) fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, len)) => (addr, Some(len)),
            None => (text, None),
        };
        let (v6, bits, max) = match addr.parse::<IpAddr>().ok()? {
            IpAddr::V4(v4) => (false, u128::from(u32::from(v4)), 32u8),
            IpAddr::V6(v6) => (true, u128::from(v6), 128u8),
        };
        let prefix = match prefix {
            Some(len) if !len.is_empty() && len.len() <= 3 && len.bytes().all(|b| b.is_ascii_digit()) => {
                len.parse::<u8>().ok().filter(|p| *p <= max)?
            }
            Some(_) => return None,
            None => max,
        };
        Some(Cidr { v6, network: bits & mask(prefix, max), prefix })
    }

    /// Whether an address from the request falls in the network; an
    /// IPv4-mapped IPv6 address (`::ffff:10.1.2.3`) counts as its IPv4 one.
    pub(crate) fn contains(&self, addr: &str) -> bool {
        let Ok(ip) = addr.trim().parse::<IpAddr>() else { return false };
        let (v6, bits, max) = match ip {
            IpAddr::V4(v4) => (false, u128::from(u32::from(v4)), 32),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => (false, u128::from(u32::from(v4)), 32),
                None => (true, u128::from(v6), 128),
            },
        };
        v6 == self.v6 && bits & mask(self.prefix, max) == self.network
    }
}

fn mask(prefix: u8, max: u8) -> u128 {
    let all = if max == 32 { u128::from(u32::MAX) } else { u128::MAX };
    if prefix == 0 { 0 } else { all & (all << (max - prefix)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number("10"), Some(10.0));
        assert_eq!(number("-1.5e2"), Some(-150.0));
        for bad in ["", "abc", "inf", "NaN", "infinity", "0x10", "1e999", " 1", "-"] {
            assert_eq!(number(bad), None, "{bad}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(date("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(date("2026-12-03T11:40:55Z"), Some(1_796_298_055_000));
        assert_eq!(date("1796298055"), Some(1_796_298_055_000));
        assert_eq!(date("2026-12-03T12:40:55+01:00"), date("2026-12-03T11:40:55Z"));
        assert_eq!(date("2026-12-03T11:40:55.5Z"), Some(1_796_298_055_500));
        assert_eq!(date("2026-12-03"), Some(1_796_256_000_000));
        assert_eq!(date("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        for bad in ["yesterday", "2026-13-01", "2025-02-29", "2026-12-03T25:00:00Z", "2026-1-3", "", "12:00"] {
            assert_eq!(date(bad), None, "{bad}");
        }
    }

    #[test]
    fn cidrs() {
        let net = Cidr::parse("203.0.113.0/24").unwrap();
        assert!(net.contains("203.0.113.7"));
        assert!(net.contains("::ffff:203.0.113.7"));
        assert!(!net.contains("203.0.114.7"));
        assert!(Cidr::parse("203.0.113.9/24").unwrap().contains("203.0.113.200"));
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("1.2.3.4"));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains("2001:db8::1"));
        let v6 = Cidr::parse("2001:DB8:1234:5678::/64").unwrap();
        assert!(v6.contains("2001:db8:1234:5678:ffff::1"));
        assert!(!v6.contains("2001:db8:1234:5679::1"));
        assert!(Cidr::parse("10.0.0.1").unwrap().contains("10.0.0.1"));
        assert!(!Cidr::parse("10.0.0.1").unwrap().contains("10.0.0.2"));
        for bad in ["10.0.0.999/8", "10.0.0.0/33", "10.0.0.0/", "::/129", "x", "10.0.0.0/-1", "10.0.0.0/ 8"] {
            assert_eq!(Cidr::parse(bad), None, "{bad}");
        }
    }
}
