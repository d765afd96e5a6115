//! V4 in the `Authorization` header:
//! `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
//!
//! The request time is `x-amz-date` (else `Date`) and must fall on the
//! credential's date; `x-amz-content-sha256` must be sent and signed, since
//! it says how the body is bound to the signature.

use std::time::SystemTime;

use http::HeaderMap;

use super::{
    Credential, Source, access_denied, canonical_headers, classify_content_sha256, header_malformed, invalid_argument,
    parse_credential, parse_signature, parse_signed_headers, payload_mode, signature_mismatch, verify_candidates,
};
use crate::auth::error::AuthError;
use crate::auth::{AuthMethod, Authenticated, RequestParts, SecretLookup, SignedHeaders, check_skew, lookup_key};
use crate::sigv4::{ALGORITHM, CanonicalRequest, canonical_query, format_amz_date, parse_amz_date, parse_http_date};

/// The parsed `Authorization: AWS4-HMAC-SHA256 …` header.
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sigv4::http_request::SignableBody;
    use http::HeaderValue;
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::auth::fixtures::{
        AKID, ClientRequest, SECRET, at_unix, check, code, header_signed, keys, sdk_sign, t0, url,
    };
    use crate::auth::{PayloadMode, authenticate};
    use crate::sigv4::{EMPTY_SHA256, STREAMING_SIGNED_PAYLOAD, SigningKey, UNSIGNED_PAYLOAD};

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
}
