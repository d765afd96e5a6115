//! How big the Parquet events are and how fast lines become rows.
//!
//! Makes a chained log of realistic requests (boto3 ranged GETs of dataset
//! parts by a few principals, uuid v7 request ids, S3-style upstream ids,
//! some HEADs, listings, denials and aborts; ends interleaved with later
//! starts as concurrency makes them), cut into 64 MiB segments as the
//! writer cuts them, and converts it as the shipper would (an
//! `EventsBuilder` per segment, open starts carried) and as `ledger export
//! --format parquet` would (one `EventsWriter`). Only the conversion is
//! timed, on one thread.
//!
//! ```sh
//! cargo run --release -p egress-archive --example events_size [-- REQUESTS]
//! ```

use std::collections::{BTreeMap, BinaryHeap};
use std::time::{Duration, Instant};

use egress_archive::events::{EventsBuilder, EventsWriter};
use egress_ledger::export::ExportFilter;
use egress_ledger::record::{LineHash, encode_line, line_hash};
use egress_ledger::{Decision, Effect, EndRecord, Entry, Outcome, StartRecord};
use parquet::file::reader::{FileReader, SerializedFileReader};

const SEGMENT_BYTES: usize = 64 << 20;
const PART: u64 = 8 << 20;
const OBJECT: u64 = 128 << 20;

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` of µs since 2026-11-27T00:00:00Z.
fn ts(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let day = 27 + h / 24;
    format!("2026-11-{day:02}T{:02}:{m:02}:{s:02}.{:06}Z", h % 24, micros % 1_000_000)
}

struct Principal {
    name: &'static str,
    key: String,
    ip: String,
    policy: &'static str,
}

fn principals() -> Vec<Principal> {
    [
        ("trainer-gpu-01", "read-only"),
        ("trainer-gpu-02", "read-only"),
        ("etl-nightly", "read-write"),
        ("alice", "data-science"),
        ("notebook-7", "data-science"),
    ]
    .iter()
    .enumerate()
    .map(|(i, (name, policy))| Principal {
        name,
        key: format!("EGRSK{i:015}"),
        ip: format!("10.0.{}.{}", 3 + i, 17 + 11 * i),
        policy,
    })
    .collect()
}

const USER_AGENT: &str = "Boto3/1.44.8 md/Botocore#1.44.8 ua/2.1 os/linux#6.8.0-1019-aws md/arch#x86_64 lang/python#3.11.7 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.44.8";

/// The request `n`, arriving at `at` µs: its start, and its end's delay and record.
fn request(n: u64, at: u64, rng: &mut Rng, who: &[Principal]) -> (StartRecord, u64, EndRecord) {
    let p = &who[rng.below(who.len() as u64) as usize];
    let ms = 1_795_737_600_000 + at / 1000;
    let req = format!(
        "{:08x}-{:04x}-7{:03x}-{:04x}-{:012x}",
        ms >> 16,
        ms & 0xffff,
        rng.below(0x1000),
        0x8000 | rng.below(0x4000),
        rng.next() & 0xffff_ffff_ffff
    );
    let part = rng.below(100_000);
    let key = format!("datasets/imagenet/train/part-{part:05}.parquet");
    let kind = rng.below(100);
    let (method, operation, range, key) = match kind {
        0..=84 => {
            let first = rng.below(OBJECT / PART) * PART;
            ("GET", "GetObject", Some(format!("bytes={first}-{}", first + PART - 1)), Some(key))
        }
        85..=91 => ("GET", "GetObject", None, Some(key)),
        92..=96 => ("HEAD", "HeadObject", None, Some(key)),
        _ => ("GET", "ListObjectsV2", None, None),
    };
    let denied = rng.below(200) == 0;
    let start = StartRecord {
        req: req.clone(),
        principal: Some(p.name.to_owned()),
        access_key_id: Some(p.key.clone()),
        source_ip: Some(p.ip.clone()),
        user_agent: Some(USER_AGENT.to_owned()),
        method: method.to_owned(),
        operation: operation.to_owned(),
        bucket: Some("training-data".to_owned()),
        key: key.clone(),
        version_id: None,
        range: range.clone(),
        decision: Some(Decision {
            effect: if denied { Effect::ExplicitDeny } else { Effect::Allow },
            action: Some(format!("s3:{}", if operation == "ListObjectsV2" { "ListBucket" } else { "GetObject" })),
            resource: Some(format!("arn:aws:s3:::training-data/{}", key.as_deref().unwrap_or(""))),
            policy: Some(p.policy.to_owned()),
            policy_sha256: Some(format!(
                "{:016x}{:016x}{:016x}{:016x}",
                n % 7,
                0xa4c1_5017u64,
                p.policy.len(),
                0xbc51u64
            )),
            sid: denied.then(|| "NoRaw".to_owned()),
            limit: None,
            detail: None,
        }),
        ..StartRecord::default()
    };
    let aborted = !denied && rng.below(50) == 0;
    let (status, sent, size, outcome, error) = if denied {
        (403, 387, None, Outcome::Denied, Some("AccessDenied".to_owned()))
    } else {
        match operation {
            "GetObject" if range.is_some() => {
                let sent = if aborted { rng.below(PART) } else { PART };
                (206, sent, Some(OBJECT), if aborted { Outcome::ClientAbort } else { Outcome::Complete }, None)
            }
            "GetObject" => (200, OBJECT, Some(OBJECT), Outcome::Complete, None),
            "HeadObject" => (200, 0, Some(OBJECT), Outcome::Complete, None),
            _ => (200, 14_000 + rng.below(4000), None, Outcome::Complete, None),
        }
    };
    let duration = if denied { 1 } else { 15 + rng.below(400) + sent / (64 << 10) };
    let end = EndRecord {
        req,
        start_seq: 0,
        status: Some(status),
        bytes_sent: Some(sent),
        bytes_acked: (!denied).then(|| sent.saturating_sub(rng.below(4096))),
        object_size: size,
        etag: size.map(|_| format!("\"{:016x}{:016x}\"", part.wrapping_mul(0x9e37_79b9_7f4a_7c15), part)),
        upstream_request_id: (!denied).then(|| format!("{:016X}", rng.next())),
        upstream_id2: (!denied).then(|| format!("{:032x}{:032x}{:012x}=", rng.next(), rng.next(), n)),
        duration_ms: Some(duration),
        outcome,
        error_code: error,
        decision: None,
    };
    (start, duration * 1000, end)
}

/// The log as segments of lines; `requests` requests arriving 200 a second.
fn make_log(requests: u64) -> Vec<Vec<Vec<u8>>> {
    let who = principals();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut prev = LineHash::GENESIS;
    let mut seq = 0u64;
    let mut segments = vec![Vec::new()];
    let mut size = 0usize;
    // Ends not yet written, soonest first: (when, n) and the record by n.
    let mut pending: BinaryHeap<std::cmp::Reverse<(u64, u64)>> = BinaryHeap::new();
    let mut ends: BTreeMap<u64, EndRecord> = BTreeMap::new();
    let mut emit = |entry: &Entry, at: u64, segments: &mut Vec<Vec<Vec<u8>>>| {
        let line = encode_line(seq, &prev, &ts(at), entry);
        prev = line_hash(&line);
        seq += 1;
        size += line.len() + 1;
        if let Some(segment) = segments.last_mut() {
            segment.push(line);
        }
        if size >= SEGMENT_BYTES {
            segments.push(Vec::new());
            size = 0;
        }
        seq - 1
    };
    let mut at = 0u64;
    for n in 0..=requests {
        let next = at + 1 + rng.below(10_000);
        while let Some(std::cmp::Reverse((when, m))) = pending.peek().copied() {
            if when > next && n < requests {
                break;
            }
            pending.pop();
            let end = ends.remove(&m).unwrap_or_else(|| EndRecord::unknown("", 0, Outcome::Interrupted));
            emit(&Entry::End(end), when.max(at), &mut segments);
        }
        if n == requests {
            break;
        }
        at = next;
        let (start, delay, mut end) = request(n, at, &mut rng, &who);
        end.start_seq = emit(&Entry::Start(start), at, &mut segments);
        ends.insert(n, end);
        pending.push(std::cmp::Reverse((at + delay, n)));
    }
    segments.retain(|s| !s.is_empty());
    segments
}

/// CPU time of this (single-threaded) process, from `/proc/self/stat`:
/// rates by it do not depend on what else the machine runs.
fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name's closing parenthesis: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// Wall and CPU seconds since (`wall`, `cpu`), and requests per CPU second.
#[allow(clippy::cast_precision_loss)]
fn timing(rows: u64, wall: Instant, cpu: Option<Duration>) -> String {
    let cpu = cpu.zip(cpu_time()).map_or(0.0, |(before, now)| now.saturating_sub(before).as_secs_f64());
    format!(
        "{:.2} s wall, {cpu:.2} s CPU: {:.0} requests per CPU second",
        wall.elapsed().as_secs_f64(),
        rows as f64 / cpu
    )
}

#[allow(clippy::cast_precision_loss)] // figures for people
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests: u64 = std::env::args().nth(1).map_or(Ok(1_000_000), |n| n.parse())?;
    let started = Instant::now();
    let segments = make_log(requests);
    let lines: usize = segments.iter().map(Vec::len).sum();
    let ledger_bytes: usize = segments.iter().flatten().map(|l| l.len() + 1).sum();
    println!(
        "log: {requests} requests, {lines} lines, {} segments, {:.1} MiB ({:.0} B/request), made in {:.1} s",
        segments.len(),
        ledger_bytes as f64 / 1_048_576.0,
        ledger_bytes as f64 / requests as f64,
        started.elapsed().as_secs_f64()
    );

    // As the shipper: a builder per segment, open starts carried.
    let (wall, cpu) = (Instant::now(), cpu_time());
    let (mut files, mut rows, mut bytes) = (0usize, 0u64, 0usize);
    let mut carried: Vec<Vec<u8>> = Vec::new();
    let mut last_file = Vec::new();
    for segment in &segments {
        let mut builder = EventsBuilder::new("egress-proxy@bench");
        for line in &carried {
            builder.carry_start(line)?;
        }
        for line in segment {
            builder.push_line(line)?;
        }
        let (out, open) = builder.finish()?;
        carried = open;
        files += out.len();
        rows += out.iter().map(|f| f.rows).sum::<u64>();
        bytes += out.iter().map(|f| f.bytes.len()).sum::<usize>();
        if let Some(file) = out.into_iter().last() {
            last_file = file.bytes;
        }
    }
    println!(
        "per segment (EventsBuilder): {rows} rows in {files} files, {:.1} MiB, {:.1} B/request; {}",
        bytes as f64 / 1_048_576.0,
        bytes as f64 / rows as f64,
        timing(rows, wall, cpu)
    );

    // As the export: one streamed file.
    let (wall, cpu) = (Instant::now(), cpu_time());
    let mut writer = EventsWriter::new("egress-proxy@bench", ExportFilter::default(), Vec::new())?;
    for line in segments.iter().flatten() {
        writer.push_line(line)?;
    }
    let (file, rows) = writer.finish()?;
    println!(
        "one file (EventsWriter): {rows} rows, {:.1} MiB, {:.1} B/request; {}",
        file.len() as f64 / 1_048_576.0,
        file.len() as f64 / rows as f64,
        timing(rows, wall, cpu)
    );

    // Where the bytes go, in the last segment's file.
    let mut spill = tempfile::tempfile()?;
    std::io::Write::write_all(&mut spill, &last_file)?;
    let reader = SerializedFileReader::new(spill)?;
    let meta = reader.metadata();
    let n = meta.file_metadata().num_rows() as f64;
    let mut columns: BTreeMap<String, i64> = BTreeMap::new();
    for group in meta.row_groups() {
        for column in group.columns() {
            *columns.entry(column.column_path().string()).or_default() += column.compressed_size();
        }
    }
    let mut columns: Vec<(String, i64)> = columns.into_iter().collect();
    columns.sort_by_key(|(_, size)| -size);
    println!("bytes per row by column (one segment's file, {n} rows):");
    for (name, size) in columns {
        println!("  {name:<22} {:6.2}", size as f64 / n);
    }
    Ok(())
}
