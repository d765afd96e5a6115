//! `egress-admin`: the admin REST API of egress-proxy (axum): principals, AWS
//! provisioning of the upstream (buckets, server access logging, a
//! CloudTrail trail, bucket policies), ledger queries and metrics.
//!
//! It depends on `egress-ledger` for the state store and the ledger, and
//! knows nothing of the S3 data path: the data plane only hands it the
//! [`egress_metrics::Metrics`] it counts into, for `/metrics` to render.
//! `docs/ADMIN_API.md` is its contract.

pub mod access;
pub mod auth;
pub mod error;
pub mod openapi;
pub mod provisioning;
pub mod reconciliation;
pub mod routes;
pub mod token;
pub mod usage;

use std::sync::Arc;

use egress_ledger::Ledger;
use egress_metrics::Metrics;

pub use error::ApiError;
pub use token::AdminToken;

/// What every admin route can reach.
#[derive(Debug, Clone)]
pub struct AdminState {
    pub ledger: Ledger,
    pub token: Arc<AdminToken>,
    pub metrics: Arc<Metrics>,
    pub provisioner: Arc<provisioning::Provisioner>,
    /// Compiled grants, shared with the data plane (the simulator
    /// evaluates what the proxy evaluates).
    pub grants: Arc<access::GrantsCache>,
    /// The data plane's usage counters.
    pub usage: Arc<dyn usage::UsageSource>,
    /// Reconciliation runs and their kept reports.
    pub reconciler: Arc<reconciliation::Reconciler>,
    /// The archive shipper's status, when `serve --archive` ships.
    pub archive: Option<Arc<egress_archive::status::ArchiveStatus>>,
}

/// The whole admin API: `/healthz` and `/readyz` open, everything else
/// behind the bearer token.
pub fn router(state: AdminState) -> axum::Router {
    routes::router(state)
}
