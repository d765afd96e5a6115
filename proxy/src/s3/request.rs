//! One S3 request, parsed once: what it addresses, its query, its
//! operation, its copy source — and, from that same value, what is sent
//! upstream ([`S3Request::forward_headers`], [`Query::to_forward_tagged`]).
//!
//! The signature check reads the raw request (it must: the signature is
//! over the bytes sent), but it decodes the query as [`Query`] does, so a
//! name means one thing to both. The record, the upstream request and (next)
//! the authorization decision are all read off an [`S3Request`]; none of
//! them parses the request again.
//!
//! Headers cross to the upstream by rule, not by omission from a drop list:
//! - `x-amz-*` headers only when the client signed them (SigV2 signs every
//!   one; a SigV4 request with an unsigned one is refused before anything
//!   is forwarded, see [`unsigned_amz_header`]), but the client's own
//!   authentication headers, which the upstream signature replaces;
//! - the standard headers S3 reads ([`FORWARDED_STANDARD`]): object metadata
//!   on writes, conditions and ranges on reads. S3 applies these whether or
//!   not they were signed, and so do we (a presigned PUT's holder chooses
//!   the Content-Type unless the signer signed it);
//! - a presigned URL's `x-amz-*` parameters, as headers;
//! - nothing else (no `Origin`, `Cookie`, `X-Forwarded-*`, hop-by-hop
//!   headers, …).

use http::{HeaderMap, HeaderName, HeaderValue, Method};

use super::addressing::Target;
use super::copy_source::{CopySource, CopySourceError};
use super::error::S3Error;
use super::operation::{Operation, Scope, UnknownOperation};
use super::query::{Query, QueryError, Role, role};
use crate::auth::SignedHeaders;

/// Standard request headers forwarded as they came.
pub const FORWARDED_STANDARD: &[&str] = &[
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "expires",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-unmodified-since",
    "range",
    "user-agent",
];

/// `x-amz-*` headers that authenticate the client to us: consumed here,
/// replaced by the upstream signature, never forwarded.
const CLIENT_AUTH_HEADERS: &[&str] = &["x-amz-date", "x-amz-content-sha256", "x-amz-security-token"];

const COPY_SOURCE: &str = "x-amz-copy-source";

/// A parsed request.
#[derive(Debug, Clone)]
pub struct S3Request {
    pub target: Target,
    pub query: Query,
    pub operation: Operation,
    /// The object a copy reads (`CopyObject`, `UploadPartCopy`).
    pub copy_source: Option<CopySource>,
}

/// Why a request is not one the proxy forwards.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error(transparent)]
    Query(#[from] QueryError),
    #[error(transparent)]
    Operation(#[from] UnknownOperation),
    #[error(transparent)]
    CopySource(#[from] CopySourceError),
    #[error("x-amz-copy-source is only read by CopyObject and UploadPartCopy, not {0}")]
    StrayCopySource(&'static str),
    #[error("the header {0} is given both as a header and as a query parameter")]
    HoistConflict(String),
    #[error("the header {0} appears more than once")]
    RepeatedHeader(&'static str),
    #[error(transparent)]
    Address(#[from] super::addressing::AddressError),
}

impl RequestError {
    /// The S3 error answered.
    #[must_use]
    pub fn to_s3(&self) -> S3Error {
        match self {
            RequestError::Operation(_) => S3Error::new(super::error::ErrorCode::NotImplemented, self.to_string()),
            RequestError::CopySource(CopySourceError::Address(address)) | RequestError::Address(address) => {
                S3Error::new(address.code(), self.to_string())
            }
            _ => S3Error::new(super::error::ErrorCode::InvalidArgument, self.to_string()),
        }
    }
}

impl S3Request {
    /// Parses what is left once the address is known.
    pub fn parse(
        method: &Method,
        target: Target,
        raw_query: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<S3Request, RequestError> {
        if let Some(key) = &target.key {
            super::addressing::check_key_length(key)?;
        }
        let query = Query::parse(raw_query)?;
        if let Some(both) = query.hoisted().iter().find(|h| headers.contains_key(&h.name)) {
            return Err(RequestError::HoistConflict(both.name.to_string()));
        }
        let mut copy_values = headers.get_all(COPY_SOURCE).iter();
        let copy_header = copy_values.next();
        if copy_values.next().is_some() {
            return Err(RequestError::RepeatedHeader(COPY_SOURCE));
        }
        let copy_header =
            copy_header.or_else(|| query.hoisted().iter().find(|h| h.name == COPY_SOURCE).map(|h| &h.value));
        let copy_text = copy_header.map(|v| v.to_str().map_err(|_| CopySourceError::Malformed)).transpose()?;
        let scope = match (&target.bucket, &target.key) {
            (None, _) => Scope::Service,
            (Some(_), None) => Scope::Bucket,
            (Some(_), Some(_)) => Scope::Object,
        };
        let operation = Operation::classify(method, scope, &query, copy_text.is_some())?;
        let copy_source = match copy_text {
            None => None,
            Some(_) if !matches!(operation, Operation::CopyObject | Operation::UploadPartCopy) => {
                return Err(RequestError::StrayCopySource(operation.name()));
            }
            Some(text) => Some(CopySource::parse(text)?),
        };
        Ok(S3Request { target, query, operation, copy_source })
    }

    /// The version the request names (`versionId`).
    #[must_use]
    pub fn version_id(&self) -> Option<&str> {
        self.query.get("versionId")
    }

    /// The first operation-selecting parameter that a SigV2 signature does
    /// not cover, if any. Such a parameter could be added to a SigV2
    /// presigned URL by whoever holds it, turning the request into another
    /// operation; S3 v2 signs only [`crate::auth::sigv2::SUB_RESOURCES`].
    /// `list-type` is let through: it changes only the listing's format.
    #[must_use]
    pub fn selector_unsigned_by_v2(&self) -> Option<&str> {
        self.query.params().iter().map(|p| p.name.as_str()).find(|name| {
            role(name) == Some(Role::Selector)
                && *name != "list-type"
                && !crate::auth::sigv2::SUB_RESOURCES.contains(name)
        })
    }

    /// The headers to send upstream (before the upstream signature and the
    /// body plan's framing changes), by the rules in the module docs. The
    /// caller has refused unsigned `x-amz-*` headers already.
    #[must_use]
    pub fn forward_headers(&self, headers: &HeaderMap) -> HeaderMap {
        let mut out = HeaderMap::with_capacity(headers.len());
        for (name, value) in headers {
            let name_str = name.as_str();
            let amz = name_str.starts_with("x-amz-") && !CLIENT_AUTH_HEADERS.contains(&name_str);
            if (amz || FORWARDED_STANDARD.contains(&name_str)) && name_str != COPY_SOURCE {
                out.append(name.clone(), value.clone());
            }
        }
        // The signature parameters' own names (`X-Amz-Date`, …) are never
        // hoisted (`Query::parse`).
        for hoisted in self.query.hoisted().iter().filter(|h| h.name != COPY_SOURCE) {
            out.append(hoisted.name.clone(), hoisted.value.clone());
        }
        if let Some(source) = &self.copy_source
            && let Ok(value) = HeaderValue::from_str(&source.to_header())
        {
            out.insert(HeaderName::from_static(COPY_SOURCE), value);
        }
        out
    }
}

/// The first `x-amz-*` header the signature does not cover (S3 refuses
/// such a request: "There were headers present in the request which were
/// not signed"). The client's own authentication headers are exempt: they
/// are consumed here and never forwarded.
#[must_use]
pub fn unsigned_amz_header<'h>(headers: &'h HeaderMap, signed: &SignedHeaders) -> Option<&'h str> {
    headers
        .keys()
        .map(HeaderName::as_str)
        .find(|name| name.starts_with("x-amz-") && !CLIENT_AUTH_HEADERS.contains(name) && !signed.covers(name))
}

/// For tests and fuzzing: parses a request as the pipeline does, builds
/// what the proxy would send upstream (path-style), parses that as the
/// upstream would, and reports any difference in what the two mean
/// (operation, bucket, key, version, copy source). `Ok(false)`: the proxy
/// refuses the request, which is trivially fine.
#[doc(hidden)]
pub fn forwarded_means_the_same(
    method: &Method,
    host: Option<&str>,
    raw_path: &str,
    raw_query: Option<&str>,
    headers: &HeaderMap,
) -> Result<bool, String> {
    let domains = ["s3.localhost".to_owned()];
    let Ok(target) = super::addressing::resolve(host, raw_path, &domains) else { return Ok(false) };
    let Ok(request) = S3Request::parse(method, target, raw_query, headers) else { return Ok(false) };
    let path = crate::upstream::client::path_style(request.target.bucket.as_deref(), request.target.key.as_deref());
    // As the pipeline forwards it: tagged with a request id.
    let query = Some(request.query.to_forward_tagged("01234567-89ab-7cde-8f01-23456789abcd"));
    let forwarded_headers = request.forward_headers(headers);
    let target = super::addressing::resolve(None, &path, &[])
        .map_err(|e| format!("the forwarded path {path:?} does not parse: {e}"))?;
    let upstream = S3Request::parse(method, target, query.as_deref(), &forwarded_headers)
        .map_err(|e| format!("the forwarded request ({path:?}, {query:?}) does not parse: {e}"))?;
    let meaning = |r: &S3Request| {
        (
            r.operation,
            r.target.bucket.clone(),
            r.target.key.clone(),
            r.version_id().map(str::to_owned),
            r.copy_source.clone(),
        )
    };
    if meaning(&request) != meaning(&upstream) {
        return Err(format!(
            "the proxy reads {:?}, the upstream would read {:?} (forwarded {path:?} ? {query:?})",
            meaning(&request),
            meaning(&upstream)
        ));
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::s3::addressing;

    fn parse(
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<S3Request, RequestError> {
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        let target = addressing::resolve(None, path, &[]).unwrap();
        S3Request::parse(&method.parse().unwrap(), target, query, &map)
    }

    #[test]
    fn percent_encoded_selectors_are_what_runs_and_what_is_recorded() {
        let r = parse("DELETE", "/bkt/k", Some("version%49d=V"), &[]).unwrap();
        assert_eq!((r.operation, r.version_id()), (Operation::DeleteObject, Some("V")));
        assert_eq!(r.query.to_forward().as_deref(), Some("versionId=V"));
        let r = parse("PUT", "/bucket", Some("versi%6Fning"), &[]).unwrap();
        assert_eq!(r.operation, Operation::PutBucketVersioning);
        let r = parse("GET", "/bkt/k", Some("%74agging"), &[]).unwrap();
        assert_eq!(r.operation, Operation::GetObjectTagging);
    }

    #[test]
    fn copy_sources_are_parsed_recorded_and_forwarded_canonically() {
        let r = parse("PUT", "/demo/k", None, &[("x-amz-copy-source", "secret/pay%72oll.txt?versionId=7")]).unwrap();
        assert_eq!(r.operation, Operation::CopyObject);
        let source = r.copy_source.clone().unwrap();
        assert_eq!((source.bucket.as_str(), source.key.as_str()), ("secret", "payroll.txt"));
        assert_eq!(source.version_id.as_deref(), Some("7"));
        let mut headers = HeaderMap::new();
        headers.insert("x-amz-copy-source", HeaderValue::from_static("secret/pay%72oll.txt?versionId=7"));
        assert_eq!(r.forward_headers(&headers)["x-amz-copy-source"], "/secret/payroll.txt?versionId=7");

        let part =
            parse("PUT", "/demo/k", Some("partNumber=1&uploadId=u"), &[("x-amz-copy-source", "/src/k")]).unwrap();
        assert_eq!(part.operation, Operation::UploadPartCopy);
        assert_eq!(
            parse("PUT", "/demo/k", Some("tagging"), &[("x-amz-copy-source", "src/k")]).unwrap_err(),
            RequestError::StrayCopySource("PutObjectTagging")
        );
        assert!(parse("PUT", "/demo/k", None, &[("x-amz-copy-source", "src/../k")]).is_err());
    }

    #[test]
    fn presigned_parameters_become_headers() {
        let q = "X-Amz-Signature=ab&X-Amz-Credential=c&x-amz-copy-source=src%2Fk&x-amz-meta-a=1";
        let r = parse("PUT", "/demo/k", Some(q), &[]).unwrap();
        assert_eq!(r.operation, Operation::CopyObject);
        let forwarded = r.forward_headers(&HeaderMap::new());
        assert_eq!(forwarded["x-amz-copy-source"], "/src/k");
        assert_eq!(forwarded["x-amz-meta-a"], "1");
        assert_eq!(r.query.to_forward(), None);
        assert_eq!(
            parse("PUT", "/demo/k", Some(q), &[("x-amz-meta-a", "2")]).unwrap_err(),
            RequestError::HoistConflict("x-amz-meta-a".into())
        );
    }

    #[test]
    fn only_allowed_headers_cross() {
        let r = parse("GET", "/bkt/k", None, &[]).unwrap();
        let mut h = HeaderMap::new();
        for (n, v) in [
            ("range", "bytes=0-1"),
            ("x-amz-checksum-mode", "ENABLED"),
            ("x-amz-date", "20260101T000000Z"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("authorization", "AWS4-HMAC-SHA256 ..."),
            ("origin", "https://evil.example"),
            ("x-forwarded-for", "1.2.3.4"),
            ("connection", "close"),
            ("user-agent", "boto3"),
        ] {
            h.insert(HeaderName::from_static(n), HeaderValue::from_static(v));
        }
        let out = r.forward_headers(&h);
        let mut names: Vec<&str> = out.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["range", "user-agent", "x-amz-checksum-mode"]);
    }

    #[test]
    fn unsigned_amz_headers_are_found() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-date", HeaderValue::from_static("d"));
        h.insert("x-amz-content-sha256", HeaderValue::from_static("UNSIGNED-PAYLOAD"));
        let signed = SignedHeaders::Listed("host".into());
        assert_eq!(unsigned_amz_header(&h, &signed), None);
        h.insert("x-amz-copy-source", HeaderValue::from_static("secret/payroll.txt"));
        assert_eq!(unsigned_amz_header(&h, &signed), Some("x-amz-copy-source"));
        assert_eq!(unsigned_amz_header(&h, &SignedHeaders::Listed("host;x-amz-copy-source".into())), None);
        assert_eq!(unsigned_amz_header(&h, &SignedHeaders::AllAmz), None);
    }

    #[test]
    fn v2_must_sign_what_selects_the_operation() {
        let r = parse("GET", "/bkt/k", Some("AWSAccessKeyId=A&Signature=s&Expires=1&attributes"), &[]).unwrap();
        assert_eq!(r.selector_unsigned_by_v2(), Some("attributes"));
        let r = parse("GET", "/bkt", Some("AWSAccessKeyId=A&Signature=s&Expires=1&list-type=2"), &[]).unwrap();
        assert_eq!(r.selector_unsigned_by_v2(), None);
        let r = parse("GET", "/bkt/k", Some("retention"), &[]).unwrap();
        assert_eq!(r.selector_unsigned_by_v2(), None, "retention is a SigV2 sub-resource");
    }

    mod roundtrip {
        use proptest::prelude::*;

        use super::*;

        /// Text with the characters that make parsing hard: separators,
        /// escapes, dots, plus, spaces, non-ASCII.
        fn tricky() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just("/"),
                    Just("."),
                    Just(".."),
                    Just("%"),
                    Just("+"),
                    Just(" "),
                    Just("="),
                    Just("&"),
                    Just("?"),
                    Just("a"),
                    Just("é"),
                    Just("~"),
                    Just("%2F"),
                    Just("%2E"),
                    Just("%25"),
                    Just("%49"),
                    Just("%74agging"),
                    Just("versionId"),
                    Just("acl"),
                    Just("x-amz-"),
                    Just("k"),
                ],
                0..8,
            )
            .prop_map(|parts| parts.concat())
        }

        /// A parameter name: mostly one S3 defines, sometimes anything.
        fn name() -> impl Strategy<Value = String> {
            prop_oneof![
                4 => proptest::sample::select(vec![
                    "versionId", "tagging", "acl", "uploads", "uploadId", "partNumber", "list-type", "prefix",
                    "versioning", "retention", "legal-hold", "attributes", "delete", "x-id", "response-content-type",
                    "X-Amz-Signature", "X-Amz-Credential", "x-amz-meta-a", "x-amz-copy-source", "AWSAccessKeyId",
                    "Signature", "content-type", "policy", "policyStatus", "id", "analytics",
                ])
                .prop_map(str::to_owned),
                1 => tricky(),
            ]
        }

        /// Encodes some bytes and leaves others, as clients variously do.
        fn encode_some(text: &str, mask: u64) -> String {
            text.bytes()
                .enumerate()
                .map(|(i, b)| {
                    let keep = b.is_ascii_alphanumeric() || (b"/-_.~".contains(&b) && mask >> (i % 64) & 1 == 0);
                    if keep { char::from(b).to_string() } else { format!("%{b:02X}") }
                })
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2000))]
            #[test]
            fn what_is_forwarded_means_what_was_parsed(
                method in prop_oneof![Just("GET"), Just("PUT"), Just("HEAD"), Just("DELETE"), Just("POST")],
                bucket in prop_oneof![Just("data"), Just("my.bucket"), Just("a-b")],
                key in proptest::option::of(tricky()),
                mask in any::<u64>(),
                query in proptest::collection::vec((name(), proptest::option::of(tricky())), 0..4),
                copy in proptest::option::of(tricky()),
                virtual_hosted in any::<bool>(),
            ) {
                let key_path = key.map(|k| encode_some(&k, mask)).unwrap_or_default();
                let (host, path) = if virtual_hosted {
                    (Some(format!("{bucket}.s3.localhost")), format!("/{key_path}"))
                } else {
                    (None, format!("/{bucket}/{key_path}"))
                };
                let raw_query = query
                    .iter()
                    .map(|(n, v)| match v {
                        Some(v) => format!("{}={}", encode_some(n, mask.rotate_left(7)), encode_some(v, mask)),
                        None => encode_some(n, mask.rotate_left(3)),
                    })
                    .collect::<Vec<_>>()
                    .join("&");
                let mut headers = HeaderMap::new();
                if let Some(copy) = copy.and_then(|c| HeaderValue::from_str(&format!("data/{}", encode_some(&c, mask))).ok()) {
                    headers.insert("x-amz-copy-source", copy);
                }
                let method: Method = method.parse().unwrap();
                let raw_query = (!raw_query.is_empty()).then_some(raw_query);
                // About a fifth of the cases are accepted (the rest refused:
                // unknown names, dot segments, …), checked once by counting.
                forwarded_means_the_same(&method, host.as_deref(), &path, raw_query.as_deref(), &headers)
                    .map_err(TestCaseError::fail)?;
            }
        }
    }
}
