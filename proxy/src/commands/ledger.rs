//! `egress-proxy ledger verify|export|bench|reindex|pubkey`.

use std::fmt::Write as _;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use egress_archive::events::EventsWriter;
use egress_ledger::export::{ExportFilter, ExportFormat, export as export_lines};
use egress_ledger::reader::PrunedHistory;
use egress_ledger::record::parse_ts_micros;
use egress_ledger::verify::{VerifyOptions, verify as verify_ledger};
use egress_ledger::{EndRecord, Entry, Ledger, LedgerConfig, Outcome, StartRecord};

use super::{default_origin, open_ledger};
use crate::cli::{EXIT_USAGE, ExportFormatArg, ExportOutput};

/// `ledger verify`: exit code as documented on the command.
pub fn verify(data_dir: &Path, checkpoints: Vec<PathBuf>, pubkey: Option<PathBuf>, json: bool) -> anyhow::Result<i32> {
    let options = VerifyOptions { pubkey, checkpoints, ..VerifyOptions::default() };
    let bar = progress_bar(data_dir, !json);
    let report = verify_ledger(data_dir, &options, |bytes| {
        if let Some(bar) = &bar {
            bar.set_position(bytes);
        }
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            eprintln!("egress-proxy: {e}");
            return Ok(EXIT_USAGE);
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else if let Some(problem) = &report.problem {
        let mut place = String::new();
        if let Some(seq) = problem.seq {
            let _ = write!(place, " seq {seq}");
        }
        if let Some(segment) = &problem.segment {
            let _ = write!(place, " in {segment}");
        }
        if let Some(line) = problem.line {
            let _ = write!(place, " line {line}");
        }
        println!("ledger NOT intact ({:?}) at{place}: {}", problem.kind, problem.message);
    } else {
        println!(
            "ledger intact: {} records in {} segments; head seq {} hash {}; {} checkpoints in the log and {} checkpoint files verified{}",
            report.records,
            report.segments,
            report.head_seq.map_or_else(|| "-".to_owned(), |s| s.to_string()),
            report.head.as_deref().unwrap_or("-"),
            report.checkpoints_in_log,
            report.checkpoint_files,
            if report.partial_tail { " (a write in progress at the tail was skipped)" } else { "" }
        );
    }
    Ok(report.exit_code)
}

fn parse_time(flag: &str, value: Option<&str>) -> anyhow::Result<Option<u64>> {
    value
        .map(|v| {
            parse_ts_micros(v)
                .with_context(|| format!("--{flag} {v:?} is not an RFC 3339 time like 2026-11-27T12:00:00Z"))
        })
        .transpose()
}

/// `ledger export`: lines as JSON Lines or CSV, to stdout or `--output`;
/// or requests as Parquet, to `--output` only.
pub fn export(
    data_dir: &Path,
    filter: (Option<u64>, Option<u64>, Option<&str>, Option<&str>),
    target: ExportOutput,
) -> anyhow::Result<i32> {
    let (from_seq, to_seq, since, until) = filter;
    let filter = ExportFilter {
        from_seq,
        to_seq,
        since_micros: parse_time("since", since)?,
        until_micros: parse_time("until", until)?,
    };
    let format = match target.format {
        ExportFormatArg::Jsonl => ExportFormat::Jsonl,
        ExportFormatArg::Csv => ExportFormat::Csv,
        ExportFormatArg::Parquet => {
            let Some(output) = target.output else {
                eprintln!(
                    "egress-proxy: --format parquet needs --output FILE: a Parquet file is written whole \
                     (its footer comes last), so it cannot go to a pipe"
                );
                return Ok(EXIT_USAGE);
            };
            return export_parquet(data_dir, filter, &output);
        }
    };
    let reader = open_reader(data_dir)?;
    let sink: Box<dyn Write> = match &target.output {
        Some(path) => {
            Box::new(std::fs::File::create(path).with_context(|| format!("cannot create --output {}", path.display()))?)
        }
        None => Box::new(io::stdout().lock()),
    };
    let bar = progress_bar(data_dir, true);
    let mut out = Counting { inner: BufWriter::with_capacity(1 << 20, sink), bar: bar.as_ref(), written: 0 };
    let result = export_lines(&reader, filter, format, &mut out).and_then(|_| out.flush());
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    match result {
        Ok(()) => Ok(0),
        // `| head` closing the pipe is not an error.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(0),
        Err(e) => Err(e.into()),
    }
}

fn open_reader(data_dir: &Path) -> anyhow::Result<egress_ledger::reader::LedgerReader> {
    let ledger_dir = data_dir.join("ledger");
    egress_ledger::reader::LedgerReader::open(&ledger_dir).with_context(|| {
        format!("no ledger in {}; give the data dir the proxy writes to (--data-dir)", ledger_dir.display())
    })
}

/// `ledger export --format parquet --output FILE`: the requests whose start
/// `filter` selects, one row each, in one file written as the log is read
/// (`egress_archive::events::EventsWriter`). It goes to a temporary file
/// beside `output`, renamed over it once complete: a failed export leaves
/// no half file that a query would read.
fn export_parquet(data_dir: &Path, filter: ExportFilter, output: &Path) -> anyhow::Result<i32> {
    let reader = open_reader(data_dir)?;
    // As for the other formats: history pruned from this host is an error,
    // not a silently shorter file.
    if reader.is_pruned(filter.from_seq.unwrap_or(0)) {
        let pruned = PrunedHistory { first_local_seq: reader.first_seq() };
        anyhow::bail!("{pruned}: give --from-seq {} or later", pruned.first_local_seq);
    }
    let origin = ledger_origin(data_dir);
    let dir = match output.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let temp = tempfile::Builder::new()
        .prefix(".egress-export-")
        .suffix(".parquet.partial")
        .tempfile_in(dir)
        .with_context(|| format!("cannot write beside --output {}", output.display()))?;
    let mut writer = EventsWriter::new(&origin, filter, BufWriter::with_capacity(1 << 20, temp))?;
    let bar = progress_bar(data_dir, true);
    let mut read = 0u64;
    let mut failure = None;
    reader.for_each_line(filter.from_seq.unwrap_or(0), |line| {
        read += line.bytes.len() as u64 + 1;
        if let Some(bar) = &bar {
            bar.set_position(read);
        }
        if let Err(e) = writer.push_line(&line.bytes) {
            failure = Some(anyhow::Error::new(e).context(format!("{} line {}", line.segment_name, line.line_no)));
            return false;
        }
        writer.wants_more()
    })?;
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    if let Some(e) = failure {
        return Err(e);
    }
    let (out, rows) = writer.finish()?;
    let temp = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    temp.as_file().sync_all()?;
    temp.persist(output).with_context(|| format!("cannot write --output {}", output.display()))?;
    println!("wrote {rows} requests to {}", output.display());
    Ok(0)
}

/// The log's name, as its checkpoint key says (`keys/checkpoint.pub`); the
/// name a new ledger here would get if there is no key yet.
fn ledger_origin(data_dir: &Path) -> String {
    let path = data_dir.join("keys").join(egress_ledger::checkpoint::VERIFIER_FILE);
    egress_ledger::checkpoint::CheckpointVerifier::load(&path).map_or_else(|_| default_origin(), |key| key.origin)
}

/// A progress bar over the ledger's bytes, on stderr, only when stderr is a
/// terminal (and `wanted`): scripts and pipes see nothing.
fn progress_bar(data_dir: &Path, wanted: bool) -> Option<indicatif::ProgressBar> {
    if !wanted || !std::io::IsTerminal::is_terminal(&io::stderr()) {
        return None;
    }
    let total =
        egress_ledger::reader::LedgerReader::open(&data_dir.join("ledger")).and_then(|r| r.total_bytes()).ok()?;
    let bar = indicatif::ProgressBar::with_draw_target(Some(total), indicatif::ProgressDrawTarget::stderr());
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(bar)
}

/// Counts what goes out, for the export's progress bar.
struct Counting<'a, W: Write> {
    inner: W,
    bar: Option<&'a indicatif::ProgressBar>,
    written: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        if let Some(bar) = self.bar {
            bar.set_position(self.written);
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// `ledger reindex`.
pub fn reindex(data_dir: &Path) -> anyhow::Result<i32> {
    let ledger = open_ledger(data_dir)?;
    let result = ledger.reindex();
    ledger.close_blocking()?;
    println!("reindexed {} lines", result?);
    Ok(0)
}

/// `ledger pubkey`: the verifier key line.
pub fn pubkey(data_dir: &Path) -> anyhow::Result<i32> {
    let path = data_dir.join("keys").join(egress_ledger::checkpoint::VERIFIER_FILE);
    let key = egress_ledger::checkpoint::CheckpointVerifier::load(&path)
        .with_context(|| "no checkpoint key yet; it is made when the ledger is first opened".to_owned())?;
    println!("{}", key.to_text());
    Ok(0)
}

/// `ledger bench`.
#[allow(clippy::cast_precision_loss, clippy::cast_sign_loss)] // statistics of counts far below 2^52
pub fn bench(data_dir: Option<&Path>, records: u64, concurrency: u64, keep: bool, json: bool) -> anyhow::Result<i32> {
    anyhow::ensure!(records > 0 && concurrency > 0, "--records and --concurrency must be at least 1");
    let mut temp = None;
    let dir = match data_dir {
        Some(dir) => {
            let ledger_dir = dir.join("ledger");
            anyhow::ensure!(
                !ledger_dir.exists() || std::fs::read_dir(&ledger_dir)?.next().is_none(),
                "{} already holds a ledger; bench writes synthetic records, so give it an empty directory",
                dir.display()
            );
            dir.to_path_buf()
        }
        None => {
            // In the current directory: the disk `--data-dir ./data` would use.
            let t = tempfile::Builder::new().prefix("egress-ledger-bench-").tempdir_in(".")?;
            let path = t.path().to_path_buf();
            temp = Some(t);
            path
        }
    };
    let (ledger, _) = Ledger::open(&LedgerConfig::new(&dir, &default_origin()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let started = Instant::now();
    let mut latencies = runtime.block_on(run_writers(&ledger, records, concurrency))?;
    let elapsed = started.elapsed();
    ledger.close_blocking()?;

    latencies.sort_unstable();
    let pct = |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize] as f64 / 1000.0;
    let segments = dir_size(&dir.join("ledger"))?;
    let state = dir_size(&dir.join("state"))?;
    let result = serde_json::json!({
        "records": latencies.len(),
        "concurrency": concurrency,
        "seconds": elapsed.as_secs_f64(),
        "appends_per_sec": latencies.len() as f64 / elapsed.as_secs_f64(),
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": pct(1.0),
        "segment_bytes": segments,
        "state_bytes": state,
        "disk_ratio": (segments + state) as f64 / segments.max(1) as f64,
        "data_dir": if keep { Some(dir.display().to_string()) } else { None },
    });
    if json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!(
            "{} durable appends with {} writers in {:.2} s: {:.0} appends/s, p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms\n\
             disk: segments {} B, sled {} B, (segments + sled) / segments = {:.3}",
            latencies.len(),
            concurrency,
            elapsed.as_secs_f64(),
            result["appends_per_sec"].as_f64().unwrap_or(0.0),
            pct(0.50),
            pct(0.99),
            pct(1.0),
            segments,
            state,
            result["disk_ratio"].as_f64().unwrap_or(0.0),
        );
        if keep {
            println!("kept in {}", dir.display());
        }
    }
    if keep && let Some(t) = temp {
        // Keep the temporary directory.
        let _ = t.keep();
    }
    Ok(0)
}

/// Runs `concurrency` writers appending start/end pairs until `records`
/// lines were appended; returns every append's latency in microseconds.
async fn run_writers(ledger: &Ledger, records: u64, concurrency: u64) -> anyhow::Result<Vec<u64>> {
    let remaining = Arc::new(std::sync::atomic::AtomicU64::new(records));
    let mut tasks = Vec::new();
    for writer in 0..concurrency {
        let ledger = ledger.clone();
        let remaining = Arc::clone(&remaining);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            loop {
                // A whole event (start and end) or, for an odd last record, a note:
                // the bench leaves no start without its end.
                if take(&remaining, 2).is_none() {
                    if take(&remaining, 1).is_some() {
                        let t = Instant::now();
                        ledger.append(Entry::Note(egress_ledger::NoteRecord::new("bench"))).await?;
                        latencies.push(t.elapsed().as_micros() as u64);
                    }
                    break;
                }
                let req = format!("bench-{writer:04}-{n:08}");
                let start = synthetic_start(&req, writer, n);
                let t = Instant::now();
                let appended = ledger.append(Entry::Start(start)).await?;
                latencies.push(t.elapsed().as_micros() as u64);
                let t = Instant::now();
                ledger.append(Entry::End(synthetic_end(&req, appended.seq, n))).await?;
                latencies.push(t.elapsed().as_micros() as u64);
                n += 1;
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut all = Vec::with_capacity(records as usize);
    for task in tasks {
        all.extend(task.await??);
    }
    Ok(all)
}

fn take(remaining: &std::sync::atomic::AtomicU64, n: u64) -> Option<u64> {
    use std::sync::atomic::Ordering;
    remaining.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |r| r.checked_sub(n)).ok()
}

fn synthetic_start(req: &str, writer: u64, n: u64) -> StartRecord {
    StartRecord {
        req: req.to_owned(),
        principal: Some(format!("bench-principal-{:02}", writer % 16)),
        access_key_id: Some(format!("EGRSBENCH{:011}", writer % 16)),
        source_ip: Some("127.0.0.1".to_owned()),
        user_agent: Some("Boto3/1.43.11 md/Botocore#1.43.11 ua/2.1 os/linux lang/python#3.11.7".to_owned()),
        method: "GET".to_owned(),
        operation: "GetObject".to_owned(),
        bucket: Some("training-data".to_owned()),
        key: Some(format!("datasets/imagenet/train/part-{:05}.parquet", n % 100_000)),
        version_id: None,
        range: Some("bytes=0-8388607".to_owned()),
        ..StartRecord::default()
    }
}

fn synthetic_end(req: &str, start_seq: u64, n: u64) -> EndRecord {
    EndRecord {
        req: req.to_owned(),
        start_seq,
        status: Some(206),
        bytes_sent: Some(8_388_608),
        bytes_acked: None,
        object_size: Some(134_217_728),
        etag: Some("\"9b2cf535f27731c974343645a3985328\"".to_owned()),
        upstream_request_id: Some(format!("1789{n:012X}")),
        upstream_id2: Some("dGhpcyBpcyBhbiBleGFtcGxlIGlkMiB2YWx1ZSBmcm9tIHMzIHNlcnZlcg==".to_owned()),
        duration_ms: Some(41),
        outcome: Outcome::Complete,
        error_code: None,
        decision: None,
    }
}

fn dir_size(dir: &Path) -> io::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() { dir_size(&entry.path())? } else { meta.len() };
    }
    Ok(total)
}

/// `ledger explain REQ`: the request's `start` and `end` lines (with seq
/// and hash), its decision, and the grants of its principal in force at
/// its start (the last `grants_set` note before it). Reads every segment.
pub fn explain(data_dir: &Path, req: &str) -> anyhow::Result<i32> {
    const GRANTS: &[u8] = b"\"event\":\"grants_set\"";
    let ledger_dir = data_dir.join("ledger");
    let reader = egress_ledger::reader::LedgerReader::open(&ledger_dir).with_context(|| {
        format!("no ledger in {}; give the data dir the proxy writes to (--data-dir)", ledger_dir.display())
    })?;
    let needle = serde_json::to_string(&serde_json::json!({ "req": req }))?;
    let needle = needle.trim_start_matches('{').trim_end_matches('}').as_bytes().to_vec();
    let mut start: Option<serde_json::Value> = None;
    let mut end: Option<serde_json::Value> = None;
    // principal -> the last grants_set note seen (before the start, once found).
    let mut grants: std::collections::HashMap<String, serde_json::Value> = std::collections::HashMap::new();
    let mut failure = None;
    reader.for_each_line(0, |line| {
        let is_ours = line.bytes.windows(needle.len()).any(|w| w == needle.as_slice());
        let is_grants = start.is_none() && line.bytes.windows(GRANTS.len()).any(|w| w == GRANTS);
        if !is_ours && !is_grants {
            return true;
        }
        let value: serde_json::Value = match serde_json::from_slice(&line.bytes) {
            Ok(value) => value,
            Err(e) => {
                failure = Some(anyhow::anyhow!("seq after {}: unreadable line: {e}", line.segment));
                return false;
            }
        };
        let described = serde_json::json!({
            "seq": value["seq"],
            "hash": egress_ledger::record::line_hash(&line.bytes).to_hex(),
            "segment": line.segment_name,
            "line": value,
        });
        match value["kind"].as_str() {
            Some("start") if value["req"] == req => start = Some(described),
            Some("end") if value["req"] == req => {
                end = Some(described);
                return false;
            }
            Some("note") if value["event"] == "grants_set" => {
                if let Some(principal) = value["principal"].as_str() {
                    grants.insert(principal.to_owned(), described);
                }
            }
            _ => {}
        }
        true
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let Some(start) = start else {
        eprintln!("no request {req:?} in {}", ledger_dir.display());
        return Ok(1);
    };
    let decision = end
        .as_ref()
        .and_then(|e| e["line"].get("decision").cloned())
        .or_else(|| start["line"].get("decision").cloned())
        .unwrap_or(serde_json::Value::Null);
    let in_force =
        start["line"]["principal"].as_str().and_then(|p| grants.remove(p)).unwrap_or(serde_json::Value::Null);
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({
            "req": req,
            "start": start,
            "end": end,
            "decision": decision,
            "grants_in_force": in_force,
        }))?
    );
    Ok(0)
}
