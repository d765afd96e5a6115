//! `ledger export --format parquet` read by `DuckDB`: the queries
//! `docs/ARCHIVE.md` gives, taken from the doc as written, answer what
//! `GET /v1/egress/summary` answers for the same ledger and time range,
//! principal by principal (no principal included).

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};
use serde_json::{Value, json};

/// What the doc's queries name, replaced by this test's own.
pub(crate) const DOC_ARCHIVE_GLOB: &str = "s3://BUCKET/PREFIX/ORIGIN/events/date=*/*.parquet";
pub(crate) const DOC_EXPORT_FILE: &str = "events.parquet";
pub(crate) const DOC_SINCE: &str = "2026-11-01T00:00:00Z";
pub(crate) const DOC_UNTIL: &str = "2026-12-01T00:00:00Z";
pub(crate) const DOC_FIRST_DATE: &str = "DATE '2026-11-01'";
pub(crate) const DOC_LAST_DATE: &str = "DATE '2026-11-30'";

const PRELUDE: &str = r#"
import os, json, boto3, botocore, urllib.request, urllib.error
from botocore.config import Config
ENDPOINT = os.environ["ENDPOINT"]
KEYS = json.loads(os.environ["KEYS"])
def client(name):
    ak, sk = KEYS.get(name, ("EGRSNOSUCHKEY0000000", "x" * 40))
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1",
        aws_access_key_id=ak, aws_secret_access_key=sk,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
def attempt(call, **kw):
    try:
        out = call(**kw)
        if "Body" in out:
            out["Body"].read()
        return out["ResponseMetadata"]["HTTPStatusCode"]
    except botocore.exceptions.ClientError as e:
        return e.response["ResponseMetadata"]["HTTPStatusCode"]
"#;

fn run(proxy: &Proxy, body: &str) -> Value {
    let keys: serde_json::Map<String, Value> =
        proxy.keys.iter().map(|k| (k.principal.clone(), json!([k.access_key_id, k.secret_access_key]))).collect();
    let keys = Value::Object(keys).to_string();
    python(&format!("{PRELUDE}\n{body}"), &[("ENDPOINT", &proxy.endpoint()), ("KEYS", &keys)])
}

/// The `sql` blocks of `docs/ARCHIVE.md` that read Parquet: (archive, export).
pub(crate) fn documented_queries() -> (String, String) {
    let doc = fs::read_to_string(egress_e2e::repo_root().join("docs/ARCHIVE.md")).unwrap();
    let blocks: Vec<&str> = doc
        .split("```sql\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .filter(|b| b.contains("read_parquet("))
        .collect();
    let find = |needle: &str| {
        let found: Vec<&&str> = blocks.iter().filter(|b| b.contains(needle)).collect();
        assert_eq!(found.len(), 1, "docs/ARCHIVE.md should have one DuckDB query over {needle}: {blocks:#?}");
        (*found[0]).to_owned()
    };
    let (archive, export) = (find(DOC_ARCHIVE_GLOB), find(&format!("'{DOC_EXPORT_FILE}'")));
    for (query, needles) in
        [(&archive, &[DOC_SINCE, DOC_UNTIL, DOC_FIRST_DATE, DOC_LAST_DATE][..]), (&export, &[DOC_SINCE, DOC_UNTIL][..])]
    {
        for needle in needles {
            assert!(query.contains(needle), "the documented query no longer names {needle}: {query}");
        }
    }
    (archive, export)
}

/// Runs a query with `DuckDB`; its rows as `[principal, requests, bytes_sent]`.
pub(crate) fn duckdb(query: &str) -> Value {
    python(
        r#"
import os, json, duckdb
rows = duckdb.connect().execute(os.environ["QUERY"]).fetchall()
print(json.dumps([[p, int(r), int(b)] for p, r, b in rows]))
"#,
        &[("QUERY", query)],
    )
}

/// `/v1/egress/summary?group_by=principal` in the same shape.
pub(crate) fn summary(proxy: &Proxy, range: Option<(&str, &str)>) -> Value {
    let mut path = "/v1/egress/summary?group_by=principal".to_owned();
    if let Some((since, until)) = range {
        let _ = write!(path, "&since={since}&until={until}");
    }
    let body: Value = serde_json::from_str(&proxy.admin_get(&path)).unwrap();
    let groups = body["groups"].as_array().unwrap_or_else(|| panic!("{body}"));
    groups.iter().map(|g| json!([g["key"], g["requests"], g["bytes_sent"]])).collect()
}

/// Waits until every start in the ledger has its end (ends are written as
/// response bodies finish).
fn wait_for_ends(proxy: &Proxy) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let lines = proxy.ledger();
        let starts = lines.iter().filter(|l| l["kind"] == "start").count();
        let ends = lines.iter().filter(|l| l["kind"] == "end").count();
        if starts == ends {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{starts} starts but {ends} ends");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

pub(crate) fn sql_path(path: &Path) -> String {
    path.display().to_string().replace('\'', "''")
}

#[test]
fn duckdb_over_the_export_gives_the_summary_per_principal() {
    let upstream = SeaweedFs::start();
    let mut proxy = Proxy::start(
        &upstream,
        ProxyOptions { principals: vec!["alice".into(), "bob".into(), "carol".into()], ..ProxyOptions::default() },
    );
    let setup = run(
        &proxy,
        r#"
s3 = client("alice")
s3.create_bucket(Bucket="data")
s3.put_object(Bucket="data", Key="datasets/part-00000.parquet", Body=bytes(range(256)) * 4096)
s3.put_object(Bucket="data", Key="datasets/part-00001.parquet", Body=b"p" * 300000)
s3.put_object(Bucket="data", Key="secret/keys.txt", Body=b"s" * 1000)
print(json.dumps("ok"))
"#,
    );
    assert_eq!(setup, "ok");
    let (status, answer) = proxy.admin_send(
        "PUT",
        "/v1/policies/no-secret",
        Some(&json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::data/secret/*"}]})),
    );
    assert_eq!(status, 200, "{answer}");
    let (status, answer) =
        proxy.admin_send("PUT", "/v1/principals/carol/policies", Some(&json!({ "policies": ["full", "no-secret"] })));
    assert_eq!(status, 200, "{answer}");
    let before = proxy.ledger().len();

    let statuses = run(
        &proxy,
        r#"
alice, bob, carol, nobody = client("alice"), client("bob"), client("carol"), client("nobody")
r = {}
r["alice_full"] = attempt(alice.get_object, Bucket="data", Key="datasets/part-00000.parquet")
r["alice_range"] = attempt(alice.get_object, Bucket="data", Key="datasets/part-00000.parquet", Range="bytes=1000-1999")
r["alice_missing"] = attempt(alice.get_object, Bucket="data", Key="datasets/part-99999.parquet")
for i in range(3):
    r[f"bob_range_{i}"] = attempt(bob.get_object, Bucket="data", Key="datasets/part-00001.parquet",
                                  Range=f"bytes={i * 100000}-{i * 100000 + 99999}")
r["bob_head"] = attempt(bob.head_object, Bucket="data", Key="datasets/part-00001.parquet")
r["bob_list"] = attempt(bob.list_objects_v2, Bucket="data", Prefix="datasets/")
r["carol_denied"] = attempt(carol.get_object, Bucket="data", Key="secret/keys.txt")
r["carol_full"] = attempt(carol.get_object, Bucket="data", Key="datasets/part-00001.parquet")
r["unknown_key"] = attempt(nobody.get_object, Bucket="data", Key="datasets/part-00000.parquet")
try:
    urllib.request.urlopen(ENDPOINT + "/data/datasets/part-00000.parquet")
    r["unsigned"] = 200
except urllib.error.HTTPError as e:
    r["unsigned"] = e.code
r["alice_last"] = attempt(alice.get_object, Bucket="data", Key="datasets/part-00001.parquet", Range="bytes=0-9")
print(json.dumps(r))
"#,
    );
    assert_eq!(
        statuses,
        json!({"alice_full": 200, "alice_range": 206, "alice_missing": 404,
               "bob_range_0": 206, "bob_range_1": 206, "bob_range_2": 206, "bob_head": 200, "bob_list": 200,
               "carol_denied": 403, "carol_full": 200, "unknown_key": 403, "unsigned": 403, "alice_last": 206})
    );
    wait_for_ends(&proxy);

    // The range: from the first request after the setup (inclusive) to the
    // last one (exclusive: it is left out of both).
    let lines = proxy.ledger();
    let starts: Vec<&Value> = lines[before..].iter().filter(|l| l["kind"] == "start").collect();
    assert_eq!(starts.len(), 13);
    let since = starts[0]["ts"].as_str().unwrap().to_owned();
    let until = starts[12]["ts"].as_str().unwrap().to_owned();
    assert!(since < until, "{since} {until}");
    let in_range = summary(&proxy, Some((&since, &until)));
    let everything = summary(&proxy, None);
    let principals: Vec<&Value> = in_range.as_array().unwrap().iter().map(|g| &g[0]).collect();
    // The unknown key and the unsigned request (no policy is attached to
    // `anonymous`) have no principal: a group of their own.
    assert_eq!(principals, [&Value::Null, &json!("alice"), &json!("bob"), &json!("carol")]);
    assert_ne!(in_range, everything, "the range leaves out the setup and the last request");

    // The CLI refuses Parquet to stdout.
    let to_stdout = egress_e2e::run_in(&proxy.data_dir, &["ledger", "export", "--format", "parquet"]);
    assert_eq!(to_stdout.code, 64, "{to_stdout:?}");
    assert!(to_stdout.stderr.contains("--output FILE"), "{}", to_stdout.stderr);

    proxy.stop();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("events.parquet");
    let export = egress_e2e::run_in(
        &proxy.data_dir,
        &["ledger", "export", "--format", "parquet", "--output", file.to_str().unwrap()],
    );
    assert_eq!(export.code, 0, "{export:?}");
    let all_starts = proxy.ledger().iter().filter(|l| l["kind"] == "start").count();
    assert_eq!(export.stdout.trim(), format!("wrote {all_starts} requests to {}", file.display()));

    let (archive_query, export_query) = documented_queries();
    let export_query = |since: &str, until: &str| {
        export_query.replace(DOC_EXPORT_FILE, &sql_path(&file)).replace(DOC_SINCE, since).replace(DOC_UNTIL, until)
    };
    assert_eq!(duckdb(&export_query(&since, &until)), in_range);
    assert_eq!(duckdb(&export_query("1970-01-01T00:00:00Z", "2100-01-01T00:00:00Z")), everything);

    // The archive's layout, made by hand from the export: one date folder.
    let date = &since[..10];
    let folder = work.path().join("events").join(format!("date={date}"));
    fs::create_dir_all(&folder).unwrap();
    fs::copy(&file, folder.join("export.parquet")).unwrap();
    let glob = work.path().join("events/date=*/*.parquet");
    let archive_query = archive_query
        .replace(DOC_ARCHIVE_GLOB, &sql_path(&glob))
        .replace(DOC_SINCE, &since)
        .replace(DOC_UNTIL, &until)
        .replace(DOC_FIRST_DATE, &format!("DATE '{date}'"))
        .replace(DOC_LAST_DATE, &format!("DATE '{}'", &until[..10]));
    assert_eq!(duckdb(&archive_query), in_range);

    // A row holds what its lines say.
    let denied = python(
        r#"
import os, json, duckdb
row = duckdb.connect().execute(f"""
    SELECT operation, status, outcome, error_code, decision_effect, range, start_hash, end_seq
    FROM read_parquet('{os.environ["FILE"]}') WHERE principal = 'carol' AND key = 'secret/keys.txt'
""").fetchone()
print(json.dumps(list(row)))
"#,
        &[("FILE", &sql_path(&file))],
    );
    let start = proxy
        .ledger()
        .into_iter()
        .find(|l| l["kind"] == "start" && l["key"] == "secret/keys.txt" && l["principal"] == "carol")
        .unwrap();
    let (_, end) = proxy.event(start["req"].as_str().unwrap());
    assert_eq!(
        denied.as_array().unwrap()[..5],
        [json!("GetObject"), json!(403), json!("denied"), json!("AccessDenied"), json!("explicit_deny")]
    );
    assert_eq!(denied[5], Value::Null);
    assert_eq!(denied[7], end["seq"]);
    let segment = fs::read_to_string(proxy.data_dir.join("ledger/segment-00000000000000000000.jsonl")).unwrap();
    let start_line = segment.lines().find(|l| l.contains(start["req"].as_str().unwrap())).unwrap();
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(start_line.as_bytes()));
    assert_eq!(denied[6], hash.as_str(), "start_hash is the SHA-256 of the start line");
}
