//! Which records are object reads, and what a read says in [`AwsRead`]'s
//! terms: the key decoded, the proxy's tag found in the Request-URI.

use std::borrow::Cow;

use percent_encoding::{percent_decode, percent_decode_str};

use super::line::{AccessLogLine, position, tokens};
use crate::aws_read::{AwsRead, LogSource, TAG_PARAM};

/// The operation S3 logs for `GetObject`, whole or ranged: the one that
/// sends an object's bytes out of the bucket to the requester.
pub const OBJECT_READ: &str = "REST.GET.OBJECT";

/// Every operation that reads an object's bytes out of the bucket: a
/// `GetObject`, the source side of a `CopyObject` or `UploadPartCopy` (the
/// bytes go to another bucket, perhaps another account's), and a read
/// through the bucket's website endpoint.
pub const OBJECT_READS: [&str; 4] = [OBJECT_READ, "REST.COPY.OBJECT_GET", "REST.COPY.PART_GET", "WEBSITE.GET.OBJECT"];

impl<'a> AccessLogLine<'a> {
    /// Whether this record is an object read ([`OBJECT_READS`]), refused or not.
    #[must_use]
    pub fn is_object_read(&self) -> bool {
        OBJECT_READS.contains(&self.operation)
    }

    /// The read this record is, if it is one ([`OBJECT_READS`]); `None` for
    /// every other operation. A refused read is a read too (see
    /// [`AwsRead::succeeded`]). Bytes sent logged as `-` are 0.
    #[must_use]
    pub fn object_read(&self) -> Option<AwsRead> {
        if !self.is_object_read() {
            return None;
        }
        Some(AwsRead {
            source: LogSource::AccessLog,
            request_id: self.request_id.to_owned(),
            time_micros: self.time_micros,
            bucket: self.bucket.to_owned(),
            key: self.key().map(Cow::into_owned).unwrap_or_default(),
            requester: self.requester.map(str::to_owned),
            identity_type: None,
            access_key_id: None,
            source_ip: self.remote_ip.map(str::to_owned),
            user_agent: self.user_agent.map(str::to_owned),
            status: self.http_status,
            error_code: self.error_code.map(str::to_owned),
            bytes_sent: Some(self.bytes_sent.unwrap_or(0)),
            object_size: self.object_size,
            tag: self.tag().map(Cow::into_owned),
        })
    }

    /// The object key, decoded; `None` if the operation takes none.
    ///
    /// S3 URL-encodes the key twice for the requests clients make (`a b` is
    /// logged `a%2520b`; `/` is left as it is) and once for the operations
    /// it makes itself: lifecycle (`S3.EXPIRE.OBJECT`, `S3.TRANSITION...`)
    /// and `BATCH.DELETE.OBJECT`. Decoding is of `%XX` only: `+` is a plus
    /// sign. Bytes that do not decode to UTF-8 (S3 keys are UTF-8, so a
    /// garbled log) become U+FFFD rather than hiding the record.
    #[must_use]
    pub fn key(&self) -> Option<Cow<'a, str>> {
        let logged = self.key_logged?;
        let encoded_once = self.operation.starts_with("S3.") || self.operation.starts_with("BATCH.");
        Some(if encoded_once { percent_decode_str(logged).decode_utf8_lossy() } else { decode_twice(logged) })
    }

    /// The proxy's request id: the value of the [`TAG_PARAM`] query parameter
    /// in the Request-URI, percent-decoded, if the URI carries exactly one
    /// (parameter names are compared decoded, as S3 reads them). Two are
    /// ambiguous and give `None`, as does an empty value.
    #[must_use]
    pub fn tag(&self) -> Option<Cow<'a, str>> {
        // `GET /key?query HTTP/1.1`: a request target holds no space.
        let target = tokens(self.request_uri?).nth(1)?;
        let query = target.get(position(target, b'?')? + 1..)?;
        let mut found = None;
        for pair in query.as_bytes().split(|&b| b == b'&') {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            let is_tag = name == TAG_PARAM.as_bytes()
                || (name.contains(&b'%') && Cow::from(percent_decode(name)) == TAG_PARAM.as_bytes());
            if is_tag && found.replace(value).is_some() {
                return None;
            }
        }
        found.filter(|value| !value.is_empty()).map(|value| percent_decode(value).decode_utf8_lossy())
    }
}

fn decode_twice(logged: &str) -> Cow<'_, str> {
    match Cow::from(percent_decode_str(logged)) {
        // No escape at all: the common key, decoded without a copy.
        Cow::Borrowed(_) => Cow::Borrowed(logged),
        Cow::Owned(once) => {
            let twice = Cow::from(percent_decode(&once));
            Cow::Owned(String::from_utf8_lossy(&twice).into_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access_log::corpus;
    use crate::access_log::line::parse_line;

    fn read(line: &str) -> Option<AwsRead> {
        parse_line(line).unwrap().object_read()
    }

    #[test]
    fn a_get_is_an_object_read() {
        assert_eq!(
            read(corpus::FULL),
            Some(AwsRead {
                source: LogSource::AccessLog,
                request_id: "7QK2M9XZ4T1B8D0F".into(),
                time_micros: 1_741_944_413_000_000,
                bucket: "egress-data-eu".into(),
                key: "datasets/2025/train-00017.parquet".into(),
                requester: Some("arn:aws:sts::111122223333:assumed-role/egress-proxy/session-7".into()),
                identity_type: None,
                access_key_id: None,
                source_ip: Some("198.51.100.24".into()),
                user_agent: Some("aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0".into()),
                status: Some(200),
                error_code: None,
                bytes_sent: Some(1_048_576),
                object_size: Some(1_048_576),
                tag: Some("01956f3a-7c1e-7b42-9d0a-5e3f2c1b4a69".into()),
            })
        );
        let ranged = read(corpus::ENDS_AFTER_HOST_ID).unwrap();
        assert_eq!((ranged.status, ranged.bytes_sent, ranged.object_size), (Some(206), Some(65_536), Some(7_340_032)));
        assert_eq!(ranged.tag, None);
    }

    #[test]
    fn put_head_and_lifecycle_records_are_not_reads() {
        assert_eq!(read(corpus::ENDS_AFTER_TLS_VERSION), None); // REST.PUT.OBJECT
        assert_eq!(read(corpus::ENDS_AFTER_USER_AGENT), None); // REST.HEAD.OBJECT
        assert_eq!(read(corpus::LIFECYCLE_EXPIRY), None);
    }

    #[test]
    fn the_source_side_of_a_copy_is_a_read() {
        // Someone copies the object to a bucket of their own: its bytes leave.
        let line = corpus::FULL.replace("REST.GET.OBJECT", "REST.COPY.OBJECT_GET").replace(
            "arn:aws:sts::111122223333:assumed-role/egress-proxy/session-7",
            "arn:aws:iam::444455556666:user/outsider",
        );
        let copy = read(&line).unwrap();
        assert_eq!(copy.key, "datasets/2025/train-00017.parquet");
        assert_eq!(copy.requester.as_deref(), Some("arn:aws:iam::444455556666:user/outsider"));
        assert!(read(&corpus::FULL.replace("REST.GET.OBJECT", "REST.COPY.PART_GET")).is_some());
        assert!(read(&corpus::FULL.replace("REST.GET.OBJECT", "WEBSITE.GET.OBJECT")).is_some());
        assert!(read(&corpus::FULL.replace("REST.GET.OBJECT", "REST.COPY.OBJECT")).is_none());
    }

    #[test]
    fn a_refused_read_is_a_read_that_did_not_succeed() {
        let refused = read(corpus::ERROR_READ).unwrap();
        assert_eq!(refused.status, Some(403));
        assert_eq!(refused.error_code.as_deref(), Some("AccessDenied"));
        assert_eq!((refused.bytes_sent, refused.object_size), (Some(243), None));
        assert_eq!(refused.requester.as_deref(), Some("arn:aws:iam::444455556666:user/outsider"));
        assert!(!refused.succeeded());
        assert!(read(corpus::FULL).unwrap().succeeded());
    }

    #[test]
    fn bytes_sent_logged_as_a_dash_are_zero() {
        let not_modified = read(corpus::ENDS_AFTER_VERSION_ID).unwrap();
        assert_eq!((not_modified.status, not_modified.bytes_sent), (Some(304), Some(0)));
        assert_eq!(not_modified.requester, None);
        let dashes = read(corpus::DASHES).unwrap();
        assert_eq!((dashes.key.as_str(), dashes.bytes_sent, dashes.status), ("", Some(0), None));
        assert_eq!((dashes.requester, dashes.source_ip, dashes.user_agent, dashes.tag), (None, None, None, None));
    }

    #[test]
    fn a_read_key_is_decoded_twice() {
        let line = parse_line(corpus::ENCODED_KEY).unwrap();
        assert_eq!(line.key().as_deref(), Some("photos/summer 2024/café%2Fmenu/v2.txt"));
        let quote = parse_line(corpus::RAW_QUOTE_REQUEST_URI).unwrap();
        assert_eq!(quote.key().as_deref(), Some("odd\""));
        // No escape: borrowed from the line.
        assert!(matches!(parse_line(corpus::FULL).unwrap().key(), Some(Cow::Borrowed(_))));
        let plus = corpus::FULL.replace(" datasets/2025/train-00017.parquet ", " a+b%2520c%252Bd ");
        assert_eq!(parse_line(&plus).unwrap().key().as_deref(), Some("a+b c+d"));
    }

    #[test]
    fn s3s_own_operations_encode_the_key_once() {
        let expiry = parse_line(corpus::LIFECYCLE_EXPIRY).unwrap();
        assert_eq!(expiry.key().as_deref(), Some("tmp/100% done.txt"));
        let batch = corpus::LIFECYCLE_EXPIRY.replace("S3.EXPIRE.OBJECT", "BATCH.DELETE.OBJECT");
        assert_eq!(parse_line(&batch).unwrap().key().as_deref(), Some("tmp/100% done.txt"));
    }

    #[test]
    fn a_key_that_is_not_utf8_is_decoded_lossily() {
        let line = corpus::FULL.replace(" datasets/2025/train-00017.parquet ", " bad%25FFbyte%25 ");
        assert_eq!(parse_line(&line).unwrap().key().as_deref(), Some("bad\u{fffd}byte%"));
    }

    #[test]
    fn the_tag_is_the_only_tag_parameter() {
        let ambiguous = parse_line(corpus::TWO_TAGS).unwrap();
        assert_eq!(ambiguous.tag(), None);
        let encoded = parse_line(corpus::ENCODED_TAG).unwrap();
        assert_eq!(encoded.tag().as_deref(), Some("01956f3a-7c1e"));
        let key_tag = parse_line(corpus::ENCODED_KEY).unwrap();
        assert_eq!(key_tag.tag().as_deref(), Some("01956f3a-0000-7000-8000-000000000001"));
    }

    #[test]
    fn no_tag_without_exactly_one_named_value() {
        let with_query = |query: &str| {
            corpus::FULL.replace("?x-id=GetObject&x-egress-req=01956f3a-7c1e-7b42-9d0a-5e3f2c1b4a69", query)
        };
        for query in
            ["", "?", "?x-egress-req", "?x-egress-req=", "?x-egress-reqx=1", "?X-Egress-Req=1", "?a=x-egress-req"]
        {
            assert_eq!(parse_line(&with_query(query)).unwrap().tag(), None, "{query}");
        }
        assert_eq!(parse_line(&with_query("?x-egress-req=1&x-egress%2dreq=2")).unwrap().tag(), None);
        assert_eq!(parse_line(&with_query("?x-egress-req=a%2Bb+c")).unwrap().tag().as_deref(), Some("a+b+c"));
        assert_eq!(parse_line(corpus::DASHES).unwrap().tag(), None);
    }
}
