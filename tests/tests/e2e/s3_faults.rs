//! The proxy under faults of its own: a ledger that cannot write (fail
//! closed: 503, no object byte, and no read asked of the upstream, then
//! healing by itself once space is back), and a shutdown while a download runs (drained, recorded,
//! checkpointed).

use std::net::SocketAddr;
use std::process::Command;

use egress_e2e::relay::Relay;
use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};

const PRELUDE: &str = r#"
import os, json, time, boto3, urllib.request, urllib.error
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
"#;

/// A small tmpfs mounted for the test's lifetime (the test runs as root, as
/// CI does); unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", dir.path().to_str().unwrap()])
            .status()
            .expect("mount (util-linux)");
        assert!(status.success(), "mounting a tmpfs needs root; the test suite runs as root in CI");
        Tmpfs(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").args(["-l", self.0.path().to_str().unwrap()]).status();
    }
}

#[test]
fn a_full_ledger_disk_fails_closed_with_503_and_heals_by_itself_once_space_is_back() {
    let upstream = SeaweedFs::start();
    // A relay that only counts: which requests reached the upstream.
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], upstream.port)));
    let tmpfs = Tmpfs::mount("24m");
    let data_dir = tmpfs.0.path().join("data");
    let proxy = Proxy::start_with_upstream(
        &relay.endpoint(),
        ProxyOptions { principals: vec!["alice".into()], data_dir: Some(data_dir.clone()), ..ProxyOptions::default() },
    );
    let key = proxy.key();
    let out = python(
        &format!(
            "{PRELUDE}\n{}",
            r#"
s3.create_bucket(Bucket="data")
s3.put_object(Bucket="data", Key="model.bin", Body=b"w" * 100000)
s3.put_object(Bucket="data", Key="big.bin", Body=b"b" * (64 << 20))
before = s3.get_object(Bucket="data", Key="model.bin")["Body"].read()
# A download that began before the disk filled and ends while it is full
# (too large to sit in the socket buffers: the proxy ends it only once read).
running = s3.get_object(Bucket="data", Key="big.bin")
running_req = running["ResponseMetadata"]["HTTPHeaders"]["x-egress-request-id"]
first = running["Body"].read(1)
filler = os.path.join(os.environ["FILL"], "filler")
with open(filler, "wb") as f:
    try:
        while True:
            f.write(b"\0" * (1 << 20)); f.flush(); os.fsync(f.fileno())
    except OSError:
        pass
url = s3.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "model.bin"}, ExpiresIn=300)
def fetch():
    try:
        with urllib.request.urlopen(url) as r:
            return {"status": r.status, "body": len(r.read()), "req": r.headers["x-egress-request-id"]}
    except urllib.error.HTTPError as e:
        body = e.read().decode()
        return {"status": e.code, "code": body.split("<Code>")[1].split("</Code>")[0], "object_bytes": "www" in body}
results = []
# The last page of the segment may still have room for a record or two;
# after that every request must be refused.
for _ in range(60):
    results.append(fetch())
    if len([x for x in results if x["status"] == 503]) >= 3:
        break
running_len = len(first) + len(running["Body"].read())
running["Body"].close()
time.sleep(0.5)
os.remove(filler)
# No restart: the writer retries every second and must heal by itself.
healed, deadline = None, time.time() + 15
while time.time() < deadline:
    attempt = fetch()
    if attempt["status"] == 200:
        healed = attempt
        break
    time.sleep(0.2)
print(json.dumps({"before": len(before), "after": results, "running": {"req": running_req, "len": running_len},
                  "healed": healed}))
"#
        ),
        &[
            ("ENDPOINT", &proxy.endpoint()),
            ("AK", &key.access_key_id),
            ("SK", &key.secret_access_key),
            ("FILL", tmpfs.0.path().to_str().unwrap()),
        ],
    );
    assert_eq!(out["before"], 100_000);
    let attempts = out["after"].as_array().unwrap();
    let first_refusal =
        attempts.iter().position(|a| a["status"] == 503).unwrap_or_else(|| panic!("never refused: {out}"));
    assert!(
        out["healed"]["status"] == 200,
        "the ledger did not heal within 15 s of space coming back: {out}\n{}",
        proxy.log()
    );
    let lines = proxy.ledger();
    for served in attempts[..first_refusal].iter().chain([&out["healed"]]) {
        // Served only because its start record still fit on the disk.
        assert_eq!(served["status"], 200, "{out}");
        let req = served["req"].as_str().unwrap();
        assert!(lines.iter().any(|l| l["kind"] == "start" && l["req"] == req), "served {req} without a durable start");
    }
    for refused in &attempts[first_refusal..] {
        assert_eq!(refused["status"], 503, "once refusing, the ledger refuses until space is back: {out}");
        assert_eq!(refused["code"], "ServiceUnavailable");
        assert_eq!(refused["object_bytes"], false);
    }
    // The first refusal found out by trying (its GET went upstream beside
    // its start); once the writer is known to be failing, reads wait for
    // their start and the upstream is not asked.
    let upstream_gets = relay.requests_for("GET /data/model.bin");
    let asked = 1 + first_refusal + 1 + 1; // before, those served, the first refusal, the healed one
    assert!(
        upstream_gets <= asked,
        "{upstream_gets} GETs of model.bin reached the upstream, at most {asked} should have: {out}"
    );
    assert!(proxy.log().contains("ledger refused the start record"), "{}", proxy.log());
    // The end of the download that finished while the disk was full was
    // kept and written by the heal, after the heal's note.
    assert_eq!(out["running"]["len"], 64 << 20);
    let (start, end) = proxy.event(out["running"]["req"].as_str().unwrap());
    assert_eq!(end["outcome"], "complete", "{start} {end}");
    assert_eq!(end["bytes_sent"], 64 << 20);
    let note = lines
        .iter()
        .find(|l| l["kind"] == "note" && l["event"] == "recovery" && l["retried_ends"].as_u64() >= Some(1))
        .unwrap_or_else(|| panic!("no heal note in the ledger"));
    assert!(note["seq"].as_u64() < end["seq"].as_u64(), "the download's end came with the heal: {note} {end}");
    let metrics = proxy.admin_get("/metrics");
    assert!(metrics.contains("egress_ledger_writable 1"), "{metrics}");
    assert!(metrics.contains("egress_ledger_heals_total 1"), "{metrics}");
    drop(proxy);
    // Every acknowledged record is intact; what the full disk refused is absent.
    let verify = egress_e2e::run_in(&data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn shutdown_drains_a_running_download_and_records_its_end() {
    let upstream = SeaweedFs::start();
    let mut proxy =
        Proxy::start(&upstream, ProxyOptions { principals: vec!["alice".into()], ..ProxyOptions::default() });
    let key = proxy.key().clone();
    let setup = python(
        &format!(
            "{PRELUDE}\n{}",
            r#"
s3.create_bucket(Bucket="data")
s3.put_object(Bucket="data", Key="big.bin", Body=os.urandom(8 * 1024 * 1024))
print(json.dumps({"url": s3.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "big.bin"}, ExpiresIn=300, HttpMethod="GET")}))
"#
        ),
        &[("ENDPOINT", &proxy.endpoint()), ("AK", &key.access_key_id), ("SK", &key.secret_access_key)],
    );
    let url = setup["url"].as_str().unwrap().to_owned();
    let began = proxy.data_dir.with_file_name("download-began");
    let began_path = began.display().to_string();
    // A slow reader: 8 MiB at ~4 MiB/s, started before the shutdown.
    let reader = std::thread::spawn(move || {
        python(
            r#"
import os, json, time, urllib.request
r = urllib.request.urlopen(os.environ["URL"])
req = r.headers["x-egress-request-id"]
open(os.environ["BEGAN"], "w").close()
got = 0
while True:
    chunk = r.read(256 * 1024)
    if not chunk: break
    got += len(chunk); time.sleep(0.0625)
print(json.dumps({"req": req, "got": got}))
"#,
            &[("URL", &url), ("BEGAN", &began_path)],
        )
    });
    egress_e2e::wait_for_signal(&began, &reader, std::time::Duration::from_secs(30), "the download never began");
    proxy.stop(); // SIGTERM; returns once the process exited 0
    let read = reader.join().unwrap();
    assert_eq!(read["got"], 8 * 1024 * 1024, "the download in flight completed during the drain");
    let (_, end) = proxy.event(read["req"].as_str().unwrap());
    assert_eq!(end["outcome"], "complete");
    assert_eq!(end["bytes_sent"], 8 * 1024 * 1024);
    let lines = proxy.ledger();
    assert_eq!(lines.last().unwrap()["kind"], "checkpoint", "a clean shutdown ends with a checkpoint");
    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn an_unreachable_upstream_is_a_502_recorded_as_upstream_error() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let proxy = Proxy::start_with_upstream(
        &format!("http://127.0.0.1:{port}"),
        ProxyOptions { principals: vec!["alice".into()], ..ProxyOptions::default() },
    );
    let key = proxy.key();
    let out = python(
        &format!(
            "{PRELUDE}\n{}",
            r#"
try:
    s3.get_object(Bucket="data", Key="k")
    print(json.dumps({"ok": True}))
except Exception as e:
    meta = e.response["ResponseMetadata"]
    print(json.dumps({"status": meta["HTTPStatusCode"], "code": e.response["Error"]["Code"], "req": meta["HTTPHeaders"]["x-egress-request-id"]}))
"#
        ),
        &[("ENDPOINT", &proxy.endpoint()), ("AK", &key.access_key_id), ("SK", &key.secret_access_key)],
    );
    assert_eq!(out["status"], 502, "{out}");
    assert_eq!(out["code"], "BadGateway");
    let (start, end) = proxy.event(out["req"].as_str().unwrap());
    assert_eq!(start["principal"], "alice");
    assert_eq!(end["outcome"], "upstream_error");
    assert_eq!(end["status"], 502);
    assert_eq!(end["error_code"], "BadGateway");
}
