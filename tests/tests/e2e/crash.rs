//! Crash test: boto3 clients keep reading and writing through the proxy
//! while it is killed with SIGKILL at random moments and restarted, again
//! and again. After every restart the ledger verifies and still holds the
//! head the proxy had acknowledged (from `/healthz`) just before the kill;
//! at the end, every response that began has its `start`, every `start`
//! has exactly one `end` (`interrupted` where a crash cut it), and finished
//! downloads are recorded with the bytes the client got.
//!
//! `EGRESS_CRASHES` sets the number of kills (the suite runs 20;
//! `scripts/crash-test.sh 1000` runs a long one). `EGRESS_CRASH_SEED` repeats
//! a run's timing.

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python, venv_bin};
use serde_json::Value;
use sha2::Digest as _;

const CLIENTS: &str = r#"
import os, json, time, threading, random, boto3, botocore
from botocore.config import Config
cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, connect_timeout=2, read_timeout=20,
             max_pool_connections=8)
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"], config=cfg)
out = open(os.environ["LOG"], "a", buffering=1)
lock = threading.Lock()
def note(**fields):
    with lock:
        out.write(json.dumps(fields) + "\n")
def req_of(headers):
    return headers.get("x-egress-request-id")
def one(rnd, n):
    op = rnd.choice(["small", "small", "big", "range", "put", "head", "list"])
    try:
        if op in ("small", "big", "range"):
            key = {"small": "small.bin", "big": "big.bin", "range": "big.bin"}[op]
            extra = {"Range": "bytes=1000-200999"} if op == "range" else {}
            r = s3.get_object(Bucket="crash", Key=key, **extra)
            req, got = req_of(r["ResponseMetadata"]["HTTPHeaders"]), 0
            try:
                for chunk in r["Body"].iter_chunks(1 << 16):
                    got += len(chunk)
                note(op=op, req=req, status=r["ResponseMetadata"]["HTTPStatusCode"], bytes=got, complete=True)
            except Exception as e:
                note(op=op, req=req, status=r["ResponseMetadata"]["HTTPStatusCode"], bytes=got, complete=False,
                     error=type(e).__name__)
        elif op == "put":
            r = s3.put_object(Bucket="crash", Key=f"put-{n}", Body=os.urandom(rnd.randint(0, 300000)))
            note(op=op, req=req_of(r["ResponseMetadata"]["HTTPHeaders"]), status=200, complete=True)
        elif op == "head":
            r = s3.head_object(Bucket="crash", Key="small.bin")
            note(op=op, req=req_of(r["ResponseMetadata"]["HTTPHeaders"]), status=200, bytes=0, complete=True)
        else:
            r = s3.list_objects_v2(Bucket="crash", MaxKeys=5)
            note(op=op, req=req_of(r["ResponseMetadata"]["HTTPHeaders"]), status=200, complete=True)
    except botocore.exceptions.ClientError as e:
        meta = e.response.get("ResponseMetadata", {})
        note(op=op, req=req_of(meta.get("HTTPHeaders", {})), status=meta.get("HTTPStatusCode"), complete=True,
             code=e.response.get("Error", {}).get("Code"))
    except Exception as e:
        # No response at all (the proxy is down or died before answering).
        note(op=op, req=None, error=type(e).__name__)
        time.sleep(0.05)
def worker(w):
    rnd, n = random.Random(w), 0
    while not os.path.exists(os.environ["STOP"]):
        n += 1
        one(rnd, f"{w}-{n}")
threads = [threading.Thread(target=worker, args=(w,)) for w in range(4)]
for t in threads: t.start()
for t in threads: t.join()
"#;

/// A small deterministic generator, so that a failing run can be repeated.
struct Lcg(u64);

impl Lcg {
    fn next_below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound
    }
}

fn head_of(proxy: &Proxy) -> (u64, String) {
    let health: Value = serde_json::from_str(&proxy.admin_get("/healthz")).unwrap();
    (health["ledger"]["records"].as_u64().unwrap(), health["ledger"]["head"].as_str().unwrap().to_owned())
}

/// Hash of the line with seq `seq` as it is on disk now (LEDGER.md: SHA-256
/// of the line's bytes without the newline).
fn line_hash(data_dir: &std::path::Path, seq: u64) -> Option<String> {
    let mut names: Vec<_> = std::fs::read_dir(data_dir.join("ledger"))
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with("segment-") && std::path::Path::new(n).extension().is_some_and(|e| e == "jsonl"))
        .collect();
    names.sort();
    let name = names.iter().rev().find(|n| n[8..28].parse::<u64>().unwrap() <= seq)?;
    let bytes = std::fs::read(data_dir.join("ledger").join(name)).unwrap();
    let needle = format!("{{\"v\":1,\"seq\":{seq},");
    let line = bytes.split(|b| *b == b'\n').find(|l| l.starts_with(needle.as_bytes()))?;
    Some(hex::encode(sha2::Sha256::digest(line)))
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_record_and_ends_every_start() {
    let crashes: u64 = std::env::var("EGRESS_CRASHES").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let seed: u64 = std::env::var("EGRESS_CRASH_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("crash test: {crashes} crashes, EGRESS_CRASH_SEED={seed}");
    let mut rng = Lcg(seed);
    let upstream = SeaweedFs::start();
    let mut proxy =
        Proxy::start(&upstream, ProxyOptions { principals: vec!["alice".into()], ..ProxyOptions::default() });
    let key = proxy.key().clone();
    let env =
        [("ENDPOINT", proxy.endpoint()), ("AK", key.access_key_id.clone()), ("SK", key.secret_access_key.clone())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let _ = python(
        r#"
import os, json, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    config=Config(s3={"addressing_style": "path"}))
s3.create_bucket(Bucket="crash")
s3.put_object(Bucket="crash", Key="small.bin", Body=b"s" * 4096)
s3.put_object(Bucket="crash", Key="big.bin", Body=b"b" * (8 << 20))
print(json.dumps({}))
"#,
        &env,
    );

    let scratch = tempfile::tempdir().unwrap();
    let client_log = scratch.path().join("clients.jsonl");
    let stop = scratch.path().join("stop");
    let mut clients = Command::new(venv_bin("python3"))
        .arg("-")
        .envs(env.iter().copied())
        .env("LOG", &client_log)
        .env("STOP", &stop)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    clients.stdin.take().unwrap().write_all(CLIENTS.as_bytes()).unwrap();

    let began = Instant::now();
    for crash in 0..crashes {
        std::thread::sleep(Duration::from_millis(100 + rng.next_below(900)));
        // What the writer acknowledged (durable) just before the kill; more
        // may be acknowledged between this read and the kill.
        let (records, head) = head_of(&proxy);
        proxy.kill();
        proxy.restart();
        if records > 0 {
            assert_eq!(
                line_hash(&proxy.data_dir, records - 1).as_deref(),
                Some(head.as_str()),
                "crash {crash}: the acknowledged head (seq {}) is gone or changed",
                records - 1
            );
        }
        let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
        assert_eq!(verify.code, 0, "crash {crash}: ledger verify after restart: {verify:?}");
    }
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&stop, b"").unwrap();
    let clients = clients.wait_with_output().unwrap();
    assert!(clients.status.success(), "clients: {}", String::from_utf8_lossy(&clients.stderr));
    proxy.stop();
    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");

    let lines = proxy.ledger();
    let mut starts: HashMap<&str, &Value> = HashMap::new();
    let mut ends: HashMap<&str, &Value> = HashMap::new();
    for line in &lines {
        let req = line["req"].as_str().unwrap_or_default();
        match line["kind"].as_str() {
            Some("start") => assert!(starts.insert(req, line).is_none(), "two starts for {req}"),
            Some("end") => assert!(ends.insert(req, line).is_none(), "two ends for {req}"),
            _ => {}
        }
    }
    for (req, start) in &starts {
        let end = ends.get(req).unwrap_or_else(|| panic!("start without an end: {start}"));
        assert_eq!(end["start_seq"], start["seq"], "{req}");
    }
    let interrupted = ends.values().filter(|e| e["outcome"] == "interrupted").count();

    let log = std::fs::read_to_string(&client_log).unwrap();
    let records: Vec<Value> = log.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut answered = 0;
    for record in records.iter().filter(|r| !r["req"].is_null()) {
        answered += 1;
        let req = record["req"].as_str().unwrap();
        let start = starts.get(req).unwrap_or_else(|| panic!("a response began without a start record: {record}"));
        let end = ends[req];
        if record["complete"] == true && record["status"] == 200 && record.get("bytes").is_some() {
            // A finished download: its end counts what the client got, unless
            // a crash came before that end was durable (10 ms window).
            match end["outcome"].as_str() {
                Some("complete") => assert_eq!(end["bytes_sent"], record["bytes"], "{start} {end} {record}"),
                Some("interrupted") => {}
                other => panic!("finished download recorded as {other:?}: {end} {record}"),
            }
        }
        if record["complete"] == false && end["outcome"] == "complete" {
            // The proxy had handed the whole body to the kernel and recorded
            // it, then died before the kernel delivered the last of it (a kill
            // resets the socket). `bytes_sent` counts what left the process,
            // so it may exceed what arrived, by at most the socket buffers.
            let (sent, got) = (end["bytes_sent"].as_u64().unwrap(), record["bytes"].as_u64().unwrap());
            assert!(sent >= got && sent - got <= 16 << 20, "{end} {record}");
        }
    }
    let refused = records.len() - answered;
    eprintln!(
        "crash test: {crashes} crashes in {:.0?}; {} client requests ({answered} answered, {refused} while down), \
         {} ledger lines, {interrupted} interrupted ends",
        began.elapsed(),
        records.len(),
        lines.len()
    );
    assert!(answered as u64 > crashes, "the clients got too few answers to test anything: {answered}");
    assert!(interrupted > 0, "no crash cut a request: the kills missed the traffic");
}
