//! `egress-proxy reconcile`: one reconciliation run on the ledger in the
//! data dir (the admin API's `POST /v1/reconciliations` while `serve` runs).

use std::sync::Arc;

use egress_admin::reconciliation::{Reconciler, RunRequest};
use egress_reconcile::ledger_reads::Window;
use egress_reconcile::report::{DeliveryWindows, Report, RunStatus, now_micros, parse_time};

use super::with_ledger;
use crate::cli::ReconcileArgs;

/// Runs it and prints the report; the exit code says what was found.
pub fn reconcile(args: &ReconcileArgs) -> anyhow::Result<i32> {
    let now = now_micros();
    let since = parse_time(&args.since, now).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
    let until = match &args.until {
        Some(until) => parse_time(until, now).map_err(|e| anyhow::anyhow!("--until: {e}"))?,
        None => now,
    };
    anyhow::ensure!(until > since, "--until must be after --since");
    let delivery = DeliveryWindows {
        access_log_secs: args.access_log_delivery.as_secs(),
        cloudtrail_secs: args.cloudtrail_delivery.as_secs(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = with_ledger(&args.dir.data_dir, |ledger| {
        let store = ledger.store().ok_or_else(|| anyhow::anyhow!("ledger opened without its state store"))?;
        let (specs, reports) = (store.tree("provisioning")?, store.tree("reconciliations")?);
        runtime.block_on(async {
            let provisioner = Arc::new(
                egress_admin::provisioning::Provisioner::new(args.aws_endpoint.clone(), args.region.clone(), specs)
                    .await,
            );
            let reconciler =
                Reconciler::new(ledger.clone(), provisioner, reports, delivery, args.proxy_access_key_ids.clone());
            reconciler
                .run(RunRequest { spec: args.spec.clone(), window: Window { since, until } })
                .await
                .map_err(super::principal::api)
        })
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_summary(&report);
    }
    Ok(exit_code(&report))
}

/// 0 complete and clean, 2 bypass, 3 failed, 4 partial.
#[must_use]
pub fn exit_code(report: &Report) -> i32 {
    match report.status {
        RunStatus::Failed => 3,
        _ if report.counts.bypass > 0 => 2,
        RunStatus::Partial => 4,
        RunStatus::Complete => 0,
    }
}

fn print_summary(report: &Report) {
    let c = &report.counts;
    println!("reconciliation {} ({:?}) of spec {:?}", report.id, report.status, report.spec);
    println!("window {} .. {}", report.window.since, report.window.until);
    if let Some(error) = &report.error {
        println!("error: {error}");
    }
    if report.status == RunStatus::Failed {
        println!("nothing is known about bypass: the logs could not be read");
        return;
    }
    println!(
        "ledger reads {} (not forwarded {}), matched {}, bypass {}, unaccounted attempts {}, missing from AWS {}, bytes mismatch {}",
        c.ledger_reads,
        c.ledger_reads_not_forwarded,
        c.matched,
        c.bypass,
        c.unaccounted_attempts,
        c.missing_from_aws,
        c.bytes_mismatch
    );
    for (source, s) in &report.sources {
        println!(
            "{}: {} files, {} records, {} reads in window, coverage {:.0}%, pending {}, malformed {}, unusable files {}, integrity failures {}",
            source.as_str(),
            s.files_read,
            s.records,
            s.reads_in_window,
            s.coverage * 100.0,
            s.pending,
            s.malformed_count,
            s.unusable_files.len(),
            s.integrity_failures.len()
        );
    }
    for b in &report.bypass {
        println!(
            "BYPASS {} {} s3://{}/{} {} bytes by {} (key {}) from {}{}",
            b.time,
            b.request_id,
            b.bucket,
            b.key,
            b.bytes_sent.map_or_else(|| "?".to_owned(), |n| n.to_string()),
            b.requester.as_deref().unwrap_or("-"),
            b.access_key_id.as_deref().unwrap_or("-"),
            b.source_ip.as_deref().unwrap_or("-"),
            if b.proxy_identity { " — the proxy's own identity, used outside the proxy" } else { "" }
        );
    }
    for warning in &report.warnings {
        println!("warning: {warning}");
    }
    if let Some(seq) = report.ledger_seq {
        println!("on the chain at seq {seq} (report sha256 {})", report.sha256());
    }
}
