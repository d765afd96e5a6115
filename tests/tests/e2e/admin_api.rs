//! The admin API of the running binary, end to end: a principal created
//! through it reads objects through the proxy with boto3; revoked, its next
//! request fails; queries return exactly the events the clients caused.

use egress_e2e::servers::{Proxy, ProxyOptions, SeaweedFs, python};
use serde_json::Value;

/// Calls the admin API with Python's urllib; `token` None sends none.
fn admin(proxy: &Proxy, method: &str, path: &str, body: Option<&Value>, token: Option<&str>) -> (u64, Value) {
    let out = python(
        r#"
import os, json, urllib.request, urllib.error
body = os.environ.get("BODY")
req = urllib.request.Request(os.environ["URL"], method=os.environ["METHOD"], data=body.encode() if body else None,
    headers={"content-type": "application/json"})
if os.environ.get("TOKEN"):
    req.add_header("authorization", "Bearer " + os.environ["TOKEN"])
try:
    with urllib.request.urlopen(req) as r:
        status, text = r.status, r.read().decode()
except urllib.error.HTTPError as e:
    status, text = e.code, e.read().decode()
try:
    parsed = json.loads(text) if text else None
except ValueError:
    parsed = text
print(json.dumps({"status": status, "body": parsed}))
"#,
        &[
            ("URL", &format!("http://{}{path}", proxy.admin_addr)),
            ("METHOD", method),
            ("BODY", &body.map(Value::to_string).unwrap_or_default()),
            ("TOKEN", token.unwrap_or("")),
        ],
    );
    (out["status"].as_u64().unwrap(), out["body"].clone())
}

#[test]
fn principals_from_the_api_work_through_the_proxy_until_revoked_and_queries_match() {
    let upstream = SeaweedFs::start();
    let proxy = Proxy::start(&upstream, ProxyOptions { principals: vec!["setup".into()], ..ProxyOptions::default() });
    let token = proxy.admin_token.clone();

    assert_eq!(admin(&proxy, "GET", "/v1/principals", None, None).0, 401, "no token");
    assert_eq!(admin(&proxy, "GET", "/v1/principals", None, Some("wrong-token-of-enough-length")).0, 401);
    // Open to anyone, but only the token holder learns the ledger's head.
    let (status, health) = admin(&proxy, "GET", "/healthz", None, None);
    assert_eq!((status, &health), (200, &serde_json::json!({"status": "ok"})), "{health}");
    let (status, health) = admin(&proxy, "GET", "/healthz", None, Some(&token));
    assert_eq!(status, 200, "{health}");
    assert!(health["ledger"]["records"].as_u64().unwrap() >= 1);

    let (status, created) = admin(
        &proxy,
        "POST",
        "/v1/principals",
        Some(&serde_json::json!({"name": "dana", "description": "eval job", "policies": ["read-only"]})),
        Some(&token),
    );
    assert_eq!(status, 201, "{created}");
    let (id, secret) = (created["access_key_id"].as_str().unwrap(), created["secret_access_key"].as_str().unwrap());
    let (status, listed) = admin(&proxy, "GET", "/v1/principals", None, Some(&token));
    assert_eq!(status, 200);
    assert!(!listed.to_string().contains(secret), "no secret in a listing");

    let script = r#"
import os, json, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=os.environ["ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=os.environ["AK"], aws_secret_access_key=os.environ["SK"],
    config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
out = {}
if os.environ.get("SETUP"):
    s3.create_bucket(Bucket="evals")
    s3.put_object(Bucket="evals", Key="a.bin", Body=b"a" * 1000)
    s3.put_object(Bucket="evals", Key="b.bin", Body=b"b" * 3000)
else:
    try:
        out["a"] = len(s3.get_object(Bucket="evals", Key="a.bin")["Body"].read())
        out["b"] = len(s3.get_object(Bucket="evals", Key="b.bin", Range="bytes=0-99")["Body"].read())
    except Exception as e:
        out["error"] = e.response["Error"]["Code"]
print(json.dumps(out))
"#;
    let setup = proxy.key().clone();
    let made = python(
        script,
        &[
            ("ENDPOINT", &proxy.endpoint()),
            ("AK", &setup.access_key_id),
            ("SK", &setup.secret_access_key),
            ("SETUP", "1"),
        ],
    );
    assert_eq!(made, serde_json::json!({}), "setup through the proxy");
    let read = python(script, &[("ENDPOINT", &proxy.endpoint()), ("AK", id), ("SK", secret)]);
    assert_eq!((read["a"].as_u64(), read["b"].as_u64()), (Some(1000), Some(100)), "{read}");

    // The queries see exactly dana's two reads, newest first, with their bytes.
    let wait_for_ends = proxy.events_where(|s| s["principal"] == "dana");
    assert_eq!(wait_for_ends.len(), 2);
    let (status, events) = admin(&proxy, "GET", "/v1/egress?principal=dana", None, Some(&token));
    assert_eq!(status, 200, "{events}");
    let events = events["events"].as_array().unwrap().clone();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!((events[0]["key"].as_str(), events[0]["bytes_sent"].as_u64()), (Some("b.bin"), Some(100)));
    assert_eq!((events[1]["key"].as_str(), events[1]["bytes_sent"].as_u64()), (Some("a.bin"), Some(1000)));
    let (status, summary) = admin(&proxy, "GET", "/v1/egress/summary?group_by=principal", None, Some(&token));
    assert_eq!(status, 200, "{summary}");
    let dana = summary["groups"].as_array().unwrap().iter().find(|g| g["key"] == "dana").cloned().unwrap();
    assert_eq!((dana["requests"].as_u64(), dana["bytes_sent"].as_u64()), (Some(2), Some(1100)));

    // Revoked: the very next request fails, without a restart.
    let (status, _) = admin(&proxy, "DELETE", &format!("/v1/principals/dana/keys/{id}"), None, Some(&token));
    assert_eq!(status, 204);
    let refused = python(script, &[("ENDPOINT", &proxy.endpoint()), ("AK", id), ("SK", secret)]);
    assert_eq!(refused["error"], "InvalidAccessKeyId", "{refused}");

    let (status, verify) = admin(&proxy, "POST", "/v1/ledger/verify", None, Some(&token));
    assert_eq!((status, verify["ok"].as_bool()), (200, Some(true)), "{verify}");
    let (status, metrics) = admin(&proxy, "GET", "/metrics", None, Some(&token));
    assert_eq!(status, 200);
    let metrics = metrics.as_str().unwrap();
    assert!(metrics.contains("egress_requests_total{operation=\"GetObject\",status=\"200\"} 1"), "{metrics}");
    assert!(metrics.contains("egress_bytes_out_total{bucket=\"evals\"}"), "{metrics}");
}
