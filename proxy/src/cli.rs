//! The command line: every subcommand and flag of `egress-proxy`.
//!
//! These names are a contract (docs, scripts and later issues depend on
//! them); change them only with a note saying why.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Exit code for a command line that does not parse (BSD `EX_USAGE`).
pub const EXIT_USAGE: i32 = 64;

#[derive(Debug, Parser)]
#[command(name = "egress-proxy", version, about = "S3 proxy that records every read in a verifiable ledger")]
pub struct Cli {
    /// Log lines for people (`human`) or for machines (`json`, one object a line).
    #[arg(long, global = true, env = "EGRESS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

/// `--version`: the version and, when `./data` (or `EGRESS_DATA_DIR`) holds a
/// ledger, its head.
#[must_use]
pub fn long_version() -> String {
    let version = env!("CARGO_PKG_VERSION");
    let data_dir = std::env::var_os("EGRESS_DATA_DIR").map_or_else(|| PathBuf::from("./data"), PathBuf::from);
    let head = egress_ledger::reader::LedgerReader::open(&data_dir.join("ledger")).and_then(|r| r.head());
    match head {
        Ok(Some((seq, hash))) => format!("{version}\nledger {}: head seq {seq} hash {hash}", data_dir.display()),
        Ok(None) => format!("{version}\nledger {}: empty", data_dir.display()),
        Err(_) => version.to_owned(),
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the S3 endpoint in front of an upstream S3, recording every request.
    Serve(Box<ServeArgs>),
    /// Make a dev CA and a server certificate signed by it (for --tls-listen).
    Certs {
        /// Directory to write ca.pem, ca.key, server.pem and server.key into.
        #[arg(long, default_value = "certs")]
        out: PathBuf,
        /// Names and addresses the server certificate is valid for.
        #[arg(long, value_delimiter = ',', default_value = "localhost,127.0.0.1")]
        hosts: Vec<String>,
    },
    /// Inspect, verify, export and measure the ledger.
    #[command(subcommand)]
    Ledger(LedgerCommand),
    /// Manage principals: access keys, attached policies, tags and limits.
    #[command(subcommand)]
    Principal(PrincipalCommand),
    /// Manage IAM policies and ask what they allow.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Check a configuration without starting anything.
    #[command(subcommand)]
    Config(ConfigCommand),
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the configuration `serve` would run with these same arguments
    /// (secrets masked) and every problem found in it.
    ///
    /// Exit codes: 0 no problem; 1 one or more problems; 64 usage error.
    Check(Box<ConfigCheckArgs>),
}

#[derive(Debug, Clone, Args)]
pub struct ConfigCheckArgs {
    #[command(flatten)]
    pub serve: ServeArgs,
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TOML file with any of these settings (flags and EGRESS_* variables
    /// win over it); default: ./egress-proxy.toml if it exists.
    #[arg(long, env = "EGRESS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the S3 endpoint (plain HTTP).
    #[arg(long, env = "EGRESS_LISTEN", default_value = "127.0.0.1:9000")]
    pub listen: std::net::SocketAddr,
    #[command(flatten)]
    pub dir: DataDirArg,
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
    pub upstream_addressing: crate::upstream::Addressing,
    /// The region this endpoint answers for.
    #[arg(long, env = "EGRESS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// Domain under which `<bucket>.<domain>` is virtual-hosted addressing
    /// (repeat for several).
    #[arg(long = "virtual-host-domain", env = "EGRESS_VIRTUAL_HOST_DOMAIN", value_delimiter = ',')]
    pub virtual_host_domains: Vec<String>,
    /// Proxies (CIDRs, comma-separated) whose `X-Forwarded-For` is
    /// believed: `aws:SourceIp` is then its right-most untrusted address.
    #[arg(long = "trusted-proxies", env = "EGRESS_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,
    /// Address of the S3 endpoint over TLS (needs --tls-cert and --tls-key).
    #[arg(long, env = "EGRESS_TLS_LISTEN", requires_all = ["tls_cert", "tls_key"])]
    pub tls_listen: Option<std::net::SocketAddr>,
    /// PEM certificate chain for --tls-listen.
    #[arg(long, env = "EGRESS_TLS_CERT", requires = "tls_listen")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-listen.
    #[arg(long, env = "EGRESS_TLS_KEY", requires = "tls_listen")]
    pub tls_key: Option<PathBuf>,
    /// Address of the admin API (JSON, bearer token).
    #[arg(long, env = "EGRESS_ADMIN_LISTEN", default_value = "127.0.0.1:9001")]
    pub admin_listen: std::net::SocketAddr,
    /// File holding the admin token (else `EGRESS_ADMIN_TOKEN`, else one is
    /// generated into <data-dir>/admin.token on first start).
    #[arg(long, env = "EGRESS_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Endpoint for every AWS client of the admin API's provisioning (an
    /// emulator such as moto for dev and tests); default: AWS itself.
    #[arg(long, env = "EGRESS_AWS_ENDPOINT")]
    pub aws_endpoint: Option<String>,
    /// Requests processed at once over all connections; more wait their turn.
    #[arg(long, default_value_t = 4096)]
    pub max_concurrent_requests: usize,
    /// Threads serving S3 connections (default: one per CPU but one, at least one).
    #[arg(long, env = "EGRESS_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,
    /// Seconds a connection has from accept to send its first whole request
    /// head (TLS handshake included), and a later head from its first byte.
    #[arg(long, default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Seconds a connection with no request in flight stays open.
    #[arg(long, default_value_t = 20)]
    pub idle_timeout_secs: u64,
    /// Connections open at once on the S3 listeners (default: derived from
    /// the open-file limit); more are accepted and closed at once.
    #[arg(long)]
    pub max_connections: Option<usize>,
    /// Connections open at once from one source address, an IPv6 /64
    /// (default: half of --max-connections); more are accepted and closed at once.
    #[arg(long)]
    pub max_connections_per_ip: Option<usize>,
    /// Seconds a request or response body may move no byte before it is cut.
    #[arg(long, default_value_t = 60)]
    pub body_idle_timeout_secs: u64,
    /// Seconds the upstream has to start answering a request without a body
    /// (GET, HEAD, DELETE, listings) before the client gets 504.
    #[arg(long, default_value_t = 60)]
    pub upstream_header_timeout_secs: u64,
    /// Seconds shutdown waits for requests in flight.
    #[arg(long, default_value_t = 30)]
    pub shutdown_grace_secs: u64,
    /// MiB of signed aws-chunked upload chunks held for signature
    /// verification, all uploads together; beyond it an upload waits for
    /// room up to the body idle timeout, then gets 503 `SlowDown`.
    #[arg(long, default_value_t = 256)]
    pub signed_chunk_buffer_mib: u64,
    /// Unauthenticated requests refused from one source address that are
    /// recorded one record each per minute; the rest are counted into a
    /// `denied_summary` note per address and minute.
    #[arg(long, default_value_t = 120)]
    pub denied_records_per_ip: u32,
}

#[derive(Debug, Clone, Args)]
pub struct DataDirArg {
    /// Directory holding the ledger, keys and state.
    #[arg(long, env = "EGRESS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Recompute every hash and link and check every checkpoint.
    ///
    /// Exit codes: 0 intact; 1 content changed, inserted, deleted or
    /// reordered; 2 truncated or rolled back behind a checkpoint; 3 fork;
    /// 4 bad signature or key; 64 usage error.
    Verify {
        #[command(flatten)]
        dir: DataDirArg,
        /// A checkpoint file kept elsewhere: the log must still contain it.
        #[arg(long)]
        checkpoint: Vec<PathBuf>,
        /// Public key to check checkpoint signatures with (default: <data-dir>/keys/checkpoint.pub).
        #[arg(long)]
        pubkey: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print ledger lines: raw JSON Lines (verifiable by themselves) or CSV.
    Export {
        #[command(flatten)]
        dir: DataDirArg,
        #[arg(long)]
        from_seq: Option<u64>,
        #[arg(long)]
        to_seq: Option<u64>,
        /// Only lines at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only lines at or before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        #[arg(long, value_enum, default_value_t = ExportFormatArg::Jsonl)]
        format: ExportFormatArg,
    },
    /// Append synthetic egress events durably and report appends/s and latency.
    Bench {
        /// Where to write; default: a new temporary directory in the current
        /// directory (the disk `./data` is on), removed after.
        /// Must not hold a ledger already.
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Number of records to append (each event is a start and an end).
        #[arg(long)]
        records: u64,
        /// Number of concurrent writers.
        #[arg(long, default_value_t = 256)]
        concurrency: u64,
        /// Keep the directory afterwards (e.g. to time `ledger verify` on it).
        #[arg(long)]
        keep: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the sled indexes from the segments.
    Reindex {
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Print a request's records (start, end) and its authorization
    /// decision. Exit code 1 if no such request.
    Explain {
        /// The request id (the `x-egress-request-id` response header).
        req: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Print the public key that checks this ledger's checkpoints.
    Pubkey {
        #[command(flatten)]
        dir: DataDirArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Store (or replace) a policy from an IAM policy JSON file (`-`: stdin).
    Put {
        name: String,
        file: PathBuf,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Print one policy (canonical document, hash, where attached).
    Get {
        name: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// List every policy, built-in ones first.
    List {
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Delete a policy no principal has attached.
    Delete {
        name: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Evaluate an action on a resource for a principal, as the proxy would.
    ///
    /// Exit codes: 0 allowed; 1 denied; 64 usage error.
    Simulate {
        /// A principal, or `anonymous`.
        #[arg(long)]
        principal: String,
        /// An IAM action, e.g. `s3:GetObject`.
        #[arg(long)]
        action: String,
        /// An ARN, e.g. `arn:aws:s3:::data/public/a.csv`.
        #[arg(long)]
        resource: String,
        /// A condition key KEY=VALUE, e.g. aws:SourceIp=10.0.0.1. Repeat a
        /// key for a multi-valued one.
        #[arg(long = "context")]
        context: Vec<String>,
        #[command(flatten)]
        dir: DataDirArg,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    Jsonl,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum PrincipalCommand {
    /// Create a principal with a new access key; prints the secret once.
    /// Without --policy it can do nothing until a policy is attached.
    Create {
        /// Name of the person or service (A-Z a-z 0-9 . _ - @ +).
        name: String,
        #[arg(long)]
        description: Option<String>,
        /// A policy to attach (built-in: read-only, read-write, full; or
        /// one stored with `policy put`). Repeat for several.
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// A tag KEY=VALUE (for `aws:PrincipalTag/KEY`). Repeat for several.
        #[arg(long = "tag")]
        tags: Vec<String>,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Attach policies to a principal (or to `anonymous`).
    Attach {
        name: String,
        #[arg(required = true)]
        policies: Vec<String>,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Detach policies from a principal (or from `anonymous`).
    Detach {
        name: String,
        #[arg(required = true)]
        policies: Vec<String>,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Set a principal's egress limits, replacing the previous ones (none
    /// given: no limits).
    Limits {
        name: String,
        /// A byte quota BYTES/WINDOW[@BUCKET], e.g. `10GiB/day` or
        /// `2.5MiB/hour@data` (windows: hour, day, month, UTC). Repeat for
        /// several.
        #[arg(long = "quota")]
        quotas: Vec<String>,
        /// Response bytes per second, e.g. `2MiB` (shared by all of the
        /// principal's transfers on a node).
        #[arg(long)]
        bandwidth: Option<String>,
        /// Requests per second (503 `SlowDown` past it).
        #[arg(long)]
        requests_per_second: Option<u32>,
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// List principals and their keys (never secrets).
    List {
        #[command(flatten)]
        dir: DataDirArg,
    },
    /// Revoke an access key; its next request is refused.
    Revoke {
        access_key_id: String,
        #[command(flatten)]
        dir: DataDirArg,
    },
}
