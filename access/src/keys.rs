//! The condition keys this crate knows. A key not listed here (and not under
//! one of the prefixes) is accepted in a policy with a warning and always
//! evaluates as missing: the proxy never sets it, so a policy that names it
//! is almost certainly a typo or a key of another service.
//!
//! docs/POLICIES.md lists the same keys; keep the two in step.

/// Exact keys, as AWS spells them, and whether each is multivalued.
pub const KNOWN_KEYS: &[(&str, bool)] = &[
    ("aws:CurrentTime", false),
    ("aws:EpochTime", false),
    ("aws:PrincipalArn", false),
    ("aws:Referer", false),
    ("aws:RequestedRegion", false),
    ("aws:SecureTransport", false),
    ("aws:SourceArn", false),
    ("aws:SourceIp", false),
    ("aws:UserAgent", false),
    ("aws:userid", false),
    ("aws:username", false),
    ("s3:authType", false),
    ("s3:delimiter", false),
    ("s3:max-keys", false),
    ("s3:object-lock-mode", false),
    ("s3:prefix", false),
    ("s3:RequestObjectTagKeys", true),
    ("s3:signatureAge", false),
    ("s3:signatureversion", false),
    ("s3:TlsVersion", false),
    ("s3:VersionId", false),
    ("s3:x-amz-acl", false),
    ("s3:x-amz-content-sha256", false),
    ("s3:x-amz-copy-source", false),
    ("s3:x-amz-metadata-directive", false),
    ("s3:x-amz-server-side-encryption", false),
    ("s3:x-amz-storage-class", false),
];

/// Keys that take a name after the prefix (a tag key), all single-valued.
pub const KNOWN_KEY_PREFIXES: &[&str] = &["aws:PrincipalTag/", "s3:ExistingObjectTag/", "s3:RequestObjectTag/"];

/// What a policy's key names, if the crate knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Single,
    Multi,
    Unknown,
}

pub(crate) fn classify(key: &str) -> KeyKind {
    if let Some((_, multi)) = KNOWN_KEYS.iter().find(|(known, _)| known.eq_ignore_ascii_case(key)) {
        return if *multi { KeyKind::Multi } else { KeyKind::Single };
    }
    let prefixed = KNOWN_KEY_PREFIXES.iter().any(|prefix| {
        key.len() > prefix.len()
            && key.is_char_boundary(prefix.len())
            && key[..prefix.len()].eq_ignore_ascii_case(prefix)
    });
    if prefixed { KeyKind::Single } else { KeyKind::Unknown }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies() {
        assert_eq!(classify("AWS:SOURCEIP"), KeyKind::Single);
        assert_eq!(classify("aws:PrincipalTag/team"), KeyKind::Single);
        assert_eq!(classify("aws:PrincipalTag/"), KeyKind::Unknown);
        assert_eq!(classify("s3:requestobjecttagkeys"), KeyKind::Multi);
        assert_eq!(classify("ec2:Region"), KeyKind::Unknown);
    }
}
