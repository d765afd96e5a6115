//! `egress-bench`: a small S3 load tool that signs its own requests (SigV4),
//! for measuring the proxy against going direct to the same upstream in one
//! run (`scripts/bench.sh`). Prints one JSON object per run.
//!
//! - `put --size BYTES`: uploads a generated object (UNSIGNED-PAYLOAD, streamed).
//! - `get --concurrency C --requests N`: N GETs of one object by C workers on
//!   keep-alive connections: bytes/s, req/s, p50/p99 latency to the last byte.
//! - `get --connections C --duration-secs S --keys a,b`: C connections kept
//!   busy for S seconds with GETs cycling over the keys (`scripts/load.sh`);
//!   counts successes, errors (non-2xx or transport) and reconnections, and
//!   prints progress to stderr every `--progress-secs`.
//!
//! Exits 1 after printing its figures if any GET failed.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use egress_e2e::sigv4::Signer;
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper::client::conn::http1::SendRequest;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;

#[derive(Parser)]
struct Args {
    /// S3 endpoint, e.g. `http://127.0.0.1:9000`
    #[arg(long)]
    endpoint: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY")]
    secret_key: String,
    #[arg(long)]
    bucket: String,
    #[arg(long)]
    key: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the bucket (if needed) and upload a generated object.
    Put {
        #[arg(long)]
        size: u64,
    },
    /// GET the object (or `--keys`) repeatedly, each worker on a keep-alive
    /// connection of its own.
    Get(Load),
}

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

fn request(method: &str, url: &str, body: Body) -> anyhow::Result<http::Request<Body>> {
    let uri: http::Uri = url.parse()?;
    let host = uri.authority().context("endpoint has no host")?.to_string();
    Ok(http::Request::builder().method(method).uri(uri).header("host", host).body(body)?)
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let signer = Arc::new(Signer::new(&args.access_key, &args.secret_key));
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Body> =
        Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build(connector);
    let object_url = format!("{}/{}/{}", args.endpoint.trim_end_matches('/'), args.bucket, args.key);
    match args.command {
        Cmd::Put { size } => {
            let bucket_url = format!("{}/{}", args.endpoint.trim_end_matches('/'), args.bucket);
            let mut create = request("PUT", &bucket_url, empty())?;
            signer.sign(&mut create, &bucket_url, "UNSIGNED-PAYLOAD")?;
            let _ = client.request(create).await?.into_body().collect().await;
            let chunk = Bytes::from(vec![0x5a_u8; 1 << 20]);
            let chunks = (0..size.div_ceil(1 << 20)).map(move |i| {
                let len = (size - i * (1 << 20)).min(1 << 20) as usize;
                Ok::<_, std::io::Error>(Frame::data(chunk.slice(..len)))
            });
            let body = StreamBody::new(futures_util::stream::iter(chunks)).boxed_unsync();
            let mut put = request("PUT", &object_url, body)?;
            put.headers_mut().insert("content-length", size.into());
            signer.sign(&mut put, &object_url, "UNSIGNED-PAYLOAD")?;
            let started = Instant::now();
            let response = client.request(put).await?;
            let status = response.status();
            let _ = response.into_body().collect().await;
            anyhow::ensure!(status.is_success(), "PUT answered {status}");
            println!("{}", serde_json::json!({"op": "put", "bytes": size, "seconds": started.elapsed().as_secs_f64()}));
        }
        Cmd::Get(load) => {
            let keys = load.keys.clone().unwrap_or_else(|| vec![args.key.clone()]);
            let base = format!("{}/{}/", args.endpoint.trim_end_matches('/'), args.bucket);
            let urls: Vec<String> = keys.iter().map(|key| format!("{base}{key}")).collect();
            let report = run_gets(&load, &urls, signer).await?;
            println!("{}", report.json);
            anyhow::ensure!(report.errors == 0, "{} of the GETs failed", report.errors);
        }
    }
    Ok(())
}

/// How `get` loads the endpoint.
#[derive(clap::Args)]
struct Load {
    /// Workers, each on a keep-alive connection of its own.
    #[arg(long, visible_alias = "connections", default_value_t = 1)]
    concurrency: usize,
    /// GETs in all, shared by the workers (ignored with `--duration-secs`).
    #[arg(long, default_value_t = 1)]
    requests: u64,
    /// Keep every connection busy for this long instead of counting requests.
    #[arg(long)]
    duration_secs: Option<u64>,
    /// Objects to GET in turn, comma-separated, instead of `--key` (repeat a
    /// key to weigh it).
    #[arg(long, value_delimiter = ',')]
    keys: Option<Vec<String>>,
    /// Print running totals to stderr this often (0: never).
    #[arg(long, default_value_t = 0)]
    progress_secs: u64,
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
        Self::Transport(error.to_string())
    }
}

/// One object to GET: the URL that is signed and the origin-form target sent.
struct Target {
    url: String,
    path: http::Uri,
}

struct Report {
    json: serde_json::Value,
    errors: u64,
}

#[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)] // statistics of counts far below 2^52
async fn run_gets(load: &Load, urls: &[String], signer: Arc<Signer>) -> anyhow::Result<Report> {
    anyhow::ensure!(!urls.is_empty() && load.concurrency > 0, "nothing to GET: give --keys and --concurrency ≥ 1");
    let first: http::Uri = urls[0].parse()?;
    let authority = first.authority().context("endpoint has no host")?;
    let address = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
    let targets = urls
        .iter()
        .map(|url| {
            let uri: http::Uri = url.parse()?;
            let path = uri.path_and_query().context("URL has no path")?.as_str().parse()?;
            Ok(Target { url: url.clone(), path })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (targets, address) = (Arc::new(targets), Arc::new(address));
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
            let (targets, address, signer) = (Arc::clone(&targets), Arc::clone(&address), Arc::clone(&signer));
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
                    let target = &targets[turn % targets.len()];
                    match get_once(&mut connection, &address, target, &signer, &counters).await {
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
    let keys: Vec<&str> = targets.iter().map(|t| t.url.rsplit('/').next().unwrap_or_default()).collect();
    let json = serde_json::json!({
        "op": "get", "requests": latencies.len(), "errors": errors, "errors_by_kind": errors_by_kind,
        "concurrency": load.concurrency, "connects": counters.connects.load(Ordering::Relaxed), "keys": keys,
        "bytes": total, "seconds": seconds, "mb_per_s": total as f64 / seconds / 1e6,
        "req_per_s": latencies.len() as f64 / seconds, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
    });
    Ok(Report { json, errors })
}

/// One signed GET on the worker's connection (made anew if there is none or
/// it was closed), reading the body to its end.
async fn get_once(
    connection: &mut Option<SendRequest<Body>>,
    address: &str,
    target: &Target,
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
            let stream = TcpStream::connect(address).await?;
            stream.set_nodelay(true)?;
            let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
            tokio::spawn(async move {
                // Its errors reach the request that was using it.
                let _ = driver.await;
            });
            counters.connects.fetch_add(1, Ordering::Relaxed);
            connection.insert(sender)
        }
    };
    let mut get = request("GET", &target.url, empty())?;
    signer.sign(&mut get, &target.url, "UNSIGNED-PAYLOAD")?;
    *get.uri_mut() = target.path.clone();
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
