//! Requests the proxy must refuse: the right S3 error, recorded as `denied`,
//! and nothing forwarded (the upstream never sees the object).

use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, UPSTREAM_KEY, UPSTREAM_SECRET, python};
use serde_json::Value;

/// A minimal SigV4 signer written from the AWS documentation, independent of
/// the proxy and of botocore, so tests can sign at any time and corrupt any
/// part. `request(method, path, ak, sk, amz_date, body, chunks)`.
const SIGNER: &str = r#"
import os, json, hmac, hashlib, urllib.request, urllib.error, datetime
ENDPOINT = os.environ["ENDPOINT"]
HOST = ENDPOINT.split("//")[1]
EMPTY = hashlib.sha256(b"").hexdigest()
def h(b): return hashlib.sha256(b).hexdigest()
def hm(k, m): return hmac.new(k, m.encode(), hashlib.sha256).digest()
def key(sk, date): return hm(hm(hm(hm(("AWS4" + sk).encode(), date), "us-east-1"), "s3"), "aws4_request")
def now(): return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
def send(method, path, headers, data=None):
    req = urllib.request.Request(ENDPOINT + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()
def signed(method, path, ak, sk, amz_date=None, body=b"", payload_hash=None, extra=None):
    amz_date = amz_date or now()
    date = amz_date[:8]
    payload_hash = payload_hash or h(body)
    headers = {"host": HOST, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    headers.update(extra or {})
    names = sorted(headers)
    canonical = "\n".join([method, path, "", "".join(f"{n}:{headers[n]}\n" for n in names), ";".join(names), payload_hash])
    scope = f"{date}/us-east-1/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, h(canonical.encode())])
    sig = hmac.new(key(sk, date), to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = f"AWS4-HMAC-SHA256 Credential={ak}/{scope}, SignedHeaders={';'.join(names)}, Signature={sig}"
    return headers, sig, scope, amz_date
def error_code(body):
    text = body.decode()
    return text.split("<Code>")[1].split("</Code>")[0] if "<Code>" in text else None
"#;

fn run(proxy: &Proxy, body: &str) -> Value {
    let key = proxy.key();
    python(
        &format!("{SIGNER}\n{body}"),
        &[("ENDPOINT", &proxy.endpoint()), ("AK", &key.access_key_id), ("SK", &key.secret_access_key)],
    )
}

fn upstream_has(upstream: &SeaweedFs, key: &str) -> bool {
    let out = python(
        r#"
import os, json, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"])
try:
    s3.head_object(Bucket="data", Key=os.environ["KEY"]); print(json.dumps(True))
except Exception:
    print(json.dumps(False))
"#,
        &[("ENDPOINT", &upstream.endpoint()), ("AK", UPSTREAM_KEY), ("SK", UPSTREAM_SECRET), ("KEY", key)],
    );
    out.as_bool().unwrap_or(true)
}

/// `principal`: who the header signature proved, if it checked out (a bad
/// chunk comes after a good header signature).
fn assert_denied(proxy: &Proxy, result: &Value, status: u64, code: &str, principal: Option<&str>) -> (Value, Value) {
    assert_eq!(result["status"], status, "{result}");
    assert_eq!(result["code"], code, "{result}");
    let req = result["req"].as_str().unwrap_or_else(|| panic!("no request id in {result}"));
    let (start, end) = proxy.event(req);
    assert_eq!(end["outcome"], "denied", "{end}");
    assert_eq!(end["status"], status);
    assert_eq!(end["error_code"], code);
    assert_eq!(start["principal"].as_str(), principal, "{start}");
    (start, end)
}

#[test]
fn bad_signatures_unknown_keys_skew_and_anonymous_are_denied_and_recorded() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(&upstream, ProxyOptions { principals: vec!["alice".into()], ..ProxyOptions::default() });
    let out = run(
        &proxy,
        r#"
AK, SK = os.environ["AK"], os.environ["SK"]
def result(status, headers, body):
    return {"status": status, "code": error_code(body), "req": headers.get("x-egress-request-id")}
r = {}
hdrs, *_ = signed("PUT", "/data", AK, SK)
r["create"] = send("PUT", "/data", hdrs)[0]
body = b"secret training data"
# The last character changed (a fixed "x" was the right one when SK ended in x).
wrong_sk = SK[:-1] + ("y" if SK.endswith("x") else "x")
hdrs, *_ = signed("PUT", "/data/wrong-secret.txt", AK, wrong_sk, body=body)
r["wrong_secret"] = result(*send("PUT", "/data/wrong-secret.txt", hdrs, body))
hdrs, *_ = signed("PUT", "/data/unknown-key.txt", "EGRSNOSUCHKEY0000000", SK, body=body)
r["unknown_key"] = result(*send("PUT", "/data/unknown-key.txt", hdrs, body))
old = (datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)).strftime("%Y%m%dT%H%M%SZ")
hdrs, *_ = signed("PUT", "/data/skewed.txt", AK, SK, amz_date=old, body=body)
r["skewed"] = result(*send("PUT", "/data/skewed.txt", hdrs, body))
r["anonymous"] = result(*send("GET", "/data/anything.txt", {}))
hdrs, *_ = signed("PUT", "/data/tampered.txt", AK, SK, body=body)
hdrs["x-amz-date"] = now()[:-3] + "00Z" if hdrs["x-amz-date"][-3:] != "00Z" else now()[:-3] + "01Z"
r["tampered"] = result(*send("PUT", "/data/tampered.txt", hdrs, body))
hdrs, *_ = signed("PUT", "/data/ok.txt", AK, SK, body=body)
r["ok"] = send("PUT", "/data/ok.txt", hdrs, body)[0]
print(json.dumps(r))
"#,
    );
    assert_eq!(out["create"], 200);
    assert_eq!(out["ok"], 200, "the same signer works with the right key");
    let (start, _) = assert_denied(&proxy, &out["wrong_secret"], 403, "SignatureDoesNotMatch", None);
    assert_eq!(start["access_key_id"], proxy.key().access_key_id.as_str(), "the claimed key is recorded");
    assert_eq!(start["operation"], "PutObject");
    let (start, _) = assert_denied(&proxy, &out["unknown_key"], 403, "InvalidAccessKeyId", None);
    assert_eq!(start["access_key_id"], "EGRSNOSUCHKEY0000000");
    assert_denied(&proxy, &out["skewed"], 403, "RequestTimeTooSkewed", None);
    let (start, _) = assert_denied(&proxy, &out["anonymous"], 403, "AccessDenied", None);
    assert!(start["access_key_id"].is_null());
    assert_denied(&proxy, &out["tampered"], 403, "SignatureDoesNotMatch", None);

    // Nothing refused reached the upstream; the accepted one did.
    for key in ["wrong-secret.txt", "unknown-key.txt", "skewed.txt", "tampered.txt"] {
        assert!(!upstream_has(&upstream, key), "{key} must not exist upstream");
    }
    assert!(upstream_has(&upstream, "ok.txt"));
}

#[test]
fn a_bad_chunk_signature_stops_the_upload_before_anything_is_committed() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(&upstream, ProxyOptions { principals: vec!["alice".into()], ..ProxyOptions::default() });
    let out = run(
        &proxy,
        r#"
AK, SK = os.environ["AK"], os.environ["SK"]
hdrs, *_ = signed("PUT", "/data", AK, SK)
send("PUT", "/data", hdrs)
def chunked_put(path, chunks, corrupt_index=None):
    decoded = sum(len(c) for c in chunks)
    extra = {"content-encoding": "aws-chunked", "x-amz-decoded-content-length": str(decoded)}
    headers, seed, scope, amz_date = signed("PUT", path, AK, SK, payload_hash="STREAMING-AWS4-HMAC-SHA256-PAYLOAD", extra=extra)
    k = key(SK, amz_date[:8])
    prev, body = seed, b""
    for i, data in enumerate(chunks + [b""]):
        to_sign = "\n".join(["AWS4-HMAC-SHA256-PAYLOAD", amz_date, scope, prev, EMPTY, h(data)])
        sig = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        prev = sig
        if i == corrupt_index:
            sig = ("0" if sig[0] != "0" else "1") + sig[1:]
        body += f"{len(data):x};chunk-signature={sig}\r\n".encode() + data + b"\r\n"
    headers["content-length"] = str(len(body))
    status, h2, resp = send("PUT", path, headers, body)
    return {"status": status, "code": error_code(resp), "req": h2.get("x-egress-request-id")}
chunks = [os.urandom(65536), os.urandom(65536), os.urandom(1000)]
print(json.dumps({
    "good": chunked_put("/data/good.bin", chunks),
    "bad": chunked_put("/data/bad.bin", chunks, corrupt_index=1),
}))
"#,
    );
    assert_eq!(out["good"]["status"], 200, "{out}");
    assert!(upstream_has(&upstream, "good.bin"), "verified signed chunks are forwarded");
    assert_denied(&proxy, &out["bad"], 403, "SignatureDoesNotMatch", Some("alice"));
    assert!(!upstream_has(&upstream, "bad.bin"), "a bad chunk must leave no object upstream");
}

/// A flood of refused unauthenticated requests from one address: the first
/// `--denied-records-per-ip` of each minute are recorded one by one, the
/// rest counted in one `denied_summary` note (here written at shutdown), and
/// a huge key and user agent are cut to a bounded length with their hash.
/// Other addresses and authenticated requests are unaffected.
#[test]
fn a_flood_of_refusals_is_recorded_in_bounded_form_and_summarised() {
    let upstream = SeaweedFs::start();
    let mut proxy = Proxy::start(
        &upstream,
        ProxyOptions {
            principals: vec!["alice".into()],
            extra_args: vec!["--denied-records-per-ip".into(), "3".into()],
            ..ProxyOptions::default()
        },
    );
    let out = run(
        &proxy,
        r#"
AK, SK = os.environ["AK"], os.environ["SK"]
long_key, long_ua = "k" * 30000, "u" * 30000
statuses = []
for i in range(12):
    status, headers, body = send("GET", f"/data/{long_key}{i}", {"user-agent": long_ua})
    statuses.append([status, error_code(body)])
hdrs, *_ = signed("PUT", "/data", AK, SK)
ok = send("PUT", "/data", hdrs)[0]
print(json.dumps({"statuses": statuses, "ok": ok}))
"#,
    );
    assert!(
        out["statuses"].as_array().unwrap().iter().all(|s| s == &serde_json::json!([403, "AccessDenied"])),
        "{out}"
    );
    assert_eq!(out["ok"], 200, "an authenticated request from the same address is served: {out}");
    proxy.stop();
    let ledger = proxy.ledger();
    let flood: Vec<&Value> =
        ledger.iter().filter(|l| l["kind"] == "start" && l["principal"].is_null() && l["method"] == "GET").collect();
    assert_eq!(flood.len(), 3, "three recorded one by one");
    for start in &flood {
        let line = serde_json::to_string(start).unwrap();
        assert!(line.len() < 2048, "a bounded start line, not {} bytes", line.len());
        assert!(start["key"].as_str().unwrap().ends_with('\u{2026}'), "{start}");
        assert_eq!(start["truncated"]["user_agent"]["length"], 30000, "{start}");
        assert_eq!(start["truncated"]["key"]["sha256"].as_str().map(str::len), Some(64), "{start}");
    }
    let summaries: Vec<&Value> =
        ledger.iter().filter(|l| l["kind"] == "note" && l["event"] == "denied_summary").collect();
    assert_eq!(summaries.len(), 1, "{summaries:?}");
    assert_eq!(summaries[0]["source_ip"], "127.0.0.1");
    assert_eq!(summaries[0]["denied"], 9, "{}", summaries[0]);
    assert_eq!(summaries[0]["codes"], serde_json::json!({"AccessDenied": 9}));
    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}
