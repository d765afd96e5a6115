//! Presigned URLs made by boto3 with a proxy key, fetched by a plain HTTP
//! client that signs nothing (Python urllib): `SigV4` (`s3v4`) and `SigV2` (what
//! boto3 gives by default for a custom endpoint), an expired one, and a
//! presigned PUT. The ledger names the principal whose key presigned the
//! URL, not whoever fetched it.

use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};
use serde_json::Value;

const PRELUDE: &str = r#"
import os, json, time, urllib.request, urllib.error, urllib.parse
import xml.etree.ElementTree as ET
import boto3
from botocore.config import Config

def client(ak, sk, signature_version=None):
    cfg = Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    if signature_version:
        cfg = cfg.merge(Config(signature_version=signature_version))
    return boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
        aws_access_key_id=ak, aws_secret_access_key=sk, config=cfg)

alice = (os.environ["ALICE_AK"], os.environ["ALICE_SK"])
bob = (os.environ["BOB_AK"], os.environ["BOB_SK"])

def fetch(url, method="GET", data=None):
    """A plain HTTP request: no signing, no AWS code."""
    req = urllib.request.Request(url, method=method, data=data)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return {"status": resp.status, "body": resp.read(), "headers": {k.lower(): v for k, v in resp.headers.items()}}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read(), "headers": {k.lower(): v for k, v in e.headers.items()}}

def query(url):
    return sorted(urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).keys())
"#;

fn run(proxy: &Proxy, body: &str) -> Value {
    let (alice, bob) = (&proxy.keys[0], &proxy.keys[1]);
    python(
        &format!("{PRELUDE}\n{body}"),
        &[
            ("ENDPOINT", &proxy.endpoint()),
            ("ALICE_AK", &alice.access_key_id),
            ("ALICE_SK", &alice.secret_access_key),
            ("BOB_AK", &bob.access_key_id),
            ("BOB_SK", &bob.secret_access_key),
        ],
    )
}

fn start_proxy(upstream: &SeaweedFs) -> Proxy {
    Proxy::start(upstream, ProxyOptions { principals: vec!["alice".into(), "bob".into()], ..ProxyOptions::default() })
}

/// The event of `req` (an `x-egress-request-id`), checked against the key
/// of principal `who` (an index into `proxy.keys`).
fn assert_event(proxy: &Proxy, req: &Value, who: usize, operation: &str, key: &str, status: u64) -> (Value, Value) {
    let req = req.as_str().unwrap_or_else(|| panic!("no x-egress-request-id: {req}"));
    let (start, end) = proxy.event(req);
    let owner = &proxy.keys[who];
    assert_eq!(start["principal"], owner.principal.as_str(), "{start}");
    assert_eq!(start["access_key_id"], owner.access_key_id.as_str(), "{start}");
    assert_eq!(start["operation"], operation, "{start}");
    assert_eq!(start["bucket"], "shared");
    assert_eq!(start["key"], key, "{start}");
    assert_eq!(end["status"], status, "{end}");
    assert_eq!(end["outcome"], "complete", "{end}");
    (start, end)
}

#[test]
fn presigned_get_sigv4_and_sigv2_fetched_without_signing() {
    let upstream = SeaweedFs::start();
    let proxy = start_proxy(&upstream);
    let out = run(
        &proxy,
        r#"
admin = client(*alice)
body = os.urandom(300_000) + b"end"
key = "reports/q1 data+\u00fc.bin"
admin.create_bucket(Bucket="shared")
admin.put_object(Bucket="shared", Key=key, Body=body)
r = {"size": len(body)}

# SigV4, presigned with alice's key.
v4 = client(*alice, signature_version="s3v4")
url = v4.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": key}, ExpiresIn=300)
r["v4_query"] = query(url)
got = fetch(url)
r["v4_status"] = got["status"]; r["v4_same"] = got["body"] == body; r["v4_len"] = len(got["body"])
r["v4_req"] = got["headers"].get("x-egress-request-id")

# SigV4 with a response override (signed as part of the query).
url = v4.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": key,
    "ResponseContentType": "text/x-override"}, ExpiresIn=300)
got = fetch(url)
r["v4o_status"] = got["status"]; r["v4o_same"] = got["body"] == body
r["v4o_type"] = got["headers"].get("content-type"); r["v4o_req"] = got["headers"].get("x-egress-request-id")

# boto3's default for a custom endpoint, presigned with bob's key: SigV2.
v2 = client(*bob)
url = v2.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": key}, ExpiresIn=300)
r["v2_query"] = query(url)
got = fetch(url)
r["v2_status"] = got["status"]; r["v2_same"] = got["body"] == body; r["v2_len"] = len(got["body"])
r["v2_req"] = got["headers"].get("x-egress-request-id")
r["v2_error"] = got["body"][:500].decode("utf-8", "replace") if got["status"] != 200 else None

# A range with a presigned URL (the Range header is not signed, as with any presigned GET).
req = urllib.request.Request(url, headers={"Range": "bytes=100-199"})
with urllib.request.urlopen(req, timeout=30) as resp:
    part = resp.read()
    r["v2r_status"] = resp.status; r["v2r_same"] = part == body[100:200]
    r["v2r_req"] = resp.headers.get("x-egress-request-id")
print(json.dumps(r))
"#,
    );
    let size = out["size"].as_u64().unwrap();
    let key = "reports/q1 data+\u{fc}.bin";

    assert_eq!(
        out["v4_query"],
        serde_json::json!([
            "X-Amz-Algorithm",
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-Signature",
            "X-Amz-SignedHeaders"
        ]),
        "boto3 made a SigV4 query-signed URL"
    );
    assert_eq!((out["v4_status"].as_u64(), out["v4_len"].as_u64()), (Some(200), Some(size)), "{out}");
    assert_eq!(out["v4_same"], true);
    let (start, end) = assert_event(&proxy, &out["v4_req"], 0, "GetObject", key, 200);
    assert_eq!(start["method"], "GET");
    assert_eq!(end["bytes_sent"], size, "{end}");
    assert_eq!(end["object_size"], size, "{end}");

    assert_eq!(out["v4o_status"], 200, "{out}");
    assert_eq!(out["v4o_same"], true);
    assert_eq!(out["v4o_type"], "text/x-override", "the signed response override reached the upstream");
    let (_, end) = assert_event(&proxy, &out["v4o_req"], 0, "GetObject", key, 200);
    assert_eq!(end["bytes_sent"], size, "{end}");

    assert_eq!(
        out["v2_query"],
        serde_json::json!(["AWSAccessKeyId", "Expires", "Signature"]),
        "boto3's default presigned URL for a custom endpoint is SigV2"
    );
    assert_eq!(out["v2_status"], 200, "{out}\nproxy log:\n{}", proxy.log());
    assert_eq!(out["v2_len"], size);
    assert_eq!(out["v2_same"], true);
    let (_, end) = assert_event(&proxy, &out["v2_req"], 1, "GetObject", key, 200);
    assert_eq!(end["bytes_sent"], size, "{end}");
    assert_eq!(end["object_size"], size, "{end}");

    assert_eq!((out["v2r_status"].as_u64(), out["v2r_same"].as_bool()), (Some(206), Some(true)), "{out}");
    let (start, end) = assert_event(&proxy, &out["v2r_req"], 1, "GetObject", key, 206);
    assert_eq!(start["range"], "bytes=100-199");
    assert_eq!(end["bytes_sent"], 100, "{end}");
    assert_eq!(end["object_size"], size, "{end}");

    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn an_expired_presigned_url_is_denied_and_recorded() {
    let upstream = SeaweedFs::start();
    let proxy = start_proxy(&upstream);
    let out = run(
        &proxy,
        r#"
admin = client(*alice)
admin.create_bucket(Bucket="shared")
admin.put_object(Bucket="shared", Key="secret.bin", Body=b"not for you" * 1000)
v4 = client(*bob, signature_version="s3v4")
url = v4.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "secret.bin"}, ExpiresIn=1)
time.sleep(2)
got = fetch(url)
root = ET.fromstring(got["body"])
print(json.dumps({"status": got["status"], "code": root.findtext("Code"), "len": len(got["body"]),
    "leaked": b"not for you" in got["body"], "req": got["headers"].get("x-egress-request-id"),
    "body": got["body"].decode("utf-8", "replace")}))
"#,
    );
    assert_eq!(out["status"], 403, "{out}");
    assert_eq!(out["code"], "AccessDenied", "{out}");
    assert_eq!(out["leaked"], false);
    let req = out["req"].as_str().unwrap_or_else(|| panic!("no x-egress-request-id on the 403: {out}"));
    let (start, end) = proxy.event(req);
    assert_eq!(start["operation"], "GetObject", "{start}");
    assert_eq!(start["bucket"], "shared");
    assert_eq!(start["key"], "secret.bin");
    assert_eq!(start["access_key_id"], proxy.keys[1].access_key_id.as_str(), "the key as claimed: {start}");
    assert_eq!(end["status"], 403, "{end}");
    assert_eq!(end["outcome"], "denied", "{end}");
    assert_eq!(end["error_code"], "AccessDenied", "{end}");
    assert_eq!(end["bytes_sent"], out["len"], "the error document's bytes are counted: {end}");
    assert_eq!(end["object_size"], Value::Null, "{end}");
    // Nothing went upstream for it.
    assert_eq!(end["upstream_request_id"], Value::Null, "{end}");
}

/// What a `SigV2` presigned URL does not sign cannot stretch it: its life is
/// capped at a week like `SigV4`'s, and a parameter that would turn it into
/// another operation is refused unless `SigV2` signs it (`retention` now is).
#[test]
fn sigv2_urls_live_a_week_at_most_and_cannot_become_another_operation() {
    let upstream = SeaweedFs::start();
    let proxy = start_proxy(&upstream);
    let out = run(
        &proxy,
        r#"
admin = client(*alice)
admin.create_bucket(Bucket="shared")
admin.put_object(Bucket="shared", Key="doc.txt", Body=b"the document")
v2 = client(*bob, signature_version="s3")
def outcome(got):
    root = ET.fromstring(got["body"]) if got["body"].startswith(b"<") else None
    return {"status": got["status"], "code": root.findtext("Code") if root is not None else None,
            "message": root.findtext("Message") if root is not None else None,
            "req": got["headers"].get("x-egress-request-id"), "leaked": b"the document" in got["body"]}
r = {}
week = v2.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "doc.txt"}, ExpiresIn=7 * 86400)
r["week"] = outcome(fetch(week))
longer = v2.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "doc.txt"}, ExpiresIn=8 * 86400)
r["eight_days"] = outcome(fetch(longer))
url = v2.generate_presigned_url("get_object", Params={"Bucket": "shared", "Key": "doc.txt"}, ExpiresIn=300)
r["attributes"] = outcome(fetch(url + "&attributes"))
r["retention"] = outcome(fetch(url + "&retention"))
print(json.dumps(r))
"#,
    );
    assert_eq!((out["week"]["status"].as_u64(), out["week"]["leaked"].as_bool()), (Some(200), Some(true)), "{out}");
    for (case, code) in
        [("eight_days", "AccessDenied"), ("attributes", "AccessDenied"), ("retention", "SignatureDoesNotMatch")]
    {
        let got = &out[case];
        assert_eq!((got["status"].as_u64(), got["code"].as_str()), (Some(403), Some(code)), "{case}: {got}");
        assert_eq!(got["leaked"], false, "{case}");
        let (start, end) = proxy.event(got["req"].as_str().unwrap());
        assert_eq!(end["outcome"], "denied", "{case}: {end}");
        assert_eq!(start["key"], "doc.txt", "{case}: {start}");
    }
    assert!(out["eight_days"]["message"].as_str().unwrap().contains("one week"), "{out}");
    let (start, _) = proxy.event(out["attributes"]["req"].as_str().unwrap());
    assert_eq!(start["operation"], "GetObjectAttributes", "the attempt is recorded as what it would be: {start}");
    assert_eq!(start["principal"], "bob", "{start}");
}

#[test]
fn presigned_put_uploads_with_a_plain_http_client() {
    let upstream = SeaweedFs::start();
    let proxy = start_proxy(&upstream);
    let out = run(
        &proxy,
        r#"
admin = client(*alice)
admin.create_bucket(Bucket="shared")
v4 = client(*bob, signature_version="s3v4")
url = v4.generate_presigned_url("put_object", Params={"Bucket": "shared", "Key": "uploads/from bob.bin"}, ExpiresIn=300)
data = os.urandom(1_000_003)
put = fetch(url, method="PUT", data=data)
r = {"put_status": put["status"], "put_req": put["headers"].get("x-egress-request-id"), "size": len(data),
     "put_body": put["body"].decode("utf-8", "replace")}
get = admin.get_object(Bucket="shared", Key="uploads/from bob.bin")
back = get["Body"].read()
r["same"] = back == data
r["get_req"] = get["ResponseMetadata"]["HTTPHeaders"]["x-egress-request-id"]
print(json.dumps(r))
"#,
    );
    assert_eq!(out["put_status"], 200, "{out}\nproxy log:\n{}", proxy.log());
    assert_eq!(out["same"], true, "the object holds exactly the PUT body");
    let size = out["size"].as_u64().unwrap();
    let key = "uploads/from bob.bin";
    let (start, end) = assert_event(&proxy, &out["put_req"], 1, "PutObject", key, 200);
    assert_eq!(start["method"], "PUT");
    assert_eq!(end["bytes_sent"], 0, "{end}");
    assert!(end["etag"].is_string(), "{end}");
    let (_, end) = assert_event(&proxy, &out["get_req"], 0, "GetObject", key, 200);
    assert_eq!(end["bytes_sent"], size, "{end}");
}

/// A presigned bucket listing. boto3 signs a path-style bucket-only request
/// (`GET /shared?list-type=2…`) with the `SigV2` canonical resource `/shared/`
/// (botocore `handlers.py`: "If the request URI is ONLY a bucket, the
/// `auth_path` must be terminated with a '/' character to generate a
/// signature that the server will accept").
#[test]
fn presigned_bucket_listing_sigv4_and_sigv2() {
    let upstream = SeaweedFs::start();
    let proxy = start_proxy(&upstream);
    let out = run(
        &proxy,
        r#"
admin = client(*alice)
admin.create_bucket(Bucket="shared")
admin.put_object(Bucket="shared", Key="listed/one.txt", Body=b"1")
r = {}
for name, (who, sv) in {"v4": (alice, "s3v4"), "v2": (bob, None)}.items():
    url = client(*who, signature_version=sv).generate_presigned_url(
        "list_objects_v2", Params={"Bucket": "shared", "Prefix": "listed/"}, ExpiresIn=300)
    got = fetch(url)
    r[name] = {"query": query(url), "status": got["status"], "len": len(got["body"]),
        "req": got["headers"].get("x-egress-request-id"), "body": got["body"].decode("utf-8", "replace"),
        "listed": "<Key>listed/one.txt</Key>" in got["body"].decode("utf-8", "replace")}
print(json.dumps(r))
"#,
    );
    for (name, who) in [("v4", 0), ("v2", 1)] {
        let o = &out[name];
        assert_eq!(o["status"], 200, "presigned {name} listing: {o}");
        assert_eq!(o["listed"], true, "{o}");
        let (start, end) = proxy.event(o["req"].as_str().expect("request id"));
        assert_eq!(start["principal"], proxy.keys[who].principal.as_str(), "{start}");
        assert_eq!(start["operation"], "ListObjectsV2", "{start}");
        assert_eq!(start["bucket"], "shared");
        assert_eq!(start["key"], Value::Null);
        assert_eq!((end["status"].as_u64(), end["outcome"].as_str()), (Some(200), Some("complete")), "{end}");
        assert_eq!(end["bytes_sent"], o["len"], "{end}");
    }
    assert!(out["v2"]["query"].as_array().is_some_and(|q| q.iter().any(|p| p == "AWSAccessKeyId")), "{out}");
}
