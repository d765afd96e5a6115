//! The `aws-chunked` body framing: an incremental decoder that verifies as
//! it goes, and an encoder for the unsigned-trailer form.
//!
//! ```text
//! <hex size>[;chunk-signature=<sig>]\r\n <data> \r\n      (repeated)
//! 0[;chunk-signature=<sig>]\r\n                           (final chunk)
//! <name>:<value>\r\n …                                    (trailer modes only)
//! x-amz-trailer-signature:<sig>\r\n                       (signed trailer mode only)
//! \r\n
//! ```
//!
//! Promises of [`AwsChunkedDecoder`]:
//! - in signed mode, a chunk's data is released only after the whole chunk
//!   (and its CRLF) arrived and its signature, chained to the previous one,
//!   verified; a bad signature stops the stream before that chunk's data;
//! - in unsigned-trailer mode data is released as it arrives (there is
//!   nothing to verify per chunk);
//! - memory stays bounded: chunks over the largest size (by default
//!   [`DEFAULT_MAX_CHUNK_SIZE`]), lines over [`MAX_LINE_LEN`] and more than
//!   [`MAX_TRAILERS`] trailers are refused;
//! - an `x-amz-checksum-crc32` trailer is checked against the decoded
//!   payload (other checksums are passed through in [`Trailers`]), and a
//!   declared decoded length is enforced;
//! - the body is complete only when [`AwsChunkedDecoder::finish`] says so.
//!   Data already released cannot be recalled: whoever forwards it must abort
//!   the upstream request when `feed` or `finish` fails, so that a truncated
//!   or corrupted object is never committed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::auth::PayloadMode;
use crate::auth::error::AuthError;
use crate::auth::sigv4::ChunkSigningContext;
use crate::sigv4::{chunk_string_to_sign, trailer_string_to_sign};

/// Largest chunk, unless [`AwsChunkedDecoder::with_max_chunk_size`] says
/// otherwise (`serve` does, from `--max-aws-chunk-mib`): a signed chunk is
/// buffered whole until its signature checks. AWS SDKs send 64 KiB to 1 MiB.
pub const DEFAULT_MAX_CHUNK_SIZE: usize = 16 * 1024 * 1024;
/// Longest chunk-header or trailer line, without its CRLF: a size, a
/// signature and a checksum trailer take under 100 bytes, so this is a
/// bound on the parser, not a setting.
pub const MAX_LINE_LEN: usize = 4 * 1024;
/// Most trailers one body may carry (SDKs send one checksum); a bound on
/// the parser, not a setting.
pub const MAX_TRAILERS: usize = 16;

const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";
const CRC32_TRAILER: &str = "x-amz-checksum-crc32";

/// How the body was signed, from the request's `x-amz-content-sha256`.
#[derive(Debug, Clone)]
pub enum ChunkMode {
    /// `STREAMING-AWS4-HMAC-SHA256-PAYLOAD[-TRAILER]`.
    Signed { ctx: ChunkSigningContext, trailer: bool },
    /// `STREAMING-UNSIGNED-PAYLOAD-TRAILER`.
    UnsignedTrailer,
}

impl ChunkMode {
    /// The mode for an authenticated request's payload, if it is aws-chunked.
    #[must_use]
    pub fn for_payload(payload: &PayloadMode) -> Option<ChunkMode> {
        match payload {
            PayloadMode::StreamingSigned { ctx, trailer } => {
                Some(ChunkMode::Signed { ctx: ctx.clone(), trailer: *trailer })
            }
            PayloadMode::StreamingUnsignedTrailer => Some(ChunkMode::UnsignedTrailer),
            PayloadMode::Sha256(_) | PayloadMode::Unsigned => None,
        }
    }

    fn has_trailers(&self) -> bool {
        match self {
            ChunkMode::Signed { trailer, .. } => *trailer,
            ChunkMode::UnsignedTrailer => true,
        }
    }
}

/// Trailing headers of an aws-chunked body, names lowercased, in the order sent
/// (without `x-amz-trailer-signature`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trailers {
    entries: Vec<(String, String)>,
}

impl Trailers {
    #[must_use]
    pub fn new() -> Trailers {
        Trailers::default()
    }

    /// Adds a trailer; the name is lowercased.
    pub fn push(&mut self, name: &str, value: &str) {
        self.entries.push((name.to_ascii_lowercase(), value.to_owned()));
    }

    /// The first value of `name` (case-insensitive).
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.entries.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.entries.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// `name:value\n` sorted by name, what the trailer signature covers.
    fn canonical(&self) -> Vec<u8> {
        let mut sorted: Vec<&(String, String)> = self.entries.iter().collect();
        sorted.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = Vec::new();
        for (name, value) in sorted {
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
            out.extend_from_slice(value.trim().as_bytes());
            out.push(b'\n');
        }
        out
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Expecting `<hex size>[;ext]\r\n`.
    ChunkHeader,
    /// Inside the data of a chunk; `remaining` counts down in unsigned mode.
    ChunkData {
        size: usize,
        remaining: usize,
        signature: Option<[u8; 32]>,
    },
    /// Expecting the CRLF after a chunk's data (unsigned mode).
    ChunkDataEnd,
    /// After the final chunk: trailer lines up to an empty line.
    Trailers {
        signature_verified: bool,
    },
    Done,
}

/// Incremental aws-chunked decoder; see the module docs for what it guarantees.
#[derive(Debug)]
pub struct AwsChunkedDecoder {
    mode: ChunkMode,
    state: State,
    /// Signature of the last verified chunk (the seed at first), lowercase hex.
    previous_signature: String,
    /// Chunks seen, for error messages.
    chunk_index: u64,
    decoded_len: u64,
    expected_len: Option<u64>,
    /// Chunks over this size are refused.
    max_chunk_size: usize,
    crc32: crc32fast::Hasher,
    trailers: Trailers,
}

impl AwsChunkedDecoder {
    #[must_use]
    pub fn new(mode: ChunkMode) -> AwsChunkedDecoder {
        let previous_signature = match &mode {
            ChunkMode::Signed { ctx, .. } => ctx.seed_signature.clone(),
            ChunkMode::UnsignedTrailer => String::new(),
        };
        AwsChunkedDecoder {
            mode,
            state: State::ChunkHeader,
            previous_signature,
            chunk_index: 0,
            decoded_len: 0,
            expected_len: None,
            max_chunk_size: DEFAULT_MAX_CHUNK_SIZE,
            crc32: crc32fast::Hasher::new(),
            trailers: Trailers::new(),
        }
    }

    /// Enforces `x-amz-decoded-content-length`: more data is refused as soon
    /// as it arrives, less is refused at the end.
    #[must_use]
    pub fn with_decoded_length(mut self, expected: u64) -> AwsChunkedDecoder {
        self.expected_len = Some(expected);
        self
    }

    /// Refuses chunks over `bytes` instead of [`DEFAULT_MAX_CHUNK_SIZE`].
    #[must_use]
    pub fn with_max_chunk_size(mut self, bytes: usize) -> AwsChunkedDecoder {
        self.max_chunk_size = bytes;
        self
    }

    /// Payload bytes decoded (and, in signed mode, verified) so far.
    #[must_use]
    pub fn decoded_len(&self) -> u64 {
        self.decoded_len
    }

    /// The size of the signed chunk being gathered, if the decoder is
    /// holding one back until its signature can be checked, with the
    /// chunk's number (1-based). Unsigned chunks are released as they come.
    #[must_use]
    pub fn gathering(&self) -> Option<(u64, usize)> {
        match self.state {
            State::ChunkData { size, signature: Some(_), .. } => Some((self.chunk_index, size)),
            _ => None,
        }
    }

    /// Whether the final chunk and trailers arrived and checked out.
    #[must_use]
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// Consumes what it can of `input` and returns the payload bytes it
    /// releases; an incomplete line or chunk stays in `input` for the next
    /// call. After an error the decoder must not be fed again.
    pub fn feed(&mut self, input: &mut BytesMut) -> Result<Vec<Bytes>, AuthError> {
        let mut out = Vec::new();
        loop {
            match self.state {
                State::ChunkHeader => {
                    let Some(line) = take_line(input, "chunk header")? else { return Ok(out) };
                    let (size, signature) = self.parse_chunk_header(&line)?;
                    self.chunk_index += 1;
                    if size == 0 {
                        if let Some(signature) = signature {
                            self.verify_chunk(&[], &signature)?;
                        }
                        self.state = State::Trailers { signature_verified: false };
                    } else {
                        self.state = State::ChunkData { size, remaining: size, signature };
                    }
                }
                State::ChunkData { size, signature: Some(signature), .. } => {
                    if input.len() < size + 2 {
                        return Ok(out);
                    }
                    if input.get(size..size + 2) != Some(b"\r\n".as_slice()) {
                        return Err(self.malformed("its data is not followed by CRLF"));
                    }
                    let data = input.split_to(size).freeze();
                    input.advance(2);
                    self.verify_chunk(&data, &signature)?;
                    self.release(data, &mut out)?;
                    self.state = State::ChunkHeader;
                }
                State::ChunkData { size, remaining, signature: None } => {
                    if input.is_empty() {
                        return Ok(out);
                    }
                    let n = remaining.min(input.len());
                    self.release(input.split_to(n).freeze(), &mut out)?;
                    self.state = if n == remaining {
                        State::ChunkDataEnd
                    } else {
                        State::ChunkData { size, remaining: remaining - n, signature: None }
                    };
                }
                State::ChunkDataEnd => {
                    if input.len() < 2 {
                        return Ok(out);
                    }
                    if input.get(..2) != Some(b"\r\n".as_slice()) {
                        return Err(self.malformed("its data is not followed by CRLF"));
                    }
                    input.advance(2);
                    self.state = State::ChunkHeader;
                }
                State::Trailers { signature_verified } => {
                    let Some(line) = take_line(input, "trailer")? else { return Ok(out) };
                    if line.is_empty() {
                        self.finish_trailers(signature_verified)?;
                        self.state = State::Done;
                    } else {
                        self.trailer_line(&line, signature_verified)?;
                    }
                }
                State::Done => {
                    if !input.is_empty() {
                        return Err(AuthError::MalformedChunkedBody {
                            reason: format!("{} bytes follow the end of the aws-chunked body", input.len()),
                        });
                    }
                    return Ok(out);
                }
            }
        }
    }

    /// Call when the input ended: the trailers if the body was complete,
    /// `IncompleteBody` if the final chunk or trailers are missing.
    pub fn finish(&self) -> Result<Trailers, AuthError> {
        let reason = match self.state {
            State::Done => return Ok(self.trailers.clone()),
            State::ChunkHeader => {
                format!("the body ended before the final 0-size chunk (after chunk {})", self.chunk_index)
            }
            State::ChunkData { .. } | State::ChunkDataEnd => {
                format!("the body ended inside chunk {}", self.chunk_index)
            }
            State::Trailers { .. } => "the body ended inside the trailers (no final empty line)".to_owned(),
        };
        Err(AuthError::IncompleteBody { reason })
    }

    fn signed_ctx(&self) -> Option<&ChunkSigningContext> {
        match &self.mode {
            ChunkMode::Signed { ctx, .. } => Some(ctx),
            ChunkMode::UnsignedTrailer => None,
        }
    }

    fn malformed(&self, what: &str) -> AuthError {
        AuthError::MalformedChunkedBody { reason: format!("chunk {}: {what}", self.chunk_index) }
    }

    /// `<hex size>[;chunk-signature=<64 hex>]`; the signature is required in
    /// signed mode, extensions are ignored in unsigned mode.
    fn parse_chunk_header(&self, line: &[u8]) -> Result<(usize, Option<[u8; 32]>), AuthError> {
        let index = self.chunk_index + 1;
        let malformed = |what: String| AuthError::MalformedChunkedBody { reason: format!("chunk {index}: {what}") };
        let (size, extensions) = match line.iter().position(|&b| b == b';') {
            Some(i) => (line.get(..i).unwrap_or_default(), line.get(i + 1..)),
            None => (line, None),
        };
        if size.is_empty() || size.len() > 16 || !size.iter().all(u8::is_ascii_hexdigit) {
            return Err(malformed(format!("the size {:?} is not a hex number", String::from_utf8_lossy(size))));
        }
        let size = size.iter().fold(0_u64, |n, &d| (n << 4) | u64::from(hex_digit(d)));
        let size = match usize::try_from(size) {
            Ok(s) if s <= self.max_chunk_size => s,
            _ => {
                let limit = self.max_chunk_size;
                return Err(malformed(format!("the size {size} exceeds the limit of {limit} bytes")));
            }
        };
        if self.signed_ctx().is_none() {
            return Ok((size, None));
        }
        let signature = extensions.and_then(|e| e.strip_prefix(b"chunk-signature=")).and_then(|hex_sig| {
            let mut sig = [0_u8; 32];
            hex::decode_to_slice(hex_sig, &mut sig).ok().map(|()| sig)
        });
        match signature {
            Some(sig) => Ok((size, Some(sig))),
            None => Err(AuthError::SignatureDoesNotMatch {
                access_key_id: None,
                reason: format!("chunk {index} has no valid chunk-signature=<64 hex digits> extension"),
            }),
        }
    }

    fn verify_chunk(&mut self, data: &[u8], client_signature: &[u8; 32]) -> Result<(), AuthError> {
        let Some(ctx) = self.signed_ctx() else { return Ok(()) };
        let string_to_sign = chunk_string_to_sign(&ctx.amz_date, &ctx.scope, &self.previous_signature, data);
        let computed = ctx.signing_key.sign(&string_to_sign);
        if !bool::from(computed.ct_eq(client_signature)) {
            return Err(AuthError::SignatureDoesNotMatch {
                access_key_id: None,
                reason: format!(
                    "the signature of chunk {} ({} bytes, after {} verified bytes) does not match",
                    self.chunk_index,
                    data.len(),
                    self.decoded_len
                ),
            });
        }
        self.previous_signature = hex::encode(computed);
        Ok(())
    }

    fn release(&mut self, data: Bytes, out: &mut Vec<Bytes>) -> Result<(), AuthError> {
        self.decoded_len += data.len() as u64;
        if let Some(expected) = self.expected_len
            && self.decoded_len > expected
        {
            return Err(AuthError::MalformedChunkedBody {
                reason: format!("the chunks hold more than the {expected} bytes of x-amz-decoded-content-length"),
            });
        }
        self.crc32.update(&data);
        out.push(data);
        Ok(())
    }

    fn trailer_line(&mut self, line: &[u8], signature_verified: bool) -> Result<(), AuthError> {
        if !self.mode.has_trailers() {
            return Err(AuthError::MalformedChunkedBody {
                reason: "trailers follow the final chunk, but the payload mode has none".to_owned(),
            });
        }
        if signature_verified {
            return Err(AuthError::MalformedChunkedBody {
                reason: "a trailer follows x-amz-trailer-signature, which must come last".to_owned(),
            });
        }
        let Some((name, value)) = std::str::from_utf8(line).ok().and_then(|l| l.split_once(':')) else {
            return Err(AuthError::MalformedChunkedBody {
                reason: "a trailer line is not \"name:value\" text".to_owned(),
            });
        };
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) {
            return Err(AuthError::MalformedChunkedBody { reason: format!("invalid trailer name {name:?}") });
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case(TRAILER_SIGNATURE) {
            self.verify_trailer_signature(value)?;
            self.state = State::Trailers { signature_verified: true };
            return Ok(());
        }
        if self.trailers.len() >= MAX_TRAILERS {
            return Err(AuthError::MalformedChunkedBody { reason: format!("more than {MAX_TRAILERS} trailers") });
        }
        self.trailers.push(name, value);
        Ok(())
    }

    fn verify_trailer_signature(&mut self, value: &str) -> Result<(), AuthError> {
        let Some(ctx) = self.signed_ctx() else {
            return Err(AuthError::MalformedChunkedBody {
                reason: "x-amz-trailer-signature in an unsigned payload".to_owned(),
            });
        };
        let mismatch =
            |reason: &str| AuthError::SignatureDoesNotMatch { access_key_id: None, reason: reason.to_owned() };
        let mut client = [0_u8; 32];
        hex::decode_to_slice(value, &mut client)
            .map_err(|_| mismatch("x-amz-trailer-signature must be 64 hex digits"))?;
        let string_to_sign =
            trailer_string_to_sign(&ctx.amz_date, &ctx.scope, &self.previous_signature, &self.trailers.canonical());
        let computed = ctx.signing_key.sign(&string_to_sign);
        if !bool::from(computed.ct_eq(&client)) {
            return Err(mismatch("the trailer signature does not match"));
        }
        self.previous_signature = hex::encode(computed);
        Ok(())
    }

    fn finish_trailers(&self, signature_verified: bool) -> Result<(), AuthError> {
        if matches!(self.mode, ChunkMode::Signed { trailer: true, .. }) && !signature_verified {
            return Err(AuthError::SignatureDoesNotMatch {
                access_key_id: None,
                reason: "the trailers carry no x-amz-trailer-signature".to_owned(),
            });
        }
        if let Some(value) = self.trailers.get(CRC32_TRAILER) {
            let sent = BASE64
                .decode(value)
                .ok()
                .and_then(|b| <[u8; 4]>::try_from(b.as_slice()).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| AuthError::InvalidRequest {
                    access_key_id: None,
                    reason: format!("the {CRC32_TRAILER} trailer {value:?} is not the base64 of 4 bytes"),
                })?;
            if sent != self.crc32.clone().finalize() {
                return Err(AuthError::ChecksumMismatch { algorithm: "CRC32" });
            }
        }
        if let Some(expected) = self.expected_len
            && expected != self.decoded_len
        {
            return Err(AuthError::IncompleteBody {
                reason: format!(
                    "the chunks hold {} bytes, x-amz-decoded-content-length says {expected}",
                    self.decoded_len
                ),
            });
        }
        Ok(())
    }
}

/// Splits off a line ending in CRLF (returned without it), `None` if it has
/// not fully arrived yet.
fn take_line(input: &mut BytesMut, what: &str) -> Result<Option<BytesMut>, AuthError> {
    let window = input.get(..input.len().min(MAX_LINE_LEN + 2)).unwrap_or_default();
    match window.windows(2).position(|w| w == b"\r\n") {
        Some(i) => {
            let line = input.split_to(i);
            input.advance(2);
            Ok(Some(line))
        }
        None if input.len() > MAX_LINE_LEN + 1 => Err(AuthError::MalformedChunkedBody {
            reason: format!("a {what} line is longer than {MAX_LINE_LEN} bytes"),
        }),
        None => Ok(None),
    }
}

fn hex_digit(d: u8) -> u8 {
    match d {
        b'0'..=b'9' => d - b'0',
        b'a'..=b'f' => d - b'a' + 10,
        b'A'..=b'F' => d - b'A' + 10,
        _ => 0,
    }
}

/// The `x-amz-decoded-content-length` of a request, if it sent one.
pub fn decoded_content_length(headers: &HeaderMap) -> Result<Option<u64>, AuthError> {
    let Some(value) = headers.get("x-amz-decoded-content-length") else { return Ok(None) };
    match value.to_str().ok().filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())).map(str::parse) {
        Some(Ok(n)) => Ok(Some(n)),
        _ => Err(AuthError::InvalidArgument {
            access_key_id: None,
            reason: "x-amz-decoded-content-length must be a number of bytes".to_owned(),
        }),
    }
}

/// Checks a finished body's decoded length against `x-amz-decoded-content-length`
/// (absent header: nothing to check).
pub fn check_decoded_content_length(headers: &HeaderMap, decoded_len: u64) -> Result<(), AuthError> {
    match decoded_content_length(headers)? {
        Some(expected) if expected != decoded_len => Err(AuthError::IncompleteBody {
            reason: format!("the body holds {decoded_len} bytes, x-amz-decoded-content-length says {expected}"),
        }),
        _ => Ok(()),
    }
}

/// One unsigned chunk: `<hex size>\r\n<data>\r\n`. Empty data encodes to
/// nothing, since a 0-size chunk would end the body.
#[must_use]
pub fn encode_unsigned_chunk(data: &[u8]) -> Bytes {
    if data.is_empty() {
        return Bytes::new();
    }
    let header = format!("{:x}\r\n", data.len());
    let mut out = BytesMut::with_capacity(header.len() + data.len() + 2);
    out.put_slice(header.as_bytes());
    out.put_slice(data);
    out.put_slice(b"\r\n");
    out.freeze()
}

/// The end of an unsigned-trailer body: `0\r\n`, each `name:value\r\n`, `\r\n`.
#[must_use]
pub fn encode_final_with_trailers(trailers: &Trailers) -> Bytes {
    let mut out = BytesMut::from(&b"0\r\n"[..]);
    for (name, value) in trailers.iter() {
        out.put_slice(name.as_bytes());
        out.put_u8(b':');
        out.put_slice(value.as_bytes());
        out.put_slice(b"\r\n");
    }
    out.put_slice(b"\r\n");
    out.freeze()
}

/// The `x-amz-checksum-crc32` value for a CRC32: base64 of its big-endian bytes.
#[must_use]
pub fn crc32_trailer_value(crc: u32) -> String {
    BASE64.encode(crc.to_be_bytes())
}

#[cfg(test)]
mod tests {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::SignableBody;
    use aws_sigv4::sign::v4::{SigningParams, sign_chunk, sign_trailer};
    use aws_smithy_runtime_api::client::identity::Identity;
    use http::HeaderValue;
    use proptest::prelude::*;

    use super::*;
    use crate::auth::fixtures::{AKID, SECRET, at_unix, keys, sdk_sign, t0};
    use crate::auth::{RequestParts, authenticate};
    use crate::sigv4::{STREAMING_SIGNED_PAYLOAD, SigningKey};

    const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";

    fn ctx(seed: &str) -> ChunkSigningContext {
        ChunkSigningContext {
            signing_key: SigningKey::derive(SECRET, "20261127", "eu-central-1", "s3"),
            amz_date: "20261127T100000Z".to_owned(),
            scope: "20261127/eu-central-1/s3/aws4_request".to_owned(),
            seed_signature: seed.to_owned(),
        }
    }

    /// A signed aws-chunked body built with the AWS SDK's chunk and trailer
    /// signers, chained to `seed`; `trailer` adds a signed CRC32 trailer.
    fn sdk_signed_body(payload: &[u8], chunk_size: usize, seed: &str, trailer: bool) -> BytesMut {
        let identity: Identity = Credentials::new(AKID, SECRET, None, None, "test").into();
        let params = SigningParams::builder()
            .identity(&identity)
            .region("eu-central-1")
            .name("s3")
            .time(t0())
            .settings(())
            .build()
            .unwrap();
        let mut body = BytesMut::new();
        let mut running = seed.to_owned();
        for chunk in payload.chunks(chunk_size).chain(std::iter::once(&[][..])) {
            let signature = sign_chunk(&Bytes::copy_from_slice(chunk), &running, &params).unwrap().into_parts().1;
            body.put_slice(format!("{:x};chunk-signature={signature}\r\n", chunk.len()).as_bytes());
            body.put_slice(chunk);
            if !chunk.is_empty() {
                body.put_slice(b"\r\n");
            }
            running = signature;
        }
        if trailer {
            let crc = crc32_trailer_value(crc32fast::hash(payload));
            let mut headers = aws_smithy_runtime_api::http::Headers::new();
            headers.insert(CRC32_TRAILER, crc.clone());
            let signature = sign_trailer(&headers, &running, &params).unwrap().into_parts().1;
            body.put_slice(format!("{CRC32_TRAILER}:{crc}\r\n{TRAILER_SIGNATURE}:{signature}\r\n").as_bytes());
        }
        body.put_slice(b"\r\n");
        body
    }

    fn payload(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 251) as u8).collect()
    }

    /// Feeds `body` in pieces cut at `cuts`; returns what was released before
    /// the first error, and the final outcome.
    fn decode_in_pieces(
        decoder: &mut AwsChunkedDecoder,
        body: &[u8],
        cuts: &[usize],
    ) -> (Vec<u8>, Result<Trailers, AuthError>) {
        let mut released = Vec::new();
        let mut input = BytesMut::new();
        let mut start = 0;
        for &end in cuts.iter().chain(std::iter::once(&body.len())) {
            let end = end.clamp(start, body.len());
            input.extend_from_slice(&body[start..end]);
            start = end;
            match decoder.feed(&mut input) {
                Ok(parts) => parts.iter().for_each(|p| released.extend_from_slice(p)),
                Err(e) => return (released, Err(e)),
            }
        }
        (released, decoder.finish())
    }

    fn decode(mode: ChunkMode, body: &[u8]) -> (Vec<u8>, Result<Trailers, AuthError>) {
        decode_in_pieces(&mut AwsChunkedDecoder::new(mode), body, &[])
    }

    fn signed(trailer: bool) -> ChunkMode {
        ChunkMode::Signed { ctx: ctx(SEED), trailer }
    }

    /// AWS S3 documentation, "Signature Calculations for the Authorization
    /// Header: Transferring Payload in Multiple Chunks": 66560 bytes of 'a'
    /// in a 65536-byte and a 1024-byte chunk.
    #[test]
    fn aws_documentation_streaming_example() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("host", "s3.amazonaws.com"),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
            ("x-amz-content-sha256", STREAMING_SIGNED_PAYLOAD),
            ("content-encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", "66560"),
            ("content-length", "66824"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,\
                 SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
                 x-amz-decoded-content-length;x-amz-storage-class,\
                 Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            ),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let parts = RequestParts {
            method: "PUT",
            raw_path: "/examplebucket/chunkObject.txt",
            raw_query: None,
            headers: &headers,
        };
        let lookup = keys("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        let auth = authenticate(&parts, &lookup, at_unix(1_369_353_600)).unwrap();
        let mode = ChunkMode::for_payload(&auth.payload).unwrap();
        let ChunkMode::Signed { ctx, trailer: false } = &mode else { panic!("{mode:?}") };
        assert_eq!(ctx.seed_signature, SEED);

        let mut body = BytesMut::new();
        body.put_slice(b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n");
        body.put_slice(&vec![b'a'; 65536]);
        body.put_slice(b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n");
        body.put_slice(&vec![b'a'; 1024]);
        body.put_slice(
            b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n",
        );
        assert_eq!(body.len(), 66824);
        let expected = decoded_content_length(&headers).unwrap().unwrap();
        let mut decoder = AwsChunkedDecoder::new(mode).with_decoded_length(expected);
        let (data, end) = decode_in_pieces(&mut decoder, &body, &[100, 65_000, 65_700]);
        assert_eq!(data, vec![b'a'; 66560]);
        assert!(end.unwrap().is_empty());
        assert!(check_decoded_content_length(&headers, decoder.decoded_len()).is_ok());
    }

    #[test]
    fn end_to_end_with_the_request_signature_as_seed() {
        let req = sdk_sign(
            "PUT",
            "http://proxy.test:8080/bucket/key",
            &[("content-encoding", "aws-chunked"), ("x-amz-decoded-content-length", "70000")],
            SignableBody::StreamingSignedPayloadTrailer,
            None,
            SECRET,
            t0(),
        );
        let auth = authenticate(&req.parts(), &keys(AKID, SECRET), t0()).unwrap();
        let mode = ChunkMode::for_payload(&auth.payload).unwrap();
        let data = payload(70_000);
        let body = sdk_signed_body(&data, 65_536, &req.signature, true);
        let (released, end) = decode(mode, &body);
        assert_eq!(released, data);
        let trailers = end.unwrap();
        assert_eq!(trailers.get("X-Amz-Checksum-Crc32"), Some(crc32_trailer_value(crc32fast::hash(&data)).as_str()));
    }

    #[test]
    fn signed_body_split_at_every_byte_boundary() {
        let data = payload(300);
        let body = sdk_signed_body(&data, 128, SEED, true);
        for cut in 0..=body.len() {
            let (released, end) = decode_in_pieces(&mut AwsChunkedDecoder::new(signed(true)), &body, &[cut]);
            assert_eq!(released, data, "cut at {cut}");
            assert!(end.is_ok(), "cut at {cut}: {end:?}");
        }
    }

    #[test]
    fn unsigned_trailer_round_trip_through_the_encoder() {
        let data = payload(1000);
        let mut trailers = Trailers::new();
        trailers.push("x-amz-checksum-crc32", &crc32_trailer_value(crc32fast::hash(&data)));
        let mut body = BytesMut::new();
        for chunk in data.chunks(333) {
            body.put(encode_unsigned_chunk(chunk));
        }
        assert!(encode_unsigned_chunk(&[]).is_empty());
        body.put(encode_final_with_trailers(&trailers));
        for cut in 0..=body.len() {
            let mut decoder = AwsChunkedDecoder::new(ChunkMode::UnsignedTrailer).with_decoded_length(1000);
            let (released, end) = decode_in_pieces(&mut decoder, &body, &[cut, cut + 1]);
            assert_eq!(released, data);
            assert_eq!(end.unwrap(), trailers);
        }
    }

    #[test]
    fn as_boto3_sends_it() {
        let body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n";
        let (released, end) = decode(ChunkMode::UnsignedTrailer, body);
        assert_eq!(released, b"hello");
        assert_eq!(end.unwrap().get("x-amz-checksum-crc32"), Some("NhCmhg=="));
    }

    #[test]
    fn a_bad_chunk_signature_stops_before_that_chunk_is_released() {
        let data = payload(300);
        let body = sdk_signed_body(&data, 100, SEED, false);
        let text = String::from_utf8_lossy(&body).into_owned();
        let second_sig_at = text.match_indices("chunk-signature=").nth(1).unwrap().0 + "chunk-signature=".len();
        let mut tampered = body.to_vec();
        tampered[second_sig_at] = if tampered[second_sig_at] == b'0' { b'1' } else { b'0' };
        let cuts: Vec<usize> = (1..tampered.len()).collect();
        let (released, end) = decode_in_pieces(&mut AwsChunkedDecoder::new(signed(false)), &tampered, &cuts);
        assert_eq!(released, &data[..100]);
        let err = end.unwrap_err();
        assert_eq!((err.code().as_str(), err.status().as_u16()), ("SignatureDoesNotMatch", 403));
        assert!(err.to_string().contains("chunk 2"), "{err}");

        let mut tampered_data = body.to_vec();
        let data_at = text.find("\r\n").unwrap() + 2;
        tampered_data[data_at] ^= 1;
        let (released, end) = decode(signed(false), &tampered_data);
        assert!(released.is_empty());
        assert_eq!(end.unwrap_err().code().as_str(), "SignatureDoesNotMatch");

        let (released, end) = decode(ChunkMode::Signed { ctx: ctx(&"0".repeat(64)), trailer: false }, &body);
        assert!(released.is_empty());
        assert_eq!(end.unwrap_err().code().as_str(), "SignatureDoesNotMatch");
    }

    #[test]
    fn trailer_signature_is_required_and_checked() {
        let data = vec![b'x'; 50];
        let body = sdk_signed_body(&data, 64, SEED, true);
        let text = String::from_utf8(body.to_vec()).unwrap();
        let crc = crc32_trailer_value(crc32fast::hash(&data));
        let forged = text.replace(&format!("crc32:{crc}"), &format!("crc32:{}", crc32_trailer_value(1)));
        assert_eq!(decode(signed(true), forged.as_bytes()).1.unwrap_err().code(), "SignatureDoesNotMatch");
        let sig_line = text.find(TRAILER_SIGNATURE).unwrap();
        let unsigned = format!("{}\r\n", &text[..sig_line]);
        assert_eq!(decode(signed(true), unsigned.as_bytes()).1.unwrap_err().code(), "SignatureDoesNotMatch");
        // Trailers where the mode has none.
        assert_eq!(decode(signed(false), body.as_ref()).1.unwrap_err().code(), "InvalidRequest");
    }

    #[test]
    fn a_wrong_crc32_is_bad_digest() {
        let body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n";
        let (_, end) = decode(ChunkMode::UnsignedTrailer, body);
        let err = end.unwrap_err();
        assert_eq!((err.code().as_str(), err.status().as_u16()), ("BadDigest", 400));
        let body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32:not base64\r\n\r\n";
        assert_eq!(decode(ChunkMode::UnsignedTrailer, body).1.unwrap_err().code(), "InvalidRequest");
        // Other checksums pass through unverified.
        let body = b"5\r\nhello\r\n0\r\nx-amz-checksum-crc32c:AAAAAA==\r\n\r\n";
        assert_eq!(decode(ChunkMode::UnsignedTrailer, body).1.unwrap().get("x-amz-checksum-crc32c"), Some("AAAAAA=="));
    }

    #[test]
    fn every_truncation_is_an_incomplete_body() {
        let data = payload(200);
        for body in [sdk_signed_body(&data, 64, SEED, true).to_vec(), sdk_signed_body(&data, 64, SEED, false).to_vec()]
        {
            let trailer = body.windows(TRAILER_SIGNATURE.len()).any(|w| w == TRAILER_SIGNATURE.as_bytes());
            for len in 0..body.len() {
                let (_, end) = decode(signed(trailer), &body[..len]);
                let err = end.unwrap_err();
                assert_eq!(
                    (err.code().as_str(), err.status().as_u16()),
                    ("IncompleteBody", 400),
                    "truncated to {len}: {err}"
                );
            }
        }
    }

    #[test]
    fn declared_length_is_enforced() {
        let body = b"5\r\nhello\r\n0\r\n\r\n";
        let mut short = AwsChunkedDecoder::new(ChunkMode::UnsignedTrailer).with_decoded_length(6);
        assert_eq!(decode_in_pieces(&mut short, body, &[]).1.unwrap_err().code(), "IncompleteBody");
        let mut long = AwsChunkedDecoder::new(ChunkMode::UnsignedTrailer).with_decoded_length(4);
        assert_eq!(decode_in_pieces(&mut long, body, &[]).1.unwrap_err().code(), "InvalidRequest");

        let mut headers = HeaderMap::new();
        assert!(check_decoded_content_length(&headers, 5).is_ok());
        headers.insert("x-amz-decoded-content-length", HeaderValue::from_static("6"));
        assert_eq!(check_decoded_content_length(&headers, 5).unwrap_err().code(), "IncompleteBody");
        headers.insert("x-amz-decoded-content-length", HeaderValue::from_static("-1"));
        assert_eq!(decoded_content_length(&headers).unwrap_err().code(), "InvalidArgument");
    }

    #[test]
    fn limits_and_framing_errors() {
        let cases: [(&[u8], &str); 7] = [
            (b"1000001\r\n", "exceeds the limit"),
            (b"ffffffffffffffffff\r\n", "not a hex number"),
            (b"zz\r\n", "not a hex number"),
            (b"5\r\nhelloXX", "not followed by CRLF"),
            (b"0\r\n\r\nextra", "follow the end"),
            (b"0\r\nno colon\r\n\r\n", "name:value"),
            (b"0\r\nx-amz-trailer-signature:00\r\n\r\n", "unsigned payload"),
        ];
        for (body, message) in cases {
            let err = decode(ChunkMode::UnsignedTrailer, body).1.unwrap_err();
            assert_eq!(err.code().as_str(), "InvalidRequest", "{}", String::from_utf8_lossy(body));
            assert!(err.to_string().contains(message), "{err}");
        }
        let long_line = vec![b'1'; MAX_LINE_LEN + 2];
        let err = decode(ChunkMode::UnsignedTrailer, &long_line).1.unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
        let mut many = b"0\r\n".to_vec();
        for i in 0..=MAX_TRAILERS {
            many.extend_from_slice(format!("x-t{i}:v\r\n").as_bytes());
        }
        assert!(decode(ChunkMode::UnsignedTrailer, &many).1.unwrap_err().to_string().contains("more than"));
        // A smaller largest chunk, as `--max-aws-chunk-mib` sets it.
        let mut small = AwsChunkedDecoder::new(ChunkMode::UnsignedTrailer).with_max_chunk_size(4);
        let err = decode_in_pieces(&mut small, b"5\r\nhello\r\n0\r\n\r\n", &[]).1.unwrap_err();
        assert!(err.to_string().contains("the size 5 exceeds the limit of 4 bytes"), "{err}");
        let mut four = AwsChunkedDecoder::new(ChunkMode::UnsignedTrailer).with_max_chunk_size(4);
        assert!(decode_in_pieces(&mut four, b"4\r\nhell\r\n0\r\n\r\n", &[]).1.is_ok());
        // Signed chunks need their signature.
        assert_eq!(decode(signed(false), b"5\r\nhello\r\n").1.unwrap_err().code(), "SignatureDoesNotMatch");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_payload_any_split_decodes_to_the_payload(
            data in proptest::collection::vec(any::<u8>(), 0..3000),
            chunk_size in 1_usize..700,
            mut cuts in proptest::collection::vec(0_usize..4000, 0..12),
            signed_mode in any::<bool>(),
        ) {
            cuts.sort_unstable();
            let (mode, body) = if signed_mode {
                (signed(true), sdk_signed_body(&data, chunk_size, SEED, true))
            } else {
                let mut trailers = Trailers::new();
                trailers.push(CRC32_TRAILER, &crc32_trailer_value(crc32fast::hash(&data)));
                let mut body = BytesMut::new();
                data.chunks(chunk_size).for_each(|c| body.put(encode_unsigned_chunk(c)));
                body.put(encode_final_with_trailers(&trailers));
                (ChunkMode::UnsignedTrailer, body)
            };
            let mut decoder = AwsChunkedDecoder::new(mode).with_decoded_length(data.len() as u64);
            let (released, end) = decode_in_pieces(&mut decoder, &body, &cuts);
            prop_assert_eq!(released, data);
            prop_assert!(end.is_ok());
            prop_assert!(decoder.is_done());
        }

        #[test]
        fn arbitrary_bytes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..600), cut in 0_usize..600) {
            for mode in [signed(true), ChunkMode::UnsignedTrailer] {
                let _ = decode_in_pieces(&mut AwsChunkedDecoder::new(mode), &body, &[cut]);
            }
        }
    }
}
