//! Disk bytes per million requests, plain and with sealed segments
//! compressed, and what compaction costs.
//!
//! Appends `--requests N` (default 1,000,000) requests, each a `start` and
//! its `end` shaped like the test vector in `docs/LEDGER.md` (boto3 user
//! agent, `GetObject` with a range on `imagenet/train/part-NNNNN.parquet`,
//! an `allow` decision, UUIDs as request ids, 16-hex-digit upstream request
//! ids), 64 requests in flight so that starts and ends interleave, through
//! the real writer into 64 MiB segments with a checkpoint every 10,000
//! lines. Then it compacts every sealed segment as the compactor does (read,
//! compress at level 3, write, fsync, read back and compare, swap) on this
//! one thread, and prints the bytes on disk before and after and the
//! compaction throughput in MB/s of plain input. `--id2` adds an
//! `upstream_id2` as real S3 sends it (76 random base64 characters).
//!
//! `cargo run --release -p egress-ledger --example disk_per_million [-- --requests N] [--id2] [--dir DIR]`

#![allow(clippy::cast_precision_loss, reason = "figures printed to a few digits")]

use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use egress_ledger::checkpoint::CheckpointSigner;
use egress_ledger::compact::{SealBoundary, compact_segment, compress, decompress};
use egress_ledger::reader::LedgerReader;
use egress_ledger::storage::FsStorage;
use egress_ledger::writer::WriterCore;
use egress_ledger::{Decision, Effect, EndRecord, Entry, Outcome, StartRecord, WriterOptions};
use rand::Rng as _;
use rand::rngs::StdRng;
use rand::{RngCore as _, SeedableRng as _};
use sha2::{Digest as _, Sha256};

const IN_FLIGHT: usize = 64;
const BATCH: usize = 1024;
const MB: f64 = 1_000_000.0;

struct Args {
    requests: u64,
    id2: bool,
    dir: Option<PathBuf>,
}

fn args() -> Result<Args, Box<dyn Error>> {
    let mut parsed = Args { requests: 1_000_000, id2: false, dir: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--requests" => parsed.requests = it.next().ok_or("--requests N")?.parse()?,
            "--id2" => parsed.id2 = true,
            "--dir" => parsed.dir = Some(it.next().ok_or("--dir DIR")?.into()),
            other => return Err(format!("unknown argument {other}; see the example's docs").into()),
        }
    }
    Ok(parsed)
}

/// Requests as a client fleet makes them: a few principals, each with its
/// key and hosts, reading ranges of a large training set.
struct Fleet {
    rng: StdRng,
    id2: bool,
}

impl Fleet {
    fn hex(&mut self, digits: usize) -> String {
        (0..digits).map(|_| char::from(b"0123456789abcdef"[self.rng.gen_range(0..16)])).collect()
    }

    fn uuid(&mut self) -> String {
        let mut b = [0u8; 16];
        self.rng.fill_bytes(&mut b);
        let h = hex::encode(b);
        format!("{}-{}-7{}-{}-{}", &h[..8], &h[8..12], &h[13..16], &h[16..20], &h[20..])
    }

    /// A request's start, and the part it reads (its `ETag` is the object's).
    fn start(&mut self, req: &str) -> (Entry, u32) {
        let who = self.rng.gen_range(0..12u32);
        let part = self.rng.gen_range(0..100_000u32);
        let from = u64::from(self.rng.gen_range(0..128u32)) << 20;
        let key = format!("imagenet/train/part-{part:05}.parquet");
        let start = Entry::Start(StartRecord {
            req: req.to_owned(),
            principal: Some(format!("team-{who:02}")),
            access_key_id: Some(format!("EGRSEXAMPLE{who:09}")),
            source_ip: Some(format!("10.20.{}.{}", who, self.rng.gen_range(1..40u32))),
            user_agent: Some("Boto3/1.43.11".into()),
            method: "GET".into(),
            operation: "GetObject".into(),
            bucket: Some("training-data".into()),
            key: Some(key.clone()),
            version_id: None,
            range: Some(format!("bytes={from}-{}", from + (1 << 20) - 1)),
            decision: Some(Decision {
                effect: Effect::Allow,
                action: Some("s3:GetObject".into()),
                resource: Some(format!("arn:aws:s3:::training-data/{key}")),
                policy: Some("read-only".into()),
                policy_sha256: Some("a4c15017b4b76b4c2bf972f2428048e1bc518f34b82eb266b04ce552d8f5cf4e".into()),
                sid: None,
                limit: None,
                detail: None,
            }),
            ..StartRecord::default()
        });
        (start, part)
    }

    fn end(&mut self, req: &str, start_seq: u64, part: u32) -> Entry {
        let upstream_id2 = self.id2.then(|| {
            let mut b = [0u8; 57];
            self.rng.fill_bytes(&mut b);
            base64::Engine::encode(&base64::engine::general_purpose::STANDARD, b)
        });
        Entry::End(EndRecord {
            req: req.to_owned(),
            start_seq,
            status: Some(206),
            bytes_sent: Some(1_048_576),
            bytes_acked: Some(1_048_576 - u64::from(self.rng.gen_range(0..4096u32))),
            object_size: Some(134_217_728),
            etag: Some(format!("\"{}\"", &hex::encode(Sha256::digest(part.to_be_bytes()))[..32])),
            upstream_request_id: Some(self.hex(16).to_uppercase()),
            upstream_id2,
            duration_ms: Some(u64::from(self.rng.gen_range(5..200u32))),
            outcome: Outcome::Complete,
            error_code: None,
            decision: None,
        })
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args = args()?;
    let scratch = tempfile::tempdir_in(args.dir.clone().unwrap_or_else(std::env::temp_dir))?;
    let ledger_dir = scratch.path().join("ledger");
    let signer = Arc::new(CheckpointSigner::from_seed("egress-proxy@example", &[7u8; 32]));
    let storage = Arc::new(FsStorage::new(&ledger_dir)?);
    let (mut core, _) = WriterCore::open(storage, signer, WriterOptions::default())?;
    let mut fleet = Fleet { rng: StdRng::seed_from_u64(42), id2: args.id2 };

    // Requests in flight: ((req, part), start seq). Each batch starts up to BATCH
    // requests and ends as many of the oldest, interleaved.
    let written = Instant::now();
    let mut in_flight: std::collections::VecDeque<((String, u32), u64)> = std::collections::VecDeque::new();
    let mut started = 0u64;
    while started < args.requests || !in_flight.is_empty() {
        let mut entries = Vec::with_capacity(2 * BATCH);
        let mut reqs = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            if started < args.requests {
                let req = fleet.uuid();
                let (start, part) = fleet.start(&req);
                entries.push(start);
                reqs.push((req, part));
                started += 1;
            }
            let draining = started >= args.requests;
            if (in_flight.len() >= IN_FLIGHT || draining)
                && let Some(((req, part), seq)) = in_flight.pop_front()
            {
                entries.push(fleet.end(&req, seq, part));
            }
        }
        let kinds: Vec<bool> = entries.iter().map(|e| matches!(e, Entry::Start(_))).collect();
        let committed = core.commit(entries, false)?;
        let start_seqs = committed.appended.iter().zip(&kinds).filter(|(_, is_start)| **is_start).map(|(a, _)| a.seq);
        in_flight.extend(reqs.into_iter().zip(start_seqs));
    }
    let write_secs = written.elapsed().as_secs_f64();
    drop(core);

    let reader = LedgerReader::open(&ledger_dir)?;
    let plain_bytes = reader.total_bytes()?;
    let segments = reader.segments().to_vec();
    let (last, _) = segments.last().cloned().ok_or("no segments")?;
    let lines = reader.head()?.map_or(0, |(seq, _)| seq + 1);
    println!(
        "{} requests: {lines} lines in {} segments, {:.1} MB plain ({:.0} bytes a line), written in {write_secs:.1} s",
        args.requests,
        segments.len(),
        plain_bytes as f64 / MB,
        plain_bytes as f64 / lines as f64,
    );

    // Compaction, as the compactor thread does it, on this one thread.
    let boundary = SealBoundary::at(last);
    let (mut sealed_in, mut sealed_out) = (0u64, 0u64);
    let compacting = Instant::now();
    for (first, _) in &segments[..segments.len() - 1] {
        let done = compact_segment(&ledger_dir, *first, &boundary)?.ok_or("a sealed segment was not compacted")?;
        sealed_in += done.plain_bytes;
        sealed_out += done.compressed_bytes;
    }
    let compact_secs = compacting.elapsed().as_secs_f64();
    let after_bytes = LedgerReader::open(&ledger_dir)?.total_bytes()?;

    // The open segment, compressed in memory only: what it will take once sealed.
    let open_plain = std::fs::read(ledger_dir.join(&segments[segments.len() - 1].1))?;
    let open_compressed = compress(&open_plain)?;
    let all_compressed = sealed_out + open_compressed.len() as u64;

    // What a reader pays: decompressing a whole segment.
    let (probe_first, probe_name) = &segments[0];
    let probe = std::fs::read(ledger_dir.join(format!("{probe_name}.zst")))?;
    let decompressing = Instant::now();
    let probe_plain = decompress(&probe)?;
    let decompress_secs = decompressing.elapsed().as_secs_f64();
    let compressing = Instant::now();
    let recompressed = compress(&probe_plain)?;
    let compress_secs = compressing.elapsed().as_secs_f64();

    let per_million = |bytes: u64| bytes as f64 / MB * 1_000_000.0 / args.requests as f64;
    println!(
        "sealed segments: {:.1} MB plain -> {:.1} MB zstd-3, ratio {:.2}",
        sealed_in as f64 / MB,
        sealed_out as f64 / MB,
        sealed_in as f64 / sealed_out as f64
    );
    println!(
        "on disk now: {:.1} MB (sealed compressed, the open segment plain); every segment compressed: {:.1} MB",
        after_bytes as f64 / MB,
        all_compressed as f64 / MB
    );
    println!(
        "per million requests: {:.1} MB plain, {:.1} MB compressed",
        per_million(plain_bytes),
        per_million(all_compressed)
    );
    println!(
        "compaction on one core: {:.0} MB/s of plain input (read, compress, write, fsync, read back, compare, swap), {compact_secs:.1} s",
        sealed_in as f64 / MB / compact_secs
    );
    println!(
        "segment {probe_first}: compress alone {:.0} MB/s ({} bytes), decompress {:.0} MB/s",
        probe_plain.len() as f64 / MB / compress_secs,
        recompressed.len(),
        probe_plain.len() as f64 / MB / decompress_secs
    );
    Ok(())
}
