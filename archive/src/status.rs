//! What the shipper has done and how far behind it is, shared with
//! `/metrics`, `/healthz` and `GET /v1/archive`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The shipper's state as the admin API shows it.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct ArchiveSnapshot {
    /// `s3://BUCKET/PREFIX/ORIGIN/`.
    pub archive: String,
    pub origin: String,
    /// Every line up to this seq is in the archive (read back).
    pub shipped_seq: Option<u64>,
    /// The local ledger's last line when last looked at.
    pub local_head_seq: Option<u64>,
    /// Lines written locally and not yet in the archive.
    pub lag_records: u64,
    /// Seconds since the oldest line not yet in the archive could have been
    /// written (0 when nothing is behind).
    pub lag_seconds: f64,
    /// The lag crossed `--archive-max-lag`.
    pub lagging: bool,
    pub max_lag_seconds: f64,
    /// Uploads since start, read back.
    pub segments_shipped: u64,
    pub parts_shipped: u64,
    pub checkpoints_shipped: u64,
    pub events_files_shipped: u64,
    pub bytes_shipped: u64,
    /// Local segments removed after shipping (`--local-retention`).
    pub segments_pruned: u64,
    /// When a round last ended without error (RFC 3339).
    pub last_success: Option<String>,
    pub last_error: Option<String>,
    pub failures_in_a_row: u64,
    /// The archive disagrees with the local ledger (a local rollback or
    /// fork): shipping stopped.
    pub diverged: Option<String>,
}

/// The shared, updated status.
#[derive(Debug)]
pub struct ArchiveStatus {
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    snapshot: ArchiveSnapshot,
    /// When the shipper last had everything up to the head it saw.
    caught_up_at: Instant,
    max_lag: Duration,
}

impl ArchiveStatus {
    #[must_use]
    pub fn new(archive: String, origin: String, max_lag: Duration) -> ArchiveStatus {
        let snapshot =
            ArchiveSnapshot { archive, origin, max_lag_seconds: max_lag.as_secs_f64(), ..ArchiveSnapshot::default() };
        ArchiveStatus { inner: Mutex::new(Inner { snapshot, caught_up_at: Instant::now(), max_lag }) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut inner)
    }

    /// The status now, lag computed against `local_head` (the writer's
    /// last seq, when the caller knows a fresher one than the shipper).
    #[must_use]
    pub fn snapshot(&self, local_head: Option<u64>) -> ArchiveSnapshot {
        self.with(|inner| {
            let mut s = inner.snapshot.clone();
            if local_head > s.local_head_seq {
                s.local_head_seq = local_head;
            }
            let shipped_next = s.shipped_seq.map_or(0, |seq| seq + 1);
            s.lag_records = s.local_head_seq.map_or(0, |head| (head + 1).saturating_sub(shipped_next));
            s.lag_seconds = if s.lag_records == 0 { 0.0 } else { inner.caught_up_at.elapsed().as_secs_f64() };
            s.lagging = s.lag_seconds > inner.max_lag.as_secs_f64();
            s
        })
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut ArchiveSnapshot)) {
        self.with(|inner| f(&mut inner.snapshot));
    }

    /// A round ended with everything up to `shipped` (the head it saw at
    /// `started`) in the archive.
    pub(crate) fn caught_up(&self, started: Instant) {
        self.with(|inner| {
            inner.caught_up_at = started;
            inner.snapshot.last_success = Some(egress_ledger::access::timestamp());
            inner.snapshot.last_error = None;
            inner.snapshot.failures_in_a_row = 0;
        });
    }

    pub(crate) fn failed(&self, error: String) {
        self.with(|inner| {
            inner.snapshot.last_error = Some(error);
            inner.snapshot.failures_in_a_row += 1;
        });
    }
}

impl ArchiveSnapshot {
    /// The status as Prometheus text.
    #[must_use]
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, value: f64| {
            let _ = write!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n");
        };
        #[allow(clippy::cast_precision_loss, reason = "metrics are floats; seqs stay exact far beyond any ledger")]
        {
            gauge(
                "egress_archive_shipped_seq",
                "Every ledger line up to this seq is in the archive (-1: none yet).",
                "gauge",
                self.shipped_seq.map_or(-1.0, |s| s as f64),
            );
            gauge(
                "egress_archive_lag_records",
                "Ledger lines not yet in the archive.",
                "gauge",
                self.lag_records as f64,
            );
            gauge(
                "egress_archive_lag_seconds",
                "Age of the oldest ledger line not yet in the archive.",
                "gauge",
                self.lag_seconds,
            );
            gauge(
                "egress_archive_lagging",
                "1 while the lag is beyond --archive-max-lag.",
                "gauge",
                f64::from(u8::from(self.lagging)),
            );
            gauge(
                "egress_archive_diverged",
                "1 if the archive and the local ledger disagree (shipping stopped).",
                "gauge",
                f64::from(u8::from(self.diverged.is_some())),
            );
            gauge(
                "egress_archive_failures_in_a_row",
                "Shipping rounds failed since the last that succeeded.",
                "gauge",
                self.failures_in_a_row as f64,
            );
            gauge(
                "egress_archive_bytes_shipped_total",
                "Bytes uploaded to the archive since start.",
                "counter",
                self.bytes_shipped as f64,
            );
            gauge(
                "egress_archive_segments_pruned_total",
                "Local segments removed after shipping since start.",
                "counter",
                self.segments_pruned as f64,
            );
        }
        let _ =
            writeln!(out, "# HELP egress_archive_uploads_total Objects uploaded and read back since start, by kind.");
        let _ = writeln!(out, "# TYPE egress_archive_uploads_total counter");
        for (kind, n) in [
            ("segment", self.segments_shipped),
            ("part", self.parts_shipped),
            ("checkpoint", self.checkpoints_shipped),
            ("events", self.events_files_shipped),
        ] {
            let _ = writeln!(out, "egress_archive_uploads_total{{kind=\"{kind}\"}} {n}");
        }
        out
    }
}
