//! The entry point of authentication: which scheme signs a request, and
//! which verifier checks it.
//!
//! [`authenticate`] reads the `Authorization` header and the query: V4 in
//! the header (`AWS4-HMAC-SHA256 …`) or in a presigned URL goes to
//! [`super::sigv4`], V2 (`AWS …`, or `AWSAccessKeyId` and `Signature` in the
//! query) to [`super::sigv2`]. A request signed both ways, or by a scheme we
//! do not speak (`SigV4A`, bearer tokens), is refused, and so is one with no
//! signature at all: anonymous access is the pipeline's decision, not ours.

use std::time::SystemTime;

use crate::auth::error::AuthError;
use crate::auth::{Authenticated, QueryAuth, RequestParts, SecretLookup, query_auth_kind, sigv2, sigv4};
use crate::sigv4::ALGORITHM;

/// Authenticates a request by whichever scheme it uses, assuming path-style
/// addressing for V2 (V4 does not care).
pub fn authenticate(
    parts: &RequestParts<'_>,
    lookup: &dyn SecretLookup,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    authenticate_with_bucket_host(parts, None, lookup, now)
}

/// Like [`authenticate`], for a virtual-hosted request: `bucket_from_host` is
/// the bucket the caller found in the `Host` header. Only V2 uses it (its
/// canonical resource names the bucket); V4 signs the raw path.
pub fn authenticate_with_bucket_host(
    parts: &RequestParts<'_>,
    bucket_from_host: Option<&str>,
    lookup: &dyn SecretLookup,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    let mut authorization = parts.headers.get_all(http::header::AUTHORIZATION).iter();
    let header = authorization.next();
    if authorization.next().is_some() {
        return Err(invalid_argument("the request has more than one Authorization header"));
    }
    let query = parts.raw_query.map_or(QueryAuth::None, query_auth_kind);
    match (header, query) {
        (Some(_), QueryAuth::SigV4 | QueryAuth::SigV2) => Err(invalid_argument(
            "only one auth mechanism allowed: the request has both an Authorization header and signature query parameters",
        )),
        (Some(value), QueryAuth::None) => {
            let Ok(value) = value.to_str() else {
                return Err(AuthError::AuthorizationHeaderMalformed {
                    access_key_id: None,
                    reason: "the Authorization header is not ASCII".to_owned(),
                });
            };
            if value == ALGORITHM || starts_with_word(value, ALGORITHM) {
                sigv4::verify_header(parts, value, lookup, now)
            } else if starts_with_word(value, "AWS") {
                sigv2::authenticate_header(parts, value, bucket_from_host, lookup, now)
            } else if starts_with_word(value, "AWS4-ECDSA-P256-SHA256") {
                Err(access_denied("SigV4A (AWS4-ECDSA-P256-SHA256) is not supported; sign with AWS4-HMAC-SHA256"))
            } else {
                Err(access_denied("unsupported Authorization scheme; sign with AWS Signature Version 4"))
            }
        }
        (None, QueryAuth::SigV4) => sigv4::verify_presigned(parts, lookup, now),
        (None, QueryAuth::SigV2) => sigv2::authenticate_query(parts, bucket_from_host, lookup, now),
        (None, QueryAuth::None) => Err(access_denied(
            "anonymous requests are not allowed; sign the request with an access key issued by this proxy",
        )),
    }
}

fn starts_with_word(value: &str, word: &str) -> bool {
    value.strip_prefix(word).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_whitespace()))
}

fn access_denied(reason: &str) -> AuthError {
    AuthError::AccessDenied { access_key_id: None, reason: reason.to_owned() }
}

fn invalid_argument(reason: &str) -> AuthError {
    AuthError::InvalidArgument { access_key_id: None, reason: reason.to_owned() }
}

#[cfg(test)]
mod tests {
    use http::{HeaderMap, HeaderValue};
    use proptest::prelude::*;

    use super::*;
    use crate::auth::fixtures::{AKID, SECRET, check, code, header_signed, keys, t0};
    use crate::sigv4::UNSIGNED_PAYLOAD;

    #[test]
    fn anonymous_and_unsupported_schemes_are_denied() {
        let headers = HeaderMap::new();
        let parts = RequestParts { method: "GET", raw_path: "/bucket/key", raw_query: None, headers: &headers };
        let err = authenticate(&parts, &keys(AKID, SECRET), t0()).unwrap_err();
        assert_eq!((err.code().as_str(), err.status().as_u16(), err.access_key_id()), ("AccessDenied", 403, None));
        let mut headers = HeaderMap::new();
        headers.insert("authorization", HeaderValue::from_static("AWS4-HMAC-SHA256"));
        let bare = RequestParts { headers: &headers, ..parts };
        assert_eq!(code(authenticate(&bare, &keys(AKID, SECRET), t0())), "AuthorizationHeaderMalformed");
        for scheme in ["Bearer abc", "AWS4-ECDSA-P256-SHA256 Credential=x", "Basic dXNlcjpwYXNz"] {
            let mut headers = HeaderMap::new();
            headers.insert("authorization", HeaderValue::from_str(scheme).unwrap());
            let parts = RequestParts { headers: &headers, ..parts };
            assert_eq!(code(authenticate(&parts, &keys(AKID, SECRET), t0())), "AccessDenied", "{scheme}");
        }
    }

    #[test]
    fn header_and_query_auth_together_are_refused() {
        let req =
            header_signed("/bucket/key?X-Amz-Signature=00", aws_sigv4::http_request::SignableBody::UnsignedPayload);
        assert_eq!(code(check(&req, t0())), "InvalidArgument");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn authenticate_never_panics_on_arbitrary_input(
            authorization in "AWS4-HMAC-SHA256 [ -~]{0,200}|AWS [ -~]{0,60}|[ -~]{0,80}",
            path in "[ -~]{0,40}",
            query in proptest::option::of("[ -~]{0,120}"),
            date in "[0-9TZ]{0,18}",
        ) {
            let mut headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&authorization) {
                headers.insert("authorization", v);
            }
            if let Ok(v) = HeaderValue::from_str(&date) {
                headers.insert("x-amz-date", v);
            }
            headers.insert("x-amz-content-sha256", HeaderValue::from_static(UNSIGNED_PAYLOAD));
            let parts = RequestParts { method: "GET", raw_path: &path, raw_query: query.as_deref(), headers: &headers };
            let _ = authenticate(&parts, &keys(AKID, SECRET), t0());
        }
    }
}
