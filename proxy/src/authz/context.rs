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
    for name in ["x-amz-content-sha256", "x-amz-acl"] {
        if let Some(value) = header(headers, name) {
            context.set(&format!("s3:{name}"), value);
        }
    }
    context
}
