//! `egress-metrics`: the counters the data plane keeps for `/metrics`, and
//! their Prometheus text exposition.
//!
//! The data plane (`egress-proxy`) owns one [`Metrics`] and counts into it;
//! the admin API (`egress-admin`) serves it at `/metrics`: [`Metrics::render`],
//! then the ledger writer's counters (`egress_ledger::LedgerStats::render`),
//! then the quota gauges ([`render_quotas`]). This crate depends on nothing
//! of ours: what it renders besides its own counters is handed to it as
//! plain values, so the data plane and the admin API share it without either
//! depending on the other for it.
//!
//! Labels are operation, status and bucket (bounded: operations are a fixed
//! set, buckets are capped), and principal on the quota gauges only (bounded
//! by the principals issued): per-principal bytes belong in the ledger
//! queries, not in metric labels (unbounded cardinality, and who-read-what
//! is audit data).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Most buckets counted under their own label; the bytes of any further
/// bucket are counted under [`OTHER_BUCKETS`]. The data plane passes a
/// bucket only for authenticated requests (anyone can make up names), and
/// this bounds what even key holders can add to `/metrics`.
pub const MAX_BUCKET_LABELS: usize = 1000;
/// The label of the buckets past [`MAX_BUCKET_LABELS`] (not a valid bucket name).
pub const OTHER_BUCKETS: &str = "_other";

/// Upper bounds (seconds) of the latency histograms.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// A fixed-bucket histogram of seconds.
#[derive(Debug)]
pub struct Histogram {
    counts: Vec<AtomicU64>,
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: LATENCY_BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.counts) {
            if secs <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    #[allow(clippy::cast_precision_loss)] // a sum of microseconds far below 2^52
    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (bound, count) in LATENCY_BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {}", count.load(Ordering::Relaxed));
        }
        let total = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let _ = writeln!(out, "{name}_sum {}", self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6);
        let _ = writeln!(out, "{name}_count {total}");
    }
}

/// Everything `/metrics` shows.
#[derive(Debug, Default)]
pub struct Metrics {
    /// By operation, then status (nested, so that counting an operation
    /// seen before allocates nothing).
    requests: Mutex<BTreeMap<String, BTreeMap<u16, u64>>>,
    bytes_out: Mutex<BTreeMap<String, u64>>,
    /// Time for a `start` record to become durable.
    pub ledger_append: Histogram,
    /// Time from sending a request upstream to its response head.
    pub upstream: Histogram,
    /// S3 connections open now.
    pub connections_open: AtomicU64,
    /// S3 connections refused for being over a connection cap since start.
    pub connections_refused: AtomicU64,
}

impl Metrics {
    /// A request ended: its operation, the status sent (0 if none), its
    /// bucket and the body bytes that left.
    pub fn request_finished(&self, operation: &str, status: u16, bucket: Option<&str>, bytes: u64) {
        let mut requests = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let by_status = match requests.get_mut(operation) {
            Some(by_status) => by_status,
            None => requests.entry(operation.to_owned()).or_default(),
        };
        *by_status.entry(status).or_default() += 1;
        drop(requests);
        if let Some(bucket) = bucket {
            let mut bytes_out = self.bytes_out.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(n) = bytes_out.get_mut(bucket) {
                *n += bytes;
            } else {
                let label = if bytes_out.len() < MAX_BUCKET_LABELS { bucket } else { OTHER_BUCKETS };
                *bytes_out.entry(label.to_owned()).or_default() += bytes;
            }
        }
    }

    /// The Prometheus text exposition of these counters. `/metrics` goes on
    /// with the ledger writer's counters and the quota gauges.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# HELP egress_requests_total Requests answered, by S3 operation and HTTP status.\n");
        out.push_str("# TYPE egress_requests_total counter\n");
        let requests = self.requests.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for ((operation, status), n) in
            requests.iter().flat_map(|(operation, by_status)| by_status.iter().map(move |(s, n)| ((operation, s), n)))
        {
            let _ =
                writeln!(out, "egress_requests_total{{operation=\"{}\",status=\"{status}\"}} {n}", escape(operation));
        }
        out.push_str("# HELP egress_bytes_out_total Response body bytes handed to clients, by bucket.\n");
        out.push_str("# TYPE egress_bytes_out_total counter\n");
        for (bucket, n) in self.bytes_out.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            let _ = writeln!(out, "egress_bytes_out_total{{bucket=\"{}\"}} {n}", escape(bucket));
        }
        out.push_str("# HELP egress_connections_open S3 connections open.\n# TYPE egress_connections_open gauge\n");
        let _ = writeln!(out, "egress_connections_open {}", self.connections_open.load(Ordering::Relaxed));
        out.push_str(
            "# HELP egress_connections_refused_total S3 connections closed at accept for being over --max-connections or --max-connections-per-ip.\n",
        );
        out.push_str("# TYPE egress_connections_refused_total counter\n");
        let _ = writeln!(out, "egress_connections_refused_total {}", self.connections_refused.load(Ordering::Relaxed));
        self.ledger_append.render(
            &mut out,
            "egress_ledger_append_seconds",
            "Time for a start record to become durable.",
        );
        self.upstream.render(
            &mut out,
            "egress_upstream_seconds",
            "Time from forwarding a request to the upstream's response head.",
        );
        out
    }
}

/// One byte quota of one principal in its current window, as the quota
/// gauges show it.
#[derive(Debug, Clone, Copy)]
pub struct QuotaGauge<'a> {
    pub principal: &'a str,
    /// The window's name: `hour`, `day` or `month`.
    pub per: &'a str,
    /// The bucket it counts, or `None` for all buckets (an empty label).
    pub bucket: Option<&'a str>,
    /// Bytes allowed per window.
    pub limit: u64,
    /// Bytes sent in the current window, counted against the quota.
    pub used: u64,
    /// Bytes reserved by transfers under way.
    pub reserved: u64,
}

/// Appends `egress_quota_{limit,used,reserved}_bytes` for each quota given,
/// labelled by principal, window and bucket (empty for all buckets).
pub fn render_quotas(out: &mut String, quotas: &[QuotaGauge<'_>]) {
    /// Which figure of a quota a family shows.
    type Figure = fn(&QuotaGauge<'_>) -> u64;
    let families: [(&str, &str, Figure); 3] = [
        ("egress_quota_limit_bytes", "A principal's byte quota per window.", |quota| quota.limit),
        ("egress_quota_used_bytes", "Bytes sent in the current window, counted against the quota.", |quota| quota.used),
        ("egress_quota_reserved_bytes", "Bytes reserved by transfers under way against the quota.", |quota| {
            quota.reserved
        }),
    ];
    for (name, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for quota in quotas {
            let _ = writeln!(
                out,
                "{name}{{principal=\"{}\",per=\"{}\",bucket=\"{}\"}} {}",
                escape(quota.principal),
                escape(quota.per),
                escape(quota.bucket.unwrap_or("")),
                value(quota),
            );
        }
    }
}

/// Escapes a Prometheus label value.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request_finished("GetObject", 200, Some("data"), 100);
        m.request_finished("GetObject", 200, Some("data"), 50);
        m.request_finished("PutObject", 403, Some("we\"ird"), 0);
        m.ledger_append.observe(Duration::from_micros(700));
        let text = m.render();
        assert!(text.contains("egress_requests_total{operation=\"GetObject\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("egress_bytes_out_total{bucket=\"data\"} 150"));
        assert!(text.contains("egress_bytes_out_total{bucket=\"we\\\"ird\"} 0"));
        assert!(text.contains("egress_connections_open 0\n") && text.contains("egress_connections_refused_total 0\n"));
        assert!(text.contains("egress_ledger_append_seconds_bucket{le=\"0.001\"} 1"));
        assert!(text.contains("egress_ledger_append_seconds_bucket{le=\"0.0005\"} 0"));
        assert!(text.contains("egress_ledger_append_seconds_count 1"));
    }

    #[test]
    fn bucket_labels_are_capped() {
        let m = Metrics::default();
        for i in 0..MAX_BUCKET_LABELS + 50 {
            m.request_finished("GetObject", 200, Some(&format!("bucket-{i}")), 1);
        }
        m.request_finished("GetObject", 200, Some("bucket-0"), 1);
        let text = m.render();
        assert_eq!(text.matches("egress_bytes_out_total{").count(), MAX_BUCKET_LABELS + 1);
        assert!(text.contains("egress_bytes_out_total{bucket=\"_other\"} 50"), "{text}");
        assert!(text.contains("egress_bytes_out_total{bucket=\"bucket-0\"} 2"));
    }

    #[test]
    fn renders_quota_gauges() {
        let quotas = [
            QuotaGauge { principal: "carol", per: "day", bucket: None, limit: 10, used: 4, reserved: 1 },
            QuotaGauge { principal: "d\"ave", per: "hour", bucket: Some("data"), limit: 7, used: 0, reserved: 2 },
        ];
        let mut out = String::new();
        render_quotas(&mut out, &quotas);
        assert_eq!(
            out,
            "# HELP egress_quota_limit_bytes A principal's byte quota per window.\n\
             # TYPE egress_quota_limit_bytes gauge\n\
             egress_quota_limit_bytes{principal=\"carol\",per=\"day\",bucket=\"\"} 10\n\
             egress_quota_limit_bytes{principal=\"d\\\"ave\",per=\"hour\",bucket=\"data\"} 7\n\
             # HELP egress_quota_used_bytes Bytes sent in the current window, counted against the quota.\n\
             # TYPE egress_quota_used_bytes gauge\n\
             egress_quota_used_bytes{principal=\"carol\",per=\"day\",bucket=\"\"} 4\n\
             egress_quota_used_bytes{principal=\"d\\\"ave\",per=\"hour\",bucket=\"data\"} 0\n\
             # HELP egress_quota_reserved_bytes Bytes reserved by transfers under way against the quota.\n\
             # TYPE egress_quota_reserved_bytes gauge\n\
             egress_quota_reserved_bytes{principal=\"carol\",per=\"day\",bucket=\"\"} 1\n\
             egress_quota_reserved_bytes{principal=\"d\\\"ave\",per=\"hour\",bucket=\"data\"} 2\n"
        );
    }
}
