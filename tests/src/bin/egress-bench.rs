//! `egress-bench`: a small S3 load tool that signs its own requests (SigV4),
//! for measuring the proxy against going direct to the same upstream in one
//! run (`scripts/bench.sh`). Prints one JSON object per run.
//!
//! - `put --size BYTES`: uploads a generated object (UNSIGNED-PAYLOAD, streamed).
//! - `get --concurrency C --requests N`: N GETs of one object by C workers on
//!   keep-alive connections: bytes/s, req/s, p50/p99 latency to the last byte.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context as _;
use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use clap::{Parser, Subcommand};
use http_body_util::{BodyExt, Empty, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

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
    /// GET the object repeatedly.
    Get {
        #[arg(long, default_value_t = 1)]
        concurrency: usize,
        #[arg(long, default_value_t = 1)]
        requests: u64,
    },
}

type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

struct Signer {
    identity: Identity,
}

impl Signer {
    fn sign(&self, request: &mut http::Request<Body>, payload: &str) -> anyhow::Result<()> {
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = PercentEncodingMode::Single;
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.payload_checksum_kind = aws_sigv4::http_request::PayloadChecksumKind::XAmzSha256;
        let params = v4::SigningParams::builder()
            .identity(&self.identity)
            .region("us-east-1")
            .name("s3")
            .time(SystemTime::now())
            .settings(settings)
            .build()?
            .into();
        let uri = request.uri().to_string();
        let headers: Vec<(&str, &str)> =
            request.headers().iter().filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))).collect();
        let signable = SignableRequest::new(
            request.method().as_str(),
            &uri,
            headers.into_iter(),
            SignableBody::Precomputed(payload.to_owned()),
        )?;
        let (instructions, _) = sign(signable, &params)?.into_parts();
        instructions.apply_to_request_http1x(request);
        Ok(())
    }
}

fn request(method: &str, url: &str, body: Body) -> anyhow::Result<http::Request<Body>> {
    let uri: http::Uri = url.parse()?;
    let host = uri.authority().context("endpoint has no host")?.to_string();
    Ok(http::Request::builder().method(method).uri(uri).header("host", host).body(body)?)
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

#[tokio::main(flavor = "multi_thread")]
#[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)] // statistics of counts far below 2^52
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let signer =
        Arc::new(Signer { identity: Credentials::new(&args.access_key, &args.secret_key, None, None, "bench").into() });
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Body> =
        Client::builder(TokioExecutor::new()).pool_max_idle_per_host(1024).build(connector);
    let object_url = format!("{}/{}/{}", args.endpoint.trim_end_matches('/'), args.bucket, args.key);
    match args.command {
        Cmd::Put { size } => {
            let bucket_url = format!("{}/{}", args.endpoint.trim_end_matches('/'), args.bucket);
            let mut create = request("PUT", &bucket_url, empty())?;
            signer.sign(&mut create, "UNSIGNED-PAYLOAD")?;
            let _ = client.request(create).await?.into_body().collect().await;
            let chunk = Bytes::from(vec![0x5a_u8; 1 << 20]);
            let chunks = (0..size.div_ceil(1 << 20)).map(move |i| {
                let len = (size - i * (1 << 20)).min(1 << 20) as usize;
                Ok::<_, std::io::Error>(Frame::data(chunk.slice(..len)))
            });
            let body = StreamBody::new(futures_util::stream::iter(chunks)).boxed_unsync();
            let mut put = request("PUT", &object_url, body)?;
            put.headers_mut().insert("content-length", size.into());
            signer.sign(&mut put, "UNSIGNED-PAYLOAD")?;
            let started = Instant::now();
            let response = client.request(put).await?;
            let status = response.status();
            let _ = response.into_body().collect().await;
            anyhow::ensure!(status.is_success(), "PUT answered {status}");
            println!("{}", serde_json::json!({"op": "put", "bytes": size, "seconds": started.elapsed().as_secs_f64()}));
        }
        Cmd::Get { concurrency, requests } => {
            let remaining = Arc::new(AtomicU64::new(requests));
            let bytes = Arc::new(AtomicU64::new(0));
            let started = Instant::now();
            let mut workers = Vec::new();
            for _ in 0..concurrency {
                let (client, signer, url) = (client.clone(), Arc::clone(&signer), object_url.clone());
                let (remaining, bytes) = (Arc::clone(&remaining), Arc::clone(&bytes));
                workers.push(tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    while remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(1)).is_ok() {
                        let t = Instant::now();
                        let mut get = request("GET", &url, empty())?;
                        signer.sign(&mut get, "UNSIGNED-PAYLOAD")?;
                        let response = client.request(get).await?;
                        anyhow::ensure!(response.status().is_success(), "GET answered {}", response.status());
                        let mut body = response.into_body();
                        while let Some(frame) = body.frame().await {
                            if let Ok(data) = frame?.into_data() {
                                bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                            }
                        }
                        latencies.push(t.elapsed());
                    }
                    anyhow::Ok(latencies)
                }));
            }
            let mut latencies: Vec<Duration> = Vec::new();
            for worker in workers {
                latencies.extend(worker.await??);
            }
            let seconds = started.elapsed().as_secs_f64();
            latencies.sort_unstable();
            let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
            let total = bytes.load(Ordering::Relaxed);
            println!(
                "{}",
                serde_json::json!({
                    "op": "get", "requests": latencies.len(), "concurrency": concurrency, "bytes": total,
                    "seconds": seconds, "mb_per_s": total as f64 / seconds / 1e6, "req_per_s": latencies.len() as f64 / seconds,
                    "p50_ms": pct(0.5), "p99_ms": pct(0.99),
                })
            );
        }
    }
    Ok(())
}
