//! The typed configuration of `egress-proxy serve`, built once at start
//! from the command line. Nothing deeper reads flags or the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use egress_ledger::LedgerConfig;
use egress_ledger::principals::SecretKey;
use http::Uri;

use crate::upstream::Addressing;

/// Explicit limits of the S3 listener.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests processed at once, all connections together; more wait.
    pub max_concurrent_requests: usize,
    /// Largest request head (HTTP/1 buffer, HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Time for a whole request head (and a TLS handshake) to arrive.
    pub header_read_timeout: Duration,
    /// A request or response body that moves nothing for this long is cut.
    pub body_idle_timeout: Duration,
    /// Time the upstream has to start answering a request without a body.
    pub upstream_header_timeout: Duration,
    /// How long shutdown waits for requests in flight.
    pub shutdown_grace: Duration,
    /// Bytes of signed aws-chunked upload chunks held for signature
    /// verification, all uploads together; beyond it an upload waits for
    /// room up to the body idle timeout, then gets 503 `SlowDown`.
    pub signed_chunk_buffer_bytes: u64,
    /// Unauthenticated requests refused from one source address that are
    /// recorded one record each per minute; the excess is counted into a
    /// `denied_summary` note per address and minute.
    pub denied_records_per_ip_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_concurrent_requests: 4096,
            max_header_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(30),
            body_idle_timeout: Duration::from_mins(1),
            upstream_header_timeout: Duration::from_mins(1),
            shutdown_grace: Duration::from_secs(30),
            signed_chunk_buffer_bytes: 256 * 1024 * 1024,
            denied_records_per_ip_per_minute: 120,
        }
    }
}

/// TLS listener settings.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub upstream: UpstreamTarget,
    pub upstream_region: String,
    pub upstream_addressing: Addressing,
    /// Fixed upstream credentials instead of the AWS chain (the embedded store).
    pub upstream_credentials: Option<(String, SecretKey)>,
    /// The region this endpoint answers for.
    pub region: String,
    pub virtual_host_domains: Vec<String>,
    pub tls: Option<TlsConfig>,
    /// Threads serving S3 connections; `None`: [`default_worker_threads`].
    pub worker_threads: Option<usize>,
    pub limits: Limits,
    /// Name of the ledger (its checkpoint origin), used when the key is made.
    pub origin: String,
    pub admin: AdminConfig,
}

/// Where the proxy forwards requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamTarget {
    /// An S3 endpoint (`--upstream`).
    Endpoint(Uri),
    /// None configured: the embedded dev store under `<data-dir>/objects`,
    /// started with the server and reached through the same client, signer
    /// and pipeline as an endpoint (see [`crate::embedded`]).
    Embedded,
}

impl std::fmt::Display for UpstreamTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpstreamTarget::Endpoint(uri) => uri.fmt(f),
            UpstreamTarget::Embedded => f.write_str("embedded dev store (<data-dir>/objects)"),
        }
    }
}

/// The admin API listener.
#[derive(Debug, Clone)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    pub token_file: Option<PathBuf>,
    /// The token from `EGRESS_ADMIN_TOKEN`, read at the edge.
    pub token_env: Option<SecretKey>,
    pub aws_endpoint: Option<String>,
}

impl ServeConfig {
    #[must_use]
    pub fn ledger_config(&self) -> LedgerConfig {
        LedgerConfig::new(&self.data_dir, &self.origin)
    }
}

/// Worker threads when none are configured: one per CPU but one, which is
/// left to the ledger's writer and the other threads (at least one).
#[must_use]
pub fn default_worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).max(1))
}
