//! Verifying a client's AWS Signature Version 4 (V4) for S3: what requests
//! signed in the `Authorization` header (`header`) and presigned URLs
//! (`presigned`) have in common.
//!
//! Both rebuild the canonical request from the request as it arrived, the
//! way S3 does it: the raw path as sent (S3 neither normalises nor
//! double-encodes it), every query parameter but a presigned URL's
//! `X-Amz-Signature` decoded and re-encoded with the strict V4 set and
//! sorted, the signed headers with their values trimmed and inner runs of
//! spaces collapsed. If the raw path was not encoded the way V4 encodes
//! (e.g. a client sent `=` unescaped), the strictly re-encoded path is tried
//! as well; both name the same object. The algorithm (canonical forms,
//! signing key, string to sign) is [`crate::sigv4`]'s; this module decides
//! what to accept, and which S3 error to answer.
//!
//! Shared here: the credential (`AKID/date/region/s3/aws4_request`), the
//! `SignedHeaders` list, the signature, the `x-amz-content-sha256` value,
//! and the comparison of signatures. Which of the two forms a request uses
//! is for [`super::scheme`] to decide.
//!
//! Promises: the region is the one in the credential scope (any region is
//! accepted), the service must be `s3`, `host` and `x-amz-content-sha256`
//! (header auth) must be signed, the request time must be within 15 minutes
//! of ours, a presigned URL lives at most a week, and the signature is
//! compared in constant time. For the streaming payload modes the signing key
//! and seed signature come back in a [`ChunkSigningContext`] so that
//! [`super::chunked`] can verify each chunk.

mod header;
mod presigned;

use subtle::ConstantTimeEq;

pub(crate) use self::header::verify_header;
pub(crate) use self::presigned::verify_presigned;
use crate::auth::PayloadMode;
use crate::auth::error::AuthError;
use crate::sigv4::{
    CanonicalRequest, SCOPE_TERMINATOR, STREAMING_SIGNED_PAYLOAD, STREAMING_SIGNED_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER, UNSIGNED_PAYLOAD, scope, uri_encode_path,
};

// Where other modules found these when this module held all of V4.
pub use crate::auth::{QueryAuth, query_auth_kind};
pub use crate::sigv4::{SigningKey, uri_encode};

/// What [`super::chunked`] needs to verify a signed aws-chunked body: each
/// chunk is signed with the request's key and chained to the previous signature.
#[derive(Debug, Clone)]
pub struct ChunkSigningContext {
    pub signing_key: SigningKey,
    /// The request timestamp, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
    /// `date/region/s3/aws4_request`.
    pub scope: String,
    /// The request's own signature (lowercase hex), which the first chunk chains to.
    pub seed_signature: String,
}

/// Where a credential came from, which decides the S3 error code of a parse failure.
#[derive(Clone, Copy)]
enum Source {
    Header,
    Query,
}

impl Source {
    fn malformed(self, access_key_id: Option<&str>, reason: impl Into<String>) -> AuthError {
        let access_key_id = access_key_id.map(str::to_owned);
        match self {
            Source::Header => AuthError::AuthorizationHeaderMalformed { access_key_id, reason: reason.into() },
            Source::Query => AuthError::AuthorizationQueryParametersError { access_key_id, reason: reason.into() },
        }
    }
}

/// `AKID/20130524/us-east-1/s3/aws4_request`.
struct Credential<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
}

impl Credential<'_> {
    fn scope(&self) -> String {
        scope(self.date, self.region, "s3")
    }

    /// The signing key of `secret` for this credential's scope.
    fn signing_key(&self, secret: &str) -> SigningKey {
        SigningKey::derive(secret, self.date, self.region, "s3")
    }
}

fn parse_credential(value: &str, source: Source) -> Result<Credential<'_>, AuthError> {
    let mut fields = value.rsplitn(5, '/');
    let (Some(terminator), Some(service), Some(region), Some(date), Some(access_key_id)) =
        (fields.next(), fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err(source.malformed(None, format!("the credential {value:?} is not AKID/date/region/s3/aws4_request")));
    };
    let akid = Some(access_key_id);
    if access_key_id.is_empty() {
        return Err(source.malformed(None, "the credential has an empty access key id"));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(source.malformed(akid, format!("the credential date {date:?} is not YYYYMMDD")));
    }
    if region.is_empty() {
        return Err(source.malformed(akid, "the credential has an empty region"));
    }
    if service != "s3" {
        return Err(source.malformed(akid, format!("the credential names service {service:?}; this endpoint is s3")));
    }
    if terminator != SCOPE_TERMINATOR {
        return Err(source.malformed(akid, format!("the credential ends in {terminator:?} instead of aws4_request")));
    }
    Ok(Credential { access_key_id, date, region })
}

/// `host;x-amz-content-sha256;x-amz-date`: lowercase names, in the order signed.
fn parse_signed_headers<'a>(value: &'a str, access_key_id: &str, source: Source) -> Result<Vec<&'a str>, AuthError> {
    let names: Vec<&str> = value.split(';').collect();
    let valid = |n: &&str| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&b))
    };
    if !names.iter().all(valid) {
        return Err(source.malformed(
            Some(access_key_id),
            format!("SignedHeaders {value:?} must be lowercase header names separated by ';'"),
        ));
    }
    if !names.contains(&"host") {
        return Err(source.malformed(Some(access_key_id), "the host header must be among the signed headers"));
    }
    Ok(names)
}

/// A 64-digit hex signature; a wrong shape can never match, so it is reported as a mismatch.
fn parse_signature(value: &str, access_key_id: &str) -> Result<[u8; 32], AuthError> {
    let mut sig = [0_u8; 32];
    match hex::decode_to_slice(value, &mut sig) {
        Ok(()) => Ok(sig),
        Err(_) => Err(AuthError::SignatureDoesNotMatch {
            access_key_id: Some(access_key_id.to_owned()),
            reason: "the signature must be 64 hex digits".to_owned(),
        }),
    }
}

/// The value of `x-amz-content-sha256` (or the presigned `X-Amz-Content-Sha256`).
enum ContentSha256 {
    Hex(String),
    Unsigned,
    StreamingSigned { trailer: bool },
    StreamingUnsignedTrailer,
}

fn classify_content_sha256(value: &str) -> Result<ContentSha256, AuthError> {
    Ok(match value {
        UNSIGNED_PAYLOAD => ContentSha256::Unsigned,
        STREAMING_SIGNED_PAYLOAD => ContentSha256::StreamingSigned { trailer: false },
        STREAMING_SIGNED_PAYLOAD_TRAILER => ContentSha256::StreamingSigned { trailer: true },
        STREAMING_UNSIGNED_PAYLOAD_TRAILER => ContentSha256::StreamingUnsignedTrailer,
        hex if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            ContentSha256::Hex(hex.to_ascii_lowercase())
        }
        other => {
            return Err(invalid_argument(format!(
                "x-amz-content-sha256 {other:?} must be the hex SHA-256 of the body, {UNSIGNED_PAYLOAD}, \
                 {STREAMING_SIGNED_PAYLOAD}, {STREAMING_SIGNED_PAYLOAD_TRAILER} or {STREAMING_UNSIGNED_PAYLOAD_TRAILER}"
            )));
        }
    })
}

fn payload_mode(
    content: ContentSha256,
    key: SigningKey,
    amz_date: String,
    scope: String,
    signature: &[u8; 32],
) -> PayloadMode {
    match content {
        ContentSha256::Hex(h) => PayloadMode::Sha256(h),
        ContentSha256::Unsigned => PayloadMode::Unsigned,
        ContentSha256::StreamingSigned { trailer } => PayloadMode::StreamingSigned {
            ctx: ChunkSigningContext { signing_key: key, amz_date, scope, seed_signature: hex::encode(signature) },
            trailer,
        },
        ContentSha256::StreamingUnsignedTrailer => PayloadMode::StreamingUnsignedTrailer,
    }
}

/// The canonical headers of `signed`; a signed header the request lacks
/// makes the signature one we cannot match.
fn canonical_headers(headers: &http::HeaderMap, signed: &[&str], access_key_id: &str) -> Result<Vec<u8>, AuthError> {
    crate::sigv4::canonical_headers(headers, signed).map_err(|missing| AuthError::SignatureDoesNotMatch {
        access_key_id: Some(access_key_id.to_owned()),
        reason: missing.to_string(),
    })
}

/// Checks the client's signature against the canonical request with the
/// raw path as sent (`request.path`), then (if different) with the strictly
/// re-encoded path. Returns the matching signature.
fn verify_candidates(
    key: &SigningKey,
    amz_date: &str,
    scope: &str,
    request: &CanonicalRequest<'_>,
    client_signature: &[u8; 32],
) -> Option<[u8; 32]> {
    let raw = if request.path.is_empty() { "/" } else { request.path };
    let reencoded = uri_encode_path(raw);
    let candidates = std::iter::once(raw).chain((reencoded != raw).then_some(reencoded.as_str()));
    for path in candidates {
        let computed = key.sign_request(amz_date, scope, &CanonicalRequest { path, ..*request });
        if bool::from(computed.ct_eq(client_signature)) {
            return Some(computed);
        }
    }
    None
}

fn access_denied(access_key_id: Option<&str>, reason: impl Into<String>) -> AuthError {
    AuthError::AccessDenied { access_key_id: access_key_id.map(str::to_owned), reason: reason.into() }
}

fn header_malformed(access_key_id: Option<&str>, reason: impl Into<String>) -> AuthError {
    Source::Header.malformed(access_key_id, reason)
}

fn query_malformed(access_key_id: Option<&str>, reason: impl Into<String>) -> AuthError {
    Source::Query.malformed(access_key_id, reason)
}

fn invalid_argument(reason: impl Into<String>) -> AuthError {
    AuthError::InvalidArgument { access_key_id: None, reason: reason.into() }
}

fn signature_mismatch(access_key_id: &str) -> AuthError {
    AuthError::SignatureDoesNotMatch {
        access_key_id: Some(access_key_id.to_owned()),
        reason: "the request signature we calculated does not match the signature you provided; \
                 check your secret access key and signing method"
            .to_owned(),
    }
}

/// The canonical request as rebuilt from the wire, whichever form signed it.
#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sigv4::http_request::SignableBody;
    use proptest::prelude::*;

    use super::*;
    use crate::auth::fixtures::{AKID, SECRET, check, code, header_signed, keys, sdk_sign, t0, url};
    use crate::auth::{RequestParts, authenticate};

    #[test]
    fn keys_with_spaces_unicode_plus_and_equals() {
        for key in
            ["my key.txt", "ünïcødé/ファイル 名", "a+b=c&d", "dir//x/./../y", "~tilde_(1)!*'", "%41 literal percent"]
        {
            let path = format!("/bucket/{}", uri_encode(key, false));
            let req = header_signed(&path, SignableBody::UnsignedPayload);
            assert_eq!(code(check(&req, t0())), "ok", "{key}");
        }
    }

    #[test]
    fn queries_with_repeated_and_empty_parameters() {
        for query in [
            "?b=2&a=1&a=0&empty=&flag",
            "?prefix=dir%2Fsub%20dir&delimiter=%2F&list-type=2&x-id=ListObjectsV2",
            "?response-content-disposition=attachment%3B%20filename%3D%22%C3%A9.txt%22&versionId=v%2B1",
            "?uploads",
            "?z=%7E&Z=~&a.b=_-",
        ] {
            let req = header_signed(&format!("/bucket/key{query}"), SignableBody::UnsignedPayload);
            assert_eq!(code(check(&req, t0())), "ok", "{query}");
        }
    }

    #[test]
    fn a_raw_plus_in_the_query_is_a_space() {
        // The SDK reads "a+b" form-urlencoded, as S3 does, and signs "a%20b".
        let req = header_signed("/bucket/key?prefix=a+b", SignableBody::UnsignedPayload);
        assert_eq!(code(check(&req, t0())), "ok");
    }

    #[test]
    fn a_path_sent_less_encoded_than_signed_is_accepted() {
        let req = header_signed("/bucket/a%3Db%40c", SignableBody::UnsignedPayload);
        let mut parts = req.parts();
        parts.raw_path = "/bucket/a=b@c";
        assert_eq!(code(authenticate(&parts, &keys(AKID, SECRET), t0())), "ok");
        parts.raw_path = "/bucket/a=b@d";
        assert_eq!(code(authenticate(&parts, &keys(AKID, SECRET), t0())), "SignatureDoesNotMatch");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_key_and_query_signed_by_the_sdk_verifies(
            key in "\\PC{0,24}",
            params in proptest::collection::vec(("[a-zA-Z0-9 ._~+=&%/-]{1,6}", proptest::option::of("\\PC{0,8}")), 0..4),
            presign in any::<bool>(),
        ) {
            let mut path_and_query = format!("/bucket/{}", uri_encode(&key, false));
            for (i, (name, value)) in params.iter().enumerate() {
                path_and_query.push(if i == 0 { '?' } else { '&' });
                path_and_query.push_str(&uri_encode(name, true));
                if let Some(value) = value {
                    path_and_query.push('=');
                    path_and_query.push_str(&uri_encode(value, true));
                }
            }
            let req = sdk_sign(
                "GET",
                &url(&path_and_query),
                &[],
                SignableBody::UnsignedPayload,
                presign.then_some(Duration::from_mins(1)),
                SECRET,
                t0(),
            );
            prop_assert_eq!(code(check(&req, t0())), "ok");
            let other_path = format!("{}x", req.request.uri().path());
            let parts = RequestParts { raw_path: &other_path, ..req.parts() };
            prop_assert_eq!(code(authenticate(&parts, &keys(AKID, SECRET), t0())), "SignatureDoesNotMatch");
        }
    }
}
