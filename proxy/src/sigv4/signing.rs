//! The credential scope, the signing key derived for it, and the strings to
//! sign: of a request, of an aws-chunked chunk and of its trailers.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::canonical::CanonicalRequest;
use super::{ALGORITHM, EMPTY_SHA256};

type HmacSha256 = Hmac<Sha256>;

/// The last field of every credential scope.
pub const SCOPE_TERMINATOR: &str = "aws4_request";

/// `date/region/service/aws4_request`, `date` being `YYYYMMDD`.
#[must_use]
pub fn scope(date: &str, region: &str, service: &str) -> String {
    format!("{date}/{region}/{service}/{SCOPE_TERMINATOR}")
}

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
        let k_region = SigningKey(hmac_sha256(&k_date.0, region.as_bytes()));
        let k_service = SigningKey(hmac_sha256(&k_region.0, service.as_bytes()));
        SigningKey(hmac_sha256(&k_service.0, SCOPE_TERMINATOR.as_bytes()))
    }

    /// The signature of `string_to_sign`: HMAC-SHA256 under this key.
    #[must_use]
    pub fn sign(&self, string_to_sign: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, string_to_sign)
    }

    /// The signature of a request made at `amz_date` within `scope`.
    #[must_use]
    pub fn sign_request(&self, amz_date: &str, scope: &str, request: &CanonicalRequest<'_>) -> [u8; 32] {
        self.sign(&string_to_sign(amz_date, scope, &request.to_bytes()))
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

fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

/// `AWS4-HMAC-SHA256\n<date>\n<scope>\n<hex sha256(canonical request)>`.
#[must_use]
pub fn string_to_sign(amz_date: &str, scope: &str, canonical_request: &[u8]) -> Vec<u8> {
    format!("{ALGORITHM}\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical_request))).into_bytes()
}

/// The string to sign of one aws-chunked chunk, chained to the previous
/// signature (the request's own for the first chunk), in lowercase hex.
#[must_use]
pub fn chunk_string_to_sign(amz_date: &str, scope: &str, previous_signature: &str, chunk: &[u8]) -> Vec<u8> {
    format!(
        "AWS4-HMAC-SHA256-PAYLOAD\n{amz_date}\n{scope}\n{previous_signature}\n{EMPTY_SHA256}\n{}",
        hex::encode(Sha256::digest(chunk))
    )
    .into_bytes()
}

/// The string to sign of an aws-chunked body's trailers (`name:value\n`
/// each, as canonicalised by the caller), chained to the final chunk's signature.
#[must_use]
pub fn trailer_string_to_sign(amz_date: &str, scope: &str, previous_signature: &str, trailers: &[u8]) -> Vec<u8> {
    format!(
        "AWS4-HMAC-SHA256-TRAILER\n{amz_date}\n{scope}\n{previous_signature}\n{}",
        hex::encode(Sha256::digest(trailers))
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use http::{HeaderMap, HeaderValue};

    use super::*;
    use crate::sigv4::canonical_headers;

    const DOC_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    #[test]
    fn the_key_is_the_aws_sdks() {
        // 2026-11-27T10:00:00Z.
        let day = SystemTime::UNIX_EPOCH + Duration::from_hours(498_826);
        for (secret, region, service) in
            [(DOC_SECRET, "us-east-1", "s3"), ("s3cr3t/with+plus=and spaces", "eu-west-3", "iam")]
        {
            let ours = SigningKey::derive(secret, "20261127", region, service);
            let sdk = aws_sigv4::sign::v4::generate_signing_key(secret, day, region, service);
            assert_eq!(ours.expose().as_slice(), sdk.as_ref(), "{region} {service}");
        }
        assert_eq!(
            format!("{:?}", SigningKey::derive(DOC_SECRET, "20130524", "us-east-1", "s3")),
            "SigningKey(<redacted>)"
        );
    }

    /// AWS S3 documentation, "Signature Calculations for the Authorization
    /// Header", Example: GET Object, line by line.
    #[test]
    fn aws_documentation_get_object_example() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("examplebucket.s3.amazonaws.com"));
        headers.insert("range", HeaderValue::from_static("bytes=0-9"));
        headers.insert("x-amz-content-sha256", HeaderValue::from_static(EMPTY_SHA256));
        headers.insert("x-amz-date", HeaderValue::from_static("20130524T000000Z"));
        let signed = ["host", "range", "x-amz-content-sha256", "x-amz-date"];
        let canonical_headers = canonical_headers(&headers, &signed).unwrap();
        let request = CanonicalRequest {
            method: "GET",
            path: "/test.txt",
            query: "",
            headers: &canonical_headers,
            signed_headers: &signed.join(";"),
            payload_hash: EMPTY_SHA256,
        };
        let expected_request = format!(
            "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
             x-amz-content-sha256:{EMPTY_SHA256}\nx-amz-date:20130524T000000Z\n\n\
             host;range;x-amz-content-sha256;x-amz-date\n{EMPTY_SHA256}"
        );
        assert_eq!(String::from_utf8(request.to_bytes()).unwrap(), expected_request);
        let scope = scope("20130524", "us-east-1", "s3");
        assert_eq!(
            String::from_utf8(string_to_sign("20130524T000000Z", &scope, &request.to_bytes())).unwrap(),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
             7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        let key = SigningKey::derive(DOC_SECRET, "20130524", "us-east-1", "s3");
        assert_eq!(
            hex::encode(key.sign_request("20130524T000000Z", &scope, &request)),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// The same documentation's streaming example: the first chunk, 64 KiB of 'a'.
    #[test]
    fn aws_documentation_first_chunk_signature() {
        let key = SigningKey::derive(DOC_SECRET, "20130524", "us-east-1", "s3");
        let to_sign = chunk_string_to_sign(
            "20130524T000000Z",
            "20130524/us-east-1/s3/aws4_request",
            "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
            &vec![b'a'; 65536],
        );
        assert_eq!(hex::encode(key.sign(&to_sign)), "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648");
    }
}
