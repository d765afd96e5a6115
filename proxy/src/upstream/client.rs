//! The HTTP(S) client to the upstream and how a request's address maps onto
//! the upstream's (path-style or virtual-hosted).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Incoming;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::UpstreamSigner;
use crate::auth::sigv4::uri_encode;
use crate::config::UpstreamLimits;
use crate::s3::error::{ErrorCode, S3Error};

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

/// The body of an upstream response.
pub type UpstreamResponseBody = Incoming;

/// A failed exchange with the upstream, by what failed; each keeps its
/// source so that logs and answers can say why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// The endpoint or a request's address does not make a URI (a
    /// configuration error, or a CA file that cannot be read).
    #[error("bad upstream address: {0}")]
    Address(String),
    /// The proxy has no usable credentials for the upstream.
    #[error("signing for the upstream: {0}")]
    Sign(#[from] super::signer::SignError),
    /// No connection: name resolution, TCP connect or the TLS handshake
    /// (an untrusted certificate included) failed.
    #[error("could not connect to the upstream")]
    Connect(#[source] hyper_util::client::legacy::Error),
    /// Connected and sent, but no response head came within the time.
    #[error("the upstream did not start answering within {} s", .0.as_secs())]
    Timeout(Duration),
    /// The exchange broke after connecting: the connection closed, or the
    /// answer was not HTTP.
    #[error("the exchange with the upstream failed")]
    Protocol(#[source] hyper_util::client::legacy::Error),
}

impl UpstreamError {
    /// What the client is answered. A timeout is a `504 GatewayTimeout`, a
    /// proxy without credentials a `500`, anything else a `502 BadGateway`;
    /// SDKs retry all three.
    #[must_use]
    pub fn to_s3(&self) -> S3Error {
        match self {
            UpstreamError::Timeout(_) => S3Error::new(ErrorCode::GatewayTimeout, format!("{}.", error_chain(self))),
            UpstreamError::Sign(_) => S3Error::new(
                ErrorCode::InternalError,
                format!(
                    "The proxy cannot sign for the upstream ({}); its operator must give it AWS credentials.",
                    error_chain(self)
                ),
            ),
            UpstreamError::Address(_) => S3Error::new(ErrorCode::InternalError, error_chain(self)),
            UpstreamError::Connect(_) | UpstreamError::Protocol(_) => S3Error::upstream_unreachable(&error_chain(self)),
        }
    }
}

/// The upstream S3 endpoint.
#[derive(Debug)]
pub struct Upstream {
    scheme: String,
    authority: String,
    addressing: Addressing,
    connector: HttpsConnector<HttpConnector>,
    client: Client<HttpsConnector<HttpConnector>, UpstreamBody>,
    signer: Arc<UpstreamSigner>,
    limits: UpstreamLimits,
}

impl Upstream {
    /// A client for `endpoint` (e.g. `https://s3.us-east-1.amazonaws.com`),
    /// trusting the system's CA certificates and those in `ca_file` (PEM),
    /// its connections opened and pooled within `limits`.
    pub fn new(
        endpoint: &Uri,
        addressing: Addressing,
        signer: UpstreamSigner,
        ca_file: Option<&std::path::Path>,
        limits: &UpstreamLimits,
    ) -> Result<Upstream, UpstreamError> {
        let scheme = endpoint.scheme_str().unwrap_or("https").to_owned();
        let authority = endpoint
            .authority()
            .ok_or_else(|| UpstreamError::Address(format!("{endpoint} has no host")))?
            .as_str()
            .to_owned();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        // Small GETs suffer badly from Nagle + delayed ACK.
        http.set_nodelay(true);
        http.set_connect_timeout(Some(limits.connect_timeout));
        http.set_keepalive(limits.tcp_keepalive);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(
                crate::tls::upstream_client_config(ca_file).map_err(|e| UpstreamError::Address(e.to_string()))?,
            )
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = pooled_client(https.clone(), limits);
        Ok(Upstream {
            scheme,
            authority,
            addressing,
            connector: https,
            client,
            signer: Arc::new(signer),
            limits: limits.clone(),
        })
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
            client: pooled_client(self.connector.clone(), &self.limits),
            signer: Arc::clone(&self.signer),
            limits: self.limits.clone(),
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
            .map_err(|e| UpstreamError::Address(e.to_string()))
    }

    /// Signs and sends `request`; `payload_hash` as for
    /// [`UpstreamSigner::sign`]. With `header_timeout`, the response head must
    /// arrive within it (for a request without a body, whose answer should
    /// start at once).
    pub async fn send(
        &self,
        mut request: http::Request<UpstreamBody>,
        payload_hash: &str,
        header_timeout: Option<Duration>,
    ) -> Result<http::Response<UpstreamResponseBody>, UpstreamError> {
        if let Some(authority) = request.uri().authority().map(|a| a.as_str().to_owned())
            && let Ok(host) = http::HeaderValue::from_str(&authority)
        {
            request.headers_mut().insert(http::header::HOST, host);
        }
        self.signer.sign(&mut request, payload_hash).await?;
        let sent = self.client.request(request);
        let result = match header_timeout {
            Some(limit) => tokio::time::timeout(limit, sent).await.map_err(|_| UpstreamError::Timeout(limit))?,
            None => sent.await,
        };
        result.map_err(|e| if e.is_connect() { UpstreamError::Connect(e) } else { UpstreamError::Protocol(e) })
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

fn pooled_client(
    connector: HttpsConnector<HttpConnector>,
    limits: &UpstreamLimits,
) -> Client<HttpsConnector<HttpConnector>, UpstreamBody> {
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(limits.pool_idle_timeout)
        .pool_max_idle_per_host(limits.pool_max_idle_per_host)
        // hyper lets a connection's read buffer grow to ~400 KiB on a large
        // body, and keeps it: with 1,000 connections that was ~400 MiB of
        // RSS. 128 KiB (the default setting) streams a 1 GiB GET as fast as
        // hyper's default (`scripts/bench.sh`); 64 KiB was 15 % slower.
        // hyper panics below 8 KiB, which the settings refuse.
        .http1_max_buf_size(limits.read_buffer_bytes.max(8 * 1024))
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
