//! Verifying a client's AWS Signature Version 4 (V4) for S3, signed in the
//! `Authorization` header (`AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…,
//! Signature=…`) or by a presigned URL (`X-Amz-Algorithm`,
//! `X-Amz-Credential`, … in the query). Which of the two a request uses, if
//! either, is for [`super::scheme`] to decide.
//!
//! The canonical request is rebuilt from the request as it arrived, the way
//! S3 does it: the raw path as sent (S3 neither normalises nor double-encodes
//! it), every query parameter but `X-Amz-Signature` decoded and re-encoded
//! with the strict V4 set and sorted, the signed headers with their values
//! trimmed and inner runs of spaces collapsed. If the raw path was not
//! encoded the way V4 encodes (e.g. a client sent `=` unescaped), the
//! strictly re-encoded path is tried as well; both name the same object.
//! The algorithm (canonical forms, signing key, string to sign) is
//! [`crate::sigv4`]'s; this module decides what to accept, and which S3
//! error to answer.
//!
//! Promises: the region is the one in the credential scope (any region is
//! accepted), the service must be `s3`, `host` and `x-amz-content-sha256`
//! (header auth) must be signed, the request time must be within 15 minutes
//! of ours, a presigned URL lives at most a week, and the signature is
//! compared in constant time. For the streaming payload modes the signing key
//! and seed signature come back in a [`ChunkSigningContext`] so that
//! [`super::chunked`] can verify each chunk.

use std::time::SystemTime;

use http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::auth::error::AuthError;
use crate::auth::{
    AuthMethod, Authenticated, MAX_CLOCK_SKEW_SECS, MAX_PRESIGNED_EXPIRES_SECS, PayloadMode, RequestParts,
    SecretLookup, SignedHeaders, check_skew, lookup_key,
};
use crate::sigv4::{
    ALGORITHM, CanonicalRequest, SCOPE_TERMINATOR, STREAMING_SIGNED_PAYLOAD, STREAMING_SIGNED_PAYLOAD_TRAILER,
    STREAMING_UNSIGNED_PAYLOAD_TRAILER, UNSIGNED_PAYLOAD, canonical_query, format_amz_date, parse_amz_date,
    parse_http_date, percent_decode, query_pairs, scope, unix_seconds, uri_encode_path,
};

// Where other modules found these when this module held all of V4.
pub use crate::auth::{QueryAuth, query_auth_kind};
pub use crate::sigv4::{SigningKey, uri_encode};

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

struct HeaderAuth<'a> {
    credential: Credential<'a>,
    signed_headers_raw: &'a str,
    signed_headers: Vec<&'a str>,
    signature: [u8; 32],
}

/// Authenticates a request whose `Authorization` header, `authorization`,
/// starts with `AWS4-HMAC-SHA256`.
pub(crate) fn verify_header(
    parts: &RequestParts<'_>,
    authorization: &str,
    lookup: &dyn SecretLookup,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    let auth = parse_authorization(authorization)?;
    let akid = auth.credential.access_key_id;
    let (amz_date, request_time) = request_date(parts.headers, akid)?;
    if amz_date.get(..8) != Some(auth.credential.date) {
        return Err(header_malformed(
            Some(akid),
            format!("the credential date {} is not the date of the request time {amz_date}", auth.credential.date),
        ));
    }
    let content_sha256 = parts
        .headers
        .get("x-amz-content-sha256")
        .ok_or_else(|| invalid_request(akid, "missing required header for this request: x-amz-content-sha256"))?;
    let content_sha256 = content_sha256
        .to_str()
        .map_err(|_| invalid_argument("x-amz-content-sha256 is not ASCII").with_access_key_id(akid))?
        .trim();
    let content = classify_content_sha256(content_sha256).map_err(|e| e.with_access_key_id(akid))?;
    // Unsigned, the payload mode could be swapped (say, chunk-signed to
    // UNSIGNED-PAYLOAD) without breaking the signature.
    if !auth.signed_headers.contains(&"x-amz-content-sha256") {
        return Err(header_malformed(Some(akid), "x-amz-content-sha256 must be among the signed headers"));
    }

    let (principal, secret) = lookup_key(lookup, akid)?;
    check_skew(akid, request_time, now)?;

    let canonical_headers = canonical_headers(parts.headers, &auth.signed_headers, akid)?;
    let canonical_query = canonical_query(parts.raw_query, false);
    let key = auth.credential.signing_key(secret.expose());
    let scope = auth.credential.scope();
    let signature = verify_candidates(
        &key,
        &amz_date,
        &scope,
        &CanonicalRequest {
            method: parts.method,
            path: parts.raw_path,
            query: &canonical_query,
            headers: &canonical_headers,
            signed_headers: auth.signed_headers_raw,
            payload_hash: content_sha256,
        },
        &auth.signature,
    )
    .ok_or_else(|| signature_mismatch(akid))?;

    Ok(Authenticated {
        principal,
        access_key_id: akid.to_owned(),
        method: AuthMethod::SigV4Header,
        payload: payload_mode(content, key, amz_date, scope, &signature),
        signed_headers: SignedHeaders::Listed(auth.signed_headers_raw.to_owned()),
    })
}

fn parse_authorization(value: &str) -> Result<HeaderAuth<'_>, AuthError> {
    let rest = value.get(ALGORITHM.len()..).unwrap_or_default();
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    // AWS accepts the three components in any order, separated by commas
    // and/or spaces; their values never contain either.
    for component in rest.split(|c: char| c == ',' || c.is_ascii_whitespace()).filter(|c| !c.is_empty()) {
        let (slot, value) = match component.split_once('=') {
            Some(("Credential", v)) => (&mut credential, v),
            Some(("SignedHeaders", v)) => (&mut signed_headers, v),
            Some(("Signature", v)) => (&mut signature, v),
            _ => {
                return Err(header_malformed(
                    None,
                    format!("unexpected component {component:?}; expected Credential=, SignedHeaders= and Signature="),
                ));
            }
        };
        if slot.replace(value).is_some() {
            return Err(header_malformed(None, format!("the component {component:?} appears twice")));
        }
    }
    let Some(credential) = credential else {
        return Err(header_malformed(None, "the Credential component is missing"));
    };
    let credential = parse_credential(credential, Source::Header)?;
    let akid = credential.access_key_id;
    let Some(signed_headers_raw) = signed_headers else {
        return Err(header_malformed(Some(akid), "the SignedHeaders component is missing"));
    };
    let Some(signature) = signature else {
        return Err(header_malformed(Some(akid), "the Signature component is missing"));
    };
    let signed_headers = parse_signed_headers(signed_headers_raw, akid, Source::Header)?;
    let signature = parse_signature(signature, akid)?;
    Ok(HeaderAuth { credential, signed_headers_raw, signed_headers, signature })
}

/// The request time from `x-amz-date`, else `Date`, as (`YYYYMMDDTHHMMSSZ`, Unix seconds).
fn request_date(headers: &HeaderMap, access_key_id: &str) -> Result<(String, i64), AuthError> {
    let invalid =
        || access_denied(Some(access_key_id), "AWS authentication requires a valid Date or x-amz-date header");
    if let Some(v) = headers.get("x-amz-date") {
        let v = v.to_str().map_err(|_| invalid())?.trim();
        let t = parse_amz_date(v).ok_or_else(invalid)?;
        return Ok((v.to_owned(), t));
    }
    let v = headers.get(http::header::DATE).ok_or_else(invalid)?.to_str().map_err(|_| invalid())?.trim();
    match parse_amz_date(v) {
        Some(t) => Ok((v.to_owned(), t)),
        None => {
            let t = parse_http_date(v).ok_or_else(invalid)?;
            Ok((format_amz_date(t), t))
        }
    }
}

fn invalid_request(access_key_id: &str, reason: impl Into<String>) -> AuthError {
    AuthError::InvalidRequest { access_key_id: Some(access_key_id.to_owned()), reason: reason.into() }
}

pub(crate) fn verify_presigned(
    parts: &RequestParts<'_>,
    lookup: &dyn SecretLookup,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    const NAMES: [&str; 7] = [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Date",
        "X-Amz-Expires",
        "X-Amz-SignedHeaders",
        "X-Amz-Signature",
        "X-Amz-Content-Sha256",
    ];
    let raw_query = parts.raw_query.unwrap_or_default();
    let mut params: [Option<String>; 7] = Default::default();
    for (name, value) in query_pairs(raw_query) {
        let name = percent_decode(name, true);
        if let Some(i) = NAMES.iter().position(|n| n.as_bytes() == name.as_slice()) {
            let value = String::from_utf8(percent_decode(value.unwrap_or_default(), true))
                .map_err(|_| query_malformed(None, format!("the query parameter {} is not UTF-8", NAMES[i])))?;
            if params[i].replace(value).is_some() {
                return Err(query_malformed(None, format!("the query parameter {} appears twice", NAMES[i])));
            }
        }
    }
    let [algorithm, credential, date, expires, signed_headers, signature, content_sha256] = params;
    let (Some(algorithm), Some(credential), Some(date), Some(expires), Some(signed_headers), Some(signature)) =
        (algorithm, credential, date, expires, signed_headers, signature)
    else {
        return Err(query_malformed(
            None,
            "query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, \
             X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders and X-Amz-Expires parameters",
        ));
    };
    if algorithm != ALGORITHM {
        return Err(query_malformed(None, format!("X-Amz-Algorithm {algorithm:?} is not supported; use {ALGORITHM}")));
    }
    let credential = parse_credential(&credential, Source::Query)?;
    let akid = credential.access_key_id;
    let request_time = parse_amz_date(&date).ok_or_else(|| {
        query_malformed(Some(akid), format!("X-Amz-Date {date:?} is not in the ISO 8601 basic format YYYYMMDDTHHMMSSZ"))
    })?;
    if date.get(..8) != Some(credential.date) {
        return Err(query_malformed(
            Some(akid),
            format!("the credential date {} is not the date of X-Amz-Date {date}", credential.date),
        ));
    }
    let expires: u64 = match expires.parse() {
        Ok(n) if expires.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(query_malformed(Some(akid), format!("X-Amz-Expires {expires:?} is not a number of seconds"))),
    };
    if expires > MAX_PRESIGNED_EXPIRES_SECS {
        return Err(query_malformed(
            Some(akid),
            format!("X-Amz-Expires must be at most {MAX_PRESIGNED_EXPIRES_SECS} seconds (one week), not {expires}"),
        ));
    }
    let signed_header_names = parse_signed_headers(&signed_headers, akid, Source::Query)?;
    let client_signature = parse_signature(&signature, akid)?;
    let (payload_hash, content) = match &content_sha256 {
        Some(v) => (v.as_str(), classify_content_sha256(v).map_err(|e| e.with_access_key_id(akid))?),
        None => (UNSIGNED_PAYLOAD, ContentSha256::Unsigned),
    };

    let (principal, secret) = lookup_key(lookup, akid)?;
    let now_secs = unix_seconds(now);
    if request_time > now_secs.saturating_add(MAX_CLOCK_SKEW_SECS) {
        return Err(access_denied(Some(akid), format!("the presigned URL is not valid yet (X-Amz-Date {date})")));
    }
    if now_secs > request_time.saturating_add(expires.cast_signed()) {
        return Err(access_denied(
            Some(akid),
            format!("request has expired: the presigned URL was valid from {date} for {expires} seconds"),
        ));
    }

    let canonical_headers = canonical_headers(parts.headers, &signed_header_names, akid)?;
    let canonical_query = canonical_query(parts.raw_query, true);
    let key = credential.signing_key(secret.expose());
    let scope = credential.scope();
    let computed = verify_candidates(
        &key,
        &date,
        &scope,
        &CanonicalRequest {
            method: parts.method,
            path: parts.raw_path,
            query: &canonical_query,
            headers: &canonical_headers,
            signed_headers: &signed_headers,
            payload_hash,
        },
        &client_signature,
    )
    .ok_or_else(|| signature_mismatch(akid))?;

    Ok(Authenticated {
        principal,
        access_key_id: akid.to_owned(),
        method: AuthMethod::SigV4Query,
        payload: payload_mode(content, key, date, scope, &computed),
        signed_headers: SignedHeaders::Listed(signed_headers),
    })
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sigv4::http_request::SignableBody;
    use http::HeaderValue;
    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::auth::authenticate;
    use crate::auth::fixtures::{
        AKID, ClientRequest, SECRET, at_unix, check, code, header_signed, keys, sdk_sign, t0, url,
    };
    use crate::sigv4::EMPTY_SHA256;

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

    #[test]
    fn header_auth_with_body_hash() {
        let req = sdk_sign("PUT", &url("/bucket/key"), &[], SignableBody::Bytes(b"hello"), None, SECRET, t0());
        let auth = check(&req, t0()).unwrap();
        assert_eq!(auth.principal, "alice");
        assert_eq!(auth.access_key_id, AKID);
        assert_eq!(auth.method, AuthMethod::SigV4Header);
        let expected = hex::encode(Sha256::digest(b"hello"));
        assert!(matches!(auth.payload, PayloadMode::Sha256(h) if h == expected));
    }

    #[test]
    fn header_auth_unsigned_payload() {
        let req = header_signed("/bucket/key", SignableBody::UnsignedPayload);
        assert_eq!(req.request.headers()["x-amz-content-sha256"], UNSIGNED_PAYLOAD);
        assert!(matches!(check(&req, t0()).unwrap().payload, PayloadMode::Unsigned));
    }

    #[test]
    fn streaming_modes_return_the_chunk_context() {
        let req = header_signed("/bucket/key", SignableBody::StreamingSignedPayloadTrailer);
        let auth = check(&req, t0()).unwrap();
        let PayloadMode::StreamingSigned { ctx, trailer: true } = auth.payload else { panic!("{:?}", auth.payload) };
        assert_eq!(ctx.seed_signature, req.signature);
        assert_eq!(ctx.amz_date, "20261127T100000Z");
        assert_eq!(ctx.scope, "20261127/eu-central-1/s3/aws4_request");
        assert_eq!(ctx.signing_key.expose(), SigningKey::derive(SECRET, "20261127", "eu-central-1", "s3").expose());
        assert!(!format!("{ctx:?}").contains(&hex::encode(ctx.signing_key.expose())));

        let req = header_signed("/bucket/key", SignableBody::Precomputed(STREAMING_SIGNED_PAYLOAD.to_owned()));
        assert!(matches!(check(&req, t0()).unwrap().payload, PayloadMode::StreamingSigned { trailer: false, .. }));
        let req = header_signed("/bucket/key", SignableBody::StreamingUnsignedPayloadTrailer);
        assert!(matches!(check(&req, t0()).unwrap().payload, PayloadMode::StreamingUnsignedTrailer));
    }

    #[test]
    fn wrong_secret_unknown_key_and_skew() {
        let req = header_signed("/bucket/key", SignableBody::UnsignedPayload);
        let err = authenticate(&req.parts(), &keys(AKID, "another secret"), t0()).unwrap_err();
        assert_eq!((err.code().as_str(), err.status().as_u16()), ("SignatureDoesNotMatch", 403));
        assert_eq!(err.access_key_id(), Some(AKID));
        assert!(!err.to_string().contains(&req.signature[..16]));

        let err = authenticate(&req.parts(), &keys("EGRSOTHERKEY000000", SECRET), t0()).unwrap_err();
        assert_eq!((err.code().as_str(), err.access_key_id()), ("InvalidAccessKeyId", Some(AKID)));

        assert_eq!(code(check(&req, t0() + Duration::from_mins(14))), "ok");
        assert_eq!(code(check(&req, t0() - Duration::from_mins(14))), "ok");
        let skewed = check(&req, t0() + Duration::from_mins(16)).unwrap_err();
        assert_eq!(skewed.code(), "RequestTimeTooSkewed");
        assert!(skewed.to_string().contains("20261127T100000Z"), "{skewed}");
        assert_eq!(code(check(&req, t0() - Duration::from_mins(16))), "RequestTimeTooSkewed");
    }

    #[test]
    fn tampered_header_path_query_or_method() {
        let req = header_signed("/bucket/key?part=1", SignableBody::UnsignedPayload);
        let keys = keys(AKID, SECRET);
        let mut headers = req.request.headers().clone();
        headers.insert("range", HeaderValue::from_static("bytes=0-99"));
        let parts = RequestParts { headers: &headers, ..req.parts() };
        assert_eq!(code(authenticate(&parts, &keys, t0())), "SignatureDoesNotMatch");
        for parts in [
            RequestParts { raw_path: "/bucket/kez", ..req.parts() },
            RequestParts { raw_query: Some("part=2"), ..req.parts() },
            RequestParts { raw_query: None, ..req.parts() },
            RequestParts { method: "PUT", ..req.parts() },
        ] {
            assert_eq!(code(authenticate(&parts, &keys, t0())), "SignatureDoesNotMatch", "{parts:?}");
        }
        // An unsigned header may change (proxies add some).
        let mut headers = req.request.headers().clone();
        headers.insert("x-forwarded-for", HeaderValue::from_static("10.0.0.1"));
        let parts = RequestParts { headers: &headers, ..req.parts() };
        assert_eq!(code(authenticate(&parts, &keys, t0())), "ok");
    }

    /// The Authorization header with its three components rearranged.
    fn with_authorization(req: &ClientRequest, f: impl Fn(&str, &str, &str) -> String) -> HeaderMap {
        let value = req.request.headers()["authorization"].to_str().unwrap();
        let rest = value.strip_prefix("AWS4-HMAC-SHA256 ").unwrap();
        let parts: Vec<&str> = rest.split(", ").collect();
        let mut headers = req.request.headers().clone();
        headers.insert("authorization", HeaderValue::from_str(&f(parts[0], parts[1], parts[2])).unwrap());
        headers
    }

    #[test]
    fn authorization_header_spacing_and_order_are_lenient() {
        let req = header_signed("/bucket/key", SignableBody::UnsignedPayload);
        let keys = keys(AKID, SECRET);
        let forms: [fn(&str, &str, &str) -> String; 4] = [
            |c, h, s| format!("AWS4-HMAC-SHA256 {c},{h},{s}"),
            |c, h, s| format!("AWS4-HMAC-SHA256   {s},  {c} ,{h}"),
            |c, h, s| format!("AWS4-HMAC-SHA256 {h} {c} {s}"),
            |c, h, s| {
                format!("AWS4-HMAC-SHA256 {c}, {h}, {}", s.to_ascii_uppercase().replace("SIGNATURE", "Signature"))
            },
        ];
        for form in forms {
            let headers = with_authorization(&req, form);
            let parts = RequestParts { headers: &headers, ..req.parts() };
            assert_eq!(code(authenticate(&parts, &keys, t0())), "ok", "{:?}", headers["authorization"]);
        }
        let malformed: [fn(&str, &str, &str) -> String; 4] = [
            |c, h, _| format!("AWS4-HMAC-SHA256 {c}, {h}"),
            |c, h, s| format!("AWS4-HMAC-SHA256 {c}, {h}, {s}, {c}"),
            |c, h, s| format!("AWS4-HMAC-SHA256 {c}, {h}, {s}, Extra=1"),
            |c, h, s| format!("AWS4-HMAC-SHA256 {}, {h}, {s}", c.replace("/s3/", "/ec2/")),
        ];
        for form in malformed {
            let headers = with_authorization(&req, form);
            let parts = RequestParts { headers: &headers, ..req.parts() };
            assert_eq!(
                code(authenticate(&parts, &keys, t0())),
                "AuthorizationHeaderMalformed",
                "{:?}",
                headers["authorization"]
            );
        }
    }

    #[test]
    fn host_and_content_sha256_must_be_signed() {
        let req = header_signed("/bucket/key", SignableBody::UnsignedPayload);
        let keys = keys(AKID, SECRET);
        for (from, to) in [("host;", ""), (";x-amz-content-sha256", "")] {
            let headers =
                with_authorization(&req, |c, h, s| format!("AWS4-HMAC-SHA256 {c}, {}, {s}", h.replace(from, to)));
            let parts = RequestParts { headers: &headers, ..req.parts() };
            assert_eq!(code(authenticate(&parts, &keys, t0())), "AuthorizationHeaderMalformed", "{from}");
        }
    }

    #[test]
    fn content_sha256_header_is_required_and_checked() {
        let req = header_signed("/bucket/key", SignableBody::UnsignedPayload);
        let keys = keys(AKID, SECRET);
        let mut headers = req.request.headers().clone();
        headers.remove("x-amz-content-sha256");
        let parts = RequestParts { headers: &headers, ..req.parts() };
        assert_eq!(code(authenticate(&parts, &keys, t0())), "InvalidRequest");
        headers.insert("x-amz-content-sha256", HeaderValue::from_static("not-a-hash"));
        let parts = RequestParts { headers: &headers, ..req.parts() };
        let err = authenticate(&parts, &keys, t0()).unwrap_err();
        assert_eq!((err.code().as_str(), err.access_key_id()), ("InvalidArgument", Some(AKID)));
    }

    #[test]
    fn credential_date_must_match_the_request_date() {
        let req = header_signed("/bucket/key", SignableBody::UnsignedPayload);
        let headers = with_authorization(&req, |c, h, s| {
            format!("AWS4-HMAC-SHA256 {}, {h}, {s}", c.replace("20261127", "20261126"))
        });
        let parts = RequestParts { headers: &headers, ..req.parts() };
        assert_eq!(code(authenticate(&parts, &keys(AKID, SECRET), t0())), "AuthorizationHeaderMalformed");
    }

    #[test]
    fn repeated_header_values_are_joined() {
        let req = sdk_sign(
            "GET",
            &url("/bucket/key"),
            &[("x-amz-meta-tag", "a"), ("x-amz-meta-tag", "  b   c ")],
            SignableBody::UnsignedPayload,
            None,
            SECRET,
            t0(),
        );
        assert_eq!(code(check(&req, t0())), "ok");
    }

    /// AWS S3 documentation, "Signature Calculations for the Authorization
    /// Header", Example: GET Object (the first 10 bytes of test.txt).
    #[test]
    fn aws_documentation_get_object_example() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("examplebucket.s3.amazonaws.com"));
        headers.insert("range", HeaderValue::from_static("bytes=0-9"));
        headers.insert("x-amz-content-sha256", HeaderValue::from_static(EMPTY_SHA256));
        headers.insert("x-amz-date", HeaderValue::from_static("20130524T000000Z"));
        headers.insert(
            "authorization",
            HeaderValue::from_static(
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
                 SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,\
                 Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
            ),
        );
        let parts = RequestParts { method: "GET", raw_path: "/test.txt", raw_query: None, headers: &headers };
        let lookup = keys("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let now = at_unix(1_369_353_600);
        let auth = authenticate(&parts, &lookup, now).unwrap();
        assert!(matches!(auth.payload, PayloadMode::Sha256(h) if h == EMPTY_SHA256));
        assert_eq!(code(authenticate(&parts, &keys("AKIAIOSFODNN7EXAMPLE", "wrong"), now)), "SignatureDoesNotMatch");
    }

    /// The other examples of the same AWS documentation page.
    #[test]
    fn aws_documentation_put_list_and_lifecycle_examples() {
        // (method, raw path, raw query, headers besides host and x-amz-date, signed headers, signature)
        type Case<'a> = (&'a str, &'a str, Option<&'a str>, &'a [(&'a str, &'a str)], &'a str, &'a str);
        let lookup = keys("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let now = at_unix(1_369_353_600);
        let credential = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request";
        let cases: [Case<'_>; 3] = [
            (
                "PUT",
                "/test%24file.text",
                None,
                &[
                    ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                    ("x-amz-content-sha256", "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"),
                ],
                "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
                "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
            ),
            (
                "GET",
                "/",
                Some("lifecycle"),
                &[("x-amz-content-sha256", EMPTY_SHA256)],
                "host;x-amz-content-sha256;x-amz-date",
                "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
            ),
            (
                "GET",
                "/",
                Some("max-keys=2&prefix=J"),
                &[("x-amz-content-sha256", EMPTY_SHA256)],
                "host;x-amz-content-sha256;x-amz-date",
                "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
            ),
        ];
        for (method, raw_path, raw_query, extra, signed_headers, signature) in cases {
            let mut headers = HeaderMap::new();
            headers.insert("host", HeaderValue::from_static("examplebucket.s3.amazonaws.com"));
            headers.insert("x-amz-date", HeaderValue::from_static("20130524T000000Z"));
            for (name, value) in extra {
                headers.insert(*name, HeaderValue::from_static(value));
            }
            let authorization = format!("{credential},SignedHeaders={signed_headers},Signature={signature}");
            headers.insert("authorization", HeaderValue::from_str(&authorization).unwrap());
            let parts = RequestParts { method, raw_path, raw_query, headers: &headers };
            assert_eq!(code(authenticate(&parts, &lookup, now)), "ok", "{method} {raw_path} {raw_query:?}");
        }
    }

    #[test]
    fn presigned_url_within_its_lifetime() {
        let req = sdk_sign(
            "GET",
            &url("/bucket/my%20key?versionId=3&response-content-type=text%2Fplain"),
            &[],
            SignableBody::UnsignedPayload,
            Some(Duration::from_hours(1)),
            SECRET,
            t0(),
        );
        assert!(req.request.uri().query().unwrap().contains("X-Amz-Signature="));
        let auth = check(&req, t0() + Duration::from_secs(3599)).unwrap();
        assert_eq!(auth.method, AuthMethod::SigV4Query);
        assert!(matches!(auth.payload, PayloadMode::Unsigned));
        // Clients a little ahead of us may use a URL at once.
        assert_eq!(code(check(&req, t0() - Duration::from_mins(14))), "ok");

        let expired = check(&req, t0() + Duration::from_secs(3601)).unwrap_err();
        assert_eq!(expired.code(), "AccessDenied");
        assert!(expired.to_string().contains("expired"), "{expired}");
        assert_eq!(expired.access_key_id(), Some(AKID));
        assert_eq!(code(check(&req, t0() - Duration::from_mins(16))), "AccessDenied");
    }

    #[test]
    fn presigned_url_tampering_is_detected() {
        let req = sdk_sign(
            "GET",
            &url("/bucket/key?versionId=3"),
            &[],
            SignableBody::UnsignedPayload,
            Some(Duration::from_mins(10)),
            SECRET,
            t0(),
        );
        let query = req.request.uri().query().unwrap();
        let keys = keys(AKID, SECRET);
        for tampered in
            [query.replace("versionId=3", "versionId=4"), query.replace("X-Amz-Expires=600", "X-Amz-Expires=6000")]
        {
            let parts = RequestParts { raw_query: Some(&tampered), ..req.parts() };
            assert_eq!(code(authenticate(&parts, &keys, t0())), "SignatureDoesNotMatch", "{tampered}");
        }
        let parts = RequestParts { raw_path: "/bucket/other", ..req.parts() };
        assert_eq!(code(authenticate(&parts, &keys, t0())), "SignatureDoesNotMatch");
        let parts = RequestParts { method: "DELETE", ..req.parts() };
        assert_eq!(code(authenticate(&parts, &keys, t0())), "SignatureDoesNotMatch");
        let week = query.replace("X-Amz-Expires=600", "X-Amz-Expires=604801");
        let parts = RequestParts { raw_query: Some(&week), ..req.parts() };
        assert_eq!(code(authenticate(&parts, &keys, t0())), "AuthorizationQueryParametersError");
    }

    #[test]
    fn presigned_with_a_content_hash_in_the_query() {
        let body_hash = hex::encode(Sha256::digest(b"data"));
        let req = sdk_sign(
            "PUT",
            &url(&format!("/bucket/key?X-Amz-Content-Sha256={body_hash}")),
            &[],
            SignableBody::Precomputed(body_hash.clone()),
            Some(Duration::from_mins(1)),
            SECRET,
            t0(),
        );
        assert!(matches!(check(&req, t0()).unwrap().payload, PayloadMode::Sha256(h) if h == body_hash));
    }

    /// AWS S3 documentation, "Authenticating Requests: Using Query
    /// Parameters", Example: GET Object.
    #[test]
    fn aws_documentation_presigned_example() {
        let lookup = keys("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let now = at_unix(1_369_353_600);
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("examplebucket.s3.amazonaws.com"));
        let query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3\
                     %2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host\
                     &X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";
        let parts = RequestParts { method: "GET", raw_path: "/test.txt", raw_query: Some(query), headers: &headers };
        let auth = authenticate(&parts, &lookup, now + Duration::from_hours(23)).unwrap();
        assert_eq!(auth.method, AuthMethod::SigV4Query);
        assert_eq!(code(authenticate(&parts, &lookup, now + Duration::from_hours(25))), "AccessDenied");
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
