//! The command line: every subcommand and flag of `egress-proxy`.
//!
//! These names are a contract (docs, scripts and later issues depend on
//! them); change them only with a note saying why.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::settings::{DATA_DIR_ENV, DEFAULT_CONFIG_FILE, DEFAULT_DATA_DIR, ServeSettings};

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
    let data_dir = std::env::var_os(DATA_DIR_ENV).map_or_else(|| PathBuf::from(DEFAULT_DATA_DIR), PathBuf::from);
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
    /// Match the ledger's object reads against the log bucket's S3 server
    /// access logs and CloudTrail files: did anything read the data without
    /// going through the proxy? (docs/RECONCILIATION.md)
    ///
    /// Exit codes: 0 complete, no bypass; 2 bypass reads found; 3 the logs
    /// could not be read (nothing is known); 4 partial (some files or lines
    /// unusable), no bypass in what was read.
    Reconcile(Box<ReconcileArgs>),
}

/// `egress-proxy reconcile`.
#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    /// Start of the window: RFC 3339, or a duration before now (`24h`).
    #[arg(long)]
    pub since: String,
    /// End of the window (exclusive), same forms; default now.
    #[arg(long)]
    pub until: Option<String>,
    /// The provisioning spec whose log bucket is read (default: the only one).
    #[arg(long)]
    pub spec: Option<String>,
    /// Print the whole report as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    /// Endpoint of every AWS client (an emulator such as moto); default AWS.
    #[arg(long, env = "EGRESS_AWS_ENDPOINT")]
    pub aws_endpoint: Option<String>,
    /// Region the AWS credential chain looks things up in (each spec names its own).
    #[arg(long, env = "EGRESS_REGION", default_value = "us-east-1")]
    pub region: String,
    /// How long S3 may take to deliver an access log record before a proxy
    /// read it lacks is `missing_from_aws`.
    #[arg(long, env = "EGRESS_ACCESS_LOG_DELIVERY", default_value = "24h", value_parser = humantime::parse_duration)]
    pub access_log_delivery: std::time::Duration,
    /// The same for CloudTrail.
    #[arg(long, env = "EGRESS_CLOUDTRAIL_DELIVERY", default_value = "1h", value_parser = humantime::parse_duration)]
    pub cloudtrail_delivery: std::time::Duration,
    /// An access key id the proxy signs upstream requests with: a read in
    /// CloudTrail with it, by anyone, is the proxy's credentials used
    /// elsewhere (`serve` knows its own). Repeat for several.
    #[arg(long = "proxy-access-key-id")]
    pub proxy_access_key_ids: Vec<String>,
    #[command(flatten)]
    pub dir: DataDirArg,
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

/// The arguments of `serve` and `config check`: the config file and every
/// setting (declared in [`crate::config::settings`]).
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// TOML file with any of these settings (flags and EGRESS_* variables
    /// win over it); default: ./egress-proxy.toml if it exists.
    #[arg(long, env = "EGRESS_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: ServeSettings,
}

impl ServeArgs {
    /// The config file these arguments name, else `./egress-proxy.toml` if
    /// it exists.
    #[must_use]
    pub fn config_file(&self) -> Option<PathBuf> {
        self.config.clone().or_else(|| {
            let default = PathBuf::from(DEFAULT_CONFIG_FILE);
            default.exists().then_some(default)
        })
    }
}

#[derive(Debug, Clone, Args)]
pub struct DataDirArg {
    /// Directory holding the ledger, keys and state.
    #[arg(long, env = DATA_DIR_ENV, default_value = DEFAULT_DATA_DIR)]
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
        /// Public key to check checkpoint signatures with (default: <data-dir>/keys/checkpoint.pub,
        /// or with --archive the key the archive holds).
        #[arg(long)]
        pubkey: Option<PathBuf>,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
        /// Verify the chain shipped to this archive (`s3://BUCKET/PREFIX`),
        /// from the archive alone; with --data-dir given too, also that the
        /// local ledger extends it.
        #[arg(long)]
        archive: Option<String>,
        /// The origin to verify in the archive (default: the data dir's, or
        /// the only one there).
        #[arg(long)]
        origin: Option<String>,
        /// Verify every origin found in the archive.
        #[arg(long, conflicts_with = "origin")]
        all_origins: bool,
        /// Endpoint of the archive's S3 (an emulator, another S3 server).
        #[arg(long, env = "EGRESS_AWS_ENDPOINT")]
        aws_endpoint: Option<String>,
        /// Region of the archive bucket.
        #[arg(long, env = "EGRESS_ARCHIVE_REGION", default_value = "us-east-1")]
        region: String,
    },
    /// Print ledger lines: raw JSON Lines (verifiable by themselves) or CSV;
    /// or write the requests as Parquet, one row each (`docs/ARCHIVE.md`).
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
        /// The format, and where to write it.
        #[command(flatten)]
        format: ExportOutput,
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
    /// One row per request (its start and end joined), for the requests
    /// whose start is selected; needs --output.
    Parquet,
}

/// How and where `ledger export` writes.
#[derive(Debug, Clone, Args)]
pub struct ExportOutput {
    #[arg(long, value_enum, default_value_t = ExportFormatArg::Jsonl)]
    pub format: ExportFormatArg,
    /// Write to this file instead of stdout (replacing it). Required for
    /// parquet, which is written whole: its footer comes last.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
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
