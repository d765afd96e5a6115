//! The AWS CLI (v1, from the test venv) through the proxy to a real S3
//! server (`SeaweedFS`, `SigV4` enforced): `s3 cp` of a 20 MiB file both ways
//! (multipart upload, parallel ranged download), `s3 sync` of a directory
//! tree up and down, `s3 ls`. Files come back byte for byte, and the ledger
//! holds every request once, complete, with the bytes the CLI received.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use egress_e2e::pseudo_random;
use egress_e2e::servers::{Key, Proxy, ProxyOptions, SeaweedFs, venv_bin};
use serde_json::Value;

/// Runs `aws --endpoint-url <proxy> ARGS...` with nothing of the machine's
/// AWS setup: a fresh HOME, empty config and credentials files, and only
/// the variables set here.
struct Cli {
    endpoint: String,
    key: Key,
    home: tempfile::TempDir,
}

impl Cli {
    fn new(proxy: &Proxy) -> Cli {
        let home = tempfile::tempdir().expect("cli home");
        std::fs::write(home.path().join("config"), "").expect("empty config");
        std::fs::write(home.path().join("credentials"), "").expect("empty credentials");
        Cli { endpoint: proxy.endpoint(), key: proxy.key().clone(), home }
    }

    fn run(&self, args: &[&str]) -> String {
        let home = self.home.path();
        let path =
            format!("{}:/usr/local/bin:/usr/bin:/bin", venv_bin("python3").parent().expect("venv bin").display());
        let out = Command::new(venv_bin("aws"))
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .args(args)
            .env_clear()
            .env("PATH", path)
            .env("HOME", home)
            .env("LANG", "C.UTF-8")
            .env("AWS_CONFIG_FILE", home.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", home.join("credentials"))
            .env("AWS_ACCESS_KEY_ID", &self.key.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &self.key.secret_access_key)
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_MAX_ATTEMPTS", "1")
            .output()
            .expect("run aws");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "aws {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }
}

/// Every file under `root`, by path relative to it, with its bytes.
fn tree(root: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).expect("under root").to_str().expect("utf-8").to_owned();
                out.insert(rel, std::fs::read(&path).expect("read file"));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Every event of the ledger so far; asserts each start has its end, the
/// outcome is complete, and the principal is the CLI's.
fn all_events_complete(proxy: &Proxy) -> Vec<(Value, Value)> {
    let events = proxy.events_where(|_| true);
    assert!(!events.is_empty());
    let starts = proxy.ledger().iter().filter(|l| l["kind"] == "start").count();
    let ends = proxy.ledger().iter().filter(|l| l["kind"] == "end").count();
    assert_eq!((starts, ends), (events.len(), events.len()), "one end for every start, nothing else");
    for (start, end) in &events {
        assert_eq!(start["principal"], proxy.key().principal.as_str(), "{start}");
        assert_eq!(start["access_key_id"], proxy.key().access_key_id.as_str(), "{start}");
        assert_eq!(end["outcome"], "complete", "{start}\n{end}");
        let status = end["status"].as_u64().expect("status");
        assert!((200..300).contains(&status), "{start}\n{end}");
        assert!(end["bytes_sent"].is_u64(), "{end}");
    }
    events
}

fn of<'a>(events: &'a [(Value, Value)], operation: &str, key: &str) -> Vec<&'a (Value, Value)> {
    events.iter().filter(|(s, _)| s["operation"] == operation && s["bucket"] == "clidata" && s["key"] == key).collect()
}

#[test]
fn cp_of_a_20_mib_file_is_multipart_both_ways_and_recorded() {
    let upstream = SeaweedFs::start();
    let proxy =
        Proxy::start(&upstream, ProxyOptions { principals: vec!["cli-user".into()], ..ProxyOptions::default() });
    let cli = Cli::new(&proxy);
    let work = tempfile::tempdir().expect("work dir");
    let size = 20 * 1024 * 1024 + 4321;
    let data = pseudo_random(size, 7);
    let src = work.path().join("big file.bin");
    std::fs::write(&src, &data).expect("write source");

    cli.run(&["s3", "mb", "s3://clidata"]);
    let up = cli.run(&["s3", "cp", "--no-progress", src.to_str().unwrap(), "s3://clidata/models/big file.bin"]);
    assert!(up.contains("upload:"), "{up}");
    let dst = work.path().join("downloaded.bin");
    let down = cli.run(&["s3", "cp", "--no-progress", "s3://clidata/models/big file.bin", dst.to_str().unwrap()]);
    assert!(down.contains("download:"), "{down}");
    let got = std::fs::read(&dst).expect("downloaded file");
    assert_eq!(got.len(), size);
    assert!(got == data, "the downloaded file differs from the uploaded one");

    let listing = cli.run(&["s3", "ls", "s3://clidata/models/"]);
    assert!(listing.contains(&format!("{size} big file.bin")), "{listing}");

    let events = all_events_complete(&proxy);
    let key = "models/big file.bin";
    let create = events.iter().filter(|(s, _)| s["operation"] == "CreateBucket" && s["bucket"] == "clidata").count();
    assert_eq!(create, 1);
    assert_eq!(of(&events, "CreateMultipartUpload", key).len(), 1);
    let parts = of(&events, "UploadPart", key);
    assert_eq!(parts.len(), 3, "20 MiB in 8 MiB parts");
    assert!(parts.iter().all(|(s, e)| s["method"] == "PUT" && e["status"] == 200 && e["bytes_sent"] == 0), "{parts:?}");
    assert_eq!(of(&events, "CompleteMultipartUpload", key).len(), 1);
    assert_eq!(of(&events, "PutObject", key).len(), 0, "a 20 MiB cp is multipart");

    let gets = of(&events, "GetObject", key);
    assert!(gets.len() >= 3, "a parallel ranged download: {gets:?}");
    let total: u64 = gets.iter().map(|(_, e)| e["bytes_sent"].as_u64().unwrap()).sum();
    assert_eq!(total, size as u64, "the GETs together delivered the object exactly once");
    for (start, end) in &gets {
        assert!(start["range"].as_str().is_some_and(|r| r.starts_with("bytes=")), "{start}");
        assert_eq!(end["status"], 206, "{end}");
        assert_eq!(end["object_size"], size, "{end}");
    }
    assert!(!of(&events, "HeadObject", key).is_empty(), "the download starts with a HEAD");
    let lists: Vec<_> = events.iter().filter(|(s, _)| s["operation"] == "ListObjectsV2").collect();
    assert_eq!(lists.len(), 1, "{lists:?}");
    assert!(lists[0].1["bytes_sent"].as_u64().unwrap() > 100, "the listing's XML is counted: {:?}", lists[0]);

    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}

#[test]
fn sync_up_and_down_and_ls_are_recorded() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(&upstream, ProxyOptions { principals: vec!["syncer".into()], ..ProxyOptions::default() });
    let cli = Cli::new(&proxy);
    let work = tempfile::tempdir().expect("work dir");
    let up_dir = work.path().join("up");
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("a.txt", b"hello from the aws cli\n".to_vec()),
        ("empty.txt", Vec::new()),
        ("nested/b.bin", pseudo_random(300_001, 11)),
        ("nested/deeper/c d+e.txt", pseudo_random(70_000, 13)),
        ("nested/deeper/unicode-\u{e9}\u{fc}.bin", pseudo_random(1_234_567, 17)),
    ];
    for (name, data) in &files {
        let path = up_dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).expect("mkdir");
        std::fs::write(&path, data).expect("write");
        // Older than any upload: `sync` compares times at one-second
        // resolution and re-uploads a file written in the upload's second.
        let an_hour_ago = std::time::SystemTime::now() - std::time::Duration::from_hours(1);
        std::fs::File::options().write(true).open(&path).and_then(|f| f.set_modified(an_hour_ago)).expect("set mtime");
    }

    cli.run(&["s3", "mb", "s3://clidata"]);
    // The empty file goes up alone, before the sync: the CLI's vendored
    // botocore (awscli 1.46, botocore 1.43) keeps the status line of a final
    // response that came instead of `100 Continue` (as SeaweedFS and the
    // proxy both answer a zero-length PUT) and reuses it for the next
    // `Expect` request on that connection, which then reads its body until
    // the server closes the idle connection (30 s). The standalone botocore
    // 1.44 resets it. Then `sync` skips it: same size, older here.
    let empty = up_dir.join("empty.txt");
    cli.run(&["s3", "cp", "--no-progress", empty.to_str().unwrap(), "s3://clidata/tree/empty.txt"]);
    let up = cli.run(&["s3", "sync", "--no-progress", up_dir.to_str().unwrap(), "s3://clidata/tree/"]);
    assert_eq!(up.matches("upload:").count(), files.len() - 1, "{up}");
    assert!(!up.contains("empty.txt"), "{up}");
    let down_dir: PathBuf = work.path().join("down");
    let down = cli.run(&["s3", "sync", "--no-progress", "s3://clidata/tree/", down_dir.to_str().unwrap()]);
    assert_eq!(down.matches("download:").count(), files.len(), "{down}");
    let expected: BTreeMap<String, Vec<u8>> = files.iter().map(|(n, d)| ((*n).to_owned(), d.clone())).collect();
    let got = tree(&down_dir);
    assert_eq!(got.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    for (name, data) in &expected {
        assert!(&got[name] == data, "{name} differs after the round trip");
    }
    // A second sync finds nothing to do: sizes match, the local files are older.
    let again = cli.run(&["s3", "sync", "--no-progress", up_dir.to_str().unwrap(), "s3://clidata/tree/"]);
    assert!(!again.contains("upload:"), "{again}");

    let buckets = cli.run(&["s3", "ls"]);
    assert!(buckets.lines().any(|l| l.ends_with(" clidata")), "{buckets}");
    let recursive = cli.run(&["s3", "ls", "--recursive", "s3://clidata/"]);
    for (name, data) in &files {
        assert!(recursive.contains(&format!("{} tree/{name}", data.len())), "{name} in {recursive}");
    }

    // Paged listing: continuation tokens go through the proxy, signed.
    let lists =
        |proxy: &Proxy| proxy.events_where(|s| s["operation"] == "ListObjectsV2" && s["bucket"] == "clidata").len();
    let before = lists(&proxy);
    assert!(before >= 4, "sync up, sync down, sync again and ls each list: {before}");
    let paged = cli.run(&["s3", "ls", "--recursive", "--page-size", "2", "s3://clidata/"]);
    assert_eq!(paged, recursive, "the paged listing is the same listing");
    assert_eq!(lists(&proxy) - before, 3, "five keys in pages of two");

    let events = all_events_complete(&proxy);
    for (name, data) in &files {
        let key = format!("tree/{name}");
        let puts = of(&events, "PutObject", &key);
        assert_eq!(puts.len(), 1, "{key}: {puts:?}");
        assert_eq!(puts[0].1["status"], 200);
        let gets = of(&events, "GetObject", &key);
        assert_eq!(gets.len(), 1, "{key}: a small file is one GET: {gets:?}");
        let (_, end) = gets[0];
        assert_eq!(end["status"], 200, "{end}");
        assert_eq!(end["bytes_sent"], data.len(), "{key}: {end}");
        assert_eq!(end["object_size"], data.len(), "{key}: {end}");
    }
    let list_buckets: Vec<_> = events.iter().filter(|(s, _)| s["operation"] == "ListBuckets").collect();
    assert_eq!(list_buckets.len(), 1, "{list_buckets:?}");
    assert_eq!(list_buckets[0].0["bucket"], Value::Null);
    assert!(list_buckets[0].1["bytes_sent"].as_u64().unwrap() > 0);

    // A recursive delete: one DeleteObject per key.
    let removed = cli.run(&["s3", "rm", "--recursive", "s3://clidata/tree/"]);
    assert_eq!(removed.matches("delete:").count(), files.len(), "{removed}");
    let after = cli.run(&["s3", "ls", "--recursive", "s3://clidata/"]);
    assert_eq!(after.trim(), "", "nothing left: {after}");
    let events = all_events_complete(&proxy);
    for (name, _) in &files {
        let deletes = of(&events, "DeleteObject", &format!("tree/{name}"));
        assert_eq!(deletes.len(), 1, "{name}: {deletes:?}");
        assert_eq!((deletes[0].1["status"].as_u64(), deletes[0].1["bytes_sent"].as_u64()), (Some(204), Some(0)));
    }

    let verify = egress_e2e::run_in(&proxy.data_dir, &["ledger", "verify"]);
    assert_eq!(verify.code, 0, "{verify:?}");
}
