//! `egress-hostile`: hostile load against the proxy, for `scripts/hostile.sh`
//! (issue 14: bound what unauthenticated clients can cost). Each subcommand
//! is one measurement and prints one JSON object of what it measured; the
//! script holds the targets and judges. Hostile connections come from a
//! loopback source address of their own (Linux accepts any 127/8 source), so
//! that the proxy sees them as other hosts than the legitimate client.
//!
//! - `ledger-cost`: refused requests (anonymous, bogus SigV4) carrying huge
//!   keys and User-Agents; the growth of the ledger's segment files.
//! - `random-buckets`: refused requests naming a new bucket each; the
//!   proxy's RSS and the size of the admin API's `/metrics` as they go.
//! - `latency`: signed GETs on one keep-alive connection, idle and during a
//!   flood of refused requests from another address.
//! - `silent`: connections that send nothing; when the proxy closes them.
//! - `silent-waves`: waves of silent connections held by helper processes
//!   (`hold`: one process cannot hold them all under the open-file limit);
//!   the proxy's descriptors, and whether a signed GET still gets through.
//!
//! Exits non-zero only when it could not measure; whether a figure misses
//! its target is the script's call.

// A binary's root takes its modules from its own folder: these live in
// the folder beside it, named after it.
#[path = "egress-hostile/holders.rs"]
mod holders;
#[path = "egress-hostile/probe.rs"]
mod probe;
#[path = "egress-hostile/traffic.rs"]
mod traffic;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use serde_json::{Value, json};
use tokio::io::AsyncReadExt as _;

use holders::{Hold, Holder};
use probe::{FdSampler, Proxy, Segments, settle_fds};
use traffic::{Client, Reader, Rng, Server, Stop, Tally, Timings};

#[derive(Parser)]
struct Args {
    /// The proxy's S3 endpoint, `http://IP:PORT`.
    #[arg(long)]
    endpoint: String,
    /// The proxy's process id: its RSS and descriptors are read from /proc.
    #[arg(long)]
    pid: Option<u32>,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Refused requests with huge keys and User-Agents: ledger bytes per 1,000.
    LedgerCost(LedgerCost),
    /// Refused requests, a new bucket name each: the proxy's RSS and /metrics size.
    RandomBuckets(RandomBuckets),
    /// Signed GETs idle and during a flood of refused requests from another address.
    Latency(Latency),
    /// Connections that send nothing: how soon the proxy closes them.
    Silent(Silent),
    /// Waves of silent connections, then a signed GET: does the proxy still serve?
    SilentWaves(SilentWaves),
    /// Helper process of `silent-waves`: holds connections, reads commands from stdin.
    #[command(hide = true)]
    Hold(Hold),
}

#[derive(clap::Args)]
struct LedgerCost {
    #[arg(long, default_value_t = 1_000)]
    requests: u64,
    #[arg(long, default_value_t = 8)]
    connections: usize,
    #[arg(long, default_value = "127.0.0.3")]
    source: IpAddr,
    /// Characters of the request target after the bucket.
    #[arg(long, default_value_t = 30_000)]
    key_chars: usize,
    #[arg(long, default_value_t = 30_000)]
    agent_chars: usize,
    /// The proxy's data directory; the ledger is its `ledger/segment-*.jsonl`.
    #[arg(long)]
    data_dir: PathBuf,
    /// A real access key id, named by some of the bogus SigV4 headers.
    #[arg(long)]
    known_access_key: Option<String>,
    #[arg(long, default_value = "hostile")]
    bucket: String,
}

#[derive(clap::Args)]
struct RandomBuckets {
    #[arg(long, default_value_t = 20_000)]
    requests: u64,
    /// Sample RSS and descriptors after every this many requests.
    #[arg(long, default_value_t = 10_000)]
    sample_every: u64,
    #[arg(long, default_value_t = 8)]
    connections: usize,
    #[arg(long, default_value = "127.0.0.4")]
    source: IpAddr,
    /// The admin API, `http://IP:PORT`, for `/metrics`.
    #[arg(long)]
    admin: String,
    #[arg(long)]
    admin_token_file: PathBuf,
}

/// The legitimate client: a principal's key and an object it may read.
#[derive(clap::Args, Clone)]
struct Legitimate {
    #[arg(long)]
    access_key: String,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_key: String,
    #[arg(long)]
    bucket: String,
    #[arg(long)]
    key: String,
}

impl Legitimate {
    fn reader(&self) -> Reader {
        Reader::new(&self.access_key, &self.secret_key, &self.bucket, &self.key)
    }
}

#[derive(clap::Args)]
struct Latency {
    #[command(flatten)]
    legitimate: Legitimate,
    /// Signed GETs measured idle, and again during the flood.
    #[arg(long, default_value_t = 1_000)]
    requests: usize,
    /// Signed GETs before the idle ones, not measured.
    #[arg(long, default_value_t = 100)]
    warmup: usize,
    #[arg(long, default_value_t = 8)]
    flood_connections: usize,
    #[arg(long, default_value = "127.0.0.2")]
    flood_source: IpAddr,
    #[arg(long, default_value_t = 200)]
    flood_key_chars: usize,
    /// How long the flood runs before the measured GETs start.
    #[arg(long, default_value_t = 1_000)]
    flood_ramp_ms: u64,
}

#[derive(clap::Args)]
struct Silent {
    #[arg(long, default_value_t = 2_000)]
    connections: usize,
    #[arg(long, default_value = "127.0.0.2")]
    source: IpAddr,
    /// The proxy's header read timeout.
    #[arg(long)]
    timeout_secs: u64,
    /// A connection counts as closed in time within timeout + slack of its connect.
    #[arg(long, default_value_t = 2)]
    slack_secs: u64,
    /// How much longer to watch, to tell "late" from "never".
    #[arg(long, default_value_t = 3)]
    watch_extra_secs: u64,
    #[arg(long, default_value_t = 128)]
    connect_concurrency: usize,
    #[arg(long, default_value_t = 3_000)]
    connect_timeout_ms: u64,
}

#[derive(clap::Args)]
struct SilentWaves {
    #[command(flatten)]
    legitimate: Legitimate,
    /// Silent connections opened in all.
    #[arg(long, default_value_t = 20_000)]
    total: usize,
    #[arg(long, default_value_t = 2_000)]
    wave: usize,
    /// From the start of one wave to the start of the next (a slow wave
    /// delays the next).
    #[arg(long, default_value_t = 1_000)]
    interval_ms: u64,
    #[arg(long, default_value = "127.0.0.2")]
    source: IpAddr,
    /// Connections each helper process holds at most (its open-file limit
    /// must allow them).
    #[arg(long, default_value_t = 10_000)]
    per_holder: usize,
    #[arg(long, default_value_t = 512)]
    connect_concurrency: usize,
    #[arg(long, default_value_t = 2_000)]
    connect_timeout_ms: u64,
    /// The signed GET after the waves must have its whole answer within this.
    #[arg(long, default_value_t = 2_000)]
    get_timeout_ms: u64,
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = Server::parse(&args.endpoint)?;
    let proxy = args.pid.map(Proxy);
    if let Some(proxy) = proxy {
        anyhow::ensure!(proxy.alive(), "no proxy process {} to measure", proxy.0);
    }
    let need = || proxy.context("--pid is needed for this measurement");
    let report = match args.command {
        Cmd::LedgerCost(a) => ledger_cost(&server, proxy, a).await?,
        Cmd::RandomBuckets(a) => random_buckets(&server, need()?, a).await?,
        Cmd::Latency(a) => latency(&server, proxy, a).await?,
        Cmd::Silent(a) => silent(&server, need()?, a).await?,
        Cmd::SilentWaves(a) => silent_waves(&server, &args.endpoint, need()?, a).await?,
        Cmd::Hold(a) => return holders::hold(&server, a).await,
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

async fn ledger_cost(server: &Server, proxy: Option<Proxy>, a: LedgerCost) -> anyhow::Result<Value> {
    let before = Segments::read(&a.data_dir)?;
    let started = SystemTime::now();
    let clock = Instant::now();
    let tally = Arc::new(Tally::default());
    let make = {
        let (server, bucket, known) = (server.clone(), a.bucket.clone(), a.known_access_key.clone());
        let (key_chars, agent_chars) = (a.key_chars, a.agent_chars);
        move |i: u64, rng: &mut Rng| {
            // Every combination of who (anonymous, unknown key, known key with
            // a wrong signature) and what key (plain, or percent-escapes of
            // what JSON must escape again) comes round.
            let key = if (i / 3).is_multiple_of(2) { rng.alnum(key_chars) } else { rng.escaped_key(key_chars) };
            let path = format!("/{bucket}/{key}");
            let mut request = server.get(&path)?;
            request.headers_mut().insert("user-agent", rng.agent(agent_chars).parse()?);
            let access_key = match (i % 3, &known) {
                (0, _) => None,
                (2, Some(known)) => Some(known.clone()),
                _ => Some(format!("AKIAHOSTILE{:09}", rng.below(1_000_000_000))),
            };
            if let Some(access_key) = access_key {
                traffic::bogus_sigv4(&mut request, &server, &path, &access_key)?;
            }
            Ok(request)
        }
    };
    let stop = Stop::Count { next: AtomicU64::new(0), end: a.requests };
    traffic::run_requests(server, Some(a.source), a.connections, &stop, make, &tally).await;
    let seconds = clock.elapsed().as_secs_f64();
    let ended = SystemTime::now();
    // The end records follow the answers: wait until the files stop growing.
    let after = Segments::settled(&a.data_dir, Duration::from_secs(1), Duration::from_secs(10)).await?;
    let growth = after.bytes.saturating_sub(before.bytes);
    let lines = after.lines.saturating_sub(before.lines);
    let per_thousand = |n: u64| ratio(n * 1000, a.requests);
    Ok(json!({
        "requests": a.requests, "connections": a.connections, "source": a.source,
        "key_chars": a.key_chars, "agent_chars": a.agent_chars,
        "answers": tally.outcomes(), "answer_bytes_mean": tally.answer_bytes_mean(),
        "connects": tally.connects.load(Ordering::Relaxed),
        "seconds": round(seconds, 2), "req_per_s": round(ratio_f(a.requests, seconds), 0),
        "wall_clock_minutes_spanned": minute(ended) - minute(started) + 1,
        "ledger": {
            "segment_files": after.files, "bytes_before": before.bytes, "bytes_after": after.bytes,
            "growth_bytes": growth, "lines_added": lines,
            "bytes_per_1000_requests": round(per_thousand(growth), 0),
            "lines_per_1000_requests": round(per_thousand(lines), 1),
            "mean_line_bytes": round(ratio(growth, lines), 0),
        },
        "proxy_alive": proxy.map(Proxy::alive),
    }))
}

async fn random_buckets(server: &Server, proxy: Proxy, a: RandomBuckets) -> anyhow::Result<Value> {
    anyhow::ensure!(a.sample_every > 0, "--sample-every must be at least 1");
    let admin = Server::parse(&a.admin)?;
    let token = std::fs::read_to_string(&a.admin_token_file)
        .with_context(|| format!("reading the admin token {}", a.admin_token_file.display()))?;
    let metrics_before = traffic::metrics(&admin, token.trim()).await;
    let mut samples = vec![json!({"requests": 0, "rss_kib": proxy.rss_kib(), "fds": proxy.fds()})];
    let tally = Arc::new(Tally::default());
    let clock = Instant::now();
    let make = {
        let server = server.clone();
        move |i: u64, rng: &mut Rng| {
            // A valid bucket name of S3's longest, never seen before: the
            // index keeps them distinct, the rest is random.
            let bucket = format!("hb{i:08x}-{}", rng.lower_alnum(52));
            let path = format!("/{bucket}/object");
            let mut request = server.get(&path)?;
            if i % 2 == 1 {
                let access_key = format!("AKIAHOSTILE{:09}", rng.below(1_000_000_000));
                traffic::bogus_sigv4(&mut request, &server, &path, &access_key)?;
            }
            Ok(request)
        }
    };
    let mut done = 0;
    while done < a.requests {
        let end = (done + a.sample_every).min(a.requests);
        let stop = Stop::Count { next: AtomicU64::new(done), end };
        traffic::run_requests(server, Some(a.source), a.connections, &stop, make.clone(), &tally).await;
        done = end;
        samples.push(json!({"requests": done, "rss_kib": proxy.rss_kib(), "fds": proxy.fds()}));
    }
    let seconds = clock.elapsed().as_secs_f64();
    let metrics_after = traffic::metrics(&admin, token.trim()).await;
    let rss = |s: &Value| s["rss_kib"].as_u64();
    let growth = match (samples.first().and_then(rss), samples.last().and_then(rss)) {
        (Some(first), Some(last)) => Some(last.cast_signed() - first.cast_signed()),
        _ => None,
    };
    let metrics_growth = match (&metrics_before, &metrics_after) {
        (Ok(before), Ok(after)) => Some(after.len().cast_signed() - before.len().cast_signed()),
        _ => None,
    };
    let describe = |m: &Result<String, String>| match m {
        Ok(text) => json!({"bytes": text.len(), "lines": text.lines().count()}),
        Err(e) => json!({"error": e}),
    };
    Ok(json!({
        "requests": a.requests, "connections": a.connections, "source": a.source,
        "answers": tally.outcomes(), "answer_bytes_mean": tally.answer_bytes_mean(),
        "connects": tally.connects.load(Ordering::Relaxed),
        "seconds": round(seconds, 2), "req_per_s": round(ratio_f(a.requests, seconds), 0),
        "samples": samples, "rss_growth_kib": growth,
        "metrics_before": describe(&metrics_before), "metrics_after": describe(&metrics_after),
        "metrics_growth_bytes": metrics_growth,
        "proxy_alive": proxy.alive(),
    }))
}

async fn latency(server: &Server, proxy: Option<Proxy>, a: Latency) -> anyhow::Result<Value> {
    // The legitimate client and the flood each have a thread and a runtime
    // of their own, so that neither waits for the other's tasks here.
    let (idle_done, idle_done_rx) = tokio::sync::oneshot::channel();
    let (flood_ready, flood_ready_rx) = tokio::sync::oneshot::channel::<()>();
    let legitimate = {
        let (server, l, requests, warmup) = (server.clone(), a.legitimate.clone(), a.requests, a.warmup);
        std::thread::spawn(move || -> anyhow::Result<(Timings, Timings)> {
            current_thread()?.block_on(async move {
                let reader = l.reader();
                let mut client = Client::new(None, server.addr);
                reader.timed_gets(&mut client, &server, warmup).await;
                let idle = reader.timed_gets(&mut client, &server, requests).await;
                let _ = idle_done.send(());
                flood_ready_rx.await.context("the flood never started")?;
                let flooded = reader.timed_gets(&mut client, &server, requests).await;
                Ok((idle, flooded))
            })
        })
    };
    idle_done_rx.await.context("the idle GETs did not finish")?;
    let stop = Arc::new(Stop::Flag(AtomicBool::new(false)));
    let tally = Arc::new(Tally::default());
    let flood = {
        let (server, stop, tally) = (server.clone(), Arc::clone(&stop), Arc::clone(&tally));
        let (bucket, key_chars) = (a.legitimate.bucket.clone(), a.flood_key_chars);
        let (source, connections) = (a.flood_source, a.flood_connections);
        std::thread::spawn(move || -> anyhow::Result<f64> {
            current_thread()?.block_on(async move {
                let started = Instant::now();
                let make = {
                    let server = server.clone();
                    move |_: u64, rng: &mut Rng| server.get(&format!("/{bucket}/{}", rng.alnum(key_chars)))
                };
                traffic::run_requests(&server, Some(source), connections, &stop, make, &tally).await;
                Ok(started.elapsed().as_secs_f64())
            })
        })
    };
    tokio::time::sleep(Duration::from_millis(a.flood_ramp_ms)).await;
    let _ = flood_ready.send(());
    let joined = tokio::task::spawn_blocking(move || legitimate.join()).await?;
    let (idle, flooded) = joined.map_err(|_| anyhow::anyhow!("the legitimate client panicked"))??;
    if let Stop::Flag(flag) = &*stop {
        flag.store(true, Ordering::Relaxed);
    }
    let flood_seconds = tokio::task::spawn_blocking(move || flood.join())
        .await?
        .map_err(|_| anyhow::anyhow!("the flood panicked"))??;
    let flood_requests = tally.requests.load(Ordering::Relaxed);
    let p50 = |t: &Timings| t.percentile_ms(0.5);
    Ok(json!({
        "requests_each": a.requests, "warmup": a.warmup,
        "idle": idle.json(), "during_flood": flooded.json(),
        "p50_ratio_flood_to_idle": match (p50(&idle), p50(&flooded)) {
            (Some(i), Some(f)) if i > 0.0 => Some(round(f / i, 2)),
            _ => None,
        },
        "flood": {
            "connections": a.flood_connections, "source": a.flood_source, "key_chars": a.flood_key_chars,
            "requests": flood_requests, "seconds": round(flood_seconds, 2),
            "req_per_s": round(ratio_f(flood_requests, flood_seconds), 0),
            "answers": tally.outcomes(), "answer_bytes_mean": tally.answer_bytes_mean(),
        "connects": tally.connects.load(Ordering::Relaxed),
        },
        "proxy_alive": proxy.map(Proxy::alive),
    }))
}

/// What became of one silent connection.
enum Watched {
    ConnectFailed(String),
    /// Closed by the proxy this long after the connect, having sent `received` bytes.
    Closed {
        after: Duration,
        received: usize,
    },
    /// Still open when the watch ended (then closed by us).
    Open {
        received: usize,
    },
}

async fn silent(server: &Server, proxy: Proxy, a: Silent) -> anyhow::Result<Value> {
    let fds_before = proxy.fds();
    let sampler = FdSampler::start(proxy);
    let deadline = Duration::from_secs(a.timeout_secs + a.slack_secs);
    let watch_for = deadline + Duration::from_secs(a.watch_extra_secs);
    let connect_timeout = Duration::from_millis(a.connect_timeout_ms);
    let permits = Arc::new(tokio::sync::Semaphore::new(a.connect_concurrency.max(1)));
    let clock = Instant::now();
    let watchers: Vec<_> = (0..a.connections)
        .map(|_| {
            let (permits, addr, source) = (Arc::clone(&permits), server.addr, a.source);
            tokio::spawn(async move {
                let permit = permits.acquire_owned().await;
                let connected = traffic::connect_within(Some(source), addr, connect_timeout).await;
                drop(permit);
                let mut stream = match connected {
                    Ok(stream) => stream,
                    Err(kind) => return Watched::ConnectFailed(kind),
                };
                // From the connect as the client saw it: a connection that
                // waited in the listen backlog waited on the proxy's account.
                let connected_at = tokio::time::Instant::now();
                let mut received = 0;
                let mut buf = [0_u8; 1024];
                loop {
                    match tokio::time::timeout_at(connected_at + watch_for, stream.read(&mut buf)).await {
                        Err(_) => {
                            traffic::close_at_once(&stream);
                            return Watched::Open { received };
                        }
                        Ok(Ok(0) | Err(_)) => return Watched::Closed { after: connected_at.elapsed(), received },
                        Ok(Ok(n)) => received += n,
                    }
                }
            })
        })
        .collect();
    let mut failures = BTreeMap::<String, u64>::new();
    let (mut closes, mut open, mut received) = (Vec::new(), 0, 0);
    for watcher in watchers {
        match watcher.await? {
            Watched::ConnectFailed(kind) => *failures.entry(kind).or_default() += 1,
            Watched::Closed { after, received: r } => {
                closes.push(after);
                received += r;
            }
            Watched::Open { received: r } => {
                open += 1;
                received += r;
            }
        }
    }
    let seconds = clock.elapsed().as_secs_f64();
    let peak = sampler.stop().await;
    let fds_after = settle_fds(proxy, fds_before, Duration::from_secs(10)).await;
    closes.sort_unstable();
    let opened = closes.len() + open;
    let within = closes.iter().filter(|d| **d <= deadline).count();
    let at = |p: f64| Timings(closes.clone()).percentile_ms(p).map(|ms| round(ms / 1000.0, 2));
    Ok(json!({
        "connections": a.connections, "source": a.source, "opened": opened,
        "connect_failures": failures, "header_read_timeout_secs": a.timeout_secs,
        "deadline_secs": deadline.as_secs(), "watched_secs": watch_for.as_secs(),
        "closed_by_proxy_within_deadline": within,
        "closed_by_proxy_late": closes.len() - within,
        "closed_by_proxy_within_1s": closes.iter().filter(|d| **d <= Duration::from_secs(1)).count(),
        "still_open_when_watch_ended": open,
        "close_after_secs": {"min": at(0.0), "p50": at(0.5), "max": at(1.0)},
        "bytes_received_from_proxy": received,
        "proxy_fds": {"before": fds_before, "peak": peak, "after": fds_after},
        "seconds": round(seconds, 1),
        "proxy_alive": proxy.alive(),
    }))
}

async fn silent_waves(server: &Server, endpoint: &str, proxy: Proxy, a: SilentWaves) -> anyhow::Result<Value> {
    anyhow::ensure!(a.wave > 0 && a.per_holder > 0, "--wave and --per-holder must be at least 1");
    let fds_before = proxy.fds();
    let holders = a.total.div_ceil(a.per_holder).max(1);
    let helper = Hold {
        source: a.source,
        capacity: a.per_holder,
        connect_concurrency: a.connect_concurrency,
        connect_timeout_ms: a.connect_timeout_ms,
    };
    let mut held: Vec<Holder> =
        (0..holders).map(|_| Holder::spawn(endpoint, &helper)).collect::<anyhow::Result<_>>()?;
    let sampler = FdSampler::start(proxy);
    let reader = a.legitimate.reader();
    let clock = Instant::now();
    let mut waves = Vec::new();
    let mut failures = BTreeMap::<String, u64>::new();
    let mut opened = 0;
    for (index, start) in (0..a.total).step_by(a.wave).enumerate() {
        let at = clock + Duration::from_millis(a.interval_ms * index as u64);
        tokio::time::sleep_until(at.into()).await;
        let count = a.wave.min(a.total - start);
        // The holder with the most room takes the wave.
        let (which, holder) =
            held.iter_mut().enumerate().min_by_key(|(_, h)| h.assigned).context("no holder process")?;
        holder.assigned += count;
        let reply = tokio::task::block_in_place(|| holder.ask(&format!("open {count}")))?;
        opened += reply["opened"].as_u64().unwrap_or(0);
        if let Some(kinds) = reply["failures"].as_object() {
            for (kind, n) in kinds {
                *failures.entry(kind.clone()).or_default() += n.as_u64().unwrap_or(0);
            }
        }
        waves.push(json!({
            "wave": index, "holder": which, "t_s": round(clock.elapsed().as_secs_f64(), 2),
            "asked": count, "opened": reply["opened"], "failed": reply["failed"], "seconds": reply["seconds"],
            "held_by_holder": reply["held"], "proxy_fds_after": proxy.fds(),
        }));
    }
    let waves_seconds = clock.elapsed().as_secs_f64();
    // The moment that matters: every wave sent, nothing released by us.
    let fds_at_get = proxy.fds();
    let get_timeout = Duration::from_millis(a.get_timeout_ms);
    let during = reader.get_within(server, get_timeout).await;
    let mut held_at_get = 0;
    let mut closed_by_proxy = 0;
    let mut closed_by_us = 0;
    for holder in &mut held {
        let reply = tokio::task::block_in_place(|| holder.ask("reap"))?;
        held_at_get += reply["held"].as_u64().unwrap_or(0);
        closed_by_proxy += reply["closed_by_peer"].as_u64().unwrap_or(0);
        closed_by_us += reply["closed_by_us"].as_u64().unwrap_or(0);
    }
    let peak = sampler.stop().await;
    for holder in held {
        tokio::task::block_in_place(|| holder.finish())?;
    }
    let released = Instant::now();
    let fds_after = settle_fds(proxy, fds_before, Duration::from_secs(15)).await;
    let drain_seconds = released.elapsed().as_secs_f64();
    let after = reader.get_within(server, get_timeout).await;
    Ok(json!({
        "total": a.total, "wave": a.wave, "interval_ms": a.interval_ms, "source": a.source,
        "holder_processes": holders, "opened": opened, "connect_failures": failures,
        "waves_seconds": round(waves_seconds, 1), "waves": waves,
        "proxy_fd_limit": proxy.fd_limit(),
        // How close the proxy came to refusing every connection (EMFILE).
        "proxy_fd_headroom_at_peak": proxy.fd_limit().map(|limit| limit.cast_signed() - (peak as u64).cast_signed()),
        "proxy_fds": {
            "before": fds_before, "peak": peak, "at_get": fds_at_get,
            "after_release": fds_after, "release_drain_seconds": round(drain_seconds, 1),
        },
        "held_by_us_at_get": held_at_get, "closed_by_proxy_by_then": closed_by_proxy,
        "closed_by_us_for_room": closed_by_us,
        "get_during_hold": during, "get_after_release": after,
        "proxy_alive": proxy.alive(),
    }))
}

fn current_thread() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()
}

fn minute(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 60)
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn ratio(n: u64, d: u64) -> f64 {
    if d == 0 { 0.0 } else { n as f64 / d as f64 }
}

#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn ratio_f(n: u64, d: f64) -> f64 {
    if d > 0.0 { n as f64 / d } else { 0.0 }
}

fn round(v: f64, places: i32) -> f64 {
    let scale = 10_f64.powi(places);
    (v * scale).round() / scale
}
