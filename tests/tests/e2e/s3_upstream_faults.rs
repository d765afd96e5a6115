//! The upstream failing under the proxy: down at start, going away in the
//! middle of a download, answering too late, resetting or stalling in the
//! middle of a body. The upstream is a real SeaweedFS behind a TCP relay
//! that breaks the transport on command (`egress_e2e::relay`). Clients get
//! S3 XML errors or a cut body, as S3 itself would give them; the ledger
//! says `upstream_error` or `timeout` with the bytes really sent; and the
//! proxy keeps serving other requests throughout.

use std::net::SocketAddr;
use std::time::Duration;

use egress_e2e::relay::{Fault, Relay};
use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};
use serde_json::Value;

const PRELUDE: &str = r#"
import os, json, time, threading, boto3, botocore
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, read_timeout=30))
def get(key, **extra):
    """One GET: status, our request id, bytes read, whether the body was whole."""
    try:
        r = s3.get_object(Bucket="bkt", Key=key, **extra)
    except botocore.exceptions.ClientError as e:
        meta = e.response["ResponseMetadata"]
        return {"status": meta["HTTPStatusCode"], "code": e.response["Error"]["Code"],
                "req": meta["HTTPHeaders"].get("x-egress-request-id")}
    got, whole = 0, True
    try:
        for chunk in r["Body"].iter_chunks(1 << 16):
            got += len(chunk)
    except Exception as e:
        whole = False
    return {"status": r["ResponseMetadata"]["HTTPStatusCode"], "bytes": got, "whole": whole,
            "req": r["ResponseMetadata"]["HTTPHeaders"]["x-egress-request-id"]}
"#;

struct Harness {
    relay: Relay,
    proxy: Proxy,
    _upstream: SeaweedFs,
}

impl Harness {
    fn run(&self, script: &str) -> Value {
        let key = self.proxy.key();
        python(
            &format!("{PRELUDE}\n{script}"),
            &[("ENDPOINT", &self.proxy.endpoint()), ("AK", &key.access_key_id), ("SK", &key.secret_access_key)],
        )
    }

    fn get(&self, key: &str) -> Value {
        self.run(&format!("print(json.dumps(get({key:?})))"))
    }

    /// The end record of `result`'s request, checked against its start.
    fn end_of(&self, result: &Value) -> Value {
        self.proxy.event(result["req"].as_str().unwrap_or_else(|| panic!("no request id: {result}"))).1
    }
}

fn start() -> Harness {
    let upstream = SeaweedFs::start();
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], upstream.port)));
    // The upstream is down when the proxy starts.
    relay.set(Fault::Refuse);
    let proxy = Proxy::start_with_upstream(
        &relay.endpoint(),
        ProxyOptions {
            principals: vec!["alice".into()],
            extra_args: ["--upstream-header-timeout-secs", "2", "--body-idle-timeout-secs", "2"]
                .map(String::from)
                .to_vec(),
            ..ProxyOptions::default()
        },
    );
    Harness { relay, proxy, _upstream: upstream }
}

#[test]
fn upstream_faults_give_s3_errors_or_cut_bodies_and_are_recorded() {
    let h = start();

    // Down at start: an S3 error, recorded, and the proxy is fine once the
    // upstream is back.
    let down = h.run(
        r#"
try:
    s3.create_bucket(Bucket="bkt")
    print(json.dumps({"status": 200}))
except botocore.exceptions.ClientError as e:
    meta = e.response["ResponseMetadata"]
    print(json.dumps({"status": meta["HTTPStatusCode"], "code": e.response["Error"]["Code"],
                      "req": meta["HTTPHeaders"].get("x-egress-request-id")}))
"#,
    );
    assert_eq!(down["status"], 502, "{down}");
    assert_eq!(down["code"], "BadGateway", "{down}");
    let end = h.end_of(&down);
    assert_eq!(end["outcome"], "upstream_error", "{end}");
    h.relay.set(Fault::Pass);
    let up = h.run(
        r#"
s3.create_bucket(Bucket="bkt")
s3.put_object(Bucket="bkt", Key="ok.bin", Body=b"o" * 4096)
s3.put_object(Bucket="bkt", Key="fault-1m.bin", Body=b"f" * (1 << 20))
s3.put_object(Bucket="bkt", Key="big.bin", Body=b"g" * (64 << 20))
print(json.dumps(get("ok.bin")))
"#,
    );
    assert_eq!((up["status"].as_u64(), up["bytes"].as_u64()), (Some(200), Some(4096)), "{up}");

    // Resetting mid-body: the client gets a cut body (as from S3 when a
    // connection breaks), the ledger the bytes that were sent.
    h.relay.set(Fault::CutAfter(300 * 1024));
    let cut = h.get("fault-1m.bin");
    assert_eq!(cut["status"], 200, "{cut}");
    assert_eq!(cut["whole"], false, "{cut}");
    let end = h.end_of(&cut);
    assert_eq!(end["outcome"], "upstream_error", "{end}");
    let sent = end["bytes_sent"].as_u64().unwrap();
    assert!(sent < 300 * 1024 && sent >= cut["bytes"].as_u64().unwrap(), "sent {sent}: {cut} {end}");
    h.relay.set(Fault::Pass);
    assert_eq!(h.get("ok.bin")["bytes"], 4096, "still serving after a reset");

    // Stalling mid-body: cut after the idle timeout, recorded as `timeout`.
    h.relay.set(Fault::StallAfter(200 * 1024));
    let stalled = h.get("fault-1m.bin");
    assert_eq!(stalled["whole"], false, "{stalled}");
    let end = h.end_of(&stalled);
    assert_eq!(end["outcome"], "timeout", "{end}");
    let sent = end["bytes_sent"].as_u64().unwrap();
    assert!(sent > 0 && sent < 200 * 1024, "sent {sent}: {end}");

    // Slow: no headers within the upstream header timeout → 504, while other
    // requests go through meanwhile.
    h.relay.set(Fault::Hold);
    let slow = h.run(
        r#"
other = {}
def side():
    time.sleep(0.3)
    t = time.time()
    other.update(get("ok.bin"), seconds=time.time() - t)
th = threading.Thread(target=side); th.start()
t = time.time()
held = get("fault-1m.bin")
held["seconds"] = time.time() - t
th.join()
print(json.dumps({"held": held, "other": other}))
"#,
    );
    assert_eq!(slow["held"]["status"], 504, "{slow}");
    assert_eq!(slow["held"]["code"], "GatewayTimeout", "{slow}");
    assert!(slow["held"]["seconds"].as_f64().unwrap() >= 1.9, "{slow}");
    assert_eq!(slow["other"]["bytes"], 4096, "{slow}");
    assert!(slow["other"]["seconds"].as_f64().unwrap() < 1.5, "other requests wait for nothing: {slow}");
    let end = h.end_of(&slow["held"]);
    assert_eq!(end["outcome"], "timeout", "{end}");
    assert_eq!(end["status"], 504, "{end}");
    h.relay.set(Fault::Pass);

    // Going away mid-run: a running download is cut, new requests get an S3
    // error until the upstream is back.
    let signal = h.proxy.data_dir.with_file_name("relay-signal");
    let env: Vec<(String, String)> = vec![
        ("ENDPOINT".into(), h.proxy.endpoint()),
        ("AK".into(), h.proxy.key().access_key_id.clone()),
        ("SK".into(), h.proxy.key().secret_access_key.clone()),
        ("SIGNAL".into(), signal.display().to_string()),
    ];
    let runner = std::thread::spawn(move || {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        python(&format!("{PRELUDE}\n{GOING_AWAY}"), &env)
    });
    egress_e2e::wait_for_signal(&signal, &runner, Duration::from_mins(1), "the download never started");
    h.relay.set(Fault::Refuse);
    h.relay.reset_all();
    std::fs::remove_file(&signal).unwrap();
    let gone = runner.join().unwrap();
    assert_eq!(gone["running"]["whole"], false, "{gone}");
    let end = h.end_of(&gone["running"]);
    assert_eq!(end["outcome"], "upstream_error", "{end}");
    let sent = end["bytes_sent"].as_u64().unwrap();
    assert!(sent >= gone["running"]["bytes"].as_u64().unwrap() && sent < 64 << 20, "sent {sent}: {gone}");
    assert_eq!(gone["after"]["status"], 502, "{gone}");
    assert_eq!(h.end_of(&gone["after"])["outcome"], "upstream_error");
    h.relay.set(Fault::Pass);
    assert_eq!(h.get("ok.bin")["bytes"], 4096, "serving again once the upstream is back");

    let verify = egress_e2e::run_in(&h.proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
    assert!(!h.proxy.log().contains("panicked"), "{}", h.proxy.log());
}

const GOING_AWAY: &str = r#"
r = s3.get_object(Bucket="bkt", Key="big.bin")
req = r["ResponseMetadata"]["HTTPHeaders"]["x-egress-request-id"]
got = len(r["Body"].read(1 << 20))
open(os.environ["SIGNAL"], "w").close()
while os.path.exists(os.environ["SIGNAL"]):
    time.sleep(0.05)
whole = True
try:
    for chunk in r["Body"].iter_chunks(1 << 16):
        got += len(chunk)
except Exception:
    whole = False
after = get("ok.bin")
print(json.dumps({"running": {"req": req, "bytes": got, "whole": whole}, "after": after}))
"#;
