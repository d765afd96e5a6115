//! Percent-encoding the way V4 signs, and a raw query string read the way S3
//! reads it (`+` is a space, a stray `%` stays as it is).

/// V4 URI encoding: every byte but `A-Z a-z 0-9 - _ . ~` becomes `%XX`
/// (upper-case hex); `/` is kept unless `encode_slash`.
#[must_use]
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    uri_encode_into(s.as_bytes(), encode_slash, &mut out);
    out
}

/// Decodes a raw path and encodes it the way the AWS SDKs do (`/` kept).
#[must_use]
pub fn uri_encode_path(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    uri_encode_into(&percent_decode(raw, false), false, &mut out);
    out
}

/// [`uri_encode`] onto the end of `out`.
pub fn uri_encode_into(bytes: &[u8], encode_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (b == b'/' && !encode_slash) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

/// Splits a raw query string into `(name, value)` pairs as sent (still
/// encoded); a parameter without `=` has no value; empty pieces are skipped.
pub fn query_pairs(raw_query: &str) -> impl Iterator<Item = (&str, Option<&str>)> {
    raw_query.split('&').filter(|p| !p.is_empty()).map(|p| match p.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (p, None),
    })
}

/// Percent-decodes `s` into bytes; `plus_as_space` applies the
/// form-urlencoded rule that query strings follow. A `%` not followed by two
/// hex digits stays as it is, as S3 and the SDKs' parsers do.
#[must_use]
pub fn percent_decode(s: &str, plus_as_space: bool) -> Vec<u8> {
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
    fn uri_encoding_follows_sigv4() {
        assert_eq!(uri_encode("a b/c~d+e=é", false), "a%20b/c~d%2Be%3D%C3%A9");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
        assert_eq!(uri_encode_path("/b/a=b%20c%2Fd%41"), "/b/a%3Db%20c/dA");
    }

    #[test]
    fn query_pairs_keep_raw_text() {
        let pairs: Vec<_> = query_pairs("a=1&&b&c=&d=x=y").collect();
        assert_eq!(pairs, [("a", Some("1")), ("b", None), ("c", Some("")), ("d", Some("x=y"))]);
        assert_eq!(percent_decode("a+b%20c%zz", true), b"a b c%zz");
        assert_eq!(percent_decode("a+b", false), b"a+b");
    }
}
