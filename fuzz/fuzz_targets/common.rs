//! Shared by the targets: a request read from fuzz input.

use egress_ledger::principals::SecretKey;
use http::{HeaderMap, HeaderName, HeaderValue};

pub const ACCESS_KEY_ID: &str = "AKIAIOSFODNN7EXAMPLE";
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

pub fn lookup(access_key_id: &str) -> Option<(String, SecretKey)> {
    (access_key_id == ACCESS_KEY_ID).then(|| ("fuzz".to_owned(), SecretKey::new(SECRET.to_owned())))
}

/// Method, raw path, raw query (`-` for none) and headers, one per line.
pub struct FuzzRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: HeaderMap,
}

pub fn parse<'a>(lines: &mut impl Iterator<Item = &'a str>) -> FuzzRequest<'a> {
    let method = lines.next().unwrap_or_default();
    let path = lines.next().unwrap_or_default();
    let query = lines.next().filter(|q| *q != "-");
    let mut headers = HeaderMap::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.trim().as_bytes()), HeaderValue::from_bytes(value.trim().as_bytes()))
        {
            headers.append(name, value);
        }
    }
    FuzzRequest { method, path, query, headers }
}
