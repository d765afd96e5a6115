//! Who may read what: IAM policies attached to principals, enforced by the
//! running proxy with real clients (boto3), every decision on the record,
//! nothing refused ever reaching the upstream (counted at a relay in front
//! of SeaweedFS); and egress limits (byte quotas, bandwidth, request rate)
//! and anonymous access.

use std::time::Instant;

use egress_e2e::relay::Relay;
use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};
use serde_json::{Value, json};

/// boto3 clients for a principal, and `attempt`, which runs one call and
/// answers its status, error code, our request id and what it returned.
const PRELUDE: &str = r#"
import os, json, time, boto3, botocore, http.client, urllib.parse
from botocore.config import Config
ENDPOINT = os.environ["ENDPOINT"]
def client(ak, sk):
    return boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1",
        aws_access_key_id=ak, aws_secret_access_key=sk,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
def attempt(call, **kw):
    try:
        out = call(**kw)
        meta = out["ResponseMetadata"]
        value = None
        if "Body" in out:
            value = len(out["Body"].read())
        elif "Contents" in out or "KeyCount" in out:
            value = [o["Key"] for o in out.get("Contents", [])]
        return {"status": meta["HTTPStatusCode"], "code": None,
                "req": meta["HTTPHeaders"].get("x-egress-request-id"), "value": value}
    except botocore.exceptions.ClientError as e:
        meta = e.response["ResponseMetadata"]
        return {"status": meta["HTTPStatusCode"], "code": e.response["Error"]["Code"],
                "message": e.response["Error"].get("Message"),
                "req": meta["HTTPHeaders"].get("x-egress-request-id"),
                "retry_after": meta["HTTPHeaders"].get("retry-after")}
def fetch(url, source="127.0.0.1", headers=None):
    """GET with the client bound to `source`; (status, our request id, body length)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, source_address=(source, 0), timeout=30)
    conn.request("GET", parts.path + ("?" + parts.query if parts.query else ""), headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    return {"status": r.status, "req": r.getheader("x-egress-request-id"), "length": len(body)}
"#;

fn run(proxy: &Proxy, keys: &[(&str, &str)], body: &str) -> Value {
    let endpoint = proxy.endpoint();
    let mut env: Vec<(&str, &str)> = vec![("ENDPOINT", &endpoint)];
    env.extend_from_slice(keys);
    python(&format!("{PRELUDE}\n{body}"), &env)
}

fn key_env(proxy: &Proxy, principal: &str) -> (String, String) {
    let key = proxy.keys.iter().find(|k| k.principal == principal).unwrap();
    (key.access_key_id.clone(), key.secret_access_key.clone())
}

fn start_of(proxy: &Proxy, result: &Value) -> (Value, Value) {
    let req = result["req"].as_str().unwrap_or_else(|| panic!("no request id in {result}"));
    proxy.event(req)
}

fn put_policy(proxy: &Proxy, name: &str, document: &Value) -> Value {
    let (status, answer) = proxy.admin_send("PUT", &format!("/v1/policies/{name}"), Some(document));
    assert_eq!(status, 200, "{answer}");
    answer
}

fn attach(proxy: &Proxy, principal: &str, policies: &[&str]) {
    let (status, answer) = proxy.admin_send(
        "PUT",
        &format!("/v1/principals/{principal}/policies"),
        Some(&json!({ "policies": policies })),
    );
    assert_eq!(status, 200, "{answer}");
}

/// A relay in front of SeaweedFS (to count what reaches it), the proxy in
/// front of the relay, and `data` filled by `admin` (who has `full`).
fn setup(principals: &[&str], extra_args: &[&str]) -> (SeaweedFs, Relay, Proxy) {
    let upstream = SeaweedFs::start();
    let target = upstream.endpoint().trim_start_matches("http://").parse().unwrap();
    let relay = Relay::start(target);
    let mut names = vec!["admin".to_owned()];
    names.extend(principals.iter().map(|p| (*p).to_owned()));
    let extra_args = extra_args.iter().map(|a| (*a).to_owned()).collect();
    let proxy = Proxy::start_with_upstream(
        &relay.endpoint(),
        ProxyOptions { principals: names, extra_args, ..ProxyOptions::default() },
    );
    let (ak, sk) = key_env(&proxy, "admin");
    let made = run(
        &proxy,
        &[("AK", &ak), ("SK", &sk)],
        r#"
s3 = client(os.environ["AK"], os.environ["SK"])
s3.create_bucket(Bucket="data")
mib = b"m" * 1048576
for key in ["public/a.bin", "public/b.bin", "public/c.bin", "private/x.bin"]:
    s3.put_object(Bucket="data", Key=key, Body=mib)
s3.put_object(Bucket="data", Key="public/big.bin", Body=bytes(range(256)) * 40960)
print(json.dumps("ok"))
"#,
    );
    assert_eq!(made, "ok");
    (upstream, relay, proxy)
}

/// Read-only on `data/public/*`, listing only under `public/`.
fn public_read() -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadPublic", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::data/public/*"},
            {"Sid": "ListPublic", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::data",
             "Condition": {"StringLike": {"s3:prefix": "public/*"}}}
        ]
    })
}

#[test]
fn policies_decide_what_a_principal_may_do_and_every_decision_is_recorded() {
    let (_upstream, relay, proxy) = setup(&["alice", "bob"], &["--trusted-proxies", "127.0.0.3/32"]);
    let stored = put_policy(&proxy, "public-read", &public_read());
    assert_eq!(stored["sha256"].as_str().unwrap().len(), 64, "{stored}");
    // On a running proxy: alice had `full` from creation; this replaces it.
    attach(&proxy, "alice", &["public-read"]);
    let (ak, sk) = key_env(&proxy, "alice");
    // What reached the upstream so far (the setup's uploads).
    let watched = ["private/x.bin", "public/new.bin", "policy", "copied.bin", "DELETE"];
    let baseline: Vec<usize> = watched.iter().map(|part| relay.requests_for(part)).collect();
    let out = run(
        &proxy,
        &[("AK", &ak), ("SK", &sk)],
        r#"
s3 = client(os.environ["AK"], os.environ["SK"])
r = {}
r["get_public"] = attempt(s3.get_object, Bucket="data", Key="public/a.bin")
r["head_public"] = attempt(s3.head_object, Bucket="data", Key="public/a.bin")
r["get_private"] = attempt(s3.get_object, Bucket="data", Key="private/x.bin")
r["put"] = attempt(s3.put_object, Bucket="data", Key="public/new.bin", Body=b"x")
r["delete"] = attempt(s3.delete_object, Bucket="data", Key="public/a.bin")
r["put_policy"] = attempt(s3.put_bucket_policy, Bucket="data", Policy=json.dumps({"Version": "2012-10-17", "Statement": []}))
r["delete_bucket"] = attempt(s3.delete_bucket, Bucket="data")
r["list_public"] = attempt(s3.list_objects_v2, Bucket="data", Prefix="public/")
r["list_root"] = attempt(s3.list_objects_v2, Bucket="data")
r["list_private"] = attempt(s3.list_objects_v2, Bucket="data", Prefix="private/")
r["copy_out"] = attempt(s3.copy_object, Bucket="data", Key="public/copied.bin", CopySource={"Bucket": "data", "Key": "private/x.bin"})
print(json.dumps(r))
"#,
    );
    assert_eq!(
        (out["get_public"]["status"].as_u64(), out["get_public"]["value"].as_u64()),
        (Some(200), Some(1_048_576))
    );
    assert_eq!(out["head_public"]["status"], 200, "HeadObject needs s3:GetObject: {out}");
    assert_eq!(out["list_public"]["status"], 200, "{out}");
    assert_eq!(out["list_public"]["value"].as_array().unwrap().len(), 4, "{out}");
    for refused in
        ["get_private", "put", "delete", "put_policy", "delete_bucket", "list_root", "list_private", "copy_out"]
    {
        assert_eq!(
            (out[refused]["status"].as_u64(), out[refused]["code"].as_str()),
            (Some(403), Some("AccessDenied")),
            "{refused}: {out}"
        );
    }
    // Nothing refused went upstream.
    for (part, before) in watched.iter().zip(&baseline) {
        assert_eq!(relay.requests_for(part), *before, "{part} reached the upstream");
    }

    // The records say who decided.
    let (start, end) = start_of(&proxy, &out["get_public"]);
    assert_eq!(start["principal"], "alice");
    assert_eq!(start["decision"]["effect"], "allow", "{start}");
    assert_eq!(start["decision"]["policy"], "public-read");
    assert_eq!(start["decision"]["sid"], "ReadPublic");
    assert_eq!(start["decision"]["action"], "s3:GetObject");
    assert_eq!(start["decision"]["policy_sha256"], stored["sha256"]);
    assert_eq!((end["outcome"].as_str(), end["bytes_sent"].as_u64()), (Some("complete"), Some(1_048_576)));
    let (start, end) = start_of(&proxy, &out["get_private"]);
    assert_eq!(start["decision"]["effect"], "implicit_deny", "{start}");
    assert_eq!(start["decision"]["resource"], "arn:aws:s3:::data/private/x.bin");
    assert!(start["decision"]["policy"].is_null());
    assert_eq!((end["outcome"].as_str(), end["error_code"].as_str()), (Some("denied"), Some("AccessDenied")));
    let (start, _) = start_of(&proxy, &out["copy_out"]);
    assert_eq!(start["operation"], "CopyObject");
    assert_eq!(start["decision"]["action"], "s3:PutObject", "the destination is refused first: {start}");

    // The simulator agrees with what the proxy did.
    for (resource, action, expected) in [
        ("arn:aws:s3:::data/public/a.bin", "s3:GetObject", "allow"),
        ("arn:aws:s3:::data/private/x.bin", "s3:GetObject", "implicit_deny"),
        ("arn:aws:s3:::data/public/a.bin", "s3:DeleteObject", "implicit_deny"),
    ] {
        let (status, answer) = proxy.admin_send(
            "POST",
            "/v1/authorize/simulate",
            Some(&json!({"principal": "alice", "action": action, "resource": resource})),
        );
        assert_eq!((status, answer["decision"].as_str()), (200, Some(expected)), "{resource}: {answer}");
    }
    let (_, answer) = proxy.admin_send(
        "POST",
        "/v1/authorize/simulate",
        Some(&json!({"principal": "alice", "action": "s3:ListBucket", "resource": "arn:aws:s3:::data", "context": {"s3:prefix": "public/"}})),
    );
    assert_eq!((answer["decision"].as_str(), answer["sid"].as_str()), (Some("allow"), Some("ListPublic")), "{answer}");

    // A Deny added on a running proxy wins over the Allow at the next request.
    put_policy(
        &proxy,
        "no-a",
        &json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "NotA", "Effect": "Deny", "Action": "s3:*", "Resource": "arn:aws:s3:::data/public/a.bin"}]}),
    );
    attach(&proxy, "alice", &["public-read", "no-a"]);
    // An IP condition: bob may read only from 127.0.0.2.
    put_policy(
        &proxy,
        "office",
        &json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "FromOffice", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/*",
             "Condition": {"IpAddress": {"aws:SourceIp": ["127.0.0.2/32", "2001:db8::/32"]}}}]}),
    );
    attach(&proxy, "bob", &["office"]);
    let bob = key_env(&proxy, "bob");
    let out = run(
        &proxy,
        &[("AK", &ak), ("SK", &sk), ("BOB_AK", &bob.0), ("BOB_SK", &bob.1)],
        r#"
s3 = client(os.environ["AK"], os.environ["SK"])
bob = client(os.environ["BOB_AK"], os.environ["BOB_SK"])
url = bob.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "private/x.bin"}, ExpiresIn=300)
print(json.dumps({
    "a": attempt(s3.get_object, Bucket="data", Key="public/a.bin"),
    "b": attempt(s3.get_object, Bucket="data", Key="public/b.bin"),
    "office": fetch(url, "127.0.0.2"),
    "home": fetch(url, "127.0.0.1"),
    # Through a load balancer we trust, the office address it forwards counts...
    "balanced": fetch(url, "127.0.0.3", {"X-Forwarded-For": "198.51.100.9, 127.0.0.2"}),
    # ...and from anyone else the same header is a forgery, ignored.
    "forged": fetch(url, "127.0.0.1", {"X-Forwarded-For": "127.0.0.2"}),
}))
"#,
    );
    assert_eq!(out["a"]["code"], "AccessDenied", "{out}");
    let out_a_req = out["a"]["req"].as_str().unwrap().to_owned();
    assert_eq!(out["b"]["status"], 200, "{out}");
    let (start, _) = start_of(&proxy, &out["a"]);
    assert_eq!(start["decision"]["effect"], "explicit_deny");
    assert_eq!((start["decision"]["policy"].as_str(), start["decision"]["sid"].as_str()), (Some("no-a"), Some("NotA")));
    assert_eq!(
        (out["office"]["status"].as_u64(), out["office"]["length"].as_u64()),
        (Some(200), Some(1_048_576)),
        "{out}"
    );
    assert_eq!(out["home"]["status"], 403, "{out}");
    let (start, _) = start_of(&proxy, &out["office"]);
    assert_eq!(
        (start["source_ip"].as_str(), start["decision"]["sid"].as_str()),
        (Some("127.0.0.2"), Some("FromOffice"))
    );
    let (start, _) = start_of(&proxy, &out["home"]);
    assert_eq!(
        (start["source_ip"].as_str(), start["decision"]["effect"].as_str()),
        (Some("127.0.0.1"), Some("implicit_deny"))
    );

    // Every change is on the chain, with the hash of what was in force.
    let lines = proxy.ledger();
    let put = lines.iter().find(|l| l["event"] == "policy_put" && l["policy"] == "public-read").unwrap();
    assert_eq!(put["sha256"], stored["sha256"]);
    assert!(put["by"].as_str().unwrap().starts_with("admin:"), "{put}");
    let grants: Vec<&Value> =
        lines.iter().filter(|l| l["event"] == "grants_set" && l["principal"] == "alice").collect();
    let last = grants.last().unwrap();
    assert_eq!(last["policies"][0], json!({"policy": "public-read", "sha256": stored["sha256"]}), "{last}");
    assert_eq!(last["policies"][1]["policy"], "no-a");
    // A policy in use cannot be deleted.
    let (status, answer) = proxy.admin_send("DELETE", "/v1/policies/no-a", None);
    assert_eq!(status, 409, "{answer}");
    assert!(answer["error"]["message"].as_str().unwrap().contains("alice"), "{answer}");
    // A document with an unknown operator is refused when stored.
    let (status, answer) = proxy.admin_send(
        "PUT",
        "/v1/policies/broken",
        Some(&json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*",
            "Condition": {"StringSortOf": {"aws:username": "x"}}}]})),
    );
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("malformed_policy")), "{answer}");
    // An unknown condition key is stored, with a warning.
    let warned = put_policy(
        &proxy,
        "odd-key",
        &json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*",
            "Condition": {"StringEquals": {"aws:NoSuchKey": "x"}}}]}),
    );
    assert!(warned["warnings"].to_string().contains("aws:NoSuchKey"), "{warned}");

    // A revoked key is refused at the next request.
    let (status, _) = proxy.admin_send("DELETE", &format!("/v1/principals/alice/keys/{ak}"), None);
    assert_eq!(status, 204);
    let out = run(
        &proxy,
        &[("AK", &ak), ("SK", &sk)],
        r#"
s3 = client(os.environ["AK"], os.environ["SK"])
print(json.dumps(attempt(s3.get_object, Bucket="data", Key="public/b.bin")))
"#,
    );
    assert_eq!(out["code"], "InvalidAccessKeyId", "{out}");

    // Offline, the CLI and an auditor read the same story.
    let denied_req = out_a_req.clone();
    let mut proxy = proxy;
    proxy.stop();
    let data = proxy.data_dir.clone();
    let explained = egress_e2e::run_in(&data, &["ledger", "explain", &denied_req]);
    assert_eq!(explained.code, 0, "{explained:?}");
    let explained = explained.json();
    assert_eq!(explained["decision"]["sid"], "NotA", "{explained}");
    assert_eq!(explained["end"]["line"]["outcome"], "denied");
    let in_force: Vec<&str> = explained["grants_in_force"]["line"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["policy"].as_str().unwrap())
        .collect();
    assert_eq!(in_force, ["public-read", "no-a"], "{explained}");
    assert_eq!(egress_e2e::run_in(&data, &["ledger", "explain", "no-such-request"]).code, 1);

    // At the seq of that request, the auditor's replay names the same policies, documents included.
    let seq = explained["start"]["seq"].as_u64().unwrap().to_string();
    let auditor = std::process::Command::new(egress_e2e::servers::venv_bin("python3"))
        .arg(egress_e2e::repo_root().join("tests/auditor/grants_at.py"))
        .args([data.to_str().unwrap(), &seq, "alice"])
        .output()
        .unwrap();
    assert!(auditor.status.success(), "{auditor:?}");
    let replayed: Value = serde_json::from_slice(&auditor.stdout).unwrap();
    assert_eq!(replayed["policies"][1]["document"]["Statement"][0]["Sid"], "NotA", "{replayed}");
    assert_eq!(replayed["policies"][0]["sha256"], stored["sha256"]);

    // Policies and attachments from the CLI; the simulator's exit code says allowed or not.
    let policy_file = data.parent().unwrap().join("team.json");
    std::fs::write(&policy_file, public_read().to_string()).unwrap();
    assert_eq!(egress_e2e::run_in(&data, &["policy", "put", "team", policy_file.to_str().unwrap()]).code, 0);
    let created =
        egress_e2e::run_in(&data, &["principal", "create", "frank", "--policy", "team", "--tag", "team=vision"]);
    assert_eq!(created.code, 0, "{created:?}");
    let simulate = |resource: &str| {
        egress_e2e::run_in(
            &data,
            &["policy", "simulate", "--principal", "frank", "--action", "s3:GetObject", "--resource", resource],
        )
    };
    let allowed = simulate("arn:aws:s3:::data/public/a.bin");
    assert_eq!((allowed.code, allowed.json()["sid"].as_str()), (0, Some("ReadPublic")), "{allowed:?}");
    assert_eq!(simulate("arn:aws:s3:::data/private/x.bin").code, 1);
    assert_eq!(egress_e2e::run_in(&data, &["principal", "detach", "frank", "team"]).code, 0);
    assert_eq!(simulate("arn:aws:s3:::data/public/a.bin").code, 1, "detached: nothing allows it");
    let refused = egress_e2e::run_in(&data, &["principal", "create", "gina", "--policy", "no-such-policy"]);
    assert_ne!(refused.code, 0);
    assert!(refused.stderr.contains("no-such-policy"), "{refused:?}");
    let listed = egress_e2e::run_in(&data, &["principal", "list"]).json();
    assert!(listed.as_array().unwrap().iter().all(|p| p["name"] != "gina"), "nothing created: {listed}");
    assert_eq!(egress_e2e::run_in(&data, &["ledger", "verify"]).code, 0);
}

#[test]
fn quotas_bandwidth_rate_and_anonymous_reads() {
    let (_upstream, relay, proxy) = setup(&["carol", "dave", "erin"], &["--denied-records-per-ip", "5"]);
    put_policy(&proxy, "public-read", &public_read());
    for principal in ["carol", "dave", "erin"] {
        attach(&proxy, principal, &["public-read"]);
    }
    let set_limits = |principal: &str, limits: Value| {
        let (status, answer) = proxy.admin_send("PUT", &format!("/v1/principals/{principal}/limits"), Some(&limits));
        assert_eq!(status, 200, "{answer}");
    };
    set_limits("carol", json!({"quotas": [{"bytes": 2_621_440, "per": "day"}]}));
    set_limits("dave", json!({"bandwidth_bytes_per_second": 2_097_152}));
    set_limits("erin", json!({"requests_per_second": 2}));
    let carol = key_env(&proxy, "carol");
    let dave = key_env(&proxy, "dave");
    let erin = key_env(&proxy, "erin");
    let private_before = relay.requests_for("private/x.bin");

    // A quota of 2.5 MiB a day: the third 1 MiB GET is refused before its body.
    let out = run(
        &proxy,
        &[("AK", &carol.0), ("SK", &carol.1)],
        r#"
s3 = client(os.environ["AK"], os.environ["SK"])
print(json.dumps([attempt(s3.get_object, Bucket="data", Key=k) for k in ["public/a.bin", "public/b.bin", "public/c.bin"]]))
"#,
    );
    assert_eq!(out[0]["status"], 200, "{out}");
    assert_eq!(out[1]["status"], 200, "{out}");
    assert_eq!((out[2]["status"].as_u64(), out[2]["code"].as_str()), (Some(403), Some("AccessDenied")), "{out}");
    assert!(out[2]["message"].as_str().unwrap().contains("quota of 2621440 bytes per day"), "{out}");
    let (start, end) = start_of(&proxy, &out[2]);
    assert_eq!(start["decision"]["effect"], "allow", "the policy allowed it: {start}");
    assert_eq!(end["decision"]["effect"], "limit_exceeded", "{end}");
    assert_eq!(end["decision"]["limit"], "quota:day");
    assert_eq!((end["outcome"].as_str(), end["error_code"].as_str()), (Some("denied"), Some("AccessDenied")));
    assert!(end["bytes_sent"].as_u64().unwrap() < 1000, "no byte of the object left: {end}");
    let (status, usage) = proxy.admin_send("GET", "/v1/principals/carol/usage", None);
    assert_eq!(status, 200);
    assert_eq!(
        (usage["quotas"][0]["used"].as_u64(), usage["quotas"][0]["reserved"].as_u64()),
        (Some(2_097_152), Some(0)),
        "{usage}"
    );
    assert_eq!(usage["quotas"][0]["remaining"], 524_288);
    let metrics = proxy.admin_get("/metrics");
    assert!(
        metrics.contains("egress_quota_used_bytes{principal=\"carol\",per=\"day\",bucket=\"\"} 2097152"),
        "{metrics}"
    );

    // 2 MiB/s: a 10 MiB GET takes at least 4.5 s, every byte intact.
    let started = Instant::now();
    let out = run(
        &proxy,
        &[("AK", &dave.0), ("SK", &dave.1)],
        r#"
import hashlib
s3 = client(os.environ["AK"], os.environ["SK"])
body = s3.get_object(Bucket="data", Key="public/big.bin")["Body"].read()
print(json.dumps({"length": len(body), "ok": body == bytes(range(256)) * 40960}))
"#,
    );
    let took = started.elapsed();
    assert_eq!(out, json!({"length": 10_485_760, "ok": true}));
    assert!(took.as_secs_f64() >= 4.5, "10 MiB at 2 MiB/s took {took:?}");

    // Two requests a second: twenty sent at once meet SlowDown, with
    // Retry-After. (At once: one after another, a loaded machine can space
    // them out by more than the rate.)
    let out = run(
        &proxy,
        &[("AK", &erin.0), ("SK", &erin.1)],
        r#"
from concurrent.futures import ThreadPoolExecutor
s3 = boto3.client("s3", endpoint_url=ENDPOINT, region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}, max_pool_connections=20))
with ThreadPoolExecutor(20) as pool:
    results = list(pool.map(lambda _: attempt(s3.list_objects_v2, Bucket="data", Prefix="public/"), range(20)))
print(json.dumps(results))
"#,
    );
    let slowed: Vec<&Value> = out.as_array().unwrap().iter().filter(|r| r["code"] == "SlowDown").collect();
    let admitted = out.as_array().unwrap().iter().filter(|r| r["status"] == 200).count();
    assert!(!slowed.is_empty() && admitted >= 2 && slowed.len() + admitted == 20, "{out}");
    assert!(slowed.iter().all(|r| r["status"] == 503 && r["retry_after"].as_str().is_some()), "{out}");
    let (start, end) = start_of(&proxy, slowed[0]);
    assert_eq!(
        (start["decision"]["effect"].as_str(), start["decision"]["limit"].as_str()),
        (Some("limit_exceeded"), Some("rate"))
    );
    assert_eq!(end["outcome"], "denied");

    // Anonymous: refused until a policy is attached to `anonymous`.
    let anonymous = r#"
print(json.dumps({"public": fetch(ENDPOINT + "/data/public/a.bin"), "private": fetch(ENDPOINT + "/data/private/x.bin")}))
"#;
    let before = run(&proxy, &[], anonymous);
    assert_eq!(
        (before["public"]["status"].as_u64(), before["private"]["status"].as_u64()),
        (Some(403), Some(403)),
        "{before}"
    );
    put_policy(
        &proxy,
        "public-dataset",
        &json!({"Version": "2012-10-17", "Statement": [
            {"Sid": "AnyoneReadsPublic", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::data/public/*"}]}),
    );
    attach(&proxy, "anonymous", &["public-dataset"]);
    let after = run(&proxy, &[], anonymous);
    assert_eq!(
        (after["public"]["status"].as_u64(), after["public"]["length"].as_u64()),
        (Some(200), Some(1_048_576)),
        "{after}"
    );
    assert_eq!(after["private"]["status"], 403, "{after}");
    let (start, end) = start_of(&proxy, &after["public"]);
    assert_eq!((start["principal"].as_str(), start["source_ip"].as_str()), (Some("anonymous"), Some("127.0.0.1")));
    assert!(start["access_key_id"].is_null(), "{start}");
    assert_eq!(start["decision"]["sid"], "AnyoneReadsPublic");
    assert_eq!(end["bytes_sent"], 1_048_576);
    let (start, _) = start_of(&proxy, &after["private"]);
    assert_eq!(
        (start["principal"].as_str(), start["decision"]["effect"].as_str()),
        (Some("anonymous"), Some("implicit_deny"))
    );
    assert_eq!(relay.requests_for("private/x.bin"), private_before, "a refused anonymous read reached the upstream");

    // Refused anonymous requests cost the ledger what unauthenticated ones do:
    // a few records per source a minute, the rest counted in a summary.
    let flood = run(
        &proxy,
        &[],
        r#"
print(json.dumps([fetch(ENDPOINT + "/data/private/x.bin")["status"] for _ in range(60)]))
"#,
    );
    assert!(flood.as_array().unwrap().iter().all(|s| s == 403), "{flood}");
    let recorded = proxy
        .ledger()
        .iter()
        .filter(|l| l["kind"] == "start" && l["principal"] == "anonymous" && l["key"] == "private/x.bin")
        .count();
    // Five a minute per source: ten if the flood straddles a minute's end.
    assert!(recorded <= 10, "{recorded} records of 60 refused anonymous requests");
}
