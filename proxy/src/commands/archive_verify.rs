//! `egress-proxy ledger verify --archive s3://BUCKET/PREFIX`: the chain of
//! one origin (or all) verified from the archive alone, and, with a data
//! dir, that the local ledger extends what was shipped.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use egress_archive::layout::Layout;
use egress_archive::location::{ArchiveUrl, Origin};
use egress_archive::store::{ObjectStore, S3Store};
use egress_archive::verify::{ArchiveReport, ArchiveVerifyOptions, verify_archive};
use egress_ledger::checkpoint::{CheckpointVerifier, VERIFIER_FILE};
use egress_ledger::verify::{VerifyOptions, verify as verify_ledger};

use crate::cli::EXIT_USAGE;

/// What `ledger verify --archive` was asked.
#[derive(Debug, Clone)]
pub struct ArchiveVerifyArgs {
    pub archive: String,
    pub origin: Option<String>,
    pub all_origins: bool,
    pub aws_endpoint: Option<String>,
    pub region: String,
    pub pubkey: Option<PathBuf>,
    /// Also the local ledger here (given explicitly).
    pub data_dir: Option<PathBuf>,
    pub checkpoints: Vec<PathBuf>,
    pub json: bool,
}

/// Runs it; the exit code is the first problem's (`docs/LEDGER.md`).
pub fn verify(args: ArchiveVerifyArgs) -> anyhow::Result<i32> {
    let url: ArchiveUrl = match args.archive.parse() {
        Ok(url) => url,
        Err(e) => {
            eprintln!("egress-proxy: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    runtime.block_on(run(args, url))
}

async fn run(args: ArchiveVerifyArgs, url: ArchiveUrl) -> anyhow::Result<i32> {
    let store = Arc::new(S3Store::connect(args.aws_endpoint.as_deref(), &args.region, url.bucket.clone()).await);
    let pubkey = match &args.pubkey {
        Some(path) => Some(CheckpointVerifier::load(path)?),
        None => None,
    };
    let local_origin = match &args.data_dir {
        Some(dir) => Some(CheckpointVerifier::load(&dir.join("keys").join(VERIFIER_FILE))?.origin),
        None => None,
    };
    let listed = async || match origins_in(store.as_ref(), &url).await {
        Ok(found) => Ok(found),
        Err(e) => {
            eprintln!("egress-proxy: listing {url}: {e}");
            Err(EXIT_USAGE)
        }
    };
    let origins: Vec<String> = if args.all_origins {
        match listed().await {
            Ok(found) => found,
            Err(code) => return Ok(code),
        }
    } else if let Some(origin) = args.origin.clone().or(local_origin.clone()) {
        vec![origin]
    } else {
        let found = match listed().await {
            Ok(found) => found,
            Err(code) => return Ok(code),
        };
        if found.len() != 1 {
            eprintln!(
                "egress-proxy: {} holds {} origins ({}): give --origin NAME or --all-origins",
                url,
                found.len(),
                found.join(", ")
            );
            return Ok(EXIT_USAGE);
        }
        found
    };
    if origins.is_empty() {
        eprintln!("egress-proxy: {url} holds no origin: nothing was shipped there");
        return Ok(EXIT_USAGE);
    }
    let mut reports = Vec::new();
    let mut exit = 0;
    for origin in &origins {
        let parsed: Origin = match origin.parse() {
            Ok(o) => o,
            Err(e) => {
                eprintln!("egress-proxy: {e}");
                return Ok(EXIT_USAGE);
            }
        };
        let layout = Layout::new(&url, &parsed);
        let options =
            ArchiveVerifyOptions { pubkey: pubkey.clone().filter(|k| k.origin == *origin || !args.all_origins) };
        let report = match verify_archive(Arc::clone(&store), &layout, origin, options).await {
            Ok(report) if report.ok && report.records == 0 && report.checkpoint_objects == 0 => {
                // Not "intact": there is nothing to judge (a wrong origin or prefix).
                eprintln!("egress-proxy: nothing was shipped to {url}{origin}/ (check --origin and the prefix)");
                return Ok(EXIT_USAGE);
            }
            Ok(report) => report,
            Err(e) => {
                eprintln!("egress-proxy: reading {url}{origin}/: {e}");
                return Ok(EXIT_USAGE);
            }
        };
        if !args.json {
            print_archive(&report);
        }
        if exit == 0 {
            exit = report.exit_code;
        }
        reports.push(report);
    }
    let mut local = None;
    if let Some(dir) = &args.data_dir {
        let archived = reports.iter().find(|r| Some(&r.origin) == local_origin.as_ref());
        let start = archived.and_then(|r| {
            let head = egress_ledger::LineHash::from_hex(r.head.as_deref()?)?;
            Some((r.head_seq? + 1, head))
        });
        let options = VerifyOptions { pubkey: args.pubkey.clone(), checkpoints: args.checkpoints.clone(), start };
        let report = match verify_ledger(dir, &options, |_| {}) {
            Ok(report) => report,
            Err(e) => {
                eprintln!("egress-proxy: {e}");
                return Ok(EXIT_USAGE);
            }
        };
        if !args.json {
            print_local(dir, &report, start.map(|(seq, _)| seq - 1));
        }
        if exit == 0 {
            exit = report.exit_code;
        }
        local = Some(report);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({ "archive": reports, "local": local }))?);
    }
    Ok(exit)
}

/// The origins (folders) under the archive's prefix.
async fn origins_in(store: &S3Store, url: &ArchiveUrl) -> anyhow::Result<Vec<String>> {
    let mut origins = Vec::new();
    let mut token = None;
    loop {
        let page = store.list(&url.prefix, None, token, true).await?;
        origins.extend(
            page.folders.iter().filter_map(|f| f.strip_prefix(&url.prefix)?.strip_suffix('/').map(str::to_owned)),
        );
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(origins),
        }
    }
}

fn print_archive(report: &ArchiveReport) {
    if let Some(problem) = &report.problem {
        let mut place = String::new();
        if let Some(seq) = problem.seq {
            let _ = write!(place, " seq {seq}");
        }
        if let Some(object) = &problem.segment {
            let _ = write!(place, " in {object}");
        }
        if let Some(line) = problem.line {
            let _ = write!(place, " line {line}");
        }
        println!("archive {} NOT intact ({:?}) at{place}: {}", report.archive, problem.kind, problem.message);
    } else {
        println!(
            "archive {} intact: {} records ({} segments, {} parts read, {} parts checked by name); head seq {} hash {}; \
             {} checkpoints in the log and {} checkpoint files verified with the key from {}",
            report.archive,
            report.records,
            report.segments_read,
            report.parts_read,
            report.parts_checked_by_name,
            report.head_seq.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            report.head.as_deref().unwrap_or("-"),
            report.checkpoints_in_log,
            report.checkpoint_objects,
            report.key,
        );
    }
    if report.overwritten_count > 0 {
        println!(
            "WARNING: {} archived objects have later versions or delete markers (someone tried to overwrite or \
             delete them; the first version was verified): {}",
            report.overwritten_count,
            report.overwritten.join(", ")
        );
    }
}

fn print_local(dir: &Path, report: &egress_ledger::verify::VerifyReport, archived_head: Option<u64>) {
    let against = match archived_head {
        Some(seq) if report.start_checked => format!(", and extends the archive's head seq {seq}"),
        // Pruned beyond what the archive holds: nothing local links to it.
        Some(seq) => {
            format!(", NOT checked against the archive (it ends at seq {seq}, before the local ledger starts)")
        }
        None => String::new(),
    };
    match &report.problem {
        Some(problem) => println!(
            "local ledger {} NOT intact ({:?}) at seq {}: {}",
            dir.display(),
            problem.kind,
            problem.seq.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            problem.message
        ),
        None => println!(
            "local ledger {} intact from seq {}: {} records; head seq {}{against}",
            dir.display(),
            report.from_seq,
            report.records,
            report.head_seq.map_or_else(|| "-".to_owned(), |s| s.to_string()),
        ),
    }
}
