//! The measurement: every target through every workload, in rounds that
//! alternate the targets (and rotate which goes first), so that drift on a
//! shared machine hits all of them alike. Around each run it reads the CPU
//! time of the target's processes, of the upstream, of this client and of
//! the whole machine; while streaming the huge object it samples the
//! proxy's RSS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use egress_e2e::sigv4::Signer;

use crate::client::{self, Endpoint, GetStats, Load};
use crate::procfs::{self, Accounted};

/// Where the proxy (or nginx) sits, and what is TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Shape {
    /// client →HTTP→ X →HTTP→ SeaweedFS
    Plain,
    /// client →HTTP→ X →HTTPS→ SeaweedFS (a private CA)
    TlsUpstream,
    /// client →HTTPS→ X →HTTPS→ SeaweedFS, as deployed
    Deployed,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Plain => "plain",
            Shape::TlsUpstream => "tls-upstream",
            Shape::Deployed => "deployed",
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Shape::Plain => "client -HTTP-> X -HTTP-> SeaweedFS (direct: HTTP)",
            Shape::TlsUpstream => "client -HTTP-> X -HTTPS-> SeaweedFS (direct: HTTPS)",
            Shape::Deployed => "client -HTTPS-> X -HTTPS-> SeaweedFS (direct: HTTPS)",
        }
    }

    pub fn upstream_tls(self) -> bool {
        self != Shape::Plain
    }

    pub fn client_tls(self) -> bool {
        self == Shape::Deployed
    }
}

/// What is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Workload {
    /// One GET of the large object per run: MB/s, CPU-s per GiB.
    Large,
    /// Small GETs on many keep-alive connections: req/s, CPU-µs per request.
    Small,
    /// Once per proxy, after the rounds: its RSS while streaming the huge object.
    Rss,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Large => "large_get",
            Workload::Small => "small_get",
            Workload::Rss => "rss",
        }
    }

    /// The object it GETs.
    pub fn key(self) -> &'static str {
        match self {
            Workload::Large => "large",
            Workload::Small => "small",
            Workload::Rss => "huge",
        }
    }
}

/// One way to reach the objects.
#[derive(Debug)]
pub struct Target {
    /// Its column in the tables: `direct`, `nginx`, `proxy`, `relay`, `A`, `B`.
    pub role: String,
    /// Unique among the targets: `proxy/plain`, `direct/https`.
    pub id: String,
    /// The shapes whose tables it is in (direct over HTTPS serves two).
    pub shapes: Vec<Shape>,
    pub endpoint: Endpoint,
    pub signer: Arc<Signer>,
    /// Whose CPU time is its cost; none for going direct.
    pub accounted: Option<Accounted>,
    /// Whose RSS to watch while it streams the huge object (a proxy's).
    pub rss_pid: Option<u32>,
}

/// What to measure, and how much.
#[derive(Debug)]
pub struct Plan {
    pub targets: Vec<Target>,
    pub workloads: Vec<Workload>,
    pub rounds: usize,
    pub bucket: String,
    /// The small GETs' load (connections, count or duration).
    pub small: Load,
    pub warmup: bool,
    /// How long after a run's last response the target's CPU still counts.
    pub settle: Duration,
    pub upstream: Accounted,
    pub clock_ticks: u64,
    pub cpus: usize,
}

/// One run of one workload against one target.
#[derive(Debug)]
pub struct Run {
    /// 1-based; warm-up runs are not kept.
    pub round: usize,
    pub workload: Workload,
    /// Index into [`Plan::targets`].
    pub target: usize,
    pub stats: GetStats,
    /// CPU seconds of the target's processes (none for direct).
    pub cpu_s: Option<f64>,
    pub upstream_cpu_s: f64,
    pub client_cpu_s: f64,
    /// CPU seconds the machine was busy beyond the target, the upstream and
    /// this client: other processes (colleagues compiling) and the idle
    /// other targets.
    pub others_cpu_s: f64,
    /// Wall time between the two readings of the clocks (the run and the
    /// settling after it).
    pub window_s: f64,
}

impl Run {
    /// The share of the machine (all its CPUs over the window) that others took.
    #[allow(clippy::cast_precision_loss)] // a CPU count
    pub fn others_share(&self, cpus: usize) -> f64 {
        self.others_cpu_s / (self.window_s * cpus as f64)
    }
}

/// The proxy's memory while one GET streams the huge object through it.
#[derive(Debug)]
pub struct Rss {
    pub target: usize,
    pub idle_kib: u64,
    /// The highest `VmRSS` of samples every 20 ms.
    pub sampled_peak_kib: u64,
    /// `VmHWM` after the GET.
    pub hwm_kib: u64,
    /// Whether `VmHWM` was reset before the GET (else it is the process's
    /// lifetime peak and only the samples speak for the GET).
    pub hwm_reset: bool,
    pub stats: GetStats,
}

impl Rss {
    /// The peak while streaming: `VmHWM` if it was reset, else the samples'.
    pub fn peak_kib(&self) -> u64 {
        if self.hwm_reset { self.hwm_kib.max(self.sampled_peak_kib) } else { self.sampled_peak_kib }
    }
}

#[derive(Debug)]
pub struct Outcome {
    pub runs: Vec<Run>,
    pub rss: Vec<Rss>,
    /// Every run, the warm-up's and the probe's too, by target: for a
    /// target's CPU over the whole benchmark.
    pub requests_by_target: Vec<u64>,
}

/// CPU clocks read around a run.
struct Clocks {
    target: Option<u64>,
    upstream: u64,
    client: u64,
    machine: u64,
}

impl Clocks {
    fn read(plan: &Plan, target: &Target) -> anyhow::Result<Clocks> {
        Ok(Clocks {
            target: target.accounted.as_ref().map(Accounted::cpu_ticks).transpose()?,
            upstream: plan.upstream.cpu_ticks()?,
            client: procfs::cpu_ticks(std::process::id())?,
            machine: procfs::machine_busy_ticks()?,
        })
    }
}

/// Checks that every target answers a GET of the small object (the proxies
/// take a moment to be ready, and a wrong key or CA fails here, not in the
/// rounds).
pub async fn probe(plan: &Plan) -> anyhow::Result<()> {
    let once = Load { concurrency: 1, requests: 1, duration_secs: None, keys: None, progress_secs: 0 };
    for target in &plan.targets {
        let url = target.endpoint.object_url(&plan.bucket, Workload::Small.key());
        let mut last = None;
        for _ in 0..150 {
            match client::run_gets(&once, &target.endpoint, std::slice::from_ref(&url), &target.signer).await {
                Ok(stats) if stats.errors == 0 => {
                    last = None;
                    break;
                }
                Ok(stats) => last = Some(stats.json["errors_by_kind"].to_string()),
                Err(error) => last = Some(format!("{error:#}")),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if let Some(why) = last {
            anyhow::bail!("{} ({}) does not answer a GET of {url}: {why}", target.id, target.endpoint.url);
        }
    }
    Ok(())
}

/// Warm-up, the rounds, then the RSS runs.
pub async fn run(plan: &Plan) -> anyhow::Result<Outcome> {
    let measured: Vec<Workload> =
        plan.workloads.iter().copied().filter(|w| matches!(w, Workload::Large | Workload::Small)).collect();
    // The probe's one GET each.
    let mut requests_by_target = vec![1; plan.targets.len()];
    if plan.warmup {
        // The first read of a large object after its upload is slow whichever
        // way it goes; the proxies' pools and allocators fill.
        eprintln!("# warm-up: each target once per workload");
        let mut warm = plan.small.clone();
        if warm.duration_secs.is_none() {
            warm.requests = warm.requests.min(5000);
        }
        for &workload in &measured {
            for (index, requests) in requests_by_target.iter_mut().enumerate() {
                *requests += measure(plan, index, workload, 0, &warm).await?.stats.requests;
            }
        }
    }
    let mut runs = Vec::new();
    for round in 1..=plan.rounds {
        eprintln!("# round {round} of {}", plan.rounds);
        for &workload in &measured {
            // Rotated each round so that no target always runs first or last.
            let count = plan.targets.len();
            for step in 0..count {
                let index = (step + round - 1) % count;
                let run = measure(plan, index, workload, round, &plan.small).await?;
                requests_by_target[index] += run.stats.requests;
                runs.push(run);
            }
        }
    }
    let mut rss = Vec::new();
    if plan.workloads.contains(&Workload::Rss) {
        for (index, target) in plan.targets.iter().enumerate() {
            if let Some(pid) = target.rss_pid {
                let streamed = stream_huge(plan, index, pid).await?;
                requests_by_target[index] += streamed.stats.requests;
                rss.push(streamed);
            }
        }
    }
    Ok(Outcome { runs, rss, requests_by_target })
}

#[allow(clippy::cast_precision_loss)] // clock ticks far below 2^52
async fn measure(plan: &Plan, index: usize, workload: Workload, round: usize, small: &Load) -> anyhow::Result<Run> {
    let target = &plan.targets[index];
    let load = match workload {
        Workload::Small => small.clone(),
        _ => Load { concurrency: 1, requests: 1, duration_secs: None, keys: None, progress_secs: 0 },
    };
    let url = target.endpoint.object_url(&plan.bucket, workload.key());
    let window = Instant::now();
    let before = Clocks::read(plan, target)?;
    let stats = client::run_gets(&load, &target.endpoint, &[url], &target.signer).await?;
    // The last response's tail (the ledger's end record, nginx's access log
    // line) is written just after the client has the last byte.
    tokio::time::sleep(plan.settle).await;
    let after = Clocks::read(plan, target)?;
    let window_s = window.elapsed().as_secs_f64();
    let tick = plan.clock_ticks as f64;
    let seconds = |from: u64, to: u64| to.saturating_sub(from) as f64 / tick;
    let cpu_s = before.target.zip(after.target).map(|(from, to)| seconds(from, to));
    let upstream_cpu_s = seconds(before.upstream, after.upstream);
    let client_cpu_s = seconds(before.client, after.client);
    let ours = cpu_s.unwrap_or(0.0) + upstream_cpu_s + client_cpu_s;
    let others_cpu_s = (seconds(before.machine, after.machine) - ours).max(0.0);
    let run =
        Run { round, workload, target: index, stats, cpu_s, upstream_cpu_s, client_cpu_s, others_cpu_s, window_s };
    eprintln!("{}", progress_line(plan, &run));
    Ok(run)
}

#[allow(clippy::cast_precision_loss)] // byte and request counts far below 2^52
fn progress_line(plan: &Plan, run: &Run) -> String {
    let target = &plan.targets[run.target];
    let round = if run.round == 0 { "warm-up".to_owned() } else { format!("round {}", run.round) };
    let (rate, cost) = match run.workload {
        Workload::Small => (
            format!("{:>9.0} req/s  p99 {:>6.2} ms", run.stats.req_per_s(), run.stats.p99_ms.unwrap_or(f64::NAN)),
            run.cpu_s.map(|cpu| format!("{:>7.1} CPU-µs/req", cpu / run.stats.requests.max(1) as f64 * 1e6)),
        ),
        _ => (
            format!("{:>9.1} MB/s", run.stats.mb_per_s()),
            run.cpu_s
                .map(|cpu| format!("{:>7.3} CPU-s/GiB", cpu / (run.stats.bytes.max(1) as f64 / f64::from(1 << 30)))),
        ),
    };
    let errors = if run.stats.errors > 0 { format!("  {} ERRORS", run.stats.errors) } else { String::new() };
    format!(
        "{round:<8} {:<10} {:<18} {rate}  {:>18}  others {:>3.0}%{errors}",
        run.workload.name(),
        target.id,
        cost.unwrap_or_default(),
        run.others_share(plan.cpus) * 100.0
    )
}

/// One GET of the huge object through the target, sampling `pid`'s RSS.
async fn stream_huge(plan: &Plan, index: usize, pid: u32) -> anyhow::Result<Rss> {
    let target = &plan.targets[index];
    let idle_kib = procfs::status_kib(pid, "VmRSS")?;
    let hwm_reset = procfs::reset_peak_rss(pid);
    let (endpoint, signer) = (target.endpoint.clone(), Arc::clone(&target.signer));
    let url = target.endpoint.object_url(&plan.bucket, Workload::Rss.key());
    let get = tokio::spawn(async move {
        let once = Load { concurrency: 1, requests: 1, duration_secs: None, keys: None, progress_secs: 0 };
        client::run_gets(&once, &endpoint, &[url], &signer).await
    });
    let mut sampled_peak_kib = idle_kib;
    while !get.is_finished() {
        sampled_peak_kib = sampled_peak_kib.max(procfs::status_kib(pid, "VmRSS")?);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = get.await??;
    let hwm_kib = procfs::status_kib(pid, "VmHWM")?;
    let rss = Rss { target: index, idle_kib, sampled_peak_kib, hwm_kib, hwm_reset, stats };
    eprintln!(
        "rss      {:<18} {:>9.1} MB/s  idle {:.1} MiB, peak {:.1} MiB{}",
        target.id,
        rss.stats.mb_per_s(),
        kib_to_mib(rss.idle_kib),
        kib_to_mib(rss.peak_kib()),
        if rss.stats.errors > 0 { "  ERRORS" } else { "" }
    );
    Ok(rss)
}

#[allow(clippy::cast_precision_loss)] // KiB of a process
pub fn kib_to_mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
