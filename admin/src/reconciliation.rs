//! Reconciliation runs as the admin API, the CLI and `serve
//! --reconcile-every` start them: the plan from a provisioning spec, the
//! summary on the chain, the report kept, the metrics counted. The run
//! itself is `egress_reconcile::run`; `docs/RECONCILIATION.md` is the
//! contract.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use egress_ledger::{Entry, Ledger, NoteRecord};
use egress_reconcile::ledger_reads::Window;
use egress_reconcile::matching::ProxyIdentity;
use egress_reconcile::report::{Counts, DeliveryWindows, Report, ReportWindow, RunStatus, now_micros};
use egress_reconcile::run::Plan;
use egress_reconcile::store::S3LogStore;
use serde::{Deserialize, Serialize};

use crate::ApiError;
use crate::provisioning::{Provisioner, ProvisioningError};

/// Reports kept at most; the oldest go first.
pub const MAX_REPORTS: usize = 1000;

/// Key prefixes in the reconciliations tree: whole reports, and their
/// summaries (what the list shows), each by run id.
const REPORT: &[u8] = b"report/";
const SUMMARY: &[u8] = b"summary/";

fn key(prefix: &[u8], id: &str) -> Vec<u8> {
    [prefix, id.as_bytes()].concat()
}

/// What a run is asked for.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The provisioning spec whose log bucket is read; `None`: the only one.
    pub spec: Option<String>,
    pub window: Window,
}

/// Runs reconciliations and keeps their reports.
#[derive(Debug)]
pub struct Reconciler {
    ledger: Ledger,
    provisioner: Arc<Provisioner>,
    reports: sled::Tree,
    delivery: DeliveryWindows,
    /// The proxy's upstream access key ids, to recognise them in CloudTrail.
    proxy_access_keys: Vec<String>,
    /// One run at a time: two would read the same logs twice over.
    running: tokio::sync::Mutex<()>,
    pub metrics: ReconcileMetrics,
}

/// `egress_reconcile_*` in `/metrics`.
#[derive(Debug, Default)]
pub struct ReconcileMetrics {
    /// Bypass reads found, each request id counted once across runs.
    pub bypass_reads: AtomicU64,
    pub runs_complete: AtomicU64,
    pub runs_partial: AtomicU64,
    pub runs_failed: AtomicU64,
    /// Unix seconds of the last run's end, and of the last that was not failed.
    pub last_run: AtomicU64,
    pub last_success: AtomicU64,
    /// Bypass request ids counted already (bounded; cleared when full).
    counted: Mutex<HashSet<String>>,
}

const MAX_COUNTED: usize = 100_000;

impl ReconcileMetrics {
    fn record(&self, report: &Report) {
        let now = now_micros() / 1_000_000;
        self.last_run.store(now, Ordering::Relaxed);
        match report.status {
            RunStatus::Complete => self.runs_complete.fetch_add(1, Ordering::Relaxed),
            RunStatus::Partial => self.runs_partial.fetch_add(1, Ordering::Relaxed),
            RunStatus::Failed => self.runs_failed.fetch_add(1, Ordering::Relaxed),
        };
        if report.status != RunStatus::Failed {
            self.last_success.store(now, Ordering::Relaxed);
        }
        let mut counted = self.counted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if counted.len() > MAX_COUNTED {
            counted.clear();
        }
        let listed = report.bypass.len() as u64;
        let mut new = 0;
        for entry in &report.bypass {
            if counted.insert(entry.request_id.clone()) {
                new += 1;
            }
        }
        // Past the listed entries, the count is all that is known.
        new += report.counts.bypass.saturating_sub(listed);
        self.bypass_reads.fetch_add(new, Ordering::Relaxed);
    }

    /// The Prometheus text of these figures.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP egress_reconcile_bypass_reads_total Object reads in AWS's logs that no ledger request accounts for.\n\
             # TYPE egress_reconcile_bypass_reads_total counter\n",
        );
        let _ = writeln!(out, "egress_reconcile_bypass_reads_total {}", self.bypass_reads.load(Ordering::Relaxed));
        out.push_str("# HELP egress_reconcile_runs_total Reconciliation runs by how they ended.\n");
        out.push_str("# TYPE egress_reconcile_runs_total counter\n");
        for (status, n) in
            [("complete", &self.runs_complete), ("partial", &self.runs_partial), ("failed", &self.runs_failed)]
        {
            let _ = writeln!(out, "egress_reconcile_runs_total{{status=\"{status}\"}} {}", n.load(Ordering::Relaxed));
        }
        out.push_str(
            "# HELP egress_reconcile_last_run_timestamp_seconds When the last reconciliation run ended (0: none yet).\n\
             # TYPE egress_reconcile_last_run_timestamp_seconds gauge\n",
        );
        let _ = writeln!(out, "egress_reconcile_last_run_timestamp_seconds {}", self.last_run.load(Ordering::Relaxed));
        out.push_str(
            "# HELP egress_reconcile_last_success_timestamp_seconds When the last run that read the logs ended (0: none yet).\n\
             # TYPE egress_reconcile_last_success_timestamp_seconds gauge\n",
        );
        let _ = writeln!(
            out,
            "egress_reconcile_last_success_timestamp_seconds {}",
            self.last_success.load(Ordering::Relaxed)
        );
        out
    }
}

/// One line of `GET /v1/reconciliations`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportSummary {
    pub id: String,
    pub spec: String,
    pub status: RunStatus,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub window: ReportWindow,
    pub counts: Counts,
    pub ledger_seq: Option<u64>,
    pub report_sha256: String,
}

impl ReportSummary {
    #[must_use]
    pub fn of(report: &Report, report_sha256: String) -> ReportSummary {
        ReportSummary {
            id: report.id.clone(),
            spec: report.spec.clone(),
            status: report.status,
            error: report.error.clone(),
            started_at: report.started_at.clone(),
            finished_at: report.finished_at.clone(),
            window: report.window.clone(),
            counts: report.counts.clone(),
            ledger_seq: report.ledger_seq,
            report_sha256,
        }
    }
}

impl Reconciler {
    #[must_use]
    pub fn new(
        ledger: Ledger,
        provisioner: Arc<Provisioner>,
        reports: sled::Tree,
        delivery: DeliveryWindows,
        proxy_access_keys: Vec<String>,
    ) -> Reconciler {
        Reconciler {
            ledger,
            provisioner,
            reports,
            delivery,
            proxy_access_keys,
            running: tokio::sync::Mutex::new(()),
            metrics: ReconcileMetrics::default(),
        }
    }

    /// Runs one reconciliation: reads the logs, puts the summary on the
    /// chain, keeps the report. A run that could not read the logs is a
    /// `failed` report (kept and on the chain too); an error here means the
    /// run could not even be planned (no such spec) or recorded.
    pub async fn run(&self, request: RunRequest) -> Result<Report, ApiError> {
        if request.window.until <= request.window.since {
            return Err(ApiError::bad_field("until", "must be after since"));
        }
        let name = match request.spec {
            Some(name) => name,
            None => self.only_spec()?,
        };
        let spec = self.provisioner.spec(&name).map_err(|e| match e {
            ProvisioningError::NotFound(_) => ApiError::not_found(e.to_string()),
            other => ApiError::internal(other.to_string()),
        })?;
        let _one_at_a_time = self.running.lock().await;
        let plan = Plan {
            id: run_id(),
            spec: name,
            data_bucket: spec.data_bucket.clone(),
            log_bucket: spec.log_bucket.clone(),
            access_log_prefix: spec.log_prefix.clone(),
            // The trail writes at the bucket's root (provisioning clears any prefix).
            cloudtrail_prefix: String::new(),
            account: spec.account_id().to_owned(),
            region: spec.region.clone(),
            window: request.window,
            delivery: self.delivery,
            proxy: ProxyIdentity {
                arn: spec.proxy_principal_arn.clone(),
                access_key_ids: self.proxy_access_keys.clone(),
            },
            now: now_micros(),
        };
        let store = S3LogStore::new(self.provisioner.s3(&spec.region), spec.log_bucket.clone());
        let mut report = egress_reconcile::run::run(&self.ledger, &store, &plan).await;
        let report_sha256 = report.sha256();
        let appended = self
            .ledger
            .append(Entry::Note(summary_note(&report, &report_sha256)))
            .await
            .map_err(|e| ApiError::internal(format!("the ledger refused the run's summary: {e}")))?;
        report.ledger_seq = Some(appended.seq);
        self.keep(&report, &ReportSummary::of(&report, report_sha256))?;
        self.metrics.record(&report);
        let error = report.error.as_deref().unwrap_or("");
        match report.status {
            RunStatus::Failed => tracing::error!(id = %report.id, error, "reconciliation failed: nothing is known"),
            _ if report.counts.bypass > 0 => tracing::error!(
                id = %report.id,
                bypass = report.counts.bypass,
                "reconciliation found object reads that did not go through the proxy"
            ),
            _ => {
                tracing::info!(id = %report.id, matched = report.counts.matched, status = ?report.status, "reconciliation done");
            }
        }
        Ok(report)
    }

    fn only_spec(&self) -> Result<String, ApiError> {
        let names = self.provisioner.names().map_err(|e| ApiError::internal(e.to_string()))?;
        match names.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(ApiError::new(
                http::StatusCode::CONFLICT,
                "no_spec",
                "no provisioning spec: PUT /v1/provisioning/{name} first, it names the log bucket to read",
            )),
            many => Err(ApiError::bad_field(
                "spec",
                &format!("{} provisioning specs exist ({}); name one", many.len(), many.join(", ")),
            )),
        }
    }

    /// Keeps the report and, beside it, its summary with its hash (so that
    /// listing reads neither whole reports nor hashes them again); the
    /// oldest go past [`MAX_REPORTS`].
    fn keep(&self, report: &Report, summary: &ReportSummary) -> Result<(), ApiError> {
        let store = |e: &dyn std::fmt::Display| ApiError::internal(format!("the reconciliation store: {e}"));
        let report_bytes = serde_json::to_vec(report).map_err(|e| store(&e))?;
        let summary_bytes = serde_json::to_vec(summary).map_err(|e| store(&e))?;
        self.reports.insert(key(REPORT, &report.id), report_bytes).map_err(|e| store(&e))?;
        self.reports.insert(key(SUMMARY, &report.id), summary_bytes).map_err(|e| store(&e))?;
        let kept = self.reports.scan_prefix(SUMMARY).count();
        for item in self.reports.scan_prefix(SUMMARY).keys().take(kept.saturating_sub(MAX_REPORTS)) {
            let old = item.map_err(|e| store(&e))?;
            let id = &old[SUMMARY.len()..];
            self.reports.remove(&old).map_err(|e| store(&e))?;
            self.reports.remove([REPORT, id].concat()).map_err(|e| store(&e))?;
        }
        Ok(())
    }

    /// A kept report.
    pub fn get(&self, id: &str) -> Result<Option<Report>, ApiError> {
        let Some(bytes) = self.reports.get(key(REPORT, id)).map_err(|e| ApiError::internal(e.to_string()))? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes).map(Some).map_err(|e| ApiError::internal(format!("stored report {id}: {e}")))
    }

    /// Kept runs' summaries, newest first, before the id `before`.
    pub fn list(&self, limit: usize, before: Option<&str>) -> Result<Vec<ReportSummary>, ApiError> {
        let end = match before {
            Some(before) => key(SUMMARY, before),
            // Just past every `summary/` key.
            None => [&SUMMARY[..SUMMARY.len() - 1], b"0"].concat(),
        };
        let mut out = Vec::new();
        for item in self.reports.range(SUMMARY.to_vec()..end).rev().take(limit) {
            let (_, bytes) = item.map_err(|e| ApiError::internal(e.to_string()))?;
            out.push(serde_json::from_slice(&bytes).map_err(|e| ApiError::internal(e.to_string()))?);
        }
        Ok(out)
    }

    /// Runs every `every`, over the last `every` plus the longest delivery
    /// window (so that every read is judged once its window has passed),
    /// until `stop` resolves.
    pub async fn schedule(self: Arc<Self>, every: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let lookback = u64::try_from(every.as_micros())
            .unwrap_or(u64::MAX)
            .saturating_add(self.delivery.access_log_secs.max(self.delivery.cloudtrail_secs).saturating_mul(1_000_000));
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = ticker.tick() => {}
            }
            let until = now_micros();
            let window = Window { since: until.saturating_sub(lookback), until };
            if let Err(e) = self.run(RunRequest { spec: None, window }).await {
                tracing::error!(code = %e.code, error = %e.message, "scheduled reconciliation could not run");
            }
        }
    }
}

/// The note a run puts on the chain: what was known when.
#[must_use]
pub fn summary_note(report: &Report, report_sha256: &str) -> NoteRecord {
    let counts = serde_json::to_value(&report.counts).unwrap_or_default();
    let mut note = NoteRecord::new("reconciliation")
        .with("id", report.id.clone())
        .with("spec", report.spec.clone())
        .with("status", serde_json::to_value(report.status).unwrap_or_default())
        .with("since", report.window.since.clone())
        .with("until", report.window.until.clone())
        .with("counts", counts)
        .with("report_sha256", report_sha256);
    if let Some(error) = &report.error {
        note = note.with("error", error.clone());
    }
    note
}

/// A run's id: its start time in hex then randomness, so that ids sort
/// (and the store lists runs) in the order they ran.
fn run_id() -> String {
    let random: u64 = rand::random();
    format!("{:013x}-{random:016x}", now_micros())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed")]

    use super::*;
    use egress_ledger::LedgerConfig;

    #[tokio::test]
    async fn the_newest_runs_are_kept_listed_newest_first_and_paged() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, _) = Ledger::open(&LedgerConfig::new(dir.path(), "reconciliation-test")).unwrap();
        let store = ledger.store().unwrap();
        let provisioner =
            Arc::new(Provisioner::new(None, "us-east-1".into(), store.tree("provisioning").unwrap()).await);
        let reconciler = Reconciler::new(
            ledger.clone(),
            provisioner,
            store.tree("reconciliations").unwrap(),
            DeliveryWindows::default(),
            Vec::new(),
        );
        let window = ReportWindow { since: "a".into(), until: "b".into() };
        let ids: Vec<String> = (0..MAX_REPORTS + 3).map(|n| format!("{n:013x}-0")).collect();
        for id in &ids {
            let report =
                Report::failed(id.clone(), "main".into(), window.clone(), DeliveryWindows::default(), "e".into());
            reconciler.keep(&report, &ReportSummary::of(&report, report.sha256())).unwrap();
        }
        let all = reconciler.list(MAX_REPORTS + 10, None).unwrap();
        assert_eq!(all.len(), MAX_REPORTS);
        assert_eq!(all[0].id, ids[ids.len() - 1], "newest first");
        assert_eq!(all[MAX_REPORTS - 1].id, ids[3], "the three oldest are gone");
        assert!(reconciler.get(&ids[2]).unwrap().is_none());
        assert_eq!(reconciler.get(&ids[3]).unwrap().unwrap().id, ids[3]);
        let page = reconciler.list(2, Some(&ids[10])).unwrap();
        assert_eq!(page.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(), [&ids[9], &ids[8]]);
        assert_eq!(page[0].report_sha256, reconciler.get(&ids[9]).unwrap().unwrap().sha256());
        ledger.close().await.unwrap();
    }
}
