//! CloudTrail digest files, and the check that the log files read are the
//! ones CloudTrail delivered.
//!
//! With log file validation on, CloudTrail delivers a digest file every hour
//! listing each log file it delivered in that hour with the SHA-256 of the
//! log file's *uncompressed* content (`logFiles[].hashValue`, hex), and
//! naming the previous digest file with the SHA-256 of *its* uncompressed
//! content (`previousDigestHashValue`, hex). [`check_integrity`] recomputes
//! both from what was read, which catches a log file that was changed
//! (hash mismatch), deleted (listed but missing) or slipped in (in no
//! digest), and a digest that was changed or deleted (the next one's
//! `previousDigestHashValue` no longer matches). [`DigestIndex`] gives the
//! same verdicts one log file at a time, for a caller that wants to know a
//! file is trusted before it reads the file's events.
//!
//! What it does not check: each digest's RSA signature (`SHA256withRSA`,
//! in the digest object's `x-amz-meta-signature` metadata, verified with the
//! region's public key from CloudTrail's `ListPublicKeys`). Without it, a
//! writer to the log bucket who rewrites a log file *and* every digest after
//! it, consistently, is not caught; the chain only proves that the files
//! agree with each other. The signature check belongs with the code that
//! reads the objects' metadata and calls CloudTrail.
//!
//! Only SHA-256 is trusted: a file or link hashed with another algorithm is
//! reported as unsupported, never as verified.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest as _, Sha256};

use crate::civil;

/// The only hash algorithm CloudTrail documents, and the only one checked.
pub const SHA_256: &str = "SHA-256";

/// Why a digest file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    #[error("not a CloudTrail digest file: {0} (expected gunzipped JSON from AWSLogs/<account>/CloudTrail-Digest/)")]
    Json(#[from] serde_json::Error),
}

/// One digest file, as CloudTrail wrote it. Times are microseconds since the
/// Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub aws_account_id: String,
    /// Start of the span of *delivery* times this digest covers.
    #[serde(rename = "digestStartTime", deserialize_with = "time")]
    pub digest_start_micros: u64,
    #[serde(rename = "digestEndTime", deserialize_with = "time")]
    pub digest_end_micros: u64,
    pub digest_s3_bucket: String,
    /// The key CloudTrail delivered this digest to; its signature covers it.
    pub digest_s3_object: String,
    /// Newest event in the listed log files; `None` when none are listed.
    #[serde(rename = "newestEventTime", default, deserialize_with = "optional_time")]
    pub newest_event_micros: Option<u64>,
    #[serde(rename = "oldestEventTime", default, deserialize_with = "optional_time")]
    pub oldest_event_micros: Option<u64>,
    /// The previous digest's bucket and key, its hex hash and the algorithm;
    /// all `None` in a starting digest (validation just turned on, or
    /// logging restarted).
    #[serde(default)]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(default)]
    pub previous_digest_s3_object: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_value: Option<String>,
    #[serde(default)]
    pub previous_digest_hash_algorithm: Option<String>,
    /// The log files delivered in this digest's span. Empty for an hour
    /// without events: that is itself a statement that none were delivered.
    pub log_files: Vec<DigestedLogFile>,
}

/// A log file as a digest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DigestedLogFile {
    pub s3_bucket: String,
    pub s3_object: String,
    /// Hex hash of the log file's uncompressed content.
    pub hash_value: String,
    pub hash_algorithm: String,
    #[serde(rename = "newestEventTime", default, deserialize_with = "optional_time")]
    pub newest_event_micros: Option<u64>,
    #[serde(rename = "oldestEventTime", default, deserialize_with = "optional_time")]
    pub oldest_event_micros: Option<u64>,
}

impl Digest {
    /// Reads a gunzipped digest file.
    pub fn parse(json: &[u8]) -> Result<Digest, DigestError> {
        Ok(serde_json::from_slice(json)?)
    }
}

fn time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
    let text = String::deserialize(deserializer)?;
    civil::parse_iso8601_micros(&text)
        .ok_or_else(|| serde::de::Error::custom(format_args!("{text:?} is not a UTC time like 2026-12-03T10:00:00Z")))
}

fn optional_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) => civil::parse_iso8601_micros(&text).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format_args!("{text:?} is not a UTC time like 2026-12-03T10:00:00Z"))
        }),
    }
}

/// SHA-256 of some bytes: give it a log file's or digest's *uncompressed*
/// content.
#[must_use]
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

/// A digest file read from the bucket: where it was, and its gunzipped bytes.
#[derive(Debug, Clone, Copy)]
pub struct FoundDigest<'a> {
    pub key: &'a str,
    pub uncompressed: &'a [u8],
}

/// A log file read from the bucket: where it was, and the [`sha256`] of its
/// gunzipped bytes.
#[derive(Debug, Clone, Copy)]
pub struct FoundLogFile<'a> {
    pub key: &'a str,
    pub sha256: [u8; 32],
}

/// What the digests say about the files read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct IntegrityReport {
    /// One per digest given, by key.
    pub digests: Vec<DigestCheck>,
    /// One per log file given, by key.
    pub log_files: Vec<LogFileCheck>,
    /// Log files a digest lists that were not among those given, by digest.
    pub missing: Vec<MissingLogFile>,
}

impl IntegrityReport {
    /// Whether nothing contradicts the digests: every link checked holds,
    /// every listed file is there with its hash, every digest is where it
    /// says it was delivered. Files in no digest yet and chains whose start
    /// was not given are not contradictions.
    #[must_use]
    pub fn is_intact(&self) -> bool {
        self.missing.is_empty()
            && self.digests.iter().all(|d| {
                d.recorded_key.is_none()
                    && matches!(
                        d.verdict,
                        DigestVerdict::Linked { .. } | DigestVerdict::PreviousNotGiven { .. } | DigestVerdict::Starting
                    )
            })
            && self
                .log_files
                .iter()
                .all(|f| matches!(f.verdict, LogFileVerdict::Verified { .. } | LogFileVerdict::NotInDigest))
    }
}

/// One digest's place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DigestCheck {
    pub key: String,
    pub verdict: DigestVerdict,
    /// The key the digest says it was delivered to (`digestS3Object`), when
    /// that is not where it was found. A copied or moved digest vouches for
    /// nothing here: its signature covers the recorded key.
    pub recorded_key: Option<String>,
    /// `digestEndTime`; `None` when the digest is unreadable.
    pub end_micros: Option<u64>,
    /// How many log files it lists.
    pub log_files_listed: usize,
}

/// What a digest's link to its previous digest shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DigestVerdict {
    /// The previous digest was given, and its SHA-256 is the one recorded.
    Linked { previous: String },
    /// The previous digest was given, and its SHA-256 is not the one
    /// recorded: it, or this digest, was changed after delivery.
    ChainBroken { previous: String, expected: String, actual: String },
    /// The previous digest was not among those given: the start of what was
    /// read. Fetch `previous` and check again to extend the chain back.
    PreviousNotGiven { previous: String },
    /// A starting digest: it names no previous one.
    Starting,
    /// The link is hashed with an algorithm other than SHA-256 (or none is
    /// named), so it cannot be checked.
    UnsupportedAlgorithm { previous: String, algorithm: Option<String> },
    /// Not a digest file this module can read.
    Unreadable { reason: String },
}

/// One log file against the digests that list it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LogFileCheck {
    pub key: String,
    pub verdict: LogFileVerdict,
}

/// What the digests say about one log file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogFileVerdict {
    /// A digest lists it with the SHA-256 of its content.
    Verified { digest: String },
    /// A digest lists it with another hash: it was changed after delivery.
    HashMismatch { digest: String, expected: String, actual: String },
    /// The digests that list it hash it with an algorithm other than SHA-256.
    UnsupportedAlgorithm { digest: String, algorithm: String },
    /// No digest given lists it: not digested yet (digests come hourly), or
    /// not delivered by CloudTrail.
    NotInDigest,
}

/// A log file a digest lists that was not found: deleted, or outside what
/// was listed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub struct MissingLogFile {
    pub digest: String,
    pub object: String,
}

/// Checks the digests found in a span of time against each other and against
/// the log files found. Pure: fetching is the caller's. The same as
/// `DigestIndex::new(digests).into_report(log_files)`.
///
/// Log files are matched on object key alone (a trail delivers digests and
/// log files to one bucket). For `missing` to mean "deleted", `log_files`
/// must hold every log file under every day a given digest's log files fall
/// in: list the log days from the digests' oldest `oldestEventTime` to their
/// newest `digestEndTime`, not just the span of interest.
#[must_use]
pub fn check_integrity(digests: &[FoundDigest<'_>], log_files: &[FoundLogFile<'_>]) -> IntegrityReport {
    DigestIndex::new(digests).into_report(log_files)
}

/// The digests found, read and chained once, to judge log files against:
/// one at a time as they are read ([`DigestIndex::verdict`]), then all of
/// them ([`DigestIndex::into_report`]). Both apply the same rule.
#[derive(Debug)]
pub struct DigestIndex<'a> {
    /// One per digest, by key.
    digests: Vec<DigestCheck>,
    /// Every listing of every log file, by the log file's object key.
    listings: HashMap<String, Vec<Listing<'a>>>,
}

/// A log file as one digest lists it.
#[derive(Debug)]
struct Listing<'a> {
    digest: &'a str,
    hash_value: String,
    hash_algorithm: String,
}

impl<'a> DigestIndex<'a> {
    /// Reads the digests and checks each one's link to its previous digest.
    #[must_use]
    pub fn new(digests: &[FoundDigest<'a>]) -> DigestIndex<'a> {
        let hashes: HashMap<&str, [u8; 32]> =
            digests.iter().map(|found| (found.key, sha256(found.uncompressed))).collect();
        let mut checks = Vec::with_capacity(digests.len());
        let mut listings: HashMap<String, Vec<Listing<'a>>> = HashMap::new();
        for found in digests {
            let digest = match Digest::parse(found.uncompressed) {
                Ok(digest) => digest,
                Err(error) => {
                    checks.push(DigestCheck {
                        key: found.key.to_owned(),
                        verdict: DigestVerdict::Unreadable { reason: error.to_string() },
                        recorded_key: None,
                        end_micros: None,
                        log_files_listed: 0,
                    });
                    continue;
                }
            };
            checks.push(DigestCheck {
                key: found.key.to_owned(),
                verdict: link_verdict(&digest, &hashes),
                recorded_key: (digest.digest_s3_object != found.key).then(|| digest.digest_s3_object.clone()),
                end_micros: Some(digest.digest_end_micros),
                log_files_listed: digest.log_files.len(),
            });
            for listed in digest.log_files {
                listings.entry(listed.s3_object).or_default().push(Listing {
                    digest: found.key,
                    hash_value: listed.hash_value,
                    hash_algorithm: listed.hash_algorithm,
                });
            }
        }
        checks.sort_by(|a, b| a.key.cmp(&b.key));
        DigestIndex { digests: checks, listings }
    }

    /// The digests' links, by key.
    #[must_use]
    pub fn digests(&self) -> &[DigestCheck] {
        &self.digests
    }

    /// What the digests say of one log file. When several list it, the worst
    /// listing wins: a mismatch anywhere outweighs a match elsewhere, and a
    /// match outweighs listings that cannot be checked.
    #[must_use]
    pub fn verdict(&self, log_file: &FoundLogFile<'_>) -> LogFileVerdict {
        let actual = &log_file.sha256;
        let mut verdict = LogFileVerdict::NotInDigest;
        for listing in self.listings.get(log_file.key).into_iter().flatten() {
            if !is_sha256(&listing.hash_algorithm) {
                if matches!(verdict, LogFileVerdict::NotInDigest) {
                    verdict = LogFileVerdict::UnsupportedAlgorithm {
                        digest: listing.digest.to_owned(),
                        algorithm: listing.hash_algorithm.clone(),
                    };
                }
            } else if hex_matches(&listing.hash_value, actual) {
                if !matches!(verdict, LogFileVerdict::Verified { .. }) {
                    verdict = LogFileVerdict::Verified { digest: listing.digest.to_owned() };
                }
            } else {
                return LogFileVerdict::HashMismatch {
                    digest: listing.digest.to_owned(),
                    expected: listing.hash_value.clone(),
                    actual: hex::encode(actual),
                };
            }
        }
        verdict
    }

    /// The report over all the log files found: each one's verdict, and the
    /// listed ones that are not among them (see [`check_integrity`] on what
    /// `log_files` must cover).
    #[must_use]
    pub fn into_report(self, log_files: &[FoundLogFile<'_>]) -> IntegrityReport {
        let mut log_file_checks: Vec<LogFileCheck> = log_files
            .iter()
            .map(|file| LogFileCheck { key: file.key.to_owned(), verdict: self.verdict(file) })
            .collect();
        log_file_checks.sort_by(|a, b| a.key.cmp(&b.key));

        let found: HashSet<&str> = log_files.iter().map(|file| file.key).collect();
        let mut missing: Vec<MissingLogFile> = self
            .listings
            .iter()
            .filter(|(object, _)| !found.contains(object.as_str()))
            .flat_map(|(object, listings)| {
                listings
                    .iter()
                    .map(|listing| MissingLogFile { digest: listing.digest.to_owned(), object: object.clone() })
            })
            .collect();
        missing.sort();
        missing.dedup();

        IntegrityReport { digests: self.digests, log_files: log_file_checks, missing }
    }
}

fn link_verdict(digest: &Digest, digest_hashes: &HashMap<&str, [u8; 32]>) -> DigestVerdict {
    let Some(previous) = digest.previous_digest_s3_object.clone() else {
        return DigestVerdict::Starting;
    };
    let algorithm = digest.previous_digest_hash_algorithm.as_deref();
    if !algorithm.is_some_and(is_sha256) {
        return DigestVerdict::UnsupportedAlgorithm { previous, algorithm: algorithm.map(str::to_owned) };
    }
    let Some(actual) = digest_hashes.get(previous.as_str()) else {
        return DigestVerdict::PreviousNotGiven { previous };
    };
    let expected = digest.previous_digest_hash_value.clone().unwrap_or_default();
    if hex_matches(&expected, actual) {
        DigestVerdict::Linked { previous }
    } else {
        DigestVerdict::ChainBroken { previous, expected, actual: hex::encode(actual) }
    }
}

fn is_sha256(algorithm: &str) -> bool {
    algorithm.eq_ignore_ascii_case(SHA_256)
}

/// Whether a hex string (either case) spells these bytes.
fn hex_matches(expected: &str, actual: &[u8; 32]) -> bool {
    hex::decode(expected).is_ok_and(|bytes| bytes == actual)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    const DIGEST_DIR: &str = "AWSLogs/210987654321/CloudTrail-Digest/eu-west-1/2026/12/03/";
    const LOG_DIR: &str = "AWSLogs/210987654321/CloudTrail/eu-west-1/2026/12/03/";

    fn digest_key(hour: u32) -> String {
        format!("{DIGEST_DIR}210987654321_CloudTrail-Digest_eu-west-1_reads_eu-west-1_20261203T{hour:02}0012Z.json.gz")
    }

    fn log_key(hour: u32, unique: &str) -> String {
        format!("{LOG_DIR}210987654321_CloudTrail_eu-west-1_20261203T{hour:02}55Z_{unique}.json.gz")
    }

    fn log_content(n: u32) -> Vec<u8> {
        format!("{{\"Records\":[{{\"eventTime\":\"2026-12-03T0{n}:50:00Z\"}}]}}").into_bytes()
    }

    /// A digest for the hour ending at `hour`:00:12, listing `logs`
    /// (key, content hash, algorithm), linked to `previous` (key, bytes).
    fn digest_json(hour: u32, previous: Option<(&str, &[u8])>, logs: &[(String, [u8; 32], &str)]) -> Vec<u8> {
        let (prev_key, prev_hash, prev_algorithm) = match previous {
            Some((key, bytes)) => (json!(key), json!(hex::encode(sha256(bytes))), json!("SHA-256")),
            None => (Value::Null, Value::Null, Value::Null),
        };
        let log_files: Vec<Value> = logs
            .iter()
            .map(|(key, hash, algorithm)| {
                json!({
                    "s3Bucket": "trail-logs",
                    "s3Object": key,
                    "hashValue": hex::encode(hash),
                    "hashAlgorithm": algorithm,
                    "newestEventTime": "2026-12-03T00:55:00Z",
                    "oldestEventTime": "2026-12-03T00:50:00Z"
                })
            })
            .collect();
        serde_json::to_vec_pretty(&json!({
            "awsAccountId": "210987654321",
            "digestStartTime": format!("2026-12-03T{:02}:00:12Z", hour - 1),
            "digestEndTime": format!("2026-12-03T{hour:02}:00:12Z"),
            "digestS3Bucket": "trail-logs",
            "digestS3Object": digest_key(hour),
            "digestPublicKeyFingerprint": "00112233445566778899aabbccddeeff",
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": if logs.is_empty() { Value::Null } else { json!("2026-12-03T00:55:00Z") },
            "oldestEventTime": if logs.is_empty() { Value::Null } else { json!("2026-12-03T00:50:00Z") },
            "previousDigestS3Bucket": if previous.is_some() { json!("trail-logs") } else { Value::Null },
            "previousDigestS3Object": prev_key,
            "previousDigestHashValue": prev_hash,
            "previousDigestHashAlgorithm": prev_algorithm,
            "previousDigestSignature": if previous.is_some() { json!("abcdef0123") } else { Value::Null },
            "logFiles": log_files
        }))
        .unwrap()
    }

    /// Three digests, an hour apart, each listing one log file.
    struct Trail {
        digest_keys: [String; 3],
        digests: [Vec<u8>; 3],
        log_keys: [String; 3],
        logs: [Vec<u8>; 3],
    }

    impl Trail {
        fn new() -> Trail {
            let log_keys = [log_key(1, "aaaa1111"), log_key(2, "bbbb2222"), log_key(3, "cccc3333")];
            let logs = [log_content(1), log_content(2), log_content(3)];
            let digest_keys = [digest_key(2), digest_key(3), digest_key(4)];
            let d1 = digest_json(2, None, &[(log_keys[0].clone(), sha256(&logs[0]), "SHA-256")]);
            let d2 =
                digest_json(3, Some((&digest_keys[0], &d1)), &[(log_keys[1].clone(), sha256(&logs[1]), "SHA-256")]);
            let d3 =
                digest_json(4, Some((&digest_keys[1], &d2)), &[(log_keys[2].clone(), sha256(&logs[2]), "SHA-256")]);
            Trail { digest_keys, digests: [d1, d2, d3], log_keys, logs }
        }

        fn found_digests(&self) -> Vec<FoundDigest<'_>> {
            self.digest_keys
                .iter()
                .zip(&self.digests)
                .map(|(key, bytes)| FoundDigest { key, uncompressed: bytes })
                .collect()
        }

        fn found_logs(&self) -> Vec<FoundLogFile<'_>> {
            self.log_keys
                .iter()
                .zip(&self.logs)
                .map(|(key, bytes)| FoundLogFile { key, sha256: sha256(bytes) })
                .collect()
        }
    }

    fn verdict_of<'r>(report: &'r IntegrityReport, key: &str) -> &'r DigestVerdict {
        &report.digests.iter().find(|d| d.key == key).unwrap().verdict
    }

    fn log_verdict_of<'r>(report: &'r IntegrityReport, key: &str) -> &'r LogFileVerdict {
        &report.log_files.iter().find(|f| f.key == key).unwrap().verdict
    }

    #[test]
    fn an_untouched_chain_is_intact() {
        let trail = Trail::new();
        let report = check_integrity(&trail.found_digests(), &trail.found_logs());
        assert!(report.is_intact(), "{report:#?}");
        assert_eq!(verdict_of(&report, &trail.digest_keys[0]), &DigestVerdict::Starting);
        assert_eq!(
            verdict_of(&report, &trail.digest_keys[2]),
            &DigestVerdict::Linked { previous: trail.digest_keys[1].clone() }
        );
        for key in &trail.log_keys {
            assert!(matches!(log_verdict_of(&report, key), LogFileVerdict::Verified { .. }));
        }
        assert_eq!(report.digests[1].end_micros, civil::parse_iso8601_micros("2026-12-03T03:00:12Z"));
        assert_eq!(report.digests[1].log_files_listed, 1);
    }

    #[test]
    fn a_tampered_middle_digest_breaks_the_link_after_it() {
        let mut trail = Trail::new();
        let original = sha256(&trail.digests[1]);
        // An edit that keeps the digest readable: it now lists no log file.
        let mut edited: Value = serde_json::from_slice(&trail.digests[1]).unwrap();
        edited["logFiles"] = json!([]);
        trail.digests[1] = serde_json::to_vec(&edited).unwrap();

        let report = check_integrity(&trail.found_digests(), &trail.found_logs());
        assert!(!report.is_intact());
        assert_eq!(
            verdict_of(&report, &trail.digest_keys[2]),
            &DigestVerdict::ChainBroken {
                previous: trail.digest_keys[1].clone(),
                expected: hex::encode(original),
                actual: hex::encode(sha256(&trail.digests[1])),
            }
        );
        // The tampered digest's own link to the first still holds.
        assert_eq!(
            verdict_of(&report, &trail.digest_keys[1]),
            &DigestVerdict::Linked { previous: trail.digest_keys[0].clone() }
        );
        // The log file it no longer lists is in no digest.
        assert_eq!(log_verdict_of(&report, &trail.log_keys[1]), &LogFileVerdict::NotInDigest);
    }

    #[test]
    fn a_changed_log_file_does_not_match_its_hash() {
        let mut trail = Trail::new();
        trail.logs[0] = b"{\"Records\":[]}".to_vec();
        let report = check_integrity(&trail.found_digests(), &trail.found_logs());
        assert!(!report.is_intact());
        assert_eq!(
            log_verdict_of(&report, &trail.log_keys[0]),
            &LogFileVerdict::HashMismatch {
                digest: trail.digest_keys[0].clone(),
                expected: hex::encode(sha256(&log_content(1))),
                actual: hex::encode(sha256(b"{\"Records\":[]}")),
            }
        );
    }

    #[test]
    fn one_file_at_a_time_agrees_with_the_report() {
        let mut trail = Trail::new();
        trail.logs[0] = b"changed".to_vec();
        let (digests, logs) = (trail.found_digests(), trail.found_logs());
        let index = DigestIndex::new(&digests);
        assert_eq!(index.digests().len(), 3);
        let one_by_one: Vec<LogFileVerdict> = logs.iter().map(|file| index.verdict(file)).collect();
        let report = index.into_report(&logs);
        let reported: Vec<LogFileVerdict> = logs.iter().map(|file| log_verdict_of(&report, file.key).clone()).collect();
        assert_eq!(one_by_one, reported);
        assert!(matches!(one_by_one[0], LogFileVerdict::HashMismatch { .. }));
        assert!(matches!(one_by_one[1], LogFileVerdict::Verified { .. }));
    }

    #[test]
    fn a_deleted_log_file_is_missing() {
        let trail = Trail::new();
        let mut logs = trail.found_logs();
        logs.remove(1);
        let report = check_integrity(&trail.found_digests(), &logs);
        assert!(!report.is_intact());
        assert_eq!(
            report.missing,
            [MissingLogFile { digest: trail.digest_keys[1].clone(), object: trail.log_keys[1].clone() }]
        );
    }

    #[test]
    fn a_log_file_in_no_digest_is_reported_but_not_a_failure() {
        let trail = Trail::new();
        let late_key = log_key(4, "dddd4444");
        let mut logs = trail.found_logs();
        logs.push(FoundLogFile { key: &late_key, sha256: sha256(b"late") });
        let report = check_integrity(&trail.found_digests(), &logs);
        assert_eq!(log_verdict_of(&report, &late_key), &LogFileVerdict::NotInDigest);
        assert!(report.is_intact());
    }

    #[test]
    fn the_start_of_what_was_read_is_not_a_failure() {
        let trail = Trail::new();
        let report = check_integrity(&trail.found_digests()[1..], &trail.found_logs()[1..]);
        assert_eq!(
            verdict_of(&report, &trail.digest_keys[1]),
            &DigestVerdict::PreviousNotGiven { previous: trail.digest_keys[0].clone() }
        );
        assert!(report.is_intact());
    }

    #[test]
    fn other_hash_algorithms_are_not_trusted() {
        let log = log_key(1, "eeee5555");
        let content = log_content(1);
        let first_key = digest_key(2);
        let first = digest_json(2, None, &[(log.clone(), sha256(&content), "MD5")]);
        let mut second: Value = serde_json::from_slice(&digest_json(3, Some((&first_key, &first)), &[])).unwrap();
        second["previousDigestHashAlgorithm"] = json!("SHA-1");
        let second = serde_json::to_vec(&second).unwrap();
        let second_key = digest_key(3);

        let report = check_integrity(
            &[
                FoundDigest { key: &first_key, uncompressed: &first },
                FoundDigest { key: &second_key, uncompressed: &second },
            ],
            &[FoundLogFile { key: &log, sha256: sha256(&content) }],
        );
        assert_eq!(
            log_verdict_of(&report, &log),
            &LogFileVerdict::UnsupportedAlgorithm { digest: first_key.clone(), algorithm: "MD5".into() }
        );
        assert_eq!(
            verdict_of(&report, &second_key),
            &DigestVerdict::UnsupportedAlgorithm { previous: first_key, algorithm: Some("SHA-1".into()) }
        );
        assert!(!report.is_intact());
    }

    #[test]
    fn a_mismatch_in_any_listing_outweighs_a_match() {
        let log = log_key(1, "ffff6666");
        let content = log_content(1);
        let (a, b) = (digest_key(2), digest_key(3));
        let good = digest_json(2, None, &[(log.clone(), sha256(&content), "SHA-256")]);
        let bad = digest_json(3, None, &[(log.clone(), sha256(b"other"), "sha-256")]);
        let report = check_integrity(
            &[FoundDigest { key: &a, uncompressed: &good }, FoundDigest { key: &b, uncompressed: &bad }],
            &[FoundLogFile { key: &log, sha256: sha256(&content) }],
        );
        assert!(matches!(log_verdict_of(&report, &log), LogFileVerdict::HashMismatch { digest, .. } if *digest == b));
    }

    #[test]
    fn a_moved_or_unreadable_digest_is_not_intact() {
        let trail = Trail::new();
        let elsewhere = format!("copies/{}", trail.digest_keys[0]);
        let report = check_integrity(&[FoundDigest { key: &elsewhere, uncompressed: &trail.digests[0] }], &[]);
        assert_eq!(report.digests[0].recorded_key.as_deref(), Some(trail.digest_keys[0].as_str()));
        assert!(!report.is_intact());

        let report = check_integrity(&[FoundDigest { key: "x", uncompressed: b"{\"awsAccountId\": 1}" }], &[]);
        assert!(
            matches!(&report.digests[0].verdict, DigestVerdict::Unreadable { reason } if reason.contains("digest"))
        );
        assert!(!report.is_intact());
    }

    #[test]
    fn an_empty_hour_parses() {
        let digest = Digest::parse(&digest_json(5, None, &[])).unwrap();
        assert!(digest.log_files.is_empty());
        assert_eq!((digest.newest_event_micros, digest.previous_digest_s3_object), (None, None));
        assert_eq!(digest.digest_start_micros, civil::parse_iso8601_micros("2026-12-03T04:00:12Z").unwrap());
        assert!(matches!(Digest::parse(b"{\"digestEndTime\": \"noon\"}"), Err(DigestError::Json(_))));
    }

    #[test]
    fn the_report_serializes_in_snake_case_with_a_kind_tag() {
        let trail = Trail::new();
        let report = check_integrity(&trail.found_digests()[2..], &trail.found_logs()[2..]);
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(
            json["digests"][0]["verdict"],
            json!({"kind": "previous_not_given", "previous": trail.digest_keys[1]})
        );
        assert_eq!(json["log_files"][0]["verdict"], json!({"kind": "verified", "digest": trail.digest_keys[2]}));
        assert_eq!(json["digests"][0]["log_files_listed"], json!(1));
    }
}
