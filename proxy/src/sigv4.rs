//! AWS Signature Version 4 (V4) as S3 specifies it: the algorithm alone.
//!
//! Both directions of the proxy use it. [`crate::auth::sigv4`] recomputes a
//! client's signature to verify it; [`crate::upstream::signer`] computes ours
//! for the upstream. This module knows neither: callers hand it the pieces
//! they chose (which form of the path, which headers, which payload hash)
//! and get back bytes, keys and signatures. What to sign, what to accept and
//! which error to answer are the callers' decisions.
//!
//! - percent-encoding and reading a query string ([`uri_encode`],
//!   [`uri_encode_path`], [`query_pairs`], [`percent_decode`]);
//! - the canonical request ([`CanonicalRequest`], [`canonical_query`],
//!   [`canonical_headers`]);
//! - the credential [`scope`], the [`SigningKey`] derived for it, and the
//!   strings to sign of a request, an aws-chunked chunk and a trailer;
//! - request times: the `YYYYMMDDTHHMMSSZ` format and the HTTP dates S3
//!   clients send.
//!
//! Promises: the canonical request, string to sign, signing key and
//! signature are byte for byte the ones of the AWS documentation (tests check
//! its examples and the AWS SDK's signer); a derived key is wiped when
//! dropped and never printed.

mod canonical;
mod encoding;
mod signing;
mod time;

pub use canonical::{CanonicalRequest, MissingSignedHeader, canonical_headers, canonical_query};
pub use encoding::{percent_decode, query_pairs, uri_encode, uri_encode_into, uri_encode_path};
pub use signing::{SCOPE_TERMINATOR, SigningKey, chunk_string_to_sign, scope, string_to_sign, trailer_string_to_sign};
pub use time::{format_amz_date, parse_amz_date, parse_http_date, unix_seconds};

/// The only V4 algorithm we speak (the ECDSA variant V4A is not supported).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// `x-amz-content-sha256` of a request whose body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// `x-amz-content-sha256` of an aws-chunked body with signed chunks.
pub const STREAMING_SIGNED_PAYLOAD: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
/// The same, followed by signed trailers.
pub const STREAMING_SIGNED_PAYLOAD_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
/// `x-amz-content-sha256` of an aws-chunked body with unsigned chunks and trailers.
pub const STREAMING_UNSIGNED_PAYLOAD_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";
/// Hex SHA-256 of the empty string.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
