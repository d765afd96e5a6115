//! The legacy S3 signature, version 2 (HMAC-SHA1), which boto3 still uses for
//! presigned URLs against custom endpoints.
//!
//! Two forms: the header `Authorization: AWS AKID:base64(signature)` and the
//! query `AWSAccessKeyId=…&Signature=…&Expires=<epoch seconds>`. Both sign
//!
//! ```text
//! METHOD \n Content-MD5 \n Content-Type \n Date-or-Expires \n
//! x-amz-name:value \n …   (every x-amz- header, sorted, values joined with ',')
//! /bucket/raw-path?sub-resources
//! ```
//!
//! where the sub-resources are the S3 ones botocore signs (`acl`, `uploadId`,
//! `partNumber`, `versionId`, `response-*`, …), sorted by name, values
//! decoded. The canonical resource always names the bucket: for a
//! virtual-hosted request the caller passes the bucket it found in `Host`.
//! In a presigned URL, botocore moves the signed `x-amz-*`, `Content-Type`
//! and `Content-MD5` headers into the query; such parameters stand for the
//! header when the request does not send it.
//!
//! Only the sub-resources are signed: other query parameters (`x-id`,
//! `prefix`, …) can be changed without breaking a version 2 signature, as on
//! S3 itself. That weakness is the scheme's, not ours to fix.
//!
//! Promises: header requests must carry a `Date` or `x-amz-date` within 15
//! minutes of ours (S3 signs an empty date line when `x-amz-date` is present;
//! clients that signed the `Date` value instead are accepted too), query
//! requests are refused after `Expires`, and signatures are compared in
//! constant time. The payload is never signed in version 2.

use std::collections::BTreeMap;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha1::Sha1;
use subtle::ConstantTimeEq;

use crate::auth::error::AuthError;
use crate::auth::{
    AuthMethod, Authenticated, MAX_PRESIGNED_EXPIRES_SECS, PayloadMode, RequestParts, SecretLookup, SignedHeaders,
    check_skew, lookup_key,
};
use crate::sigv4::{parse_amz_date, parse_http_date, percent_decode, query_pairs, unix_seconds};

type HmacSha1 = Hmac<Sha1>;

/// Query parameters that are part of the V2 canonical resource: the S3
/// documentation's list, the extra ones botocore signs (its `QSAOfInterest`),
/// and `legal-hold` and `retention`, which S3 (and MinIO) sign too. Names
/// are compared decoded: `version%49d` is `versionId` here as everywhere.
/// An operation-selecting parameter outside this list is refused in a SigV2
/// request ([`crate::s3::request::S3Request::selector_unsigned_by_v2`]).
pub const SUB_RESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
    "legal-hold",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "retention",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Authenticates `Authorization: AWS AKID:signature`.
pub fn authenticate_header(
    parts: &RequestParts<'_>,
    authorization: &str,
    bucket_from_host: Option<&str>,
    lookup: &dyn SecretLookup,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    let credentials = authorization.strip_prefix("AWS").unwrap_or_default().trim();
    let Some((akid, signature)) = credentials.split_once(':').filter(|(a, s)| !a.is_empty() && !s.is_empty()) else {
        return Err(AuthError::InvalidArgument {
            access_key_id: None,
            reason: "the SigV2 Authorization header must be \"AWS AccessKeyId:Signature\"".to_owned(),
        });
    };
    let client_signature = decode_signature(signature, akid)?;

    let headers = parts.headers;
    let invalid_date = || AuthError::AccessDenied {
        access_key_id: Some(akid.to_owned()),
        reason: "AWS authentication requires a valid Date or x-amz-date header".to_owned(),
    };
    let date_header = header_str(headers, "date");
    // S3 signs an empty date line when x-amz-date is present (its value is
    // signed among the x-amz- headers); some clients signed Date anyway.
    let (request_time, date_lines) = match header_str(headers, "x-amz-date") {
        Some(amz) => {
            let t = parse_http_date(amz).or_else(|| parse_amz_date(amz)).ok_or_else(invalid_date)?;
            (t, vec!["", date_header.unwrap_or_default()])
        }
        None => {
            let date = date_header.ok_or_else(invalid_date)?;
            (parse_http_date(date).or_else(|| parse_amz_date(date)).ok_or_else(invalid_date)?, vec![date])
        }
    };

    let (principal, secret) = lookup_key(lookup, akid)?;
    check_skew(akid, request_time, now)?;

    let mut date_lines = date_lines;
    date_lines.dedup();
    let matched = date_lines.iter().any(|date_line| {
        resource_forms(parts, bucket_from_host).any(|slash| {
            let to_sign = string_to_sign(parts, DateLine::Header(date_line), bucket_from_host, slash);
            bool::from(hmac_sha1(secret.expose(), &to_sign).as_slice().ct_eq(client_signature.as_slice()))
        })
    });
    if !matched {
        return Err(signature_mismatch(akid));
    }
    Ok(Authenticated {
        principal,
        access_key_id: akid.to_owned(),
        method: AuthMethod::SigV2Header,
        payload: PayloadMode::Unsigned,
        signed_headers: SignedHeaders::AllAmz,
    })
}

/// Authenticates a V2 presigned URL (`AWSAccessKeyId`, `Signature`, `Expires`).
pub fn authenticate_query(
    parts: &RequestParts<'_>,
    bucket_from_host: Option<&str>,
    lookup: &dyn SecretLookup,
    now: SystemTime,
) -> Result<Authenticated, AuthError> {
    let (mut akid, mut signature, mut expires) = (None, None, None);
    for (name, value) in query_pairs(parts.raw_query.unwrap_or_default()) {
        let slot = match name {
            "AWSAccessKeyId" => &mut akid,
            "Signature" => &mut signature,
            "Expires" => &mut expires,
            _ => continue,
        };
        // Base64 signatures hold '+': only a client's %2B is a plus, so never
        // read '+' as a space here.
        let value = String::from_utf8(percent_decode(value.unwrap_or_default(), false)).ok();
        if slot.replace(value).is_some() {
            return Err(AuthError::AccessDenied {
                access_key_id: None,
                reason: format!("the query parameter {name} appears twice"),
            });
        }
    }
    let (Some(Some(akid)), Some(Some(signature)), Some(Some(expires))) = (akid, signature, expires) else {
        return Err(AuthError::AccessDenied {
            access_key_id: None,
            reason: "query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
                .to_owned(),
        });
    };
    let client_signature = decode_signature(&signature, &akid)?;
    let expires_at: i64 = match expires.parse() {
        Ok(n) if expires.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => {
            return Err(AuthError::AccessDenied {
                access_key_id: Some(akid),
                reason: format!("Expires {expires:?} is not a number of seconds since the epoch"),
            });
        }
    };

    let (principal, secret) = lookup_key(lookup, &akid)?;
    // SigV4 caps a presigned URL at a week; a V2 URL names only its end, so
    // the same cap applies to how far ahead that end is.
    if expires_at.saturating_sub(unix_seconds(now)) > MAX_PRESIGNED_EXPIRES_SECS.cast_signed() {
        return Err(AuthError::AccessDenied {
            access_key_id: Some(akid),
            reason: format!(
                "the presigned URL expires at {expires} (seconds since the epoch), more than {MAX_PRESIGNED_EXPIRES_SECS} \
                 seconds (one week) from now; presign for at most a week"
            ),
        });
    }
    if unix_seconds(now) > expires_at {
        return Err(AuthError::AccessDenied {
            access_key_id: Some(akid),
            reason: format!("request has expired: the presigned URL expired at {expires} (seconds since the epoch)"),
        });
    }
    let matched = resource_forms(parts, bucket_from_host).any(|slash| {
        let to_sign = string_to_sign(parts, DateLine::Query(&expires), bucket_from_host, slash);
        bool::from(hmac_sha1(secret.expose(), &to_sign).as_slice().ct_eq(client_signature.as_slice()))
    });
    if !matched {
        return Err(signature_mismatch(&akid));
    }
    Ok(Authenticated {
        principal,
        access_key_id: akid,
        method: AuthMethod::SigV2Query,
        payload: PayloadMode::Unsigned,
        signed_headers: SignedHeaders::AllAmz,
    })
}

fn decode_signature(signature: &str, akid: &str) -> Result<Vec<u8>, AuthError> {
    match BASE64.decode(signature.trim()) {
        Ok(sig) if sig.len() == 20 => Ok(sig),
        _ => Err(AuthError::SignatureDoesNotMatch {
            access_key_id: Some(akid.to_owned()),
            reason: "a SigV2 signature must be the base64 of a 20-byte HMAC-SHA1".to_owned(),
        }),
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim)
}

/// What the date line of the string to sign holds.
#[derive(Clone, Copy)]
enum DateLine<'a> {
    /// Header auth: the `Date` value, or empty when `x-amz-date` is present.
    Header(&'a str),
    /// Query auth: the `Expires` value. botocore moves the signed `x-amz-*`,
    /// `Content-Type` and `Content-MD5` headers of a presigned request into
    /// its query, so they count as headers when no such header was sent.
    Query(&'a str),
}

/// The resource forms to try: as sent, and for a path-style request on a
/// bucket alone (`/bucket`) also `/bucket/`, which botocore signs ("the
/// `auth_path` must be terminated with a '/'") while the AWS documentation
/// shows `/bucket`. Both name the same resource.
fn resource_forms(parts: &RequestParts<'_>, bucket_from_host: Option<&str>) -> impl Iterator<Item = bool> {
    let path = parts.raw_path.strip_prefix('/').unwrap_or(parts.raw_path);
    let bucket_only = bucket_from_host.is_none() && !path.is_empty() && !path.contains('/');
    [false].into_iter().chain(bucket_only.then_some(true))
}

/// The V2 string to sign; `bucket_slash` appends '/' to a bucket-only path.
fn string_to_sign(
    parts: &RequestParts<'_>,
    date_line: DateLine<'_>,
    bucket_from_host: Option<&str>,
    bucket_slash: bool,
) -> Vec<u8> {
    let headers = parts.headers;
    let query_headers: Vec<(String, Vec<u8>)> = match date_line {
        DateLine::Header(_) => Vec::new(),
        DateLine::Query(_) => query_pairs(parts.raw_query.unwrap_or_default())
            .filter_map(|(name, value)| {
                let name = String::from_utf8(percent_decode(name, true)).ok()?.to_ascii_lowercase();
                let header_like = name.starts_with("x-amz-") || name == "content-type" || name == "content-md5";
                (header_like && !headers.contains_key(name.as_str()))
                    .then(|| (name, percent_decode(value.unwrap_or_default(), true)))
            })
            .collect(),
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(parts.method.as_bytes());
    out.push(b'\n');
    for name in ["content-md5", "content-type"] {
        if let Some(v) = headers.get(name) {
            out.extend_from_slice(v.as_bytes().trim_ascii());
        } else if let Some((_, v)) = query_headers.iter().find(|(n, _)| n == name) {
            out.extend_from_slice(v.trim_ascii());
        }
        out.push(b'\n');
    }
    let (DateLine::Header(date) | DateLine::Query(date)) = date_line;
    out.extend_from_slice(date.as_bytes());
    out.push(b'\n');

    // Every x-amz- header once, sorted, its values joined with ','.
    let mut amz: BTreeMap<&str, Vec<&[u8]>> = BTreeMap::new();
    for (name, value) in headers {
        if name.as_str().starts_with("x-amz-") {
            amz.entry(name.as_str()).or_default().push(value.as_bytes());
        }
    }
    for (name, value) in &query_headers {
        if name.starts_with("x-amz-") {
            amz.entry(name.as_str()).or_default().push(value);
        }
    }
    for (name, values) in amz {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(v.trim_ascii());
        }
        out.push(b'\n');
    }

    if let Some(bucket) = bucket_from_host {
        out.push(b'/');
        out.extend_from_slice(bucket.as_bytes());
    }
    out.extend_from_slice(if parts.raw_path.is_empty() { b"/" } else { parts.raw_path.as_bytes() });
    if bucket_slash {
        out.push(b'/');
    }
    let mut sub_resources: Vec<(&str, Option<Vec<u8>>)> = query_pairs(parts.raw_query.unwrap_or_default())
        .filter_map(|(name, value)| {
            let decoded = percent_decode(name, true);
            let name = SUB_RESOURCES.iter().find(|s| s.as_bytes() == decoded.as_slice())?;
            // Values decoded as the rest of the proxy decodes them (`+` is
            // a space), so that the signature covers what is recorded and
            // forwarded; a client that meant a plus sent `%2B`.
            Some((*name, value.map(|v| percent_decode(v, true))))
        })
        .collect();
    // Stable, like botocore's: repeated names keep the order they were sent in.
    sub_resources.sort_by_key(|(name, _)| *name);
    for (i, (name, value)) in sub_resources.iter().enumerate() {
        out.push(if i == 0 { b'?' } else { b'&' });
        out.extend_from_slice(name.as_bytes());
        if let Some(value) = value {
            out.push(b'=');
            out.extend_from_slice(value);
        }
    }
    out
}

fn hmac_sha1(secret: &str, message: &[u8]) -> [u8; 20] {
    let mut mac = HmacSha1::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn signature_mismatch(akid: &str) -> AuthError {
    AuthError::SignatureDoesNotMatch {
        access_key_id: Some(akid.to_owned()),
        reason: "the SigV2 signature we calculated does not match the signature you provided; \
                 check your secret access key, and that the Date, Content-Type and Content-MD5 sent are the ones signed"
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use http::HeaderValue;

    use super::*;
    use crate::auth::authenticate_with_bucket_host;
    use crate::auth::fixtures::{AKID, SECRET, at_unix, code, keys, t0};

    const DOC_AKID: &str = "AKIAIOSFODNN7EXAMPLE";
    const DOC_SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    struct Req {
        method: &'static str,
        path: &'static str,
        query: Option<&'static str>,
        headers: HeaderMap,
    }

    impl Req {
        fn new(method: &'static str, path_and_query: &'static str, headers: &[(&str, &str)]) -> Req {
            let (path, query) = match path_and_query.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (path_and_query, None),
            };
            let mut map = HeaderMap::new();
            for (name, value) in headers {
                map.append(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            Req { method, path, query, headers: map }
        }

        fn check(
            &self,
            bucket: Option<&str>,
            lookup: &dyn SecretLookup,
            now: SystemTime,
        ) -> Result<Authenticated, AuthError> {
            let parts = RequestParts {
                method: self.method,
                raw_path: self.path,
                raw_query: self.query,
                headers: &self.headers,
            };
            authenticate_with_bucket_host(&parts, bucket, lookup, now)
        }
    }

    fn at(http_date: &str) -> SystemTime {
        at_unix(parse_http_date(http_date).unwrap().unsigned_abs())
    }

    /// AWS S3 documentation, "Authenticating Requests (AWS Signature Version
    /// 2)", Object GET, virtual-hosted.
    #[test]
    fn aws_documentation_object_get() {
        let date = "Tue, 27 Mar 2007 19:36:42 +0000";
        let req = Req::new(
            "GET",
            "/photos/puppy.jpg",
            &[
                ("host", "awsexamplebucket1.us-west-1.s3.amazonaws.com"),
                ("date", date),
                ("authorization", "AWS AKIAIOSFODNN7EXAMPLE:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="),
            ],
        );
        let lookup = keys(DOC_AKID, DOC_SECRET);
        let auth = req.check(Some("awsexamplebucket1"), &lookup, at(date)).unwrap();
        assert_eq!((auth.method, auth.access_key_id.as_str()), (AuthMethod::SigV2Header, DOC_AKID));
        assert!(matches!(auth.payload, PayloadMode::Unsigned));
        // Without the bucket from the host, the resource is not the one signed.
        assert_eq!(code(req.check(None, &lookup, at(date))), "SignatureDoesNotMatch");
        assert_eq!(
            code(req.check(Some("awsexamplebucket1"), &keys(DOC_AKID, "wrong"), at(date))),
            "SignatureDoesNotMatch"
        );
    }

    /// Same documentation, Object PUT (Content-Type is signed).
    #[test]
    fn aws_documentation_object_put() {
        let date = "Tue, 27 Mar 2007 21:15:45 +0000";
        let req = Req::new(
            "PUT",
            "/photos/puppy.jpg",
            &[
                ("content-type", "image/jpeg"),
                ("content-length", "94328"),
                ("date", date),
                ("authorization", "AWS AKIAIOSFODNN7EXAMPLE:iqRzw+ileNPu1fhspnRs8nOjjIA="),
            ],
        );
        assert_eq!(code(req.check(Some("awsexamplebucket1"), &keys(DOC_AKID, DOC_SECRET), at(date))), "ok");
    }

    /// The documentation's earlier edition (bucket johnsmith): fetching an ACL,
    /// a sub-resource that is part of the canonical resource.
    #[test]
    fn aws_documentation_acl_sub_resource() {
        let date = "Tue, 27 Mar 2007 19:44:46 +0000";
        let req = Req::new(
            "GET",
            "/?acl",
            &[("date", date), ("authorization", "AWS AKIAIOSFODNN7EXAMPLE:c2WLPFtWHVgbEmeEG93a4cG37dM=")],
        );
        let lookup = keys(DOC_AKID, DOC_SECRET);
        assert_eq!(code(req.check(Some("johnsmith"), &lookup, at(date))), "ok");
        let mut no_acl = req;
        no_acl.query = Some("policy");
        assert_eq!(code(no_acl.check(Some("johnsmith"), &lookup, at(date))), "SignatureDoesNotMatch");
    }

    /// The earlier edition's DELETE: with x-amz-date the date line is empty.
    #[test]
    fn aws_documentation_delete_with_x_amz_date() {
        let req = Req::new(
            "DELETE",
            "/johnsmith/photos/puppy.jpg",
            &[
                ("user-agent", "dotnet"),
                ("host", "s3.amazonaws.com"),
                ("date", "Tue, 27 Mar 2007 21:20:27 +0000"),
                ("x-amz-date", "Tue, 27 Mar 2007 21:20:26 +0000"),
                ("authorization", "AWS AKIAIOSFODNN7EXAMPLE:R4dJ53KECjStyBO5iTBJZ4XVOaI="),
            ],
        );
        let now = at("Tue, 27 Mar 2007 21:20:26 +0000");
        assert_eq!(code(req.check(None, &keys(DOC_AKID, DOC_SECRET), now)), "ok");
    }

    /// The earlier edition's query-string example.
    #[test]
    fn aws_documentation_query_string() {
        let req = Req::new(
            "GET",
            "/photos/puppy.jpg?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Signature=NpgCjnDzrM%2BWFzoENXmpNDUsSn8%3D&Expires=1175139620",
            &[("host", "johnsmith.s3.amazonaws.com")],
        );
        let lookup = keys(DOC_AKID, DOC_SECRET);
        let before = at_unix(1_175_139_000);
        let auth = req.check(Some("johnsmith"), &lookup, before).unwrap();
        assert_eq!(auth.method, AuthMethod::SigV2Query);
        let after = at_unix(1_175_139_621);
        let err = req.check(Some("johnsmith"), &lookup, after).unwrap_err();
        assert_eq!((err.code().as_str(), err.access_key_id()), ("AccessDenied", Some(DOC_AKID)));
        assert!(err.to_string().contains("expired"));
    }

    // The vectors below were produced by botocore 1.43 (HmacV1Auth /
    // HmacV1QueryAuth) with key EGRSTESTKEY0000001 and secret
    // "s3cr3t/with+plus=and spaces".

    #[test]
    fn botocore_path_style_upload_part_with_headers() {
        let req = Req::new(
            "PUT",
            "/my-bucket/dir/my%20file%2Bv%3D1.txt?partNumber=2&uploadId=abc%2Fdef&x-id=UploadPart",
            &[
                ("content-type", "text/plain"),
                ("content-md5", "XrY7u+Ae7tCTyyK7j1rNww=="),
                ("x-amz-meta-reviewer", "joe"),
                ("x-amz-storage-class", "STANDARD"),
                ("x-amz-meta-reviewer", "jane"),
                ("date", "Fri, 27 Nov 2026 10:00:00 GMT"),
                ("authorization", "AWS EGRSTESTKEY0000001:c42FSfd/T59O4ilo0ppuwKsB8O8="),
            ],
        );
        let lookup = keys(AKID, SECRET);
        assert_eq!(code(req.check(None, &lookup, t0())), "ok");
        assert_eq!(code(req.check(None, &lookup, t0() + Duration::from_mins(16))), "RequestTimeTooSkewed");
        let mut tampered = Req { query: Some("partNumber=3&uploadId=abc%2Fdef&x-id=UploadPart"), ..req };
        assert_eq!(code(tampered.check(None, &lookup, t0())), "SignatureDoesNotMatch");
        tampered.query = Some("partNumber=2&uploadId=abc%2Fdef&x-id=Other");
        // Not a sub-resource: SigV2 does not sign it (nor does S3 check it).
        assert_eq!(code(tampered.check(None, &lookup, t0())), "ok");
        tampered.headers.insert("x-amz-meta-reviewer", HeaderValue::from_static("mallory"));
        assert_eq!(code(tampered.check(None, &lookup, t0())), "SignatureDoesNotMatch");
    }

    #[test]
    fn botocore_virtual_hosted_get_with_response_overrides() {
        let req = Req::new(
            "GET",
            "/photos/a%2Bb.jpg?versionId=v%2F1&response-content-disposition=attachment%3B%20filename%3D%22a%20b.jpg%22&x-id=GetObject",
            &[
                ("date", "Fri, 27 Nov 2026 10:00:00 GMT"),
                ("authorization", "AWS EGRSTESTKEY0000001:wlODoI45LV1X9jSJ+lq+LDk4czs="),
            ],
        );
        assert_eq!(code(req.check(Some("my-bucket"), &keys(AKID, SECRET), t0())), "ok");
    }

    #[test]
    fn botocore_presigned_urls() {
        let lookup = keys(AKID, SECRET);
        let get = Req::new(
            "GET",
            "/my-bucket/report%202026.csv?response-content-type=text%2Fcsv&AWSAccessKeyId=EGRSTESTKEY0000001\
             &Signature=zVoYl7OTL7Eok4%2BKZ17lmAOpC0w%3D&Expires=1795780800",
            &[("host", "proxy.test")],
        );
        assert_eq!(code(get.check(None, &lookup, t0())), "ok");
        assert_eq!(code(get.check(None, &lookup, t0() + Duration::from_secs(7201))), "AccessDenied");

        // botocore moved the signed Content-Type and x-amz-acl into the query.
        let put = "/my-bucket/up.bin?AWSAccessKeyId=EGRSTESTKEY0000001&Signature=shb3MYI8Gkhzag2b4sKmAbQ3KCg%3D\
                   &content-type=application%2Foctet-stream&x-amz-acl=private&Expires=1795780800";
        let sent_as_query = Req::new("PUT", put, &[]);
        assert_eq!(code(sent_as_query.check(None, &lookup, t0())), "ok");
        let with_header = Req::new("PUT", put, &[("content-type", "application/octet-stream")]);
        assert_eq!(code(with_header.check(None, &lookup, t0())), "ok");
        let other_type = Req::new("PUT", put, &[("content-type", "text/html")]);
        assert_eq!(code(other_type.check(None, &lookup, t0())), "SignatureDoesNotMatch");
    }

    #[test]
    fn sub_resources_are_read_decoded() {
        // The signature of `botocore_virtual_hosted_get_with_response_overrides`
        // covers `versionId=v/1`, however the name is spelt on the wire; a
        // request without it is another resource.
        let signed = "AWS EGRSTESTKEY0000001:wlODoI45LV1X9jSJ+lq+LDk4czs=";
        let date = ("date", "Fri, 27 Nov 2026 10:00:00 GMT");
        let spelt = Req::new(
            "GET",
            "/photos/a%2Bb.jpg?version%49d=v%2F1&response-content-disposition=attachment%3B%20filename%3D%22a%20b.jpg%22",
            &[date, ("authorization", signed)],
        );
        assert_eq!(code(spelt.check(Some("my-bucket"), &keys(AKID, SECRET), t0())), "ok");
        let without = Req::new(
            "GET",
            "/photos/a%2Bb.jpg?response-content-disposition=attachment%3B%20filename%3D%22a%20b.jpg%22",
            &[date, ("authorization", signed)],
        );
        assert_eq!(code(without.check(Some("my-bucket"), &keys(AKID, SECRET), t0())), "SignatureDoesNotMatch");
        assert!(SUB_RESOURCES.contains(&"legal-hold") && SUB_RESOURCES.contains(&"retention"));
    }

    #[test]
    fn a_raw_plus_in_a_sub_resource_is_a_space_as_everywhere() {
        // The proxy records and forwards `versionId=a+b` as "a b"; the
        // signature must cover that, not "a+b".
        let date = "Fri, 27 Nov 2026 10:00:00 GMT";
        let sign = |resource: &str| {
            let to_sign = format!("GET\n\n\n{date}\n{resource}");
            let signature = BASE64.encode(hmac_sha1(SECRET, to_sign.as_bytes()));
            let mut headers = HeaderMap::new();
            headers.insert("date", HeaderValue::from_static(date));
            headers.insert("authorization", HeaderValue::from_str(&format!("AWS {AKID}:{signature}")).unwrap());
            Req { method: "GET", path: "/bkt/k", query: Some("versionId=a+b"), headers }
        };
        let lookup = keys(AKID, SECRET);
        assert_eq!(code(sign("/bkt/k?versionId=a b").check(None, &lookup, t0())), "ok");
        assert_eq!(code(sign("/bkt/k?versionId=a+b").check(None, &lookup, t0())), "SignatureDoesNotMatch");
    }

    #[test]
    fn presigned_urls_live_at_most_a_week() {
        let lookup = keys(AKID, SECRET);
        let now = unix_seconds(t0());
        let url = |expires: i64| {
            format!(
                "/b/k?AWSAccessKeyId=EGRSTESTKEY0000001&Signature=zVoYl7OTL7Eok4%2BKZ17lmAOpC0w%3D&Expires={expires}"
            )
        };
        let too_long = url(now + 604_801);
        let err = Req::new("GET", Box::leak(too_long.into_boxed_str()), &[]).check(None, &lookup, t0()).unwrap_err();
        assert_eq!(err.code().as_str(), "AccessDenied");
        assert!(err.to_string().contains("one week"), "{err}");
        // A week exactly is within the cap (and then fails on its bogus signature).
        let week = url(now + 604_800);
        let err = Req::new("GET", Box::leak(week.into_boxed_str()), &[]).check(None, &lookup, t0()).unwrap_err();
        assert_eq!(err.code().as_str(), "SignatureDoesNotMatch");
    }

    #[test]
    fn malformed_or_missing_parts() {
        let lookup = keys(AKID, SECRET);
        let date = ("date", "Fri, 27 Nov 2026 10:00:00 GMT");
        for (auth, expected) in [
            ("AWS ", "InvalidArgument"),
            ("AWS EGRSTESTKEY0000001", "InvalidArgument"),
            ("AWS EGRSTESTKEY0000001:not base64!", "SignatureDoesNotMatch"),
            ("AWS EGRSTESTKEY0000001:AAAA", "SignatureDoesNotMatch"),
            ("AWS EGRSOTHER:c42FSfd/T59O4ilo0ppuwKsB8O8=", "InvalidAccessKeyId"),
        ] {
            let req = Req::new("GET", "/b/k", &[date, ("authorization", auth)]);
            assert_eq!(code(req.check(None, &lookup, t0())), expected, "{auth}");
        }
        let no_date =
            Req::new("GET", "/b/k", &[("authorization", "AWS EGRSTESTKEY0000001:c42FSfd/T59O4ilo0ppuwKsB8O8=")]);
        assert_eq!(code(no_date.check(None, &lookup, t0())), "AccessDenied");
        for query in [
            "AWSAccessKeyId=EGRSTESTKEY0000001&Expires=1795780800",
            "Signature=c42FSfd/T59O4ilo0ppuwKsB8O8%3D&AWSAccessKeyId=A&Expires=soon",
        ] {
            let req = Req { query: Some(query), ..Req::new("GET", "/b/k", &[]) };
            assert_eq!(code(req.check(None, &lookup, t0())), "AccessDenied", "{query}");
        }
    }
}
