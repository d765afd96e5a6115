//! `x-amz-copy-source`: the object a `CopyObject` or `UploadPartCopy` reads.
//!
//! S3 takes `[/]bucket/key[?versionId=V]` with the key URL-encoded. The
//! proxy decodes it once, checks it as it checks a request's own address
//! (valid bucket, no `.`/`..` key segments), records it, and forwards it
//! re-encoded from that parse ([`CopySource::to_header`]), so that the
//! upstream copies exactly the object the ledger names.

use super::addressing::{self, AddressError};
use crate::auth::percent_decode;
use crate::auth::sigv4::uri_encode;

/// A parsed copy source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopySource {
    pub bucket: String,
    pub key: String,
    pub version_id: Option<String>,
}

/// Why a copy source cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CopySourceError {
    #[error("x-amz-copy-source must be bucket/key[?versionId=V], URL-encoded")]
    Malformed,
    #[error("copy sources named by an access point or Outposts ARN are not supported; name the bucket")]
    Arn,
    #[error("x-amz-copy-source: {0}")]
    Address(#[from] AddressError),
}

impl CopySource {
    /// Parses the header's value.
    pub fn parse(value: &str) -> Result<CopySource, CopySourceError> {
        let value = value.trim();
        let value = value.strip_prefix('/').unwrap_or(value);
        if value.starts_with("arn:") || value.starts_with("arn%3A") || value.starts_with("arn%3a") {
            return Err(CopySourceError::Arn);
        }
        let (path, query) = match value.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (value, None),
        };
        let version_id = match query {
            None => None,
            Some(query) => {
                let (name, version) = query.split_once('=').ok_or(CopySourceError::Malformed)?;
                if name != "versionId" || version.is_empty() {
                    return Err(CopySourceError::Malformed);
                }
                Some(String::from_utf8(percent_decode(version, false)).map_err(|_| CopySourceError::Malformed)?)
            }
        };
        let (bucket, raw_key) = path.split_once('/').ok_or(CopySourceError::Malformed)?;
        if !addressing::valid_percent_encoding(raw_key) {
            return Err(AddressError::InvalidPercentEncoding.into());
        }
        let bucket = String::from_utf8(percent_decode(bucket, false)).map_err(|_| CopySourceError::Malformed)?;
        let key = String::from_utf8(percent_decode(raw_key, false)).map_err(|_| AddressError::KeyNotUtf8)?;
        addressing::check_bucket(&bucket)?;
        addressing::check_key(&key)?;
        addressing::check_key_length(&key)?;
        Ok(CopySource { bucket, key, version_id })
    }

    /// The header value to forward: `/bucket/key[?versionId=V]`, the key
    /// encoded as SigV4 encodes a path.
    #[must_use]
    pub fn to_header(&self) -> String {
        let mut out = format!("/{}/{}", self.bucket, uri_encode(&self.key, false));
        if let Some(version) = &self.version_id {
            out.push_str("?versionId=");
            out.push_str(&uri_encode(version, true));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_s3_accepts() {
        let plain = CopySource::parse("src-bucket/dir/my%20file.txt").unwrap();
        assert_eq!(
            (plain.bucket.as_str(), plain.key.as_str(), plain.version_id.as_deref()),
            ("src-bucket", "dir/my file.txt", None)
        );
        assert_eq!(plain.to_header(), "/src-bucket/dir/my%20file.txt");
        let versioned = CopySource::parse("/src-bucket/k%2Bplus?versionId=abc%2B1").unwrap();
        assert_eq!(versioned.key, "k+plus");
        assert_eq!(versioned.version_id.as_deref(), Some("abc+1"));
        assert_eq!(versioned.to_header(), "/src-bucket/k%2Bplus?versionId=abc%2B1");
        assert_eq!(CopySource::parse(&versioned.to_header()), Ok(versioned));
    }

    #[test]
    fn what_could_name_another_object_is_refused() {
        assert_eq!(CopySource::parse("bucket-only"), Err(CopySourceError::Malformed));
        assert_eq!(CopySource::parse("b/k?uploadId=1"), Err(CopySourceError::Malformed));
        assert_eq!(CopySource::parse("arn:aws:s3:us-east-1:1:accesspoint/a/object/k"), Err(CopySourceError::Arn));
        assert!(matches!(CopySource::parse("demo/../secret/payroll.txt"), Err(CopySourceError::Address(_))));
        assert!(matches!(CopySource::parse("demo/%2E%2E/secret/x"), Err(CopySourceError::Address(_))));
        assert!(matches!(CopySource::parse("demo/a/./b"), Err(CopySourceError::Address(_))));
        assert!(matches!(CopySource::parse("x/k"), Err(CopySourceError::Address(_))));
        assert!(matches!(CopySource::parse("demo/a%zz"), Err(CopySourceError::Address(_))));
    }
}
