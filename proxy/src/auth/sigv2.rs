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
use crate::auth::sigv4::{check_skew, lookup_key};
use crate::auth::{
    AuthMethod, Authenticated, PayloadMode, RequestParts, SecretLookup, parse_amz_date, parse_http_date,
    percent_decode, query_pairs, unix_seconds,
};

type HmacSha1 = Hmac<Sha1>;

/// Query parameters that are part of the V2 canonical resource: the S3
/// documentation's list and the extra ones botocore signs (its `QSAOfInterest`).
pub const SUB_RESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "defaultObjectAcl",
    "delete",
    "inventory",
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
        let computed = hmac_sha1(secret.expose(), &string_to_sign(parts, DateLine::Header(date_line), bucket_from_host));
        bool::from(computed.as_slice().ct_eq(client_signature.as_slice()))
    });
    if !matched {
        return Err(signature_mismatch(akid));
    }
    Ok(Authenticated {
        principal,
        access_key_id: akid.to_owned(),
        method: AuthMethod::SigV2Header,
        payload: PayloadMode::Unsigned,
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
    if unix_seconds(now) > expires_at {
        return Err(AuthError::AccessDenied {
            access_key_id: Some(akid),
            reason: format!("request has expired: the presigned URL expired at {expires} (seconds since the epoch)"),
        });
    }
    let computed = hmac_sha1(secret.expose(), &string_to_sign(parts, DateLine::Query(&expires), bucket_from_host));
    if !bool::from(computed.as_slice().ct_eq(client_signature.as_slice())) {
        return Err(signature_mismatch(&akid));
    }
    Ok(Authenticated { principal, access_key_id: akid, method: AuthMethod::SigV2Query, payload: PayloadMode::Unsigned })
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

/// The V2 string to sign.
fn string_to_sign(parts: &RequestParts<'_>, date_line: DateLine<'_>, bucket_from_host: Option<&str>) -> Vec<u8> {
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
    let mut sub_resources: Vec<(&str, Option<Vec<u8>>)> = query_pairs(parts.raw_query.unwrap_or_default())
        .filter(|(name, _)| SUB_RESOURCES.contains(name))
        .map(|(name, value)| (name, value.map(|v| percent_decode(v, false))))
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
