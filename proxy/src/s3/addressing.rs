//! Bucket and key of a request, path-style (`/bucket/key`) or
//! virtual-hosted-style (`bucket.s3.localhost:9000` + `/key`).

use percent_encoding::percent_decode_str;

/// What a request addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// None for service-level requests (`ListBuckets`).
    pub bucket: Option<String>,
    /// Decoded object key; None for bucket-level requests.
    pub key: Option<String>,
    /// True when the bucket came from the Host header.
    pub virtual_hosted: bool,
}

/// Why a request's address cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AddressError {
    #[error("the object key is not valid UTF-8 once decoded")]
    KeyNotUtf8,
    #[error("the path has a '%' not followed by two hex digits; send a literal '%' as %25")]
    InvalidPercentEncoding,
    #[error("the bucket name {0:?} is not valid")]
    InvalidBucketName(String),
    #[error(
        "the object key has a '.' or '..' path segment, which an upstream could resolve to another object; \
         such keys are refused"
    )]
    DotSegment,
    #[error("the object key is {0} bytes long; S3 keys are at most {MAX_KEY_BYTES} bytes")]
    KeyTooLong(usize),
}

/// Longest object key S3 accepts, in bytes of UTF-8.
pub const MAX_KEY_BYTES: usize = 1024;

impl AddressError {
    /// The S3 error code S3 answers for it.
    #[must_use]
    pub fn code(&self) -> super::error::ErrorCode {
        use super::error::ErrorCode;
        match self {
            AddressError::InvalidBucketName(_) => ErrorCode::InvalidBucketName,
            AddressError::KeyTooLong(_) => ErrorCode::KeyTooLongError,
            AddressError::DotSegment => ErrorCode::InvalidArgument,
            AddressError::KeyNotUtf8 | AddressError::InvalidPercentEncoding => ErrorCode::InvalidURI,
        }
    }
}

/// Refuses a bucket name S3 would not accept in a request.
pub fn check_bucket(name: &str) -> Result<(), AddressError> {
    if valid_bucket(name) { Ok(()) } else { Err(AddressError::InvalidBucketName(name.chars().take(300).collect())) }
}

/// Refuses a decoded key that has a `.` or `..` segment (`a/../b`, `./a`,
/// `a/.`): S3 takes them literally, but an upstream that resolves them (as
/// the embedded store did) would act on another object than the one
/// recorded.
pub fn check_key(key: &str) -> Result<(), AddressError> {
    if key.split('/').any(|segment| segment == "." || segment == "..") {
        return Err(AddressError::DotSegment);
    }
    Ok(())
}

/// Refuses a key longer than S3 takes. Checked apart from the address: a
/// long key is still a clear address, and the record keeps (a bounded
/// form of) it.
pub fn check_key_length(key: &str) -> Result<(), AddressError> {
    if key.len() > MAX_KEY_BYTES { Err(AddressError::KeyTooLong(key.len())) } else { Ok(()) }
}

/// Splits host and optional port, lowercases the host.
fn host_name(host: &str) -> String {
    let name = if host.starts_with('[') {
        host.split(']').next().map_or(host, |h| h.trim_start_matches('['))
    } else {
        host.rsplit_once(':').filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h)
    };
    name.to_ascii_lowercase()
}

/// Bucket names as S3 accepts them for requests (lenient on legacy dots and
/// upper case, which old buckets in us-east-1 may have).
fn valid_bucket(name: &str) -> bool {
    (3..=255).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
}

/// Every `%` starts an escape of two hex digits. A broken escape leaves the
/// key ambiguous (S3 answers `InvalidURI`; other servers guess or answer in
/// plain text), so it is refused rather than passed on.
pub(crate) fn valid_percent_encoding(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'%')
        .all(|(i, _)| bytes.get(i + 1..i + 3).is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit)))
}

/// Finds bucket and key. `virtual_host_domains` are the domains under which
/// `<bucket>.<domain>` is virtual-hosted addressing.
pub fn resolve(host: Option<&str>, raw_path: &str, virtual_host_domains: &[String]) -> Result<Target, AddressError> {
    if !valid_percent_encoding(raw_path) {
        return Err(AddressError::InvalidPercentEncoding);
    }
    let path = raw_path.strip_prefix('/').unwrap_or(raw_path);
    let host_bucket = host.map(host_name).and_then(|h| {
        virtual_host_domains.iter().find_map(|domain| {
            h.strip_suffix(domain.as_str())?.strip_suffix('.').filter(|b| !b.is_empty()).map(str::to_owned)
        })
    });
    let (bucket, raw_key, virtual_hosted) = match host_bucket {
        Some(bucket) => (Some(bucket), (!path.is_empty()).then(|| path.to_owned()), true),
        None => {
            let (bucket, key) = match path.split_once('/') {
                Some((b, k)) => (b, (!k.is_empty()).then(|| k.to_owned())),
                None => (path, None),
            };
            let bucket = percent_decode_str(bucket).decode_utf8().map_err(|_| AddressError::KeyNotUtf8)?;
            // `//key`: a key with no bucket names nothing (the record would
            // hold a key the upstream, asked for `/`, never sees).
            if bucket.is_empty() && key.is_some() {
                return Err(AddressError::InvalidBucketName(String::new()));
            }
            ((!bucket.is_empty()).then(|| bucket.into_owned()), key, false)
        }
    };
    if let Some(b) = &bucket {
        check_bucket(b)?;
    }
    let key = match &raw_key {
        Some(raw) => Some(percent_decode_str(raw).decode_utf8().map_err(|_| AddressError::KeyNotUtf8)?.into_owned()),
        None => None,
    };
    if let Some(key) = &key {
        check_key(key)?;
    }
    Ok(Target { bucket, key, virtual_hosted })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domains() -> Vec<String> {
        vec!["s3.localhost".to_owned()]
    }

    #[test]
    fn path_style() {
        let t = resolve(Some("127.0.0.1:9000"), "/data/dir/my%20file.bin", &domains()).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("data"));
        assert_eq!(t.key.as_deref(), Some("dir/my file.bin"));
        assert!(!t.virtual_hosted);
        let bucket_only = resolve(Some("localhost"), "/data", &domains()).unwrap();
        assert_eq!((bucket_only.bucket.as_deref(), bucket_only.key), (Some("data"), None));
        let trailing = resolve(Some("localhost"), "/data/", &domains()).unwrap();
        assert_eq!(trailing.key, None);
        let service = resolve(Some("localhost"), "/", &domains()).unwrap();
        assert_eq!(service.bucket, None);
    }

    #[test]
    fn virtual_hosted() {
        let t = resolve(Some("data.s3.localhost:9000"), "/a/b%2Bc", &domains()).unwrap();
        assert_eq!(t.bucket.as_deref(), Some("data"));
        assert_eq!(t.key.as_deref(), Some("a/b+c"));
        assert!(t.virtual_hosted);
        let root = resolve(Some("data.s3.localhost"), "/", &domains()).unwrap();
        assert_eq!((root.bucket.as_deref(), root.key), (Some("data"), None));
        // The domain itself is not a bucket.
        let plain = resolve(Some("s3.localhost:9000"), "/bkt/k", &domains()).unwrap();
        assert_eq!(plain.bucket.as_deref(), Some("bkt"));
    }

    #[test]
    fn bad_names_and_encodings() {
        assert_eq!(resolve(None, "/data/%ff", &[]), Err(AddressError::KeyNotUtf8));
        for broken in ["/data/a%zzb", "/data/a%2", "/data/%", "/da%7/k"] {
            assert_eq!(resolve(None, broken, &[]), Err(AddressError::InvalidPercentEncoding), "{broken}");
        }
        assert!(resolve(None, "/data/a%25zz%2F%7e", &[]).is_ok());
        assert!(matches!(resolve(None, "/a/k", &[]), Err(AddressError::InvalidBucketName(_))));
        assert!(matches!(resolve(None, "/bad%20bucket/k", &[]), Err(AddressError::InvalidBucketName(_))));
        // Found by the request_parse fuzz target: a key with no bucket.
        for path in ["//k", "///", "//: x"] {
            assert_eq!(resolve(None, path, &[]), Err(AddressError::InvalidBucketName(String::new())), "{path}");
        }
    }

    #[test]
    fn dot_segments_are_refused_and_long_keys_told() {
        for path in
            ["/demo/../secret/payroll.txt", "/demo/%2E%2E/secret/x", "/demo/./k", "/demo/a/..", "/demo/a%2F..%2Fb"]
        {
            assert_eq!(resolve(None, path, &[]), Err(AddressError::DotSegment), "{path}");
        }
        assert_eq!(resolve(Some("demo.s3.localhost"), "/../secret/x", &domains()), Err(AddressError::DotSegment));
        for fine in ["/demo/a..b", "/demo/.hidden", "/demo/a/.../b", "/demo/a//b"] {
            assert!(resolve(None, fine, &[]).is_ok(), "{fine}");
        }
        assert_eq!(check_key_length(&"k".repeat(MAX_KEY_BYTES + 1)), Err(AddressError::KeyTooLong(MAX_KEY_BYTES + 1)));
        assert_eq!(check_key_length(&"k".repeat(MAX_KEY_BYTES)), Ok(()));
    }
}
