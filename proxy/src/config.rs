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
    /// Time a connection has from accept to deliver its first whole
    /// request head (TLS handshake included), and a later head from its
    /// first byte.
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this long.
    pub idle_timeout: Duration,
    /// Connections open at once on the S3 listeners, all sources together;
    /// `None`: derived from the open-file limit ([`default_max_connections`]).
    pub max_connections: Option<usize>,
    /// Connections open at once from one source address (an IPv6 /64);
    /// `None`: half of `max_connections`.
    pub max_connections_per_ip: Option<usize>,
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
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(20),
            max_connections: None,
            max_connections_per_ip: None,
            body_idle_timeout: Duration::from_mins(1),
            upstream_header_timeout: Duration::from_mins(1),
            shutdown_grace: Duration::from_secs(30),
            signed_chunk_buffer_bytes: 256 * 1024 * 1024,
            denied_records_per_ip_per_minute: 120,
        }
    }
}

/// The connection caps in effect: the configured ones, or those derived
/// from the open-file limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionCaps {
    pub total: usize,
    pub per_address: usize,
}

impl Limits {
    /// The caps for a process allowed `open_files` descriptors, serving
    /// with `workers` worker threads.
    #[must_use]
    pub fn connection_caps(&self, open_files: u64, workers: usize) -> ConnectionCaps {
        let total = self.max_connections.unwrap_or_else(|| default_max_connections(open_files, workers)).max(1);
        let per_address = self.max_connections_per_ip.unwrap_or(total / 2).clamp(1, total);
        ConnectionCaps { total, per_address }
    }
}

/// Descriptors kept out of the connection budget: the ledger's segment and
/// checkpoint files, sled's files, the listeners, the admin API and its
/// clients, the reserve descriptor, the embedded store.
const FIXED_DESCRIPTORS: u64 = 256;
/// Idle upstream connections each worker may keep pooled (hyper's pool).
const POOLED_PER_WORKER: u64 = 256;

/// Connections the S3 listeners hold open when `max_connections` is not
/// set: what `open_files` descriptors leave after the fixed ones and the
/// workers' idle upstream pools, at two per connection (each client
/// connection may hold an upstream connection); at least a quarter of the
/// limit, so that a small limit with many workers still serves.
#[must_use]
pub fn default_max_connections(open_files: u64, workers: usize) -> usize {
    let reserved = FIXED_DESCRIPTORS + POOLED_PER_WORKER * workers as u64;
    let derived = (open_files.saturating_sub(reserved) / 2).max(open_files / 4).max(1);
    usize::try_from(derived).unwrap_or(usize::MAX)
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
    /// CA certificates (PEM) trusted for an HTTPS upstream besides the
    /// system's: `--upstream-ca-file`, else `AWS_CA_BUNDLE`.
    pub upstream_ca_file: Option<std::path::PathBuf>,
    /// Fixed upstream credentials instead of the AWS chain (the embedded store).
    pub upstream_credentials: Option<(String, SecretKey)>,
    /// The region this endpoint answers for.
    pub region: String,
    pub virtual_host_domains: Vec<String>,
    /// Peers whose `X-Forwarded-For` names the client (`aws:SourceIp`).
    pub trusted_proxies: Vec<crate::authz::source_ip::Cidr>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_caps_follow_the_open_file_limit_unless_set() {
        // 20,000 descriptors, one worker: 19,488 left, two per connection.
        let limits = Limits::default();
        assert_eq!(limits.connection_caps(20_000, 1), ConnectionCaps { total: 9_744, per_address: 4_872 });
        // A small limit with many workers still serves a quarter of it.
        assert_eq!(limits.connection_caps(1_024, 8).total, 256);
        let set = Limits { max_connections: Some(100), max_connections_per_ip: Some(500), ..Limits::default() };
        assert_eq!(
            set.connection_caps(20_000, 1),
            ConnectionCaps { total: 100, per_address: 100 },
            "per address <= total"
        );
        let per_ip = Limits { max_connections_per_ip: Some(10), ..Limits::default() };
        assert_eq!(per_ip.connection_caps(20_000, 1).per_address, 10);
    }
}
