//! `ab`: two egress-proxy binaries (or one binary with two settings) and
//! going direct, in one run with the rounds alternating direct, A, B, so
//! that a change smaller than the noise between two runs still shows. The
//! proxies' CPU per unit of work (process accounting) is steadier than
//! their rates on a shared machine.
//!
//! `--args-b` gives B more `serve` arguments, e.g. the archive:
//! `--args-b "--archive s3://archive/bench --aws-endpoint {seaweed}
//! --archive-retention-days 0 --archive-interval 1s"`, where `{seaweed}`
//! is SeaweedFS's plain S3 endpoint (`{seaweed_https}` its HTTPS one); the
//! bucket an `--archive` names is created first. After the rounds, each
//! proxy's CPU over the whole benchmark per request it served (what
//! background work such as shipping costs, wherever it fell), and an
//! archiving proxy's `GET /v1/archive`.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::compare::{self, BUCKET, Setup, WorkloadOptions, describe_binary};
use crate::procfs;
use crate::report::Ratio;
use crate::rounds::{self, Plan, Shape, Workload};
use crate::stack::{Policies, ProxyProcess};

/// `ab`'s flags.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// Binary A (a copy: cargo replaces its own while you measure).
    #[arg(long)]
    pub bin_a: PathBuf,
    /// Binary B (may be A's, with other settings below).
    #[arg(long)]
    pub bin_b: PathBuf,
    /// Notes on the binaries for the report, e.g. their commits.
    #[arg(long)]
    pub label_a: Option<String>,
    #[arg(long)]
    pub label_b: Option<String>,
    /// `--worker-threads` for A.
    #[arg(long)]
    pub workers_a: Option<usize>,
    /// `--worker-threads` for B.
    #[arg(long)]
    pub workers_b: Option<usize>,
    /// A's principal's policies: `10x20` (ten policies of 20 statements,
    /// scripts/policies-10x20.py, the GET allowed by the last) or a
    /// directory of *.json; default the built-in `full`.
    #[arg(long)]
    pub policies_a: Option<String>,
    /// B's principal's policies, as `--policies-a`.
    #[arg(long)]
    pub policies_b: Option<String>,
    /// Where the proxies sit.
    #[arg(long, value_enum, default_value = "plain", overrides_with = "shape")]
    pub shape: Shape,
    /// An argument for both proxies' `serve` (repeat for several).
    #[arg(long = "proxy-arg", allow_hyphen_values = true)]
    pub proxy_args: Vec<String>,
    /// More `serve` arguments for A only, in one string split at
    /// whitespace; `{seaweed}` stands for SeaweedFS's plain S3 endpoint
    /// (`http://127.0.0.1:PORT`), `{seaweed_https}` for its HTTPS one. The
    /// bucket of an `--archive s3://BUCKET/...` among them is created.
    #[arg(long, allow_hyphen_values = true)]
    pub args_a: Option<String>,
    /// More `serve` arguments for B only, as `--args-a`.
    #[arg(long, allow_hyphen_values = true)]
    pub args_b: Option<String>,
    #[command(flatten)]
    pub load: WorkloadOptions,
}

fn policies(given: Option<&str>, dir: &std::path::Path) -> anyhow::Result<Policies> {
    match given {
        None => Ok(Policies::Full),
        Some("10x20") => {
            let script = egress_e2e::repo_root().join("scripts/policies-10x20.py");
            let status = std::process::Command::new("python3")
                .arg(&script)
                .arg(dir)
                .arg(BUCKET)
                .status()
                .with_context(|| format!("running {}", script.display()))?;
            anyhow::ensure!(status.success(), "{} failed ({status})", script.display());
            Ok(Policies::Dir(dir.to_owned()))
        }
        Some(path) => Ok(Policies::Dir(PathBuf::from(path))),
    }
}

/// `--args-a/-b`: split at whitespace, the placeholders replaced.
fn extra_args(given: Option<&str>, setup: &Setup) -> Vec<String> {
    let https = setup.upstream.https.url.as_str();
    given
        .unwrap_or_default()
        .split_whitespace()
        .map(|arg| arg.replace("{seaweed_https}", https).replace("{seaweed}", &setup.upstream.http.url))
        .collect()
}

/// The bucket of `--archive s3://BUCKET/PREFIX` (or `--archive=...`) among `args`.
fn archive_bucket(args: &[String]) -> Option<String> {
    let url = args.iter().enumerate().find_map(|(i, arg)| match arg.strip_prefix("--archive") {
        Some("") => args.get(i + 1).map(String::as_str),
        Some(rest) => rest.strip_prefix('='),
        None => None,
    })?;
    let rest = url.strip_prefix("s3://")?;
    Some(rest.split('/').next().unwrap_or(rest).to_owned()).filter(|b| !b.is_empty())
}

/// A proxy's CPU over the whole benchmark (warm-up, rounds, the pauses
/// between runs) per request it served, and its archive's status.
#[allow(clippy::cast_precision_loss)] // clock ticks and request counts far below 2^52
async fn whole_run(
    plan: &Plan,
    proxies: &[(&str, ProxyProcess, bool)],
    before: &[u64],
    started: std::time::Instant,
    outcome: &rounds::Outcome,
) -> anyhow::Result<(Value, String)> {
    let mut json = serde_json::Map::new();
    let mut table = String::new();
    let seconds = started.elapsed().as_secs_f64();
    let _ = writeln!(table, "\nwhole run ({seconds:.0} s: warm-up, rounds and the pauses between runs):");
    for ((role, proxy, archives), &from) in proxies.iter().zip(before) {
        let cpu_s = procfs::cpu_ticks(proxy.pid)?.saturating_sub(from) as f64 / plan.clock_ticks as f64;
        let index = plan.targets.iter().position(|t| t.role == *role).context("a proxy without its target")?;
        let requests = outcome.requests_by_target[index];
        let per_request = cpu_s / requests.max(1) as f64 * 1e6;
        // The peak over its life: a sealed segment is compressed (and
        // shipped) in memory.
        let hwm = rounds::kib_to_mib(procfs::status_kib(proxy.pid, "VmHWM")?);
        let rss = rounds::kib_to_mib(procfs::status_kib(proxy.pid, "VmRSS")?);
        let _ = write!(
            table,
            "  {role}: {cpu_s:.2} CPU-s for {requests} requests, {per_request:.1} CPU-µs/req; RSS {rss:.0} MiB, peak {hwm:.0} MiB"
        );
        let mut entry = json!({"cpu_s": cpu_s, "requests": requests, "cpu_us_per_request": per_request,
            "vm_rss_mib": rss, "vm_hwm_mib": hwm});
        if *archives {
            let status = proxy.admin_get("/v1/archive").await.context("GET /v1/archive")?;
            let _ = write!(
                table,
                "; archive: {} segments, {} parts, {} checkpoints, {} events files, {:.1} MiB shipped, shipped_seq {}, lag {} records, last_error {}",
                status["segments_shipped"],
                status["parts_shipped"],
                status["checkpoints_shipped"],
                status["events_files_shipped"],
                status["bytes_shipped"].as_f64().unwrap_or(0.0) / 1_048_576.0,
                status["shipped_seq"],
                status["lag_records"],
                status["last_error"],
            );
            entry["archive"] = status;
        }
        table.push('\n');
        json.insert((*role).to_owned(), entry);
    }
    Ok((json!({"seconds": seconds, "proxies": json}), table))
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let Options {
        bin_a,
        bin_b,
        label_a,
        label_b,
        workers_a,
        workers_b,
        policies_a,
        policies_b,
        shape,
        proxy_args,
        args_a,
        args_b,
        load,
    } = options;
    let workloads = load.workloads.clone().unwrap_or_else(|| vec![Workload::Small]);
    let setup = Setup::start(&bin_a, &load, &workloads).await?;
    let mut targets = setup.direct_targets(&[shape]);
    let mut proxies = Vec::new();
    let (extra_a, extra_b) = (extra_args(args_a.as_deref(), &setup), extra_args(args_b.as_deref(), &setup));
    for (role, bin, workers, policy, extra) in [
        ("A", &bin_a, workers_a, policies_a.as_deref(), &extra_a),
        ("B", &bin_b, workers_b, policies_b.as_deref(), &extra_b),
    ] {
        let dir = setup.work.path().join(format!("proxy-{role}"));
        let args: Vec<String> = proxy_args.iter().chain(extra).cloned().collect();
        let archive = archive_bucket(&args);
        if let Some(bucket) = &archive {
            setup.upstream.create_bucket(bucket).await.with_context(|| format!("creating the bucket {bucket}"))?;
        }
        let mut spec = setup.proxy_spec(bin, shape, &args);
        spec.worker_threads = workers;
        spec.policies = policies(policy, &dir.join("policies"))?;
        let proxy = ProxyProcess::start(&spec, &dir)?;
        targets.push(setup.proxy_target(role, shape, &proxy)?);
        proxies.push((role, proxy, archive.is_some()));
    }
    let plan = setup.plan(targets, workloads, &load)?;
    let mut header = compare::header("egress-bench ab", &plan, &load);
    header["bin_a"] = describe_binary(&bin_a, label_a.as_deref());
    header["bin_b"] = describe_binary(&bin_b, label_b.as_deref());
    header["a"] =
        json!({"worker_threads": workers_a, "policies": policies_a.as_deref().unwrap_or("full"), "args": extra_a});
    header["b"] =
        json!({"worker_threads": workers_b, "policies": policies_b.as_deref().unwrap_or("full"), "args": extra_b});
    let ratios: &[Ratio] = &[("A", "direct"), ("B", "direct"), ("B", "A")];
    let before = proxies.iter().map(|(_, p, _)| procfs::cpu_ticks(p.pid)).collect::<anyhow::Result<Vec<u64>>>()?;
    let started = std::time::Instant::now();
    let (mut json, mut table, outcome) = compare::measure(&plan, ratios, header).await?;
    let (whole, lines) = whole_run(&plan, &proxies, &before, started, &outcome).await?;
    json["whole_run"] = whole;
    table.push_str(&lines);
    compare::print_report(&json, &table)
}
