//! The report of one reconciliation run: findings by category, each with
//! the evidence of both sides, and what was read to reach them.
//! `docs/RECONCILIATION.md` explains every field.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::aws_read::{AwsRead, LogSource};
use crate::ledger_reads::LedgerEvidence;

/// Entries a category lists at most; its count goes on past that.
pub const MAX_ENTRIES: usize = 1000;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Every log file in range was read and trusted.
    Complete,
    /// Some log files could not be read, did not parse, or failed their
    /// digest: the findings stand, but reads in those files are not known.
    Partial,
    /// The logs could not be read at all (bucket unreachable, access
    /// denied, no spec): nothing is known. Never "no bypass".
    Failed,
}

/// Which rule joined an AWS record to a ledger request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The ledger's `end.upstream_request_id` is the record's request id.
    RequestId,
    /// The access log's Request-URI names the ledger request
    /// (`x-egress-req`), and the ledger holds no request id for it.
    Tag,
    /// Neither: same bucket and key, within the tolerance in time, bytes
    /// that fit.
    Fallback,
}

/// An AWS read no ledger request accounts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Unaccounted {
    pub request_id: String,
    pub time: String,
    pub bucket: String,
    pub key: String,
    /// Who AWS says read it (ARN or canonical id).
    pub requester: Option<String>,
    pub access_key_id: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    /// HTTP status (access log) if known.
    pub status: Option<u16>,
    pub error_code: Option<String>,
    /// Bytes S3 sent, the larger of what the sources say.
    pub bytes_sent: Option<u64>,
    /// The requester is the proxy's own upstream identity: its credentials
    /// were used outside the proxy.
    pub proxy_identity: bool,
    /// Which logs recorded it.
    pub sources: Vec<LogSource>,
    /// Why no ledger request accounts for it, where more than "none has
    /// its request id" can be said (e.g. a tag naming another request).
    pub note: Option<String>,
    /// The records as AWS logged them.
    pub evidence: Vec<AwsRead>,
}

/// A proxy read AWS has not logged though its delivery window has passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MissingFromAws {
    pub ledger: LedgerEvidence,
    /// The logs that do not have it.
    pub missing_in: Vec<LogSource>,
}

/// A joined read whose byte counts disagree beyond what its outcome
/// explains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct BytesMismatch {
    pub ledger: LedgerEvidence,
    pub aws: AwsRead,
    pub rule: Rule,
    pub ledger_bytes: Option<u64>,
    pub aws_bytes: Option<u64>,
}

/// Joined reads of one principal on one bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MatchedGroup {
    pub principal: String,
    pub bucket: String,
    /// Ledger reads joined to an access log line.
    pub access_log: u64,
    /// Ledger reads joined to a CloudTrail event.
    pub cloudtrail: u64,
}

/// Joins per rule, per source.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleCounts {
    pub request_id: u64,
    pub tag: u64,
    pub fallback: u64,
}

impl RuleCounts {
    pub fn add(&mut self, rule: Rule) {
        match rule {
            Rule::RequestId => self.request_id += 1,
            Rule::Tag => self.tag += 1,
            Rule::Fallback => self.fallback += 1,
        }
    }
}

/// A log file that was not (wholly) used, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileProblem {
    pub object: String,
    pub problem: String,
}

/// A line or record that did not parse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Malformed {
    pub object: String,
    /// 1-based line number (access logs) or record number (CloudTrail).
    pub position: u64,
    pub error: String,
}

/// What was read from one log source.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SourceSummary {
    /// Where its files were listed (`s3://bucket/prefix`), one per listing.
    pub locations: Vec<String>,
    pub files_read: u64,
    /// Lines (access log) or records (CloudTrail) read.
    pub records: u64,
    /// Object reads among them, in the window.
    pub reads_in_window: u64,
    /// Object reads outside the window that no ledger read accounts for
    /// (files hold neighbouring times): not judged.
    pub reads_outside_window: u64,
    /// Records of other operations.
    pub other_records: u64,
    pub malformed_count: u64,
    /// The first [`MAX_ENTRIES`] malformed lines or records.
    pub malformed: Vec<Malformed>,
    /// Files not used: unreadable, too large, or failing their digest.
    pub unusable_files: Vec<FileProblem>,
    /// Files used though no digest vouches for them yet (CloudTrail only;
    /// a digest covers the hour before it).
    pub unverified_files: Vec<String>,
    /// Files a digest lists that are not in the bucket, and broken links
    /// between digests (CloudTrail only).
    pub integrity_failures: Vec<FileProblem>,
    /// Digest files read (CloudTrail only).
    pub digests_read: u64,
    /// Oldest and newest record time seen (RFC 3339).
    pub first_record: Option<String>,
    pub last_record: Option<String>,
    /// Share of the window that lies within the time span of at least one
    /// file read (0 to 1). A span with no file at all is either quiet or
    /// missing logs: ledger reads in it tell which.
    pub coverage: f64,
    /// Proxy reads this source has not logged yet but may still (within
    /// its delivery window).
    pub pending: u64,
    /// The same reads past the window: counted in `missing_from_aws`.
    pub missing: u64,
    /// Duplicate deliveries of a record already joined (ignored).
    pub duplicates: u64,
    pub matched_by_rule: RuleCounts,
}

/// Counts of every category (complete even where entries are capped).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Counts {
    /// Successful object reads no ledger request accounts for.
    pub bypass: u64,
    /// Refused or failed reads no ledger request accounts for.
    pub unaccounted_attempts: u64,
    pub missing_from_aws: u64,
    pub bytes_mismatch: u64,
    /// Ledger reads in the window joined to at least one AWS record.
    pub matched: u64,
    /// Ledger reads (`GetObject`) that started in the window.
    pub ledger_reads: u64,
    /// Of those, reads that never reached the upstream (refused by the
    /// proxy, upstream unreachable): AWS cannot have logged them.
    pub ledger_reads_not_forwarded: u64,
}

/// The window of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReportWindow {
    pub since: String,
    pub until: String,
}

/// How long each source may take to deliver a record before its absence
/// is a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryWindows {
    pub access_log_secs: u64,
    pub cloudtrail_secs: u64,
}

/// A whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Report {
    pub id: String,
    /// The provisioning spec whose log bucket was read.
    pub spec: String,
    pub status: RunStatus,
    /// Why a run failed or is partial.
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: String,
    pub window: ReportWindow,
    pub delivery_windows: DeliveryWindows,
    pub counts: Counts,
    /// Access log first, then CloudTrail.
    pub sources: BTreeMap<LogSource, SourceSummary>,
    pub bypass: Vec<Unaccounted>,
    pub unaccounted_attempts: Vec<Unaccounted>,
    pub missing_from_aws: Vec<MissingFromAws>,
    pub bytes_mismatch: Vec<BytesMismatch>,
    pub matched: Vec<MatchedGroup>,
    /// Warnings that are not findings (a source with no file at all).
    pub warnings: Vec<String>,
    /// The ledger seq of the note that put this run on the chain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger_seq: Option<u64>,
}

impl Report {
    /// SHA-256 of the report's JSON without `ledger_seq` (which is only
    /// known once the hash is on the chain), lowercase hex.
    #[must_use]
    pub fn sha256(&self) -> String {
        let mut bare = self.clone();
        bare.ledger_seq = None;
        hex::encode(Sha256::digest(canonical_json(&bare)))
    }

    /// A failed run: nothing is known.
    #[must_use]
    pub fn failed(id: String, spec: String, window: ReportWindow, delivery: DeliveryWindows, error: String) -> Report {
        let now = rfc3339(now_micros());
        Report {
            id,
            spec,
            status: RunStatus::Failed,
            error: Some(error),
            started_at: now.clone(),
            finished_at: now,
            window,
            delivery_windows: delivery,
            counts: Counts::default(),
            sources: BTreeMap::new(),
            bypass: Vec::new(),
            unaccounted_attempts: Vec::new(),
            missing_from_aws: Vec::new(),
            bytes_mismatch: Vec::new(),
            matched: Vec::new(),
            warnings: Vec::new(),
            ledger_seq: None,
        }
    }
}

/// The JSON a report is hashed and stored as: serde's field order, compact.
#[must_use]
pub fn canonical_json(report: &Report) -> Vec<u8> {
    // Serialising these types cannot fail: no non-string map keys.
    serde_json::to_vec(report).unwrap_or_default()
}

/// RFC 3339 with microseconds.
#[must_use]
pub fn rfc3339(micros: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_micros(micros)).to_string()
}

/// Now, in microseconds since the Unix epoch.
#[must_use]
pub fn now_micros() -> u64 {
    std::time::SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(0))
}

impl Default for DeliveryWindows {
    /// Access logs: 24 h (best effort, usually within a few hours);
    /// CloudTrail: 1 h (usually within 15 minutes).
    fn default() -> DeliveryWindows {
        DeliveryWindows { access_log_secs: 24 * 3600, cloudtrail_secs: 3600 }
    }
}

/// Reads a point in time as the CLI and the API take it: RFC 3339
/// (`2026-12-03T10:00:00Z`), or a duration before `now` (`90m`, `24h`,
/// `7d`); microseconds since the Unix epoch.
pub fn parse_time(text: &str, now: u64) -> Result<u64, String> {
    let text = text.trim();
    if let Ok(t) = humantime::parse_rfc3339_weak(text) {
        let d = t.duration_since(UNIX_EPOCH).map_err(|_| format!("{text:?} is before 1970"))?;
        return u64::try_from(d.as_micros()).map_err(|_| format!("{text:?} is too far ahead"));
    }
    match humantime::parse_duration(text) {
        Ok(ago) => Ok(now.saturating_sub(u64::try_from(ago.as_micros()).unwrap_or(u64::MAX))),
        Err(_) => Err(format!(
            "{text:?} is neither an RFC 3339 time (2026-12-03T10:00:00Z) nor a duration before now (90m, 24h, 7d)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_a_duration_ago() {
        let now = 1_800_000_000_000_000;
        assert_eq!(parse_time("2026-12-03T10:00:00Z", now), Ok(1_796_292_000_000_000));
        assert_eq!(parse_time("2h", now), Ok(now - 7_200_000_000));
        assert!(parse_time("yesterday", now).unwrap_err().contains("neither"));
    }

    #[test]
    fn the_hash_leaves_out_the_seq_it_is_recorded_at() {
        let window = ReportWindow { since: "a".into(), until: "b".into() };
        let mut report = Report::failed("id".into(), "s".into(), window, DeliveryWindows::default(), "e".into());
        let before = report.sha256();
        report.ledger_seq = Some(7);
        assert_eq!(report.sha256(), before);
        report.counts.bypass = 1;
        assert_ne!(report.sha256(), before);
    }
}
