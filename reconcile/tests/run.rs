//! A whole run over a real ledger and an in-memory log bucket: every rule
//! and every category, entry by entry.

#![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed, which is what a panic reports")]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use egress_ledger::{EndRecord, Entry, Ledger, LedgerConfig, Outcome, StartRecord};
use egress_reconcile::LogSource;
use egress_reconcile::ledger_reads::Window;
use egress_reconcile::matching::ProxyIdentity;
use egress_reconcile::report::{DeliveryWindows, Rule, RunStatus};
use egress_reconcile::run::{Plan, run};
use egress_reconcile::store::{MemoryLogStore, StoreError};

const PROXY_ARN: &str = "arn:aws:iam::123456789012:role/egress-proxy";
const SESSION: &str = "arn:aws:sts::123456789012:assumed-role/egress-proxy/i-0abc";

fn now() -> u64 {
    u64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros()).unwrap()
}

/// `[03/Dec/2026:10:00:00 +0000]` of a time.
fn log_time(micros: u64) -> String {
    let text = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_micros(micros)).to_string();
    // 2026-12-03T10:00:00Z
    let (y, m, d, t) = (&text[0..4], &text[5..7], &text[8..10], &text[11..19]);
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        [m.parse::<usize>().unwrap() - 1];
    format!("[{d}/{month}/{y}:{t} +0000]")
}

/// `2026-12-03-10-00-00` of a time, for log object names.
fn name_time(micros: u64) -> String {
    let text = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_micros(micros)).to_string();
    text[..19].replace(['T', ':'], "-")
}

struct Line<'a> {
    time: u64,
    requester: &'a str,
    request_id: &'a str,
    operation: &'a str,
    key: &'a str,
    tag: Option<&'a str>,
    status: u16,
    bytes: u64,
}

impl Line<'_> {
    fn text(&self) -> String {
        let query = self.tag.map(|t| format!("?x-id=GetObject&x-egress-req={t}")).unwrap_or_default();
        let error = if self.status == 403 { "AccessDenied" } else { "-" };
        format!(
            "79a5f0c1 data {} 10.1.2.3 {} {} {} {} \"GET /data/{}{query} HTTP/1.1\" {} {error} {} 1000 7 3 \"-\" \"ua/1\" - hostid= SigV4 TLS_AES_128_GCM_SHA256 AuthHeader data.s3.amazonaws.com TLSv1.3 - -",
            log_time(self.time),
            self.requester,
            self.request_id,
            self.operation,
            self.key,
            self.key,
            self.status,
            self.bytes,
        )
    }
}

/// A ledger `GetObject` of `key`: start, then end with `upstream` id, bytes, outcome.
async fn read(ledger: &Ledger, req: &str, key: &str, upstream: Option<&str>, bytes: u64, outcome: Outcome) -> u64 {
    let start = ledger
        .append(Entry::Start(StartRecord {
            req: req.into(),
            principal: Some("alice".into()),
            method: "GET".into(),
            operation: "GetObject".into(),
            bucket: Some("data".into()),
            key: Some(key.into()),
            ..StartRecord::default()
        }))
        .await
        .unwrap();
    let mut end = EndRecord::unknown(req, start.seq, outcome);
    end.status = Some(200);
    end.bytes_sent = Some(bytes);
    end.upstream_request_id = upstream.map(str::to_owned);
    ledger.append(Entry::End(end)).await.unwrap();
    start.seq
}

fn plan(since: u64, until: u64, now: u64) -> Plan {
    Plan {
        id: "run-1".into(),
        spec: "main".into(),
        data_bucket: "data".into(),
        log_bucket: "logs".into(),
        access_log_prefix: "s3-access/".into(),
        cloudtrail_prefix: String::new(),
        account: "123456789012".into(),
        region: "us-east-1".into(),
        window: Window { since, until },
        delivery: DeliveryWindows { access_log_secs: 60, cloudtrail_secs: 60 },
        proxy: ProxyIdentity { arn: PROXY_ARN.into(), access_key_ids: vec![] },
        now,
    }
}

#[tokio::test]
async fn every_rule_and_every_category() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(&LedgerConfig::new(dir.path(), "reconcile-test")).unwrap();
    let t0 = now();
    // A note whose members share names with a start's or end's (an earlier
    // run's summary says `"status":"partial"`): not damage, not a read.
    let note = egress_ledger::NoteRecord::new("reconciliation")
        .with("status", "partial")
        .with("key", serde_json::json!({"not": "a key"}))
        .with("outcome", 7);
    ledger.append(Entry::Note(note)).await.unwrap();
    read(&ledger, "r-by-id", "a.csv", Some("AWS0000000000001"), 100, Outcome::Complete).await;
    read(&ledger, "r-tagged", "b.csv", None, 200, Outcome::Complete).await;
    read(&ledger, "r-fallback", "c.csv", None, 300, Outcome::Complete).await;
    read(&ledger, "r-mismatch", "d.csv", Some("AWS0000000000004"), 400, Outcome::Complete).await;
    read(&ledger, "r-aborted", "e.csv", Some("AWS0000000000005"), 10, Outcome::ClientAbort).await;
    let missing_seq = read(&ledger, "r-missing", "f.csv", Some("AWS0000000000006"), 600, Outcome::Complete).await;
    read(&ledger, "r-refused", "g.csv", Some("AWS0000000000007"), 250, Outcome::Denied).await;
    read(&ledger, "r-has-id", "h.csv", Some("AWS0000000000008"), 800, Outcome::Complete).await;
    // Refused by the proxy before anything went upstream: AWS cannot know it.
    read(&ledger, "r-not-forwarded", "i.csv", None, 0, Outcome::Denied).await;
    // A copy reads its source: S3 logs the source side on the data bucket.
    let copy = ledger
        .append(Entry::Start(StartRecord {
            req: "r-copy".into(),
            principal: Some("alice".into()),
            method: "PUT".into(),
            operation: "CopyObject".into(),
            bucket: Some("elsewhere".into()),
            key: Some("copy-of-j.csv".into()),
            copy_source: Some(egress_ledger::ObjectRef {
                bucket: "data".into(),
                key: "j.csv".into(),
                version_id: None,
            }),
            ..StartRecord::default()
        }))
        .await
        .unwrap();
    let mut end = EndRecord::unknown("r-copy", copy.seq, Outcome::Complete);
    (end.status, end.bytes_sent, end.upstream_request_id) = (Some(200), Some(234), Some("AWS0000000000009".into()));
    ledger.append(Entry::End(end)).await.unwrap();

    let t = t0 + 1_000_000;
    let lines = [
        Line {
            time: t,
            requester: SESSION,
            request_id: "AWS0000000000001",
            operation: "REST.GET.OBJECT",
            key: "a.csv",
            tag: None,
            status: 200,
            bytes: 100,
        },
        // Duplicate delivery of the same record: ignored.
        Line {
            time: t,
            requester: SESSION,
            request_id: "AWS0000000000001",
            operation: "REST.GET.OBJECT",
            key: "a.csv",
            tag: None,
            status: 200,
            bytes: 100,
        },
        Line {
            time: t,
            requester: SESSION,
            request_id: "AWSTAGGED0000002",
            operation: "REST.GET.OBJECT",
            key: "b.csv",
            tag: Some("r-tagged"),
            status: 200,
            bytes: 200,
        },
        Line {
            time: t,
            requester: SESSION,
            request_id: "AWSFALLBACK00003",
            operation: "REST.GET.OBJECT",
            key: "c.csv",
            tag: None,
            status: 200,
            bytes: 300,
        },
        Line {
            time: t,
            requester: SESSION,
            request_id: "AWS0000000000004",
            operation: "REST.GET.OBJECT",
            key: "d.csv",
            tag: None,
            status: 200,
            bytes: 399,
        },
        // S3 sent more than reached the client before it went away: explained.
        Line {
            time: t,
            requester: SESSION,
            request_id: "AWS0000000000005",
            operation: "REST.GET.OBJECT",
            key: "e.csv",
            tag: None,
            status: 200,
            bytes: 5000,
        },
        // A quota refused it once the upstream's answer began: explained.
        Line {
            time: t,
            requester: SESSION,
            request_id: "AWS0000000000007",
            operation: "REST.GET.OBJECT",
            key: "g.csv",
            tag: None,
            status: 200,
            bytes: 65536,
        },
        // The source side of the copy: its bytes are not the answer's.
        Line {
            time: t,
            requester: SESSION,
            request_id: "AWS0000000000009",
            operation: "REST.COPY.OBJECT_GET",
            key: "j.csv",
            tag: None,
            status: 200,
            bytes: 0,
        },
        // Bypass by another identity.
        Line {
            time: t,
            requester: "arn:aws:iam::123456789012:user/mallory",
            request_id: "AWSBYPASS0000001",
            operation: "REST.GET.OBJECT",
            key: "a.csv",
            tag: None,
            status: 200,
            bytes: 100,
        },
        // Bypass with the proxy's identity and a forged tag naming a read that has its own request id.
        Line {
            time: t,
            requester: SESSION,
            request_id: "AWSBYPASS0000002",
            operation: "REST.GET.OBJECT",
            key: "h.csv",
            tag: Some("r-has-id"),
            status: 200,
            bytes: 800,
        },
        // A refused attempt.
        Line {
            time: t,
            requester: "arn:aws:iam::123456789012:user/mallory",
            request_id: "AWSDENIED0000001",
            operation: "REST.GET.OBJECT",
            key: "a.csv",
            tag: None,
            status: 403,
            bytes: 243,
        },
        // Not a read.
        Line {
            time: t,
            requester: SESSION,
            request_id: "AWSPUT0000000001",
            operation: "REST.PUT.OBJECT",
            key: "z.csv",
            tag: None,
            status: 200,
            bytes: 0,
        },
        // Outside the window: not judged.
        Line {
            time: t0 - 3_600_000_000,
            requester: "arn:aws:iam::123456789012:user/mallory",
            request_id: "AWSOLD0000000001",
            operation: "REST.GET.OBJECT",
            key: "a.csv",
            tag: None,
            status: 200,
            bytes: 1,
        },
    ];
    let mut text: String = lines.iter().map(|l| l.text() + "\n").collect();
    text.push_str(
        "79a5f0c1 data [03/Dec/2026:10:00:00 +0000] 10.1.2.3 - ABC REST.GET.OBJECT k \"GET /k HTTP/1.1\" 2\n",
    );
    let mut store = MemoryLogStore::default();
    store.objects.insert(format!("s3-access/{}-0A1B2C3D4E5F6A7B", name_time(t0 + 2_000_000)), text.into_bytes());
    // A file the bucket refuses to hand out.
    let unreadable = format!("s3-access/{}-FFFFFFFFFFFFFFFF", name_time(t0 + 3_000_000));
    store.objects.insert(unreadable.clone(), Vec::new());
    store.unreadable.push(unreadable.clone());
    // Another bucket's log under another prefix: not listed.
    store.objects.insert("other/2026-12-03-10-00-00-AAAA".into(), b"garbage".to_vec());

    // Judged two minutes later: the 60 s delivery windows have passed.
    let plan = plan(t0 - 600_000_000, t0 + 60_000_000, t0 + 120_000_000);
    let report = run(&ledger, &store, &plan).await;

    assert_eq!(report.status, RunStatus::Partial, "{:?}", report.error);
    let c = &report.counts;

    assert_eq!((c.ledger_reads, c.ledger_reads_not_forwarded), (10, 1));
    // Missing: f.csv, and h.csv, whose only "record" was the forged one.
    assert_eq!((c.bypass, c.unaccounted_attempts, c.missing_from_aws, c.bytes_mismatch), (2, 1, 2, 1));
    assert_eq!(c.matched, 7, "a, b, c, d, e, g, the copy's j");

    let access = &report.sources[&LogSource::AccessLog];
    assert_eq!(access.files_read, 1);
    assert_eq!(access.matched_by_rule.request_id, 5);
    assert_eq!(access.matched_by_rule.tag, 1);
    assert_eq!(access.matched_by_rule.fallback, 1);
    assert_eq!(access.duplicates, 1);
    assert_eq!(access.other_records, 1);
    assert_eq!(access.malformed_count, 1);
    assert_eq!(access.reads_outside_window, 1);
    assert_eq!(access.unusable_files.len(), 1);
    assert_eq!(access.unusable_files[0].object, unreadable);
    assert!(report.sources[&LogSource::Cloudtrail].files_read == 0);
    assert!(report.warnings.iter().any(|w| w.contains("cloudtrail")), "{:?}", report.warnings);

    let mallory = report.bypass.iter().find(|b| b.request_id == "AWSBYPASS0000001").unwrap();
    assert_eq!(mallory.requester.as_deref(), Some("arn:aws:iam::123456789012:user/mallory"));
    assert_eq!((mallory.key.as_str(), mallory.bytes_sent, mallory.proxy_identity), ("a.csv", Some(100), false));
    assert_eq!(mallory.source_ip.as_deref(), Some("10.1.2.3"));
    let forged = report.bypass.iter().find(|b| b.request_id == "AWSBYPASS0000002").unwrap();
    assert!(forged.proxy_identity);
    assert!(forged.note.as_deref().unwrap().contains("r-has-id"), "{:?}", forged.note);
    assert_eq!(report.unaccounted_attempts[0].request_id, "AWSDENIED0000001");
    assert_eq!(report.unaccounted_attempts[0].status, Some(403));

    assert_eq!(report.missing_from_aws.len(), 2);
    let missing = &report.missing_from_aws[0];
    assert_eq!((missing.ledger.seq, missing.ledger.req.as_str()), (missing_seq, "r-missing"));
    assert_eq!(missing.ledger.key.as_deref(), Some("f.csv"));
    assert_eq!(missing.ledger.upstream_request_id.as_deref(), Some("AWS0000000000006"));
    assert_eq!(missing.missing_in, vec![LogSource::AccessLog]);

    let mismatch = &report.bytes_mismatch[0];
    assert_eq!(
        (mismatch.ledger.req.as_str(), mismatch.ledger_bytes, mismatch.aws_bytes),
        ("r-mismatch", Some(400), Some(399))
    );
    assert_eq!(mismatch.rule, Rule::RequestId);

    assert_eq!(report.matched.len(), 1);
    assert_eq!((report.matched[0].principal.as_str(), report.matched[0].access_log), ("alice", 7));

    // The same logs judged at once: the missing read is only pending.
    let early = run(&ledger, &store, &self::plan(t0 - 600_000_000, t0 + 60_000_000, t0 + 2_000_000)).await;
    assert_eq!(early.counts.missing_from_aws, 0);
    assert_eq!(early.sources[&LogSource::AccessLog].pending, 2);
    ledger.close().await.unwrap();
}

#[tokio::test]
async fn a_bucket_that_cannot_be_listed_fails_the_run_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let (ledger, _) = Ledger::open(&LedgerConfig::new(dir.path(), "reconcile-test")).unwrap();
    read(&ledger, "r1", "a.csv", Some("AWS1"), 1, Outcome::Complete).await;
    let store = MemoryLogStore {
        failure: Some(StoreError::Refused { code: "AccessDenied".into(), message: "Access Denied".into() }),
        ..MemoryLogStore::default()
    };
    let t = now();
    let report = run(&ledger, &store, &plan(t - 60_000_000, t + 60_000_000, t)).await;
    assert_eq!(report.status, RunStatus::Failed);
    let error = report.error.unwrap();
    assert!(error.contains("AccessDenied") && error.contains("s3://logs/"), "{error}");
    assert_eq!(report.counts.bypass, 0);
    assert!(report.sources.is_empty());
    ledger.close().await.unwrap();
}
