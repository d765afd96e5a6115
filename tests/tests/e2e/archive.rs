//! The ledger off the host, end to end: the real proxy ships its ledger to
//! moto (as S3) into a bucket with Object Lock, through a relay that can
//! take the archive away. Then: shipped objects cannot be deleted or
//! overwritten (and an overwrite moto lets through, where AWS's policy
//! would not, is ignored and reported by verify); an archive outage leaves
//! the data path alone while the lag grows, then catches up; a kill -9
//! mid-shipping leaves no gap and no duplicate; a rolled-back copy of the
//! data dir is caught against the archive; the chain verifies from the
//! archive with the data dir deleted; `DuckDB` over the shipped Parquet
//! answers what `/v1/egress/summary` answers. A second test ships to a
//! bucket without Object Lock, changes a shipped line there, and verify
//! names the first bad seq.

use std::time::{Duration, Instant};

use egress_e2e::moto::Moto;
use egress_e2e::relay::{Fault, Relay};
use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};
use serde_json::{Value, json};

const BUCKET: &str = "egress-archive";
/// The auditor's credentials: read access to the archive (moto takes any).
const AUDITOR: &[(&str, &str)] = &[
    ("AWS_ACCESS_KEY_ID", "AKIDAUDITOR"),
    ("AWS_SECRET_ACCESS_KEY", "auditor-secret"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];
const ORIGIN: &str = "egress-proxy@node-a";

const MOTO_PRELUDE: &str = r#"
import os, json, datetime, boto3, botocore
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["MOTO"], region_name="us-east-1",
    aws_access_key_id="AKIDTEST", aws_secret_access_key="secret",
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
def keys(prefix):
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=os.environ["BUCKET"], Prefix=prefix):
        out += [o["Key"] for o in page.get("Contents", [])]
    return out
def code(call, **kw):
    try:
        call(**kw)
        return "ok"
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
"#;

fn moto_python(moto: &Moto, bucket: &str, body: &str) -> Value {
    python(&format!("{MOTO_PRELUDE}\n{body}"), &[("MOTO", &moto.endpoint()), ("BUCKET", bucket)])
}

const PROXY_PRELUDE: &str = r#"
import os, json, boto3
from botocore.config import Config
ak, sk = json.loads(os.environ["KEY"])
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=ak, aws_secret_access_key=sk,
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
"#;

/// GETs through the proxy; their statuses.
fn reads(proxy: &Proxy, n: usize) -> Value {
    let key = proxy.key();
    let key = json!([key.access_key_id, key.secret_access_key]).to_string();
    python(
        &format!(
            "{PROXY_PRELUDE}\nout = []\nfor i in range({n}):\n    r = s3.get_object(Bucket='data', Key=f'train/part-{{i % 4}}.bin', Range=f'bytes={{i}}-{{i + 999}}')\n    r['Body'].read()\n    out.append(r['ResponseMetadata']['HTTPStatusCode'])\nprint(json.dumps(sorted(set(out))))"
        ),
        &[("ENDPOINT", &proxy.endpoint()), ("KEY", &key)],
    )
}

fn archive_status(proxy: &Proxy) -> Value {
    serde_json::from_str(&proxy.admin_get("/v1/archive")).unwrap()
}

/// Waits until the archive holds everything the ledger has.
fn wait_shipped(proxy: &Proxy) -> Value {
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let status = archive_status(proxy);
        // The writer's head (the local files may be pruned).
        let health: Value = serde_json::from_str(&proxy.admin_get("/healthz")).unwrap();
        let head = &health["ledger"]["seq"];
        if status["lag_records"] == 0 && status["shipped_seq"] == *head {
            return status;
        }
        assert!(Instant::now() < deadline, "the archive did not catch up: {status} (ledger head {head})");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `ledger verify --archive` (JSON), with extra arguments; no data dir
/// unless they name one.
fn verify(moto: &Moto, extra: &[&str]) -> (i32, Value, String) {
    verify_bucket(moto, BUCKET, extra)
}

fn verify_bucket(moto: &Moto, bucket: &str, extra: &[&str]) -> (i32, Value, String) {
    let url = format!("s3://{bucket}/fleet");
    let endpoint = moto.endpoint();
    let mut args = vec!["ledger", "verify", "--json", "--archive", &url, "--aws-endpoint", &endpoint];
    args.extend_from_slice(extra);
    let out = egress_e2e::run_env(&args, AUDITOR);
    let json = serde_json::from_str(&out.stdout).unwrap_or(Value::Null);
    (out.code, json, format!("{out:?}"))
}

/// `(first, last)` of every part in the archive, in key order.
fn part_ranges(moto: &Moto) -> Vec<(u64, u64)> {
    let found = moto_python(moto, BUCKET, &format!("print(json.dumps(keys('fleet/{ORIGIN}/parts/')))"));
    found
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            let name = k.as_str().unwrap().rsplit('/').next().unwrap();
            let mut fields = name.split('-');
            (fields.next().unwrap().parse().unwrap(), fields.next().unwrap().parse().unwrap())
        })
        .collect()
}

fn start_proxy(
    upstream: &SeaweedFs,
    archive_endpoint: &str,
    bucket: &str,
    retention_days: &str,
    extra: &[&str],
) -> Proxy {
    Proxy::start(
        upstream,
        ProxyOptions {
            principals: vec!["alice".into()],
            extra_args: [
                "--archive",
                &format!("s3://{bucket}/fleet"),
                "--aws-endpoint",
                archive_endpoint,
                "--archive-interval",
                "1s",
                "--archive-retention-days",
                retention_days,
                "--origin",
                ORIGIN,
                "--ledger-segment-kib",
                "8",
            ]
            .iter()
            .chain(extra)
            .map(|s| (*s).to_owned())
            .collect(),
            env: vec![("EGRESS_ORIGIN".into(), ORIGIN.into())],
            ..ProxyOptions::default()
        },
    )
}

fn put_objects(proxy: &Proxy) {
    let key = proxy.key();
    let key = json!([key.access_key_id, key.secret_access_key]).to_string();
    let done = python(
        &format!(
            "{PROXY_PRELUDE}\ns3.create_bucket(Bucket='data')\nfor i in range(4):\n    s3.put_object(Bucket='data', Key=f'train/part-{{i}}.bin', Body=bytes(range(256)) * 64)\nprint(json.dumps('ok'))"
        ),
        &[("ENDPOINT", &proxy.endpoint()), ("KEY", &key)],
    );
    assert_eq!(done, "ok");
}

#[test]
fn the_archive_holds_the_history_when_the_host_does_not() {
    let moto = Moto::start();
    let created = moto_python(
        &moto,
        BUCKET,
        r#"
s3.create_bucket(Bucket=os.environ["BUCKET"], ObjectLockEnabledForBucket=True)
s3.put_object_lock_configuration(Bucket=os.environ["BUCKET"], ObjectLockConfiguration={
    "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 1}}})
print(json.dumps("ok"))
"#,
    );
    assert_eq!(created, "ok");
    let relay = Relay::start(format!("127.0.0.1:{}", moto.port).parse().unwrap());
    let upstream = SeaweedFs::start();
    let mut proxy = start_proxy(&upstream, &relay.endpoint(), BUCKET, "1", &[]);
    put_objects(&proxy);
    assert_eq!(reads(&proxy, 60), json!([206]));
    let status = wait_shipped(&proxy);
    assert!(status["segments_shipped"].as_u64().unwrap() >= 3, "{status}");
    assert!(status["events_files_shipped"].as_u64().unwrap() >= 1, "{status}");
    assert_eq!(status["archive"], format!("s3://{BUCKET}/fleet/{ORIGIN}/"));

    // Object Lock holds what was shipped: no delete, no overwrite.
    let locked = moto_python(
        &moto,
        BUCKET,
        &format!(
            r#"
b = os.environ["BUCKET"]
seg = keys("fleet/{ORIGIN}/segments/")[0]
head = s3.head_object(Bucket=b, Key=seg, ChecksumMode="ENABLED")
version = head["VersionId"]
left = head["ObjectLockRetainUntilDate"] - datetime.datetime.now(datetime.timezone.utc)
r = {{
    "mode": head.get("ObjectLockMode"),
    "retained_hours": round(left.total_seconds() / 3600),
    "checksum": bool(head.get("ChecksumSHA256")),
    "delete_version": code(s3.delete_object, Bucket=b, Key=seg, VersionId=version),
    "overwrite_if_none_match": code(s3.put_object, Bucket=b, Key=seg, Body=b"x", IfNoneMatch="*", ChecksumAlgorithm="SHA256"),
    "kinds": sorted(set(k.split("/")[2] for k in keys("fleet/{ORIGIN}/"))),
}}
# What AWS's bucket policy refuses and moto cannot evaluate: an overwrite
# without If-None-Match. It only adds a version; the first one stays.
s3.put_object(Bucket=b, Key=seg, Body=b"not a segment", ChecksumAlgorithm="SHA256")
r["versions"] = len(s3.list_object_versions(Bucket=b, Prefix=seg)["Versions"])
print(json.dumps(r))
"#
        ),
    );
    assert_eq!(
        locked,
        json!({"mode": "COMPLIANCE", "retained_hours": 24, "checksum": true, "delete_version": "AccessDenied",
               "overwrite_if_none_match": "PreconditionFailed",
               "kinds": ["checkpoints", "events", "keys", "parts", "segments"], "versions": 2})
    );
    let (code, report, out) = verify(&moto, &[]);
    assert_eq!(code, 0, "{out}");
    let archived = &report["archive"][0];
    assert_eq!(archived["ok"], true, "{report}");
    assert_eq!(archived["overwritten_count"], 1, "the overwrite is reported: {report}");
    assert_eq!(archived["head_seq"], status["shipped_seq"]);
    assert!(
        archived["checkpoint_objects"].as_u64().unwrap() >= 1 || archived["checkpoints_in_log"].as_u64().unwrap() >= 1
    );

    // The archive goes away: reads go on, the lag grows and shows.
    relay.set(Fault::Refuse);
    relay.reset_all();
    assert_eq!(reads(&proxy, 20), json!([206]), "the data path does not wait for the archive");
    let deadline = Instant::now() + Duration::from_secs(20);
    let behind = loop {
        let status = archive_status(&proxy);
        if status["failures_in_a_row"].as_u64().unwrap() >= 2 && status["lag_records"].as_u64().unwrap() >= 40 {
            break status;
        }
        assert!(Instant::now() < deadline, "no lag shown: {status}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(behind["last_error"].is_string(), "{behind}");
    assert!(behind["lag_seconds"].as_f64().unwrap() > 0.0, "{behind}");
    let metrics = proxy.admin_get("/metrics");
    let lag_line = metrics.lines().find(|l| l.starts_with("egress_archive_lag_records ")).expect("lag metric");
    assert!(lag_line.split(' ').nth(1).unwrap().parse::<f64>().unwrap() >= 40.0, "{lag_line}");
    let health: Value = serde_json::from_str(&proxy.admin_get("/healthz")).unwrap();
    assert!(health["archive"]["lag_records"].as_u64().unwrap() >= 40, "{health}");

    // A copy of the data dir now: later it is behind the archive.
    let rolled = tempfile::tempdir().unwrap();
    for dir in ["ledger", "keys", "checkpoints"] {
        std::fs::create_dir_all(rolled.path().join(dir)).unwrap();
        egress_e2e::copy_dir(&proxy.data_dir.join(dir), &rolled.path().join(dir));
    }
    relay.set(Fault::Pass);
    wait_shipped(&proxy);

    // kill -9 while lines are being shipped; the restart resumes.
    assert_eq!(reads(&proxy, 30), json!([206]));
    proxy.kill();
    proxy.restart();
    assert_eq!(reads(&proxy, 10), json!([206]));
    wait_shipped(&proxy);
    let parts = part_ranges(&moto);
    assert!(!parts.is_empty());
    for pair in parts.windows(2) {
        assert!(pair[0].1 < pair[1].0, "parts overlap (a duplicate) or are out of order: {parts:?}");
    }

    // DuckDB over the shipped Parquet answers what the summary answers.
    duckdb_over_the_shipped_events(&proxy, &moto);

    // The local ledger extends the archive; the rolled-back copy does not.
    proxy.stop();
    let data_dir = proxy.data_dir.to_str().unwrap().to_owned();
    let (code, report, out) = verify(&moto, &["--data-dir", &data_dir]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(report["local"]["ok"], true, "{report}");
    let rolled_dir = rolled.path().to_str().unwrap().to_owned();
    let (code, report, out) = verify(&moto, &["--data-dir", &rolled_dir]);
    assert_eq!(code, 2, "a copy behind the archive is rolled back: {out}");
    assert_eq!(report["local"]["problem"]["kind"], "truncated", "{report}");

    // The host is gone: the archive alone still proves the whole history.
    let head = proxy.ledger().len() as u64 - 1;
    std::fs::remove_dir_all(&proxy.data_dir).unwrap();
    let (code, report, out) = verify(&moto, &[]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(report["archive"][0]["head_seq"], head, "{report}");
    let (code, _, out) = verify(&moto, &["--origin", "egress-proxy@nobody"]);
    assert_eq!(code, 64, "an origin with nothing shipped is not intact: {out}");
    assert!(out.contains("nothing was shipped"), "{out}");
    assert_eq!(report["archive"][0]["records"], head + 1, "{report}");
    assert_eq!(report["local"], Value::Null);
}

/// Downloads the shipped Parquet and runs the documented `DuckDB` query over
/// it against `/v1/egress/summary`, for the range whose requests all ended
/// in shipped segments (a request is a row once its segment is sealed).
fn duckdb_over_the_shipped_events(proxy: &Proxy, moto: &Moto) {
    use crate::parquet_export::{
        DOC_ARCHIVE_GLOB, DOC_FIRST_DATE, DOC_LAST_DATE, DOC_SINCE, DOC_UNTIL, documented_queries, duckdb, sql_path,
        summary,
    };
    let local = tempfile::tempdir().unwrap();
    let shipped_through = moto_python(
        moto,
        BUCKET,
        &format!(
            r#"
last = -1
for k in keys("fleet/{ORIGIN}/events/"):
    path = os.path.join({out:?}, k.split("/events/", 1)[1])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    s3.download_file(os.environ["BUCKET"], k, path)
for k in keys("fleet/{ORIGIN}/segments/"):
    last = max(last, int(k.rsplit("/", 1)[1].split("-")[1]))
print(json.dumps(last))
"#,
            out = local.path().display().to_string()
        ),
    )
    .as_u64()
    .unwrap();
    let lines = proxy.ledger();
    let ends: std::collections::HashMap<u64, u64> = lines
        .iter()
        .filter(|l| l["kind"] == "end")
        .map(|l| (l["start_seq"].as_u64().unwrap(), l["seq"].as_u64().unwrap()))
        .collect();
    let starts: Vec<&Value> = lines.iter().filter(|l| l["kind"] == "start").collect();
    let since = starts[0]["ts"].as_str().unwrap().to_owned();
    let open = starts
        .iter()
        .find(|s| ends.get(&s["seq"].as_u64().unwrap()).is_none_or(|end| *end > shipped_through))
        .expect("requests after the last sealed segment");
    let until = open["ts"].as_str().unwrap().to_owned();
    let expected = summary(proxy, Some((&since, &until)));
    assert!(expected.as_array().unwrap().iter().any(|g| g[0] == "alice" && g[1].as_u64().unwrap() >= 50), "{expected}");
    let (archive_query, _) = documented_queries();
    let glob = local.path().join("date=*/*.parquet");
    let query = archive_query
        .replace(DOC_ARCHIVE_GLOB, &sql_path(&glob))
        .replace(DOC_SINCE, &since)
        .replace(DOC_UNTIL, &until)
        .replace(DOC_FIRST_DATE, &format!("DATE '{}'", &since[..10]))
        .replace(DOC_LAST_DATE, &format!("DATE '{}'", &until[..10]));
    assert_eq!(duckdb(&query), expected, "{query}");
}

#[test]
fn pruned_and_then_a_line_changed_in_a_bucket_without_object_lock() {
    let moto = Moto::start();
    let plain = "egress-archive";
    let created = moto_python(&moto, plain, "s3.create_bucket(Bucket=os.environ['BUCKET'])\nprint(json.dumps('ok'))");
    assert_eq!(created, "ok");
    let upstream = SeaweedFs::start();
    // Shipped and signed segments leave the host at once.
    let mut proxy = start_proxy(
        &upstream,
        &moto.endpoint(),
        plain,
        "0",
        &["--local-retention", "0s", "--checkpoint-interval", "1s"],
    );
    put_objects(&proxy);
    assert_eq!(reads(&proxy, 40), json!([206]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = wait_shipped(&proxy);
        if status["segments_pruned"].as_u64().unwrap() >= 2 {
            break status;
        }
        assert!(Instant::now() < deadline, "nothing pruned: {status}");
        std::thread::sleep(Duration::from_millis(300));
    };
    let local = proxy.ledger();
    let first_local = local[0]["seq"].as_u64().unwrap();
    assert!(first_local > 0, "the oldest segments are gone from the host");
    let notes = local.iter().filter(|l| l["event"] == "archive_pruned").count() as u64;
    assert_eq!(notes, status["segments_pruned"].as_u64().unwrap(), "each pruning is on the chain");
    // What needs the pruned lines says where they are.
    let (code, body) = proxy.admin_send("GET", "/v1/egress/summary?group_by=principal", None);
    assert_eq!(code, 410, "{body}");
    // A range that starts after the first local line needs none of them.
    let since = local.iter().rev().find(|l| l["kind"] == "start").unwrap()["ts"].as_str().unwrap().to_owned();
    let wanted = local.iter().filter(|l| l["kind"] == "start" && l["ts"].as_str().unwrap() >= since.as_str()).count();
    let (code, body) = proxy.admin_send("GET", &format!("/v1/egress/summary?group_by=principal&since={since}"), None);
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["groups"][0]["requests"], wanted, "{body}");
    proxy.stop();
    // The local ledger starts later and still extends the archive.
    let data_dir = proxy.data_dir.to_str().unwrap().to_owned();
    let (code, report, out) = verify_bucket(&moto, plain, &["--data-dir", &data_dir]);
    assert_eq!(code, 0, "{out}");
    assert_eq!(report["local"]["from_seq"], first_local, "{report}");
    assert_eq!(report["local"]["start_checked"], true, "{report}");

    // In the second segment, an `end` line that is not its last gets
    // another status: the line after it no longer chains.
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("segment.zst");
    let key = moto_python(
        &moto,
        plain,
        &format!(
            "k = keys('fleet/{ORIGIN}/segments/')[1]\ns3.download_file(os.environ['BUCKET'], k, os.environ['FILE'])\nprint(json.dumps(k))"
        )
        .replace("os.environ['FILE']", &format!("{:?}", file.display().to_string())),
    );
    let key = key.as_str().unwrap().to_owned();
    let lines = zstd::decode_all(std::fs::read(&file).unwrap().as_slice()).unwrap();
    let mut lines: Vec<String> = String::from_utf8(lines).unwrap().lines().map(str::to_owned).collect();
    let at = lines[..lines.len() - 1]
        .iter()
        .position(|l| l.contains("\"kind\":\"end\"") && l.contains("\"status\":206"))
        .expect("an end line");
    let seq = serde_json::from_str::<Value>(&lines[at]).unwrap()["seq"].as_u64().unwrap();
    lines[at] = lines[at].replace("\"status\":206", "\"status\":200");
    let text = lines.join("\n") + "\n";
    std::fs::write(&file, zstd::bulk::compress(text.as_bytes(), 3).unwrap()).unwrap();
    let replaced = moto_python(
        &moto,
        plain,
        &format!(
            "s3.upload_file({:?}, os.environ['BUCKET'], {key:?})\nprint(json.dumps('ok'))",
            file.display().to_string()
        ),
    );
    assert_eq!(replaced, "ok");
    let (code, report, out) = verify_bucket(&moto, plain, &[]);
    assert_eq!(code, 1, "{out}");
    let problem = &report["archive"][0]["problem"];
    assert_eq!(problem["kind"], "tampered", "{report}");
    assert_eq!(problem["seq"], seq + 1, "the line after the changed one breaks the chain: {report}");
    assert_eq!(problem["segment"], key.as_str(), "{report}");
    let human = egress_e2e::run_env(
        &["ledger", "verify", "--archive", &format!("s3://{plain}/fleet"), "--aws-endpoint", &moto.endpoint()],
        AUDITOR,
    );
    assert_eq!(human.code, 1);
    assert!(human.stdout.contains(&format!("NOT intact (Tampered) at seq {}", seq + 1)), "{}", human.stdout);
}
