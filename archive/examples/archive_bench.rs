//! How fast the ledger is shipped to an archive and verified from it, and
//! how much memory verifying takes (docs/BENCHMARKS.md, "The archive").
//!
//! 1. Writes `--records` lines into a fresh ledger (a temporary data dir):
//!    start and end pairs shaped like docs/LEDGER.md's test vector, by
//!    `--writers` tasks (each start appended and awaited, its end submitted
//!    as the proxy does), in segments of `--segment-mib`; then waits until
//!    the compactor has compressed every sealed segment, and closes it.
//! 2. Ships it with `egress_archive::shipper::Shipper` to
//!    `s3://BUCKET/PREFIX` at `--endpoint` (rounds until nothing is left):
//!    MB/s and records/s; a task watching the shipper's status tells each
//!    segment's lines (read, checked, put, read back) from its Parquet
//!    events (built, put, read back), and the rest (the open segment's
//!    part, the checkpoints) from both.
//! 3. Verifies the archive with `egress_archive::verify::verify_archive`
//!    (`--verify-runs` times): records/s, and the peak RSS of the verify
//!    alone (`VmHWM`, reset before it through `/proc/self/clear_refs`).
//! 4. Unless `--no-breakdown`: where a verify's time can go, measured
//!    apart: GETs of the segment objects alone (one at a time), and the
//!    chain check alone on one thread (zstd, each line's header decoded
//!    and hashed, as `verify` does), in memory.
//!
//! The process's CPU (utime + stime of `/proc/self/stat`) is given for each
//! phase; with `--server-pid`, the S3 server's too.
//!
//! ```sh
//! AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... \
//!   cargo run --release -p egress-archive --example archive_bench -- \
//!   --endpoint http://127.0.0.1:PORT --bucket B --records 2000000
//! ```
//!
//! The bucket must exist; each run writes under a new prefix
//! (`bench-<unix seconds>` unless `--prefix`) and removes nothing there.
//! The last line printed is the figures as one JSON object.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use clap::Parser;
use egress_archive::layout::{Layout, LinesKind};
use egress_archive::location::{ArchiveUrl, Origin};
use egress_archive::shipper::{Shipper, ShipperConfig};
use egress_archive::status::ArchiveSnapshot;
use egress_archive::store::{ObjectStore, S3Store};
use egress_archive::verify::{ArchiveVerifyOptions, MAX_OBJECT_BYTES, verify_archive};
use egress_ledger::segment::Chain;
use egress_ledger::{EndRecord, Entry, Ledger, LedgerConfig, Outcome, StartRecord};
use serde_json::{Value, json};

#[derive(Parser, Debug)]
#[command(about = "Shipping throughput and verify-from-archive rate against an S3 server")]
struct Args {
    /// The S3 server, e.g. `http://127.0.0.1:8333` (credentials from the
    /// standard AWS variables).
    #[arg(long)]
    endpoint: String,
    /// An existing bucket.
    #[arg(long)]
    bucket: String,
    /// Folder in the bucket (default `bench-<unix seconds>`).
    #[arg(long)]
    prefix: Option<String>,
    /// Ledger lines to write (start and end pairs; an odd count ends with a note).
    #[arg(long, default_value_t = 2_000_000)]
    records: u64,
    /// Segment size, MiB (the writer seals a segment past it).
    #[arg(long, default_value_t = 64)]
    segment_mib: u64,
    /// Concurrent writers.
    #[arg(long, default_value_t = 256)]
    writers: u64,
    /// The chain's origin.
    #[arg(long, default_value = "egress-proxy@archive-bench")]
    origin: String,
    /// Where the temporary data dir goes (default: the system's).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Times to verify.
    #[arg(long, default_value_t = 2)]
    verify_runs: u32,
    /// Skip the breakdown of a verify's time.
    #[arg(long)]
    no_breakdown: bool,
    /// Only verify (and break down) the archive at `--prefix`, written by
    /// an earlier run: in a fresh process, for its memory alone.
    #[arg(long)]
    verify_only: bool,
    /// Also account this process's CPU (the S3 server).
    #[arg(long)]
    server_pid: Option<u32>,
}

/// CPU seconds (utime + stime) of a process, all threads.
#[allow(clippy::cast_precision_loss)] // clock ticks
fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = pid.map_or_else(|| "/proc/self/stat".to_owned(), |p| format!("/proc/{p}/stat"));
    let Ok(text) = std::fs::read_to_string(path) else { return f64::NAN };
    let Some((_, rest)) = text.rsplit_once(')') else { return f64::NAN };
    let fields: Vec<u64> = rest.split_whitespace().map(|f| f.parse().unwrap_or(0)).collect();
    // utime and stime are fields 14 and 15; `rest` starts at field 3.
    // CLK_TCK is 100 on Linux everywhere this runs.
    (fields[11] + fields[12]) as f64 / 100.0
}

/// `VmHWM` or `VmRSS` of this process, MiB.
#[allow(clippy::cast_precision_loss)] // KiB
fn status_mib(field: &str) -> f64 {
    let text = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse::<u64>().ok())
        .map_or(f64::NAN, |kib| kib as f64 / 1024.0)
}

/// Resets `VmHWM` to the current RSS; false where not allowed.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// CPU of this process and of the server over a phase.
struct Cpu {
    ours: f64,
    server: f64,
    server_pid: Option<u32>,
}

impl Cpu {
    fn start(server_pid: Option<u32>) -> Cpu {
        Cpu { ours: cpu_seconds(None), server: server_pid.map_or(f64::NAN, |p| cpu_seconds(Some(p))), server_pid }
    }

    fn took(&self) -> (f64, Option<f64>) {
        (cpu_seconds(None) - self.ours, self.server_pid.map(|p| cpu_seconds(Some(p)) - self.server))
    }
}

/// A start like docs/LEDGER.md's test vector, varied per request.
fn start_record(writer: u64, n: u64) -> (String, StartRecord) {
    let req = format!("0193a7c2-{writer:04x}-7b3a-9c1d-{n:012x}");
    let part = (writer * 7919 + n * 104_729) % 100_000;
    let first = (n % 128) << 20;
    let start = StartRecord {
        req: req.clone(),
        principal: Some(["alice", "trainer-gpu-01", "etl-nightly", "notebook-7"][(writer % 4) as usize].to_owned()),
        access_key_id: Some(format!("EGRSEXAMPLE{:09}", writer % 4 + 1)),
        source_ip: Some(format!("192.0.2.{}", 10 + writer % 4)),
        user_agent: Some("Boto3/1.43.11".to_owned()),
        method: "GET".to_owned(),
        operation: "GetObject".to_owned(),
        bucket: Some("training-data".to_owned()),
        key: Some(format!("imagenet/part-{part:05}.parquet")),
        version_id: None,
        range: Some(format!("bytes={first}-{}", first + (1 << 20) - 1)),
        ..StartRecord::default()
    };
    (req, start)
}

/// Its end, as in the test vector.
fn end_record(req: String, start_seq: u64, n: u64) -> EndRecord {
    EndRecord {
        req,
        start_seq,
        status: Some(206),
        bytes_sent: Some(1_048_576),
        bytes_acked: None,
        object_size: Some(134_217_728),
        etag: Some("\"9b2cf535f27731c974343645a3985328\"".to_owned()),
        upstream_request_id: Some(format!("{:016X}", n.wrapping_mul(0x9e37_79b9_7f4a_7c15))),
        upstream_id2: None,
        duration_ms: Some(41),
        outcome: Outcome::Complete,
        error_code: None,
        decision: None,
    }
}

/// Writes `records` lines with `writers` tasks.
async fn write_ledger(ledger: &Ledger, records: u64, writers: u64) -> anyhow::Result<()> {
    let remaining = Arc::new(AtomicU64::new(records));
    let take =
        |r: &AtomicU64, n: u64| r.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |x| x.checked_sub(n)).is_ok();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (ledger, remaining) = (ledger.clone(), Arc::clone(&remaining));
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            loop {
                if !take(&remaining, 2) {
                    if take(&remaining, 1) {
                        ledger.append(Entry::Note(egress_ledger::NoteRecord::new("bench"))).await?;
                    }
                    return anyhow::Ok(());
                }
                let (req, start) = start_record(writer, n);
                let appended = ledger.append(Entry::Start(start)).await?;
                // As the proxy writes an end: queued, durable with the next commit.
                ledger.submit(Entry::End(end_record(req, appended.seq, n)))?;
                n += 1;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Sealed segments not compressed yet (every plain segment but the last).
fn plain_sealed(ledger_dir: &std::path::Path) -> usize {
    let plain = std::fs::read_dir(ledger_dir).map_or(0, |d| {
        d.filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name();
                let name = name.to_string_lossy();
                // The writer names them so, in lower case.
                name.starts_with("segment-") && name.rsplit_once('.').is_some_and(|(_, ext)| ext == "jsonl")
            })
            .count()
    });
    plain.saturating_sub(1)
}

/// Bytes of the files in a directory.
fn dir_bytes(dir: &std::path::Path) -> (u64, u64) {
    let (mut plain, mut zst) = (0, 0);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let len = entry.metadata().map_or(0, |m| m.len());
        let name = entry.file_name().to_string_lossy().into_owned();
        match name.rsplit_once('.').map(|(_, ext)| ext) {
            Some("zst") => zst += len,
            Some("jsonl") => plain += len,
            _ => {}
        }
    }
    (plain, zst)
}

/// The shipper's status each time it changed, with when.
type Trace = Vec<(Duration, ArchiveSnapshot)>;

/// Per segment: the time and bytes of its lines and of its events.
#[derive(Default, Debug)]
struct Split {
    lines_s: f64,
    lines_bytes: u64,
    events_s: f64,
    events_bytes: u64,
    segments: u64,
    /// From the last segment shipped to the end of the round.
    rest_s: f64,
    rest_bytes: u64,
}

/// Reads the trace: a segment's lines are done when `bytes_shipped` grows
/// with no events file or segment counted yet; its events when
/// `segments_shipped` grows.
fn split(trace: &Trace, total: Duration) -> Split {
    let mut out = Split::default();
    let (mut mark_t, mut mark_bytes) = (Duration::ZERO, 0u64);
    let mut lines_done: Option<(Duration, u64)> = None;
    let mut last = (0u64, 0u64);
    for (t, s) in trace {
        if s.segments_shipped > last.0 {
            if let Some((lt, lb)) = lines_done.take() {
                out.lines_s += lt.saturating_sub(mark_t).as_secs_f64();
                out.lines_bytes += lb - mark_bytes;
                out.events_s += t.saturating_sub(lt).as_secs_f64();
                out.events_bytes += s.bytes_shipped - lb;
            }
            out.segments += s.segments_shipped - last.0;
            (mark_t, mark_bytes) = (*t, s.bytes_shipped);
        } else if s.events_files_shipped == last.1 && lines_done.is_none() && s.bytes_shipped > mark_bytes {
            lines_done = Some((*t, s.bytes_shipped));
        }
        last = (s.segments_shipped, s.events_files_shipped);
    }
    if let Some((_, s)) = trace.last() {
        out.rest_s = total.saturating_sub(mark_t).as_secs_f64();
        out.rest_bytes = s.bytes_shipped - mark_bytes;
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(!args.verify_only || args.prefix.is_some(), "--verify-only needs the --prefix of an archive");
    let prefix = args.prefix.clone().unwrap_or_else(|| {
        format!("bench-{}", SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs())
    });
    let url: ArchiveUrl = format!("s3://{}/{prefix}", args.bucket).parse()?;
    let origin: Origin = args.origin.parse()?;
    let store = Arc::new(S3Store::connect(Some(&args.endpoint), "us-east-1", args.bucket.clone()).await);
    let mut out = serde_json::Map::new();
    let records = if args.verify_only {
        None
    } else {
        out.insert("records_asked".into(), json!(args.records));
        out.insert("segment_mib".into(), json!(args.segment_mib));
        Some(write_and_ship(&args, &url, &origin, &store, &mut out).await?)
    };
    verify(&args, &url, &origin, &store, records, &mut out).await?;
    if !args.no_breakdown {
        breakdown(&args, &Layout::new(&url, &origin), &store, &mut out).await?;
    }
    out.insert("archive".into(), json!(format!("s3://{}/{prefix}/{}/", args.bucket, args.origin)));
    println!("{}", Value::Object(out));
    Ok(())
}

/// Steps 1 and 2: the ledger written, then shipped; its line count.
#[allow(clippy::cast_precision_loss, clippy::too_many_lines)] // figures for people; one run, step by step
async fn write_and_ship(
    args: &Args,
    url: &ArchiveUrl,
    origin: &Origin,
    store: &Arc<S3Store>,
    out: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<u64> {
    let temp = match &args.dir {
        Some(dir) => tempfile::Builder::new().prefix("archive-bench-").tempdir_in(dir)?,
        None => tempfile::Builder::new().prefix("archive-bench-").tempdir()?,
    };
    let data_dir = temp.path().to_path_buf();
    let ledger_dir = data_dir.join("ledger");

    // 1. The ledger.
    let mut config = LedgerConfig::new(&data_dir, &args.origin);
    config.writer.segment_max_bytes = args.segment_mib << 20;
    let (ledger, _) = Ledger::open(&config)?;
    let t = Instant::now();
    write_ledger(&ledger, args.records, args.writers).await?;
    ledger.checkpoint().await?;
    let write_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    while plain_sealed(&ledger_dir) > 0 {
        anyhow::ensure!(t.elapsed() < Duration::from_mins(20), "the compactor did not finish within 20 minutes");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let compact_wait_s = t.elapsed().as_secs_f64();
    let records = ledger.head().records;
    ledger.close().await?;
    let (plain, zst) = dir_bytes(&ledger_dir);
    let checkpoints = std::fs::read_dir(data_dir.join("checkpoints"))?.count();
    println!(
        "ledger: {records} lines in {write_s:.1} s ({:.0} lines/s, {} writers), compactor done {compact_wait_s:.1} s later; \
         {:.1} MiB compressed + {:.1} MiB open segment, {checkpoints} checkpoint files, in {}",
        records as f64 / write_s,
        args.writers,
        zst as f64 / 1_048_576.0,
        plain as f64 / 1_048_576.0,
        data_dir.display()
    );
    out.insert(
        "ledger".into(),
        json!({"records": records, "write_s": write_s, "compact_wait_s": compact_wait_s,
               "compressed_bytes": zst, "open_segment_bytes": plain, "checkpoint_files": checkpoints}),
    );

    // 2. Shipping.
    let shipper_config = ShipperConfig {
        data_dir: data_dir.clone(),
        url: url.clone(),
        origin: origin.clone(),
        retention: None,
        local_retention: None,
        interval: Duration::from_secs(1),
        max_lag: Duration::from_mins(5),
    };
    let mut shipper = Shipper::new(Arc::clone(store), shipper_config, None)?;
    let status = shipper.status();
    let watching = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let t = Instant::now();
    let watcher = {
        let (status, watching) = (Arc::clone(&status), Arc::clone(&watching));
        tokio::spawn(async move {
            let mut trace: Trace = Vec::new();
            let key = |s: &ArchiveSnapshot| (s.bytes_shipped, s.segments_shipped, s.events_files_shipped);
            while watching.load(Ordering::Relaxed) {
                let s = status.snapshot(None);
                if trace.last().is_none_or(|(_, last)| key(last) != key(&s)) {
                    trace.push((t.elapsed(), s));
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            trace
        })
    };
    reset_peak();
    let cpu = Cpu::start(args.server_pid);
    let mut rounds = 0;
    loop {
        shipper.round().await?;
        rounds += 1;
        let s = status.snapshot(None);
        if s.lag_records == 0 || rounds == 10 {
            break;
        }
    }
    let ship = t.elapsed();
    let (ship_cpu, ship_server_cpu) = cpu.took();
    let ship_hwm = status_mib("VmHWM");
    watching.store(false, Ordering::Relaxed);
    let trace = watcher.await?;
    let s = status.snapshot(None);
    anyhow::ensure!(s.lag_records == 0, "not caught up after {rounds} rounds: {s:?}");
    let split = split(&trace, ship);
    let ship_s = ship.as_secs_f64();
    println!(
        "ship: {rounds} round(s), {:.1} s: {} segments, {} events files, {} parts, {} checkpoints, {:.1} MiB uploaded; \
         {:.0} records/s, {:.1} MB/s uploaded; CPU {ship_cpu:.1} s{}; peak RSS {ship_hwm:.0} MiB",
        ship_s,
        s.segments_shipped,
        s.events_files_shipped,
        s.parts_shipped,
        s.checkpoints_shipped,
        s.bytes_shipped as f64 / 1_048_576.0,
        records as f64 / ship_s,
        s.bytes_shipped as f64 / ship_s / 1e6,
        ship_server_cpu.map(|c| format!(", S3 server {c:.1} s")).unwrap_or_default(),
    );
    println!(
        "  of which, over {} segments: lines {:.1} s ({:.1} MiB, {:.1} MB/s), Parquet events {:.1} s ({:.1} MiB); \
         the rest (the open segment's part, checkpoints, key) {:.1} s ({:.2} MiB)",
        split.segments,
        split.lines_s,
        split.lines_bytes as f64 / 1_048_576.0,
        split.lines_bytes as f64 / split.lines_s / 1e6,
        split.events_s,
        split.events_bytes as f64 / 1_048_576.0,
        split.rest_s,
        split.rest_bytes as f64 / 1_048_576.0,
    );
    out.insert(
        "ship".into(),
        json!({"seconds": ship_s, "rounds": rounds, "records_per_s": records as f64 / ship_s,
               "uploaded_bytes": s.bytes_shipped, "mb_per_s": s.bytes_shipped as f64 / ship_s / 1e6,
               "segments": s.segments_shipped, "events_files": s.events_files_shipped, "parts": s.parts_shipped,
               "checkpoints": s.checkpoints_shipped, "cpu_s": ship_cpu, "server_cpu_s": ship_server_cpu,
               "vm_hwm_mib": ship_hwm,
               "lines_s": split.lines_s, "lines_bytes": split.lines_bytes,
               "events_s": split.events_s, "events_bytes": split.events_bytes,
               "rest_s": split.rest_s, "rest_bytes": split.rest_bytes}),
    );

    Ok(records)
}

/// Step 3: verify, `--verify-runs` times.
#[allow(clippy::cast_precision_loss)] // figures for people
async fn verify(
    args: &Args,
    url: &ArchiveUrl,
    origin: &Origin,
    store: &Arc<S3Store>,
    records: Option<u64>,
    out: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    let layout = Layout::new(url, origin);
    let mut verifies = Vec::new();
    for run in 1..=args.verify_runs {
        let reset = reset_peak();
        let rss_before = status_mib("VmRSS");
        let cpu = Cpu::start(args.server_pid);
        let t = Instant::now();
        let report =
            verify_archive(Arc::clone(store), &layout, origin.as_str(), ArchiveVerifyOptions::default()).await?;
        let seconds = t.elapsed().as_secs_f64();
        let (cpu_s, server_cpu_s) = cpu.took();
        let hwm = status_mib("VmHWM");
        anyhow::ensure!(
            report.ok && records.is_none_or(|r| r == report.records),
            "verify: {}",
            serde_json::to_string(&report)?
        );
        println!(
            "verify {run}: ok, {} records in {seconds:.2} s: {:.0} records/s, {:.0} MB/s of lines, {:.0} MB/s stored; \
             {} segments, {} parts, {} checkpoint files; CPU {cpu_s:.1} s{}; RSS before {rss_before:.0} MiB, peak {hwm:.0} MiB{}",
            report.records,
            report.records as f64 / seconds,
            report.bytes as f64 / seconds / 1e6,
            report.stored_bytes as f64 / seconds / 1e6,
            report.segments_read,
            report.parts_read,
            report.checkpoint_objects,
            server_cpu_s.map(|c| format!(", S3 server {c:.1} s")).unwrap_or_default(),
            if reset { " (VmHWM reset before)" } else { " (VmHWM not resettable: the process's peak)" },
        );
        verifies.push(
            json!({"seconds": seconds, "records": report.records, "records_per_s": report.records as f64 / seconds,
            "bytes": report.bytes, "stored_bytes": report.stored_bytes, "segments": report.segments_read,
            "parts": report.parts_read, "checkpoint_objects": report.checkpoint_objects,
            "cpu_s": cpu_s, "server_cpu_s": server_cpu_s, "rss_before_mib": rss_before, "vm_hwm_mib": hwm,
            "vm_hwm_reset": reset}),
        );
    }
    out.insert("verify".into(), Value::Array(verifies));
    Ok(())
}

/// Step 4: where a verify's time goes.
#[allow(clippy::cast_precision_loss)] // figures for people
async fn breakdown(
    args: &Args,
    layout: &Layout,
    store: &Arc<S3Store>,
    out: &mut serde_json::Map<String, Value>,
) -> anyhow::Result<()> {
    {
        let prefix = layout.lines_prefix(LinesKind::Segment);
        let mut keys = Vec::new();
        let mut token = None;
        loop {
            let page = store.list(&prefix, None, token, false).await?;
            keys.extend(page.keys);
            token = page.next;
            if token.is_none() {
                break;
            }
        }
        // Whether the store keeps SHA-256 checksums: else every upload was
        // confirmed by reading it back whole.
        let checksums = match keys.first() {
            Some(key) => store.head(key).await?.is_some_and(|info| info.sha256_base64.is_some()),
            None => false,
        };
        println!(
            "the store {} SHA-256 checksums on HEAD{}",
            if checksums { "gives" } else { "does not give" },
            if checksums { "" } else { ": the shipper read every upload back whole" }
        );
        out.insert("store_gives_checksums".into(), json!(checksums));
        let t = Instant::now();
        let cpu = Cpu::start(args.server_pid);
        let mut objects = Vec::new();
        for key in &keys {
            objects.push(store.get(key, None, MAX_OBJECT_BYTES).await?);
        }
        let get_s = t.elapsed().as_secs_f64();
        let (get_cpu, get_server_cpu) = cpu.took();
        let stored: usize = objects.iter().map(Vec::len).sum();
        let t = Instant::now();
        let mut chain = Chain::genesis();
        let mut lines = 0u64;
        let mut bytes = 0u64;
        let mut zstd_s = 0.0;
        for object in &objects {
            let z = Instant::now();
            let content = zstd::decode_all(object.as_slice())?;
            zstd_s += z.elapsed().as_secs_f64();
            for line in content.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                chain.advance(line).map_err(|e| anyhow::anyhow!("seq {}: {e}", chain.next_seq))?;
                lines += 1;
                bytes += line.len() as u64 + 1;
            }
        }
        let check_s = t.elapsed().as_secs_f64();
        // The hash alone, for the share of the header decoding.
        let t = Instant::now();
        for object in &objects {
            let content = zstd::decode_all(object.as_slice())?;
            for line in content.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                std::hint::black_box(egress_ledger::record::line_hash(line));
            }
        }
        let hash_only_s = t.elapsed().as_secs_f64() - zstd_s;
        let decode_s = check_s - zstd_s - hash_only_s;
        println!(
            "breakdown over the {} segment objects ({lines} lines): GET one at a time {get_s:.2} s ({:.0} MB/s stored, \
             client CPU {get_cpu:.1} s{}); chain check on one thread {check_s:.2} s ({:.0} lines/s): zstd {zstd_s:.2} s, \
             SHA-256 of the lines ~{hash_only_s:.2} s, header decode and the rest ~{decode_s:.2} s",
            keys.len(),
            stored as f64 / get_s / 1e6,
            get_server_cpu.map(|c| format!(", S3 server {c:.1} s")).unwrap_or_default(),
            lines as f64 / check_s,
        );
        out.insert(
            "breakdown".into(),
            json!({"segment_objects": keys.len(), "lines": lines, "line_bytes": bytes, "stored_bytes": stored,
                   "get_s": get_s, "get_cpu_s": get_cpu, "get_server_cpu_s": get_server_cpu,
                   "check_s": check_s, "check_lines_per_s": lines as f64 / check_s,
                   "zstd_s": zstd_s, "hash_s": hash_only_s, "decode_and_rest_s": decode_s}),
        );
    }
    Ok(())
}
