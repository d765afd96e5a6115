//! One reconciliation run: list the log files of the window, read and
//! check them one at a time, join their reads with the ledger's, and write
//! the report.
//!
//! Memory: the ledger side of the window (about 260 bytes a read, at most
//! [`MAX_WINDOW_READS`]), [`FILES_AHEAD`] log files at a time (each at most
//! [`MAX_LOG_OBJECT_BYTES`], CloudTrail files at most
//! [`MAX_CLOUDTRAIL_UNCOMPRESSED`] once inflated), the keys listed, and the
//! capped findings. A day of logs is never held.

use std::collections::BTreeMap;

use egress_ledger::Ledger;
use egress_ledger::cursor::ReadError;
use egress_ledger::reader::LedgerReader;

use crate::access_log;
use crate::aws_read::LogSource;
use crate::cloudtrail;
use crate::ledger_reads::{LedgerReads, Window};
use crate::matching::{Join, Joined, ProxyIdentity, Settings};
use crate::report::{
    BytesMismatch, DeliveryWindows, FileProblem, MAX_ENTRIES, Malformed, MatchedGroup, MissingFromAws, Report,
    ReportWindow, RunStatus, SourceSummary, now_micros, rfc3339,
};
use crate::store::{LogStore, StoreError};

/// Largest log object a run reads (access logs are usually kilobytes).
pub const MAX_LOG_OBJECT_BYTES: u64 = 256 * 1024 * 1024;
/// Largest CloudTrail file once decompressed.
pub const MAX_CLOUDTRAIL_UNCOMPRESSED: u64 = 512 * 1024 * 1024;
/// Most ledger reads a run holds (about 2.6 GB).
pub const MAX_WINDOW_READS: u64 = 10_000_000;
/// How far apart in time the fallback rule lets a ledger read and a record be.
pub const FALLBACK_TOLERANCE_MICROS: u64 = 5 * 60 * 1_000_000;

const HOUR: u64 = 3_600_000_000;
const DAY: u64 = 24 * HOUR;

/// What one run reads and how it judges.
#[derive(Debug, Clone)]
pub struct Plan {
    pub id: String,
    /// The provisioning spec's name, for the report.
    pub spec: String,
    pub data_bucket: String,
    pub log_bucket: String,
    /// The access logs' target prefix in the log bucket.
    pub access_log_prefix: String,
    /// CloudTrail's key prefix in the log bucket (empty: the trail has none).
    pub cloudtrail_prefix: String,
    pub account: String,
    pub region: String,
    pub window: Window,
    pub delivery: DeliveryWindows,
    pub proxy: ProxyIdentity,
    /// "Now" for the delivery windows (tests move it).
    pub now: u64,
}

impl Plan {
    fn delivery_micros(&self) -> [u64; 2] {
        [self.delivery.access_log_secs * 1_000_000, self.delivery.cloudtrail_secs * 1_000_000]
    }

    fn report_window(&self) -> ReportWindow {
        ReportWindow { since: rfc3339(self.window.since), until: rfc3339(self.window.until) }
    }
}

/// Why a run could not even start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("reading the ledger: {0}")]
    Ledger(#[from] ReadError),
    #[error("the ledger was opened without its data dir or index")]
    NoIndex,
    #[error("listing s3://{bucket}/{prefix}: {error}")]
    List { bucket: String, prefix: String, error: StoreError },
    #[error("the ledger task failed: {0}")]
    Task(String),
    #[error(
        "the window holds about {lines} ledger lines, more than a run holds ({MAX_WINDOW_READS} reads): \
         reconcile shorter windows"
    )]
    WindowTooLarge { lines: u64 },
}

/// Per source while reading.
#[derive(Debug, Default)]
struct Reading {
    summary: SourceSummary,
    /// `(first, last)` record time of every file read, for coverage.
    spans: Vec<(u64, u64)>,
    problems: bool,
}

impl Reading {
    fn unusable(&mut self, object: &str, problem: String) {
        self.problems = true;
        if self.summary.unusable_files.len() < MAX_ENTRIES {
            self.summary.unusable_files.push(FileProblem { object: object.to_owned(), problem });
        }
    }
}

/// Runs `plan` against the ledger and the logs in `store`; a run that
/// cannot list the logs is a [`RunStatus::Failed`] report, never an empty one.
pub async fn run(ledger: &Ledger, store: &impl LogStore, plan: &Plan) -> Report {
    let started = now_micros();
    match run_inner(ledger, store, plan, started).await {
        Ok(report) => report,
        Err(e) => {
            let mut report =
                Report::failed(plan.id.clone(), plan.spec.clone(), plan.report_window(), plan.delivery, e.to_string());
            report.started_at = rfc3339(started);
            report
        }
    }
}

async fn run_inner(ledger: &Ledger, store: &impl LogStore, plan: &Plan, started: u64) -> Result<Report, RunError> {
    let (reader, index) = ledger_parts(ledger)?;
    let padded = plan.window.padded(FALLBACK_TOLERANCE_MICROS);
    // The ledger side is held whole: refuse a window too large to hold
    // rather than exhaust the proxy's memory.
    let lines = index.blocks_in_time(padded.since, padded.until).map_err(ReadError::from)?.len() as u64
        * egress_ledger::index::BLOCK;
    if lines / 2 > MAX_WINDOW_READS {
        return Err(RunError::WindowTooLarge { lines });
    }
    let reads = {
        let (reader, index) = (reader.clone(), std::sync::Arc::clone(&index));
        tokio::task::spawn_blocking(move || LedgerReads::load(&reader, &index, padded))
            .await
            .map_err(|e| RunError::Task(e.to_string()))??
    };
    let settings = Settings {
        window: plan.window,
        tolerance: FALLBACK_TOLERANCE_MICROS,
        delivery: plan.delivery_micros(),
        now: plan.now,
        proxy: plan.proxy.clone(),
    };
    let mut join = Join::new(reads, settings);
    let mut access = Reading::default();
    let mut trail = Reading::default();
    read_access_logs(store, plan, &mut join, &mut access).await?;
    read_cloudtrail(store, plan, &mut join, &mut trail).await?;

    let active = [access.summary.files_read > 0, trail.summary.files_read > 0];
    let (joined, reads) = join.finish(active);
    let report = tokio::task::spawn_blocking({
        let plan = plan.clone();
        move || assemble(&plan, started, joined, &reads, &reader, &index, [access, trail])
    })
    .await
    .map_err(|e| RunError::Task(e.to_string()))??;
    Ok(report)
}

fn ledger_parts(ledger: &Ledger) -> Result<(LedgerReader, std::sync::Arc<egress_ledger::index::EventIndex>), RunError> {
    let store = ledger.store().ok_or(RunError::NoIndex)?;
    let dirs = ledger.data_dir().ok_or(RunError::NoIndex)?;
    let reader = egress_ledger::cursor::open_reader(&dirs.ledger())?;
    Ok((reader, std::sync::Arc::clone(&store.index)))
}

/// What a listing does with a key.
enum Listed {
    Keep,
    Skip,
    /// Past what the run needs: the listing ends.
    Stop,
}

/// The keys under `prefix` after `start_after` that `judge` keeps, page by
/// page, until it says a key is past what the run needs.
async fn list_all(
    store: &impl LogStore,
    bucket: &str,
    prefix: &str,
    start_after: Option<&str>,
    mut judge: impl FnMut(&str) -> Listed,
) -> Result<Vec<String>, RunError> {
    let mut keys = Vec::new();
    let mut token = None;
    loop {
        let page = store.list(prefix, start_after, token).await.map_err(|error| RunError::List {
            bucket: bucket.to_owned(),
            prefix: prefix.to_owned(),
            error,
        })?;
        for key in page.keys {
            match judge(&key) {
                Listed::Keep => keys.push(key),
                Listed::Skip => {}
                Listed::Stop => return Ok(keys),
            }
        }
        match page.next {
            Some(next) => token = Some(next),
            None => return Ok(keys),
        }
    }
}

async fn read_access_logs(
    store: &impl LogStore,
    plan: &Plan,
    join: &mut Join,
    reading: &mut Reading,
) -> Result<(), RunError> {
    let window = plan.window;
    let last_delivery = window.until.saturating_add(plan.delivery_micros()[0]);
    // Simple layout: names carry the delivery time, which is after the
    // records' own; list from the window's start.
    let prefix = &plan.access_log_prefix;
    let start_after = access_log::simple_start_after(prefix, window.since.saturating_sub(HOUR));
    let mut keys = list_all(store, &plan.log_bucket, prefix, Some(&start_after), |key| {
        match access_log::parse_log_key(prefix, key) {
            Some(k) if matches!(k.layout, access_log::KeyLayout::Simple) => {
                if k.name_time_micros > last_delivery {
                    Listed::Stop
                } else {
                    Listed::Keep
                }
            }
            // Partitioned keys (listed by day below) and anything else.
            _ => Listed::Skip,
        }
    })
    .await?;
    reading.summary.locations.push(format!("{}{prefix}", store.location()));
    // Date-partitioned layout: one prefix per day (by event or delivery
    // time, as the bucket's logging says), from the day before the window.
    for day in access_log::partitioned_day_prefixes(
        prefix,
        &plan.account,
        &plan.region,
        &plan.data_bucket,
        window.since.saturating_sub(DAY),
        last_delivery,
    ) {
        keys.extend(list_all(store, &plan.log_bucket, &day, None, |_| Listed::Keep).await?);
    }
    // Files are parsed on blocking threads, a few ahead of the join, which
    // takes them in order: parsing one overlaps fetching the next and
    // joining the one before, and never holds up the async runtime.
    let mut parsing = std::collections::VecDeque::new();
    for key in keys {
        match store.get(&key, MAX_LOG_OBJECT_BYTES).await {
            Ok(bytes) => parsing.push_back(tokio::task::spawn_blocking(move || parse_access_log(key, &bytes))),
            Err(e) => reading.unusable(&key, e.to_string()),
        }
        while parsing.len() >= FILES_AHEAD {
            if let Some(next) = parsing.pop_front() {
                absorb_access_log(next.await.map_err(|e| RunError::Task(e.to_string()))?, join, reading);
            }
        }
    }
    for next in parsing {
        absorb_access_log(next.await.map_err(|e| RunError::Task(e.to_string()))?, join, reading);
    }
    Ok(())
}

/// Files parsed ahead of the join, at most.
const FILES_AHEAD: usize = 3;

/// One access log object, parsed.
struct ParsedAccessLog {
    key: String,
    reads: Vec<crate::AwsRead>,
    records: u64,
    other_records: u64,
    /// The first [`MAX_ENTRIES`] malformed lines, and how many there were.
    malformed: Vec<(u64, String)>,
    malformed_count: u64,
    /// Oldest and newest record time, any operation.
    span: Option<(u64, u64)>,
}

fn parse_access_log(key: String, bytes: &[u8]) -> ParsedAccessLog {
    let mut out = ParsedAccessLog {
        key,
        reads: Vec::new(),
        records: 0,
        other_records: 0,
        malformed: Vec::new(),
        malformed_count: 0,
        span: None,
    };
    let malformed = |out: &mut ParsedAccessLog, position: u64, why: String| {
        out.malformed_count += 1;
        if out.malformed.len() < MAX_ENTRIES {
            out.malformed.push((position, why));
        }
    };
    for (n, raw) in bytes.split(|&b| b == b'\n').enumerate() {
        if raw.is_empty() || raw == b"\r" {
            continue;
        }
        out.records += 1;
        let position = n as u64 + 1;
        let Ok(text) = std::str::from_utf8(raw) else {
            malformed(&mut out, position, "not UTF-8".to_owned());
            continue;
        };
        let line = match access_log::parse_line(text) {
            Ok(line) => line,
            Err(e) => {
                malformed(&mut out, position, e.to_string());
                continue;
            }
        };
        let t = line.time_micros;
        out.span = Some(out.span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        match line.object_read() {
            Some(read) => out.reads.push(read),
            None => out.other_records += 1,
        }
    }
    out
}

fn absorb_access_log(parsed: ParsedAccessLog, join: &mut Join, reading: &mut Reading) {
    let summary = &mut reading.summary;
    summary.files_read += 1;
    summary.records += parsed.records;
    summary.other_records += parsed.other_records;
    summary.malformed_count += parsed.malformed_count;
    for (position, error) in parsed.malformed {
        if summary.malformed.len() < MAX_ENTRIES {
            summary.malformed.push(Malformed { object: parsed.key.clone(), position, error });
        }
    }
    if let Some(span) = parsed.span {
        reading.spans.push(span);
    }
    for read in parsed.reads {
        if join.in_window(&read) {
            summary.reads_in_window += 1;
        }
        join.observe(read);
    }
}

async fn read_cloudtrail(
    store: &impl LogStore,
    plan: &Plan,
    join: &mut Join,
    reading: &mut Reading,
) -> Result<(), RunError> {
    use cloudtrail::digest::{Digest, DigestIndex, DigestVerdict, FoundDigest, FoundLogFile};
    let window = plan.window;
    let last_delivery = window.until.saturating_add(plan.delivery_micros()[1]);
    let (prefix, account, region) = (&plan.cloudtrail_prefix, &plan.account, &plan.region);
    // Digests come hourly and cover the hour before: list a little past
    // the last delivery.
    let mut digests: Vec<(String, Vec<u8>)> = Vec::new();
    for day in cloudtrail::layout::digest_day_prefixes(prefix, account, region, window.since, last_delivery + 2 * HOUR)
    {
        for key in list_all(store, &plan.log_bucket, &day, None, |_| Listed::Keep).await? {
            match fetch_gunzipped(store, &key).await {
                Ok(bytes) => digests.push((key, bytes)),
                Err(problem) => reading.unusable(&key, problem),
            }
        }
    }
    reading.summary.digests_read = digests.len() as u64;
    // The digest before the first one read, so that its link is checked too.
    let mut previous_outside = Vec::new();
    for (_, bytes) in &digests {
        if let Ok(digest) = Digest::parse(bytes)
            && let Some(previous) = digest.previous_digest_s3_object
            && !digests.iter().any(|(k, _)| *k == previous)
            && !previous_outside.contains(&previous)
        {
            previous_outside.push(previous);
        }
    }
    for key in previous_outside {
        if let Ok(bytes) = fetch_gunzipped(store, &key).await {
            digests.push((key, bytes));
        }
    }
    let found_digests: Vec<FoundDigest<'_>> =
        digests.iter().map(|(key, bytes)| FoundDigest { key, uncompressed: bytes }).collect();
    let index = DigestIndex::new(&found_digests);
    let days = cloudtrail::layout::log_day_prefixes(prefix, account, region, window.since, last_delivery);
    let mut found: Vec<(String, [u8; 32])> = Vec::new();
    // Parsed on blocking threads a few ahead, as for access logs.
    let mut parsing = std::collections::VecDeque::new();
    for day in &days {
        reading.summary.locations.push(format!("{}{day}", store.location()));
        for key in list_all(store, &plan.log_bucket, day, None, |_| Listed::Keep).await? {
            match store.get(&key, MAX_LOG_OBJECT_BYTES).await {
                Ok(bytes) => parsing.push_back(tokio::task::spawn_blocking(move || parse_trail_file(key, &bytes))),
                Err(e) => reading.unusable(&key, e.to_string()),
            }
            while parsing.len() >= FILES_AHEAD {
                if let Some(next) = parsing.pop_front() {
                    let parsed = next.await.map_err(|e| RunError::Task(e.to_string()))?;
                    absorb_trail_file(parsed, &index, &mut found, join, reading);
                }
            }
        }
    }
    for next in parsing {
        let parsed = next.await.map_err(|e| RunError::Task(e.to_string()))?;
        absorb_trail_file(parsed, &index, &mut found, join, reading);
    }
    // The chain between digests, and files they list that are gone.
    let found_files: Vec<FoundLogFile<'_>> =
        found.iter().map(|(key, hash)| FoundLogFile { key, sha256: *hash }).collect();
    let integrity = index.into_report(&found_files);
    for check in integrity.digests {
        let problem = match check.verdict {
            DigestVerdict::ChainBroken { previous, expected, actual } => Some(format!(
                "links to {previous} by SHA-256 {expected}, but that digest's is {actual}: one of them was changed"
            )),
            DigestVerdict::UnsupportedAlgorithm { previous, algorithm } => {
                Some(format!("links to {previous} with {algorithm:?}, not SHA-256: the link is not checked"))
            }
            DigestVerdict::Unreadable { reason } => Some(format!("not a digest file: {reason}")),
            DigestVerdict::Linked { .. } | DigestVerdict::PreviousNotGiven { .. } | DigestVerdict::Starting => None,
        }
        .or_else(|| check.recorded_key.map(|k| format!("says it was delivered to {k}: moved or copied")));
        if let Some(problem) = problem {
            reading.problems = true;
            reading.summary.integrity_failures.push(FileProblem { object: check.key, problem });
        }
    }
    for missing in integrity.missing {
        // Only where this run listed: a digest also lists files of the
        // day before the window.
        if days.iter().any(|day| missing.object.starts_with(day.as_str())) {
            reading.problems = true;
            reading.summary.integrity_failures.push(FileProblem {
                problem: format!("listed by digest {} but not in the bucket: deleted after delivery", missing.digest),
                object: missing.object,
            });
        }
    }
    Ok(())
}

/// One CloudTrail log file: its SHA-256 (of the uncompressed content, as
/// the digests hash it) and its reads, or why it could not be read.
struct ParsedTrailFile {
    key: String,
    sha256: Option<[u8; 32]>,
    parsed: Result<cloudtrail::events::LogFileReads, String>,
}

fn parse_trail_file(key: String, compressed: &[u8]) -> ParsedTrailFile {
    match cloudtrail::gunzip(compressed, MAX_CLOUDTRAIL_UNCOMPRESSED) {
        Ok(bytes) => ParsedTrailFile {
            key,
            sha256: Some(cloudtrail::digest::sha256(&bytes)),
            parsed: cloudtrail::events::parse_log_file(&bytes).map_err(|e| format!("does not parse: {e}")),
        },
        Err(e) => ParsedTrailFile { key, sha256: None, parsed: Err(e.to_string()) },
    }
}

/// Uses a parsed CloudTrail file once the digests vouch for it (or none
/// lists it yet); a file they contradict is not used.
fn absorb_trail_file(
    file: ParsedTrailFile,
    index: &cloudtrail::digest::DigestIndex<'_>,
    found: &mut Vec<(String, [u8; 32])>,
    join: &mut Join,
    reading: &mut Reading,
) {
    use cloudtrail::digest::{FoundLogFile, LogFileVerdict};
    let ParsedTrailFile { key, sha256, parsed } = file;
    let Some(hash) = sha256 else {
        reading.unusable(&key, parsed.err().unwrap_or_default());
        return;
    };
    found.push((key.clone(), hash));
    match index.verdict(&FoundLogFile { key: &key, sha256: hash }) {
        LogFileVerdict::Verified { .. } => {}
        LogFileVerdict::NotInDigest => reading.summary.unverified_files.push(key.clone()),
        LogFileVerdict::HashMismatch { digest, expected, actual } => {
            reading.unusable(
                &key,
                format!("SHA-256 {actual} differs from {expected} in digest {digest}: changed after delivery"),
            );
            return;
        }
        LogFileVerdict::UnsupportedAlgorithm { digest, algorithm } => {
            reading.unusable(&key, format!("digest {digest} hashes it with {algorithm:?}, not SHA-256"));
            return;
        }
    }
    let file = match parsed {
        Ok(file) => file,
        Err(problem) => {
            reading.unusable(&key, problem);
            return;
        }
    };
    reading.summary.files_read += 1;
    let summary = file.summary;
    reading.summary.records += summary.records as u64;
    reading.summary.other_records += summary.skipped as u64;
    if summary.malformed > 0 {
        reading.summary.malformed_count += summary.malformed as u64;
        if reading.summary.malformed.len() < MAX_ENTRIES {
            reading.summary.malformed.push(Malformed {
                object: key.clone(),
                position: 0,
                error: format!("{} GetObject records without requestID, bucket or key", summary.malformed),
            });
        }
    }
    if let (Some(first), Some(last)) = (summary.oldest_event_micros, summary.newest_event_micros) {
        reading.spans.push((first, last));
    }
    for read in file.reads {
        if join.in_window(&read) {
            reading.summary.reads_in_window += 1;
        }
        join.observe(read);
    }
}

async fn fetch_gunzipped(store: &impl LogStore, key: &str) -> Result<Vec<u8>, String> {
    let compressed = store.get(key, MAX_LOG_OBJECT_BYTES).await.map_err(|e| e.to_string())?;
    cloudtrail::gunzip(&compressed, MAX_CLOUDTRAIL_UNCOMPRESSED).map_err(|e| e.to_string())
}

/// Share of `window` inside the union of `spans`.
#[allow(clippy::cast_precision_loss)] // microsecond spans far below 2^52
fn coverage(window: Window, spans: &mut [(u64, u64)]) -> f64 {
    if window.until <= window.since {
        return 0.0;
    }
    spans.sort_unstable();
    let mut covered = 0u64;
    let mut reach = window.since;
    for &(first, last) in spans.iter() {
        let (a, b) = (first.max(reach), last.saturating_add(1).min(window.until));
        if b > a {
            covered += b - a;
            reach = b;
        }
    }
    covered as f64 / (window.until - window.since) as f64
}

fn assemble(
    plan: &Plan,
    started: u64,
    joined: Joined,
    reads: &LedgerReads,
    reader: &LedgerReader,
    index: &egress_ledger::index::EventIndex,
    readings: [Reading; 2],
) -> Result<Report, RunError> {
    let details = |i: u32| LedgerReads::details(reader, index, reads.get(i));
    let mut missing_from_aws = Vec::with_capacity(joined.missing.len());
    for (i, missing_in) in joined.missing {
        missing_from_aws.push(MissingFromAws { ledger: details(i)?, missing_in });
    }
    let mut bytes_mismatch = Vec::with_capacity(joined.mismatches.len());
    for (i, aws, rule) in joined.mismatches {
        let ledger = details(i)?;
        bytes_mismatch.push(BytesMismatch {
            ledger_bytes: ledger.bytes_sent,
            aws_bytes: aws.bytes_sent,
            ledger,
            aws,
            rule,
        });
    }
    let matched = joined
        .groups
        .into_iter()
        .map(|(principal, bucket, n)| MatchedGroup { principal, bucket, access_log: n[0], cloudtrail: n[1] })
        .collect();
    let mut sources = BTreeMap::new();
    let mut warnings = Vec::new();
    let mut partial = false;
    for (source, mut reading) in LogSource::ALL.into_iter().zip(readings) {
        let s = source.index();
        let summary = &mut reading.summary;
        summary.coverage = coverage(plan.window, &mut reading.spans);
        summary.first_record = reading.spans.iter().map(|s| s.0).min().map(rfc3339);
        summary.last_record = reading.spans.iter().map(|s| s.1).max().map(rfc3339);
        summary.pending = joined.pending[s];
        summary.missing = joined.missing_per_source[s];
        summary.duplicates = joined.duplicates[s];
        summary.matched_by_rule = joined.rules[s].clone();
        summary.reads_outside_window = joined.outside[s];
        if summary.files_read == 0 {
            warnings.push(format!(
                "no {} file was read for this window: its reads are unconfirmed (is {} delivering to {}?)",
                source.as_str(),
                match source {
                    LogSource::AccessLog => "server access logging",
                    LogSource::Cloudtrail => "the trail (with S3 data events)",
                },
                summary.locations.first().map_or("the log bucket", String::as_str),
            ));
        }
        partial |= reading.problems || summary.malformed_count > 0;
        sources.insert(source, reading.summary);
    }
    let status = if partial { RunStatus::Partial } else { RunStatus::Complete };
    let error = partial.then(|| {
        "some log files or lines could not be used (see sources.*.unusable_files, integrity_failures, malformed): \
         reads recorded only there are not known"
            .to_owned()
    });
    Ok(Report {
        id: plan.id.clone(),
        spec: plan.spec.clone(),
        status,
        error,
        started_at: rfc3339(started),
        finished_at: rfc3339(now_micros()),
        window: plan.report_window(),
        delivery_windows: plan.delivery,
        counts: joined.counts,
        sources,
        bypass: joined.bypass,
        unaccounted_attempts: joined.unaccounted_attempts,
        missing_from_aws,
        bytes_mismatch,
        matched,
        warnings,
        ledger_seq: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_is_the_union_of_file_spans_inside_the_window() {
        let w = Window { since: 100, until: 200 };
        assert!((coverage(w, &mut [(0, 1000)]) - 1.0).abs() < 1e-9);
        assert!((coverage(w, &mut [(150, 159), (100, 109), (105, 114)]) - 0.25).abs() < 1e-9);
        assert!(coverage(w, &mut []).abs() < 1e-9);
    }
}
