//! What the tool sends: connections from a chosen source address, HTTP/1.1
//! requests on them, refused requests by the thousand, and the legitimate
//! client's signed GETs.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::{TcpSocket, TcpStream};

use egress_e2e::sigv4::Signer;

use crate::round;

/// No request here has a body.
pub type Body = Empty<Bytes>;

/// How long one request may take before it counts as timed out.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the proxy listens, as a socket address and as a Host header.
#[derive(Clone)]
pub struct Server {
    pub addr: SocketAddr,
    pub host: String,
}

impl Server {
    pub fn parse(endpoint: &str) -> anyhow::Result<Server> {
        let uri: http::Uri = endpoint.parse().with_context(|| format!("endpoint {endpoint:?}"))?;
        let authority = uri.authority().context("endpoint has no host")?;
        let ip: IpAddr = authority.host().parse().context("endpoint host must be an IP address")?;
        let addr = SocketAddr::new(ip, authority.port_u16().unwrap_or(80));
        Ok(Server { addr, host: authority.to_string() })
    }

    pub fn get(&self, target: &str) -> anyhow::Result<http::Request<Body>> {
        Ok(http::Request::get(target).header("host", &self.host).body(Body::new())?)
    }
}

/// What came back for one request.
pub struct Answer {
    pub status: http::StatusCode,
    /// Bytes of body.
    pub length: usize,
    /// The S3 error code of an error answer (`<Code>` of its XML body).
    pub code: Option<String>,
}

/// An HTTP/1.1 connection from a chosen source address, made anew when the
/// server has closed it.
pub struct Client {
    source: Option<IpAddr>,
    server: SocketAddr,
    sender: Option<SendRequest<Body>>,
    connects: u64,
}

impl Client {
    pub fn new(source: Option<IpAddr>, server: SocketAddr) -> Client {
        Client { source, server, sender: None, connects: 0 }
    }

    /// Sends `request` and reads its answer to the end, or says what went wrong.
    pub async fn send(&mut self, request: http::Request<Body>) -> Result<Answer, String> {
        match tokio::time::timeout(REQUEST_TIMEOUT, self.exchange(request)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => {
                self.sender = None;
                Err(e)
            }
            Err(_) => {
                self.sender = None;
                Err("timeout".to_owned())
            }
        }
    }

    async fn exchange(&mut self, request: http::Request<Body>) -> Result<Answer, String> {
        // A keep-alive connection the server closed is no failure of a request.
        if let Some(sender) = self.sender.as_mut()
            && sender.ready().await.is_err()
        {
            self.sender = None;
        }
        let sender = match &mut self.sender {
            Some(sender) => sender,
            None => {
                let stream = connect_from(self.source, self.server).await.map_err(|e| format!("connect: {e}"))?;
                let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                    .await
                    .map_err(|e| format!("handshake: {e}"))?;
                tokio::spawn(async move {
                    // Its errors reach the request that was using it.
                    let _ = driver.await;
                });
                self.connects += 1;
                self.sender.insert(sender)
            }
        };
        let response = sender.send_request(request).await.map_err(|e| format!("transport: {e}"))?;
        let status = response.status();
        let mut body = response.into_body();
        let (mut length, mut head) = (0, Vec::new());
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("body: {e}"))?;
            if let Some(data) = frame.data_ref() {
                length += data.len();
                if !status.is_success() && head.len() < 1024 {
                    head.extend_from_slice(data);
                }
            }
        }
        let head = String::from_utf8_lossy(&head);
        let code =
            head.split_once("<Code>").and_then(|(_, rest)| rest.split_once("</Code>")).map(|(c, _)| c.to_owned());
        Ok(Answer { status, length, code })
    }
}

async fn connect_from(source: Option<IpAddr>, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if to.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    if let Some(ip) = source {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    let stream = socket.connect(to).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A connect within `timeout`, or the kind of its failure.
pub async fn connect_within(source: Option<IpAddr>, to: SocketAddr, timeout: Duration) -> Result<TcpStream, String> {
    match tokio::time::timeout(timeout, connect_from(source, to)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(e)) => Err(format!("connect: {:?}", e.kind())),
        Err(_) => Err(format!("connect: no handshake within {} ms", timeout.as_millis())),
    }
}

/// Closes with a reset: no `TIME_WAIT` on our side, which would hold the
/// source port (tens of thousands of connections come from one address).
pub fn close_at_once<S: std::os::fd::AsFd>(stream: &S) {
    let _ = socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO));
}

/// When request workers stop.
pub enum Stop {
    /// Requests with indexes up to `end` (exclusive), taken in turn.
    Count { next: AtomicU64, end: u64 },
    /// Until the flag is set.
    Flag(AtomicBool),
}

impl Stop {
    pub fn take(&self, taken: &AtomicU64) -> Option<u64> {
        match self {
            Stop::Count { next, end } => Some(next.fetch_add(1, Ordering::Relaxed)).filter(|i| i < end),
            Stop::Flag(stop) => (!stop.load(Ordering::Relaxed)).then(|| taken.fetch_add(1, Ordering::Relaxed)),
        }
    }
}

/// Answers counted by status and S3 error code (or by failure), their
/// bytes, and connections made.
#[derive(Default)]
pub struct Tally {
    outcomes: Mutex<BTreeMap<String, u64>>,
    pub requests: AtomicU64,
    answer_bytes: AtomicU64,
    pub connects: AtomicU64,
}

impl Tally {
    fn count(&self, outcome: String) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        *self.outcomes.lock().unwrap_or_else(std::sync::PoisonError::into_inner).entry(outcome).or_default() += 1;
    }

    pub fn outcomes(&self) -> Value {
        json!(*self.outcomes.lock().unwrap_or_else(std::sync::PoisonError::into_inner))
    }

    #[allow(clippy::cast_precision_loss)] // counts far below 2^52
    pub fn answer_bytes_mean(&self) -> f64 {
        let requests = self.requests.load(Ordering::Relaxed);
        if requests == 0 { 0.0 } else { (self.answer_bytes.load(Ordering::Relaxed) as f64 / requests as f64).round() }
    }
}

/// `connections` workers, each on a keep-alive connection from `source`,
/// sending the requests `make` builds as fast as they are answered.
pub async fn run_requests<F>(
    server: &Server,
    source: Option<IpAddr>,
    connections: usize,
    stop: &Stop,
    make: F,
    tally: &Arc<Tally>,
) where
    F: Fn(u64, &mut Rng) -> anyhow::Result<http::Request<Body>> + Clone,
{
    let taken = AtomicU64::new(0);
    let workers = (0..connections.max(1)).map(|worker| {
        let make = make.clone();
        let (taken, tally) = (&taken, Arc::clone(tally));
        async move {
            let mut rng = Rng::seeded(worker as u64);
            let mut client = Client::new(source, server.addr);
            while let Some(i) = stop.take(taken) {
                let outcome = match make(i, &mut rng) {
                    Ok(request) => match client.send(request).await {
                        Ok(answer) => {
                            tally.answer_bytes.fetch_add(answer.length as u64, Ordering::Relaxed);
                            match answer.code {
                                Some(code) => format!("{} {code}", answer.status.as_u16()),
                                None => answer.status.as_u16().to_string(),
                            }
                        }
                        Err(e) => e.split(':').next().unwrap_or_default().to_owned(),
                    },
                    Err(e) => format!("could not build the request: {e}"),
                };
                tally.count(outcome);
            }
            tally.connects.fetch_add(client.connects, Ordering::Relaxed);
        }
    });
    futures_util::future::join_all(workers).await;
}

/// The legitimate client: a principal's key and the object it reads.
pub struct Reader {
    signer: Signer,
    bucket: String,
    key: String,
}

impl Reader {
    pub fn new(access_key: &str, secret_key: &str, bucket: &str, key: &str) -> Reader {
        Reader { signer: Signer::new(access_key, secret_key), bucket: bucket.to_owned(), key: key.to_owned() }
    }

    /// The signed GET of the object.
    pub fn get(&self, server: &Server) -> anyhow::Result<http::Request<Body>> {
        let path = format!("/{}/{}", self.bucket, self.key);
        let mut request = server.get(&path)?;
        self.signer.sign(&mut request, &format!("http://{}{path}", server.host), "UNSIGNED-PAYLOAD")?;
        Ok(request)
    }

    /// `count` signed GETs one after another on `client`: the time of each
    /// to its last byte, and the failures.
    pub async fn timed_gets(&self, client: &mut Client, server: &Server, count: usize) -> Timings {
        let mut timings = Timings(Vec::with_capacity(count));
        let mut failures = 0;
        for _ in 0..count {
            let Ok(request) = self.get(server) else {
                failures += 1;
                continue;
            };
            let started = Instant::now();
            match client.send(request).await {
                Ok(answer) if answer.status.is_success() => timings.0.push(started.elapsed()),
                _ => failures += 1,
            }
        }
        timings.0.extend(std::iter::repeat_n(Duration::MAX, failures));
        timings
    }

    /// One signed GET on a new connection from the default source, all of
    /// it within `timeout`.
    pub async fn get_within(&self, server: &Server, timeout: Duration) -> Value {
        let started = Instant::now();
        let mut client = Client::new(None, server.addr);
        let outcome = match self.get(server) {
            Ok(request) => tokio::time::timeout(timeout, client.send(request)).await,
            Err(e) => Ok(Err(e.to_string())),
        };
        let ms = round(started.elapsed().as_secs_f64() * 1000.0, 1);
        match outcome {
            Ok(Ok(answer)) => json!({
                "ok": answer.status.is_success(), "status": answer.status.as_u16(), "code": answer.code,
                "bytes": answer.length, "ms": ms,
            }),
            Ok(Err(e)) => json!({"ok": false, "error": e, "ms": ms}),
            Err(_) => {
                json!({"ok": false, "error": format!("no whole answer within {} ms", timeout.as_millis()), "ms": ms})
            }
        }
    }
}

/// Signs `request` (for `path` on `server`) as `access_key` would, but
/// with a wrong secret: a well-formed SigV4 request whose signature fails.
pub fn bogus_sigv4(
    request: &mut http::Request<Body>,
    server: &Server,
    path: &str,
    access_key: &str,
) -> anyhow::Result<()> {
    Signer::new(access_key, "not-the-secret").sign(
        request,
        &format!("http://{}{path}", server.host),
        "UNSIGNED-PAYLOAD",
    )
}

/// splitmix64: random enough for names and garbage, no dependency.
pub struct Rng(u64);

impl Rng {
    pub fn seeded(salt: u64) -> Rng {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
        Rng(now ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ u64::from(std::process::id()))
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick(&mut self, from: &[u8]) -> char {
        char::from(from[self.below(from.len() as u64) as usize])
    }

    pub fn alnum(&mut self, len: usize) -> String {
        (0..len).map(|_| self.pick(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")).collect()
    }

    pub fn lower_alnum(&mut self, len: usize) -> String {
        (0..len).map(|_| self.pick(b"abcdefghijklmnopqrstuvwxyz0123456789")).collect()
    }

    /// `len` characters of request target, a quarter of them percent-escapes
    /// of characters JSON has to escape again (`"`, `\`, control characters).
    pub fn escaped_key(&mut self, len: usize) -> String {
        let mut key = String::with_capacity(len);
        while key.len() < len {
            if len - key.len() >= 3 && self.below(4) == 0 {
                key.push_str(["%22", "%5C", "%01", "%1F"][self.below(4) as usize]);
            } else {
                key.push(self.pick(b"abcdefghijklmnopqrstuvwxyz0123456789"));
            }
        }
        key
    }

    /// `len` characters of header value, heavy in `"` and `\`.
    pub fn agent(&mut self, len: usize) -> String {
        (0..len).map(|_| self.pick(b"\"\\\"\\abcdefghijklmnopqrstuvwxyz ")).collect()
    }
}

/// The admin API's `/metrics` text.
pub async fn metrics(admin: &Server, token: &str) -> Result<String, String> {
    let request = http::Request::get("/metrics")
        .header("host", &admin.host)
        .header("authorization", format!("Bearer {token}"))
        .body(Body::new())
        .map_err(|e| e.to_string())?;
    let stream = connect_from(None, admin.addr).await.map_err(|e| format!("connect: {e}"))?;
    let (mut sender, driver) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| e.to_string())?;
    tokio::spawn(driver);
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    if !status.is_success() {
        return Err(format!("/metrics answered {status}"));
    }
    String::from_utf8(body.to_vec()).map_err(|e| e.to_string())
}

/// Latencies; a failed request is `Duration::MAX`.
pub struct Timings(pub Vec<Duration>);

impl Timings {
    #[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)] // indexes far below 2^52
    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        let mut ok: Vec<Duration> = self.0.iter().copied().filter(|d| *d != Duration::MAX).collect();
        ok.sort_unstable();
        let last = ok.len().checked_sub(1)?;
        Some(ok[(last as f64 * p).round() as usize].as_secs_f64() * 1000.0)
    }

    pub fn json(&self) -> Value {
        let ok = self.0.iter().filter(|d| **d != Duration::MAX).count();
        json!({
            "requests": self.0.len(), "ok": ok, "failed": self.0.len() - ok,
            "p50_ms": self.percentile_ms(0.5).map(|v| round(v, 3)),
            "p99_ms": self.percentile_ms(0.99).map(|v| round(v, 3)),
            "max_ms": self.percentile_ms(1.0).map(|v| round(v, 3)),
        })
    }
}
