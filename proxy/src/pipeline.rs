//! The path of one request: address, authenticate, record `start` (durable
//! before anything goes upstream), forward re-signed, and hand the response
//! back through a [`MeteredBody`] that records `end`.
//!
//! Errors become S3 XML responses here, in one place; nothing below picks a
//! status code.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use egress_ledger::principals::{PrincipalStore, SecretKey};
use egress_ledger::{EndRecord, Entry, Ledger, Outcome, StartRecord};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::auth::{self, AuthError, AuthMethod, Authenticated, RequestParts, SecretLookup};
use crate::body;
use crate::meter::{EndTemplate, MeteredBody};
use crate::passthrough::Channel;
use crate::s3::addressing::{self, Target};
use crate::s3::error::S3Error;
use crate::s3::operation::operation;
use crate::stall::Stalled;
use crate::upstream::client::UpstreamBody;
use crate::upstream::{Route, Upstream, UpstreamResponseBody};

/// Body of every response the proxy sends.
pub type ResponseBody = http_body_util::combinators::UnsyncBoxBody<Bytes, crate::BoxError>;

/// Everything a request needs, shared by all connections.
#[derive(Debug)]
pub struct ProxyState {
    pub ledger: Ledger,
    pub principals: PrincipalStore,
    pub upstream: Upstream,
    pub virtual_host_domains: Vec<String>,
    /// A request or response body that moves no byte for this long is cut.
    pub body_idle_timeout: Duration,
    /// Time the upstream has to start answering a request without a body.
    pub upstream_header_timeout: Duration,
    pub metrics: Arc<egress_admin::Metrics>,
}

impl ProxyState {
    /// The same state with an upstream connection pool of its own, for
    /// another worker thread ([`Upstream::fork`]).
    #[must_use]
    pub fn fork(&self) -> ProxyState {
        ProxyState {
            ledger: self.ledger.clone(),
            principals: self.principals.clone(),
            upstream: self.upstream.fork(),
            virtual_host_domains: self.virtual_host_domains.clone(),
            body_idle_timeout: self.body_idle_timeout,
            upstream_header_timeout: self.upstream_header_timeout,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

impl SecretLookup for PrincipalStore {
    fn lookup(&self, access_key_id: &str) -> Option<(String, SecretKey)> {
        match PrincipalStore::lookup(self, access_key_id) {
            Ok(found) => found.map(|k| (k.principal, k.secret_access_key)),
            Err(e) => {
                tracing::error!(error = %e, "principal store lookup failed");
                None
            }
        }
    }
}

/// Request headers never forwarded: hop-by-hop ones, and the client's own
/// signature, which the upstream signature replaces.
const DROP_REQUEST_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "authorization",
    "expect",
    "x-amz-date",
    "x-amz-content-sha256",
    "x-amz-security-token",
];

/// Response headers never passed back (hop-by-hop).
const DROP_RESPONSE_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    auth::query_pairs(query?)
        .find(|(n, _)| *n == name)
        .map(|(_, v)| String::from_utf8_lossy(&auth::percent_decode(v.unwrap_or(""), true)).into_owned())
}

/// Handles one request end to end. `passthrough` is the client
/// connection's buffer where it can take bodies passed through
/// ([`crate::passthrough`]).
pub async fn handle(
    state: Arc<ProxyState>,
    remote: SocketAddr,
    stalled: Stalled,
    passthrough: Option<Arc<Channel>>,
    request: Request<Incoming>,
) -> Response<ResponseBody> {
    let started = Instant::now();
    let req_id = uuid::Uuid::now_v7().to_string();
    let (mut parts, body) = request.into_parts();
    // HTTP/2 carries the host in :authority; SigV4 signs it as `host`.
    if !parts.headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
        && let Ok(value) = HeaderValue::from_str(authority.as_str())
    {
        parts.headers.insert(header::HOST, value);
    }
    let head = parts.method == Method::HEAD;
    let raw_path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().map(str::to_owned);
    let host = header_str(&parts.headers, header::HOST);

    let target = addressing::resolve(host.as_deref(), &raw_path, &state.virtual_host_domains);
    let (bucket, key) = match &target {
        Ok(t) => (t.bucket.clone(), t.key.clone()),
        Err(_) => (None, None),
    };
    let mut start = StartRecord {
        req: req_id.clone(),
        principal: None,
        access_key_id: None,
        source_ip: Some(remote.ip().to_string()),
        user_agent: header_str(&parts.headers, header::USER_AGENT),
        method: parts.method.as_str().to_owned(),
        operation: operation(
            parts.method.as_str(),
            bucket.is_some(),
            key.is_some(),
            raw_query.as_deref(),
            &parts.headers,
        ),
        bucket,
        key,
        version_id: query_param(raw_query.as_deref(), "versionId"),
        range: header_str(&parts.headers, header::RANGE),
    };

    let verdict = target.map_err(|e| {
        S3Error::new(
            StatusCode::BAD_REQUEST,
            match e {
                addressing::AddressError::InvalidBucketName(_) => "InvalidBucketName",
                _ => "InvalidURI",
            },
            e.to_string(),
        )
    });
    let verdict = verdict.and_then(|target| {
        let request_parts = RequestParts {
            method: parts.method.as_str(),
            raw_path: &raw_path,
            raw_query: raw_query.as_deref(),
            headers: &parts.headers,
        };
        let bucket_from_host = if target.virtual_hosted { target.bucket.as_deref() } else { None };
        auth::authenticate_with_bucket_host(&request_parts, bucket_from_host, &state.principals, SystemTime::now())
            .map(|authenticated| (target, authenticated))
            .map_err(|e: AuthError| {
                start.access_key_id = e.access_key_id().map(str::to_owned);
                S3Error::from(&e)
            })
    });
    if let Ok((_, authenticated)) = &verdict {
        start.principal = Some(authenticated.principal.clone());
        start.access_key_id = Some(authenticated.access_key_id.clone());
    }
    // Only object reads have an object size; a listing's length is not one.
    let object_read = matches!(start.operation.as_str(), "GetObject" | "HeadObject");

    let operation = start.operation.clone();
    let bucket = start.bucket.clone();
    // Only HTTP/1 responses are written by the connection's own writer,
    // which is what passes bodies through (HTTP/2 frames every body itself).
    let passthrough = passthrough.filter(|_| matches!(parts.version, http::Version::HTTP_10 | http::Version::HTTP_11));
    let route = if operation == "GetObject" && http_body::Body::is_end_stream(&body) {
        Route::ObjectGet { passthrough }
    } else {
        Route::Pooled
    };
    let read_only = matches!(parts.method, Method::GET | Method::HEAD);
    let appending = Instant::now();
    let record = async {
        let appended = state.ledger.append(Entry::Start(start)).await;
        state.metrics.ledger_append.observe(appending.elapsed());
        appended
    };
    // Fail closed: no byte leaves, and nothing that can change data goes
    // upstream, before the start is durable. A read goes upstream while its
    // start is being made durable (that fsync is most of its cost); its
    // answer waits for the start, and is dropped unsent if the ledger fails.
    // While the ledger refuses appends (a full disk, until it heals), reads
    // wait for their start too: the upstream is not asked for what would
    // be answered 503, and its access logs show no read that never left.
    let (appended, forwarded) = match verdict {
        Err(error) => (record.await, Err((error, Outcome::Denied))),
        Ok((target, authenticated)) if read_only && state.ledger.writable() => {
            tokio::join!(record, forward(&state, parts, body, &target, &authenticated, raw_query.as_deref(), route))
        }
        Ok((target, authenticated)) => match record.await {
            Ok(appended) => {
                (Ok(appended), forward(&state, parts, body, &target, &authenticated, raw_query.as_deref(), route).await)
            }
            Err(e) => (Err(e), Err((S3Error::ledger_unavailable(), Outcome::Denied))),
        },
    };
    let start_seq = match appended {
        Ok(appended) => appended.seq,
        Err(e) => {
            tracing::error!(req = req_id, error = %e, "ledger refused the start record; answering 503");
            return error_response(&S3Error::ledger_unavailable(), &req_id, head);
        }
    };
    let template = EndTemplate {
        ledger: state.ledger.clone(),
        // Outcome and counts are set when the response ends.
        end: EndRecord::unknown(&req_id, start_seq, Outcome::Complete),
        started,
        metrics: Arc::clone(&state.metrics),
        operation,
        bucket,
        stalled,
    };
    match forwarded {
        Ok(upstream_response) => pass_back(&state, upstream_response, template, &req_id, object_read),
        Err((error, outcome)) => respond_error(template, &error.with_resource(raw_path), &req_id, head, outcome),
    }
}

/// Sends the request on, re-signed; the body goes through as the payload
/// mode demands.
async fn forward(
    state: &ProxyState,
    parts: http::request::Parts,
    body: Incoming,
    target: &Target,
    authenticated: &Authenticated,
    raw_query: Option<&str>,
    route: Route,
) -> Result<Response<UpstreamResponseBody>, (S3Error, Outcome)> {
    let internal =
        |e: String| (S3Error::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", e), Outcome::UpstreamError);
    let presigned = matches!(authenticated.method, AuthMethod::SigV4Query | AuthMethod::SigV2Query);
    let query = raw_query.map(|q| if presigned { strip_auth_params(q) } else { q.to_owned() });
    let uri = state
        .upstream
        .uri(target.bucket.as_deref(), target.key.as_deref(), query.as_deref())
        .map_err(|e| internal(e.to_string()))?;

    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    for (name, value) in &parts.headers {
        if !DROP_REQUEST_HEADERS.contains(&name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    let plan = body::plan(&authenticated.payload, &parts.headers).map_err(|e| (S3Error::from(&e), Outcome::Denied))?;
    plan.adjust_headers(&mut headers);
    let payload_hash = plan.upstream_payload_hash(&authenticated.payload);
    let bodiless = http_body::Body::is_end_stream(&body);
    let (upstream_body, verdict): (UpstreamBody, _) = plan.body(body, state.body_idle_timeout);

    let mut request = Request::new(upstream_body);
    *request.method_mut() = parts.method;
    *request.uri_mut() = uri;
    *request.headers_mut() = headers;
    let sent = Instant::now();
    // Without a body the answer should start at once; with one, it starts
    // once the upload is done, which the body's idle timeout bounds.
    let result = if bodiless {
        match tokio::time::timeout(state.upstream_header_timeout, state.upstream.send(request, &payload_hash, route))
            .await
        {
            Ok(result) => result,
            Err(_) => {
                let waited = state.upstream_header_timeout.as_secs();
                tracing::warn!(waited_secs = waited, "upstream did not answer in time");
                let message = format!("The upstream did not start answering within {waited} s.");
                return Err((S3Error::new(StatusCode::GATEWAY_TIMEOUT, "GatewayTimeout", message), Outcome::Timeout));
            }
        }
    } else {
        state.upstream.send(request, &payload_hash, route).await
    };
    state.metrics.upstream.observe(sent.elapsed());
    // A body we refused (bad chunk signature, truncated) is the client's
    // fault, whatever the upstream made of the cut-off request.
    if let Some(fault) = verdict.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        return Err(fault.answer());
    }
    result.map_err(|e| {
        tracing::warn!(error = %e, "upstream request failed");
        let error = match &e {
            crate::upstream::UpstreamError::Sign(_) => S3Error::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                format!("The proxy cannot sign for the upstream ({e}); its operator must give it AWS credentials."),
            ),
            _ => S3Error::upstream_unreachable(&e.to_string()),
        };
        (error, Outcome::UpstreamError)
    })
}

fn strip_auth_params(query: &str) -> String {
    query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or(pair);
            !pair.is_empty() && !auth::AUTH_QUERY_PARAMS.contains(&name)
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// The upstream's response, headers as they came (hop-by-hop ones aside)
/// and the body metered.
fn pass_back(
    state: &ProxyState,
    upstream: Response<UpstreamResponseBody>,
    mut template: EndTemplate,
    req_id: &str,
    object_read: bool,
) -> Response<ResponseBody> {
    let (parts, body) = upstream.into_parts();
    let end = &mut template.end;
    end.status = Some(parts.status.as_u16());
    end.etag = header_str(&parts.headers, header::ETAG);
    end.upstream_request_id = header_str(&parts.headers, "x-amz-request-id");
    end.upstream_id2 = header_str(&parts.headers, "x-amz-id-2");
    end.object_size = if object_read { object_size(parts.status, &parts.headers) } else { None };

    let mut body = MeteredBody::new(body, template, state.body_idle_timeout);
    if parts.status.as_u16() >= 300 && parts.status != StatusCode::NOT_MODIFIED {
        body = body.reading_error_code();
    }
    let mut response = Response::new(body.boxed_unsync());
    *response.status_mut() = parts.status;
    let headers = response.headers_mut();
    for (name, value) in &parts.headers {
        if !DROP_RESPONSE_HEADERS.contains(&name.as_str()) {
            headers.append(name.clone(), value.clone());
        }
    }
    if let Ok(id) = HeaderValue::from_str(req_id) {
        headers.insert(HeaderName::from_static(crate::REQUEST_ID_HEADER), id);
    }
    response
}

/// Size of the whole object: Content-Length of a full 200 GET/HEAD, or the
/// total of a Content-Range.
fn object_size(status: StatusCode, headers: &HeaderMap) -> Option<u64> {
    if status == StatusCode::PARTIAL_CONTENT {
        let range = header_str(headers, header::CONTENT_RANGE)?;
        return range.rsplit_once('/').and_then(|(_, total)| total.parse().ok());
    }
    if status == StatusCode::OK {
        return header_str(headers, header::CONTENT_LENGTH).and_then(|l| l.parse().ok());
    }
    None
}

fn error_response(error: &S3Error, req_id: &str, head: bool) -> Response<ResponseBody> {
    error.to_response(req_id, head).map(|b| Full::new(b).map_err(|never| match never {}).boxed_unsync())
}

/// Answers an error the proxy decided on, and records its end.
fn respond_error(
    mut template: EndTemplate,
    error: &S3Error,
    req_id: &str,
    head: bool,
    outcome: Outcome,
) -> Response<ResponseBody> {
    let response = error_response(error, req_id, head);
    tracing::info!(req = req_id, code = error.code, outcome = outcome.as_str(), reason = %error.message, "request refused");
    template.end.status = Some(error.status.as_u16());
    let sent = http_body::Body::size_hint(response.body()).exact().unwrap_or(0);
    template.finish(outcome, sent, Some(error.code.to_owned()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_auth_params_are_not_forwarded() {
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb&X-Amz-Date=1&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=ab&response-content-type=text%2Fplain&versionId=3";
        assert_eq!(strip_auth_params(q), "response-content-type=text%2Fplain&versionId=3");
        assert_eq!(strip_auth_params("AWSAccessKeyId=A&Signature=s&Expires=1"), "");
    }

    #[test]
    fn object_size_from_length_or_range() {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("10"));
        assert_eq!(object_size(StatusCode::OK, &h), Some(10));
        h.insert(header::CONTENT_RANGE, HeaderValue::from_static("bytes 0-9/1000"));
        assert_eq!(object_size(StatusCode::PARTIAL_CONTENT, &h), Some(1000));
        assert_eq!(object_size(StatusCode::NOT_MODIFIED, &h), None);
    }
}
