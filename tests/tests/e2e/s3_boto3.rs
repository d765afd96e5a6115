//! boto3 through the proxy to a real S3 server (SeaweedFS, SigV4 enforced):
//! every request works as it would against S3, and every request is in the
//! ledger once, with the bytes the client really received.

use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};
use serde_json::Value;

const PRELUDE: &str = r#"
import os, json, hashlib, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
def rid(resp):
    return resp["ResponseMetadata"]["HTTPHeaders"]["x-egress-request-id"]
"#;

fn run(proxy: &Proxy, body: &str) -> Value {
    let key = proxy.key();
    python(
        &format!("{PRELUDE}\n{body}"),
        &[("ENDPOINT", &proxy.endpoint()), ("AK", &key.access_key_id), ("SK", &key.secret_access_key)],
    )
}

fn assert_event(
    proxy: &Proxy,
    req: &Value,
    operation: &str,
    key: Option<&str>,
    status: u64,
    bytes: u64,
) -> (Value, Value) {
    let (start, end) = proxy.event(req.as_str().expect("request id"));
    assert_eq!(start["principal"], proxy.key().principal.as_str());
    assert_eq!(start["access_key_id"], proxy.key().access_key_id.as_str());
    assert_eq!(start["operation"], operation, "{start}");
    assert_eq!(start["bucket"], "data");
    assert_eq!(start["key"].as_str(), key);
    assert_eq!(end["status"], status, "{end}");
    assert_eq!(end["bytes_sent"], bytes, "{end}");
    assert_eq!(end["outcome"], "complete", "{end}");
    (start, end)
}

#[test]
fn put_get_range_head_list_delete_are_recorded_with_exact_bytes() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(&upstream, ProxyOptions { principals: vec!["alice".into()], ..ProxyOptions::default() });
    let out = run(
        &proxy,
        r#"
body = bytes(range(256)) * 4000   # 1,024,000 bytes
r = {}
r["create"] = rid(s3.create_bucket(Bucket="data"))
put = s3.put_object(Bucket="data", Key="dir/obj 1+ü.bin", Body=body, ContentType="application/x-test", Metadata={"team": "vision"})
r["put"] = rid(put)
get = s3.get_object(Bucket="data", Key="dir/obj 1+ü.bin")
data = get["Body"].read()
r["get"] = rid(get); r["get_len"] = len(data); r["get_ok"] = data == body
rng = s3.get_object(Bucket="data", Key="dir/obj 1+ü.bin", Range="bytes=1000-1999")
part = rng["Body"].read()
r["range"] = rid(rng); r["range_len"] = len(part); r["range_ok"] = part == body[1000:2000]
past = s3.get_object(Bucket="data", Key="dir/obj 1+ü.bin", Range="bytes=1023990-52428799")
r["past"] = rid(past); r["past_len"] = len(past["Body"].read())
head = s3.head_object(Bucket="data", Key="dir/obj 1+ü.bin")
r["head"] = rid(head); r["head_meta"] = head["Metadata"]; r["head_type"] = head["ContentType"]
lst = s3.list_objects_v2(Bucket="data")
r["list"] = rid(lst); r["keys"] = [o["Key"] for o in lst["Contents"]]
try:
    s3.get_object(Bucket="data", Key="missing")
except s3.exceptions.NoSuchKey as e:
    r["missing"] = e.response["ResponseMetadata"]["HTTPHeaders"]["x-egress-request-id"]
etag = head["ETag"]
try:
    s3.get_object(Bucket="data", Key="dir/obj 1+ü.bin", IfNoneMatch=etag)
except Exception as e:
    r["not_modified"] = e.response["ResponseMetadata"]["HTTPHeaders"]["x-egress-request-id"]
    r["not_modified_status"] = e.response["ResponseMetadata"]["HTTPStatusCode"]
r["delete"] = rid(s3.delete_object(Bucket="data", Key="dir/obj 1+ü.bin"))
print(json.dumps(r))
"#,
    );
    assert_eq!(out["get_len"], 1_024_000);
    assert_eq!(out["get_ok"], true);
    assert_eq!(out["range_ok"], true);
    assert_eq!(out["past_len"], 10);
    assert_eq!(out["head_meta"]["team"], "vision", "metadata reached the upstream as signed");
    assert_eq!(out["head_type"], "application/x-test");
    assert_eq!(out["keys"], serde_json::json!(["dir/obj 1+ü.bin"]));

    let key = Some("dir/obj 1+ü.bin");
    let (_, get) = assert_event(&proxy, &out["get"], "GetObject", key, 200, 1_024_000);
    assert_eq!(get["object_size"], 1_024_000);
    assert!(get["etag"].is_string());
    assert!(get["upstream_request_id"].is_string());
    let (start, range) = assert_event(&proxy, &out["range"], "GetObject", key, 206, 1000);
    assert_eq!(start["range"], "bytes=1000-1999");
    assert_eq!(range["object_size"], 1_024_000);
    assert_event(&proxy, &out["past"], "GetObject", key, 206, 10);
    assert_event(&proxy, &out["head"], "HeadObject", key, 200, 0);
    assert_event(&proxy, &out["put"], "PutObject", key, 200, 0);
    assert_event(&proxy, &out["delete"], "DeleteObject", key, 204, 0);
    let (_, list) = proxy.event(out["list"].as_str().unwrap());
    assert_eq!(list["status"], 200);
    assert!(list["bytes_sent"].as_u64().unwrap() > 100, "the listing's XML bytes are counted: {list}");
    let (_, missing) = proxy.event(out["missing"].as_str().unwrap());
    assert_eq!(missing["status"], 404);
    assert_eq!(missing["error_code"], "NoSuchKey", "the upstream's own error code is recorded: {missing}");
    assert!(missing["bytes_sent"].as_u64().unwrap() > 0);
    let (_, not_modified) = proxy.event(out["not_modified"].as_str().unwrap());
    assert_eq!(out["not_modified_status"], 304);
    assert_eq!((not_modified["status"].as_u64(), not_modified["bytes_sent"].as_u64()), (Some(304), Some(0)));

    // Nothing but these requests, each exactly once; the ledger verifies.
    let starts = proxy.ledger().iter().filter(|l| l["kind"] == "start").count();
    assert_eq!(starts, 10);
    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn multipart_upload_and_parallel_ranged_download() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(&upstream, ProxyOptions { principals: vec!["bob".into()], ..ProxyOptions::default() });
    let out = run(
        &proxy,
        r#"
import tempfile
from boto3.s3.transfer import TransferConfig
cfg = TransferConfig(multipart_threshold=8*1024*1024, multipart_chunksize=8*1024*1024, max_concurrency=4)
s3.create_bucket(Bucket="data")
d = tempfile.mkdtemp()
src = os.path.join(d, "src.bin")
data = os.urandom(20 * 1024 * 1024 + 123)
open(src, "wb").write(data)
s3.upload_file(src, "data", "big.bin", Config=cfg)
dst = os.path.join(d, "dst.bin")
s3.download_file("data", "big.bin", dst, Config=cfg)
print(json.dumps({"same": open(dst, "rb").read() == data, "size": len(data)}))
"#,
    );
    assert_eq!(out["same"], true);
    let size = out["size"].as_u64().unwrap();
    let events = proxy.events_where(|s| s["bucket"] == "data" && s["key"] == "big.bin");
    let count = |op: &str| events.iter().filter(|(s, _)| s["operation"] == op).count();
    assert_eq!(count("CreateMultipartUpload"), 1);
    assert_eq!(count("UploadPart"), 3);
    assert_eq!(count("CompleteMultipartUpload"), 1);
    assert!(count("HeadObject") >= 1);
    let gets: Vec<_> = events.iter().filter(|(s, _)| s["operation"] == "GetObject").collect();
    assert_eq!(gets.len(), 3, "three 8 MiB ranges");
    let total: u64 = gets.iter().map(|(_, e)| e["bytes_sent"].as_u64().unwrap()).sum();
    assert_eq!(total, size, "the ranged GETs together delivered the object once");
    assert!(gets.iter().all(|(_, e)| e["status"] == 206 && e["outcome"] == "complete" && e["object_size"] == size));
}

#[test]
fn a_client_that_stops_reading_is_recorded_as_client_abort() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(&upstream, ProxyOptions { principals: vec!["carol".into()], ..ProxyOptions::default() });
    let out = run(
        &proxy,
        r#"
s3.create_bucket(Bucket="data")
s3.put_object(Bucket="data", Key="huge.bin", Body=os.urandom(64 * 1024 * 1024))
resp = s3.get_object(Bucket="data", Key="huge.bin")
got = resp["Body"].read(1024 * 1024)
resp["Body"].close()
print(json.dumps({"req": rid(resp), "got": len(got)}))
"#,
    );
    assert_eq!(out["got"], 1024 * 1024);
    let (_, end) = proxy.event(out["req"].as_str().unwrap());
    assert_eq!(end["outcome"], "client_abort", "{end}");
    let sent = end["bytes_sent"].as_u64().unwrap();
    assert!((1024 * 1024..64 * 1024 * 1024).contains(&sent), "bytes_sent {sent}");
    assert_eq!(end["object_size"], 64 * 1024 * 1024);
}
