//! No secret leaves the file that keeps it: no principal's secret access
//! key, no upstream secret, no admin token and no checkpoint signing key
//! appears in the logs (at the most verbose level, as JSON), the ledger,
//! the checkpoints, any HTTP answer (S3 errors included) or the output of
//! any CLI command — except where handing it over is the point (`principal
//! create`, `POST /v1/principals`), and there only the one secret issued.
//!
//! Each secret is looked for as written and in the encodings a careless
//! line would use (hex, base64), and the principals' and upstream's secrets
//! also as the SigV4 signing keys derived from them for today and yesterday.
//! The files meant to hold secrets are not searched but must be mode 0600:
//! `state/` (sled: principals and their keys), `keys/checkpoint.key`,
//! `admin.token`, and in the embedded mode `default-principal.json` and
//! `keys/embedded-upstream.json` (`docs/LEDGER.md`, "Data dir").

use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, UPSTREAM_KEY, UPSTREAM_SECRET, python};
use serde_json::Value;

/// A secret and every form of it that must not appear.
#[derive(Debug)]
struct Secret {
    name: String,
    forms: Vec<(&'static str, Vec<u8>)>,
}

impl Secret {
    /// A secret string: as is, in hex and in base64.
    fn text(name: &str, value: &str) -> Secret {
        let mut secret = Secret { name: name.to_owned(), forms: vec![("as written", value.as_bytes().to_vec())] };
        secret.add_encodings(value.as_bytes());
        secret
    }

    /// A secret access key: also the SigV4 signing keys derived from it
    /// (today's and yesterday's, for a test that crosses midnight).
    fn access_key(name: &str, value: &str) -> Secret {
        let mut secret = Secret::text(name, value);
        let now = SystemTime::now();
        for time in [now, now - Duration::from_hours(24)] {
            let key = aws_sigv4::sign::v4::generate_signing_key(value, time, "us-east-1", "s3");
            let key = key.as_ref().to_vec();
            secret.forms.push(("derived SigV4 signing key, hex", hex::encode(&key).into_bytes()));
            secret.forms.push(("derived SigV4 signing key, raw", key));
        }
        secret
    }

    /// The checkpoint signing key from its file (`PRIVATE+KEY+<origin>+<key
    /// id>+<base64(0x01 ‖ 32-byte seed)>`): the base64 as in the file, the
    /// seed raw, in hex and in base64.
    fn checkpoint_key(file_text: &str) -> Secret {
        let rest = file_text.trim().strip_prefix("PRIVATE+KEY+").unwrap_or_else(|| panic!("not a key: {file_text:?}"));
        let encoded = rest.splitn(3, '+').nth(2).unwrap();
        let raw = STANDARD.decode(encoded).unwrap();
        assert_eq!((raw.len(), raw[0]), (33, 1), "an Ed25519 key");
        let seed = &raw[1..];
        let mut secret = Secret {
            name: "the checkpoint signing key".to_owned(),
            forms: vec![("as in checkpoint.key", encoded.as_bytes().to_vec()), ("seed, raw", seed.to_vec())],
        };
        secret.add_encodings(seed);
        secret
    }

    fn add_encodings(&mut self, bytes: &[u8]) {
        self.forms.extend([
            ("hex", hex::encode(bytes).into_bytes()),
            ("HEX", hex::encode_upper(bytes).into_bytes()),
            ("base64", STANDARD.encode(bytes).into_bytes()),
            ("base64 unpadded", STANDARD_NO_PAD.encode(bytes).into_bytes()),
            ("base64url", URL_SAFE.encode(bytes).into_bytes()),
            ("base64url unpadded", URL_SAFE_NO_PAD.encode(bytes).into_bytes()),
        ]);
    }
}

/// Bytes to search, and the secrets it may hold by design.
#[derive(Debug)]
struct Haystack {
    name: String,
    bytes: Vec<u8>,
    may_hold: Vec<String>,
}

fn haystack(name: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Haystack {
    Haystack { name: name.into(), bytes: bytes.into(), may_hold: Vec::new() }
}

fn position(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    haystack
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == first)
        .map(|(i, _)| i)
        .find(|&i| haystack[i..].starts_with(needle))
}

/// Every place a secret shows where it must not, one line each (naming
/// the secret and the form, never printing it).
fn find_leaks(haystacks: &[Haystack], secrets: &[Secret]) -> Vec<String> {
    let mut leaks = Vec::new();
    for h in haystacks {
        for s in secrets.iter().filter(|s| !h.may_hold.contains(&s.name)) {
            for (form, needle) in &s.forms {
                if let Some(at) = position(&h.bytes, needle) {
                    leaks.push(format!("{}: {} ({form}) at byte {at}", h.name, s.name));
                }
            }
        }
    }
    leaks
}

/// Every file under `dir` but those in `skip` (paths relative to `dir`;
/// a directory skips what is under it).
fn files_under(dir: &Path, skip: &[&str]) -> Vec<Haystack> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in fs::read_dir(&current).unwrap() {
            let path = entry.unwrap().path();
            let relative = path.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            if skip.contains(&relative.as_str()) {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(haystack(format!("file {relative}"), fs::read(&path).unwrap()));
            }
        }
    }
    assert!(out.iter().any(|h| h.name.contains("segment-")), "the ledger is among the files searched");
    out
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// The files that hold secrets are 0600 (directories on the way 0700), and
/// nothing in the data dir but the public key is readable by others.
fn assert_private(data_dir: &Path, secret_files: &[&str]) {
    assert_eq!(mode(data_dir), 0o700, "the data dir");
    for file in secret_files {
        assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
    }
    let mut pending = vec![data_dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let expected = if path.is_dir() { 0o700 } else { 0o600 };
            if path.ends_with("keys/checkpoint.pub") {
                continue;
            }
            assert_eq!(mode(&path), expected, "{}", path.display());
            if path.is_dir() {
                pending.push(path);
            }
        }
    }
}

/// One CLI run at the most verbose log level, JSON logs, with `env`.
struct CliRun {
    what: String,
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

fn cli(args: &[&str], env: &[(&str, &str)]) -> CliRun {
    let out = Command::new(egress_e2e::bin())
        .args(args)
        .env("EGRESS_LOG", "trace")
        .env("EGRESS_LOG_FORMAT", "json")
        .env_remove("EGRESS_ADMIN_TOKEN")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    CliRun { what: args.join(" "), code: out.status.code().unwrap_or(-1), stdout: out.stdout, stderr: out.stderr }
}

impl CliRun {
    fn haystacks(&self) -> [Haystack; 2] {
        [
            haystack(format!("stdout of `{}`", self.what), self.stdout.clone()),
            haystack(format!("stderr of `{}`", self.what), self.stderr.clone()),
        ]
    }
}

/// Every HTTP answer a session script recorded: `{what, status, head, body}`
/// with the body in hex.
fn answers(session: &Value) -> Vec<Haystack> {
    session["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let mut bytes = a["head"].as_str().unwrap().as_bytes().to_vec();
            bytes.extend(hex::decode(a["body"].as_str().unwrap()).unwrap());
            haystack(format!("answer to {} ({})", a["what"].as_str().unwrap(), a["status"]), bytes)
        })
        .collect()
}

/// The status and S3/admin error code a session recorded for `what`.
fn outcome(session: &Value, what: &str) -> (u64, String) {
    let a = session["answers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["what"] == what)
        .unwrap_or_else(|| panic!("no answer to {what} in {session}"));
    let body = String::from_utf8(hex::decode(a["body"].as_str().unwrap()).unwrap()).unwrap_or_default();
    let code = body.split_once("<Code>").and_then(|(_, rest)| rest.split_once("</Code>")).map_or("", |(c, _)| c);
    (a["status"].as_u64().unwrap(), code.to_owned())
}

/// Records every answer, boto3's (through the `after-call` event, errors
/// included) and urllib's.
const RECORDER: &str = r#"
import os, json, time, urllib.request, urllib.error, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
def wrong_secret(sk):
    """A secret that is never the right one, whatever `sk` ends with."""
    return sk[:-4] + ("WXYZ" if not sk.endswith("WXYZ") else "ABCD")
ANSWERS = []
def record(what, status, headers, body):
    head = "".join(f"{k}: {v}\n" for k, v in headers)
    ANSWERS.append({"what": what, "status": status, "head": head, "body": body.hex()})
def s3(name, ak, sk, **config):
    client = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
        aws_access_key_id=ak, aws_secret_access_key=sk,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, **config))
    def after_call(http_response, model, **kwargs):
        record(f"{name} {model.name}", http_response.status_code, http_response.headers.items(), http_response.content)
    client.meta.events.register("after-call.s3", after_call)
    return client
def attempt(call, **kwargs):
    try:
        call(**kwargs)
    except ClientError:
        pass
def fetch(what, url, method="GET", data=None, headers=None):
    request = urllib.request.Request(url, method=method, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request) as r:
            body = r.read()
            record(what, r.status, r.headers.items(), body)
    except urllib.error.HTTPError as e:
        body = e.read()
        record(what, e.code, e.headers.items(), body)
    try:
        return json.loads(body)
    except ValueError:
        return None
def admin(what, method, path, body=None, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    data = body.encode() if isinstance(body, str) else (json.dumps(body).encode() if body is not None else None)
    return fetch(what, os.environ["ADMIN"] + path, method, data, headers)
"#;

#[test]
fn a_full_session_leaks_no_secret_into_logs_ledger_answers_or_cli_output() {
    let upstream = SeaweedFs::start();
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data = data_dir.to_str().unwrap();
    let mut haystacks = Vec::new();
    let mut secrets = vec![Secret::access_key("the upstream secret", UPSTREAM_SECRET)];

    let mut keys = Vec::new();
    for name in ["alice", "bob"] {
        let run = cli(&["principal", "create", name, "--policy", "full", "--data-dir", data], &[]);
        assert_eq!(run.code, 0, "{}", String::from_utf8_lossy(&run.stderr));
        let issued: Value = serde_json::from_slice(&run.stdout).unwrap();
        let secret_name = format!("{name}'s secret");
        let [stdout, stderr] = run.haystacks();
        // Handing the secret over is what `principal create` is for.
        haystacks.push(Haystack { may_hold: vec![secret_name.clone()], ..stdout });
        haystacks.push(stderr);
        let secret = issued["secret_access_key"].as_str().unwrap().to_owned();
        secrets.push(Secret::access_key(&secret_name, &secret));
        keys.push((issued["access_key_id"].as_str().unwrap().to_owned(), secret));
    }

    let mut proxy = Proxy::start(
        &upstream,
        ProxyOptions {
            data_dir: Some(data_dir.clone()),
            extra_args: vec!["--log-format".into(), "json".into()],
            env: vec![("EGRESS_LOG".into(), "trace".into())],
            ..ProxyOptions::default()
        },
    );
    let token = proxy.admin_token.clone();
    secrets.push(Secret::text("the admin token", &token));
    secrets.push(Secret::checkpoint_key(&fs::read_to_string(data_dir.join("keys/checkpoint.key")).unwrap()));

    let session = python(
        &format!(
            "{RECORDER}\n{}",
            r#"
TOKEN, (AK, SK), (BOB_AK, BOB_SK) = os.environ["TOKEN"], os.environ["ALICE"].split(":"), os.environ["BOB"].split(":")
alice = s3("alice", AK, SK)
alice.create_bucket(Bucket="secrets")
alice.put_object(Bucket="secrets", Key="report.csv", Body=b"a,b\n" * 1000)
alice.get_object(Bucket="secrets", Key="report.csv")
alice.head_object(Bucket="secrets", Key="report.csv")
alice.list_objects_v2(Bucket="secrets")
attempt(alice.get_object, Bucket="secrets", Key="missing")
s3("bob", BOB_AK, BOB_SK).get_object(Bucket="secrets", Key="report.csv")
wrong = s3("wrong secret", AK, wrong_secret(SK))
attempt(wrong.get_object, Bucket="secrets", Key="report.csv")
attempt(wrong.put_object, Bucket="secrets", Key="x", Body=b"x")
attempt(s3("unknown key", "EGRSNOSUCHKEY0000000", SK).get_object, Bucket="secrets", Key="report.csv")
v2 = s3("sigv2", AK, SK, signature_version="s3")
v2.get_object(Bucket="secrets", Key="report.csv")
attempt(s3("sigv2 wrong secret", AK, wrong_secret(SK), signature_version="s3").get_object, Bucket="secrets", Key="report.csv")
v4 = s3("sigv4", AK, SK, signature_version="s3v4")
fetch("presigned v2 GET", v2.generate_presigned_url("get_object", Params={"Bucket": "secrets", "Key": "report.csv"}, ExpiresIn=300))
fetch("presigned v4 GET", v4.generate_presigned_url("get_object", Params={"Bucket": "secrets", "Key": "report.csv"}, ExpiresIn=300))
fetch("presigned v4 PUT", v4.generate_presigned_url("put_object", Params={"Bucket": "secrets", "Key": "up.bin"}, ExpiresIn=300), "PUT", b"uploaded")
bad_v4 = s3("sigv4 wrong secret", AK, wrong_secret(SK), signature_version="s3v4")
fetch("presigned v4 wrong secret", bad_v4.generate_presigned_url("get_object", Params={"Bucket": "secrets", "Key": "report.csv"}, ExpiresIn=300))
bad_v2 = s3("sigv2 wrong secret", AK, wrong_secret(SK), signature_version="s3")
fetch("presigned v2 wrong secret", bad_v2.generate_presigned_url("get_object", Params={"Bucket": "secrets", "Key": "report.csv"}, ExpiresIn=300))
expiring = v4.generate_presigned_url("get_object", Params={"Bucket": "secrets", "Key": "report.csv"}, ExpiresIn=1)
time.sleep(2)
fetch("presigned v4 expired", expiring)
fetch("anonymous GET", os.environ["ENDPOINT"] + "/secrets/report.csv")

admin("healthz", "GET", "/healthz")
admin("readyz", "GET", "/readyz")
admin("principals without token", "GET", "/v1/principals")
admin("principals with a wrong token", "GET", "/v1/principals", token="not-the-token-but-long-enough")
admin("principals with the token's prefix", "GET", "/v1/principals", token=TOKEN[:-1])
admin("list principals", "GET", "/v1/principals", token=TOKEN)
carol = admin("create carol", "POST", "/v1/principals", {"name": "carol", "description": "rotation", "policies": ["read-only"]}, token=TOKEN)
carol2 = admin("rotate carol", "POST", "/v1/principals/carol/keys", token=TOKEN)
admin("create carol again", "POST", "/v1/principals", {"name": "carol"}, token=TOKEN)
admin("create with broken JSON", "POST", "/v1/principals", "{not json", token=TOKEN)
admin("revoke carol's first key", "DELETE", f"/v1/principals/carol/keys/{carol['access_key_id']}", token=TOKEN)
attempt(s3("carol revoked", carol["access_key_id"], carol["secret_access_key"]).get_object, Bucket="secrets", Key="report.csv")
s3("carol rotated", carol2["access_key_id"], carol2["secret_access_key"]).get_object(Bucket="secrets", Key="report.csv")
for path in ["/v1/egress?limit=1000", "/v1/egress/summary?group_by=principal", "/v1/ledger/checkpoints/latest",
             "/v1/ledger/pubkey", "/v1/ledger/export", "/metrics", "/openapi.json"]:
    admin(f"GET {path}", "GET", path, token=TOKEN)
admin("verify", "POST", "/v1/ledger/verify", token=TOKEN)
print(json.dumps({"answers": ANSWERS, "carol": [carol["secret_access_key"], carol2["secret_access_key"]]}))
"#
        ),
        &[
            ("ENDPOINT", &proxy.endpoint()),
            ("ADMIN", &format!("http://{}", proxy.admin_addr)),
            ("TOKEN", &token),
            ("ALICE", &format!("{}:{}", keys[0].0, keys[0].1)),
            ("BOB", &format!("{}:{}", keys[1].0, keys[1].1)),
        ],
    );
    // The session did what it meant to (else an empty search proves nothing).
    for (what, status, code) in [
        ("alice GetObject", 200, ""),
        ("sigv2 GetObject", 200, ""),
        ("wrong secret GetObject", 403, "SignatureDoesNotMatch"),
        ("wrong secret PutObject", 403, "SignatureDoesNotMatch"),
        ("sigv2 wrong secret GetObject", 403, "SignatureDoesNotMatch"),
        ("unknown key GetObject", 403, "InvalidAccessKeyId"),
        ("presigned v2 GET", 200, ""),
        ("presigned v4 GET", 200, ""),
        ("presigned v4 PUT", 200, ""),
        ("presigned v4 wrong secret", 403, "SignatureDoesNotMatch"),
        ("presigned v2 wrong secret", 403, "SignatureDoesNotMatch"),
        ("presigned v4 expired", 403, "AccessDenied"),
        ("anonymous GET", 403, "AccessDenied"),
        ("principals without token", 401, ""),
        ("principals with the token's prefix", 401, ""),
        ("create carol", 201, ""),
        ("carol revoked GetObject", 403, "InvalidAccessKeyId"),
        ("carol rotated GetObject", 200, ""),
        ("verify", 200, ""),
    ] {
        assert_eq!(outcome(&session, what), (status, code.to_owned()), "{what}");
    }
    for (i, secret) in session["carol"].as_array().unwrap().iter().enumerate() {
        secrets.push(Secret::access_key(&format!("carol's secret #{}", i + 1), secret.as_str().unwrap()));
    }
    for mut answer in answers(&session) {
        // Issuing a key over the API hands over its secret, once.
        if answer.name.starts_with("answer to create carol (") {
            answer.may_hold.push("carol's secret #1".to_owned());
        } else if answer.name.starts_with("answer to rotate carol (") {
            answer.may_hold.push("carol's secret #2".to_owned());
        }
        haystacks.push(answer);
    }

    proxy.stop();
    haystacks.push(haystack("the proxy's log", proxy.log()));
    assert!(proxy.log().contains(r#""level":"TRACE""#), "the log is as verbose as it gets");

    // The offline commands, with every secret in their environment.
    let upstream_url = upstream.endpoint();
    let token_file = dir.path().join(format!("admin-token-{}", proxy.addr.port()));
    let env = [
        ("AWS_ACCESS_KEY_ID", UPSTREAM_KEY),
        ("AWS_SECRET_ACCESS_KEY", UPSTREAM_SECRET),
        ("EGRESS_ADMIN_TOKEN", &token),
    ];
    let token_file = token_file.to_str().unwrap();
    let mut runs = vec![
        cli(&["config", "check", "--data-dir", data, "--upstream", &upstream_url], &env),
        cli(&["config", "check", "--json", "--data-dir", data, "--upstream", &upstream_url], &env),
        cli(
            &["config", "check", "--data-dir", data, "--upstream", &upstream_url, "--admin-token-file", token_file],
            &env,
        ),
        cli(&["config", "check", "--data-dir", data], &env),
        cli(&["serve", "--help"], &env),
        cli(&["principal", "list", "--data-dir", data], &env),
        cli(&["ledger", "verify", "--data-dir", data], &env),
        cli(&["ledger", "verify", "--json", "--data-dir", data], &env),
        cli(&["ledger", "export", "--data-dir", data], &env),
        cli(&["ledger", "export", "--format", "csv", "--data-dir", data], &env),
        cli(&["ledger", "pubkey", "--data-dir", data], &env),
    ];
    runs.push(cli(&["principal", "revoke", &keys[1].0, "--data-dir", data], &env));
    for run in &runs {
        assert!(
            run.code == 0 || run.what.contains("check"),
            "`{}` failed: {}",
            run.what,
            String::from_utf8_lossy(&run.stderr)
        );
        haystacks.extend(run.haystacks());
    }
    assert!(runs[0].stdout.windows(3).any(|w| w == b"***"), "config check masks the secrets it knows");
    // Secrets pasted into a config file by mistake, under keys it does not
    // have: the complaint names the line and the key, never the value.
    for (name, text) in [
        ("misplaced.toml", format!("upstream = \"{upstream_url}\"\naws_secret_access_key = \"{UPSTREAM_SECRET}\"\n")),
        ("unquoted.toml", format!("upstream = \"{upstream_url}\"\nadmin_token = {token}\n")),
    ] {
        let file = dir.path().join(name);
        fs::write(&file, text).unwrap();
        let file = file.to_str().unwrap();
        for args in [vec!["config", "check", "--config", file], vec!["serve", "--config", file, "--data-dir", data]] {
            let run = cli(&args, &[]);
            assert_eq!(run.code, 1, "`{}` refuses the file", run.what);
            let said = String::from_utf8_lossy(&[run.stdout.as_slice(), &run.stderr].concat()).into_owned();
            let named = said.contains("line 2") || said.contains("unknown key `aws_secret_access_key`");
            assert!(named, "`{}` names the line or the key: {said}", run.what);
            haystacks.extend(run.haystacks());
        }
    }

    haystacks.extend(files_under(&data_dir, &["state", "keys/checkpoint.key"]));
    let leaks = find_leaks(&haystacks, &secrets);
    assert!(leaks.is_empty(), "secrets where they must not be:\n{}", leaks.join("\n"));
    assert_private(&data_dir, &["keys/checkpoint.key"]);

    // The search would have caught a leak: the same log with the key from
    // checkpoint.key pasted into it.
    let key_file = fs::read_to_string(data_dir.join("keys/checkpoint.key")).unwrap();
    let mut planted = haystack("the proxy's log, with the checkpoint key planted", proxy.log());
    planted.bytes.extend(key_file.trim().splitn(5, '+').nth(4).unwrap().as_bytes());
    let found = find_leaks(&[planted], &secrets);
    assert_eq!(found.len(), 1, "{found:?}");
}

/// `egress-proxy serve` with no upstream and no admin token: the embedded
/// dev store, and every secret generated on first start.
struct EmbeddedProxy {
    child: Child,
    addr: SocketAddr,
    admin_addr: SocketAddr,
    log: PathBuf,
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

impl EmbeddedProxy {
    fn start(data_dir: &Path, log: PathBuf) -> EmbeddedProxy {
        let (addr, admin_addr) = (free_addr(), free_addr());
        let log_file = fs::File::create(&log).unwrap();
        let child = Command::new(egress_e2e::bin())
            .args(["serve", "--listen", &addr.to_string(), "--admin-listen", &admin_addr.to_string()])
            .args(["--data-dir", data_dir.to_str().unwrap()])
            .env("EGRESS_LOG", "trace")
            .env("EGRESS_LOG_FORMAT", "json")
            .env_remove("EGRESS_ADMIN_TOKEN")
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap();
        let proxy = EmbeddedProxy { child, addr, admin_addr, log };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !(data_dir.join("default-principal.json").exists()
            && TcpStream::connect(addr).is_ok()
            && TcpStream::connect(admin_addr).is_ok())
        {
            assert!(Instant::now() < deadline, "the embedded proxy did not come up:\n{}", proxy.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        proxy
    }

    fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, and wait for a clean exit (shutdown logs included).
    fn stop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "exited with {status}:\n{}", self.log());
                return;
            }
            assert!(Instant::now() < deadline, "did not stop within 30 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EmbeddedProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_first_start_keeps_its_generated_secrets_in_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut proxy = EmbeddedProxy::start(&data_dir, dir.path().join("serve.log"));
    let default_key: Value =
        serde_json::from_slice(&fs::read(data_dir.join("default-principal.json")).unwrap()).unwrap();
    let internal: Value =
        serde_json::from_slice(&fs::read(data_dir.join("keys/embedded-upstream.json")).unwrap()).unwrap();
    let token = fs::read_to_string(data_dir.join("admin.token")).unwrap().trim().to_owned();
    let secret = default_key["secret_access_key"].as_str().unwrap();
    let secrets = vec![
        Secret::access_key("the default principal's secret", secret),
        Secret::access_key("the embedded store's secret", internal["secret_access_key"].as_str().unwrap()),
        Secret::text("the generated admin token", &token),
        Secret::checkpoint_key(&fs::read_to_string(data_dir.join("keys/checkpoint.key")).unwrap()),
    ];

    let session = python(
        &format!(
            "{RECORDER}\n{}",
            r#"
AK, SK, TOKEN = os.environ["AK"], os.environ["SK"], os.environ["TOKEN"]
me = s3("default", AK, SK)
me.create_bucket(Bucket="demo")
me.put_object(Bucket="demo", Key="hello.txt", Body=b"hello")
me.get_object(Bucket="demo", Key="hello.txt")
attempt(s3("wrong secret", AK, wrong_secret(SK)).get_object, Bucket="demo", Key="hello.txt")
v4 = s3("sigv4", AK, SK, signature_version="s3v4")
fetch("presigned v4 GET", v4.generate_presigned_url("get_object", Params={"Bucket": "demo", "Key": "hello.txt"}, ExpiresIn=60))
admin("principals without token", "GET", "/v1/principals")
admin("list principals", "GET", "/v1/principals", token=TOKEN)
print(json.dumps({"answers": ANSWERS}))
"#
        ),
        &[
            ("ENDPOINT", &format!("http://{}", proxy.addr)),
            ("ADMIN", &format!("http://{}", proxy.admin_addr)),
            ("AK", default_key["access_key_id"].as_str().unwrap()),
            ("SK", secret),
            ("TOKEN", &token),
        ],
    );
    for (what, status, code) in [
        ("default GetObject", 200, ""),
        ("wrong secret GetObject", 403, "SignatureDoesNotMatch"),
        ("presigned v4 GET", 200, ""),
        ("principals without token", 401, ""),
        ("list principals", 200, ""),
    ] {
        assert_eq!(outcome(&session, what), (status, code.to_owned()), "{what}");
    }
    proxy.stop();
    let log = proxy.log();
    assert!(log.contains("EMBEDDED DEV STORE") && log.contains("admin.token"), "the banner is in the log:\n{log}");

    let mut haystacks = answers(&session);
    haystacks.push(haystack("the proxy's log (banner included)", log));
    haystacks.extend(files_under(
        &data_dir,
        &["state", "keys/checkpoint.key", "keys/embedded-upstream.json", "admin.token", "default-principal.json"],
    ));
    let leaks = find_leaks(&haystacks, &secrets);
    assert!(leaks.is_empty(), "secrets where they must not be:\n{}", leaks.join("\n"));
    assert_private(
        &data_dir,
        &["keys/checkpoint.key", "keys/embedded-upstream.json", "admin.token", "default-principal.json"],
    );
}

#[test]
fn the_leak_search_finds_every_form_of_a_planted_secret() {
    let text = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let key_file = format!(
        "PRIVATE+KEY+egress-proxy@example+cce35119+{}\n",
        STANDARD.encode([[1_u8].as_slice(), &[7; 32]].concat())
    );
    let secrets = [Secret::access_key("a secret key", text), Secret::checkpoint_key(&key_file)];
    for secret in &secrets {
        for (form, bytes) in &secret.forms {
            let mut planted = b"{\"level\":\"DEBUG\",\"fields\":{\"message\":\"".to_vec();
            planted.extend(bytes);
            planted.extend(b"\"}}\n");
            let found = find_leaks(&[haystack("a log line", planted.clone())], &secrets);
            assert!(
                found.iter().any(|l| l.contains(&secret.name) && l.contains(form)),
                "{} ({form}) not found",
                secret.name
            );
            let allowed = Haystack { name: "its own file".into(), bytes: planted, may_hold: vec![secret.name.clone()] };
            assert!(
                find_leaks(&[allowed], &[Secret { name: secret.name.clone(), forms: vec![(form, bytes.clone())] }])
                    .is_empty()
            );
        }
    }
    let clean = haystack("a clean line", "{\"access_key_id\":\"EGRSABCDEFGHIJKLMNOP\",\"secret_access_key\":\"***\"}");
    assert!(find_leaks(&[clean], &secrets).is_empty());
}
