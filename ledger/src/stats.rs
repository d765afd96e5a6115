//! Counters of the writer, for `/metrics`: how many lines, how many
//! fsyncs, and how large the group commits are.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Upper bounds of the batch-size histogram (lines per commit).
pub const BATCH_BUCKETS: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 8192];

/// Live counters, updated by the writer thread.
#[derive(Debug, Default)]
pub struct LiveStats {
    lines: AtomicU64,
    fsyncs: AtomicU64,
    batches: [AtomicU64; 13],
    batch_count: AtomicU64,
    batch_sum: AtomicU64,
    write_failures: AtomicU64,
    heals: AtomicU64,
    /// Set while appends are refused after a write failure.
    unwritable: AtomicBool,
}

impl LiveStats {
    pub(crate) fn write_failed(&self) {
        self.write_failures.fetch_add(1, Ordering::Relaxed);
        self.unwritable.store(true, Ordering::Relaxed);
    }

    pub(crate) fn healed(&self) {
        self.heals.fetch_add(1, Ordering::Relaxed);
        self.unwritable.store(false, Ordering::Relaxed);
    }

    pub(crate) fn commit(&self, lines: u64, synced: bool) {
        self.lines.fetch_add(lines, Ordering::Relaxed);
        if synced {
            self.fsyncs.fetch_add(1, Ordering::Relaxed);
        }
        for (bound, count) in BATCH_BUCKETS.iter().zip(&self.batches) {
            if lines <= *bound {
                count.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.batch_count.fetch_add(1, Ordering::Relaxed);
        self.batch_sum.fetch_add(lines, Ordering::Relaxed);
    }

    pub(crate) fn fsync(&self) {
        self.fsyncs.fetch_add(1, Ordering::Relaxed);
    }

    /// Whether appends are accepted (false from a write failure to its heal).
    pub(crate) fn writable(&self) -> bool {
        !self.unwritable.load(Ordering::Relaxed)
    }

    /// A consistent-enough copy.
    #[must_use]
    pub fn snapshot(&self) -> LedgerStats {
        LedgerStats {
            lines: self.lines.load(Ordering::Relaxed),
            fsyncs: self.fsyncs.load(Ordering::Relaxed),
            batch_buckets: self.batches.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            batch_count: self.batch_count.load(Ordering::Relaxed),
            batch_sum: self.batch_sum.load(Ordering::Relaxed),
            write_failures: self.write_failures.load(Ordering::Relaxed),
            heals: self.heals.load(Ordering::Relaxed),
            writable: self.writable(),
        }
    }
}

/// A copy of the writer's counters since the ledger was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerStats {
    pub lines: u64,
    pub fsyncs: u64,
    /// Cumulative counts per [`BATCH_BUCKETS`] bound.
    pub batch_buckets: Vec<u64>,
    pub batch_count: u64,
    pub batch_sum: u64,
    /// Commits or fsyncs that failed (each poisons the writer until it heals).
    pub write_failures: u64,
    /// Times the writer accepted appends again after failures.
    pub heals: u64,
    /// Whether appends are accepted now.
    pub writable: bool,
}

impl LedgerStats {
    /// Appends the Prometheus text exposition of these counters.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP egress_ledger_batch_lines Lines per group commit.");
        let _ = writeln!(out, "# TYPE egress_ledger_batch_lines histogram");
        for (bound, count) in BATCH_BUCKETS.iter().zip(self.batch_buckets.iter().chain(std::iter::repeat(&0))) {
            let _ = writeln!(out, "egress_ledger_batch_lines_bucket{{le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "egress_ledger_batch_lines_bucket{{le=\"+Inf\"}} {}", self.batch_count);
        let _ = writeln!(out, "egress_ledger_batch_lines_sum {}", self.batch_sum);
        let _ = writeln!(out, "egress_ledger_batch_lines_count {}", self.batch_count);
        single(out, "egress_ledger_lines_total", "counter", "Lines appended to the ledger since start.", self.lines);
        single(
            out,
            "egress_ledger_fsyncs_total",
            "counter",
            "fdatasync calls of the ledger writer since start.",
            self.fsyncs,
        );
        single(
            out,
            "egress_ledger_writable",
            "gauge",
            "1 while the ledger accepts appends, 0 after a write failure until it heals.",
            u64::from(self.writable),
        );
        single(
            out,
            "egress_ledger_write_failures_total",
            "counter",
            "Ledger writes or fsyncs that failed since start.",
            self.write_failures,
        );
        single(
            out,
            "egress_ledger_heals_total",
            "counter",
            "Times the ledger resumed appending after write failures.",
            self.heals,
        );
    }
}

/// One metric with a single value, with its HELP and TYPE lines.
fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}");
}
