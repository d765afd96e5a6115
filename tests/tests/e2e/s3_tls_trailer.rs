//! boto3 over HTTPS to the proxy's TLS listener (dev certificates from
//! `egress-proxy certs`). Over HTTPS boto3 ≥ 1.36 sends `PutObject` and
//! `UploadPart` as `aws-chunked` with `STREAMING-UNSIGNED-PAYLOAD-TRAILER` and
//! an `x-amz-checksum-crc32` trailer: the objects must hold the payload
//! alone (never the chunk framing or the trailer), the upstream must have
//! the client's CRC32 (it answers it on PUT and on GET with `ChecksumMode`),
//! and the ledger must record every request.

use std::path::Path;

use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};
use serde_json::Value;

const PRELUDE: &str = r#"
import os, json, zlib, base64, tempfile
import boto3
from botocore.config import Config
from boto3.s3.transfer import TransferConfig

s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    verify=os.environ["CA"], config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))

# What boto3 really put on the wire for each body-carrying request.
sent = []
def record(request, **kwargs):
    h = request.headers
    get = lambda n: (h.get(n).decode() if isinstance(h.get(n), bytes) else h.get(n))
    sent.append({"method": request.method, "url": request.url,
        "content_sha256": get("x-amz-content-sha256"), "trailer": get("x-amz-trailer"),
        "content_encoding": get("Content-Encoding"), "decoded_length": get("x-amz-decoded-content-length")})
s3.meta.events.register("before-send.s3.PutObject", record)
s3.meta.events.register("before-send.s3.UploadPart", record)

def rid(resp):
    return resp["ResponseMetadata"]["HTTPHeaders"]["x-egress-request-id"]

def crc32_b64(data):
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
"#;

fn run(proxy: &Proxy, certs: &Path, body: &str) -> Value {
    let key = proxy.key();
    let port = proxy.tls_addr.expect("TLS listener").port();
    python(
        &format!("{PRELUDE}\n{body}"),
        &[
            ("ENDPOINT", &format!("https://localhost:{port}")),
            ("CA", certs.join("ca.pem").to_str().expect("utf-8 path")),
            ("AK", &key.access_key_id),
            ("SK", &key.secret_access_key),
        ],
    )
}

fn start(upstream: &SeaweedFs, principal: &str) -> (Proxy, tempfile::TempDir) {
    let certs = tempfile::tempdir().expect("certs dir");
    let dir = certs.path().to_str().expect("utf-8 path");
    let made = egress_e2e::run(&["certs", "--out", dir, "--hosts", "localhost,127.0.0.1"]);
    assert_eq!(made.code, 0, "{made:?}");
    for file in ["ca.pem", "server.pem", "server.key"] {
        assert!(certs.path().join(file).exists(), "certs wrote {file}");
    }
    let proxy = Proxy::start(
        upstream,
        ProxyOptions {
            principals: vec![principal.into()],
            tls_certs: Some(certs.path().to_path_buf()),
            ..ProxyOptions::default()
        },
    );
    (proxy, certs)
}

fn assert_event(proxy: &Proxy, req: &Value, operation: &str, key: &str, status: u64, bytes: u64) -> (Value, Value) {
    let (start, end) = proxy.event(req.as_str().unwrap_or_else(|| panic!("request id: {req}")));
    assert_eq!(start["principal"], proxy.key().principal.as_str(), "{start}");
    assert_eq!(start["operation"], operation, "{start}");
    assert_eq!(start["bucket"], "tls");
    assert_eq!(start["key"], key, "{start}");
    assert_eq!(end["status"], status, "{end}");
    assert_eq!(end["bytes_sent"], bytes, "{end}");
    assert_eq!(end["outcome"], "complete", "{end}");
    (start, end)
}

/// Every request boto3 sent with a body used the unsigned-trailer mode.
fn assert_trailer_mode(sent: &Value, expected: usize) {
    let sent = sent.as_array().expect("sent list");
    assert_eq!(sent.len(), expected, "{sent:?}");
    for request in sent {
        assert!(request["url"].as_str().is_some_and(|u| u.starts_with("https://")), "{request}");
        assert_eq!(request["content_sha256"], "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "{request}");
        assert_eq!(request["trailer"], "x-amz-checksum-crc32", "{request}");
        assert!(request["content_encoding"].as_str().is_some_and(|e| e.contains("aws-chunked")), "{request}");
        assert!(request["decoded_length"].is_string(), "{request}");
    }
}

#[test]
fn put_object_with_a_crc32_trailer_over_https_round_trips() {
    let upstream = SeaweedFs::start();
    let (proxy, certs) = start(&upstream, "tls-user");
    let out = run(
        &proxy,
        certs.path(),
        r#"
r = {}
s3.create_bucket(Bucket="tls")
objects = {"big.bin": os.urandom(5 * 1024 * 1024 + 17), "small.txt": b"a small object over TLS\n"}
for key, data in objects.items():
    put = s3.put_object(Bucket="tls", Key=key, Body=data)
    get = s3.get_object(Bucket="tls", Key=key, ChecksumMode="ENABLED")
    back = get["Body"].read()
    head = s3.head_object(Bucket="tls", Key=key)
    r[key] = {"put": rid(put), "get": rid(get), "head": rid(head), "size": len(data), "len": len(back),
        "same": back == data, "head_length": head["ContentLength"],
        "put_crc": put.get("ChecksumCRC32"), "get_crc": get.get("ChecksumCRC32"), "crc": crc32_b64(data)}
r["sent"] = sent
print(json.dumps(r))
"#,
    );
    assert_trailer_mode(&out["sent"], 2);
    for key in ["big.bin", "small.txt"] {
        let o = &out[key];
        let size = o["size"].as_u64().unwrap();
        assert_eq!(o["len"], size, "{key}: {o}");
        assert_eq!(o["same"], true, "{key}: the object is the payload alone, no chunk framing or trailer");
        assert_eq!(o["head_length"], size, "{key}: stored length: {o}");
        assert_eq!(o["put_crc"], o["crc"], "{key}: the upstream computed the client's CRC32: {o}");
        assert_eq!(o["get_crc"], o["crc"], "{key}: the stored checksum comes back with ChecksumMode: {o}");
        let (_, put) = assert_event(&proxy, &o["put"], "PutObject", key, 200, 0);
        assert!(put["etag"].is_string(), "{put}");
        let (_, get) = assert_event(&proxy, &o["get"], "GetObject", key, 200, size);
        assert_eq!(get["object_size"], size, "{get}");
        assert_event(&proxy, &o["head"], "HeadObject", key, 200, 0);
    }
    let starts = proxy.ledger().iter().filter(|l| l["kind"] == "start").count();
    assert_eq!(starts, 7, "create, and put/get/head of two objects");
    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn multipart_upload_file_over_https_with_trailers() {
    let upstream = SeaweedFs::start();
    let (proxy, certs) = start(&upstream, "tls-multipart");
    let out = run(
        &proxy,
        certs.path(),
        r#"
cfg = TransferConfig(multipart_threshold=8*1024*1024, multipart_chunksize=8*1024*1024, max_concurrency=4)
s3.create_bucket(Bucket="tls")
d = tempfile.mkdtemp()
src = os.path.join(d, "src.bin")
data = os.urandom(20 * 1024 * 1024 + 5)
open(src, "wb").write(data)
s3.upload_file(src, "tls", "multi/part.bin", Config=cfg)
get = s3.get_object(Bucket="tls", Key="multi/part.bin", ChecksumMode="ENABLED")
back = get["Body"].read()
print(json.dumps({"size": len(data), "len": len(back), "same": back == data, "get": rid(get), "sent": sent}))
"#,
    );
    assert_trailer_mode(&out["sent"], 3);
    let size = out["size"].as_u64().unwrap();
    assert_eq!(out["len"], size);
    assert_eq!(out["same"], true, "the parts hold the payload alone");
    let (_, get) = assert_event(&proxy, &out["get"], "GetObject", "multi/part.bin", 200, size);
    assert_eq!(get["object_size"], size);

    let events = proxy.events_where(|s| s["bucket"] == "tls" && s["key"] == "multi/part.bin");
    let of = |op: &str| events.iter().filter(|(s, _)| s["operation"] == op).collect::<Vec<_>>();
    assert_eq!(of("CreateMultipartUpload").len(), 1);
    let parts = of("UploadPart");
    assert_eq!(parts.len(), 3, "{parts:?}");
    for (start, end) in &parts {
        assert_eq!(start["principal"], "tls-multipart");
        assert_eq!((end["status"].as_u64(), end["bytes_sent"].as_u64()), (Some(200), Some(0)), "{end}");
        assert_eq!(end["outcome"], "complete", "{end}");
    }
    let complete = of("CompleteMultipartUpload");
    assert_eq!(complete.len(), 1);
    assert_eq!(complete[0].1["status"], 200, "{:?}", complete[0]);
    assert!(events.iter().all(|(_, e)| e["outcome"] == "complete"), "{events:?}");
}

/// The shape real deployments take: the upstream over HTTPS, with a private
/// CA given by `--upstream-ca-file` or, as the AWS SDKs read it,
/// `AWS_CA_BUNDLE`. Without the CA the proxy refuses to talk to the
/// upstream (502, recorded as `upstream_error`) rather than trust it.
#[test]
fn an_https_upstream_with_a_private_ca() {
    let certs = tempfile::tempdir().expect("certs dir");
    let dir = certs.path().to_str().expect("utf-8 path");
    assert_eq!(egress_e2e::run(&["certs", "--out", dir, "--hosts", "localhost,127.0.0.1"]).code, 0);
    let upstream = SeaweedFs::start_with_tls(certs.path());
    let https = upstream.https_endpoint().expect("an HTTPS port");
    let ca = certs.path().join("ca.pem").to_str().expect("utf-8 path").to_owned();
    // The machine's own AWS_CA_BUNDLE (the system bundle) must not decide.
    let no_bundle = vec![("AWS_CA_BUNDLE".to_owned(), String::new())];
    let by_flag = Proxy::start_with_upstream(
        &https,
        ProxyOptions {
            principals: vec!["flag".into()],
            extra_args: vec!["--upstream-ca-file".into(), ca.clone()],
            env: no_bundle.clone(),
            ..ProxyOptions::default()
        },
    );
    let by_env = Proxy::start_with_upstream(
        &https,
        ProxyOptions {
            principals: vec!["env".into()],
            env: vec![("AWS_CA_BUNDLE".to_owned(), ca.clone())],
            ..ProxyOptions::default()
        },
    );
    let untrusted = Proxy::start_with_upstream(
        &https,
        ProxyOptions { principals: vec!["none".into()], env: no_bundle, ..ProxyOptions::default() },
    );
    let script = r#"
import os, json, boto3, botocore, urllib.request
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
bucket = os.environ["BUCKET"]
body = bytes(range(256)) * 4096
out = {}
try:
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a.bin", Body=body)
    got = s3.get_object(Bucket=bucket, Key="a.bin")
    out["get"] = {"ok": got["Body"].read() == body, "req": got["ResponseMetadata"]["HTTPHeaders"]["x-egress-request-id"]}
    part = s3.get_object(Bucket=bucket, Key="a.bin", Range="bytes=1000-1999")["Body"].read()
    out["range_ok"] = part == body[1000:2000]
    url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "a.bin"}, ExpiresIn=300)
    out["presigned_ok"] = urllib.request.urlopen(url).read() == body
except botocore.exceptions.ClientError as e:
    meta = e.response["ResponseMetadata"]
    out["error"] = {"status": meta["HTTPStatusCode"], "code": e.response["Error"]["Code"],
        "message": e.response["Error"].get("Message", ""), "req": meta["HTTPHeaders"].get("x-egress-request-id")}
print(json.dumps(out))
"#;
    let drive = |proxy: &Proxy, bucket: &str| {
        let key = proxy.key();
        python(
            script,
            &[
                ("ENDPOINT", &proxy.endpoint()),
                ("AK", &key.access_key_id),
                ("SK", &key.secret_access_key),
                ("BUCKET", bucket),
            ],
        )
    };
    for (proxy, bucket) in [(&by_flag, "by-flag"), (&by_env, "by-env")] {
        let out = drive(proxy, bucket);
        assert_eq!(out["get"]["ok"], true, "{bucket}: {out}");
        assert_eq!((out["range_ok"].as_bool(), out["presigned_ok"].as_bool()), (Some(true), Some(true)), "{out}");
        let (_, end) = proxy.event(out["get"]["req"].as_str().unwrap());
        assert_eq!((end["outcome"].as_str(), end["bytes_sent"].as_u64()), (Some("complete"), Some(1_048_576)), "{end}");
        assert!(end["upstream_request_id"].is_string(), "the upstream answered over TLS: {end}");
    }
    let refused = drive(&untrusted, "untrusted");
    assert_eq!(
        (refused["error"]["status"].as_u64(), refused["error"]["code"].as_str()),
        (Some(502), Some("BadGateway")),
        "{refused}"
    );
    let (_, end) = untrusted.event(refused["error"]["req"].as_str().unwrap());
    assert_eq!(end["outcome"], "upstream_error", "{end}");
}
