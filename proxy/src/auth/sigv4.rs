//! Server-side AWS Signature Version 4 (V4) for S3, and the entry point that picks
//! the scheme a request uses.
//!
//! [`authenticate`] accepts a request signed in the `Authorization` header
//! (`AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`), by a
//! presigned URL (`X-Amz-Algorithm`, `X-Amz-Credential`, … in the query), or
//! with signature version 2 (handed to [`super::sigv2`]); anything else is refused.
//!
//! The canonical request is rebuilt from the request as it arrived, the way
//! S3 does it: the raw path as sent (S3 neither normalises nor double-encodes
//! it), every query parameter but `X-Amz-Signature` decoded and re-encoded
//! with the strict V4 set and sorted, the signed headers with their values
//! trimmed and inner runs of spaces collapsed. If the raw path was not
//! encoded the way V4 encodes (e.g. a client sent `=` unescaped), the
//! strictly re-encoded path is tried as well; both name the same object.
//!
//! Promises: the region is the one in the credential scope (any region is
//! accepted), the service must be `s3`, `host` and `x-amz-content-sha256`
//! (header auth) must be signed, the request time must be within 15 minutes
//! of ours, a presigned URL lives at most a week, and the signature is
//! compared in constant time. For the streaming payload modes the signing key
//! and seed signature come back in a [`ChunkSigningContext`] so that
//! [`super::chunked`] can verify each chunk.

use std::fmt;
use std::time::SystemTime;

use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::auth::error::AuthError;
use crate::auth::{
    AuthMethod, Authenticated, MAX_CLOCK_SKEW_SECS, PayloadMode, RequestParts, SecretLookup, SignedHeaders,
    format_amz_date, parse_amz_date, parse_http_date, percent_decode, query_pairs, sigv2, unix_seconds,
};

type HmacSha256 = Hmac<Sha256>;

/// The only V4 algorithm we accept (the ECDSA variant V4A is not supported).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
pub const STREAMING_SIGNED_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
pub const STREAMING_SIGNED_PAYLOAD_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
pub const STREAMING_UNSIGNED_PAYLOAD_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// Hex SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// Longest lifetime of a presigned URL (seven days), as S3 enforces.
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;

/// A derived V4 signing key: wiped when dropped, never printed.
#[derive(Clone)]
pub struct SigningKey([u8; 32]);

impl SigningKey {
    /// `HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")`.
    #[must_use]
    pub fn derive(secret: &str, date: &str, region: &str, service: &str) -> SigningKey {
        let mut initial = Vec::with_capacity(4 + secret.len());
        initial.extend_from_slice(b"AWS4");
        initial.extend_from_slice(secret.as_bytes());
        let k_date = SigningKey(hmac_sha256(&initial, date.as_bytes()));
        wipe(&mut initial);
        let k_region = k_date.hmac(region.as_bytes());
        let k_service = k_region.hmac(service.as_bytes());
        k_service.hmac(b"aws4_request")
    }

    /// HMAC-SHA256 of `message` under this key.
    #[must_use]
    pub fn hmac(&self, message: &[u8]) -> SigningKey {
        SigningKey(hmac_sha256(&self.0, message))
    }

    /// The key bytes; every call site is a place a key could leak.
    #[must_use]
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl Drop for SigningKey {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

/// Overwrites key material (volatile writes the compiler cannot drop).
fn wipe(buf: &mut [u8]) {
    zeroize::Zeroize::zeroize(buf);
}

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

/// The V4 signing key as bytes (see [`SigningKey::derive`] for a wrapper that wipes itself).
#[must_use]
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    *SigningKey::derive(secret, date, region, service).expose()
}

/// V4 URI encoding: every byte but `A-Z a-z 0-9 - _ . ~` becomes `%XX`
/// (upper-case hex); `/` is kept unless `encode_slash`.
#[must_use]
pub fn uri_encode(s: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    uri_encode_into(s.as_bytes(), encode_slash, &mut out);
    out
}

fn uri_encode_into(bytes: &[u8], encode_slash: bool, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (b == b'/' && !encode_slash) {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
}

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
                return Err(header_malformed(None, "the Authorization header is not ASCII"));
            };
            if value == ALGORITHM || starts_with_word(value, ALGORITHM) {
                verify_header(parts, value, lookup, now)
            } else if starts_with_word(value, "AWS") {
                sigv2::authenticate_header(parts, value, bucket_from_host, lookup, now)
            } else if starts_with_word(value, "AWS4-ECDSA-P256-SHA256") {
                Err(access_denied(None, "SigV4A (AWS4-ECDSA-P256-SHA256) is not supported; sign with AWS4-HMAC-SHA256"))
            } else {
                Err(access_denied(None, "unsupported Authorization scheme; sign with AWS Signature Version 4"))
            }
        }
        (None, QueryAuth::SigV4) => verify_presigned(parts, lookup, now),
        (None, QueryAuth::SigV2) => sigv2::authenticate_query(parts, bucket_from_host, lookup, now),
        (None, QueryAuth::None) => Err(access_denied(
            None,
            "anonymous requests are not allowed; sign the request with an access key issued by this proxy",
        )),
    }
}

fn starts_with_word(value: &str, word: &str) -> bool {
    value.strip_prefix(word).is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_whitespace()))
}

/// How a request is signed, as far as its query tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueryAuth {
    /// No signature parameters: signed in the headers, or anonymous.
    #[default]
    None,
    /// A presigned SigV4 URL (`X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Signature`).
    SigV4,
    /// A presigned SigV2 URL (`AWSAccessKeyId`, `Signature`).
    SigV2,
}

/// The signature form of a raw query (names compared decoded).
#[must_use]
pub fn query_auth_kind(raw_query: &str) -> QueryAuth {
    let mut kind = QueryAuth::None;
    for (name, _) in query_pairs(raw_query) {
        match percent_decode(name, true).as_slice() {
            b"X-Amz-Algorithm" | b"X-Amz-Credential" | b"X-Amz-Signature" => return QueryAuth::SigV4,
            b"AWSAccessKeyId" | b"Signature" => kind = QueryAuth::SigV2,
            _ => {}
        }
    }
    kind
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
        format!("{}/{}/s3/aws4_request", self.date, self.region)
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
    if terminator != "aws4_request" {
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

/// The parsed `Authorization: AWS4-HMAC-SHA256 …` header.
struct HeaderAuth<'a> {
    credential: Credential<'a>,
    signed_headers_raw: &'a str,
    signed_headers: Vec<&'a str>,
    signature: [u8; 32],
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

fn verify_header(
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
    let key = SigningKey::derive(secret.expose(), auth.credential.date, auth.credential.region, "s3");
    let scope = auth.credential.scope();
    let signature = verify_candidates(
        &key,
        &amz_date,
        &scope,
        &CanonicalParts {
            method: parts.method,
            raw_path: parts.raw_path,
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

fn verify_presigned(
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
    let key = SigningKey::derive(secret.expose(), credential.date, credential.region, "s3");
    let scope = credential.scope();
    let computed = verify_candidates(
        &key,
        &date,
        &scope,
        &CanonicalParts {
            method: parts.method,
            raw_path: parts.raw_path,
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

pub(crate) fn lookup_key(
    lookup: &dyn SecretLookup,
    access_key_id: &str,
) -> Result<(String, egress_ledger::principals::SecretKey), AuthError> {
    lookup
        .lookup(access_key_id)
        .ok_or_else(|| AuthError::InvalidAccessKeyId { access_key_id: access_key_id.to_owned() })
}

pub(crate) fn check_skew(access_key_id: &str, request_time: i64, now: SystemTime) -> Result<(), AuthError> {
    let now = unix_seconds(now);
    if request_time.abs_diff(now) > MAX_CLOCK_SKEW_SECS.unsigned_abs() {
        return Err(AuthError::RequestTimeTooSkewed {
            access_key_id: access_key_id.to_owned(),
            request_time: format_amz_date(request_time),
            server_time: format_amz_date(now),
        });
    }
    Ok(())
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

/// The canonical request minus its path, which has candidates (the
/// upstream signer has one: its own, already canonical).
pub(crate) struct CanonicalParts<'a> {
    pub(crate) method: &'a str,
    pub(crate) raw_path: &'a str,
    pub(crate) query: &'a str,
    pub(crate) headers: &'a [u8],
    pub(crate) signed_headers: &'a str,
    pub(crate) payload_hash: &'a str,
}

impl CanonicalParts<'_> {
    pub(crate) fn canonical_request(&self, path: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.method.len() + path.len() + self.query.len() + self.headers.len() + self.signed_headers.len() + 70,
        );
        for line in [self.method.as_bytes(), path.as_bytes(), self.query.as_bytes(), self.headers] {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
        out.extend_from_slice(self.signed_headers.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.payload_hash.as_bytes());
        out
    }
}

/// Checks the client's signature against the canonical request built with the
/// raw path, then (if different) with the strictly re-encoded path. Returns
/// the matching signature.
fn verify_candidates(
    key: &SigningKey,
    amz_date: &str,
    scope: &str,
    parts: &CanonicalParts<'_>,
    client_signature: &[u8; 32],
) -> Option<[u8; 32]> {
    let raw = if parts.raw_path.is_empty() { "/" } else { parts.raw_path };
    let reencoded = uri_encode_path(raw);
    let candidates = std::iter::once(raw).chain((reencoded != raw).then_some(reencoded.as_str()));
    for path in candidates {
        let creq = parts.canonical_request(path);
        let computed = key.hmac(&string_to_sign(amz_date, scope, &creq));
        if bool::from(computed.expose().ct_eq(client_signature)) {
            return Some(*computed.expose());
        }
    }
    None
}

/// Decodes a raw path and encodes it the way the AWS SDKs do (`/` kept).
fn uri_encode_path(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    uri_encode_into(&percent_decode(raw, false), false, &mut out);
    out
}

/// `AWS4-HMAC-SHA256\n<date>\n<scope>\n<hex sha256(canonical request)>`.
pub(crate) fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> Vec<u8> {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request))).into_bytes()
}

/// Every query parameter (but `X-Amz-Signature` for presigned URLs) decoded,
/// re-encoded strictly, sorted by name then value, joined with `&`.
pub(crate) fn canonical_query(raw_query: Option<&str>, skip_signature: bool) -> String {
    let Some(raw_query) = raw_query else { return String::new() };
    let mut pairs: Vec<(String, String)> = query_pairs(raw_query)
        .filter_map(|(name, value)| {
            let name = percent_decode(name, true);
            if skip_signature && name == b"X-Amz-Signature" {
                return None;
            }
            let mut enc_name = String::with_capacity(name.len());
            uri_encode_into(&name, true, &mut enc_name);
            let mut enc_value = String::new();
            uri_encode_into(&percent_decode(value.unwrap_or_default(), true), true, &mut enc_value);
            Some((enc_name, enc_value))
        })
        .collect();
    pairs.sort_unstable();
    let mut out = String::with_capacity(raw_query.len() + 16);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// `name:value\n` for each signed header, values trimmed, runs of spaces
/// collapsed, repeated headers joined with `,`.
pub(crate) fn canonical_headers(
    headers: &HeaderMap,
    signed: &[&str],
    access_key_id: &str,
) -> Result<Vec<u8>, AuthError> {
    let mut out = Vec::with_capacity(256);
    for &name in signed {
        let mut values = headers.get_all(name).iter().peekable();
        if values.peek().is_none() {
            return Err(AuthError::SignatureDoesNotMatch {
                access_key_id: Some(access_key_id.to_owned()),
                reason: format!("the signed header {name:?} is not in the request"),
            });
        }
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(b',');
            }
            push_trimmed(&mut out, value.as_bytes());
        }
        out.push(b'\n');
    }
    Ok(out)
}

fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ws(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !is_ws(b)).map_or(start, |i| i + 1);
    let mut previous_space = false;
    for &b in value.get(start..end).unwrap_or_default() {
        if b == b' ' && previous_space {
            continue;
        }
        previous_space = b == b' ';
        out.push(b);
    }
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
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

fn invalid_request(access_key_id: &str, reason: impl Into<String>) -> AuthError {
    AuthError::InvalidRequest { access_key_id: Some(access_key_id.to_owned()), reason: reason.into() }
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
pub(crate) mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    use aws_smithy_runtime_api::client::identity::Identity;
    use egress_ledger::principals::SecretKey;
    use http::{HeaderValue, Request};
    use proptest::prelude::*;

    use super::*;

    pub(crate) const AKID: &str = "EGRSTESTKEY0000001";
    pub(crate) const SECRET: &str = "s3cr3t/with+plus=and spaces";
    pub(crate) const HOST: &str = "proxy.test:8080";

    /// 2026-11-27T10:00:00Z.
    pub(crate) fn t0() -> SystemTime {
        at_unix(1_795_773_600)
    }

    pub(crate) fn at_unix(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// One principal, "alice", with one key.
    pub(crate) fn keys(access_key_id: &'static str, secret: &'static str) -> impl SecretLookup {
        move |id: &str| (id == access_key_id).then(|| ("alice".to_owned(), SecretKey::new(secret.to_owned())))
    }

    /// A request as a client sends it, signed by the AWS SDK's signer.
    pub(crate) struct ClientRequest {
        pub(crate) request: Request<()>,
        pub(crate) signature: String,
    }

    impl ClientRequest {
        pub(crate) fn parts(&self) -> RequestParts<'_> {
            RequestParts {
                method: self.request.method().as_str(),
                raw_path: self.request.uri().path(),
                raw_query: self.request.uri().query(),
                headers: self.request.headers(),
            }
        }
    }

    /// Signs with aws-sigv4 configured as the S3 SDKs do (single encoding, no
    /// path normalisation); `presign` puts the signature in the query.
    pub(crate) fn sdk_sign(
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: SignableBody<'_>,
        presign: Option<Duration>,
        secret: &str,
        time: SystemTime,
    ) -> ClientRequest {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        if let Some(expires) = presign {
            settings.signature_location = SignatureLocation::QueryParams;
            settings.expires_in = Some(expires);
        } else {
            settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        }
        let identity: Identity = Credentials::new(AKID, secret, None, None, "test").into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region("eu-central-1")
            .name("s3")
            .time(time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let mut all_headers = vec![("host", HOST)];
        all_headers.extend_from_slice(headers);
        let signable = SignableRequest::new(method, url, all_headers.iter().copied(), body).unwrap();
        let (instructions, signature) = sign(signable, &params).unwrap().into_parts();
        let mut request = Request::builder().method(method).uri(url);
        for (name, value) in &all_headers {
            request = request.header(*name, *value);
        }
        let mut request = request.body(()).unwrap();
        instructions.apply_to_request_http1x(&mut request);
        ClientRequest { request, signature }
    }

    fn url(path_and_query: &str) -> String {
        format!("http://{HOST}{path_and_query}")
    }

    fn header_signed(path_and_query: &str, body: SignableBody<'_>) -> ClientRequest {
        sdk_sign("GET", &url(path_and_query), &[("range", "bytes=0-9")], body, None, SECRET, t0())
    }

    fn check(req: &ClientRequest, now: SystemTime) -> Result<Authenticated, AuthError> {
        authenticate(&req.parts(), &keys(AKID, SECRET), now)
    }

    fn code(result: Result<Authenticated, AuthError>) -> &'static str {
        match result {
            Ok(_) => "ok",
            Err(e) => e.code().as_str(),
        }
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
        assert_eq!(ctx.signing_key.expose(), &signing_key(SECRET, "20261127", "eu-central-1", "s3"));
        assert!(!format!("{ctx:?}").contains(&hex::encode(ctx.signing_key.expose())));

        let req = header_signed("/bucket/key", SignableBody::Precomputed(STREAMING_SIGNED_PAYLOAD.to_owned()));
        assert!(matches!(check(&req, t0()).unwrap().payload, PayloadMode::StreamingSigned { trailer: false, .. }));
        let req = header_signed("/bucket/key", SignableBody::StreamingUnsignedPayloadTrailer);
        assert!(matches!(check(&req, t0()).unwrap().payload, PayloadMode::StreamingUnsignedTrailer));
    }

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
        let req = header_signed("/bucket/key?X-Amz-Signature=00", SignableBody::UnsignedPayload);
        assert_eq!(code(check(&req, t0())), "InvalidArgument");
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

    /// The other examples of the same AWS documentation page and of
    /// "Authenticating Requests: Using Query Parameters".
    #[test]
    fn aws_documentation_put_list_lifecycle_and_presigned_examples() {
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

    #[test]
    fn uri_encoding_follows_sigv4() {
        assert_eq!(uri_encode("a b/c~d+e=é", false), "a%20b/c~d%2Be%3D%C3%A9");
        assert_eq!(uri_encode("a/b", true), "a%2Fb");
        assert_eq!(uri_encode_path("/b/a=b%20c%2Fd%41"), "/b/a%3Db%20c/dA");
    }

    #[test]
    fn canonical_header_values_are_trimmed_and_collapsed() {
        let mut out = Vec::new();
        push_trimmed(&mut out, b"  a   b \t c  ");
        assert_eq!(out, b"a b \t c");
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
