//! The load itself: signed PUTs and GETs on keep-alive HTTP/1.1 connections,
//! over TCP or TLS, each worker on a connection of its own. What it counts is
//! what reached the client: object bytes, requests, latency to the last byte,
//! failures by kind.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use egress_e2e::sigv4::Signer;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

pub type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// An S3 endpoint: its URL, the address behind it, and the TLS to speak
/// when it is `https`.
#[derive(Clone)]
pub struct Endpoint {
    /// `http://127.0.0.1:9000`, `https://localhost:9443` (no trailing slash).
    pub url: String,
    address: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("url", &self.url).field("address", &self.address).finish_non_exhaustive()
    }
}

impl Endpoint {
    /// `ca_file` is the PEM bundle that signed an `https` endpoint's
    /// certificate (a private CA: the system's roots are not consulted).
    pub fn new(url: &str, ca_file: Option<&Path>) -> anyhow::Result<Endpoint> {
        let url = url.trim_end_matches('/').to_owned();
        let uri: http::Uri = url.parse().with_context(|| format!("endpoint {url} is no URL"))?;
        let host = uri.host().with_context(|| format!("endpoint {url} has no host"))?.to_owned();
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => anyhow::bail!("endpoint {url}: give http:// or https://"),
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        // Servers here listen on 127.0.0.1: `localhost` must not try ::1 first.
        let address = (host.as_str(), port)
            .to_socket_addrs()
            .with_context(|| format!("resolving {host}"))?
            .min_by_key(SocketAddr::is_ipv6)
            .with_context(|| format!("{host} has no address"))?;
        let tls = if https {
            let ca_file = ca_file.with_context(|| format!("{url} is https: give --ca-file, the CA that signed it"))?;
            let name = ServerName::try_from(host.clone()).with_context(|| format!("{host} is no TLS server name"))?;
            Some((tls_connector(ca_file)?, name))
        } else {
            None
        };
        Ok(Endpoint { url, address, tls })
    }

    /// A new HTTP/1.1 connection (no ALPN is offered, so a server that also
    /// speaks h2 answers in HTTP/1.1), with the TLS version and cipher suite
    /// it negotiated, if any.
    pub async fn connect(&self) -> anyhow::Result<(SendRequest<Body>, Option<String>)> {
        let stream = TcpStream::connect(self.address).await.with_context(|| format!("connecting to {}", self.url))?;
        stream.set_nodelay(true)?;
        let Some((connector, name)) = &self.tls else {
            return Ok((handshake(stream).await?, None));
        };
        let stream = connector.connect(name.clone(), stream).await.with_context(|| format!("TLS with {}", self.url))?;
        let (_, session) = stream.get_ref();
        let negotiated = format!(
            "{} {}",
            session.protocol_version().map_or_else(|| "?".to_owned(), |v| format!("{v:?}")),
            session.negotiated_cipher_suite().map_or_else(|| "?".to_owned(), |s| format!("{:?}", s.suite()))
        );
        Ok((handshake(stream).await?, Some(negotiated)))
    }

    /// `ENDPOINT/bucket/key`.
    pub fn object_url(&self, bucket: &str, key: &str) -> String {
        format!("{}/{bucket}/{key}", self.url)
    }
}

async fn handshake<T>(io: T) -> anyhow::Result<SendRequest<Body>>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(async move {
        // Its errors reach the request that was using it.
        let _ = driver.await;
    });
    Ok(sender)
}

fn tls_connector(ca_file: &Path) -> anyhow::Result<TlsConnector> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).with_context(|| format!("reading {}", ca_file.display()))? {
        roots.add(cert.with_context(|| format!("a certificate in {}", ca_file.display()))?)?;
    }
    anyhow::ensure!(!roots.is_empty(), "{} holds no certificate", ca_file.display());
    // AES-128-GCM first: SeaweedFS (Go) picks it whatever the client
    // prefers, while rustls and OpenSSL servers follow the client's order;
    // so every TLS leg of every target runs the same cipher.
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.sort_by_key(|suite| suite.suite() != rustls::CipherSuite::TLS13_AES_128_GCM_SHA256);
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// A request for `url` signed with `signer` (UNSIGNED-PAYLOAD), its URI
/// then put in origin form, as clients send it.
fn signed(
    method: &str,
    url: &str,
    body: Body,
    content_length: Option<u64>,
    signer: &Signer,
) -> anyhow::Result<http::Request<Body>> {
    let uri: http::Uri = url.parse().with_context(|| format!("{url} is no URL"))?;
    let host = uri.authority().with_context(|| format!("{url} has no host"))?.to_string();
    let path: http::Uri = uri.path_and_query().with_context(|| format!("{url} has no path"))?.as_str().parse()?;
    let mut request = http::Request::builder().method(method).uri(uri).header("host", host).body(body)?;
    if let Some(length) = content_length {
        request.headers_mut().insert("content-length", length.into());
    }
    signer.sign(&mut request, url, "UNSIGNED-PAYLOAD")?;
    *request.uri_mut() = path;
    Ok(request)
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// Creates `bucket` if needed; the connection, for what follows.
async fn create_bucket_on(endpoint: &Endpoint, signer: &Signer, bucket: &str) -> anyhow::Result<SendRequest<Body>> {
    let (mut sender, _) = endpoint.connect().await?;
    let bucket_url = format!("{}/{bucket}", endpoint.url);
    // An existing bucket answers 409: either way it is there.
    let _ = sender.send_request(signed("PUT", &bucket_url, empty(), None, signer)?).await?.into_body().collect().await;
    Ok(sender)
}

/// Creates `bucket` if needed.
pub async fn create_bucket(endpoint: &Endpoint, signer: &Signer, bucket: &str) -> anyhow::Result<()> {
    create_bucket_on(endpoint, signer, bucket).await.map(drop)
}

/// `GET url` with `Authorization: Bearer token` (the proxy's admin API),
/// its body as JSON.
pub async fn get_json(url: &str, token: &str) -> anyhow::Result<serde_json::Value> {
    let uri: http::Uri = url.parse().with_context(|| format!("{url} is no URL"))?;
    let base = format!(
        "{}://{}",
        uri.scheme_str().context("no scheme")?,
        uri.authority().with_context(|| format!("{url} has no host"))?
    );
    let (mut sender, _) = Endpoint::new(&base, None)?.connect().await?;
    let request = http::Request::builder()
        .uri(uri.path_and_query().map_or("/", http::uri::PathAndQuery::as_str))
        .header("host", uri.authority().map(ToString::to_string).unwrap_or_default())
        .header("authorization", format!("Bearer {token}"))
        .body(empty())?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    anyhow::ensure!(status.is_success(), "GET {url} answered {status}: {}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).with_context(|| format!("GET {url}: not JSON"))
}

/// Creates `bucket` if needed and uploads `size` generated bytes as `key`
/// (UNSIGNED-PAYLOAD, streamed); the seconds the upload took.
pub async fn put_object(
    endpoint: &Endpoint,
    signer: &Signer,
    bucket: &str,
    key: &str,
    size: u64,
) -> anyhow::Result<f64> {
    let mut sender = create_bucket_on(endpoint, signer, bucket).await?;
    let chunk = Bytes::from(vec![0x5a_u8; 1 << 20]);
    let chunks = (0..size.div_ceil(1 << 20)).map(move |i| {
        let len = (size - i * (1 << 20)).min(1 << 20) as usize;
        Ok::<_, std::io::Error>(Frame::data(chunk.slice(..len)))
    });
    let body = StreamBody::new(futures_util::stream::iter(chunks)).boxed_unsync();
    let url = endpoint.object_url(bucket, key);
    let put = signed("PUT", &url, body, Some(size), signer)?;
    let started = Instant::now();
    sender.ready().await?;
    let response = sender.send_request(put).await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    anyhow::ensure!(status.is_success(), "PUT {url} answered {status}: {}", String::from_utf8_lossy(&body));
    Ok(started.elapsed().as_secs_f64())
}

/// How GETs load an endpoint.
#[derive(clap::Args, Debug, Clone)]
pub struct Load {
    /// Workers, each on a keep-alive connection of its own.
    #[arg(long, visible_alias = "connections", default_value_t = 1)]
    pub concurrency: usize,
    /// GETs in all, shared by the workers (ignored with `--duration-secs`).
    #[arg(long, default_value_t = 1)]
    pub requests: u64,
    /// Keep every connection busy for this long instead of counting requests.
    #[arg(long)]
    pub duration_secs: Option<u64>,
    /// Objects to GET in turn, comma-separated, instead of `--key` (repeat a
    /// key to weigh it).
    #[arg(long, value_delimiter = ',')]
    pub keys: Option<Vec<String>>,
    /// Print running totals to stderr this often (0: never).
    #[arg(long, default_value_t = 0)]
    pub progress_secs: u64,
}

/// When the workers stop taking new GETs.
enum Stop {
    Remaining(AtomicU64),
    Deadline(Instant),
}

impl Stop {
    fn take(&self) -> bool {
        match self {
            Self::Remaining(left) => {
                left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1)).is_ok()
            }
            Self::Deadline(at) => Instant::now() < *at,
        }
    }
}

#[derive(Default)]
struct Counters {
    ok: AtomicU64,
    errors: AtomicU64,
    bytes: AtomicU64,
    connects: AtomicU64,
    /// Errors by kind (`status 503`, `transport`), with the first message of each.
    kinds: Mutex<BTreeMap<String, (u64, String)>>,
    /// What the first TLS connection negotiated.
    tls: Mutex<Option<String>>,
}

impl Counters {
    fn failed(&self, failure: Failure) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let (kind, message) = match failure {
            Failure::Status(status, body) => (format!("status {status}"), body),
            Failure::Transport(message) => ("transport".to_owned(), message),
        };
        let mut kinds = self.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = kinds.entry(kind).or_insert((0, message));
        entry.0 += 1;
    }

    fn snapshot(&self, started: Instant) -> serde_json::Value {
        serde_json::json!({
            "t": started.elapsed().as_secs(), "requests": self.ok.load(Ordering::Relaxed),
            "errors": self.errors.load(Ordering::Relaxed), "bytes": self.bytes.load(Ordering::Relaxed),
            "connects": self.connects.load(Ordering::Relaxed),
        })
    }
}

/// Why one GET did not succeed.
enum Failure {
    /// A non-2xx answer, with the start of its body.
    Status(u16, String),
    /// No answer, or the body broke off.
    Transport(String),
}

impl<E: std::fmt::Display> From<E> for Failure {
    fn from(error: E) -> Self {
        Self::Transport(format!("{error:#}"))
    }
}

/// What one load of GETs did.
#[derive(Debug, Clone)]
pub struct GetStats {
    pub requests: u64,
    pub errors: u64,
    pub bytes: u64,
    pub seconds: f64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// The figures as JSON (the same keys the scripts read).
    pub json: serde_json::Value,
}

impl GetStats {
    #[allow(clippy::cast_precision_loss)] // byte and request counts far below 2^52
    pub fn mb_per_s(&self) -> f64 {
        self.bytes as f64 / self.seconds / 1e6
    }

    #[allow(clippy::cast_precision_loss)] // request counts far below 2^52
    pub fn req_per_s(&self) -> f64 {
        self.requests as f64 / self.seconds
    }
}

/// GETs of `urls` (in turn) on `endpoint` as `load` says.
#[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)] // statistics of counts far below 2^52
pub async fn run_gets(
    load: &Load,
    endpoint: &Endpoint,
    urls: &[String],
    signer: &Arc<Signer>,
) -> anyhow::Result<GetStats> {
    anyhow::ensure!(!urls.is_empty() && load.concurrency > 0, "nothing to GET: give --keys and --concurrency ≥ 1");
    for url in urls {
        url.parse::<http::Uri>().with_context(|| format!("{url} is no URL"))?;
    }
    let (targets, endpoint) = (Arc::new(urls.to_vec()), Arc::new(endpoint.clone()));
    let started = Instant::now();
    let stop = Arc::new(match load.duration_secs {
        Some(secs) => Stop::Deadline(started + Duration::from_secs(secs)),
        None => Stop::Remaining(AtomicU64::new(load.requests)),
    });
    let counters = Arc::new(Counters::default());
    let progress = (load.progress_secs > 0).then(|| {
        let counters = Arc::clone(&counters);
        let every = Duration::from_secs(load.progress_secs);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                eprintln!("{}", counters.snapshot(started));
            }
        })
    });
    let workers: Vec<_> = (0..load.concurrency)
        .map(|index| {
            let (targets, endpoint, signer) = (Arc::clone(&targets), Arc::clone(&endpoint), Arc::clone(signer));
            let (stop, counters) = (Arc::clone(&stop), Arc::clone(&counters));
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut connection = None;
                // Workers start at different keys so that a mix is in flight at once.
                for turn in index.. {
                    if !stop.take() {
                        break;
                    }
                    let t = Instant::now();
                    let url = &targets[turn % targets.len()];
                    match get_once(&mut connection, &endpoint, url, &signer, &counters).await {
                        Ok(()) => {
                            counters.ok.fetch_add(1, Ordering::Relaxed);
                            latencies.push(t.elapsed());
                        }
                        Err(failure) => {
                            if matches!(failure, Failure::Transport(_)) {
                                connection = None;
                            }
                            counters.failed(failure);
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    for worker in workers {
        latencies.extend(worker.await?);
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(progress) = progress {
        progress.abort();
    }
    latencies.sort_unstable();
    let pct = |p: f64| {
        let last = latencies.len().checked_sub(1)?;
        Some(latencies[(last as f64 * p) as usize].as_secs_f64() * 1000.0)
    };
    let total = counters.bytes.load(Ordering::Relaxed);
    let errors = counters.errors.load(Ordering::Relaxed);
    let kinds = counters.kinds.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let errors_by_kind: serde_json::Map<String, serde_json::Value> = kinds
        .iter()
        .map(|(kind, (count, first))| (kind.clone(), serde_json::json!({"count": count, "first": first})))
        .collect();
    let keys: Vec<&str> = targets.iter().map(|url| url.rsplit('/').next().unwrap_or_default()).collect();
    let tls = counters.tls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
    let (p50_ms, p99_ms) = (pct(0.5), pct(0.99));
    let json = serde_json::json!({
        "op": "get", "requests": latencies.len(), "errors": errors, "errors_by_kind": errors_by_kind,
        "concurrency": load.concurrency, "connects": counters.connects.load(Ordering::Relaxed), "keys": keys,
        "bytes": total, "seconds": seconds, "mb_per_s": total as f64 / seconds / 1e6,
        "req_per_s": latencies.len() as f64 / seconds, "p50_ms": p50_ms, "p99_ms": p99_ms, "tls": tls,
    });
    Ok(GetStats { requests: latencies.len() as u64, errors, bytes: total, seconds, p50_ms, p99_ms, json })
}

/// One signed GET on the worker's connection (made anew if there is none or
/// it was closed), reading the body to its end.
async fn get_once(
    connection: &mut Option<SendRequest<Body>>,
    endpoint: &Endpoint,
    url: &str,
    signer: &Signer,
    counters: &Counters,
) -> Result<(), Failure> {
    // A keep-alive connection the server closed while idle is no failure of a request.
    if let Some(sender) = connection.as_mut()
        && sender.ready().await.is_err()
    {
        *connection = None;
    }
    let sender = match connection {
        Some(sender) => sender,
        None => {
            let (sender, tls) = endpoint.connect().await?;
            counters.connects.fetch_add(1, Ordering::Relaxed);
            if let Some(tls) = tls {
                counters.tls.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get_or_insert(tls);
            }
            connection.insert(sender)
        }
    };
    let get = signed("GET", url, empty(), None, signer)?;
    let response = sender.send_request(get).await?;
    let status = response.status();
    let mut body = response.into_body();
    let mut head = Vec::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            // Only object bytes count: an error's body is no download.
            if status.is_success() {
                counters.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            } else if head.len() < 512 {
                head.extend_from_slice(&data);
            }
        }
    }
    if status.is_success() {
        Ok(())
    } else {
        Err(Failure::Status(status.as_u16(), String::from_utf8_lossy(&head).into_owned()))
    }
}
