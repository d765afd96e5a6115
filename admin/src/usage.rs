//! What a principal has used of its limits. The data plane keeps the
//! counters; it hands the admin API a [`UsageSource`] to read them, as it
//! hands it the [`egress_metrics::Metrics`] it counts into.

use egress_ledger::access::{Limits, Window};
use serde::Serialize;
use utoipa::ToSchema;

/// A principal's usage on this node.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Usage {
    pub principal: String,
    pub quotas: Vec<QuotaUsage>,
    /// The bandwidth cap, if any (bytes per second).
    pub bandwidth_bytes_per_second: Option<u64>,
    /// The request-rate cap, if any.
    pub requests_per_second: Option<u32>,
}

/// One quota in its current window.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QuotaUsage {
    /// The quota: at most `bytes` per `per` (UTC calendar window).
    pub bytes: u64,
    #[schema(value_type = String)]
    pub per: Window,
    /// The bucket it counts, or null for all buckets.
    pub bucket: Option<String>,
    /// RFC 3339 start (inclusive) and end (exclusive) of the window.
    pub window_start: String,
    pub window_end: String,
    /// Bytes sent in the window by finished transfers.
    pub used: u64,
    /// Bytes reserved by transfers under way.
    pub reserved: u64,
    /// What is left: `bytes - used - reserved`, at least 0.
    pub remaining: u64,
}

/// Reads the usage counters of the data plane.
pub trait UsageSource: Send + Sync + std::fmt::Debug {
    fn usage(&self, principal: &str, limits: &Limits) -> Usage;
}

/// The usage of an admin API that runs without a data plane (its own
/// tests, tools): nothing is metered here, so every quota shows nothing
/// used.
#[derive(Debug, Default)]
pub struct NoDataPlane;

impl UsageSource for NoDataPlane {
    fn usage(&self, principal: &str, limits: &Limits) -> Usage {
        Usage {
            principal: principal.to_owned(),
            quotas: Vec::new(),
            bandwidth_bytes_per_second: limits.bandwidth_bytes_per_second,
            requests_per_second: limits.requests_per_second,
        }
    }
}
