//! The condition keys of one request (`docs/POLICIES.md` lists them).

use std::net::IpAddr;
use std::time::SystemTime;

use egress_access::Context;
use egress_admin::access::{Compiled, now_context};
use http::HeaderMap;
use http::header::{self, AsHeaderName};

use crate::auth::{AuthMethod, Authenticated};
use crate::s3::operation::Operation;
use crate::s3::request::S3Request;

/// Condition keys that are request headers, as S3 defines them.
const HEADER_KEYS: &[(&str, &str)] = &[
    ("x-amz-content-sha256", "s3:x-amz-content-sha256"),
    ("x-amz-acl", "s3:x-amz-acl"),
    ("x-amz-copy-source", "s3:x-amz-copy-source"),
    ("x-amz-metadata-directive", "s3:x-amz-metadata-directive"),
    ("x-amz-server-side-encryption", "s3:x-amz-server-side-encryption"),
    ("x-amz-storage-class", "s3:x-amz-storage-class"),
    ("x-amz-object-lock-mode", "s3:object-lock-mode"),
];

/// What the context is built from, besides the request.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The principal (or `anonymous`) and how it authenticated.
    pub principal: &'a str,
    pub authenticated: &'a Authenticated,
    /// `aws:SourceIp` ([`super::source_ip::source_ip`]).
    pub source_ip: IpAddr,
    /// Whether the client connection is TLS.
    pub secure: bool,
    pub now: SystemTime,
}

fn header(headers: &HeaderMap, name: impl AsHeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The context of `request` as `origin` sent it.
#[must_use]
pub fn request_context(origin: &Origin<'_>, compiled: &Compiled, request: &S3Request, headers: &HeaderMap) -> Context {
    let mut context = Context::new();
    context.set("aws:SourceIp", super::source_ip::canonical(origin.source_ip).to_string());
    context.set("aws:SecureTransport", if origin.secure { "true" } else { "false" });
    now_context(&mut context, origin.now);
    if let Some(agent) = header(headers, header::USER_AGENT) {
        context.set("aws:UserAgent", agent);
    }
    if let Some(referer) = header(headers, header::REFERER) {
        context.set("aws:Referer", referer);
    }
    let signed = match origin.authenticated.method {
        AuthMethod::SigV4Header => Some(("AWS4-HMAC-SHA256", "REST-HEADER")),
        AuthMethod::SigV4Query => Some(("AWS4-HMAC-SHA256", "REST-QUERY-STRING")),
        AuthMethod::SigV2Header => Some(("AWS", "REST-HEADER")),
        AuthMethod::SigV2Query => Some(("AWS", "REST-QUERY-STRING")),
        // Anonymous requests carry no user name, tags or signature keys.
        AuthMethod::Anonymous => None,
    };
    if let Some((version, kind)) = signed {
        compiled.principal_context(origin.principal, &mut context);
        context.set("s3:signatureversion", version);
        context.set("s3:authType", kind);
    }
    if matches!(request.operation, Operation::ListObjects | Operation::ListObjectsV2 | Operation::ListObjectVersions) {
        // A listing without a prefix lists from the root: AWS's examples
        // allow that with `"s3:prefix": [""]`.
        context.set("s3:prefix", request.query.get("prefix").unwrap_or(""));
        if let Some(delimiter) = request.query.get("delimiter") {
            context.set("s3:delimiter", delimiter);
        }
        if let Some(max_keys) = request.query.get("max-keys") {
            context.set("s3:max-keys", max_keys);
        }
    }
    if let Some(version) = request.version_id() {
        context.set("s3:VersionId", version);
    }
    for (name, key) in HEADER_KEYS {
        if let Some(value) = header(headers, *name) {
            context.set(key, value);
        }
    }
    context
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed")]

    use super::*;

    /// Every condition key the policy language knows is set by some request,
    /// or listed as never set (so that storing a policy on it warns).
    #[test]
    fn every_known_key_is_set_or_said_to_be_missing() {
        let mut headers = HeaderMap::new();
        for (name, _) in HEADER_KEYS {
            headers.insert(*name, "x".parse().unwrap());
        }
        headers.insert(header::USER_AGENT, "ua".parse().unwrap());
        headers.insert(header::REFERER, "https://example.com/".parse().unwrap());
        let target = crate::s3::addressing::resolve(Some("localhost"), "/data", &[]).unwrap();
        let query = Some("list-type=2&prefix=a&delimiter=/&max-keys=5&versionId=3");
        let listing = S3Request::parse(&http::Method::GET, target, query, &HeaderMap::new());
        let request = listing.unwrap();
        let authenticated = Authenticated {
            principal: "alice".into(),
            access_key_id: "EGRS".into(),
            method: AuthMethod::SigV4Header,
            payload: crate::auth::PayloadMode::Unsigned,
            signed_headers: crate::auth::SignedHeaders::AllAmz,
        };
        let origin = Origin {
            principal: "alice",
            authenticated: &authenticated,
            source_ip: "192.0.2.1".parse().unwrap(),
            secure: true,
            now: SystemTime::now(),
        };
        let mut tags = std::collections::BTreeMap::new();
        tags.insert("team".to_owned(), "vision".to_owned());
        let compiled = Compiled::new(Vec::new(), tags, egress_ledger::access::Limits::default());
        let context = request_context(&origin, &compiled, &request, &headers);
        for (key, _) in egress_access::keys::KNOWN_KEYS {
            let lower = key.to_ascii_lowercase();
            let never = egress_admin::access::NEVER_SET.contains(&lower.as_str());
            assert_eq!(context.get(key).is_some(), !never, "{key}: set {}, listed as never set {never}", !never);
        }
        for prefix in egress_access::keys::KNOWN_KEY_PREFIXES {
            let lower = prefix.to_ascii_lowercase();
            let never = egress_admin::access::NEVER_SET_PREFIXES.contains(&lower.as_str());
            let probe = format!("{prefix}team");
            assert_eq!(context.get(&probe).is_some(), !never, "{probe}");
        }
    }
}
