//! The figures of a benchmark: per shape and workload, each target's median
//! over the rounds (and every round's value), its CPU per unit of work, and
//! the ratios asked for; as one JSON object and as a table for people.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::rounds::{Outcome, Plan, Run, Shape, Workload, kib_to_mib};

/// The RSS target of issue 16 while streaming a large object through the proxy.
pub const RSS_TARGET_MIB: f64 = 32.0;

/// A ratio to report: `numerator/denominator`, by role (`proxy/nginx`).
pub type Ratio = (&'static str, &'static str);

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some(f64::midpoint(sorted[n / 2 - 1], sorted[n / 2])),
    }
}

fn round_to(value: f64, digits: u8) -> f64 {
    let scale = 10_f64.powi(i32::from(digits));
    (value * scale).round() / scale
}

/// A workload's rate (MB/s or req/s) and its CPU per unit of work (CPU-s
/// per GiB or CPU-µs per request).
#[allow(clippy::cast_precision_loss)] // byte and request counts far below 2^52
fn figures(run: &Run) -> (f64, Option<f64>) {
    match run.workload {
        Workload::Small => (run.stats.req_per_s(), run.cpu_s.map(|cpu| cpu / run.stats.requests.max(1) as f64 * 1e6)),
        _ => (run.stats.mb_per_s(), run.cpu_s.map(|cpu| cpu / (run.stats.bytes.max(1) as f64 / f64::from(1 << 30)))),
    }
}

/// Decimals worth showing of a workload's rate and of its CPU per unit.
fn decimals(workload: Workload) -> (u8, u8) {
    match workload {
        Workload::Small => (0, 1),
        _ => (1, 3),
    }
}

fn units(workload: Workload) -> (&'static str, &'static str) {
    match workload {
        Workload::Small => ("req/s", "CPU-µs/req"),
        _ => ("MB/s", "CPU-s/GiB"),
    }
}

/// One target's figures for one workload, over the rounds.
struct Cell {
    id: String,
    rate: Vec<f64>,
    cpu: Vec<f64>,
    p50_ms: Vec<f64>,
    p99_ms: Vec<f64>,
    errors: u64,
    tls: Value,
    /// Per round, for paired ratios.
    by_round: Vec<(usize, f64)>,
}

impl Cell {
    fn of(plan: &Plan, outcome: &Outcome, target: usize, workload: Workload) -> Option<Cell> {
        let runs: Vec<&Run> = outcome.runs.iter().filter(|r| r.target == target && r.workload == workload).collect();
        let first = runs.first()?;
        let mut cell = Cell {
            id: plan.targets[target].id.clone(),
            rate: Vec::new(),
            cpu: Vec::new(),
            p50_ms: Vec::new(),
            p99_ms: Vec::new(),
            errors: 0,
            tls: first.stats.json["tls"].clone(),
            by_round: Vec::new(),
        };
        for run in runs {
            let (rate, cpu) = figures(run);
            cell.rate.push(rate);
            cell.by_round.push((run.round, rate));
            cell.cpu.extend(cpu);
            cell.p50_ms.extend(run.stats.p50_ms);
            cell.p99_ms.extend(run.stats.p99_ms);
            cell.errors += run.stats.errors;
        }
        Some(cell)
    }

    fn json(&self, workload: Workload) -> Value {
        let (digits, cpu_digits) = decimals(workload);
        json!({
            "id": self.id,
            "median": median(&self.rate).map(|v| round_to(v, digits)),
            "per_round": self.rate.iter().map(|&v| round_to(v, digits)).collect::<Vec<_>>(),
            "cpu_median": median(&self.cpu).map(|v| round_to(v, cpu_digits)),
            "cpu_per_round": self.cpu.iter().map(|&v| round_to(v, cpu_digits)).collect::<Vec<_>>(),
            "p50_ms_median": median(&self.p50_ms).map(|v| round_to(v, 2)),
            "p99_ms_median": median(&self.p99_ms).map(|v| round_to(v, 2)),
            "errors": self.errors,
            "client_tls": self.tls,
        })
    }
}

/// The shapes the targets cover, in order.
fn shapes(plan: &Plan) -> Vec<Shape> {
    let mut shapes: Vec<Shape> = plan.targets.iter().flat_map(|t| t.shapes.iter().copied()).collect();
    shapes.sort();
    shapes.dedup();
    shapes
}

/// The targets in `shape`, by role, in the plan's order.
fn roles(plan: &Plan, shape: Shape) -> Vec<(usize, &str)> {
    plan.targets
        .iter()
        .enumerate()
        .filter(|(_, t)| t.shapes.contains(&shape))
        .map(|(i, t)| (i, t.role.as_str()))
        .collect()
}

/// The summary of `outcome`: a JSON object (with `header`'s fields first and
/// every run last) and the table.
pub fn render(plan: &Plan, outcome: &Outcome, ratios: &[Ratio], header: Value) -> (Value, String) {
    let mut table = String::new();
    let mut by_shape = serde_json::Map::new();
    for shape in shapes(plan) {
        let roles = roles(plan, shape);
        let _ = writeln!(table, "\n{}: {}", shape.name(), shape.path());
        let present: Vec<Ratio> = ratios
            .iter()
            .copied()
            .filter(|(n, d)| roles.iter().any(|r| r.1 == *n) && roles.iter().any(|r| r.1 == *d))
            .collect();
        let _ = write!(table, "{:<26}", "");
        for (_, role) in &roles {
            let _ = write!(table, "{role:>11}");
        }
        for (n, d) in &present {
            let _ = write!(table, "{:>14}", format!("{n}/{d}"));
        }
        table.push('\n');
        let mut shape_json = serde_json::Map::new();
        shape_json.insert("path".into(), shape.path().into());
        for workload in [Workload::Large, Workload::Small] {
            let cells: Vec<(&str, Cell)> =
                roles.iter().filter_map(|&(i, role)| Some((role, Cell::of(plan, outcome, i, workload)?))).collect();
            if cells.is_empty() {
                continue;
            }
            let find = |role: &str| cells.iter().find(|(r, _)| *r == role).map(|(_, c)| c);
            let mut ratio_json = serde_json::Map::new();
            for &(n, d) in &present {
                let (Some(num), Some(den)) = (find(n), find(d)) else { continue };
                let per_round: Vec<f64> = num
                    .by_round
                    .iter()
                    .filter_map(|(round, v)| {
                        den.by_round.iter().find(|(r, _)| r == round).map(|(_, w)| round_to(v / w, 3))
                    })
                    .collect();
                let rate = median(&num.rate).zip(median(&den.rate)).map(|(a, b)| round_to(a / b, 3));
                let cpu = median(&num.cpu).zip(median(&den.cpu)).map(|(a, b)| round_to(a / b, 3));
                ratio_json.insert(format!("{n}/{d}"), json!({"rate": rate, "cpu": cpu, "rate_per_round": per_round}));
            }
            let (unit, cpu_unit) = units(workload);
            let targets: serde_json::Map<String, Value> =
                cells.iter().map(|(role, cell)| ((*role).to_owned(), cell.json(workload))).collect();
            shape_json.insert(
                workload.name().into(),
                json!({"unit": unit, "cpu_unit": cpu_unit, "targets": targets, "ratios": ratio_json}),
            );
            table_rows(&mut table, plan, outcome, workload, &roles, &cells, &present);
        }
        let rss: Vec<Value> = outcome
            .rss
            .iter()
            .filter(|r| plan.targets[r.target].shapes.contains(&shape))
            .map(|r| {
                let target = &plan.targets[r.target];
                let peak = kib_to_mib(r.peak_kib());
                let _ = writeln!(
                    table,
                    "  {} RSS streaming {} MiB: peak {peak:.1} MiB ({}; idle {:.1} MiB), {:.0} MB/s; target ≤ {RSS_TARGET_MIB} MiB {}",
                    target.role,
                    r.stats.bytes >> 20,
                    if r.hwm_reset { "VmHWM reset before the GET" } else { "sampled VmRSS" },
                    kib_to_mib(r.idle_kib),
                    r.stats.mb_per_s(),
                    if peak <= RSS_TARGET_MIB { "met" } else { "MISSED" },
                );
                json!({
                    "target": target.role, "id": target.id, "bytes": r.stats.bytes,
                    "idle_mib": round_to(kib_to_mib(r.idle_kib), 1),
                    "peak_mib": round_to(peak, 1),
                    "sampled_peak_mib": round_to(kib_to_mib(r.sampled_peak_kib), 1),
                    "vm_hwm_mib": round_to(kib_to_mib(r.hwm_kib), 1), "vm_hwm_reset_before": r.hwm_reset,
                    "mb_per_s": round_to(r.stats.mb_per_s(), 1), "errors": r.stats.errors,
                    "target_mib": RSS_TARGET_MIB, "target_met": peak <= RSS_TARGET_MIB,
                })
            })
            .collect();
        if !rss.is_empty() {
            shape_json.insert("rss_streaming".into(), rss.into());
        }
        by_shape.insert(shape.name().into(), shape_json.into());
    }

    let shares: Vec<f64> = outcome.runs.iter().map(|r| r.others_share(plan.cpus)).collect();
    let busy = shares.iter().filter(|&&s| s > 0.10).count();
    let others = json!({
        "median_share": median(&shares).map(|v| round_to(v, 3)),
        "max_share": shares.iter().copied().reduce(f64::max).map(|v| round_to(v, 3)),
        "runs_over_10_percent": busy, "runs": shares.len(),
    });
    let _ = writeln!(
        table,
        "\nother processes' CPU during the runs: median {:.0} % of the machine, max {:.0} %, {busy} of {} runs over 10 %{}",
        median(&shares).unwrap_or(0.0) * 100.0,
        shares.iter().copied().reduce(f64::max).unwrap_or(0.0) * 100.0,
        shares.len(),
        if busy * 4 > shares.len() {
            " (disturbed: rates less so than CPU per unit, but take both with care)"
        } else {
            ""
        }
    );
    let errors: u64 = outcome.runs.iter().map(|r| r.stats.errors).sum::<u64>()
        + outcome.rss.iter().map(|r| r.stats.errors).sum::<u64>();
    if errors > 0 {
        let _ = writeln!(table, "{errors} GETs FAILED: see errors_by_kind in the runs of the JSON");
    }

    let mut out = match header {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    };
    out.insert("shapes".into(), by_shape.into());
    out.insert("others_cpu".into(), others);
    out.insert("errors".into(), errors.into());
    out.insert("runs".into(), outcome.runs.iter().map(|r| run_json(plan, r)).collect::<Vec<_>>().into());
    (Value::Object(out), table)
}

fn table_rows(
    table: &mut String,
    plan: &Plan,
    outcome: &Outcome,
    workload: Workload,
    roles: &[(usize, &str)],
    cells: &[(&str, Cell)],
    ratios: &[Ratio],
) {
    let (unit, cpu_unit) = units(workload);
    let sample = outcome.runs.iter().find(|r| r.workload == workload).map(|r| &r.stats);
    let label = match (workload, sample) {
        (Workload::Small, Some(s)) => {
            format!("{} GET x{}", size_label(s.bytes / s.requests.max(1)), plan.small.concurrency)
        }
        (_, Some(s)) => format!("{} GET", size_label(s.bytes)),
        _ => String::new(),
    };
    let find = |role: &str| cells.iter().find(|(r, _)| *r == role).map(|(_, c)| c);
    let (digits, cpu_digits) = decimals(workload);
    let mut row = |first: &str, name: &str, value: &dyn Fn(&Cell) -> Option<f64>, digits: u8, with_ratios: bool| {
        let _ = write!(table, "  {first:<14}{name:<10}");
        let digits = usize::from(digits);
        for (_, role) in roles {
            let text = find(role).and_then(value).map_or_else(|| "-".to_owned(), |v| format!("{v:.digits$}"));
            let _ = write!(table, "{text:>11}");
        }
        if with_ratios {
            for (n, d) in ratios {
                let text = find(n)
                    .and_then(value)
                    .zip(find(d).and_then(value))
                    .map_or_else(|| "-".to_owned(), |(a, b)| format!("{:.3}", a / b));
                let _ = write!(table, "{text:>14}");
            }
        }
        table.push('\n');
    };
    row(&label, unit, &|c: &Cell| median(&c.rate), digits, true);
    row("", cpu_unit, &|c: &Cell| median(&c.cpu), cpu_digits, true);
    if workload == Workload::Small {
        row("", "p50 ms", &|c: &Cell| median(&c.p50_ms), 2, false);
        row("", "p99 ms", &|c: &Cell| median(&c.p99_ms), 2, false);
    }
}

fn size_label(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

fn run_json(plan: &Plan, run: &Run) -> Value {
    let (rate, cpu) = figures(run);
    let (unit, cpu_unit) = units(run.workload);
    json!({
        "round": run.round, "workload": run.workload.name(), "target": plan.targets[run.target].id,
        "rate": rate, "unit": unit, "cpu": cpu, "cpu_unit": cpu_unit,
        "cpu_s": run.cpu_s, "upstream_cpu_s": run.upstream_cpu_s, "client_cpu_s": run.client_cpu_s,
        "others_cpu_s": run.others_cpu_s, "window_s": run.window_s, "others_share": round_to(run.others_share(plan.cpus), 3),
        "get": run.stats.json,
    })
}
