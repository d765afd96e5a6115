//! `egress-bench`: S3 load that signs its own requests (SigV4), and the
//! benchmarks built on it (docs/BENCHMARKS.md).
//!
//! One measurement against one endpoint, one JSON object printed
//! (`scripts/load.sh`, `scripts/hostile.sh`):
//! - `put --size BYTES`: uploads a generated object (UNSIGNED-PAYLOAD, streamed).
//! - `get --concurrency C --requests N`: N GETs of one object by C workers on
//!   keep-alive connections: bytes/s, req/s, p50/p99 latency to the last byte.
//! - `get --connections C --duration-secs S --keys a,b`: C connections kept
//!   busy for S seconds with GETs cycling over the keys; counts successes,
//!   errors (non-2xx or transport) and reconnections, and prints progress to
//!   stderr every `--progress-secs`.
//!
//! Whole benchmarks that start and stop everything they measure (SeaweedFS,
//! the proxies, nginx) in a temporary directory; progress and a table on
//! stderr, one JSON object on stdout:
//! - `compare`: the proxy against nginx and against going direct, for each
//!   shape (plain, TLS upstream, TLS both sides), rounds alternating.
//! - `ab`: two proxy binaries (or settings) and going direct, alternating.
//!
//! Exits 1 after printing its figures if any GET failed.

// A binary's root takes its modules from its own folder: these live in
// the folder beside it, named after it.
#[path = "egress-bench/ab.rs"]
mod ab;
#[path = "egress-bench/client.rs"]
mod client;
#[path = "egress-bench/compare.rs"]
mod compare;
#[path = "egress-bench/procfs.rs"]
mod procfs;
#[path = "egress-bench/report.rs"]
mod report;
#[path = "egress-bench/rounds.rs"]
mod rounds;
#[path = "egress-bench/stack.rs"]
mod stack;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use egress_e2e::sigv4::Signer;

use client::{Endpoint, Load};

#[derive(Parser)]
#[command(about = "S3 load and benchmarks: the proxy against nginx and direct (docs/BENCHMARKS.md)")]
struct Args {
    #[command(flatten)]
    object: ObjectArgs,
    #[command(subcommand)]
    command: Cmd,
}

/// Where `put` and `get` go (before the subcommand, as the scripts give it).
#[derive(clap::Args)]
struct ObjectArgs {
    /// S3 endpoint for `put` and `get`, e.g. `http://127.0.0.1:9000`.
    #[arg(long)]
    endpoint: Option<String>,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: Option<String>,
    #[arg(long)]
    bucket: Option<String>,
    #[arg(long)]
    key: Option<String>,
    /// The CA (PEM) that signed an https endpoint's certificate.
    #[arg(long)]
    ca_file: Option<PathBuf>,
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
    /// The proxy against nginx and direct, per shape: MB/s and CPU per GiB
    /// of a large GET, req/s and CPU per request of small GETs, RSS while
    /// streaming.
    Compare(Box<compare::Options>),
    /// Two proxy binaries (or settings) against direct, rounds alternating.
    Ab(Box<ab::Options>),
}

/// The endpoint, key and object that `put` and `get` need.
struct Single {
    endpoint: Endpoint,
    signer: Arc<Signer>,
    bucket: String,
    key: String,
}

impl Single {
    fn from(args: ObjectArgs) -> anyhow::Result<Single> {
        let need = |value: Option<String>, flag: &str| value.with_context(|| format!("put and get need {flag}"));
        Ok(Single {
            endpoint: Endpoint::new(&need(args.endpoint, "--endpoint")?, args.ca_file.as_deref())?,
            signer: Arc::new(Signer::new(
                &need(args.access_key, "--access-key (or AWS_ACCESS_KEY_ID)")?,
                &need(args.secret_key, "--secret-key (or AWS_SECRET_ACCESS_KEY)")?,
            )),
            bucket: need(args.bucket, "--bucket")?,
            key: need(args.key, "--key")?,
        })
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        Cmd::Put { size } => {
            let single = Single::from(args.object)?;
            let seconds =
                client::put_object(&single.endpoint, &single.signer, &single.bucket, &single.key, size).await?;
            println!("{}", serde_json::json!({"op": "put", "bytes": size, "seconds": seconds}));
        }
        Cmd::Get(load) => {
            let single = Single::from(args.object)?;
            let keys = load.keys.clone().unwrap_or_else(|| vec![single.key.clone()]);
            let urls: Vec<String> = keys.iter().map(|key| single.endpoint.object_url(&single.bucket, key)).collect();
            let stats = client::run_gets(&load, &single.endpoint, &urls, &single.signer).await?;
            println!("{}", stats.json);
            anyhow::ensure!(stats.errors == 0, "{} of the GETs failed", stats.errors);
        }
        Cmd::Compare(options) => compare::run(*options).await?,
        Cmd::Ab(options) => ab::run(*options).await?,
    }
    Ok(())
}

/// SIGINT or SIGTERM: the benchmark is dropped, and with it every process it
/// started and its temporary directory.
async fn interrupted() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::select! {
        result = run(args) => result,
        signal = interrupted() => anyhow::bail!("stopped by {signal}; what it started is stopped and its files removed"),
    }
}
