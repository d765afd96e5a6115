//! Reconciliation end to end: the real proxy in front of SeaweedFS, its
//! provisioning and log bucket in moto (over HTTPS, as AWS), real reads by
//! boto3, and AWS's two records of them written into the log bucket as S3
//! and CloudTrail deliver them.
//! The logs hold what a run must tell apart: reads the proxy made (joined by
//! S3's request id), a read with the wrong byte count, a read AWS never
//! logged, reads that bypassed the proxy (one by an outsider in both logs,
//! one with the proxy's own credentials, one whose Request-URI carries a
//! forged `x-egress-req` tag naming a real proxy read), a refused attempt,
//! broken lines, and a CloudTrail file its digest contradicts, whose events
//! must not count. Then the same through the CLI, and a run whose log
//! bucket is gone: `failed`, never "no bypass".
//!
//! moto delivers no CloudTrail files, and the access log objects it writes
//! itself are not in S3's format (its Request-URI is unquoted), so the test
//! deletes those and writes both logs itself. moto refuses every object call
//! on a bucket with the provisioned policy (see `egress_e2e::moto`), so the
//! test deletes the log bucket's policy first.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use egress_e2e::moto::{ACCOUNT, Moto};
use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, ledger_lines, python};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

const REGION: &str = "us-east-1";
const DATA_BUCKET: &str = "egress-data";
const LOG_BUCKET: &str = "egress-logs";
const TRAIL: &str = "egress-reads";
const LOG_PREFIX: &str = "s3-access/";
const PROXY_ARN: &str = "arn:aws:iam::123456789012:role/egress-proxy";
/// How the proxy's own upstream reads appear in AWS's logs (a session of its role).
const PROXY_SESSION: &str = "arn:aws:sts::123456789012:assumed-role/egress-proxy/egress-proxy-7f3a";
const PROXY_IP: &str = "192.0.2.10";
const MALLORY: &str = "arn:aws:iam::123456789012:user/mallory";
const MALLORY_IP: &str = "203.0.113.9";
const MALLORY_KEY: &str = "AKIAMALLORY000000001";
const EVE: &str = "arn:aws:iam::123456789012:user/eve";
const EVE_IP: &str = "198.51.100.7";
/// The proxy's role, used from somewhere else.
const STOLEN_SESSION: &str = "arn:aws:sts::123456789012:assumed-role/egress-proxy/i-0abc";
const STOLEN_IP: &str = "198.51.100.77";
const TRUDY: &str = "arn:aws:iam::123456789012:user/trudy";
const BUCKET_OWNER: &str = "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be";
const HOST_ID: &str = "Zt3p0Q8yLk5m2RjW9vB1nX4cH7aE6sD0fG3hJ2kL5mN8pQ1rS4tU7vW0xY3zA6bC9dE2fG5h=";

/// Request ids of the reads planted in the logs (S3's are 16 characters).
const FORGED_ID: &str = "FORGEDTAG0000001";
const MALLORY_ID: &str = "MALLORYGET000001";
const STOLEN_ID: &str = "PROXYCREDS000001";
const DENIED_ID: &str = "MALLORYDENIED001";
const HIDDEN_ID: &str = "HIDDENREAD000001";
const LEAKED_KEY_ID: &str = "PROXYKEYUSED0001";
/// Whoever used the proxy's upstream access key (CloudTrail gives the key).
const LEAKED_KEY_USER: &str = "arn:aws:iam::123456789012:user/ci-runner";

/// boto3 toward moto, over HTTPS with the test CA.
const MOTO_PRELUDE: &str = r#"
import os, json, gzip, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["MOTO"], region_name="us-east-1",
    aws_access_key_id="AKIDTEST", aws_secret_access_key="secret", verify=os.environ["CA"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
def keys(bucket, prefix=""):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out
"#;

fn moto_python(moto: &Moto, body: &str, env: &[(&str, &str)]) -> Value {
    let endpoint = moto.endpoint();
    let ca = moto.ca_file().expect("moto serves HTTPS").display().to_string();
    let mut all: Vec<(&str, &str)> = vec![("MOTO", &endpoint), ("CA", &ca)];
    all.extend_from_slice(env);
    python(&format!("{MOTO_PRELUDE}\n{body}"), &all)
}

/// A UTC time, to the second, in the forms the logs write it.
#[derive(Debug, Clone, Copy)]
struct Utc(u64);

impl Utc {
    fn now() -> Utc {
        Utc(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs())
    }

    /// From the ledger's `ts` (`2026-11-27T21:21:12.123456Z`), to the second.
    fn from_ledger(ts: &str) -> Utc {
        let t = humantime::parse_rfc3339_weak(ts).unwrap();
        Utc(t.duration_since(UNIX_EPOCH).unwrap().as_secs())
    }

    fn minus(self, seconds: u64) -> Utc {
        Utc(self.0 - seconds)
    }

    /// (year, month, day, hour, minute, second), read back from humantime's
    /// RFC 3339 (`2026-12-03T10:00:00Z`).
    fn civil(self) -> (i64, i64, i64, u64, u64, u64) {
        let text = humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(self.0)).to_string();
        let n = |from: usize, to: usize| -> u64 { text[from..to].parse().unwrap() };
        let signed = |from: usize, to: usize| -> i64 { text[from..to].parse().unwrap() };
        (signed(0, 4), signed(5, 7), signed(8, 10), n(11, 13), n(14, 16), n(17, 19))
    }

    /// `[06/Feb/2019:00:00:38 +0000]` without the brackets.
    fn access_log(self) -> String {
        const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
        let (y, m, d, hh, mm, ss) = self.civil();
        format!("{d:02}/{}/{y:04}:{hh:02}:{mm:02}:{ss:02} +0000", MONTHS[usize::try_from(m - 1).unwrap()])
    }

    /// `2026-12-03T10:00:00Z`.
    fn iso(self) -> String {
        let (y, m, d, hh, mm, ss) = self.civil();
        format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
    }

    /// `2026-12-03-10-00-00`: an access log object's name.
    fn dashed(self) -> String {
        let (y, m, d, hh, mm, ss) = self.civil();
        format!("{y:04}-{m:02}-{d:02}-{hh:02}-{mm:02}-{ss:02}")
    }

    /// `2026/12/03`: CloudTrail's day folders.
    fn day_path(self) -> String {
        let (y, m, d, ..) = self.civil();
        format!("{y:04}/{m:02}/{d:02}")
    }

    /// `20261203T1000Z` (log files) or, with seconds, `20261203T100000Z` (digests).
    fn compact(self, seconds: bool) -> String {
        let (y, m, d, hh, mm, ss) = self.civil();
        if seconds {
            format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}{ss:02}Z")
        } else {
            format!("{y:04}{m:02}{d:02}T{hh:02}{mm:02}Z")
        }
    }
}

/// One S3 server access log record, in the documented field order.
struct AccessRecord<'a> {
    time: Utc,
    ip: &'a str,
    requester: &'a str,
    request_id: &'a str,
    operation: &'a str,
    key: &'a str,
    request_uri: String,
    status: u16,
    error_code: &'a str,
    bytes_sent: u64,
    object_size: Option<u64>,
    user_agent: &'a str,
}

impl AccessRecord<'_> {
    fn line(&self) -> String {
        let dash = |n: Option<u64>| n.filter(|&n| n > 0).map_or_else(|| "-".to_owned(), |n| n.to_string());
        format!(
            "{BUCKET_OWNER} {DATA_BUCKET} [{}] {} {} {} {} {} \"{}\" {} {} {} {} 12 4 \"-\" \"{}\" - {HOST_ID} SigV4 \
             TLS_AES_128_GCM_SHA256 AuthHeader {DATA_BUCKET}.s3.{REGION}.amazonaws.com TLSv1.3 - - {REGION}",
            self.time.access_log(),
            self.ip,
            self.requester,
            self.request_id,
            self.operation,
            self.key,
            self.request_uri,
            self.status,
            self.error_code,
            dash(Some(self.bytes_sent)),
            dash(self.object_size),
            self.user_agent,
        )
    }
}

/// One CloudTrail S3 data event.
struct TrailEvent<'a> {
    time: Utc,
    event_name: &'a str,
    requester: &'a str,
    access_key_id: &'a str,
    ip: &'a str,
    request_id: &'a str,
    key: &'a str,
    bytes_out: u64,
}

impl TrailEvent<'_> {
    fn json(&self) -> Value {
        let identity_type = if self.requester.contains(":assumed-role/") { "AssumedRole" } else { "IAMUser" };
        json!({
            "eventVersion": "1.10",
            "userIdentity": {
                "type": identity_type,
                "principalId": "AIDAEXAMPLEPRINCIPAL",
                "arn": self.requester,
                "accountId": ACCOUNT,
                "accessKeyId": self.access_key_id,
            },
            "eventTime": self.time.iso(),
            "eventSource": "s3.amazonaws.com",
            "eventName": self.event_name,
            "awsRegion": REGION,
            "sourceIPAddress": self.ip,
            "userAgent": "[aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0]",
            "requestParameters": {
                "bucketName": DATA_BUCKET,
                "Host": format!("{DATA_BUCKET}.s3.{REGION}.amazonaws.com"),
                "key": self.key,
            },
            "responseElements": null,
            "additionalEventData": {
                "SignatureVersion": "SigV4",
                "CipherSuite": "TLS_AES_128_GCM_SHA256",
                "bytesTransferredIn": 0,
                "AuthenticationMethod": "AuthHeader",
                "x-amz-id-2": HOST_ID,
                "bytesTransferredOut": self.bytes_out,
            },
            "requestID": self.request_id,
            "eventID": format!("e-{}", self.request_id),
            "readOnly": self.event_name == "GetObject",
            "resources": [
                {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{DATA_BUCKET}/{}", self.key)},
                {"accountId": ACCOUNT, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{DATA_BUCKET}")},
            ],
            "eventType": "AwsApiCall",
            "managementEvent": false,
            "recipientAccountId": ACCOUNT,
            "eventCategory": "Data",
        })
    }
}

/// A read the proxy made, as its ledger has it.
#[derive(Debug, Clone)]
struct ProxyRead {
    req: String,
    seq: u64,
    time: Utc,
    key: String,
    upstream_id: String,
    bytes: u64,
    status: u16,
    object_size: u64,
}

impl ProxyRead {
    fn from_ledger(proxy: &Proxy, req: &Value) -> ProxyRead {
        let (start, end) = proxy.event(req.as_str().unwrap_or_else(|| panic!("no request id: {req}")));
        assert_eq!(start["operation"], "GetObject", "{start}");
        assert_eq!(end["outcome"], "complete", "{end}");
        ProxyRead {
            req: start["req"].as_str().unwrap().to_owned(),
            seq: start["seq"].as_u64().unwrap(),
            time: Utc::from_ledger(start["ts"].as_str().unwrap()),
            key: start["key"].as_str().unwrap().to_owned(),
            upstream_id: end["upstream_request_id"]
                .as_str()
                .unwrap_or_else(|| panic!("the upstream named no request id: {end}"))
                .to_owned(),
            bytes: end["bytes_sent"].as_u64().unwrap(),
            status: u16::try_from(end["status"].as_u64().unwrap()).unwrap(),
            object_size: end["object_size"].as_u64().unwrap(),
        }
    }

    /// Its access log record, as S3 logs the proxy's upstream request.
    fn access_record(&self) -> AccessRecord<'_> {
        AccessRecord {
            time: self.time,
            ip: PROXY_IP,
            requester: PROXY_SESSION,
            request_id: &self.upstream_id,
            operation: "REST.GET.OBJECT",
            key: &self.key,
            request_uri: format!("GET /{DATA_BUCKET}/{}?x-id=GetObject&x-egress-req={} HTTP/1.1", self.key, self.req),
            status: self.status,
            error_code: "-",
            bytes_sent: self.bytes,
            object_size: Some(self.object_size),
            user_agent: "aws-sdk-rust/1.3.9 os/linux lang/rust/1.95.0",
        }
    }

    /// Its CloudTrail event.
    fn trail_event(&self) -> TrailEvent<'_> {
        TrailEvent {
            time: self.time,
            event_name: "GetObject",
            requester: PROXY_SESSION,
            access_key_id: "ASIAPROXYSESSION0001",
            ip: PROXY_IP,
            request_id: &self.upstream_id,
            key: &self.key,
            bytes_out: self.bytes,
        }
    }
}

/// Alice's reads through the proxy.
struct Reads {
    whole_a: ProxyRead,
    whole_b: ProxyRead,
    /// AWS logs more bytes for it than the proxy passed on.
    whole_c: ProxyRead,
    range_a: ProxyRead,
    /// In neither log.
    unlogged: ProxyRead,
}

/// Puts three objects through the proxy (the bucket is on SeaweedFS) and
/// reads them: three whole, one range, one more that AWS will not log.
fn alice_reads(proxy: &Proxy) -> Reads {
    let key = proxy.key();
    let reqs = python(
        r#"
import os, json, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3.create_bucket(Bucket=os.environ["BUCKET"])
for name, size in [("obj-a", 3000), ("obj-b", 5000), ("obj-c", 7000)]:
    s3.put_object(Bucket=os.environ["BUCKET"], Key=f"datasets/{name}.bin", Body=bytes(i % 251 for i in range(size)))
def get(name, **kw):
    r = s3.get_object(Bucket=os.environ["BUCKET"], Key=f"datasets/{name}.bin", **kw)
    r["Body"].read()
    return r["ResponseMetadata"]["HTTPHeaders"]["x-egress-request-id"]
print(json.dumps([get("obj-a"), get("obj-b"), get("obj-c"), get("obj-a", Range="bytes=0-99"), get("obj-b")]))
"#,
        &[
            ("ENDPOINT", &proxy.endpoint()),
            ("AK", &key.access_key_id),
            ("SK", &key.secret_access_key),
            ("BUCKET", DATA_BUCKET),
        ],
    );
    let mut reads = reqs.as_array().unwrap().iter().map(|req| ProxyRead::from_ledger(proxy, req));
    let mut next = || reads.next().unwrap();
    let reads = Reads { whole_a: next(), whole_b: next(), whole_c: next(), range_a: next(), unlogged: next() };
    let r = &reads.range_a;
    assert_eq!((r.status, r.bytes, r.object_size), (206, 100, 3000));
    let all = [&reads.whole_a, &reads.whole_b, &reads.whole_c, &reads.range_a, &reads.unlogged];
    let ids: std::collections::HashSet<&str> = all.iter().map(|r| r.upstream_id.as_str()).collect();
    assert_eq!(ids.len(), 5, "the upstream gave every read its own request id");
    reads
}

/// One access log object: four of the proxy's reads (one with a byte
/// count of its own, one in a format with a field from the future), three
/// reads that bypassed it, a refused attempt, a PUT, a line that is no
/// record, and one cut off.
fn access_log(reads: &Reads, earlier: Utc) -> String {
    let Reads { whole_a, whole_b, whole_c, range_a, .. } = reads;
    let mut lines = vec![
        whole_a.access_record().line(),
        // A field from a future format after the last one known: read, not malformed.
        format!("{} NewField42 \"quoted future\" -", whole_b.access_record().line()),
        // S3 says it sent more than the proxy passed on, for a read the proxy completed.
        AccessRecord { bytes_sent: whole_c.bytes + 1000, ..whole_c.access_record() }.line(),
        range_a.access_record().line(),
        // Someone else's read, tagged with a real proxy request: the tag is forged.
        AccessRecord {
            time: earlier,
            ip: EVE_IP,
            requester: EVE,
            request_id: FORGED_ID,
            request_uri: format!("GET /{DATA_BUCKET}/{}?x-egress-req={} HTTP/1.1", whole_a.key, whole_a.req),
            user_agent: "curl/8.5.0",
            ..whole_a.access_record()
        }
        .line(),
        AccessRecord {
            time: earlier,
            ip: MALLORY_IP,
            requester: MALLORY,
            request_id: MALLORY_ID,
            request_uri: format!("GET /{DATA_BUCKET}/{} HTTP/1.1", whole_c.key),
            user_agent: "aws-cli/2.15.0",
            ..whole_c.access_record()
        }
        .line(),
        // The proxy's role, used outside the proxy.
        AccessRecord {
            time: earlier,
            ip: STOLEN_IP,
            requester: STOLEN_SESSION,
            request_id: STOLEN_ID,
            request_uri: format!("GET /{DATA_BUCKET}/{} HTTP/1.1", whole_b.key),
            ..whole_b.access_record()
        }
        .line(),
        // Refused: an attempt, not a bypass.
        AccessRecord {
            time: earlier,
            ip: MALLORY_IP,
            requester: MALLORY,
            request_id: DENIED_ID,
            request_uri: format!("GET /{DATA_BUCKET}/{} HTTP/1.1", whole_a.key),
            status: 403,
            error_code: "AccessDenied",
            bytes_sent: 243,
            object_size: None,
            user_agent: "aws-cli/2.15.0",
            ..whole_a.access_record()
        }
        .line(),
        // Not a read.
        AccessRecord {
            operation: "REST.PUT.OBJECT",
            request_id: "PUTOBJECT0000001",
            request_uri: format!("PUT /{DATA_BUCKET}/{} HTTP/1.1", whole_a.key),
            status: 200,
            bytes_sent: 0,
            ..whole_a.access_record()
        }
        .line(),
        "this is not an access log line".to_owned(),
    ];
    // A record cut off before its Request-URI.
    let cut = AccessRecord { request_id: "CUTOFF0000000001", ..whole_a.access_record() }.line();
    lines.push(cut[..cut.find(" \"GET").unwrap()].to_owned());
    lines.join("\n") + "\n"
}

/// What the test delivers into the log bucket as S3 and CloudTrail would.
struct Delivery {
    access_key: String,
    access: String,
    /// A CloudTrail file its digest vouches for.
    trail_key: String,
    trail: Vec<u8>,
    /// A CloudTrail file its digest contradicts (changed after delivery).
    tampered_key: String,
    tampered: Vec<u8>,
    digest_key: String,
    digest: Vec<u8>,
}

impl Delivery {
    fn new(reads: &Reads, now: Utc, earlier: Utc) -> Delivery {
        let mut events: Vec<Value> = [&reads.whole_a, &reads.whole_b, &reads.whole_c, &reads.range_a]
            .iter()
            .map(|r| r.trail_event().json())
            .collect();
        let mallory = TrailEvent {
            time: earlier,
            event_name: "GetObject",
            requester: MALLORY,
            access_key_id: MALLORY_KEY,
            ip: MALLORY_IP,
            request_id: MALLORY_ID,
            key: &reads.whole_c.key,
            bytes_out: reads.whole_c.bytes,
        };
        events.push(mallory.json());
        // The proxy's own upstream key, used by someone else: CloudTrail names the key.
        events.push(
            TrailEvent {
                requester: LEAKED_KEY_USER,
                access_key_id: egress_e2e::servers::UPSTREAM_KEY,
                ip: "198.51.100.66",
                request_id: LEAKED_KEY_ID,
                ..mallory
            }
            .json(),
        );
        events.push(
            TrailEvent { event_name: "PutObject", request_id: "PUTEVENT00000001", ..reads.whole_a.trail_event() }
                .json(),
        );
        let trudy = TrailEvent {
            requester: TRUDY,
            access_key_id: "AKIATRUDY00000000001",
            ip: "198.51.100.99",
            request_id: HIDDEN_ID,
            ..mallory
        };
        let trail = serde_json::to_vec(&json!({ "Records": events })).unwrap();
        let tampered = serde_json::to_vec(&json!({ "Records": [trudy.json()] })).unwrap();

        let day = now.day_path();
        let log_file = |unique: &str| {
            format!(
                "AWSLogs/{ACCOUNT}/CloudTrail/{REGION}/{day}/{ACCOUNT}_CloudTrail_{REGION}_{}_{unique}.json.gz",
                now.compact(false)
            )
        };
        let (trail_key, tampered_key) = (log_file("Gd7k2PqR9sT1uVwX"), log_file("Bd3m8NxY4zA6bC0e"));
        let digest_key = format!(
            "AWSLogs/{ACCOUNT}/CloudTrail-Digest/{REGION}/{day}/{ACCOUNT}_CloudTrail-Digest_{REGION}_{TRAIL}_{REGION}_{}.json.gz",
            now.compact(true)
        );
        let listed = |key: &str, hash: String| {
            json!({"s3Bucket": LOG_BUCKET, "s3Object": key, "hashValue": hash, "hashAlgorithm": "SHA-256",
                   "newestEventTime": now.iso(), "oldestEventTime": earlier.iso()})
        };
        let digest = json!({
            "awsAccountId": ACCOUNT,
            "digestStartTime": now.minus(3600).iso(),
            "digestEndTime": now.iso(),
            "digestS3Bucket": LOG_BUCKET,
            "digestS3Object": digest_key,
            "digestPublicKeyFingerprint": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": now.iso(),
            "oldestEventTime": earlier.iso(),
            "previousDigestS3Bucket": null,
            "previousDigestS3Object": null,
            "previousDigestHashValue": null,
            "previousDigestHashAlgorithm": null,
            "logFiles": [
                // CloudTrail hashes the uncompressed file.
                listed(&trail_key, sha256_hex(&trail)),
                listed(&tampered_key, sha256_hex(b"the file CloudTrail delivered")),
            ],
        });
        Delivery {
            access_key: format!("{LOG_PREFIX}{}-7D1E4A0B9C2F5E38", now.dashed()),
            access: access_log(reads, earlier),
            trail_key,
            trail,
            tampered_key,
            tampered,
            digest_key,
            digest: digest.to_string().into_bytes(),
        }
    }

    /// Puts the objects in the log bucket, first removing the access log
    /// objects moto wrote itself for provisioning's requests to the data
    /// bucket (not in S3's format, and not AWS's records).
    fn deliver(&self, moto: &Moto, dir: &Path) {
        let objects = [
            (&self.access_key, self.access.as_bytes(), false),
            (&self.trail_key, &self.trail[..], true),
            (&self.tampered_key, &self.tampered[..], true),
            (&self.digest_key, &self.digest[..], true),
        ];
        let manifest: Vec<Value> = objects
            .iter()
            .enumerate()
            .map(|(i, (key, bytes, gzip))| {
                let path = dir.join(format!("object-{i}"));
                std::fs::write(&path, bytes).unwrap();
                json!({"key": key, "path": path.display().to_string(), "gzip": gzip})
            })
            .collect();
        let listed = moto_python(
            moto,
            r#"
bucket = os.environ["BUCKET"]
for k in keys(bucket, os.environ["PREFIX"]):
    s3.delete_object(Bucket=bucket, Key=k)
for o in json.loads(os.environ["MANIFEST"]):
    body = open(o["path"], "rb").read()
    s3.put_object(Bucket=bucket, Key=o["key"], Body=gzip.compress(body) if o["gzip"] else body)
print(json.dumps(keys(bucket)))
"#,
            &[("BUCKET", LOG_BUCKET), ("PREFIX", LOG_PREFIX), ("MANIFEST", &Value::Array(manifest).to_string())],
        );
        let mut want = vec![&self.access_key, &self.trail_key, &self.tampered_key, &self.digest_key];
        want.sort();
        assert_eq!(listed, json!(want), "the log bucket holds what was delivered, and nothing else");
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The SHA-256 a report's ledger note holds: its compact JSON as the API
/// serves it, without the trailing `ledger_seq` (known only once the note
/// is on the chain).
fn report_sha256(raw: &str) -> String {
    let raw = raw.trim_end();
    let at = raw.rfind(",\"ledger_seq\":").unwrap_or_else(|| panic!("no ledger_seq in {raw}"));
    let seq = &raw[at + ",\"ledger_seq\":".len()..raw.len() - 1];
    assert!(raw.ends_with('}') && seq.bytes().all(|b| b.is_ascii_digit()), "ledger_seq is not the last field: {raw}");
    sha256_hex(format!("{}}}", &raw[..at]).as_bytes())
}

fn metric(metrics: &str, name: &str) -> Option<f64> {
    metrics.lines().find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

fn spec(data_bucket: &str, log_bucket: &str, trail: &str) -> Value {
    json!({
        "data_bucket": data_bucket,
        "log_bucket": log_bucket,
        "trail_name": trail,
        "region": REGION,
        "proxy_principal_arn": PROXY_ARN,
    })
}

fn provision(proxy: &Proxy, name: &str, spec: &Value) {
    let (status, report) = proxy.admin_send("PUT", &format!("/v1/provisioning/{name}"), Some(spec));
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["trail_is_logging"], true, "{report}");
}

/// Deletes `bucket`'s policy in moto, which would refuse every object call
/// (see `egress_e2e::moto`).
fn drop_policy(moto: &Moto, bucket: &str) {
    moto_python(moto, "s3.delete_bucket_policy(Bucket=os.environ['BUCKET'])\nprint('true')", &[("BUCKET", bucket)]);
}

fn reconcile(proxy: &Proxy, spec: &str) -> (u16, Value) {
    proxy.admin_send("POST", "/v1/reconciliations", Some(&json!({"since": "15m", "spec": spec})))
}

fn entry<'a>(list: &'a Value, request_id: &str) -> &'a Value {
    list.as_array()
        .and_then(|l| l.iter().find(|e| e["request_id"] == request_id))
        .unwrap_or_else(|| panic!("no entry with request id {request_id} in {list:#}"))
}

/// Every finding of the run over [`Delivery`]'s logs, entry by entry.
fn assert_findings(report: &Value, reads: &Reads, delivery: &Delivery, earlier: Utc) {
    let Reads { whole_a, whole_b, whole_c, unlogged, .. } = reads;
    assert_eq!(report["spec"], "main");
    assert_eq!(report["status"], "partial", "broken lines and a tampered file: {report:#}");
    assert!(report["error"].as_str().is_some_and(|e| e.contains("could not be used")), "{}", report["error"]);
    assert_eq!(
        report["counts"],
        json!({"bypass": 4, "unaccounted_attempts": 1, "missing_from_aws": 1, "bytes_mismatch": 1,
               "matched": 4, "ledger_reads": 5, "ledger_reads_not_forwarded": 0}),
        "{report:#}"
    );
    assert_eq!(report["delivery_windows"], json!({"access_log_secs": 2, "cloudtrail_secs": 2}));
    assert_eq!(report["warnings"], json!([]));

    // Bypass: the outsider (one entry from both logs), the proxy's role used
    // elsewhere, its upstream key used by another identity, the forged tag;
    // not the read only the tampered file holds.
    let bypass = &report["bypass"];
    assert_eq!(bypass.as_array().unwrap().len(), 4, "{bypass:#}");
    let leaked = entry(bypass, LEAKED_KEY_ID);
    assert_eq!(
        (leaked["requester"].as_str(), leaked["access_key_id"].as_str()),
        (Some(LEAKED_KEY_USER), Some(egress_e2e::servers::UPSTREAM_KEY))
    );
    assert_eq!(leaked["proxy_identity"], true, "the proxy's upstream key, used by another identity: {leaked}");
    assert_eq!(leaked["sources"], json!(["cloudtrail"]));
    let mallory = entry(bypass, MALLORY_ID);
    assert_eq!((mallory["requester"].as_str(), mallory["source_ip"].as_str()), (Some(MALLORY), Some(MALLORY_IP)));
    assert_eq!((mallory["bucket"].as_str(), mallory["key"].as_str()), (Some(DATA_BUCKET), Some(whole_c.key.as_str())));
    assert_eq!(mallory["bytes_sent"], whole_c.bytes);
    assert_eq!(mallory["status"], 200);
    assert_eq!(mallory["access_key_id"], MALLORY_KEY, "CloudTrail's access key joins the access log's record");
    assert_eq!(mallory["proxy_identity"], false);
    assert_eq!(mallory["sources"], json!(["access_log", "cloudtrail"]));
    assert_eq!(mallory["evidence"].as_array().unwrap().len(), 2);
    assert_eq!(mallory["time"].as_str().unwrap()[..19], earlier.iso()[..19]);
    assert!(mallory["note"].is_null(), "{mallory}");

    let stolen = entry(bypass, STOLEN_ID);
    assert_eq!((stolen["requester"].as_str(), stolen["source_ip"].as_str()), (Some(STOLEN_SESSION), Some(STOLEN_IP)));
    assert_eq!(stolen["proxy_identity"], true, "the proxy's role, used outside the proxy: {stolen}");
    assert_eq!(
        (stolen["key"].as_str(), stolen["bytes_sent"].as_u64()),
        (Some(whole_b.key.as_str()), Some(whole_b.bytes))
    );
    assert_eq!(stolen["sources"], json!(["access_log"]));

    let forged = entry(bypass, FORGED_ID);
    assert_eq!((forged["requester"].as_str(), forged["source_ip"].as_str()), (Some(EVE), Some(EVE_IP)));
    assert_eq!(forged["proxy_identity"], false);
    assert_eq!(forged["sources"], json!(["access_log"]));
    assert_eq!(forged["evidence"][0]["tag"], whole_a.req.as_str());
    let note = forged["note"].as_str().unwrap_or_else(|| panic!("a forged tag is explained: {forged}"));
    assert!(note.contains(&whole_a.req) && note.contains("added by someone else"), "{note}");
    assert!(!report.to_string().contains(HIDDEN_ID), "a read only the tampered CloudTrail file holds was used");

    let attempts = &report["unaccounted_attempts"];
    assert_eq!(attempts.as_array().unwrap().len(), 1, "{attempts:#}");
    let denied = entry(attempts, DENIED_ID);
    assert_eq!((denied["status"].as_u64(), denied["error_code"].as_str()), (Some(403), Some("AccessDenied")));
    assert_eq!(denied["requester"], MALLORY);

    let missing = report["missing_from_aws"].as_array().unwrap();
    assert_eq!(missing.len(), 1, "{missing:#?}");
    assert_eq!(missing[0]["ledger"]["req"], unlogged.req.as_str());
    assert_eq!(missing[0]["ledger"]["seq"], unlogged.seq);
    assert_eq!(missing[0]["ledger"]["principal"], "alice");
    assert_eq!(missing[0]["missing_in"], json!(["access_log", "cloudtrail"]));

    let mismatches = report["bytes_mismatch"].as_array().unwrap();
    assert_eq!(mismatches.len(), 1, "{mismatches:#?}");
    assert_eq!(mismatches[0]["ledger"]["req"], whole_c.req.as_str());
    assert_eq!(
        (mismatches[0]["ledger_bytes"].as_u64(), mismatches[0]["aws_bytes"].as_u64()),
        (Some(whole_c.bytes), Some(whole_c.bytes + 1000))
    );
    assert_eq!(mismatches[0]["rule"], "request_id");
    assert_eq!(mismatches[0]["aws"]["source"], "access_log");
    assert_eq!(mismatches[0]["aws"]["request_id"], whole_c.upstream_id.as_str());

    assert_eq!(
        report["matched"],
        json!([{"principal": "alice", "bucket": DATA_BUCKET, "access_log": 4, "cloudtrail": 4}]),
        "{report:#}"
    );

    // What was read: 11 lines, 8 of them reads; 6 CloudTrail records of the
    // trusted file, 5 of them reads.
    let access = &report["sources"]["access_log"];
    assert_eq!(
        [&access["files_read"], &access["records"], &access["reads_in_window"], &access["other_records"]],
        [1, 11, 8, 1],
        "{access:#}"
    );
    assert_eq!(access["malformed_count"], 2, "{access:#}");
    let malformed: Vec<(&str, u64)> = access["malformed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["object"].as_str().unwrap(), m["position"].as_u64().unwrap()))
        .collect();
    assert_eq!(malformed, [(delivery.access_key.as_str(), 10), (delivery.access_key.as_str(), 11)]);
    assert_eq!(access["matched_by_rule"], json!({"request_id": 4, "tag": 0, "fallback": 0}));
    assert_eq!((&access["missing"], &access["pending"]), (&json!(1), &json!(0)));
    assert_eq!(access["unusable_files"], json!([]));

    let trail = &report["sources"]["cloudtrail"];
    assert_eq!(
        [
            &trail["files_read"],
            &trail["digests_read"],
            &trail["records"],
            &trail["reads_in_window"],
            &trail["other_records"]
        ],
        [1, 1, 7, 6, 1],
        "{trail:#}"
    );
    assert_eq!(trail["malformed_count"], 0, "{trail:#}");
    assert_eq!(trail["matched_by_rule"], json!({"request_id": 4, "tag": 0, "fallback": 0}));
    assert_eq!((&trail["missing"], &trail["pending"]), (&json!(1), &json!(0)));
    let unusable = trail["unusable_files"].as_array().unwrap();
    assert_eq!(unusable.len(), 1, "{trail:#}");
    assert_eq!(unusable[0]["object"], delivery.tampered_key.as_str());
    assert!(unusable[0]["problem"].as_str().unwrap().contains(&delivery.digest_key), "{}", unusable[0]);
    assert_eq!(trail["unverified_files"], json!([]), "the digest vouches for the other file");
    assert_eq!(trail["integrity_failures"], json!([]));
}

#[test]
fn a_run_finds_bypass_reads_gaps_and_untrustworthy_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("moto-certs");
    let out = egress_e2e::run(&["certs", "--out", certs.to_str().unwrap(), "--hosts", "localhost,127.0.0.1"]);
    assert_eq!(out.code, 0, "egress-proxy certs: {out:?}");
    let moto = Moto::start_with_tls(&certs);
    let ca = certs.join("ca.pem").display().to_string();
    let upstream = SeaweedFs::start();
    let delivery_windows = ["--access-log-delivery", "2s", "--cloudtrail-delivery", "2s"];
    let mut extra_args = vec!["--aws-endpoint".to_owned(), moto.endpoint()];
    extra_args.extend(delivery_windows.map(str::to_owned));
    let mut proxy = Proxy::start(
        &upstream,
        ProxyOptions {
            principals: vec!["alice".into()],
            extra_args,
            // The AWS clients trust the system's roots, read from here.
            env: vec![("SSL_CERT_FILE".into(), ca.clone())],
            ..ProxyOptions::default()
        },
    );
    provision(&proxy, "main", &spec(DATA_BUCKET, LOG_BUCKET, TRAIL));
    drop_policy(&moto, LOG_BUCKET);

    let reads = alice_reads(&proxy);
    // AWS's records of them; the reads that bypassed the proxy came a little earlier.
    let now = Utc::now();
    let earlier = now.minus(20);
    let delivery = Delivery::new(&reads, now, earlier);
    delivery.deliver(&moto, tmp.path());
    // Past both delivery windows (2 s) of the read AWS never logged.
    while Utc::now().0 < reads.unlogged.time.0 + 4 {
        std::thread::sleep(Duration::from_millis(200));
    }

    let (status, report) = reconcile(&proxy, "main");
    assert_eq!(status, 201, "{report:#}");
    assert_findings(&report, &reads, &delivery, earlier);

    // The report as kept, listed, and on the chain.
    let id = report["id"].as_str().unwrap().to_owned();
    let kept_raw = proxy.admin_get(&format!("/v1/reconciliations/{id}"));
    let kept: Value = serde_json::from_str(&kept_raw).unwrap_or_else(|e| panic!("{e}: {kept_raw}"));
    assert_eq!(kept, report);
    let hash = report_sha256(&kept_raw);
    let (status, list) = proxy.admin_send("GET", "/v1/reconciliations", None);
    assert_eq!(status, 200, "{list}");
    let summary = list["reconciliations"].as_array().unwrap().iter().find(|r| r["id"] == id.as_str()).unwrap();
    assert_eq!((&summary["status"], &summary["counts"]), (&report["status"], &report["counts"]));
    assert_eq!(
        (&summary["ledger_seq"], summary["report_sha256"].as_str()),
        (&report["ledger_seq"], Some(hash.as_str()))
    );
    let seq = report["ledger_seq"].as_u64().unwrap();
    let note = proxy.ledger().into_iter().find(|l| l["seq"] == seq).unwrap();
    assert_eq!((note["kind"].as_str(), note["event"].as_str()), (Some("note"), Some("reconciliation")), "{note}");
    assert_eq!(
        (note["id"].as_str(), note["spec"].as_str(), note["status"].as_str()),
        (Some(id.as_str()), Some("main"), Some("partial"))
    );
    assert_eq!((&note["since"], &note["until"]), (&report["window"]["since"], &report["window"]["until"]));
    assert_eq!(note["counts"], report["counts"]);
    assert_eq!(note["report_sha256"], hash.as_str(), "the chain holds the hash of the report as served");

    let metrics = proxy.admin_get("/metrics");
    assert_eq!(metric(&metrics, "egress_reconcile_bypass_reads_total"), Some(4.0), "{metrics}");
    assert_eq!(metric(&metrics, "egress_reconcile_runs_total{status=\"partial\"}"), Some(1.0), "{metrics}");
    #[allow(clippy::cast_precision_loss)] // seconds since 1970 are far below 2^52
    let ran_after = now.0 as f64;
    assert!(metric(&metrics, "egress_reconcile_last_run_timestamp_seconds").is_some_and(|t| t >= ran_after));

    // A second run over the same logs (and over the first run's note) finds
    // the same reads: the counter counts each once.
    let (status, again) = reconcile(&proxy, "main");
    assert_eq!(status, 201, "{again:#}");
    assert_eq!(again["counts"], report["counts"]);
    assert_ne!(again["id"], report["id"]);
    let metrics = proxy.admin_get("/metrics");
    assert_eq!(metric(&metrics, "egress_reconcile_bypass_reads_total"), Some(4.0), "{metrics}");
    assert_eq!(metric(&metrics, "egress_reconcile_runs_total{status=\"partial\"}"), Some(2.0), "{metrics}");

    // A spec whose log bucket is gone: nothing is known, and the answer says so.
    provision(&proxy, "broken", &spec("egress-data-2", "egress-logs-2", "egress-reads-2"));
    drop_policy(&moto, "egress-logs-2");
    moto_python(
        &moto,
        r#"
for k in keys("egress-logs-2"):
    s3.delete_object(Bucket="egress-logs-2", Key=k)
s3.delete_bucket(Bucket="egress-logs-2")
print("true")
"#,
        &[],
    );
    let (status, failed) = reconcile(&proxy, "broken");
    assert_eq!(status, 502, "{failed:#}");
    assert_eq!(failed["error"]["code"], "reconciliation_failed");
    assert!(failed["error"]["message"].as_str().unwrap().contains("nothing is known"), "{failed:#}");
    assert_eq!(
        (failed["report"]["status"].as_str(), failed["report"]["spec"].as_str()),
        (Some("failed"), Some("broken"))
    );
    assert!(failed["report"]["error"].as_str().unwrap().contains("NoSuchBucket"), "{failed:#}");
    assert_eq!(failed["report"]["bypass"], json!([]));
    let failed_seq = failed["report"]["ledger_seq"].as_u64().unwrap();
    let failed_note = proxy.ledger().into_iter().find(|l| l["seq"] == failed_seq).unwrap();
    assert_eq!(
        (failed_note["event"].as_str(), failed_note["status"].as_str()),
        (Some("reconciliation"), Some("failed"))
    );
    let metrics = proxy.admin_get("/metrics");
    assert_eq!(metric(&metrics, "egress_reconcile_runs_total{status=\"failed\"}"), Some(1.0), "{metrics}");
    assert_eq!(metric(&metrics, "egress_reconcile_bypass_reads_total"), Some(4.0), "{metrics}");

    // The CLI, on the data dir of the stopped proxy: exit code 2, bypass.
    proxy.stop();
    let endpoint = moto.endpoint();
    let data_dir = proxy.data_dir.display().to_string();
    let mut args = vec!["reconcile", "--since", "15m", "--spec", "main", "--json", "--aws-endpoint", &endpoint];
    args.extend(["--proxy-access-key-id", egress_e2e::servers::UPSTREAM_KEY]);
    args.extend(delivery_windows);
    args.extend(["--data-dir", &data_dir]);
    let cli: egress_e2e::Run = Command::new(egress_e2e::bin())
        .args(&args)
        .env("SSL_CERT_FILE", &ca)
        .env("AWS_ACCESS_KEY_ID", "AKIDTEST")
        .env("AWS_SECRET_ACCESS_KEY", "secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("EGRESS_LOG", "warn")
        .output()
        .expect("run egress-proxy reconcile")
        .into();
    assert_eq!(cli.code, 2, "bypass found: {cli:?}");
    let from_cli = cli.json();
    assert_eq!(from_cli["status"], "partial");
    assert_eq!(from_cli["counts"], report["counts"], "{from_cli:#}");
    let bypass_ids =
        |r: &Value| -> Vec<Value> { r["bypass"].as_array().unwrap().iter().map(|b| b["request_id"].clone()).collect() };
    assert_eq!(bypass_ids(&from_cli), bypass_ids(&report));
    let cli_seq = from_cli["ledger_seq"].as_u64().unwrap();
    let cli_note = ledger_lines(&proxy.data_dir).into_iter().find(|l| l["seq"] == cli_seq).unwrap();
    assert_eq!(
        (cli_note["event"].as_str(), cli_note["id"].as_str()),
        (Some("reconciliation"), from_cli["id"].as_str())
    );
}

/// `serve --reconcile-every`: runs on its own once a spec exists, each
/// kept, listed and on the chain.
#[test]
fn serve_reconciles_on_a_schedule() {
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("moto-certs");
    let out = egress_e2e::run(&["certs", "--out", certs.to_str().unwrap(), "--hosts", "localhost,127.0.0.1"]);
    assert_eq!(out.code, 0, "egress-proxy certs: {out:?}");
    let moto = Moto::start_with_tls(&certs);
    let upstream = SeaweedFs::start();
    let mut proxy = Proxy::start(
        &upstream,
        ProxyOptions {
            extra_args: vec!["--aws-endpoint".into(), moto.endpoint(), "--reconcile-every".into(), "1s".into()],
            env: vec![("SSL_CERT_FILE".into(), certs.join("ca.pem").display().to_string())],
            ..ProxyOptions::default()
        },
    );
    provision(&proxy, "main", &spec(DATA_BUCKET, LOG_BUCKET, TRAIL));
    drop_policy(&moto, LOG_BUCKET);
    let deadline = std::time::Instant::now() + Duration::from_mins(1);
    let runs = loop {
        let (status, list) = proxy.admin_send("GET", "/v1/reconciliations", None);
        assert_eq!(status, 200, "{list}");
        let runs = list["reconciliations"].as_array().cloned().unwrap_or_default();
        if runs.len() >= 2 {
            break runs;
        }
        assert!(std::time::Instant::now() < deadline, "no two scheduled runs in 60 s: {list}\n{}", proxy.log());
        std::thread::sleep(Duration::from_millis(200));
    };
    for run in &runs {
        assert_eq!(run["spec"], "main", "{run}");
        assert_ne!(run["status"], "failed", "the log bucket is readable: {run}");
        let seq = run["ledger_seq"].as_u64().unwrap();
        let note = proxy.ledger().into_iter().find(|l| l["seq"] == seq).unwrap();
        assert_eq!((note["event"].as_str(), &note["id"]), (Some("reconciliation"), &run["id"]), "{note}");
    }
    // Each covers the interval and the longest delivery window (24 h by default).
    let window = &runs[0]["window"];
    let since = humantime::parse_rfc3339_weak(window["since"].as_str().unwrap()).unwrap();
    let until = humantime::parse_rfc3339_weak(window["until"].as_str().unwrap()).unwrap();
    assert_eq!(until.duration_since(since).unwrap().as_secs(), 24 * 3600 + 1, "{window}");
    let metrics = proxy.admin_get("/metrics");
    assert!(metric(&metrics, "egress_reconcile_last_success_timestamp_seconds").is_some_and(|t| t > 0.0), "{metrics}");
    proxy.stop();
}
