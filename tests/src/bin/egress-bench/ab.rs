//! `ab`: two egress-proxy binaries (or one binary with two settings) and
//! going direct, in one run with the rounds alternating direct, A, B, so
//! that a change smaller than the noise between two runs still shows. The
//! proxies' CPU per unit of work (process accounting) is steadier than
//! their rates on a shared machine.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::compare::{self, BUCKET, Setup, WorkloadOptions, describe_binary};
use crate::report::Ratio;
use crate::rounds::{Shape, Workload};
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
        load,
    } = options;
    let workloads = load.workloads.clone().unwrap_or_else(|| vec![Workload::Small]);
    let setup = Setup::start(&bin_a, &load, &workloads).await?;
    let mut targets = setup.direct_targets(&[shape]);
    let mut proxies = Vec::new();
    for (role, bin, workers, policy) in
        [("A", &bin_a, workers_a, policies_a.as_deref()), ("B", &bin_b, workers_b, policies_b.as_deref())]
    {
        let dir = setup.work.path().join(format!("proxy-{role}"));
        let mut spec = setup.proxy_spec(bin, shape, &proxy_args);
        spec.worker_threads = workers;
        spec.policies = policies(policy, &dir.join("policies"))?;
        let proxy = ProxyProcess::start(&spec, &dir)?;
        targets.push(setup.proxy_target(role, shape, &proxy)?);
        proxies.push(proxy);
    }
    let plan = setup.plan(targets, workloads, &load)?;
    let mut header = compare::header("egress-bench ab", &plan, &load);
    header["bin_a"] = describe_binary(&bin_a, label_a.as_deref());
    header["bin_b"] = describe_binary(&bin_b, label_b.as_deref());
    header["a"] = serde_json::json!({"worker_threads": workers_a, "policies": policies_a.as_deref().unwrap_or("full")});
    header["b"] = serde_json::json!({"worker_threads": workers_b, "policies": policies_b.as_deref().unwrap_or("full")});
    let ratios: &[Ratio] = &[("A", "direct"), ("B", "direct"), ("B", "A")];
    compare::measure_and_report(&plan, ratios, header).await
}
