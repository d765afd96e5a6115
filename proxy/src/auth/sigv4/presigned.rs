//! V4 in a presigned URL: `X-Amz-Algorithm`, `X-Amz-Credential`,
//! `X-Amz-Date`, `X-Amz-Expires`, `X-Amz-SignedHeaders` and
//! `X-Amz-Signature` in the query, names and values read decoded.
//!
//! The URL is valid from `X-Amz-Date` (a client up to 15 minutes ahead of
//! us may use it at once) for `X-Amz-Expires` seconds, at most a week. The
//! payload is unsigned unless the query carries `X-Amz-Content-Sha256`.

use std::time::SystemTime;

use super::{
    ContentSha256, Source, access_denied, canonical_headers, classify_content_sha256, parse_credential,
    parse_signature, parse_signed_headers, payload_mode, query_malformed, signature_mismatch, verify_candidates,
};
use crate::auth::error::AuthError;
use crate::auth::{
    AuthMethod, Authenticated, MAX_CLOCK_SKEW_SECS, MAX_PRESIGNED_EXPIRES_SECS, RequestParts, SecretLookup,
    SignedHeaders, lookup_key,
};
use crate::sigv4::{
    ALGORITHM, CanonicalRequest, UNSIGNED_PAYLOAD, canonical_query, parse_amz_date, percent_decode, query_pairs,
    unix_seconds,
};

/// Authenticates a request whose query carries V4 signature parameters.
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use aws_sigv4::http_request::SignableBody;
    use http::{HeaderMap, HeaderValue};
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::auth::fixtures::{AKID, SECRET, at_unix, check, code, keys, sdk_sign, t0, url};
    use crate::auth::{AuthMethod, PayloadMode, authenticate};

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
}
