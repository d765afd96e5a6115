//! Holding silent connections in helper processes: the open-file limit
//! is per process, so `silent-waves` spreads its connections over
//! `hold` children, each answering commands on stdin with a JSON line.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead as _, Read as _, Write as _};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::probe::Proxy;
use crate::round;
use crate::traffic::{Server, close_at_once, connect_within};

/// How a `hold` process opens its connections, and how many it may keep.
#[derive(clap::Args)]
pub struct Hold {
    #[arg(long)]
    pub source: IpAddr,
    #[arg(long)]
    pub capacity: usize,
    #[arg(long)]
    pub connect_concurrency: usize,
    #[arg(long)]
    pub connect_timeout_ms: u64,
}

/// The `hold` helper: answers each `open N` (after dropping connections the
/// proxy closed) and `reap` with a JSON line; at `exit` or the end of stdin,
/// resets every connection it holds and says how many.
pub async fn hold(server: &Server, a: Hold) -> anyhow::Result<()> {
    // Its own open-file limit, read from /proc as the proxy's is.
    let limit = Proxy(std::process::id()).fd_limit().unwrap_or(u64::MAX);
    // Its own descriptors besides: stdio, the runtime's, the connects in flight.
    let room = usize::try_from(limit).unwrap_or(usize::MAX).saturating_sub(64);
    let capacity = a.capacity.min(room);
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut held: VecDeque<std::net::TcpStream> = VecDeque::new();
    let (mut closed_by_peer, mut closed_by_us) = (0_usize, 0_usize);
    let reply = |value: Value| -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{value}")?;
        Ok(out.flush()?)
    };
    while let Some(Ok(line)) = lines.recv().await {
        closed_by_peer += reap(&mut held);
        if line == "reap" {
            reply(json!({"held": held.len(), "closed_by_peer": closed_by_peer, "closed_by_us": closed_by_us}))?;
            continue;
        }
        let Some(count) = line.strip_prefix("open ").and_then(|n| n.parse::<usize>().ok()) else { break };
        // Over capacity, the oldest go first (counted, and reported).
        while held.len() + count > capacity {
            let Some(oldest) = held.pop_front() else { break };
            close_at_once(&oldest);
            closed_by_us += 1;
        }
        let started = Instant::now();
        let timeout = Duration::from_millis(a.connect_timeout_ms);
        let results: Vec<Result<TcpStream, String>> = futures_util::stream::iter(0..count)
            .map(|_| connect_within(Some(a.source), server.addr, timeout))
            .buffer_unordered(a.connect_concurrency.max(1))
            .collect()
            .await;
        let mut failures = BTreeMap::<String, u64>::new();
        let mut opened = 0;
        for result in results {
            match result.and_then(|s| s.into_std().map_err(|e| format!("into_std: {}", e.kind()))) {
                Ok(stream) => {
                    held.push_back(stream);
                    opened += 1;
                }
                Err(kind) => *failures.entry(kind).or_default() += 1,
            }
        }
        reply(json!({
            "opened": opened, "failed": count - opened, "failures": failures, "held": held.len(),
            "closed_by_peer": closed_by_peer, "closed_by_us": closed_by_us,
            "seconds": round(started.elapsed().as_secs_f64(), 2), "capacity": capacity,
        }))?;
    }
    closed_by_peer += reap(&mut held);
    let reset = held.len();
    for stream in held.drain(..) {
        close_at_once(&stream);
    }
    reply(json!({"reset_at_exit": reset, "closed_by_peer": closed_by_peer, "closed_by_us": closed_by_us}))
}

/// Drops the held connections the proxy has closed; returns how many.
fn reap(held: &mut VecDeque<std::net::TcpStream>) -> usize {
    let before = held.len();
    let mut buf = [0_u8; 512];
    held.retain(|stream| match (&*stream).read(&mut buf) {
        Ok(0) => false,
        Ok(_) => true,
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
    });
    before - held.len()
}

/// A `hold` child process.
pub struct Holder {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
    pub assigned: usize,
}

impl Holder {
    pub fn spawn(endpoint: &str, a: &Hold) -> anyhow::Result<Holder> {
        let mut child = std::process::Command::new(std::env::current_exe()?)
            .args(["--endpoint", endpoint, "hold", "--source", &a.source.to_string()])
            .args(["--capacity", &a.capacity.to_string()])
            .args(["--connect-concurrency", &a.connect_concurrency.to_string()])
            .args(["--connect-timeout-ms", &a.connect_timeout_ms.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .context("starting a hold process")?;
        let stdin = child.stdin.take().context("hold process stdin")?;
        let stdout = std::io::BufReader::new(child.stdout.take().context("hold process stdout")?);
        Ok(Holder { child, stdin, stdout, assigned: 0 })
    }

    pub fn ask(&mut self, command: &str) -> anyhow::Result<Value> {
        writeln!(self.stdin, "{command}")?;
        self.stdin.flush()?;
        self.answer()
    }

    fn answer(&mut self) -> anyhow::Result<Value> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        anyhow::ensure!(!line.is_empty(), "a hold process ended without answering");
        Ok(serde_json::from_str(&line)?)
    }

    /// Lets it reset its connections and waits for it to end.
    pub fn finish(mut self) -> anyhow::Result<Value> {
        writeln!(self.stdin, "exit")?;
        self.stdin.flush()?;
        let last = self.answer();
        self.child.wait()?;
        last
    }
}
