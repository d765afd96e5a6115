//! Clients misbehaving against the proxy: heads dribbled byte by byte
//! (slowloris), uploads that stop in the middle of the body, downloads that
//! are never read. Timeouts close them, their records are written, and the
//! proxy's open connections and memory go back to where they were.

use std::time::{Duration, Instant};

use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};
use serde_json::Value;

const CLIENTS: &str = r#"
import os, json, time, socket, threading, boto3
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
endpoint, ak, sk = os.environ["ENDPOINT"], os.environ["AK"], os.environ["SK"]
host, port = endpoint.split("//")[1].split(":")
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ak,
    aws_secret_access_key=sk, config=Config(s3={"addressing_style": "path"}))
s3.create_bucket(Bucket="bkt")
s3.put_object(Bucket="bkt", Key="big.bin", Body=b"g" * (64 << 20))
open(os.environ["READY"], "w").close()
while not os.path.exists(os.environ["GO"]):
    time.sleep(0.05)

def signed_head(method, key, headers):
    req = AWSRequest(method=method, url=f"{endpoint}/bkt/{key}", headers=headers)
    S3SigV4Auth(Credentials(ak, sk), "s3", "us-east-1").add_auth(req)
    lines = [f"{method} /bkt/{key} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{k}: {v}" for k, v in req.headers.items() if k.lower() != "host"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()

def until_closed(sock, limit):
    """Bytes received until the proxy closes, and how long that took."""
    sock.settimeout(limit)
    t, got = time.time(), b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return got, time.time() - t

results = {"slowloris": [], "upload": [], "unread": []}
def slowloris():
    s = socket.create_connection((host, int(port)))
    s.sendall(b"GET /b/big.bin HTTP/1.1\r\nHost: x\r\n")
    t = time.time()
    try:
        # One header byte a second: never a whole head.
        for _ in range(30):
            s.sendall(b"X")
            time.sleep(1)
        closed = False
    except OSError:
        closed = True
    results["slowloris"].append({"closed": closed, "seconds": time.time() - t})
def stalled_upload():
    s = socket.create_connection((host, int(port)))
    s.sendall(signed_head("PUT", f"stalled-{threading.get_ident()}",
        {"x-amz-content-sha256": "UNSIGNED-PAYLOAD", "content-length": str(1 << 20)}))
    s.sendall(b"u" * (100 << 10))
    got, seconds = until_closed(s, 30)
    head = got.split(b"\r\n\r\n")[0].decode(errors="replace")
    req = [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("x-egress-request-id")]
    results["upload"].append({"status": head.split("\r\n")[0], "req": req[0] if req else None,
                              "body": got.split(b"\r\n\r\n", 1)[-1].decode(errors="replace"), "seconds": seconds})
def unread_download():
    s = socket.create_connection((host, int(port)))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    s.sendall(signed_head("GET", "big.bin", {"x-amz-content-sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}))
    time.sleep(6)  # read nothing while the proxy's idle timeout runs out
    got, seconds = until_closed(s, 30)
    head = got.split(b"\r\n\r\n")[0].decode(errors="replace")
    req = [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("x-egress-request-id")]
    results["unread"].append({"status": head.split("\r\n")[0], "req": req[0] if req else None,
                              "received": len(got)})
threads = [threading.Thread(target=f) for f in [slowloris] * 20 + [stalled_upload] * 10 + [unread_download] * 10]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps(results))
"#;

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).unwrap().count()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn misbehaving_clients_are_cut_by_timeouts_recorded_and_leave_nothing_behind() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(
        &upstream,
        ProxyOptions {
            principals: vec!["alice".into()],
            extra_args: ["--header-read-timeout-secs", "2", "--body-idle-timeout-secs", "2"].map(String::from).to_vec(),
            ..ProxyOptions::default()
        },
    );
    let pid = proxy.pid().unwrap();
    // The allocator's options are set by re-executing itself (proxy/src/allocator.rs).
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    for wanted in ["MIMALLOC_PURGE_DELAY=0", "MIMALLOC_ARENA_EAGER_COMMIT=0"] {
        assert!(environ.split(|b| *b == 0).any(|v| v == wanted.as_bytes()), "{wanted} not in the proxy's environment");
    }
    let key = proxy.key().clone();
    let scratch = tempfile::tempdir().unwrap();
    let (ready, go) = (scratch.path().join("ready"), scratch.path().join("go"));
    let env: Vec<(String, String)> = vec![
        ("ENDPOINT".into(), proxy.endpoint()),
        ("AK".into(), key.access_key_id.clone()),
        ("SK".into(), key.secret_access_key.clone()),
        ("READY".into(), ready.display().to_string()),
        ("GO".into(), go.display().to_string()),
    ];
    let clients = std::thread::spawn(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        python(CLIENTS, &env)
    });
    egress_e2e::wait_for_signal(&ready, &clients, Duration::from_mins(2), "the clients never got ready");
    // Baseline once the set-up's connections are idle again.
    std::thread::sleep(Duration::from_secs(1));
    let (fds_before, rss_before) = (open_fds(pid), rss_kib(pid));
    std::fs::write(&go, b"").unwrap();
    std::thread::sleep(Duration::from_secs(1));
    let fds_during = open_fds(pid);
    let out: Value = clients.join().unwrap();

    for s in out["slowloris"].as_array().unwrap() {
        assert_eq!(s["closed"], true, "a dribbled head must be cut: {s}");
        assert!(s["seconds"].as_f64().unwrap() < 10.0, "cut after the 2 s header timeout: {s}");
    }
    let lines = proxy.ledger();
    for u in out["upload"].as_array().unwrap() {
        assert!(u["seconds"].as_f64().unwrap() < 15.0, "{u}");
        let req = u["req"].as_str().unwrap_or_else(|| panic!("a stalled upload gets an answer with our id: {u}"));
        let (start, end) = proxy.event(req);
        assert_eq!(start["method"], "PUT");
        assert_eq!(end["outcome"], "timeout", "{end} {u}");
        assert!(u["status"].as_str().unwrap().contains(" 400 "), "{u}");
        assert!(u["body"].as_str().unwrap().contains("<Code>RequestTimeout</Code>"), "{u}");
    }
    assert!(
        !lines.iter().any(|l| l["kind"] == "start"
            && l["key"].as_str().is_some_and(|k| k.starts_with("stalled-"))
            && l["method"] == "GET"),
        "no stray requests"
    );
    for d in out["unread"].as_array().unwrap() {
        assert!(d["status"].as_str().unwrap().contains(" 200 "), "{d}");
        let (_, end) = proxy.event(d["req"].as_str().unwrap());
        assert_eq!(end["outcome"], "timeout", "{end}");
        let sent = end["bytes_sent"].as_u64().unwrap();
        assert!(sent < 64 << 20, "the proxy stopped sending: {end}");
        // `bytes_sent` counts the frames hyper took and moved past. What hyper
        // still held when the connection was cut (its write queue, up to its
        // ~400 KiB buffer limit, and the frame it was writing) may have partly
        // reached the client: seen up to 720 KiB more.
        assert!(d["received"].as_u64().unwrap() <= sent + (1 << 20), "{d} {end}");
    }

    // Everything is released: connections (fds) back to the baseline, memory
    // near it.
    let deadline = Instant::now() + Duration::from_secs(20);
    let fds_after = loop {
        let now = open_fds(pid);
        if now <= fds_before + 2 || Instant::now() > deadline {
            break now;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let rss_after = rss_kib(pid);
    eprintln!(
        "fds: {fds_before} before, {fds_during} during, {fds_after} after; \
         RSS: {rss_before} KiB before, {rss_after} KiB after"
    );
    assert!(fds_during >= fds_before + 30, "the faulty clients were connected meanwhile: {fds_during}");
    assert!(fds_after <= fds_before + 2, "connections leaked: {fds_before} before, {fds_after} after");
    assert!(rss_after < rss_before + 32 * 1024, "memory not released: {rss_before} KiB before, {rss_after} KiB after");
    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}
