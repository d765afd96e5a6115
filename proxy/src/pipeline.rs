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
use egress_ledger::{EndRecord, Entry, Ledger, ObjectRef, Outcome, StartRecord};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;

use crate::auth::{self, AuthMethod, Authenticated, RequestParts, SecretLookup};
use crate::authz::context::Origin;
use crate::authz::throttle::Throttled;
use crate::authz::{Authorizer, Granted};
use crate::body::{self, ChunkBudget};
use crate::denials::{Admission, DenialLimiter};
use crate::meter::{EndTemplate, MeteredBody};
use crate::s3::addressing;
use crate::s3::error::{ErrorCode, S3Error};
use crate::s3::request::{S3Request, unsigned_amz_header};
use crate::stall::Stalled;
use crate::upstream::client::UpstreamBody;
use crate::upstream::{Upstream, UpstreamError, UpstreamResponseBody};

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
    pub metrics: Arc<egress_metrics::Metrics>,
    /// Which refused unauthenticated requests get a record each.
    pub denials: Arc<DenialLimiter>,
    /// Room for signed upload chunks held until their signature checks.
    pub chunk_budget: ChunkBudget,
    /// Policies and limits (step 4).
    pub authorizer: Arc<Authorizer>,
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
            denials: Arc::clone(&self.denials),
            chunk_budget: self.chunk_budget.clone(),
            authorizer: Arc::clone(&self.authorizer),
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

/// What a request turned out to be before anything went upstream.
// One per request, moved once: boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
enum Verdict {
    /// Authenticated (or anonymous), well-formed and allowed: forward it.
    Forward(S3Request, Authenticated, Granted),
    /// Refused before anyone was authenticated: nobody to attribute it to.
    Unauthenticated(S3Error),
    /// Refused after authentication (malformed, an unsigned header, or
    /// not allowed by policy or limits).
    Refused(S3Error),
}

/// The client's end of a connection.
#[derive(Debug, Clone, Copy)]
pub struct Peer {
    pub addr: SocketAddr,
    /// Whether the connection is TLS.
    pub secure: bool,
}

/// Handles one request end to end.
pub async fn handle(
    state: Arc<ProxyState>,
    peer: Peer,
    stalled: Stalled,
    acks: Option<Arc<crate::acked::Acks>>,
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

    let remote = peer.addr;
    let source_ip = crate::authz::source_ip::source_ip(remote.ip(), &parts.headers, &state.authorizer.trusted_proxies);
    let target = addressing::resolve(host.as_deref(), &raw_path, &state.virtual_host_domains);
    let mut start = StartRecord {
        req: req_id.clone(),
        source_ip: Some(source_ip.to_string()),
        user_agent: header_str(&parts.headers, header::USER_AGENT),
        method: parts.method.as_str().to_owned(),
        operation: "Unknown".to_owned(),
        range: header_str(&parts.headers, header::RANGE),
        ..StartRecord::default()
    };
    let origin = (source_ip, peer.secure);
    let verdict = judge(&state, &parts, &raw_path, raw_query.as_deref(), target, origin, &mut start).await;
    // Whom the request can be held against: a key holder, or an anonymous
    // request its policies allowed. An anonymous request they refused is as
    // unattributable as one with a bad signature, and is bounded the same way.
    let anonymous = start.principal.as_deref() == Some(egress_ledger::principals::ANONYMOUS);
    let attributable = start.principal.is_some() && (!anonymous || matches!(verdict, Verdict::Forward(..)));
    start.bound(if attributable { AUTHENTICATED_FIELD_BYTES } else { UNAUTHENTICATED_FIELD_BYTES });

    let operation = start.operation.clone();
    // A bucket becomes a metrics label only for a key holder's request:
    // anyone can make up bucket names.
    let bucket = if start.principal.is_some() && !anonymous { start.bucket.clone() } else { None };
    let unattributable = match &verdict {
        Verdict::Unauthenticated(error) => Some(error),
        Verdict::Refused(error) if !attributable => Some(error),
        _ => None,
    };
    if let Some(error) = unattributable {
        let (admission, finished) = state.denials.admit(remote.ip(), error.code, SystemTime::now());
        if let Some(note) = finished
            && let Err(e) = state.ledger.submit(Entry::Note(note))
        {
            tracing::error!(error = %e, "could not queue a denied_summary note");
        }
        if admission == Admission::Summarise {
            // Counted into the minute's summary note; no record, no log line.
            tracing::debug!(code = error.code.as_str(), source = %remote.ip(), "refusal summarised");
            let response = error_response(&error.clone().with_resource(raw_path), &req_id, head);
            let sent = http_body::Body::size_hint(response.body()).exact().unwrap_or(0);
            state.metrics.request_finished(&operation, error.status.as_u16(), None, sent);
            return response;
        }
    }

    let object_read = matches!(&verdict, Verdict::Forward(request, ..) if request.operation.reads_object());
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
    let mut granted = None;
    let (appended, forwarded) = match verdict {
        Verdict::Unauthenticated(error) | Verdict::Refused(error) => (record.await, Err((error, Outcome::Denied))),
        Verdict::Forward(request, authenticated, grant) if read_only && state.ledger.writable() => {
            granted = Some(grant);
            tokio::join!(record, forward(&state, parts, body, &request, &authenticated, &req_id))
        }
        Verdict::Forward(request, authenticated, grant) => {
            granted = Some(grant);
            match record.await {
                Ok(appended) => (Ok(appended), forward(&state, parts, body, &request, &authenticated, &req_id).await),
                Err(e) => (Err(e), Err((S3Error::ledger_unavailable(), Outcome::Denied))),
            }
        }
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
        settle: None,
        delivery: acks.as_ref().map(crate::acked::Acks::delivery),
    };
    match forwarded {
        Ok(upstream_response) => {
            pass_back(&state, upstream_response, template, &req_id, object_read, granted.as_ref(), head)
        }
        Err((error, outcome)) => respond_error(template, &error.with_resource(raw_path), &req_id, head, outcome),
    }
}

/// Authenticates, parses and authorizes a request, filling in what
/// `start` records of it: who (once authenticated), what (once parsed, even
/// when refused, since an attempt is evidence too) and the decision.
/// `origin` is `aws:SourceIp` and whether the connection is TLS.
async fn judge(
    state: &ProxyState,
    parts: &http::request::Parts,
    raw_path: &str,
    raw_query: Option<&str>,
    target: Result<addressing::Target, addressing::AddressError>,
    origin: (std::net::IpAddr, bool),
    start: &mut StartRecord,
) -> Verdict {
    let target = match target {
        Err(e) => return Verdict::Unauthenticated(S3Error::new(e.code(), e.to_string())),
        Ok(target) => target,
    };
    start.bucket.clone_from(&target.bucket);
    start.key.clone_from(&target.key);
    let request_parts = RequestParts { method: parts.method.as_str(), raw_path, raw_query, headers: &parts.headers };
    let bucket_from_host = if target.virtual_hosted { target.bucket.as_deref() } else { None };
    let now = SystemTime::now();
    let authenticated = auth::authenticate_with_bucket_host(&request_parts, bucket_from_host, &state.principals, now);
    let parsed = S3Request::parse(&parts.method, target, raw_query, &parts.headers);
    if let Ok(request) = &parsed {
        request.operation.name().clone_into(&mut start.operation);
        start.version_id = request.version_id().map(str::to_owned);
        start.copy_source = request.copy_source.as_ref().map(|c| ObjectRef {
            bucket: c.bucket.clone(),
            key: c.key.clone(),
            version_id: c.version_id.clone(),
        });
    }
    let authenticated = match authenticated {
        Ok(authenticated) => authenticated,
        // Unsigned: the built-in principal `anonymous`, if policies are
        // attached to it; else refused as before, unattributed.
        Err(_) if !auth::carries_credentials(&request_parts) && anonymous_enabled(state) && parsed.is_ok() => {
            Authenticated::anonymous()
        }
        Err(e) => {
            start.access_key_id = e.access_key_id().map(str::to_owned);
            return Verdict::Unauthenticated(S3Error::from(&e));
        }
    };
    start.principal = Some(authenticated.principal.clone());
    if authenticated.method != AuthMethod::Anonymous {
        start.access_key_id = Some(authenticated.access_key_id.clone());
    }
    let request = match parsed {
        Err(e) => return Verdict::Refused(e.to_s3()),
        Ok(request) => request,
    };
    if let Err(e) = signature_covers(&request, &authenticated, &parts.headers) {
        return Verdict::Refused(e);
    }
    let origin = Origin {
        principal: &authenticated.principal,
        authenticated: &authenticated,
        source_ip: origin.0,
        secure: origin.1,
        now,
    };
    match state.authorizer.authorize(&origin, &request, &parts.headers).await {
        Ok(granted) => {
            start.decision = Some(granted.decision.clone());
            Verdict::Forward(request, authenticated, granted)
        }
        Err(refused) => {
            let refused = *refused;
            start.decision = Some(refused.decision);
            Verdict::Refused(refused.error)
        }
    }
}

fn anonymous_enabled(state: &ProxyState) -> bool {
    state.authorizer.grants.anonymous_enabled().unwrap_or_else(|e| {
        tracing::error!(error = %e, "could not read the grants of anonymous; refusing unsigned requests");
        false
    })
}

/// Longest value of a freely chosen field (key, user agent, …) recorded for
/// an unauthenticated request; longer ones are cut, with their length and
/// hash (`StartRecord::bound`).
const UNAUTHENTICATED_FIELD_BYTES: usize = 128;
/// The same for an authenticated request: S3 keys fit (1,024 bytes).
const AUTHENTICATED_FIELD_BYTES: usize = 1024;

/// Refuses what the client's signature does not cover: an `x-amz-*` header
/// outside SigV4's signed headers (S3's own rule), or, under SigV2, a query
/// parameter that selects the operation but is not in SigV2's signed
/// sub-resources. Either could be added by whoever holds a presigned URL.
fn signature_covers(request: &S3Request, authenticated: &Authenticated, headers: &HeaderMap) -> Result<(), S3Error> {
    if let Some(name) = unsigned_amz_header(headers, &authenticated.signed_headers) {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            format!("There were headers present in the request which were not signed: {name}"),
        ));
    }
    if matches!(authenticated.method, AuthMethod::SigV2Header | AuthMethod::SigV2Query)
        && let Some(name) = request.selector_unsigned_by_v2()
    {
        return Err(S3Error::new(
            ErrorCode::AccessDenied,
            format!(
                "The query parameter {name} selects the operation but a SigV2 signature does not cover it; \
                 sign with SigV4"
            ),
        ));
    }
    Ok(())
}

/// Sends the request on, re-signed; the body goes through as the payload
/// mode demands. Path, query and headers all come from the parsed request.
async fn forward(
    state: &ProxyState,
    parts: http::request::Parts,
    body: Incoming,
    request: &S3Request,
    authenticated: &Authenticated,
    req_id: &str,
) -> Result<Response<UpstreamResponseBody>, (S3Error, Outcome)> {
    let query = request.query.to_forward_tagged(req_id);
    let uri = state
        .upstream
        .uri(request.target.bucket.as_deref(), request.target.key.as_deref(), Some(&query))
        .map_err(|e| (e.to_s3(), Outcome::UpstreamError))?;

    let mut headers = request.forward_headers(&parts.headers);
    let plan = body::plan(&authenticated.payload, &parts.headers).map_err(|e| (S3Error::from(&e), Outcome::Denied))?;
    plan.adjust_headers(&mut headers);
    let payload_hash = plan.upstream_payload_hash(&authenticated.payload);
    let bodiless = http_body::Body::is_end_stream(&body);
    let (upstream_body, verdict): (UpstreamBody, _) = plan.body(body, state.body_idle_timeout, &state.chunk_budget);

    let mut upstream_request = Request::new(upstream_body);
    *upstream_request.method_mut() = parts.method;
    *upstream_request.uri_mut() = uri;
    *upstream_request.headers_mut() = headers;
    let sent = Instant::now();
    // Without a body the answer should start at once; with one, it starts
    // once the upload is done, which the body's idle timeout bounds.
    let header_timeout = bodiless.then_some(state.upstream_header_timeout);
    let result = state.upstream.send(upstream_request, &payload_hash, header_timeout).await;
    state.metrics.upstream.observe(sent.elapsed());
    // A body we refused (bad chunk signature, truncated) is the client's
    // fault, whatever the upstream made of the cut-off request.
    if let Some(fault) = verdict.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take() {
        return Err(fault.answer());
    }
    result.map_err(|e| {
        tracing::warn!(error = %crate::upstream::client::error_chain(&e), "upstream request failed");
        let outcome = if matches!(e, UpstreamError::Timeout(_)) { Outcome::Timeout } else { Outcome::UpstreamError };
        (e.to_s3(), outcome)
    })
}

/// The upstream's response, headers as they came (hop-by-hop ones aside)
/// and the body metered.
fn pass_back(
    state: &ProxyState,
    upstream: Response<UpstreamResponseBody>,
    mut template: EndTemplate,
    req_id: &str,
    object_read: bool,
    granted: Option<&Granted>,
    head: bool,
) -> Response<ResponseBody> {
    let (parts, body) = upstream.into_parts();
    // Kept even when a limit refuses the answer below: the upstream served
    // this request, and reconciliation matches its access log line by them.
    template.end.upstream_request_id = header_str(&parts.headers, "x-amz-request-id");
    template.end.upstream_id2 = header_str(&parts.headers, "x-amz-id-2");
    if let Some(granted) = granted {
        // The quota must cover the whole body before its first byte: a
        // HEAD or a 304 sends none.
        let length = if head || parts.status == StatusCode::NOT_MODIFIED {
            0
        } else {
            header_str(&parts.headers, header::CONTENT_LENGTH).and_then(|l| l.parse().ok()).unwrap_or(0)
        };
        match granted.reserve(&state.authorizer, length) {
            Ok(reservation) => template.settle = reservation,
            Err(refused) => {
                // The upstream's body is dropped unread: nothing of it leaves.
                drop(body);
                template.end.decision = Some(refused.decision);
                return respond_error(template, &refused.error, req_id, head, Outcome::Denied);
            }
        }
    }
    let end = &mut template.end;
    end.status = Some(parts.status.as_u16());
    end.etag = header_str(&parts.headers, header::ETAG);
    end.object_size = if object_read { object_size(parts.status, &parts.headers) } else { None };

    let paced = granted.and_then(Granted::bandwidth);
    let body = match paced {
        Some((meter, rate)) => Throttled::new(body, meter, rate).boxed_unsync(),
        None => body.boxed_unsync(),
    };
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
    tracing::info!(req = req_id, code = error.code.as_str(), outcome = outcome.as_str(), reason = %error.message, "request refused");
    template.end.status = Some(error.status.as_u16());
    let sent = http_body::Body::size_hint(response.body()).exact().unwrap_or(0);
    // Recorded before the answer is written: no `bytes_acked`.
    template.finish(outcome, sent, None, Some(error.code.as_str().to_owned()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

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
