//! What each subcommand does. Each returns the process exit code, or an
//! error whose message says what was wrong and what to do.

pub mod archive_verify;
pub mod config_check;
pub mod ledger;
pub mod policy;
pub mod principal;
pub mod reconcile;
pub mod serve;

use std::path::Path;

use egress_ledger::{Ledger, LedgerConfig};

/// The origin (log name) a new ledger signs its checkpoints with:
/// `EGRESS_ORIGIN` (serve's `--origin` variable, read by every command, so
/// that a key made by `principal create` before the first `serve` has it),
/// else `egress-proxy@<host name>`.
#[must_use]
pub fn default_origin() -> String {
    if let Some(origin) = std::env::var("EGRESS_ORIGIN").ok().filter(|o| !o.is_empty()) {
        return origin;
    }
    let host = rustix::system::uname().nodename().to_string_lossy().into_owned();
    let host: String = host.chars().filter(|c| c.is_ascii_alphanumeric() || "-._".contains(*c)).collect();
    format!("egress-proxy@{}", if host.is_empty() { "localhost" } else { &host })
}

/// Runs `work` on the ledger in `data_dir`, closing it (durably) whatever
/// `work` answers.
pub fn with_ledger<T>(data_dir: &Path, work: impl FnOnce(&Ledger) -> anyhow::Result<T>) -> anyhow::Result<T> {
    let ledger = open_ledger(data_dir)?;
    let result = work(&ledger);
    ledger.close_blocking()?;
    result
}

/// Opens the ledger in `data_dir` for a short command.
pub fn open_ledger(data_dir: &Path) -> anyhow::Result<Ledger> {
    let (ledger, report) = Ledger::open(&LedgerConfig::new(data_dir, &default_origin()))?;
    if report.cut_bytes > 0 || !report.interrupted.is_empty() {
        tracing::warn!(
            cut_bytes = report.cut_bytes,
            interrupted = report.interrupted.len(),
            "recovered the ledger after an unclean stop"
        );
    }
    Ok(ledger)
}
