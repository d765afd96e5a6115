//! Where an archive is: `s3://BUCKET/PREFIX`, and the name of each chain in
//! it (its origin).

use std::fmt;
use std::str::FromStr;

/// An archive's place: a bucket and a key prefix (empty, or ending in `/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveUrl {
    pub bucket: String,
    pub prefix: String,
}

/// Why an archive URL or an origin is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LocationError(String);

impl FromStr for ArchiveUrl {
    type Err = LocationError;

    fn from_str(text: &str) -> Result<ArchiveUrl, LocationError> {
        let bad = |why: &str| LocationError(format!("archive {text:?}: {why}; give s3://BUCKET/PREFIX"));
        let rest = text.strip_prefix("s3://").ok_or_else(|| bad("not an s3:// URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-');
        if !bucket_ok {
            return Err(bad("the bucket name must be 3 to 63 lowercase letters, digits, dots or hyphens"));
        }
        let prefix = prefix.trim_matches('/');
        if prefix.split('/').any(|p| p == "." || p == "..") || prefix.contains("//") || prefix.len() > 512 {
            return Err(bad("the prefix must be plain path segments"));
        }
        let prefix = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
        Ok(ArchiveUrl { bucket: bucket.to_owned(), prefix })
    }
}

impl fmt::Display for ArchiveUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.prefix)
    }
}

/// The name of one proxy's chain: the origin line of its checkpoints and
/// its folder in the archive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin(String);

impl Origin {
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Origin {
    type Err = LocationError;

    /// 1 to 128 printable ASCII characters other than `/`, `\`, `+` and
    /// space: a signed note's origin (no `+`, space or newline) that is also
    /// one key segment.
    fn from_str(text: &str) -> Result<Origin, LocationError> {
        let ok = (1..=128).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_graphic() && !matches!(b, b'/' | b'\\' | b'+'))
            && text != "."
            && text != "..";
        if ok {
            Ok(Origin(text.to_owned()))
        } else {
            Err(LocationError(format!(
                "origin {text:?}: must be 1 to 128 printable ASCII characters without '/', '\\', '+' or spaces"
            )))
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_to_bucket_and_prefix() {
        let url: ArchiveUrl = "s3://acme-archive/ledger/prod".parse().unwrap();
        assert_eq!((url.bucket.as_str(), url.prefix.as_str()), ("acme-archive", "ledger/prod/"));
        assert_eq!(url.to_string(), "s3://acme-archive/ledger/prod/");
        let bare: ArchiveUrl = "s3://acme-archive/".parse().unwrap();
        assert_eq!(bare.prefix, "");
        for bad in ["acme", "s3://", "s3://AB/x", "s3://ok-bucket/a/../b", "https://x/y"] {
            assert!(bad.parse::<ArchiveUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_are_one_key_segment() {
        assert!("egress-proxy@node-1".parse::<Origin>().is_ok());
        for bad in ["", "a/b", "a+b", "a b", "..", "é"] {
            assert!(bad.parse::<Origin>().is_err(), "{bad:?}");
        }
    }
}
