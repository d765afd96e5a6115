//! Client authentication: who sent this request, proven by their own signature.
//!
//! The proxy issues access keys to its principals; clients sign requests with
//! them exactly as they would sign for S3. This module checks those
//! signatures and nothing else, with no I/O, so it can be tested and fuzzed
//! on its own:
//!
//! - [`sigv4`]: AWS Signature Version 4 in the `Authorization` header and in
//!   presigned URLs, and the entry point [`authenticate`] for every scheme;
//! - [`sigv2`]: the legacy S3 signature (boto3 still presigns with it);
//! - [`chunked`]: the `aws-chunked` body framing, decoded incrementally with
//!   every chunk signature verified before its data is released;
//! - [`error`]: the one error type, carrying the S3 error code and status.
//!
//! What it promises: a request is [`Authenticated`] only if its signature was
//! computed with the secret of an active key over what arrived on the wire
//! (method, raw path, query, signed headers, date); every comparison of a
//! signature is constant-time; no secret or signing key is ever printed.
//! What it does not do: check the body against `x-amz-content-sha256` (the
//! body is streamed elsewhere; [`PayloadMode::Sha256`] says what to check) or
//! decide what the principal may do.

pub mod chunked;
pub mod error;
pub mod sigv2;
pub mod sigv4;

use std::time::{SystemTime, UNIX_EPOCH};

use egress_ledger::principals::SecretKey;

pub use error::AuthError;
pub use sigv4::{ChunkSigningContext, SigningKey, authenticate, authenticate_with_bucket_host};

/// What the verifier needs from the request, exactly as it came on the wire.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// Raw path as sent (still percent-encoded), e.g. "/bucket/my%20key".
    pub raw_path: &'a str,
    /// Raw query string without '?', as sent; None if absent.
    pub raw_query: Option<&'a str>,
    /// The request headers. Over HTTP/2 there is no `Host` header: the caller
    /// must insert `host` from the `:authority` before calling, since V4
    /// always signs it.
    pub headers: &'a http::HeaderMap,
}

/// Looks up the secret of an access key id we issued.
pub trait SecretLookup {
    /// Some((principal name, secret)) for an active key, None if unknown or revoked.
    fn lookup(&self, access_key_id: &str) -> Option<(String, SecretKey)>;
}

impl<F> SecretLookup for F
where
    F: Fn(&str) -> Option<(String, SecretKey)>,
{
    fn lookup(&self, access_key_id: &str) -> Option<(String, SecretKey)> {
        self(access_key_id)
    }
}

/// A request whose signature checked out.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The principal the access key was issued to.
    pub principal: String,
    pub access_key_id: String,
    pub method: AuthMethod,
    /// How the body is protected, i.e. what the body path still has to verify.
    pub payload: PayloadMode,
    /// Which headers the signature covers.
    pub signed_headers: SignedHeaders,
}

/// Which headers a request's signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedHeaders {
    /// SigV2 signs every `x-amz-*` header by construction.
    AllAmz,
    /// SigV4: the `SignedHeaders` value, lowercase names joined by `;`
    /// (checked when parsed).
    Listed(String),
}

impl SignedHeaders {
    /// Whether the header `name` (lowercase) is signed.
    #[must_use]
    pub fn covers(&self, name: &str) -> bool {
        match self {
            SignedHeaders::AllAmz => name.starts_with("x-amz-"),
            SignedHeaders::Listed(list) => list.split(';').any(|signed| signed == name),
        }
    }
}

/// Which signature scheme authenticated the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    SigV4Header,
    SigV4Query,
    SigV2Header,
    SigV2Query,
    /// No signature at all: the built-in principal `anonymous`, let through
    /// only by policies attached to it (never by [`authenticate`]).
    Anonymous,
}

/// Whether a request carries credentials of any scheme: an
/// `Authorization` header, or a presigned URL's parameters as the verifier
/// reads them ([`sigv4::query_auth_kind`], names decoded). One that carries
/// none is anonymous.
#[must_use]
pub fn carries_credentials(parts: &RequestParts<'_>) -> bool {
    parts.headers.contains_key(http::header::AUTHORIZATION)
        || parts.raw_query.is_some_and(|query| sigv4::query_auth_kind(query) != sigv4::QueryAuth::None)
}

impl Authenticated {
    /// The anonymous caller: nothing signed, so every `x-amz-*` header is
    /// taken as sent (there is no signature to smuggle one past; policies
    /// decide on the request as parsed), and the body passes unsigned.
    #[must_use]
    pub fn anonymous() -> Authenticated {
        Authenticated {
            principal: egress_ledger::principals::ANONYMOUS.to_owned(),
            access_key_id: String::new(),
            method: AuthMethod::Anonymous,
            payload: PayloadMode::Unsigned,
            signed_headers: SignedHeaders::AllAmz,
        }
    }
}

/// How the request body is bound to the signature.
#[derive(Debug, Clone)]
pub enum PayloadMode {
    /// x-amz-content-sha256 was a hex SHA-256 of the body (header auth): the
    /// upstream can verify it. Always lowercase here.
    Sha256(String),
    /// UNSIGNED-PAYLOAD, or presigned/V2 requests (no body hash).
    Unsigned,
    /// STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: chunk signatures to verify with this context.
    StreamingSigned { ctx: ChunkSigningContext, trailer: bool },
    /// STREAMING-UNSIGNED-PAYLOAD-TRAILER
    StreamingUnsignedTrailer,
}

/// Query parameters that carry a presigned request's signature (SigV4 and
/// SigV2); they are the client's and never travel further.
pub const AUTH_QUERY_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
];

/// Allowed distance between the client's clock and ours (same as S3).
pub(crate) const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;

/// Seconds since the Unix epoch (negative before it, which no real clock is).
pub(crate) fn unix_seconds(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// `YYYYMMDDTHHMMSSZ` (ISO 8601 basic, UTC), the V4 timestamp format.
pub(crate) fn format_amz_date(secs: i64) -> String {
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// Parses `YYYYMMDDTHHMMSSZ` into Unix seconds.
pub(crate) fn parse_amz_date(s: &str) -> Option<i64> {
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
pub(crate) fn parse_http_date(s: &str) -> Option<i64> {
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

/// Splits a raw query string into `(name, value)` pairs as sent (still
/// encoded); a parameter without `=` has no value; empty pieces are skipped.
pub(crate) fn query_pairs(raw_query: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    raw_query.split('&').filter(|p| !p.is_empty()).map(|p| match p.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (p, None),
    })
}

/// Percent-decodes `s` into bytes; `plus_as_space` applies the
/// form-urlencoded rule that query strings follow. A `%` not followed by two
/// hex digits stays as it is, as S3 and the SDKs' parsers do.
pub(crate) fn percent_decode(s: &str, plus_as_space: bool) -> Vec<u8> {
    if plus_as_space && s.contains('+') {
        percent_encoding::percent_decode(s.replace('+', " ").as_bytes()).collect()
    } else {
        percent_encoding::percent_decode(s.as_bytes()).collect()
    }
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

    #[test]
    fn query_pairs_keep_raw_text() {
        let pairs: Vec<_> = query_pairs("a=1&&b&c=&d=x=y").collect();
        assert_eq!(pairs, [("a", Some("1")), ("b", None), ("c", Some("")), ("d", Some("x=y"))]);
        assert_eq!(percent_decode("a+b%20c%zz", true), b"a b c%zz");
        assert_eq!(percent_decode("a+b", false), b"a+b");
    }
}
