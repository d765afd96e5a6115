//! The README's first command, `egress-proxy serve`, on a fresh machine: no
//! upstream, no AWS credentials, an empty directory. The proxy must come up
//! in front of its embedded dev store, create the `default` principal, write
//! its key to a private file and say where it is (not what it is); the Rust
//! SDK and boto3 then round-trip objects with that key through the proxy,
//! every request is in the ledger under `default`, the ledger verifies
//! after a SIGTERM, and a second start makes no second principal.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region, SharedCredentialsProvider};
use aws_sdk_s3::primitives::ByteStream;
use egress_e2e::pseudo_random;
use egress_e2e::servers::{ledger_lines, python};
use serde_json::Value;

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port")
}

/// `egress-proxy serve --listen … --admin-listen …` run in `cwd`, so the
/// data dir is the default `./data`, with no AWS variables.
struct FirstRun {
    child: Option<Child>,
    s3: SocketAddr,
    log: PathBuf,
}

impl FirstRun {
    fn start(cwd: &Path, name: &str) -> FirstRun {
        let (s3, admin) = (free_addr(), free_addr());
        let log = cwd.join(format!("{name}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(egress_e2e::bin());
        command
            .args(["serve", "--listen", &s3.to_string(), "--admin-listen", &admin.to_string()])
            .current_dir(cwd)
            .env("EGRESS_LOG", "info")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out);
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(|n| n.starts_with("AWS_") && n != "AWS_EC2_METADATA_DISABLED")
                || name.to_str().is_some_and(|n| n.starts_with("EGRESS_") && n != "EGRESS_LOG")
            {
                command.env_remove(name);
            }
        }
        let child = command.spawn().expect("start egress-proxy serve");
        let mut run = FirstRun { child: Some(child), s3, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(listening(s3) && listening(admin)) {
            if let Some(status) = run.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("serve exited with {status}; log:\n{}", run.log());
            }
            assert!(Instant::now() < deadline, "serve did not listen within 30 s; log:\n{}", run.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        run
    }

    fn endpoint(&self) -> String {
        format!("http://{}", self.s3)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then a clean exit within 30 s.
    fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(status.success(), "serve exited with {status}; log:\n{}", self.log());
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("serve did not stop within 30 s of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FirstRun {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn listening(addr: SocketAddr) -> bool {
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

fn sdk_client(endpoint: &str, key: &Value) -> aws_sdk_s3::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let shared = aws_config::SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            key["access_key_id"].as_str().expect("access_key_id"),
            key["secret_access_key"].as_str().expect("secret_access_key"),
            None,
            None,
            "egress-e2e",
        )))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .http_client(http)
        .build();
    aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&shared).force_path_style(true).build())
}

/// Create a bucket, put, get, range-get with the Rust SDK.
async fn rust_sdk_round_trip(client: &aws_sdk_s3::Client, body: &[u8]) {
    client.create_bucket().bucket("first").send().await.expect("create bucket");
    client
        .put_object()
        .bucket("first")
        .key("dir/rust.bin")
        .body(ByteStream::from(body.to_vec()))
        .send()
        .await
        .expect("put");
    let got = client.get_object().bucket("first").key("dir/rust.bin").send().await.expect("get");
    assert_eq!(got.body.collect().await.expect("get body").into_bytes().as_ref(), body);
    let range = client.get_object().bucket("first").key("dir/rust.bin").range("bytes=100-1099").send().await;
    let range = range.expect("range get");
    assert_eq!(range.body.collect().await.expect("range body").into_bytes().as_ref(), &body[100..1100]);
}

const BOTO3: &str = r#"
import os, json, boto3
k = json.load(open(os.environ["KEY_FILE"]))
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=k["access_key_id"], aws_secret_access_key=k["secret_access_key"])
body = bytes(range(256)) * 1000
try:
    s3.create_bucket(Bucket="boto")
except s3.exceptions.ClientError as e:
    if e.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
        raise
s3.put_object(Bucket="boto", Key="b.bin", Body=body)
full = s3.get_object(Bucket="boto", Key="b.bin")["Body"].read()
part = s3.get_object(Bucket="boto", Key="b.bin", Range="bytes=1000-1999")["Body"].read()
head = s3.head_object(Bucket="boto", Key="b.bin")
rust = s3.get_object(Bucket="first", Key="dir/rust.bin")["Body"].read()
print(json.dumps({"full": full == body, "part": part == body[1000:2000], "len": head["ContentLength"],
                  "rust_len": len(rust)}))
"#;

#[test]
fn serve_without_upstream_runs_on_the_embedded_store_with_a_default_principal() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let mut proxy = FirstRun::start(dir.path(), "first");

    let key_file = data.join("default-principal.json");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !key_file.exists() {
        assert!(Instant::now() < deadline, "no key file {}; log:\n{}", key_file.display(), proxy.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mode = std::fs::metadata(&key_file).expect("key file").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the key file is private");
    let key: Value = serde_json::from_slice(&std::fs::read(&key_file).expect("read key")).expect("key JSON");
    assert_eq!(key["name"], "default");
    let secret = key["secret_access_key"].as_str().expect("secret").to_owned();

    // The banner follows the key file by a moment.
    while !proxy.log().contains(&key_file.display().to_string()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let banner = proxy.log();
    assert!(banner.contains("EMBEDDED DEV STORE"), "says the upstream is not S3:\n{banner}");
    assert!(banner.contains(&key_file.display().to_string()), "names the key file:\n{banner}");
    assert!(banner.contains(&data.join("admin.token").display().to_string()), "names the token file:\n{banner}");
    assert!(banner.contains(&proxy.endpoint()), "names the S3 endpoint:\n{banner}");
    assert!(!banner.contains(&secret), "the secret is not printed");

    let body = pseudo_random(300_000, 7);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(rust_sdk_round_trip(&sdk_client(&proxy.endpoint(), &key), &body));

    let key_path = key_file.to_str().expect("utf-8 path");
    let out = python(BOTO3, &[("ENDPOINT", &proxy.endpoint()), ("KEY_FILE", key_path)]);
    assert_eq!(out["full"], true, "{out}");
    assert_eq!(out["part"], true, "{out}");
    assert_eq!(out["len"], 256_000, "{out}");
    assert_eq!(out["rust_len"], 300_000, "{out}");
    assert!(data.join("objects").join("boto").join("b.bin").is_file(), "objects land under <data-dir>/objects");

    proxy.stop();
    let lines = ledger_lines(&data);
    let created: Vec<_> = lines.iter().filter(|l| l["event"] == "principal_created").collect();
    assert_eq!(created.len(), 1, "one principal_created note");
    assert_eq!(created[0]["principal"], "default");
    let starts: Vec<_> = lines.iter().filter(|l| l["kind"] == "start").collect();
    assert!(starts.iter().all(|s| s["principal"] == "default"), "every request is `default`'s");
    let ends_for = |op: &str, bytes: u64| {
        starts
            .iter()
            .filter(|s| s["operation"] == op)
            .filter_map(|s| lines.iter().find(|l| l["kind"] == "end" && l["req"] == s["req"]))
            .any(|e| e["bytes_sent"] == bytes)
    };
    assert!(ends_for("GetObject", 300_000), "the SDK's full GET is recorded with its bytes");
    assert!(ends_for("GetObject", 1000), "the range GETs are recorded with their bytes");
    assert!(ends_for("GetObject", 256_000), "boto3's full GET is recorded with its bytes");
    assert!(starts.iter().any(|s| s["operation"] == "PutObject" && s["bucket"] == "first"));
    let verify = egress_e2e::run_in(&data, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "ledger verify: {verify:?}");

    // A second start: the same principal, no new banner, objects still there.
    let mut again = FirstRun::start(dir.path(), "second");
    let out = python(BOTO3, &[("ENDPOINT", &again.endpoint()), ("KEY_FILE", key_path)]);
    assert_eq!(out["rust_len"], 300_000, "objects and key survive a restart: {out}");
    again.stop();
    assert!(!again.log().contains("EMBEDDED DEV STORE as its upstream"), "the banner is for the first start");
    let list = egress_e2e::run_in(&data, &["principal", "list"]).json();
    assert_eq!(list.as_array().map(Vec::len), Some(1), "no second principal: {list}");
    assert_eq!(ledger_lines(&data).iter().filter(|l| l["event"] == "principal_created").count(), 1);
    let verify = egress_e2e::run_in(&data, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "ledger verify after the second run: {verify:?}");
}
