//! `egress-proxy serve`: flags, environment and config file into one
//! [`ServeConfig`], then the server.
//!
//! Precedence, per setting: a flag, then its `EGRESS_*` variable (clap reads
//! both), then the TOML file, then the default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::ArgMatches;
use clap::parser::ValueSource;
use http::Uri;
use serde::Deserialize;

use super::default_origin;
use crate::cli::ServeArgs;
use crate::config::{AdminConfig, Limits, ServeConfig, TlsConfig, UpstreamTarget};
use crate::upstream::Addressing;
use egress_ledger::principals::SecretKey;

/// The config file used when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "egress-proxy.toml";

/// The TOML file: the same settings as the flags, by the same names with
/// `_` for `-`. Unknown keys are an error (a typo must not pass silently).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<SocketAddr>,
    pub data_dir: Option<PathBuf>,
    pub upstream: Option<String>,
    pub upstream_region: Option<String>,
    pub upstream_addressing: Option<Addressing>,
    pub upstream_ca_file: Option<PathBuf>,
    pub region: Option<String>,
    pub virtual_host_domains: Option<Vec<String>>,
    pub trusted_proxies: Option<Vec<String>>,
    pub tls_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub admin_listen: Option<SocketAddr>,
    pub admin_token_file: Option<PathBuf>,
    pub aws_endpoint: Option<String>,
    pub max_concurrent_requests: Option<usize>,
    pub worker_threads: Option<u16>,
    pub header_read_timeout_secs: Option<u64>,
    pub idle_timeout_secs: Option<u64>,
    pub max_connections: Option<usize>,
    pub max_connections_per_ip: Option<usize>,
    pub body_idle_timeout_secs: Option<u64>,
    pub upstream_header_timeout_secs: Option<u64>,
    pub shutdown_grace_secs: Option<u64>,
    pub signed_chunk_buffer_mib: Option<u64>,
    pub denied_records_per_ip: Option<u32>,
}

impl FileConfig {
    /// Reads and checks a config file.
    pub fn load(path: &Path) -> anyhow::Result<FileConfig> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("config file {} is not valid: {}", path.display(), toml_error(&text, &e)))
    }
}

/// A TOML error as `line N: what`, without the excerpt of the file that
/// toml shows by default: that excerpt is the offending line, and a secret
/// pasted into the file by mistake (`aws_secret_access_key = "…"`, an
/// unknown key) would be echoed into the log.
#[must_use]
pub fn toml_error(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            format!("line {}: {}", before.matches('\n').count() + 1, error.message())
        }
        None => error.message().to_owned(),
    }
}

/// Builds the typed configuration. `matches` are the `serve` subcommand's,
/// to tell a value given on the command line from a default.
pub fn config(args: ServeArgs, matches: &ArgMatches) -> anyhow::Result<ServeConfig> {
    let file = match config_file_path(&args) {
        Some(path) => FileConfig::load(&path)?,
        None => FileConfig::default(),
    };
    config_with_file(args, matches, file)
}

/// The config file `serve` reads with these arguments, if any.
#[must_use]
pub fn config_file_path(args: &ServeArgs) -> Option<PathBuf> {
    args.config.clone().or_else(|| {
        let default = PathBuf::from(DEFAULT_CONFIG_FILE);
        default.exists().then_some(default)
    })
}

/// [`config`] with the file already read (`config check` reads it leniently,
/// to report every problem in it rather than the first).
pub fn config_with_file(args: ServeArgs, matches: &ArgMatches, file: FileConfig) -> anyhow::Result<ServeConfig> {
    // True when the user set it (flag or environment), not a clap default.
    let given = |id: &str| matches.value_source(id).is_some_and(|s| s != ValueSource::DefaultValue);
    macro_rules! pick {
        ($id:literal, $cli:expr, $file:expr) => {
            match $file {
                Some(value) if !given($id) => value,
                _ => $cli,
            }
        };
    }
    // A timeout in whole seconds, at least one.
    macro_rules! timeout {
        ($id:literal, $cli:expr, $file:expr) => {
            Duration::from_secs(pick!($id, $cli, $file).max(1))
        };
    }

    // No upstream is not an error: the embedded dev store stands in.
    let upstream = match pick!("upstream", args.upstream, file.upstream.map(Some)) {
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
    let tls_listen = pick!("tls_listen", args.tls_listen, file.tls_listen.map(Some));
    let tls_cert = pick!("tls_cert", args.tls_cert, file.tls_cert.map(Some));
    let tls_key = pick!("tls_key", args.tls_key, file.tls_key.map(Some));
    let tls = match (tls_listen, tls_cert, tls_key) {
        (Some(listen), Some(cert), Some(key)) => Some(TlsConfig { listen, cert, key }),
        (None, None, None) => None,
        _ => anyhow::bail!("TLS needs all three of tls_listen, tls_cert and tls_key"),
    };
    let region = pick!("region", args.region, file.region);
    let upstream_region = pick!("upstream_region", args.upstream_region, file.upstream_region.map(Some));
    let domains = pick!("virtual_host_domains", args.virtual_host_domains, file.virtual_host_domains);
    let trusted = pick!("trusted_proxies", args.trusted_proxies, file.trusted_proxies);
    let trusted_proxies = trusted
        .iter()
        .map(|c| c.parse::<crate::authz::source_ip::Cidr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("trusted_proxies: {e}"))?;
    let worker_threads = pick!("worker_threads", args.worker_threads, file.worker_threads.map(Some)).map(usize::from);
    anyhow::ensure!(worker_threads != Some(0), "worker_threads must be at least 1");
    let max_connections = pick!("max_connections", args.max_connections, file.max_connections.map(Some));
    anyhow::ensure!(max_connections != Some(0), "max_connections must be at least 1");
    let max_connections_per_ip =
        pick!("max_connections_per_ip", args.max_connections_per_ip, file.max_connections_per_ip.map(Some));
    anyhow::ensure!(max_connections_per_ip != Some(0), "max_connections_per_ip must be at least 1");
    let signed_chunk_buffer_mib =
        pick!("signed_chunk_buffer_mib", args.signed_chunk_buffer_mib, file.signed_chunk_buffer_mib);
    anyhow::ensure!(signed_chunk_buffer_mib > 0, "signed_chunk_buffer_mib must be at least 1");
    Ok(ServeConfig {
        listen: pick!("listen", args.listen, file.listen),
        data_dir: pick!("data_dir", args.dir.data_dir, file.data_dir),
        upstream,
        upstream_region: upstream_region.unwrap_or_else(|| region.clone()),
        upstream_addressing: pick!("upstream_addressing", args.upstream_addressing, file.upstream_addressing),
        // The AWS SDKs' variable, when neither flag nor file names one.
        upstream_ca_file: pick!("upstream_ca_file", args.upstream_ca_file, file.upstream_ca_file.map(Some))
            .or_else(|| std::env::var_os("AWS_CA_BUNDLE").filter(|v| !v.is_empty()).map(PathBuf::from)),
        upstream_credentials: None,
        worker_threads,
        region,
        virtual_host_domains: domains.into_iter().map(|d| d.to_ascii_lowercase()).collect(),
        trusted_proxies,
        tls,
        limits: Limits {
            max_concurrent_requests: pick!(
                "max_concurrent_requests",
                args.max_concurrent_requests,
                file.max_concurrent_requests
            )
            .max(1),
            header_read_timeout: timeout!(
                "header_read_timeout_secs",
                args.header_read_timeout_secs,
                file.header_read_timeout_secs
            ),
            idle_timeout: timeout!("idle_timeout_secs", args.idle_timeout_secs, file.idle_timeout_secs),
            max_connections,
            max_connections_per_ip,
            body_idle_timeout: timeout!(
                "body_idle_timeout_secs",
                args.body_idle_timeout_secs,
                file.body_idle_timeout_secs
            ),
            upstream_header_timeout: timeout!(
                "upstream_header_timeout_secs",
                args.upstream_header_timeout_secs,
                file.upstream_header_timeout_secs
            ),
            shutdown_grace: Duration::from_secs(pick!(
                "shutdown_grace_secs",
                args.shutdown_grace_secs,
                file.shutdown_grace_secs
            )),
            signed_chunk_buffer_bytes: signed_chunk_buffer_mib.saturating_mul(1024 * 1024),
            denied_records_per_ip_per_minute: pick!(
                "denied_records_per_ip",
                args.denied_records_per_ip,
                file.denied_records_per_ip
            ),
            ..Limits::default()
        },
        origin: default_origin(),
        admin: AdminConfig {
            listen: pick!("admin_listen", args.admin_listen, file.admin_listen),
            token_file: pick!("admin_token_file", args.admin_token_file, file.admin_token_file.map(Some)),
            token_env: std::env::var("EGRESS_ADMIN_TOKEN").ok().map(SecretKey::new),
            aws_endpoint: pick!("aws_endpoint", args.aws_endpoint, file.aws_endpoint.map(Some)),
        },
    })
}

/// Runs the server on a multi-threaded runtime until a shutdown signal.
pub fn serve(args: ServeArgs, matches: &ArgMatches) -> anyhow::Result<i32> {
    let config = config(args, matches)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(crate::server::serve(config))?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory as _, FromArgMatches as _};

    use super::*;
    use crate::cli::{Cli, Command};

    fn parse(args: &[&str]) -> anyhow::Result<ServeConfig> {
        let matches =
            Cli::command().try_get_matches_from(std::iter::once("egress-proxy").chain(args.iter().copied()))?;
        let Command::Serve(serve) = Cli::from_arg_matches(&matches)?.command else { panic!("not serve") };
        config(*serve, matches.subcommand_matches("serve").expect("serve"))
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(
            &file,
            "upstream = \"http://127.0.0.1:8333\"\nlisten = \"127.0.0.1:9100\"\nregion = \"eu-west-1\"\n\
             virtual_host_domains = [\"S3.Example\"]\nbody_idle_timeout_secs = 5\n",
        )
        .unwrap();
        let from_file = parse(&["serve", "--config", file.to_str().unwrap()]).unwrap();
        assert_eq!(from_file.listen.to_string(), "127.0.0.1:9100");
        assert_eq!(from_file.upstream.to_string(), "http://127.0.0.1:8333/");
        assert_eq!((from_file.region.as_str(), from_file.upstream_region.as_str()), ("eu-west-1", "eu-west-1"));
        assert_eq!(from_file.virtual_host_domains, vec!["s3.example".to_owned()]);
        assert_eq!(from_file.limits.body_idle_timeout, Duration::from_secs(5));
        assert_eq!(from_file.data_dir, PathBuf::from("./data"), "default when neither says");

        let flagged = parse(&["serve", "--config", file.to_str().unwrap(), "--listen", "127.0.0.1:9200"]).unwrap();
        assert_eq!(flagged.listen.to_string(), "127.0.0.1:9200");
    }

    #[test]
    fn bad_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "upstream = \"http://127.0.0.1:8333\"\nlisen = \"127.0.0.1:9100\"\n").unwrap();
        let err = format!("{:#}", parse(&["serve", "--config", file.to_str().unwrap()]).unwrap_err());
        assert!(err.contains("unknown field `lisen`"), "{err}");

        std::fs::write(&file, "upstream = \"http://127.0.0.1:8333\"\ntls_listen = \"127.0.0.1:9443\"\n").unwrap();
        let err = format!("{:#}", parse(&["serve", "--config", file.to_str().unwrap()]).unwrap_err());
        assert!(err.contains("tls_listen, tls_cert and tls_key"), "{err}");

        // A secret put in the file by mistake is not echoed back.
        for text in ["aws_secret_access_key = \"wJalrXUtnFEMIK7MDENG\"\n", "admin_token = wJalrXUtnFEMIK7MDENG\n"] {
            std::fs::write(&file, format!("upstream = \"http://127.0.0.1:8333\"\n{text}")).unwrap();
            let err = format!("{:#}", parse(&["serve", "--config", file.to_str().unwrap()]).unwrap_err());
            assert!(err.contains("line 2: ") && !err.contains("wJalrXUtnFEMIK7MDENG"), "{err}");
        }

        let err = format!("{:#}", parse(&["serve", "--config", "/nonexistent.toml"]).unwrap_err());
        assert!(err.contains("reading config file /nonexistent.toml"), "{err}");

        let err = format!("{:#}", parse(&["serve", "--upstream", "ftp://x"]).unwrap_err());
        assert!(err.contains("http:// or https://"), "{err}");
    }

    #[test]
    fn worker_threads_default_to_unset_and_zero_is_refused() {
        assert_eq!(parse(&["serve"]).unwrap().worker_threads, None);
        assert_eq!(parse(&["serve", "--worker-threads", "3"]).unwrap().worker_threads, Some(3));
        let err = format!("{:#}", parse(&["serve", "--worker-threads", "0"]).unwrap_err());
        assert!(err.contains("--worker-threads"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "worker_threads = 0\n").unwrap();
        let err = format!("{:#}", parse(&["serve", "--config", file.to_str().unwrap()]).unwrap_err());
        assert!(err.contains("worker_threads must be at least 1"), "{err}");
        std::fs::write(&file, "worker_threads = 4\n").unwrap();
        assert_eq!(parse(&["serve", "--config", file.to_str().unwrap()]).unwrap().worker_threads, Some(4));
    }

    #[test]
    fn upload_and_denial_settings_come_from_flags_or_the_file() {
        let defaults = parse(&["serve"]).unwrap().limits;
        assert_eq!(defaults.signed_chunk_buffer_bytes, 256 * 1024 * 1024);
        assert_eq!(defaults.denied_records_per_ip_per_minute, 120);

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "signed_chunk_buffer_mib = 64\ndenied_records_per_ip = 0\n").unwrap();
        let path = file.to_str().unwrap();
        let limits = parse(&["serve", "--config", path]).unwrap().limits;
        assert_eq!(limits.signed_chunk_buffer_bytes, 64 * 1024 * 1024);
        assert_eq!(limits.denied_records_per_ip_per_minute, 0);
        let flagged = parse(&["serve", "--config", path, "--denied-records-per-ip", "9"]).unwrap().limits;
        assert_eq!(flagged.denied_records_per_ip_per_minute, 9);

        let err = format!("{:#}", parse(&["serve", "--signed-chunk-buffer-mib", "0"]).unwrap_err());
        assert!(err.contains("signed_chunk_buffer_mib must be at least 1"), "{err}");
    }

    #[test]
    fn connection_limits_come_from_flags_or_the_file() {
        let defaults = parse(&["serve"]).unwrap().limits;
        assert_eq!(
            (defaults.header_read_timeout, defaults.idle_timeout),
            (Duration::from_secs(10), Duration::from_secs(20))
        );
        assert_eq!((defaults.max_connections, defaults.max_connections_per_ip), (None, None), "derived at start");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "idle_timeout_secs = 5\nmax_connections = 1000\nmax_connections_per_ip = 50\n").unwrap();
        let path = file.to_str().unwrap();
        let limits = parse(&["serve", "--config", path]).unwrap().limits;
        assert_eq!(limits.idle_timeout, Duration::from_secs(5));
        assert_eq!((limits.max_connections, limits.max_connections_per_ip), (Some(1000), Some(50)));
        let flagged = parse(&["serve", "--config", path, "--max-connections-per-ip", "7"]).unwrap().limits;
        assert_eq!((flagged.max_connections, flagged.max_connections_per_ip), (Some(1000), Some(7)));

        for (args, message) in [
            (&["serve", "--max-connections", "0"][..], "max_connections must be at least 1"),
            (&["serve", "--max-connections-per-ip", "0"][..], "max_connections_per_ip must be at least 1"),
        ] {
            let err = format!("{:#}", parse(args).unwrap_err());
            assert!(err.contains(message), "{args:?}: {err}");
        }
    }

    #[test]
    fn no_upstream_means_the_embedded_dev_store() {
        let config = parse(&["serve", "--data-dir", "/tmp/egress-embedded-test"]).unwrap();
        assert!(matches!(config.upstream, crate::config::UpstreamTarget::Embedded), "{:?}", config.upstream);
        let config = parse(&["serve", "--upstream", "http://127.0.0.1:8333"]).unwrap();
        assert!(matches!(config.upstream, crate::config::UpstreamTarget::Endpoint(_)));
    }
}
