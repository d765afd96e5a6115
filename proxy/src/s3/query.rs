//! The query string of an S3 request, parsed once.
//!
//! Every parameter is percent-decoded the way the SigV4 check decodes it
//! (`+` is a space, as in form encoding), and classified by a table of the
//! names S3 defines ([`Role`]). What is derived from the query — the
//! operation, the version id, the parameters sent upstream — is derived from
//! this one parse, so the signature check, the record and the forwarded
//! request read the same names: `version%49d=V` *is* `versionId=V` to all
//! of them.
//!
//! Refused (S3 `InvalidArgument`, 400), because two readers could differ on
//! them:
//! - a name that is not in the table (an upstream might give it a meaning
//!   the proxy would not record), but for custom `x-` parameters, which S3
//!   ignores;
//! - a name sent twice (one reader takes the first, another the last);
//! - a name or value that is not UTF-8 once decoded;
//! - more than [`MAX_PARAMS`] parameters;
//! - `x-amz-*` parameters in a request signed in its headers (they stand for
//!   headers only in presigned URLs, see [`Query::hoisted`]).
//!
//! In a presigned URL, `x-amz-*` parameters (and, for SigV2, `Content-Type`
//! and `Content-MD5`) stand for the headers of the same name, as S3 reads
//! them and as the SDKs' presigners put them there. They are taken out of
//! the query and forwarded as headers.

use crate::sigv4::uri_encode_into;
use http::{HeaderName, HeaderValue};

use crate::auth::sigv4::{QueryAuth, query_auth_kind};
use crate::auth::{self, AUTH_QUERY_PARAMS};

/// The parameter naming the proxy's request in every upstream request
/// ([`Query::to_forward_tagged`]); reconciliation reads it back from S3's
/// access logs (`docs/RECONCILIATION.md`).
pub const TAG_PARAM: &str = "x-egress-req";

fn push_param(out: &mut String, name: &str, value: Option<&str>) {
    if !out.is_empty() {
        out.push('&');
    }
    // Onto `out` directly: this runs for every parameter of every request.
    uri_encode_into(name.as_bytes(), true, out);
    if let Some(value) = value {
        out.push('=');
        uri_encode_into(value.as_bytes(), true, out);
    }
}

/// What a known parameter does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Selects the operation (`?acl`, `?uploads`, `?list-type=2`, …).
    Selector,
    /// An argument of the operation (`prefix`, `versionId`, `response-*`, …).
    Argument,
}

/// Every query parameter S3 defines that this proxy forwards.
const KNOWN: &[(&str, Role)] = &[
    ("accelerate", Role::Selector),
    ("acl", Role::Selector),
    ("analytics", Role::Selector),
    ("attributes", Role::Selector),
    ("cors", Role::Selector),
    ("delete", Role::Selector),
    ("encryption", Role::Selector),
    ("intelligent-tiering", Role::Selector),
    ("inventory", Role::Selector),
    ("legal-hold", Role::Selector),
    ("lifecycle", Role::Selector),
    ("list-type", Role::Selector),
    ("location", Role::Selector),
    ("logging", Role::Selector),
    ("metrics", Role::Selector),
    ("notification", Role::Selector),
    ("object-lock", Role::Selector),
    ("ownershipControls", Role::Selector),
    ("partNumber", Role::Selector),
    ("policy", Role::Selector),
    ("policyStatus", Role::Selector),
    ("publicAccessBlock", Role::Selector),
    ("replication", Role::Selector),
    ("requestPayment", Role::Selector),
    ("restore", Role::Selector),
    ("retention", Role::Selector),
    ("select", Role::Selector),
    ("tagging", Role::Selector),
    ("torrent", Role::Selector),
    ("uploadId", Role::Selector),
    ("uploads", Role::Selector),
    ("versioning", Role::Selector),
    ("versions", Role::Selector),
    ("website", Role::Selector),
    ("bucket-region", Role::Argument),
    ("continuation-token", Role::Argument),
    ("delimiter", Role::Argument),
    ("encoding-type", Role::Argument),
    ("fetch-owner", Role::Argument),
    ("id", Role::Argument),
    ("key-marker", Role::Argument),
    ("marker", Role::Argument),
    ("max-buckets", Role::Argument),
    ("max-keys", Role::Argument),
    ("max-parts", Role::Argument),
    ("max-uploads", Role::Argument),
    ("part-number-marker", Role::Argument),
    ("prefix", Role::Argument),
    ("response-cache-control", Role::Argument),
    ("response-content-disposition", Role::Argument),
    ("response-content-encoding", Role::Argument),
    ("response-content-language", Role::Argument),
    ("response-content-type", Role::Argument),
    ("response-expires", Role::Argument),
    ("select-type", Role::Argument),
    ("start-after", Role::Argument),
    ("upload-id-marker", Role::Argument),
    ("version-id-marker", Role::Argument),
    ("versionId", Role::Argument),
];

/// Most parameters one request may carry. S3 operations take a dozen at the
/// most; the bound keeps the repeated-name check (quadratic) cheap for any
/// query a client can send (64 KiB of `a&a&…` would be 16,000 names).
pub const MAX_PARAMS: usize = 64;

/// The role of a known parameter name (case-sensitive, as in S3).
#[must_use]
pub fn role(name: &str) -> Option<Role> {
    KNOWN.iter().find(|(n, _)| *n == name).map(|(_, role)| *role)
}

/// One decoded parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    /// `None` for a bare name (`?uploads`), which is not `uploads=`.
    pub value: Option<String>,
}

/// A header given as a query parameter of a presigned URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoistedHeader {
    pub name: HeaderName,
    pub value: HeaderValue,
}

/// The parsed query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query {
    /// The parameters that go upstream as parameters, in the order sent
    /// (signature parameters and hoisted headers taken out).
    params: Vec<Param>,
    /// Headers the presigned URL carries as parameters.
    hoisted: Vec<HoistedHeader>,
    auth: QueryAuth,
}

/// Why a query cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum QueryError {
    #[error(
        "the query parameter {0:?} is not one this proxy knows, so it cannot tell what the upstream would do \
         with it; remove it (custom parameters must begin with x-)"
    )]
    Unknown(String),
    #[error("the query parameter {0:?} appears more than once")]
    Repeated(String),
    #[error("a query parameter is not UTF-8 once decoded")]
    NotUtf8,
    #[error("the query has more than {MAX_PARAMS} parameters")]
    TooMany,
    #[error(
        "the query parameter {0:?} stands for a header only in a presigned URL; send it as a header in a request \
         signed in its headers"
    )]
    HeaderOutsidePresign(String),
    #[error("the presigned URL's parameter {0:?} is not a valid header")]
    BadHeader(String),
}

impl Query {
    /// Parses a raw query string (without `?`) as sent.
    pub fn parse(raw: Option<&str>) -> Result<Query, QueryError> {
        let mut query = Query::default();
        let Some(raw) = raw else { return Ok(query) };
        let mut seen: Vec<(String, Option<String>)> = Vec::new();
        for (name, value) in auth::query_pairs(raw) {
            if seen.len() == MAX_PARAMS {
                return Err(QueryError::TooMany);
            }
            let name = String::from_utf8(auth::percent_decode(name, true)).map_err(|_| QueryError::NotUtf8)?;
            let value = value
                .map(|v| String::from_utf8(auth::percent_decode(v, true)).map_err(|_| QueryError::NotUtf8))
                .transpose()?;
            if seen.iter().any(|(n, _)| *n == name) {
                return Err(QueryError::Repeated(name));
            }
            seen.push((name, value));
        }
        // The same reading as the signature check's.
        query.auth = query_auth_kind(raw);
        let presigned = query.auth != QueryAuth::None;
        for (name, value) in seen {
            if AUTH_QUERY_PARAMS.contains(&name.as_str()) {
                continue;
            }
            let lower = name.to_ascii_lowercase();
            // Case-insensitive echoes of signature parameters would be
            // hoisted as headers nobody means.
            if AUTH_QUERY_PARAMS.iter().any(|p| p.eq_ignore_ascii_case(&name)) {
                return Err(QueryError::Unknown(name));
            }
            let header_like = lower.starts_with("x-amz-")
                || (query.auth == QueryAuth::SigV2 && matches!(lower.as_str(), "content-type" | "content-md5"));
            if header_like {
                if !presigned {
                    return Err(QueryError::HeaderOutsidePresign(name));
                }
                let (Ok(header), Ok(value)) = (
                    HeaderName::from_bytes(lower.as_bytes()),
                    HeaderValue::from_str(value.as_deref().unwrap_or_default()),
                ) else {
                    return Err(QueryError::BadHeader(name));
                };
                query.hoisted.push(HoistedHeader { name: header, value });
                continue;
            }
            if role(&name).is_none() && !lower.starts_with("x-") {
                return Err(QueryError::Unknown(name));
            }
            query.params.push(Param { name, value });
        }
        Ok(query)
    }

    /// The signature form the query carries.
    #[must_use]
    pub fn auth(&self) -> QueryAuth {
        self.auth
    }

    /// Whether the parameter is present (with or without a value).
    #[must_use]
    pub fn has(&self, name: &str) -> bool {
        self.params.iter().any(|p| p.name == name)
    }

    /// The value of a parameter (`Some("")` for a bare name).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|p| p.name == name).map(|p| p.value.as_deref().unwrap_or(""))
    }

    /// The parameters that go upstream.
    #[must_use]
    pub fn params(&self) -> &[Param] {
        &self.params
    }

    /// Headers a presigned URL carries as parameters.
    #[must_use]
    pub fn hoisted(&self) -> &[HoistedHeader] {
        &self.hoisted
    }

    /// The client's parameters as they are forwarded (encoded strictly,
    /// SigV4's unreserved set, in the order sent), without the tag the
    /// pipeline adds ([`Query::to_forward_tagged`]); `None` if there are none.
    #[cfg(test)]
    #[must_use]
    pub fn to_forward(&self) -> Option<String> {
        let mut out = String::new();
        for param in &self.params {
            push_param(&mut out, &param.name, param.value.as_deref());
        }
        (!out.is_empty()).then_some(out)
    }

    /// The query to forward: the parameters encoded strictly (SigV4's
    /// unreserved set), in the order sent, then the proxy's request id as
    /// the last parameter, [`TAG_PARAM`]`=req`, so that the upstream's access log
    /// names the ledger request (S3 ignores `x-` parameters and logs them in
    /// the Request-URI). A client's own parameter of that name is dropped:
    /// only the proxy names its requests.
    #[must_use]
    pub fn to_forward_tagged(&self, req: &str) -> String {
        let mut out = String::new();
        for param in self.params.iter().filter(|p| p.name != TAG_PARAM) {
            push_param(&mut out, &param.name, param.value.as_deref());
        }
        push_param(&mut out, TAG_PARAM, Some(req));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_decoded_before_they_are_read() {
        let q = Query::parse(Some("version%49d=V%2B1&x-id=GetObject")).unwrap();
        assert_eq!(q.get("versionId"), Some("V+1"));
        assert_eq!(q.to_forward().as_deref(), Some("versionId=V%2B1&x-id=GetObject"));
        let q = Query::parse(Some("x-egress-req=forged&prefix=a+b&uploads")).unwrap();
        assert_eq!(q.to_forward_tagged("r-1"), "prefix=a%20b&uploads&x-egress-req=r-1");
        let q = Query::parse(Some("prefix=a+b&uploads")).unwrap();
        assert_eq!(q.get("prefix"), Some("a b"));
        assert_eq!(q.get("uploads"), Some(""));
        assert_eq!(q.to_forward().as_deref(), Some("prefix=a%20b&uploads"));
    }

    #[test]
    fn unknown_repeated_and_undecodable_are_refused() {
        assert_eq!(Query::parse(Some("frobnicate=1")), Err(QueryError::Unknown("frobnicate".into())));
        assert_eq!(Query::parse(Some("session")), Err(QueryError::Unknown("session".into())));
        assert_eq!(Query::parse(Some("=x")), Err(QueryError::Unknown(String::new())));
        assert_eq!(Query::parse(Some("acl&%61cl")), Err(QueryError::Repeated("acl".into())));
        assert_eq!(Query::parse(Some("prefix=%ff")), Err(QueryError::NotUtf8));
        let many = (0..=MAX_PARAMS).map(|i| format!("x-{i}")).collect::<Vec<_>>().join("&");
        assert_eq!(Query::parse(Some(&many)), Err(QueryError::TooMany));
        // Custom parameters for the access logs pass (S3 ignores them).
        assert!(Query::parse(Some("x-trace=7&X-Team=ml")).is_ok());
        // Names are case-sensitive, as in S3.
        assert_eq!(Query::parse(Some("VersionId=1")), Err(QueryError::Unknown("VersionId".into())));
    }

    fn hoisted(name: &'static str, value: &'static str) -> HoistedHeader {
        HoistedHeader { name: HeaderName::from_static(name), value: HeaderValue::from_static(value) }
    }

    #[test]
    fn amz_parameters_are_headers_in_presigned_urls_only() {
        let q = Query::parse(Some(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=ab&x-amz-meta-team=ml&X-Amz-Copy-Source=a%2Fb&x-id=PutObject",
        ))
        .unwrap();
        assert_eq!(q.auth(), QueryAuth::SigV4);
        assert_eq!(q.hoisted(), [hoisted("x-amz-meta-team", "ml"), hoisted("x-amz-copy-source", "a/b")]);
        assert_eq!(q.to_forward().as_deref(), Some("x-id=PutObject"));
        assert_eq!(
            Query::parse(Some("x-amz-copy-source=a%2Fb")),
            Err(QueryError::HeaderOutsidePresign("x-amz-copy-source".into()))
        );
        let v2 = Query::parse(Some("AWSAccessKeyId=A&Signature=s&Expires=1&Content-Type=text%2Fplain")).unwrap();
        assert_eq!(v2.auth(), QueryAuth::SigV2);
        assert_eq!(v2.hoisted(), [hoisted("content-type", "text/plain")]);
        assert_eq!(v2.to_forward(), None);
        assert_eq!(Query::parse(Some("x-amz-signature=1")), Err(QueryError::Unknown("x-amz-signature".into())));
        assert_eq!(
            Query::parse(Some("X-Amz-Signature=ab&x-amz-meta-a=%0A")),
            Err(QueryError::BadHeader("x-amz-meta-a".into()))
        );
    }
}
