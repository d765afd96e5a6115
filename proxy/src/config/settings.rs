//! Every setting of `egress-proxy serve`, declared once: its name, type,
//! flag, `EGRESS_*` variable, default and doc are the one field of
//! [`ServeSettings`] below. The command line (clap), the TOML file (serde,
//! the same names as keys) and `config check` (which lists [`ServeSettings::KEYS`]
//! and their values) all follow from it.
//!
//! Precedence, per setting, is one generic rule ([`ServeSettings::layered`]):
//! the flag, then its variable (clap reads both), then the file, then the
//! default (clap's, from the same field). The values are typed and checked
//! once more into a [`crate::config::ServeConfig`]
//! ([`crate::config::ServeConfig::from_settings`]); nothing else reads them.
//!
//! Names are a contract (docs, scripts, container images depend on them);
//! change them only with a note saying why. `docs/CONFIGURATION.md` lists
//! every one, and a test holds that list to this declaration.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::parser::ValueSource;
use clap::{ArgMatches, Args as _, FromArgMatches as _};
use serde_json::Value;

use crate::upstream::Addressing;

/// The config file used when `--config` is not given, if it exists.
pub const DEFAULT_CONFIG_FILE: &str = "egress-proxy.toml";
/// The data dir's variable, also read by every command that opens the ledger.
pub const DATA_DIR_ENV: &str = "EGRESS_DATA_DIR";
/// The data dir when none is given, for every command.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// Declares the settings struct and what follows from its fields alone: the
/// list of keys, the layering of sources and the values as JSON. Every field
/// is an `Option`, so that "not given" can be told from a value in each
/// source; the clap attributes and doc comments pass through untouched.
macro_rules! settings {
    (
        $(#[$outer:meta])*
        pub struct $name:ident {
            $(
                $(#[$attr:meta])*
                pub $key:ident: Option<$ty:ty>,
            )*
        }
    ) => {
        $(#[$outer])*
        #[derive(Debug, Clone, Default, clap::Args, serde::Deserialize, serde::Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $( $(#[$attr])* pub $key: Option<$ty>, )*
        }

        impl $name {
            /// The settings' names: the TOML keys and clap's argument ids, in
            /// the order of `--help`.
            pub const KEYS: &'static [&'static str] = &[$(stringify!($key)),*];

            /// Each setting from `self` if it has one, else from `lower`.
            #[must_use]
            pub fn or(self, lower: $name) -> $name {
                $name { $( $key: self.$key.or(lower.$key), )* }
            }

            /// Splits the settings parsed by clap into those the user gave (a
            /// flag or its variable) and clap's defaults for the others.
            fn split_given(self, matches: &ArgMatches) -> ($name, $name) {
                let given = |id: &str| matches.value_source(id).is_some_and(|s| s != ValueSource::DefaultValue);
                let mut defaults = $name::default();
                let mut user = self;
                $(
                    if !given(stringify!($key)) {
                        defaults.$key = user.$key.take();
                    }
                )*
                (user, defaults)
            }

            /// Every setting and its value as JSON (`null`: not set), in the
            /// order of [`Self::KEYS`].
            #[must_use]
            pub fn values(&self) -> Vec<(&'static str, Value)> {
                vec![$( (stringify!($key), json_value(&self.$key)), )*]
            }
        }
    };
}

settings! {
    /// The settings of `serve` (and `config check`): flags, `EGRESS_*`
    /// variables and TOML keys, by the same names with `_` for `-`.
    pub struct ServeSettings {
        /// Address of the S3 endpoint (plain HTTP).
        #[arg(long, env = "EGRESS_LISTEN", default_value = "127.0.0.1:9000")]
        pub listen: Option<SocketAddr>,
        /// Directory holding the ledger, keys and state.
        #[arg(long, env = DATA_DIR_ENV, default_value = DEFAULT_DATA_DIR)]
        pub data_dir: Option<PathBuf>,
        /// The upstream S3 endpoint, e.g. `https://s3.us-east-1.amazonaws.com`.
        #[arg(long, env = "EGRESS_UPSTREAM")]
        pub upstream: Option<String>,
        /// Region to sign upstream requests for (default: --region).
        #[arg(long, env = "EGRESS_UPSTREAM_REGION")]
        pub upstream_region: Option<String>,
        /// PEM file of CA certificates trusted for an HTTPS upstream, besides
        /// the system's (a private CA of MinIO, Ceph, SeaweedFS, …). Without
        /// it, the AWS convention `AWS_CA_BUNDLE` is read the same way.
        #[arg(long, env = "EGRESS_UPSTREAM_CA_FILE")]
        pub upstream_ca_file: Option<PathBuf>,
        /// How bucket names reach the upstream.
        #[arg(long, value_enum, env = "EGRESS_UPSTREAM_ADDRESSING", default_value = "path")]
        pub upstream_addressing: Option<Addressing>,
        /// The region this endpoint answers for.
        #[arg(long, env = "EGRESS_REGION", default_value = "us-east-1")]
        pub region: Option<String>,
        /// Domain under which `<bucket>.<domain>` is virtual-hosted addressing
        /// (repeat for several).
        #[arg(long = "virtual-host-domain", env = "EGRESS_VIRTUAL_HOST_DOMAIN", value_delimiter = ',')]
        pub virtual_host_domains: Option<Vec<String>>,
        /// Proxies (CIDRs, comma-separated) whose `X-Forwarded-For` is
        /// believed: `aws:SourceIp` is then its right-most untrusted address.
        #[arg(long = "trusted-proxies", env = "EGRESS_TRUSTED_PROXIES", value_delimiter = ',')]
        pub trusted_proxies: Option<Vec<String>>,
        /// Address of the S3 endpoint over TLS (needs --tls-cert and --tls-key).
        #[arg(long, env = "EGRESS_TLS_LISTEN", requires_all = ["tls_cert", "tls_key"])]
        pub tls_listen: Option<SocketAddr>,
        /// PEM certificate chain for --tls-listen.
        #[arg(long, env = "EGRESS_TLS_CERT", requires = "tls_listen")]
        pub tls_cert: Option<PathBuf>,
        /// PEM private key for --tls-listen.
        #[arg(long, env = "EGRESS_TLS_KEY", requires = "tls_listen")]
        pub tls_key: Option<PathBuf>,
        /// Address of the admin API (JSON, bearer token).
        #[arg(long, env = "EGRESS_ADMIN_LISTEN", default_value = "127.0.0.1:9001")]
        pub admin_listen: Option<SocketAddr>,
        /// File holding the admin token (else `EGRESS_ADMIN_TOKEN`, else one is
        /// generated into <data-dir>/admin.token on first start).
        #[arg(long, env = "EGRESS_ADMIN_TOKEN_FILE")]
        pub admin_token_file: Option<PathBuf>,
        /// Connections open at once on the admin listener; more are accepted
        /// and closed at once.
        #[arg(long, env = "EGRESS_ADMIN_MAX_CONNECTIONS", default_value = "256")]
        pub admin_max_connections: Option<usize>,
        /// Endpoint for every AWS client of the admin API's provisioning (an
        /// emulator such as moto for dev and tests); default: AWS itself.
        #[arg(long, env = "EGRESS_AWS_ENDPOINT")]
        pub aws_endpoint: Option<String>,
        /// Requests processed at once over all connections; more wait their turn.
        #[arg(long, env = "EGRESS_MAX_CONCURRENT_REQUESTS", default_value = "4096")]
        pub max_concurrent_requests: Option<usize>,
        /// Threads serving S3 connections (default: one per CPU but one, at least one).
        #[arg(long, env = "EGRESS_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
        pub worker_threads: Option<u16>,
        /// Seconds a connection has from accept to send its first whole request
        /// head (TLS handshake included), and a later head from its first byte.
        #[arg(long, env = "EGRESS_HEADER_READ_TIMEOUT_SECS", default_value = "10")]
        pub header_read_timeout_secs: Option<u64>,
        /// Seconds a connection with no request in flight stays open.
        #[arg(long, env = "EGRESS_IDLE_TIMEOUT_SECS", default_value = "20")]
        pub idle_timeout_secs: Option<u64>,
        /// Connections open at once on the S3 listeners (default: derived from
        /// the open-file limit); more are accepted and closed at once.
        #[arg(long, env = "EGRESS_MAX_CONNECTIONS")]
        pub max_connections: Option<usize>,
        /// Connections open at once from one source address, an IPv6 /64
        /// (default: half of --max-connections); more are accepted and closed at once.
        #[arg(long, env = "EGRESS_MAX_CONNECTIONS_PER_IP")]
        pub max_connections_per_ip: Option<usize>,
        /// KiB a request head may take (the request line and headers; HTTP/1's
        /// read buffer, HTTP/2's header list); larger heads are refused. At least 8.
        #[arg(long, env = "EGRESS_MAX_REQUEST_HEAD_KIB", default_value = "64")]
        pub max_request_head_kib: Option<usize>,
        /// Requests one HTTP/2 connection may have open at once.
        #[arg(long, env = "EGRESS_HTTP2_MAX_CONCURRENT_STREAMS", default_value = "256")]
        pub http2_max_concurrent_streams: Option<u32>,
        /// Seconds a request or response body may move no byte before it is cut.
        #[arg(long, env = "EGRESS_BODY_IDLE_TIMEOUT_SECS", default_value = "60")]
        pub body_idle_timeout_secs: Option<u64>,
        /// Seconds the upstream has to start answering a request without a body
        /// (GET, HEAD, DELETE, listings) before the client gets 504.
        #[arg(long, env = "EGRESS_UPSTREAM_HEADER_TIMEOUT_SECS", default_value = "60")]
        pub upstream_header_timeout_secs: Option<u64>,
        /// Seconds opening a TCP connection to the upstream may take (shared
        /// among the addresses its name resolves to); past it the request gets 502.
        #[arg(long, env = "EGRESS_UPSTREAM_CONNECT_TIMEOUT_SECS", default_value = "10")]
        pub upstream_connect_timeout_secs: Option<u64>,
        /// Seconds of silence on an upstream connection before TCP keepalive
        /// probes start (0: no keepalive).
        #[arg(long, env = "EGRESS_UPSTREAM_TCP_KEEPALIVE_SECS", default_value = "60")]
        pub upstream_tcp_keepalive_secs: Option<u64>,
        /// Idle upstream connections each worker thread keeps open per
        /// upstream host for reuse (0: none, a connection per request).
        #[arg(long, env = "EGRESS_UPSTREAM_POOL_MAX_IDLE_PER_HOST", default_value = "256")]
        pub upstream_pool_max_idle_per_host: Option<usize>,
        /// Seconds an idle upstream connection is kept for reuse.
        #[arg(long, env = "EGRESS_UPSTREAM_POOL_IDLE_TIMEOUT_SECS", default_value = "30")]
        pub upstream_pool_idle_timeout_secs: Option<u64>,
        /// KiB each upstream connection reads into at most (its read buffer);
        /// at least 8.
        #[arg(long, env = "EGRESS_UPSTREAM_READ_BUFFER_KIB", default_value = "128")]
        pub upstream_read_buffer_kib: Option<usize>,
        /// Seconds shutdown waits for requests in flight.
        #[arg(long, env = "EGRESS_SHUTDOWN_GRACE_SECS", default_value = "30")]
        pub shutdown_grace_secs: Option<u64>,
        /// MiB of signed aws-chunked upload chunks held for signature
        /// verification, all uploads together; beyond it an upload waits for
        /// room up to the body idle timeout, then gets 503 `SlowDown`.
        #[arg(long, env = "EGRESS_SIGNED_CHUNK_BUFFER_MIB", default_value = "256")]
        pub signed_chunk_buffer_mib: Option<u64>,
        /// MiB an aws-chunked upload chunk may take at most (a signed one is
        /// held whole until its signature checks); larger chunks are refused.
        #[arg(long, env = "EGRESS_MAX_AWS_CHUNK_MIB", default_value = "16")]
        pub max_aws_chunk_mib: Option<usize>,
        /// Unauthenticated requests refused from one source address that are
        /// recorded one record each per minute; the rest are counted into a
        /// `denied_summary` note per address and minute.
        #[arg(long, env = "EGRESS_DENIED_RECORDS_PER_IP", default_value = "120")]
        pub denied_records_per_ip: Option<u32>,
        /// Run a reconciliation against the log bucket this often (e.g. `15m`),
        /// over the last interval plus the longest delivery window; default:
        /// only when asked (`POST /v1/reconciliations`). Needs exactly one
        /// provisioning spec.
        #[arg(long, env = "EGRESS_RECONCILE_EVERY")]
        pub reconcile_every: Option<String>,
        /// How long S3 may take to deliver a server access log record before a
        /// proxy read it lacks is `missing_from_aws` (e.g. `24h`).
        #[arg(long, env = "EGRESS_ACCESS_LOG_DELIVERY", default_value = "24h")]
        pub access_log_delivery: Option<String>,
        /// How long CloudTrail may take to deliver an event before a proxy read
        /// it lacks is `missing_from_aws` (e.g. `1h`).
        #[arg(long, env = "EGRESS_CLOUDTRAIL_DELIVERY", default_value = "1h")]
        pub cloudtrail_delivery: Option<String>,
        /// How long after the last checkpoint the next one signs the head,
        /// when anything was appended (one also follows every 10,000 lines).
        #[arg(long, env = "EGRESS_CHECKPOINT_INTERVAL", default_value = "60s")]
        pub checkpoint_interval: Option<String>,
        /// KiB a ledger segment holds before it is sealed (compressed, then
        /// shipped whole with --archive). At least 4.
        #[arg(long, env = "EGRESS_LEDGER_SEGMENT_KIB", default_value = "65536")]
        pub ledger_segment_kib: Option<u64>,
        /// Name of this proxy's chain: the origin line of its checkpoints and
        /// its folder in the archive. Fixed when the checkpoint key is made
        /// (default then: `egress-proxy@<host name>`); a different value
        /// later is refused.
        #[arg(long, env = "EGRESS_ORIGIN")]
        pub origin: Option<String>,
        /// Ship the ledger to this S3 bucket (`s3://BUCKET/PREFIX`), ideally
        /// one with Object Lock: sealed segments, the open segment's growth
        /// and checkpoints, and each segment's requests as Parquet.
        #[arg(long, env = "EGRESS_ARCHIVE")]
        pub archive: Option<String>,
        /// Region of the archive bucket (default: --region).
        #[arg(long, env = "EGRESS_ARCHIVE_REGION")]
        pub archive_region: Option<String>,
        /// Days each archived object is locked (Object Lock, COMPLIANCE
        /// mode, an explicit date on every upload); 0: only the bucket's
        /// default retention, for a bucket without Object Lock.
        #[arg(long, env = "EGRESS_ARCHIVE_RETENTION_DAYS", default_value = "365")]
        pub archive_retention_days: Option<u32>,
        /// How often the shipper uploads what is new (the open segment's
        /// growth included); at most 60s.
        #[arg(long, env = "EGRESS_ARCHIVE_INTERVAL", default_value = "15s")]
        pub archive_interval: Option<String>,
        /// A shipping lag beyond this is logged as an error and flagged in
        /// /metrics, /healthz and GET /v1/archive.
        #[arg(long, env = "EGRESS_ARCHIVE_MAX_LAG", default_value = "5m")]
        pub archive_max_lag: Option<String>,
        /// Remove sealed segments from this host this long after they were
        /// sealed, once shipped, read back and signed by a shipped
        /// checkpoint (e.g. `7d`). Needs --archive; default: keep all.
        #[arg(long, env = "EGRESS_LOCAL_RETENTION")]
        pub local_retention: Option<String>,
    }
}

impl ServeSettings {
    /// The settings from the command line and environment (`cli`, with the
    /// `matches` clap parsed it from) over those of the config file, over
    /// the defaults: per setting, a flag or its variable, then the file,
    /// then the default.
    #[must_use]
    pub fn layered(cli: ServeSettings, matches: &ArgMatches, file: ServeSettings) -> ServeSettings {
        let (given, defaults) = cli.split_given(matches);
        given.or(file).or(defaults)
    }

    /// Every setting at its default: what clap would give with no flag and
    /// no variable.
    #[must_use]
    pub fn defaults() -> ServeSettings {
        let command = ServeSettings::augment_args(clap::Command::new("defaults")).mut_args(|arg| arg.env(None));
        // Only a declaration that contradicts itself (a default its own
        // parser refuses) could fail here; the unit tests parse it.
        command
            .try_get_matches_from(["defaults"])
            .ok()
            .and_then(|matches| ServeSettings::from_arg_matches(&matches).ok())
            .unwrap_or_default()
    }

    /// Reads and checks a config file: any key that is not a setting, or a
    /// value of the wrong type, is an error (a typo must not pass silently).
    pub fn load(path: &Path) -> anyhow::Result<ServeSettings> {
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

fn json_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("(cannot be shown: {e})")))
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// The `serve` subcommand as clap sees it.
    fn serve_command() -> clap::Command {
        crate::cli::Cli::command().find_subcommand("serve").cloned().unwrap()
    }

    #[test]
    fn every_setting_is_a_clap_argument_and_a_file_key() {
        let command = serve_command();
        let ids: Vec<&str> = command.get_arguments().map(|a| a.get_id().as_str()).collect();
        for key in ServeSettings::KEYS {
            assert!(ids.contains(key), "{key} is not an argument of serve: {ids:?}");
            let one: toml::Table = toml::from_str(&format!("{key} = []")).unwrap();
            if let Err(e) = one.try_into::<ServeSettings>() {
                assert!(!e.to_string().contains("unknown field"), "{key} is not a file key: {e}");
            }
        }
        let err = toml::from_str::<ServeSettings>("lisen = \"127.0.0.1:9000\"").unwrap_err().to_string();
        assert!(err.contains("unknown field `lisen`"), "{err}");
    }

    #[test]
    fn flags_and_variables_are_named_after_the_key() {
        // The one setting whose flag is singular: it is repeated, one domain each.
        let singular = [("virtual_host_domains", "virtual-host-domain")];
        let command = serve_command();
        for key in ServeSettings::KEYS {
            let arg = command.get_arguments().find(|a| a.get_id() == key).unwrap();
            let long = arg.get_long().unwrap();
            let expected =
                singular.iter().find(|(k, _)| k == key).map_or_else(|| key.replace('_', "-"), |(_, f)| (*f).to_owned());
            assert_eq!(long, expected, "{key}");
            if let Some(env) = arg.get_env() {
                assert_eq!(env.to_str().unwrap(), format!("EGRESS_{}", long.replace('-', "_").to_uppercase()), "{key}");
            }
        }
    }

    #[test]
    fn defaults_are_clap_defaults_without_the_environment() {
        let defaults = ServeSettings::defaults();
        assert_eq!(defaults.listen, Some("127.0.0.1:9000".parse().unwrap()));
        assert_eq!(defaults.data_dir, Some(PathBuf::from(DEFAULT_DATA_DIR)));
        assert_eq!(defaults.upstream_addressing, Some(Addressing::Path));
        assert_eq!((defaults.upstream, defaults.worker_threads), (None, None), "no default: derived or absent");
        assert_eq!(defaults.upstream_pool_max_idle_per_host, Some(256));
    }

    #[test]
    fn a_given_value_then_the_file_then_the_default() {
        // Whatever EGRESS_* the test runs with is not read here.
        let command = serve_command().mut_args(|arg| arg.env(None));
        let matches = command.try_get_matches_from(["serve", "--region", "eu-west-1"]).unwrap();
        let cli = ServeSettings::from_arg_matches(&matches).unwrap();
        let file: ServeSettings =
            toml::from_str("region = \"us-west-2\"\nlisten = \"127.0.0.1:9100\"\nidle_timeout_secs = 5").unwrap();
        let layered = ServeSettings::layered(cli, &matches, file);
        assert_eq!(layered.region.as_deref(), Some("eu-west-1"), "flag over file");
        assert_eq!(layered.listen, Some("127.0.0.1:9100".parse().unwrap()), "file over default");
        assert_eq!(layered.idle_timeout_secs, Some(5));
        assert_eq!(layered.body_idle_timeout_secs, Some(60), "default");
        assert_eq!(layered.upstream, None, "none at all");
    }

    /// The rows of `docs/CONFIGURATION.md`'s tables whose first cell is a
    /// setting, as (key, flag, variable, default) cells.
    fn documented() -> Vec<[String; 4]> {
        let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CONFIGURATION.md")).unwrap();
        doc.lines()
            .filter_map(|line| {
                let cells: Vec<&str> = line.strip_prefix("| `")?.split(" | ").collect();
                let key = cells.first()?.split('`').next()?;
                Some([key, cells.get(1)?, cells.get(2)?, cells.get(3)?].map(str::to_owned))
            })
            .collect()
    }

    #[test]
    fn the_docs_table_every_setting_as_declared() {
        let rows = documented();
        let command = serve_command();
        for key in ServeSettings::KEYS {
            let [_, flag, variable, default] =
                rows.iter().find(|row| row[0] == *key).unwrap_or_else(|| panic!("{key} is not in CONFIGURATION.md"));
            let arg = command.get_arguments().find(|a| a.get_id() == key).unwrap();
            let long = format!("`--{}", arg.get_long().unwrap());
            assert!(flag.starts_with(&format!("{long} ")) || flag.starts_with(&format!("{long}`")), "{key}: {flag}");
            let env = arg.get_env().map_or_else(|| "–".to_owned(), |e| format!("`{}`", e.to_string_lossy()));
            assert_eq!(variable, &env, "{key}");
            if let [value] = arg.get_default_values() {
                assert_eq!(default, &format!("`{}`", value.to_string_lossy()), "{key}");
            }
        }
        for [key, ..] in &rows {
            assert!(
                ServeSettings::KEYS.contains(&key.as_str()),
                "CONFIGURATION.md documents {key}, which is no setting"
            );
        }
    }

    #[test]
    fn values_are_in_key_order() {
        let values = ServeSettings::defaults().values();
        let keys: Vec<&str> = values.iter().map(|(k, _)| *k).collect();
        assert_eq!(keys, ServeSettings::KEYS);
        assert_eq!(values[0].1, serde_json::json!("127.0.0.1:9000"));
    }
}
