//! The HTTP(S) client to the upstream and how a request's address maps onto
//! the upstream's (path-style or virtual-hosted).

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body::{Body, Frame, SizeHint};
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::UpstreamSigner;
use super::raw::{RawBody, RawClient};
use crate::auth::sigv4::uri_encode;
use crate::passthrough::Channel;

/// Body of a request to the upstream.
pub type UpstreamBody = UnsyncBoxBody<Bytes, crate::BoxError>;

/// How bucket names reach the upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    /// `https://endpoint/bucket/key`
    Path,
    /// `https://bucket.endpoint/key`
    Virtual,
}

/// Which client takes a request to the upstream.
#[derive(Debug)]
pub enum Route {
    /// hyper's pooled client.
    Pooled,
    /// A bodiless object GET. To a plain-HTTP upstream it goes by our own
    /// client ([`super::raw`]), and a large body goes through
    /// `passthrough`, the client connection's buffer, when it has one
    /// ([`crate::passthrough`]).
    ObjectGet { passthrough: Option<Arc<Channel>> },
}

/// The body of an upstream response, from whichever client took it.
#[derive(Debug)]
pub enum UpstreamResponseBody {
    Pooled(Incoming),
    Raw(RawBody),
}

impl Body for UpstreamResponseBody {
    type Data = Bytes;
    type Error = crate::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            UpstreamResponseBody::Pooled(body) => Pin::new(body).poll_frame(cx).map_err(Into::into),
            UpstreamResponseBody::Raw(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            UpstreamResponseBody::Pooled(body) => body.is_end_stream(),
            UpstreamResponseBody::Raw(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            UpstreamResponseBody::Pooled(body) => body.size_hint(),
            UpstreamResponseBody::Raw(body) => body.size_hint(),
        }
    }
}

/// A failed exchange with the upstream.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    #[error("signing for the upstream: {0}")]
    Sign(#[from] super::signer::SignError),
    #[error("upstream request: {0}")]
    Request(String),
    #[error("bad upstream URI: {0}")]
    Uri(String),
}

/// The upstream S3 endpoint.
#[derive(Debug)]
pub struct Upstream {
    scheme: String,
    authority: String,
    addressing: Addressing,
    connector: HttpsConnector<HttpConnector>,
    client: Client<HttpsConnector<HttpConnector>, UpstreamBody>,
    /// For object GETs from a plain-HTTP upstream.
    raw: Option<RawClient>,
    signer: Arc<UpstreamSigner>,
}

impl Upstream {
    /// A client for `endpoint` (e.g. `https://s3.us-east-1.amazonaws.com`),
    /// trusting the system's CA certificates and those in `ca_file` (PEM).
    pub fn new(
        endpoint: &Uri,
        addressing: Addressing,
        signer: UpstreamSigner,
        ca_file: Option<&std::path::Path>,
    ) -> Result<Upstream, UpstreamError> {
        let scheme = endpoint.scheme_str().unwrap_or("https").to_owned();
        let authority = endpoint
            .authority()
            .ok_or_else(|| UpstreamError::Uri(format!("{endpoint} has no host")))?
            .as_str()
            .to_owned();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        // Small GETs suffer badly from Nagle + delayed ACK.
        http.set_nodelay(true);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        http.set_keepalive(Some(Duration::from_mins(1)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(
                crate::tls::upstream_client_config(ca_file).map_err(|e| UpstreamError::Uri(e.to_string()))?,
            )
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = pooled_client(https.clone());
        let raw = (scheme == "http").then(RawClient::default);
        Ok(Upstream { scheme, authority, addressing, connector: https, client, raw, signer: Arc::new(signer) })
    }

    /// The same upstream with a connection pool of its own, for another
    /// worker thread: a pooled connection's reads are driven by the runtime
    /// that opened it, so a pool shared by threads hands every body chunk
    /// across them (`crate::server`).
    #[must_use]
    pub fn fork(&self) -> Upstream {
        Upstream {
            scheme: self.scheme.clone(),
            authority: self.authority.clone(),
            addressing: self.addressing,
            connector: self.connector.clone(),
            client: pooled_client(self.connector.clone()),
            raw: self.raw.as_ref().map(|_| RawClient::default()),
            signer: Arc::clone(&self.signer),
        }
    }

    /// The upstream URI for a request on `bucket` with the decoded `key` and
    /// the raw (still encoded) query.
    ///
    /// The key is encoded afresh the way SigV4 canonicalises a path, so the
    /// path we sign is the canonical URI every S3 server computes. Clients
    /// may send keys encoded otherwise (`+`, `@`, `%7E`, `%2F`), which their
    /// own signatures cover; passed on as sent, servers that re-encode the
    /// path (SeaweedFS, MinIO) would refuse our signature.
    pub fn uri(&self, bucket: Option<&str>, key: Option<&str>, query: Option<&str>) -> Result<Uri, UpstreamError> {
        let (authority, path) = match (self.addressing, bucket) {
            (Addressing::Virtual, Some(bucket)) => {
                let key_path = key.map(|k| uri_encode(k, false)).unwrap_or_default();
                (format!("{bucket}.{}", self.authority), format!("/{key_path}"))
            }
            _ => (self.authority.clone(), path_style(bucket, key)),
        };
        let path_and_query = match query {
            Some(q) if !q.is_empty() => format!("{path}?{q}"),
            _ => path,
        };
        Uri::builder()
            .scheme(self.scheme.as_str())
            .authority(authority)
            .path_and_query(path_and_query)
            .build()
            .map_err(|e| UpstreamError::Uri(e.to_string()))
    }

    /// Signs and sends `request` by the client `route` names; `payload_hash`
    /// as for [`UpstreamSigner::sign`].
    pub async fn send(
        &self,
        mut request: http::Request<UpstreamBody>,
        payload_hash: &str,
        route: Route,
    ) -> Result<http::Response<UpstreamResponseBody>, UpstreamError> {
        if let Some(authority) = request.uri().authority().map(|a| a.as_str().to_owned())
            && let Ok(host) = http::HeaderValue::from_str(&authority)
        {
            request.headers_mut().insert(http::header::HOST, host);
        }
        self.signer.sign(&mut request, payload_hash).await?;
        match (route, &self.raw) {
            (Route::ObjectGet { passthrough }, Some(raw)) => {
                Ok(raw.send(request, passthrough).await?.map(UpstreamResponseBody::Raw))
            }
            _ => match self.client.request(request).await {
                Ok(response) => Ok(response.map(UpstreamResponseBody::Pooled)),
                Err(e) => Err(UpstreamError::Request(error_chain(&e))),
            },
        }
    }
}

/// The path-style path of a bucket and decoded key: `/bucket/key`, with the
/// key encoded as SigV4 canonicalises a path.
#[must_use]
pub fn path_style(bucket: Option<&str>, key: Option<&str>) -> String {
    match (bucket, key) {
        (Some(bucket), Some(key)) => format!("/{bucket}/{}", uri_encode(key, false)),
        (Some(bucket), None) => format!("/{bucket}"),
        (None, _) => "/".to_owned(),
    }
}

fn pooled_client(connector: HttpsConnector<HttpConnector>) -> Client<HttpsConnector<HttpConnector>, UpstreamBody> {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(256)
        // hyper lets a connection's read buffer grow to ~400 KiB on a large
        // body, and keeps it: with 1,000 connections that was ~400 MiB of
        // RSS. 128 KiB streams a 1 GiB GET as fast as the default
        // (`scripts/bench.sh`); 64 KiB was 15 % slower.
        .http1_max_buf_size(128 * 1024)
        .build(connector)
}

/// An error and its sources on one line.
#[must_use]
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
