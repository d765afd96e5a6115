//! Client authentication: who sent this request, proven by their own signature.
//!
//! The proxy issues access keys to its principals; clients sign requests with
//! them exactly as they would sign for S3. This module checks those
//! signatures and nothing else, with no I/O, so it can be tested and fuzzed
//! on its own:
//!
//! - [`scheme`]: the entry point [`authenticate`], which finds the scheme a
//!   request is signed with and hands it to that scheme's verifier;
//! - [`sigv4`]: AWS Signature Version 4, in the `Authorization` header and in
//!   presigned URLs (the algorithm itself is [`crate::sigv4`]'s, shared with
//!   the upstream signer);
//! - [`sigv2`]: the legacy S3 signature (boto3 still presigns with it);
//! - [`chunked`]: the `aws-chunked` body framing, decoded incrementally with
//!   every chunk signature verified before its data is released;
//! - [`error`]: the one error type, carrying the S3 error code and status.
//!
//! This file holds what the schemes share: the request and the result
//! types, which query parameters carry a signature, the key lookup and the
//! time window. The verifiers depend on it and on [`crate::sigv4`], never
//! on each other; only [`scheme`] knows them all.
//!
//! What it promises: a request is [`Authenticated`] only if its signature was
//! computed with the secret of an active key over what arrived on the wire
//! (method, raw path, query, signed headers, date); every comparison of a
//! signature is constant-time; no secret or signing key is ever printed.
//! What it does not do: check the body against `x-amz-content-sha256` (the
//! body is streamed elsewhere; [`PayloadMode::Sha256`] says what to check) or
//! decide what the principal may do.

pub mod chunked;
pub mod error;
#[cfg(test)]
pub(crate) mod fixtures;
pub mod scheme;
pub mod sigv2;
pub mod sigv4;

use std::time::SystemTime;

use egress_ledger::principals::SecretKey;

pub use error::AuthError;
pub use scheme::{authenticate, authenticate_with_bucket_host};
pub use sigv4::ChunkSigningContext;

pub use crate::sigv4::SigningKey;
use crate::sigv4::{format_amz_date, unix_seconds};

// The S3 request parser reads the query exactly as the verifiers do.
pub(crate) use crate::sigv4::{percent_decode, query_pairs};

/// What the verifier needs from the request, exactly as it came on the wire.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    pub method: &'a str,
    /// Raw path as sent (still percent-encoded), e.g. "/bucket/my%20key".
    pub raw_path: &'a str,
    /// Raw query string without '?', as sent; None if absent.
    pub raw_query: Option<&'a str>,
    /// The request headers. Over HTTP/2 there is no `Host` header: the caller
    /// must insert `host` from the `:authority` before calling, since V4
    /// always signs it.
    pub headers: &'a http::HeaderMap,
}

/// Looks up the secret of an access key id we issued.
pub trait SecretLookup {
    /// Some((principal name, secret)) for an active key, None if unknown or revoked.
    fn lookup(&self, access_key_id: &str) -> Option<(String, SecretKey)>;
}

impl<F> SecretLookup for F
where
    F: Fn(&str) -> Option<(String, SecretKey)>,
{
    fn lookup(&self, access_key_id: &str) -> Option<(String, SecretKey)> {
        self(access_key_id)
    }
}

/// A request whose signature checked out.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The principal the access key was issued to.
    pub principal: String,
    pub access_key_id: String,
    pub method: AuthMethod,
    /// How the body is protected, i.e. what the body path still has to verify.
    pub payload: PayloadMode,
    /// Which headers the signature covers.
    pub signed_headers: SignedHeaders,
}

/// Which headers a request's signature covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignedHeaders {
    /// SigV2 signs every `x-amz-*` header by construction.
    AllAmz,
    /// SigV4: the `SignedHeaders` value, lowercase names joined by `;`
    /// (checked when parsed).
    Listed(String),
}

impl SignedHeaders {
    /// Whether the header `name` (lowercase) is signed.
    #[must_use]
    pub fn covers(&self, name: &str) -> bool {
        match self {
            SignedHeaders::AllAmz => name.starts_with("x-amz-"),
            SignedHeaders::Listed(list) => list.split(';').any(|signed| signed == name),
        }
    }
}

/// Which signature scheme authenticated the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    SigV4Header,
    SigV4Query,
    SigV2Header,
    SigV2Query,
    /// No signature at all: the built-in principal `anonymous`, let through
    /// only by policies attached to it (never by [`authenticate`]).
    Anonymous,
}

/// Whether a request carries credentials of any scheme: an
/// `Authorization` header, or a presigned URL's parameters as the verifier
/// reads them ([`query_auth_kind`], names decoded). One that carries
/// none is anonymous.
#[must_use]
pub fn carries_credentials(parts: &RequestParts<'_>) -> bool {
    parts.headers.contains_key(http::header::AUTHORIZATION)
        || parts.raw_query.is_some_and(|query| query_auth_kind(query) != QueryAuth::None)
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

impl Authenticated {
    /// The anonymous caller: nothing signed, so every `x-amz-*` header is
    /// taken as sent (there is no signature to smuggle one past; policies
    /// decide on the request as parsed), and the body passes unsigned.
    #[must_use]
    pub fn anonymous() -> Authenticated {
        Authenticated {
            principal: egress_ledger::principals::ANONYMOUS.to_owned(),
            access_key_id: String::new(),
            method: AuthMethod::Anonymous,
            payload: PayloadMode::Unsigned,
            signed_headers: SignedHeaders::AllAmz,
        }
    }
}

/// How the request body is bound to the signature.
#[derive(Debug, Clone)]
pub enum PayloadMode {
    /// x-amz-content-sha256 was a hex SHA-256 of the body (header auth): the
    /// upstream can verify it. Always lowercase here.
    Sha256(String),
    /// UNSIGNED-PAYLOAD, or presigned/V2 requests (no body hash).
    Unsigned,
    /// STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]: chunk signatures to verify with this context.
    StreamingSigned { ctx: ChunkSigningContext, trailer: bool },
    /// STREAMING-UNSIGNED-PAYLOAD-TRAILER
    StreamingUnsignedTrailer,
}

/// Query parameters that carry a presigned request's signature (SigV4 and
/// SigV2); they are the client's and never travel further.
pub const AUTH_QUERY_PARAMS: &[&str] = &[
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
    "X-Amz-Security-Token",
    "X-Amz-Content-Sha256",
    "AWSAccessKeyId",
    "Signature",
    "Expires",
];

/// Allowed distance between the client's clock and ours (same as S3).
pub(crate) const MAX_CLOCK_SKEW_SECS: i64 = 15 * 60;
/// Longest lifetime of a presigned URL (seven days), as S3 enforces.
pub const MAX_PRESIGNED_EXPIRES_SECS: u64 = 604_800;

/// The principal and secret of an access key, or `InvalidAccessKeyId`.
pub(crate) fn lookup_key(lookup: &dyn SecretLookup, access_key_id: &str) -> Result<(String, SecretKey), AuthError> {
    lookup
        .lookup(access_key_id)
        .ok_or_else(|| AuthError::InvalidAccessKeyId { access_key_id: access_key_id.to_owned() })
}

/// Refuses a request time more than [`MAX_CLOCK_SKEW_SECS`] away from `now`.
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
