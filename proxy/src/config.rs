//! The typed configuration of `egress-proxy serve`, built once at start
//! from its settings ([`settings`]: flags, environment, config file).
//! Nothing deeper reads flags or the environment.

pub mod settings;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use egress_ledger::LedgerConfig;
use egress_ledger::principals::SecretKey;
use http::Uri;

use crate::upstream::Addressing;
use settings::ServeSettings;

/// Explicit limits of the S3 listener and its connections (each from a
/// setting of the same name, see `docs/CONFIGURATION.md`).
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests processed at once, all connections together; more wait.
    pub max_concurrent_requests: usize,
    /// Largest request head (HTTP/1 buffer, HTTP/2 header list); at least
    /// 8 KiB, hyper's least HTTP/1 buffer.
    pub max_header_bytes: usize,
    /// Requests one HTTP/2 connection may have open at once.
    pub http2_max_concurrent_streams: u32,
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
    /// Largest aws-chunked chunk, signed or not.
    pub max_aws_chunk_bytes: usize,
    /// Unauthenticated requests refused from one source address that are
    /// recorded one record each per minute; the excess is counted into a
    /// `denied_summary` note per address and minute.
    pub denied_records_per_ip_per_minute: u32,
}

/// The connections to the upstream: how they are opened and pooled. Each
/// worker thread has a pool of its own.
#[derive(Debug, Clone)]
pub struct UpstreamLimits {
    /// Time a TCP connection to the upstream may take to open.
    pub connect_timeout: Duration,
    /// Silence on a connection before TCP keepalive probes; `None`: none.
    pub tcp_keepalive: Option<Duration>,
    /// Idle connections kept per upstream host (per worker).
    pub pool_max_idle_per_host: usize,
    /// An idle pooled connection is closed after this long.
    pub pool_idle_timeout: Duration,
    /// Most bytes a connection's read buffer grows to; at least 8 KiB,
    /// hyper's least.
    pub read_buffer_bytes: usize,
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
    /// with `workers` worker threads that each keep up to `pooled_per_worker`
    /// idle upstream connections.
    #[must_use]
    pub fn connection_caps(&self, open_files: u64, workers: usize, pooled_per_worker: usize) -> ConnectionCaps {
        let total = self
            .max_connections
            .unwrap_or_else(|| default_max_connections(open_files, workers, pooled_per_worker))
            .max(1);
        let per_address = self.max_connections_per_ip.unwrap_or(total / 2).clamp(1, total);
        ConnectionCaps { total, per_address }
    }
}

/// Descriptors kept out of the connection budget: the ledger's segment and
/// checkpoint files, sled's files, the listeners, the admin API and its
/// clients, the reserve descriptor, the embedded store. An estimate of what
/// the process holds besides connections, not a limit anyone sets.
const FIXED_DESCRIPTORS: u64 = 256;

/// Connections the S3 listeners hold open when `max_connections` is not
/// set: what `open_files` descriptors leave after the fixed ones and the
/// workers' idle upstream pools, at two per connection (each client
/// connection may hold an upstream connection); at least a quarter of the
/// limit, so that a small limit with many workers still serves.
#[must_use]
pub fn default_max_connections(open_files: u64, workers: usize, pooled_per_worker: usize) -> usize {
    let pooled = (pooled_per_worker as u64).saturating_mul(workers as u64);
    let reserved = FIXED_DESCRIPTORS.saturating_add(pooled);
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
    pub upstream_limits: UpstreamLimits,
    /// Name of the ledger (its checkpoint origin), used when the key is made.
    pub origin: String,
    /// `--origin` was given: the key's origin must be this one.
    pub origin_given: bool,
    /// A ledger segment is sealed once it holds this many bytes.
    pub segment_max_bytes: u64,
    /// A checkpoint follows this long after the last one, if anything was appended.
    pub checkpoint_interval: Duration,
    /// Where the ledger is shipped, if anywhere.
    pub archive: Option<ArchiveConfig>,
    pub admin: AdminConfig,
}

/// `--archive` and its settings.
#[derive(Debug, Clone)]
pub struct ArchiveConfig {
    pub url: egress_archive::location::ArchiveUrl,
    pub region: String,
    /// Object Lock retention asked for on each upload; `None`: the bucket's default.
    pub retention: Option<Duration>,
    pub interval: Duration,
    pub max_lag: Duration,
    pub local_retention: Option<Duration>,
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
    /// Connections open at once on the admin listener.
    pub max_connections: usize,
    /// How often `serve` reconciles on its own (`None`: only when asked).
    pub reconcile_every: Option<Duration>,
    /// How long each log source may take to deliver a record.
    pub delivery: egress_reconcile::report::DeliveryWindows,
}

/// A duration setting (`15m`, `24h`) of at least `min`.
fn duration_setting(name: &str, text: &str, min: Duration) -> anyhow::Result<Duration> {
    let d = humantime::parse_duration(text)
        .map_err(|e| anyhow::anyhow!("{name} {text:?} is not a duration such as 15m or 24h ({e})"))?;
    anyhow::ensure!(d >= min, "{name} {text:?} must be at least {}", humantime::format_duration(min));
    Ok(d)
}

/// The archive's settings; `local_retention` without an archive is refused.
fn archive_config(s: &ServeSettings) -> anyhow::Result<Option<ArchiveConfig>> {
    let Some(url) = &s.archive else {
        anyhow::ensure!(
            s.local_retention.is_none(),
            "local_retention needs an archive: segments are removed locally only once shipped (--archive)"
        );
        return Ok(None);
    };
    let url = url.parse::<egress_archive::location::ArchiveUrl>().map_err(|e| anyhow::anyhow!("{e}"))?;
    let interval =
        duration_setting("archive_interval", s.archive_interval.as_deref().unwrap_or("15s"), Duration::from_secs(1))?;
    anyhow::ensure!(
        interval <= Duration::from_mins(1),
        "archive_interval must be at most 60s: at most a minute of history may be only on this host"
    );
    let days = s.archive_retention_days.unwrap_or(365);
    anyhow::ensure!(days <= 36_500, "archive_retention_days must be at most 36500");
    Ok(Some(ArchiveConfig {
        url,
        region: s.archive_region.clone().or_else(|| s.region.clone()).unwrap_or_else(|| "us-east-1".to_owned()),
        retention: (days > 0).then(|| Duration::from_secs(u64::from(days) * 86_400)),
        interval,
        max_lag: duration_setting(
            "archive_max_lag",
            s.archive_max_lag.as_deref().unwrap_or("5m"),
            Duration::from_secs(1),
        )?,
        local_retention: s
            .local_retention
            .as_deref()
            .map(|text| duration_setting("local_retention", text, Duration::ZERO))
            .transpose()?,
    }))
}

impl ServeConfig {
    /// The configuration from settings already layered
    /// ([`ServeSettings::layered`]); a setting none of them has takes its
    /// default. Fails, saying which setting and why, on a value no server
    /// can run with.
    pub fn from_settings(settings: ServeSettings) -> anyhow::Result<ServeConfig> {
        let s = settings.or(ServeSettings::defaults());
        if let Some(origin) = &s.origin {
            origin.parse::<egress_archive::location::Origin>().map_err(|e| anyhow::anyhow!("origin: {e}"))?;
        }
        let archive = archive_config(&s)?;
        // No upstream is not an error: the embedded dev store stands in.
        let upstream = match s.upstream {
            None => UpstreamTarget::Embedded,
            Some(text) => {
                let uri: Uri = text.parse().with_context(|| format!("upstream {text:?} is not a URL"))?;
                anyhow::ensure!(
                    matches!(uri.scheme_str(), Some("http" | "https")) && uri.host().is_some(),
                    "upstream {text:?} must be an http:// or https:// URL with a host"
                );
                UpstreamTarget::Endpoint(uri)
            }
        };
        let tls = match (s.tls_listen, s.tls_cert, s.tls_key) {
            (Some(listen), Some(cert), Some(key)) => Some(TlsConfig { listen, cert, key }),
            (None, None, None) => None,
            _ => anyhow::bail!("TLS needs all three of tls_listen, tls_cert and tls_key"),
        };
        let region = setting!(s.region)?;
        let trusted_proxies = s
            .trusted_proxies
            .unwrap_or_default()
            .iter()
            .map(|c| c.parse::<crate::authz::source_ip::Cidr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
        let worker_threads = s.worker_threads.map(usize::from);
        anyhow::ensure!(worker_threads != Some(0), "worker_threads must be at least 1");
        // The flag's parser bounds it; a file's value is checked here.
        anyhow::ensure!(worker_threads.is_none_or(|n| n <= 1024), "worker_threads must be at most 1024");
        // tokio's semaphore, which admits them, panics above this.
        anyhow::ensure!(
            s.max_concurrent_requests.is_none_or(|n| n <= tokio::sync::Semaphore::MAX_PERMITS),
            "max_concurrent_requests must be at most {}",
            tokio::sync::Semaphore::MAX_PERMITS
        );
        anyhow::ensure!(s.max_connections != Some(0), "max_connections must be at least 1");
        anyhow::ensure!(s.max_connections_per_ip != Some(0), "max_connections_per_ip must be at least 1");
        let keepalive = setting!(s.upstream_tcp_keepalive_secs)?;
        Ok(ServeConfig {
            listen: setting!(s.listen)?,
            data_dir: setting!(s.data_dir)?,
            upstream,
            upstream_region: s.upstream_region.unwrap_or_else(|| region.clone()),
            upstream_addressing: setting!(s.upstream_addressing)?,
            // The AWS SDKs' variable, when neither flag nor file names one.
            upstream_ca_file: s
                .upstream_ca_file
                .or_else(|| std::env::var_os("AWS_CA_BUNDLE").filter(|v| !v.is_empty()).map(PathBuf::from)),
            upstream_credentials: None,
            worker_threads,
            region,
            virtual_host_domains: s
                .virtual_host_domains
                .unwrap_or_default()
                .into_iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            trusted_proxies,
            tls,
            limits: Limits {
                max_concurrent_requests: setting!(s.max_concurrent_requests)?.max(1),
                max_header_bytes: setting!(s.max_request_head_kib >= 8)?.saturating_mul(1024),
                http2_max_concurrent_streams: setting!(s.http2_max_concurrent_streams >= 1)?,
                header_read_timeout: timeout(setting!(s.header_read_timeout_secs)?),
                idle_timeout: timeout(setting!(s.idle_timeout_secs)?),
                max_connections: s.max_connections,
                max_connections_per_ip: s.max_connections_per_ip,
                body_idle_timeout: timeout(setting!(s.body_idle_timeout_secs)?),
                upstream_header_timeout: timeout(setting!(s.upstream_header_timeout_secs)?),
                shutdown_grace: Duration::from_secs(setting!(s.shutdown_grace_secs)?),
                signed_chunk_buffer_bytes: setting!(s.signed_chunk_buffer_mib >= 1)?.saturating_mul(1024 * 1024),
                max_aws_chunk_bytes: setting!(s.max_aws_chunk_mib >= 1)?.saturating_mul(1024 * 1024),
                denied_records_per_ip_per_minute: setting!(s.denied_records_per_ip)?,
            },
            upstream_limits: UpstreamLimits {
                connect_timeout: Duration::from_secs(setting!(s.upstream_connect_timeout_secs >= 1)?),
                tcp_keepalive: (keepalive > 0).then(|| Duration::from_secs(keepalive)),
                pool_max_idle_per_host: setting!(s.upstream_pool_max_idle_per_host)?,
                pool_idle_timeout: Duration::from_secs(setting!(s.upstream_pool_idle_timeout_secs >= 1)?),
                read_buffer_bytes: setting!(s.upstream_read_buffer_kib >= 8)?.saturating_mul(1024),
            },
            origin_given: s.origin.is_some(),
            segment_max_bytes: setting!(s.ledger_segment_kib >= 4)?.saturating_mul(1024),
            checkpoint_interval: duration_setting(
                "checkpoint_interval",
                s.checkpoint_interval.as_deref().unwrap_or("60s"),
                Duration::from_secs(1),
            )?,
            origin: s.origin.clone().unwrap_or_else(crate::commands::default_origin),
            archive,
            admin: AdminConfig {
                listen: setting!(s.admin_listen)?,
                token_file: s.admin_token_file,
                token_env: std::env::var("EGRESS_ADMIN_TOKEN").ok().map(SecretKey::new),
                aws_endpoint: s.aws_endpoint,
                max_connections: setting!(s.admin_max_connections >= 1)?,
                reconcile_every: s
                    .reconcile_every
                    .as_deref()
                    .map(|every| duration_setting("reconcile_every", every, Duration::from_secs(1)))
                    .transpose()?,
                delivery: egress_reconcile::report::DeliveryWindows {
                    access_log_secs: duration_setting(
                        "access_log_delivery",
                        s.access_log_delivery.as_deref().unwrap_or("24h"),
                        Duration::ZERO,
                    )?
                    .as_secs(),
                    cloudtrail_secs: duration_setting(
                        "cloudtrail_delivery",
                        s.cloudtrail_delivery.as_deref().unwrap_or("1h"),
                        Duration::ZERO,
                    )?
                    .as_secs(),
                },
            },
        })
    }

    #[must_use]
    pub fn ledger_config(&self) -> LedgerConfig {
        let mut config = LedgerConfig::new(&self.data_dir, &self.origin);
        config.writer.segment_max_bytes = self.segment_max_bytes;
        config.checkpoint_interval = self.checkpoint_interval;
        config
    }

    /// The worker threads `serve` starts.
    #[must_use]
    pub fn worker_count(&self) -> usize {
        self.worker_threads.unwrap_or_else(default_worker_threads)
    }

    /// The connection caps `serve` runs with when allowed `open_files` descriptors.
    #[must_use]
    pub fn connection_caps(&self, open_files: u64) -> ConnectionCaps {
        self.limits.connection_caps(open_files, self.worker_count(), self.upstream_limits.pool_max_idle_per_host)
    }
}

/// A setting's value, or why there is none to run with, naming it by its
/// key: `setting!(s.key)` for one that has a default (so is set once
/// layered over the defaults), `setting!(s.key >= least)` for one that must
/// also be at least `least`.
macro_rules! setting {
    ($settings:ident . $key:ident) => {
        $settings.$key.with_context(|| format!("{} has no value and no default", stringify!($key)))
    };
    ($settings:ident . $key:ident >= $least:expr) => {
        setting!($settings.$key).and_then(|value| {
            anyhow::ensure!(value >= $least, "{} must be at least {}", stringify!($key), $least);
            Ok(value)
        })
    };
}
use setting;

/// A timeout in whole seconds, at least one: a zero would end every
/// connection or request at once, and has always been taken as one.
fn timeout(secs: u64) -> Duration {
    Duration::from_secs(secs.max(1))
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

    fn defaults() -> ServeConfig {
        ServeConfig::from_settings(ServeSettings::default()).unwrap()
    }

    #[test]
    fn every_setting_has_a_usable_default() {
        let config = defaults();
        let (limits, upstream) = (&config.limits, &config.upstream_limits);
        assert_eq!((limits.max_header_bytes, limits.http2_max_concurrent_streams), (64 * 1024, 256));
        assert_eq!((limits.body_idle_timeout, limits.signed_chunk_buffer_bytes), (Duration::from_mins(1), 256 << 20));
        assert_eq!(
            (upstream.connect_timeout, upstream.tcp_keepalive),
            (Duration::from_secs(10), Some(Duration::from_mins(1)))
        );
        assert_eq!((upstream.pool_max_idle_per_host, upstream.pool_idle_timeout), (256, Duration::from_secs(30)));
        assert_eq!((upstream.read_buffer_bytes, config.admin.max_connections), (128 * 1024, 256));
        assert_eq!(
            limits.max_aws_chunk_bytes,
            crate::auth::chunked::DEFAULT_MAX_CHUNK_SIZE,
            "the decoder's own default"
        );
    }

    #[test]
    fn values_no_server_can_run_with_are_refused_by_name() {
        for (text, message) in [
            ("max_request_head_kib = 4", "max_request_head_kib must be at least 8"),
            ("upstream_read_buffer_kib = 7", "upstream_read_buffer_kib must be at least 8"),
            ("http2_max_concurrent_streams = 0", "http2_max_concurrent_streams must be at least 1"),
            ("upstream_connect_timeout_secs = 0", "upstream_connect_timeout_secs must be at least 1"),
            ("admin_max_connections = 0", "admin_max_connections must be at least 1"),
            ("max_aws_chunk_mib = 0", "max_aws_chunk_mib must be at least 1"),
            ("worker_threads = 2000", "worker_threads must be at most 1024"),
            ("max_concurrent_requests = 18446744073709551615", "max_concurrent_requests must be at most"),
        ] {
            let settings: ServeSettings = toml::from_str(text).unwrap();
            let err = format!("{:#}", ServeConfig::from_settings(settings).unwrap_err());
            assert!(err.contains(message), "{text}: {err}");
        }
        let off: ServeSettings = toml::from_str("upstream_tcp_keepalive_secs = 0").unwrap();
        assert_eq!(ServeConfig::from_settings(off).unwrap().upstream_limits.tcp_keepalive, None);
    }

    #[test]
    fn connection_caps_follow_the_open_file_limit_unless_set() {
        // 20,000 descriptors, one worker: 19,488 left, two per connection.
        let limits = defaults().limits;
        assert_eq!(limits.connection_caps(20_000, 1, 256), ConnectionCaps { total: 9_744, per_address: 4_872 });
        // A small limit with many workers still serves a quarter of it.
        assert_eq!(limits.connection_caps(1_024, 8, 256).total, 256);
        // Smaller upstream pools leave more for connections.
        assert_eq!(limits.connection_caps(20_000, 1, 0).total, 9_872);
        let set = Limits { max_connections: Some(100), max_connections_per_ip: Some(500), ..limits.clone() };
        assert_eq!(
            set.connection_caps(20_000, 1, 256),
            ConnectionCaps { total: 100, per_address: 100 },
            "per address <= total"
        );
        let per_ip = Limits { max_connections_per_ip: Some(10), ..limits };
        assert_eq!(per_ip.connection_caps(20_000, 1, 256).per_address, 10);
    }
}
