//! The canonical request: method, path, query, headers, the list of signed
//! headers and the payload hash, each line in the one form V4 signs.
//!
//! Which path to sign (S3 signs the raw path, encoded once and never
//! normalised), which headers and which payload hash are the caller's
//! choice; this module only puts them in canonical form.

use http::HeaderMap;

use super::encoding::{percent_decode, query_pairs, uri_encode_into};

/// The six lines of a canonical request, each already canonical.
#[derive(Debug, Clone, Copy)]
pub struct CanonicalRequest<'a> {
    pub method: &'a str,
    /// The path exactly as it is signed (for S3, encoded once, not normalised).
    pub path: &'a str,
    /// From [`canonical_query`].
    pub query: &'a str,
    /// From [`canonical_headers`].
    pub headers: &'a [u8],
    /// The signed header names, lowercase, sorted, joined by `;`.
    pub signed_headers: &'a str,
    /// The `x-amz-content-sha256` value: a hex SHA-256 or a payload mode.
    pub payload_hash: &'a str,
}

impl CanonicalRequest<'_> {
    /// `method \n path \n query \n headers \n signed headers \n payload hash`
    /// (the headers block ends in its own newline).
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.method.len()
                + self.path.len()
                + self.query.len()
                + self.headers.len()
                + self.signed_headers.len()
                + 70,
        );
        for line in [self.method.as_bytes(), self.path.as_bytes(), self.query.as_bytes(), self.headers] {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.extend_from_slice(self.signed_headers.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.payload_hash.as_bytes());
        out
    }
}

/// Every query parameter (but `X-Amz-Signature` when `skip_signature`, as a
/// presigned URL's is) decoded, re-encoded strictly, sorted by name then
/// value, joined with `&`.
#[must_use]
pub fn canonical_query(raw_query: Option<&str>, skip_signature: bool) -> String {
    let Some(raw_query) = raw_query else { return String::new() };
    let mut pairs: Vec<(String, String)> = query_pairs(raw_query)
        .filter_map(|(name, value)| {
            let name = percent_decode(name, true);
            if skip_signature && name == b"X-Amz-Signature" {
                return None;
            }
            let mut enc_name = String::with_capacity(name.len());
            uri_encode_into(&name, true, &mut enc_name);
            let mut enc_value = String::new();
            uri_encode_into(&percent_decode(value.unwrap_or_default(), true), true, &mut enc_value);
            Some((enc_name, enc_value))
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(raw_query.len() + 16);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// A header named among the signed ones that the request does not carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the signed header {0:?} is not in the request")]
pub struct MissingSignedHeader(pub String);

/// `name:value\n` for each of the `signed` headers (lowercase names, in the
/// order given), values trimmed, runs of spaces collapsed, repeated headers
/// joined with `,`.
pub fn canonical_headers(headers: &HeaderMap, signed: &[&str]) -> Result<Vec<u8>, MissingSignedHeader> {
    let mut out = Vec::with_capacity(256);
    for &name in signed {
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            return Err(MissingSignedHeader(name.to_owned()));
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_trimmed(&mut out, value.as_bytes());
        }
        out.push(b'\n');
    }
    Ok(out)
}

fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ws(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !is_ws(b)).map_or(start, |i| i + 1);
    let mut previous_space = false;
    for &b in value.get(start..end).unwrap_or_default() {
        if b == b' ' && previous_space {
            continue;
        }
        previous_space = b == b' ';
        out.push(b);
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    #[test]
    fn canonical_header_values_are_trimmed_and_collapsed() {
        let mut out = Vec::new();
        push_trimmed(&mut out, b"  a   b \t c  ");
        assert_eq!(out, b"a b \t c");
    }

    #[test]
    fn a_signed_header_must_be_present() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("h"));
        headers.append("x-amz-meta-a", HeaderValue::from_static(" 1 "));
        headers.append("x-amz-meta-a", HeaderValue::from_static("2"));
        assert_eq!(canonical_headers(&headers, &["host", "x-amz-meta-a"]).unwrap(), b"host:h\nx-amz-meta-a:1,2\n");
        let missing = canonical_headers(&headers, &["host", "range"]).unwrap_err();
        assert_eq!(missing.to_string(), "the signed header \"range\" is not in the request");
    }

    #[test]
    fn canonical_query_sorts_encoded_pairs() {
        let query = canonical_query(Some("b=2&a=x+y&a=%3d&flag&X-Amz-Signature=00&c=~"), true);
        assert_eq!(query, "a=%3D&a=x%20y&b=2&c=~&flag=");
        assert_eq!(canonical_query(Some("X-Amz-Signature=00"), false), "X-Amz-Signature=00");
        assert_eq!(canonical_query(None, false), "");
    }
}
