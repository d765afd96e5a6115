//! `compare`: the proxy against nginx and against going direct, in each
//! shape of deployment (issue 16). Starts SeaweedFS (plain and HTTPS), per
//! shape one proxy and one nginx configured alike, uploads the objects, and
//! runs the rounds. Also what `ab` shares with it: the workload flags, the
//! setup of the upstream, the report's header.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use serde_json::{Value, json};

use crate::client::{Endpoint, Load};
use crate::procfs;
use crate::report::{self, Ratio};
use crate::rounds::{self, Plan, Shape, Target, Workload};
use crate::stack::{self, Nginx, NginxSpec, NginxUpstream, Policies, ProxyProcess, ProxySpec, Relay, Upstream};

pub const BUCKET: &str = "bench";

/// What to measure, shared by `compare` and `ab`. A flag given twice takes
/// its last value, so that the scripts' defaults yield to their arguments.
#[derive(clap::Args, Debug)]
pub struct WorkloadOptions {
    /// What to measure, comma-separated: `large` (one GET of the large
    /// object per run), `small` (small GETs on many connections), `rss`
    /// (each proxy's RSS while one GET streams the huge object, once, after
    /// the rounds). Default: all three for `compare`, `small` for `ab`.
    #[arg(long, value_delimiter = ',', overrides_with = "workloads")]
    pub workloads: Option<Vec<Workload>>,
    /// Rounds; each runs every target once per workload, the targets in an
    /// order rotated from round to round.
    #[arg(long, default_value_t = 3, overrides_with = "rounds")]
    pub rounds: usize,
    /// Size of the large object, in MiB.
    #[arg(long, default_value_t = 1024, overrides_with = "large_mib")]
    pub large_mib: u64,
    /// Size of the object streamed through each proxy for `rss`, in MiB.
    #[arg(long, default_value_t = 4096, overrides_with = "huge_mib")]
    pub huge_mib: u64,
    /// Size of the small object, in bytes.
    #[arg(long, default_value_t = 4096, overrides_with = "small_bytes")]
    pub small_bytes: u64,
    /// Small GETs per run, shared by the connections.
    #[arg(long, default_value_t = 20_000, overrides_with = "small_requests")]
    pub small_requests: u64,
    /// Run the small GETs for this many seconds instead of counting them.
    #[arg(long, overrides_with = "small_secs")]
    pub small_secs: Option<u64>,
    /// Connections for the small GETs, each a keep-alive connection of its own.
    #[arg(long, default_value_t = 64, overrides_with = "connections")]
    pub connections: usize,
    /// Skip the warm-up (one run per target and workload before the rounds).
    #[arg(long)]
    pub no_warmup: bool,
    /// How long after a run's last response its CPU is still counted, in
    /// ms: what a target does just after (a ledger's end record; with
    /// `--archive-interval 1s`, give 1500 so the shipping of the run's
    /// lines falls inside too).
    #[arg(long, default_value_t = 100, overrides_with = "settle_ms")]
    pub settle_ms: u64,
}

/// `compare`'s flags.
#[derive(clap::Args, Debug)]
pub struct Options {
    /// The egress-proxy binary to measure. Give a copy: cargo replaces its
    /// own while you measure.
    #[arg(long)]
    pub proxy_bin: PathBuf,
    /// A note on that binary for the report, e.g. the commit it was built from.
    #[arg(long)]
    pub proxy_label: Option<String>,
    /// Shapes to measure, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "plain,tls-upstream,deployed")]
    pub shapes: Vec<Shape>,
    /// The nginx to compare with.
    #[arg(long, default_value = "nginx")]
    pub nginx_bin: String,
    /// Leave nginx out (proxy against direct only).
    #[arg(long)]
    pub no_nginx: bool,
    /// nginx's worker processes (default: one per CPU, as nginx's `auto`).
    #[arg(long)]
    pub nginx_workers: Option<usize>,
    /// Also measure egress-relay, threads copying bytes, in the plain shape:
    /// how close to direct any proxy can get here.
    #[arg(long)]
    pub relay: bool,
    /// An argument for the proxy's `serve` (repeat for several).
    #[arg(long = "proxy-arg", allow_hyphen_values = true)]
    pub proxy_args: Vec<String>,
    #[command(flatten)]
    pub load: WorkloadOptions,
}

impl WorkloadOptions {
    pub fn small_load(&self) -> Load {
        Load {
            concurrency: self.connections,
            requests: self.small_requests,
            duration_secs: self.small_secs,
            keys: None,
            progress_secs: 0,
        }
    }

    /// The objects to upload: the small one always (every target is probed
    /// with it), the others when measured.
    fn objects(&self, workloads: &[Workload]) -> Vec<(&'static str, u64)> {
        let mut objects = vec![(Workload::Small.key(), self.small_bytes)];
        if workloads.contains(&Workload::Large) {
            objects.push((Workload::Large.key(), self.large_mib << 20));
        }
        if workloads.contains(&Workload::Rss) {
            objects.push((Workload::Rss.key(), self.huge_mib << 20));
        }
        objects
    }

    fn json(&self, workloads: &[Workload]) -> Value {
        json!({
            "workloads": workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
            "rounds": self.rounds, "warmup": !self.no_warmup,
            "large_bytes": self.large_mib << 20, "huge_bytes": self.huge_mib << 20,
            "small_bytes": self.small_bytes, "small_requests": self.small_secs.is_none().then_some(self.small_requests),
            "small_secs": self.small_secs, "connections": self.connections, "settle_ms": self.settle_ms,
        })
    }
}

/// The bench's temporary directory, the certificates and the upstream with
/// the objects uploaded. Dropped in reverse: the upstream stops before the
/// directory goes.
pub struct Setup {
    pub upstream: Upstream,
    /// `egress-proxy certs`: SeaweedFS's, the proxies' and nginx's.
    pub certs: PathBuf,
    pub work: tempfile::TempDir,
}

impl Setup {
    pub async fn start(certs_from: &Path, load: &WorkloadOptions, workloads: &[Workload]) -> anyhow::Result<Setup> {
        let work =
            tempfile::Builder::new().prefix("egress-bench-").tempdir().context("creating a temporary directory")?;
        eprintln!("# working in {}", work.path().display());
        let certs = stack::make_certs(certs_from, work.path())?;
        let upstream = Upstream::start(certs.clone()).await?;
        upstream.upload(BUCKET, &load.objects(workloads)).await?;
        Ok(Setup { upstream, certs, work })
    }

    pub fn ca(&self) -> PathBuf {
        self.certs.join("ca.pem")
    }

    /// Direct to SeaweedFS: over HTTP for the plain shape, over HTTPS for
    /// the others (one target serving both TLS shapes).
    pub fn direct_targets(&self, shapes: &[Shape]) -> Vec<Target> {
        let mut targets = Vec::new();
        if shapes.contains(&Shape::Plain) {
            targets.push(Target {
                role: "direct".into(),
                id: "direct/http".into(),
                shapes: vec![Shape::Plain],
                endpoint: self.upstream.http.clone(),
                signer: self.upstream.signer.clone(),
                accounted: None,
                rss_pid: None,
            });
        }
        let tls_shapes: Vec<Shape> = shapes.iter().copied().filter(|s| s.upstream_tls()).collect();
        if !tls_shapes.is_empty() {
            targets.push(Target {
                role: "direct".into(),
                id: "direct/https".into(),
                shapes: tls_shapes,
                endpoint: self.upstream.https.clone(),
                signer: self.upstream.signer.clone(),
                accounted: None,
                rss_pid: None,
            });
        }
        targets
    }

    /// How a proxy in `shape` is started (before the caller's own settings).
    pub fn proxy_spec<'a>(&self, bin: &'a Path, shape: Shape, extra_args: &'a [String]) -> ProxySpec<'a> {
        let (upstream, upstream_ca) = if shape.upstream_tls() {
            (self.upstream.https.url.clone(), Some(self.ca()))
        } else {
            (self.upstream.http.url.clone(), None)
        };
        ProxySpec {
            bin,
            upstream,
            upstream_ca,
            tls_certs: shape.client_tls().then(|| self.certs.clone()),
            policies: Policies::Full,
            worker_threads: None,
            extra_args,
        }
    }

    /// The target for a started proxy: its TLS listener in the deployed shape.
    pub fn proxy_target(&self, role: &str, shape: Shape, proxy: &ProxyProcess) -> anyhow::Result<Target> {
        let url = match (shape.client_tls(), &proxy.https_url) {
            (true, Some(https)) => https,
            _ => &proxy.http_url,
        };
        Ok(Target {
            role: role.into(),
            id: format!("{role}/{}", shape.name()),
            shapes: vec![shape],
            endpoint: Endpoint::new(url, Some(&self.ca()))?,
            signer: proxy.signer.clone(),
            accounted: Some(procfs::Accounted::process(proxy.pid)),
            rss_pid: Some(proxy.pid),
        })
    }

    pub fn plan(&self, targets: Vec<Target>, workloads: Vec<Workload>, load: &WorkloadOptions) -> anyhow::Result<Plan> {
        Ok(Plan {
            targets,
            workloads,
            rounds: load.rounds,
            bucket: BUCKET.into(),
            small: load.small_load(),
            warmup: !load.no_warmup,
            settle: std::time::Duration::from_millis(load.settle_ms),
            upstream: self.upstream.accounted.clone(),
            clock_ticks: procfs::clock_ticks_per_second()?,
            cpus: cpus(),
        })
    }
}

pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}

/// The path, SHA-256 and label of a binary.
pub fn describe_binary(path: &Path, label: Option<&str>) -> Value {
    let sha256 = Command::new("sha256sum")
        .arg(path)
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).split_whitespace().next().map(str::to_owned));
    json!({"path": path.display().to_string(), "sha256": sha256, "label": label})
}

/// What every report starts with: what ran, where, when.
pub fn header(benchmark: &str, plan: &Plan, load: &WorkloadOptions) -> Value {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let model =
        cpuinfo.lines().find_map(|l| l.strip_prefix("model name")?.split_once(':').map(|(_, m)| m.trim().to_owned()));
    json!({
        "benchmark": benchmark,
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "started_unix": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default(),
        "machine": {
            "cpus": plan.cpus, "clk_tck": plan.clock_ticks, "cpu_model": model,
            "kernel": read("/proc/sys/kernel/osrelease").trim(),
        },
        "settings": load.json(&plan.workloads),
        "targets": plan.targets.iter().map(|t| json!({
            "id": t.id, "role": t.role, "endpoint": t.endpoint.url,
            "shapes": t.shapes.iter().map(|s| s.name()).collect::<Vec<_>>(),
            "pids": t.accounted.as_ref().map(|a| a.pids().to_vec()),
        })).collect::<Vec<_>>(),
    })
}

/// Runs the rounds: the JSON, the table and what was measured.
pub async fn measure(plan: &Plan, ratios: &[Ratio], header: Value) -> anyhow::Result<(Value, String, rounds::Outcome)> {
    rounds::probe(plan).await?;
    let outcome = rounds::run(plan).await?;
    let (json, table) = report::render(plan, &outcome, ratios, header);
    Ok((json, table, outcome))
}

/// Prints the table (stderr) and the JSON (stdout); an error if any GET failed.
pub fn print_report(json: &Value, table: &str) -> anyhow::Result<()> {
    eprintln!("{table}");
    println!("{}", serde_json::to_string_pretty(json)?);
    anyhow::ensure!(json["errors"] == 0, "{} GETs failed (errors_by_kind in the runs above)", json["errors"]);
    Ok(())
}

/// Runs the rounds, prints the table (stderr) and the JSON (stdout); an
/// error if any GET failed.
pub async fn measure_and_report(plan: &Plan, ratios: &[Ratio], header: Value) -> anyhow::Result<()> {
    let (json, table, _) = measure(plan, ratios, header).await?;
    print_report(&json, &table)
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let Options { proxy_bin, proxy_label, mut shapes, nginx_bin, no_nginx, nginx_workers, relay, proxy_args, load } =
        options;
    shapes.sort();
    shapes.dedup();
    anyhow::ensure!(!shapes.is_empty(), "give at least one shape");
    let workloads = load.workloads.clone().unwrap_or_else(|| vec![Workload::Large, Workload::Small, Workload::Rss]);
    let setup = Setup::start(&proxy_bin, &load, &workloads).await?;
    let nginx_workers = nginx_workers.unwrap_or_else(cpus);

    // Started in this order, stopped in reverse when they drop (before `setup`).
    let mut targets = setup.direct_targets(&shapes);
    let mut nginxes: Vec<(Shape, Nginx)> = Vec::new();
    let mut relays: Vec<Relay> = Vec::new();
    let mut proxies: Vec<ProxyProcess> = Vec::new();
    for &shape in &shapes {
        if !no_nginx {
            let upstream = if shape.upstream_tls() {
                NginxUpstream::Https { port: setup.upstream.https_port, ca: setup.ca() }
            } else {
                NginxUpstream::Http { port: setup.upstream.port }
            };
            let tls_certs = shape.client_tls().then(|| setup.certs.clone());
            let spec = NginxSpec { bin: &nginx_bin, workers: nginx_workers, upstream, tls_certs };
            let nginx = Nginx::start(&spec, &setup.work.path().join(format!("nginx-{}", shape.name())))?;
            targets.push(Target {
                role: "nginx".into(),
                id: format!("nginx/{}", shape.name()),
                shapes: vec![shape],
                endpoint: Endpoint::new(&nginx.url, Some(&setup.ca()))?,
                signer: setup.upstream.signer.clone(),
                accounted: Some(nginx.accounted.clone()),
                rss_pid: None,
            });
            nginxes.push((shape, nginx));
        }
        if relay && shape == Shape::Plain {
            let started = Relay::start(setup.upstream.port, &setup.work.path().join("relay"))?;
            targets.push(Target {
                role: "relay".into(),
                id: "relay/plain".into(),
                shapes: vec![shape],
                endpoint: Endpoint::new(&started.url, None)?,
                signer: setup.upstream.signer.clone(),
                accounted: Some(started.accounted.clone()),
                rss_pid: None,
            });
            relays.push(started);
        }
        let spec = setup.proxy_spec(&proxy_bin, shape, &proxy_args);
        let proxy = ProxyProcess::start(&spec, &setup.work.path().join(format!("proxy-{}", shape.name())))?;
        targets.push(setup.proxy_target("proxy", shape, &proxy)?);
        proxies.push(proxy);
    }

    let plan = setup.plan(targets, workloads, &load)?;
    let mut header = header("egress-bench compare", &plan, &load);
    header["proxy_bin"] = describe_binary(&proxy_bin, proxy_label.as_deref());
    if !no_nginx {
        let version =
            Command::new(&nginx_bin).arg("-v").output().ok().map(|out| {
                String::from_utf8_lossy(&out.stderr).trim().trim_start_matches("nginx version: ").to_owned()
            });
        let configs: serde_json::Map<String, Value> =
            nginxes.iter().map(|(shape, n)| (shape.name().to_owned(), n.config.clone().into())).collect();
        header["nginx"] = json!({"bin": nginx_bin, "version": version, "workers": nginx_workers, "configs": configs});
    }
    let ratios: &[Ratio] = &[("proxy", "nginx"), ("proxy", "direct"), ("nginx", "direct"), ("relay", "direct")];
    measure_and_report(&plan, ratios, header).await
}
