//! The admin router over a real ledger in a temp dir, driven in memory with
//! `oneshot`: the token on every route, the principal lifecycle, and ledger
//! queries checked against a brute-force reading of the segments.

#![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed, which is what a panic reports")]

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use egress_admin::provisioning::Provisioner;
use egress_admin::{AdminState, AdminToken};
use egress_ledger::{EndRecord, Entry, Ledger, LedgerConfig, Outcome, StartRecord};
use egress_metrics::Metrics;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const TOKEN: &str = "a-test-token-of-enough-length";
const BLOCK: u64 = egress_ledger::index::BLOCK;

/// A predicate over events of the oracle.
type Keep = Box<dyn Fn(&Value) -> bool>;

struct Harness {
    dir: tempfile::TempDir,
    ledger: Ledger,
    metrics: Arc<Metrics>,
    app: axum::Router,
}

impl Harness {
    /// Small segments, so that blocks span segment files.
    async fn new() -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let mut config = LedgerConfig::new(dir.path(), "egress-admin-test");
        config.writer.segment_max_bytes = 256 * 1024;
        let (ledger, _) = Ledger::open(&config).unwrap();
        let tree = ledger.store().unwrap().tree("provisioning").unwrap();
        let provisioner = Arc::new(Provisioner::new(None, "us-east-1".into(), tree).await);
        let metrics = Arc::new(Metrics::default());
        let state = AdminState {
            ledger: ledger.clone(),
            token: Arc::new(AdminToken::new(TOKEN).unwrap()),
            metrics: Arc::clone(&metrics),
            provisioner: Arc::clone(&provisioner),
            reconciler: Arc::new(egress_admin::reconciliation::Reconciler::new(
                ledger.clone(),
                Arc::clone(&provisioner),
                ledger.clone().store().unwrap().tree("reconciliations").unwrap(),
                egress_reconcile::report::DeliveryWindows::default(),
                Vec::new(),
            )),
            grants: Arc::new(egress_admin::access::GrantsCache::new(ledger.store().unwrap().access.clone())),
            usage: Arc::new(egress_admin::usage::NoDataPlane),
            archive: None,
        };
        Harness { dir, ledger, metrics, app: egress_admin::router(state) }
    }

    async fn call(&self, method: Method, uri: impl Into<String>, token: Option<&str>, body: Option<&str>) -> Reply {
        let mut request = Request::builder().method(method).uri(uri.into());
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request.body(body.map_or_else(Body::empty, |b| Body::from(b.to_owned()))).unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
        Reply { status, headers, body }
    }

    async fn get(&self, uri: &str) -> Reply {
        self.call(Method::GET, uri, Some(TOKEN), None).await
    }

    /// Every segment's bytes, in order (sealed ones may have been compressed).
    fn segment_bytes(&self) -> Vec<u8> {
        let reader = egress_ledger::reader::LedgerReader::open(&self.dir.path().join("ledger")).unwrap();
        reader.segments().iter().flat_map(|(_, name)| reader.read_segment(name).unwrap()).collect()
    }

    /// Every line of the ledger, parsed.
    fn lines(&self) -> Vec<Value> {
        self.segment_bytes()
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).unwrap())
            .collect()
    }

    fn indexed_next(&self) -> u64 {
        self.ledger.store().unwrap().index.indexed_next().unwrap()
    }

    async fn close(self) {
        self.ledger.close().await.unwrap();
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.clone()).unwrap()
    }

    fn content_type(&self) -> &str {
        self.headers.get("content-type").map_or("", |v| v.to_str().unwrap())
    }

    /// Asserts a JSON error of this status whose message starts with
    /// `prefix` (for a 400, `field:` names the bad field).
    fn assert_error(&self, status: StatusCode, prefix: &str) {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        assert!(self.content_type().starts_with("application/json"), "{}", self.content_type());
        let message = self.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.starts_with(prefix), "message should start with {prefix:?}: {message}");
    }

    /// An error of `status` whose message mentions `fragment`.
    fn assert_error_mentions(&self, status: StatusCode, fragment: &str) {
        assert_eq!(self.status, status, "{}", String::from_utf8_lossy(&self.body));
        let message = self.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains(fragment), "message should mention {fragment:?}: {message}");
    }
}

// ---------------------------------------------------------------- access

#[tokio::test]
async fn every_route_but_health_needs_the_token() {
    let h = Harness::new().await;
    let doc = h.get("/openapi.json").await.json();
    let paths = doc["paths"].as_object().unwrap();
    let mut checked = 0;
    for (path, item) in paths {
        let uri = path.replace('{', "").replace('}', "-x");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for token in [None, Some("wrong-token-of-enough-length"), Some("")] {
                let reply = h.call(method.clone(), &uri, token, Some("{}")).await;
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {path} with {token:?}");
                assert_eq!(reply.json()["error"]["code"], "unauthorized");
            }
            checked += 1;
        }
    }
    assert!(checked >= 12, "only {checked} routes in the document");
    assert_eq!(h.call(Method::GET, "/openapi.json", None, None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(h.call(Method::GET, "/healthz", None, None).await.status, StatusCode::OK);
    h.close().await;
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_with_parameters_and_bodies() {
    let h = Harness::new().await;
    let doc = h.get("/openapi.json").await.json();
    let expected = [
        ("/v1/principals", "get"),
        ("/v1/principals", "post"),
        ("/v1/principals/{name}", "delete"),
        ("/v1/principals/{name}/keys", "post"),
        ("/v1/principals/{name}/keys/{access_key_id}", "delete"),
        ("/v1/principals/{name}/policies", "put"),
        ("/v1/principals/{name}/tags", "put"),
        ("/v1/principals/{name}/limits", "put"),
        ("/v1/principals/{name}/usage", "get"),
        ("/v1/policies", "get"),
        ("/v1/policies/{name}", "put"),
        ("/v1/policies/{name}", "get"),
        ("/v1/policies/{name}", "delete"),
        ("/v1/authorize/simulate", "post"),
        ("/v1/egress", "get"),
        ("/v1/egress/summary", "get"),
        ("/v1/ledger/verify", "post"),
        ("/v1/ledger/checkpoints/latest", "get"),
        ("/v1/ledger/pubkey", "get"),
        ("/v1/ledger/export", "get"),
        ("/metrics", "get"),
    ];
    for (path, method) in expected {
        assert!(doc["paths"][path][method].is_object(), "{method} {path} missing from /openapi.json");
    }
    let params = |path: &str| -> Vec<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        params("/v1/egress"),
        ["principal", "bucket", "key_prefix", "since", "until", "outcome", "limit", "cursor"]
    );
    assert_eq!(params("/v1/egress/summary"), ["group_by", "since", "until"]);
    assert_eq!(params("/v1/ledger/export"), ["from_seq", "to_seq"]);
    let create = &doc["paths"]["/v1/principals"]["post"];
    assert!(create["requestBody"]["content"]["application/json"].is_object(), "{create}");
    assert!(create["responses"]["201"].is_object() && create["responses"]["409"].is_object());
    let key_params =
        doc["paths"]["/v1/principals/{name}/keys/{access_key_id}"]["delete"]["parameters"].as_array().unwrap();
    assert_eq!(key_params.len(), 2);
    for schema in ["EgressEvent", "EgressPage", "Summary", "PrincipalList", "IssuedKeyBody", "VerifyReportBody"] {
        assert!(doc["components"]["schemas"][schema].is_object(), "schema {schema} missing");
    }
    h.close().await;
}

// ---------------------------------------------------------------- principals

fn notes(h: &Harness) -> Vec<(String, String, String)> {
    h.lines()
        .into_iter()
        .filter(|l| l["kind"] == "note" && l["event"] != "segment")
        .map(|l| {
            let s = |k: &str| l[k].as_str().unwrap_or_default().to_owned();
            (s("event"), s("principal"), s("access_key_id"))
        })
        .collect()
}

#[tokio::test]
async fn principals_lifecycle() {
    let h = Harness::new().await;
    let store = h.ledger.store().unwrap().principals.clone();
    let post = |body: &'static str| h.call(Method::POST, "/v1/principals", Some(TOKEN), Some(body));

    let created = post(r#"{"name":"alice","description":"data scientist"}"#).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    assert_eq!(created.headers.get("cache-control").unwrap(), "no-store");
    let created = created.json();
    assert_eq!(created["name"], "alice");
    let first_id = created["access_key_id"].as_str().unwrap().to_owned();
    let first_secret = created["secret_access_key"].as_str().unwrap().to_owned();
    assert_eq!((first_id.len(), first_secret.len()), (20, 40));
    let found = store.lookup(&first_id).unwrap().unwrap();
    assert!(found.secret_access_key.ct_eq(first_secret.as_bytes()));

    // Bad requests: 400 as JSON, naming the field.
    post(r#"{"name":"alice"}"#).await.assert_error(StatusCode::CONFLICT, "principal \"alice\" already exists");
    post(r#"{"name":"bad name"}"#).await.assert_error(StatusCode::BAD_REQUEST, "name:");
    post(r#"{"name":""}"#).await.assert_error(StatusCode::BAD_REQUEST, "name:");
    post(r#"{"description":"no name"}"#).await.assert_error(StatusCode::BAD_REQUEST, "name:");
    post(r#"{"name":5}"#).await.assert_error(StatusCode::BAD_REQUEST, "name:");
    post(r#"{"name":"carol","description":5}"#).await.assert_error(StatusCode::BAD_REQUEST, "description:");
    post(r#"{"name":"carol","team":"x"}"#).await.assert_error(StatusCode::BAD_REQUEST, "team:");
    post(r#"{"name": "carol""#).await.assert_error(StatusCode::BAD_REQUEST, "body:");
    post(r#"["carol"]"#).await.assert_error(StatusCode::BAD_REQUEST, "body:");
    post("").await.assert_error(StatusCode::BAD_REQUEST, "body:");
    assert!(store.get("carol").unwrap().is_none(), "nothing made by a bad request");

    // Rotation: the old key works until revoked.
    let rotated = h.call(Method::POST, "/v1/principals/alice/keys", Some(TOKEN), None).await;
    assert_eq!(rotated.status, StatusCode::CREATED, "{}", rotated.text());
    let second_id = rotated.json()["access_key_id"].as_str().unwrap().to_owned();
    assert!(store.lookup(&first_id).unwrap().is_some() && store.lookup(&second_id).unwrap().is_some());
    h.call(Method::POST, "/v1/principals/nobody/keys", Some(TOKEN), None)
        .await
        .assert_error(StatusCode::NOT_FOUND, "no principal named \"nobody\"");

    let bob = post(r#"{"name":"bob"}"#).await.json();
    let bob_id = bob["access_key_id"].as_str().unwrap().to_owned();

    let listed = h.get("/v1/principals").await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(!listed.text().contains(&first_secret), "no secret in a listing");
    let listed = listed.json();
    let names: Vec<_> = listed["principals"].as_array().unwrap().iter().map(|p| p["name"].clone()).collect();
    assert_eq!(names, [json!("alice"), json!("bob")]);
    assert_eq!(listed["principals"][0]["description"], "data scientist");
    assert_eq!(listed["principals"][0]["keys"].as_array().unwrap().len(), 2);

    // Revocation: the cached key stops working at once.
    let revoke =
        |name: &str, id: &str| h.call(Method::DELETE, format!("/v1/principals/{name}/keys/{id}"), Some(TOKEN), None);
    assert_eq!(revoke("alice", &first_id).await.status, StatusCode::NO_CONTENT);
    assert!(store.lookup(&first_id).unwrap().is_none(), "revoked key still answers");
    assert!(store.lookup(&second_id).unwrap().is_some());
    assert_eq!(revoke("alice", &first_id).await.status, StatusCode::NO_CONTENT, "revoking again changes nothing");
    revoke("alice", &bob_id).await.assert_error(StatusCode::NOT_FOUND, "principal \"alice\" has no access key");
    assert!(store.lookup(&bob_id).unwrap().is_some(), "another principal's key is not touched");
    revoke("alice", "EGRSNOSUCHKEY0000000").await.assert_error(StatusCode::NOT_FOUND, "principal \"alice\"");
    revoke("nobody", &bob_id).await.assert_error(StatusCode::NOT_FOUND, "no principal");
    let listed = h.get("/v1/principals").await.json();
    assert!(listed["principals"][0]["keys"][0]["revoked"].is_string());
    assert!(listed["principals"][0]["keys"][1]["revoked"].is_null());

    // Deletion takes every key with it.
    let delete = |name: &str| h.call(Method::DELETE, format!("/v1/principals/{name}"), Some(TOKEN), None);
    assert_eq!(delete("alice").await.status, StatusCode::NO_CONTENT);
    assert!(store.lookup(&second_id).unwrap().is_none());
    delete("alice").await.assert_error(StatusCode::NOT_FOUND, "no principal named \"alice\"");
    let listed = h.get("/v1/principals").await.json();
    assert_eq!(listed["principals"].as_array().unwrap().len(), 1);

    // The ledger saw every key issued and revoked, never a secret.
    let s = String::from;
    assert_eq!(
        notes(&h),
        [
            (s("principal_created"), s("alice"), first_id.clone()),
            (s("principal_created"), s("alice"), second_id.clone()),
            (s("principal_created"), s("bob"), bob_id.clone()),
            (s("access_key_revoked"), s("alice"), first_id.clone()),
            (s("access_key_revoked"), s("alice"), second_id.clone()),
        ]
    );
    assert!(!String::from_utf8_lossy(&h.segment_bytes()).contains(&first_secret));
    h.close().await;
}

// ---------------------------------------------------------------- queries

/// The event `i` of the generated workload.
fn start_of(i: u64) -> Entry {
    let principal = [Some("alice"), Some("bob"), Some("alice"), Some("carol"), None][(i % 5) as usize];
    let bucket = [Some("data"), Some("logs"), Some("data"), None][(i % 4) as usize];
    Entry::Start(StartRecord {
        req: format!("req-{i}"),
        principal: principal.map(str::to_owned),
        access_key_id: principal.map(|p| format!("EGRS{p:0>16}").to_uppercase()),
        source_ip: Some(format!("192.0.2.{}", i % 200)),
        user_agent: Some("test".into()),
        method: "GET".into(),
        operation: if bucket.is_some() { "GetObject" } else { "ListBuckets" }.into(),
        bucket: bucket.map(str::to_owned),
        key: bucket.map(|_| format!("dir{}/object-{i}.bin", i % 6)),
        version_id: None,
        range: i.is_multiple_of(7).then(|| "bytes=0-99".to_owned()),
        ..StartRecord::default()
    })
}

fn end_of(i: u64, start_seq: u64) -> Entry {
    let (status, outcome, error_code) = if i.is_multiple_of(13) {
        (Some(403), Outcome::Denied, Some("AccessDenied".to_owned()))
    } else if i.is_multiple_of(17) {
        (Some(200), Outcome::ClientAbort, None)
    } else {
        (Some(200), Outcome::Complete, None)
    };
    Entry::End(EndRecord {
        req: format!("req-{i}"),
        start_seq,
        status,
        bytes_sent: if outcome == Outcome::Denied { Some(0) } else { Some(i * 37 % 5000 + 1) },
        bytes_acked: None,
        object_size: Some(5000),
        etag: None,
        upstream_request_id: None,
        upstream_id2: None,
        duration_ms: Some(i % 50),
        outcome,
        error_code,
        decision: None,
    })
}

/// Appends events `0..count` in rounds of 64 starts; most ends follow in
/// the next round, every 29th five rounds later (across blocks), and every
/// 211th never (still running).
async fn fill(ledger: &Ledger, count: u64) {
    let mut waiting: Vec<(u64, u64, u64)> = Vec::new(); // (due round, event, start seq)
    let rounds = count.div_ceil(64);
    for round in 0..rounds + 6 {
        let events: Vec<u64> = (round * 64..((round + 1) * 64).min(count)).collect();
        let due: Vec<(u64, u64, u64)> = waiting.iter().copied().filter(|w| w.0 <= round).collect();
        waiting.retain(|w| w.0 > round);
        let mut entries: Vec<Entry> = events.iter().map(|&i| start_of(i)).collect();
        entries.extend(due.iter().map(|&(_, i, seq)| end_of(i, seq)));
        let appended = futures_util::future::join_all(entries.into_iter().map(|e| ledger.append(e))).await;
        for (&i, result) in events.iter().zip(&appended) {
            let seq = result.as_ref().unwrap().seq;
            match i {
                i if i % 211 == 5 => {}
                i if i % 29 == 0 => waiting.push((round + 5, i, seq)),
                i => waiting.push((round + 1, i, seq)),
            }
        }
        for result in appended {
            result.unwrap();
        }
    }
}

/// The events as a brute-force join of the ledger's lines: newest first.
fn oracle(lines: &[Value]) -> Vec<Value> {
    let ends: HashMap<u64, &Value> =
        lines.iter().filter(|l| l["kind"] == "end").map(|l| (l["start_seq"].as_u64().unwrap(), l)).collect();
    let mut events: Vec<Value> = lines
        .iter()
        .filter(|l| l["kind"] == "start")
        .map(|s| {
            let e = ends.get(&s["seq"].as_u64().unwrap()).copied().unwrap_or(&Value::Null);
            json!({
                "req": s["req"], "start_seq": s["seq"], "ts": s["ts"], "principal": s["principal"],
                "access_key_id": s["access_key_id"], "source_ip": s["source_ip"], "operation": s["operation"],
                "method": s["method"], "bucket": s["bucket"], "key": s["key"], "range": s["range"],
                "status": e["status"], "bytes_sent": e["bytes_sent"], "object_size": e["object_size"],
                "outcome": e["outcome"], "error_code": e["error_code"], "duration_ms": e["duration_ms"],
                "end_seq": e["seq"],
            })
        })
        .collect();
    events.reverse();
    events
}

/// Follows `next_cursor` to the end; every page at most `limit` events.
async fn all_pages(h: &Harness, query: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<u64> = None;
    loop {
        let mut uri = format!("/v1/egress?limit={limit}");
        if !query.is_empty() {
            let _ = write!(uri, "&{query}");
        }
        if let Some(c) = cursor {
            let _ = write!(uri, "&cursor={c}");
        }
        let reply = h.get(&uri).await;
        assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.text());
        let page = reply.json();
        let events = page["events"].as_array().unwrap();
        assert!(events.len() <= limit);
        out.extend(events.iter().cloned());
        match page["next_cursor"].as_u64() {
            Some(next) => {
                assert!(cursor.is_none_or(|c| next < c), "the cursor moves down");
                cursor = Some(next);
            }
            None => return out,
        }
    }
}

fn bytes(events: &[Value]) -> u64 {
    events.iter().map(|e| e["bytes_sent"].as_u64().unwrap_or(0)).sum()
}

#[tokio::test]
async fn queries_match_a_brute_force_reading_of_the_ledger() {
    let h = Harness::new().await;
    fill(&h.ledger, 1800).await;
    // Wait for the indexer: the blocks below `indexed_next` come from sled,
    // the rest (a part block) from the segments.
    for _ in 0..500 {
        if h.indexed_next() >= 3 * BLOCK {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let head = h.ledger.head().records;
    assert!(h.indexed_next() >= 3 * BLOCK && h.indexed_next() < head, "{} of {head}", h.indexed_next());
    assert!(std::fs::read_dir(h.dir.path().join("ledger")).unwrap().count() > 4, "several segments");

    let all = oracle(&h.lines());
    assert_eq!(all.len(), 1800);
    let ts_of = |n: usize| all[n]["ts"].as_str().unwrap().to_owned();
    let (late, early) = (ts_of(400), ts_of(1500));
    let cases: Vec<(String, Keep)> = vec![
        (String::new(), Box::new(|_| true)),
        ("principal=alice".into(), Box::new(|e| e["principal"] == "alice")),
        ("bucket=data".into(), Box::new(|e| e["bucket"] == "data")),
        ("principal=bob&bucket=logs".into(), Box::new(|e| e["principal"] == "bob" && e["bucket"] == "logs")),
        ("key_prefix=dir3/".into(), Box::new(|e| e["key"].as_str().is_some_and(|k| k.starts_with("dir3/")))),
        ("outcome=denied".into(), Box::new(|e| e["outcome"] == "denied")),
        (
            "outcome=client_abort&bucket=data".into(),
            Box::new(|e| e["outcome"] == "client_abort" && e["bucket"] == "data"),
        ),
        (format!("since={early}&until={late}"), {
            let (early, late) = (early.clone(), late.clone());
            Box::new(move |e| {
                let ts = e["ts"].as_str().unwrap();
                ts >= early.as_str() && ts < late.as_str()
            })
        }),
        (format!("principal=carol&since={early}"), {
            let early = early.clone();
            Box::new(move |e| e["principal"] == "carol" && e["ts"].as_str().unwrap() >= early.as_str())
        }),
        (format!("until={early}&key_prefix=dir1/"), {
            let early = early.clone();
            Box::new(move |e| {
                e["ts"].as_str().unwrap() < early.as_str() && e["key"].as_str().is_some_and(|k| k.starts_with("dir1/"))
            })
        }),
        ("principal=nobody".into(), Box::new(|_| false)),
    ];
    for (query, keep) in &cases {
        let expected: Vec<Value> = all.iter().filter(|e| keep(e)).cloned().collect();
        for limit in [1000, 100, 37] {
            let got = all_pages(&h, query, limit).await;
            assert_eq!(got.len(), expected.len(), "{query} limit {limit}: count");
            for (g, e) in got.iter().zip(&expected) {
                assert_eq!(g, e, "{query} limit {limit}");
            }
            assert_eq!(bytes(&got), bytes(&expected), "{query}: bytes");
        }
    }
    // Events still running and ends that came late are both there.
    assert!(all.iter().any(|e| e["end_seq"].is_null()));
    assert!(all.iter().any(|e| e["end_seq"].as_u64().unwrap_or(0) / BLOCK > e["start_seq"].as_u64().unwrap() / BLOCK));

    // The default page is 100; limits outside 1..=1000 and bad values are refused.
    let page = h.get("/v1/egress").await.json();
    assert_eq!(page["events"].as_array().unwrap().len(), 100);
    assert_eq!(page["next_cursor"], all[99]["start_seq"]);
    h.get("/v1/egress?limit=0").await.assert_error(StatusCode::BAD_REQUEST, "limit:");
    h.get("/v1/egress?limit=1001").await.assert_error(StatusCode::BAD_REQUEST, "limit:");
    h.get("/v1/egress?limit=many").await.assert_error(StatusCode::BAD_REQUEST, "limit:");
    h.get("/v1/egress?cursor=-1").await.assert_error(StatusCode::BAD_REQUEST, "cursor:");
    h.get("/v1/egress?since=yesterday").await.assert_error(StatusCode::BAD_REQUEST, "since:");
    h.get("/v1/egress?until=2026-13-01T00:00:00Z").await.assert_error(StatusCode::BAD_REQUEST, "until:");
    h.get("/v1/egress?outcome=fine").await.assert_error(StatusCode::BAD_REQUEST, "outcome:");

    // Summaries: the same totals as the brute-force join.
    for (group_by, key_of) in [
        ("principal", Box::new(|e: &Value| e["principal"].clone()) as Box<dyn Fn(&Value) -> Value>),
        ("bucket", Box::new(|e: &Value| e["bucket"].clone())),
        ("day", Box::new(|e: &Value| json!(e["ts"].as_str().unwrap()[..10]))),
    ] {
        for (range, keep) in [
            (String::new(), Box::new(|_: &Value| true) as Keep),
            (format!("&since={early}&until={late}"), {
                let (early, late) = (early.clone(), late.clone());
                Box::new(move |e: &Value| {
                    let ts = e["ts"].as_str().unwrap();
                    ts >= early.as_str() && ts < late.as_str()
                })
            }),
        ] {
            let mut expected: BTreeMap<String, (u64, u64)> = BTreeMap::new();
            for e in all.iter().filter(|e| keep(e)) {
                let total = expected.entry(key_of(e).to_string()).or_default();
                total.0 += 1;
                total.1 += e["bytes_sent"].as_u64().unwrap_or(0);
            }
            let reply = h.get(&format!("/v1/egress/summary?group_by={group_by}{range}")).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
            let got: BTreeMap<String, (u64, u64)> = reply.json()["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| (g["key"].to_string(), (g["requests"].as_u64().unwrap(), g["bytes_sent"].as_u64().unwrap())))
                .collect();
            assert_eq!(got, expected, "summary by {group_by}{range}");
        }
    }
    h.get("/v1/egress/summary").await.assert_error(StatusCode::BAD_REQUEST, "group_by:");
    h.get("/v1/egress/summary?group_by=week").await.assert_error(StatusCode::BAD_REQUEST, "group_by:");

    // A request answered a moment ago is found at once, before the indexer
    // or anything else has seen it.
    let start = h.ledger.append(start_of(9001)).await.unwrap();
    h.ledger.append(end_of(9001, start.seq)).await.unwrap();
    let newest = h.get("/v1/egress?limit=1&principal=bob").await.json();
    assert_eq!(newest["events"][0]["req"], "req-9001");
    assert_eq!(newest["events"][0]["start_seq"], start.seq);
    assert_eq!(newest["events"][0]["bytes_sent"], 9001 * 37 % 5000 + 1);
    h.close().await;
}

// ---------------------------------------------------------------- ledger

#[tokio::test]
async fn verify_checkpoints_pubkey_export_and_metrics() {
    let h = Harness::new().await;
    fill(&h.ledger, 700).await;

    // No checkpoint yet (one follows every 10,000 lines or a minute).
    h.get("/v1/ledger/checkpoints/latest").await.assert_error(StatusCode::NOT_FOUND, "no checkpoint");
    h.ledger.checkpoint().await.unwrap();
    let latest = h.get("/v1/ledger/checkpoints/latest").await;
    assert_eq!(latest.status, StatusCode::OK);
    assert!(latest.content_type().starts_with("text/plain"));
    assert_eq!(latest.body, std::fs::read(h.dir.path().join("checkpoints/latest.txt")).unwrap());
    assert!(latest.text().starts_with("egress-admin-test\n"));

    let pubkey = h.get("/v1/ledger/pubkey").await;
    assert!(pubkey.content_type().starts_with("text/plain"));
    assert_eq!(pubkey.text(), std::fs::read_to_string(h.dir.path().join("keys/checkpoint.pub")).unwrap());

    // Verify: what `ledger verify --json` prints.
    let reply = h.call(Method::POST, "/v1/ledger/verify", Some(TOKEN), None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text());
    let report =
        egress_ledger::verify::verify(h.dir.path(), &egress_ledger::verify::VerifyOptions::default(), |_| {}).unwrap();
    assert_eq!(reply.json(), serde_json::to_value(&report).unwrap());
    assert_eq!(reply.json()["ok"], true);
    assert_eq!(reply.json()["records"], h.ledger.head().records);
    assert!(reply.json()["checkpoint_files"].as_u64().unwrap() >= 1);

    // Export: the segments byte for byte, and seq ranges of them.
    let export = h.get("/v1/ledger/export").await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.content_type(), "application/x-ndjson");
    assert_eq!(export.body, h.segment_bytes());
    let lines: Vec<&[u8]> = export.body.split_inclusive(|b| *b == b'\n').collect();
    let part = h.get("/v1/ledger/export?from_seq=1000&to_seq=1200").await;
    assert_eq!(part.body, lines[1000..=1200].concat());
    let tail = h.get("/v1/ledger/export?from_seq=1390").await;
    assert_eq!(tail.body, lines[1390..].concat());
    assert!(h.get("/v1/ledger/export?from_seq=999999").await.body.is_empty());
    h.get("/v1/ledger/export?from_seq=5&to_seq=4").await.assert_error(StatusCode::BAD_REQUEST, "to_seq:");
    h.get("/v1/ledger/export?from_seq=x").await.assert_error(StatusCode::BAD_REQUEST, "from_seq:");

    // Metrics: the registry the data plane counts into, and the writer's.
    h.metrics.request_finished("GetObject", 200, Some("data"), 4096);
    let metrics = h.get("/metrics").await;
    assert_eq!(metrics.status, StatusCode::OK);
    assert!(metrics.content_type().starts_with("text/plain; version=0.0.4"), "{}", metrics.content_type());
    let text = metrics.text();
    assert!(text.contains("egress_requests_total{operation=\"GetObject\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("egress_bytes_out_total{bucket=\"data\"} 4096"), "{text}");
    assert!(text.contains("egress_ledger_append_seconds_count"), "{text}");
    h.close().await;
}

/// Once the oldest segments are pruned (archived elsewhere), a read that
/// reaches before the first local seq is 410 Gone, naming the archive; what
/// is local still answers, and verify says where the local history starts.
#[tokio::test]
async fn pruned_history_is_gone_with_a_message_naming_the_archive() {
    let h = Harness::new().await;
    fill(&h.ledger, 2400).await;
    let ledger_dir = h.dir.path().join("ledger");
    let listed = || egress_ledger::reader::LedgerReader::open(&ledger_dir).unwrap().segments().to_vec();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let compressed = |name: &str| egress_ledger::segment::form_of(name) == egress_ledger::segment::SegmentForm::Zstd;
    while !compressed(&listed()[0].1) {
        assert!(std::time::Instant::now() < deadline, "the compactor never compressed {:?}", listed());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(listed().len() >= 3, "{:?}", listed());
    egress_ledger::prune::prune_segment(&ledger_dir, listed()[0].0).unwrap();
    let first_local = listed()[0].0;

    let gone = h.get("/v1/ledger/export").await;
    gone.assert_error(StatusCode::GONE, &format!("the history before seq {first_local} is no longer on this host"));
    assert_eq!(gone.json()["error"]["code"], "pruned");
    gone.assert_error_mentions(StatusCode::GONE, "archive");
    h.get("/v1/egress/summary?group_by=principal").await.assert_error_mentions(StatusCode::GONE, "archive");
    let local = h.get(&format!("/v1/ledger/export?from_seq={first_local}")).await;
    assert_eq!(local.status, StatusCode::OK);
    assert!(local.text().starts_with(&format!("{{\"v\":1,\"seq\":{first_local},")));
    assert_eq!(h.get("/v1/egress?limit=10").await.status, StatusCode::OK, "the newest events are local");

    let verify = h.call(Method::POST, "/v1/ledger/verify", Some(TOKEN), None).await;
    assert_eq!(verify.json()["ok"], true, "{}", verify.text());
    assert_eq!(verify.json()["from_seq"], first_local);
    h.close().await;
}

#[tokio::test]
async fn policies_grants_and_the_simulator() {
    let h = Harness::new().await;
    let call = |method: Method, uri: &'static str, body: Option<&'static str>| h.call(method, uri, Some(TOKEN), body);
    let public = r#"{"Version":"2012-10-17","Statement":[
        {"Sid":"ReadPublic","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/public/*"}]}"#;

    // Documents the proxy cannot evaluate are refused with the reason.
    let unknown_operator = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*",
        "Condition":{"StringSortOf":{"aws:username":"x"}}}]}"#;
    let bad = call(Method::PUT, "/v1/policies/broken", Some(unknown_operator)).await;
    bad.assert_error_mentions(StatusCode::BAD_REQUEST, "StringSortOf");
    assert_eq!(bad.json()["error"]["code"], "malformed_policy");
    call(Method::PUT, "/v1/policies/broken", Some("{not json"))
        .await
        .assert_error_mentions(StatusCode::BAD_REQUEST, "");
    call(Method::PUT, "/v1/policies/read-only", Some(public))
        .await
        .assert_error_mentions(StatusCode::CONFLICT, "built-in");
    call(Method::PUT, "/v1/policies/bad%20name", Some(public))
        .await
        .assert_error_mentions(StatusCode::BAD_REQUEST, "name");

    // Known to the language, never carried by a request through the proxy: stored, with a warning.
    let arn_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
        "Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/x"}}}]}"#;
    let warned = call(Method::PUT, "/v1/policies/arn-only", Some(arn_only)).await;
    assert_eq!(warned.status, StatusCode::OK, "{}", warned.text());
    assert!(warned.text().contains("no request through this proxy carries it"), "{}", warned.text());
    assert_eq!(call(Method::DELETE, "/v1/policies/arn-only", None).await.status, StatusCode::NO_CONTENT);

    let stored = call(Method::PUT, "/v1/policies/public-read", Some(public)).await;
    assert_eq!(stored.status, StatusCode::OK, "{}", stored.text());
    let sha256 = stored.json()["sha256"].as_str().unwrap().to_owned();
    let listed = h.get("/v1/policies").await.json();
    let names: Vec<&str> = listed["policies"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["read-only", "read-write", "full", "public-read"]);

    // A principal names only policies that exist; nothing is made otherwise.
    let post = |body: &'static str| h.call(Method::POST, "/v1/principals", Some(TOKEN), Some(body));
    post(r#"{"name":"alice","policies":["nope"]}"#).await.assert_error_mentions(StatusCode::NOT_FOUND, "nope");
    assert!(h.ledger.store().unwrap().principals.get("alice").unwrap().is_none());
    post(r#"{"name":"anonymous"}"#).await.assert_error_mentions(StatusCode::BAD_REQUEST, "built-in principal");
    let created = post(r#"{"name":"alice","policies":["public-read"],"tags":{"team":"vision"}}"#).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let principals = h.get("/v1/principals").await.json();
    assert_eq!(principals["principals"][0]["policies"], serde_json::json!(["public-read"]));
    assert_eq!(principals["principals"][0]["tags"]["team"], "vision");

    let simulate = |body: &'static str| h.call(Method::POST, "/v1/authorize/simulate", Some(TOKEN), Some(body));
    let allowed = simulate(r#"{"principal":"alice","action":"s3:GetObject","resource":"arn:aws:s3:::data/public/a"}"#)
        .await
        .json();
    assert_eq!(
        (allowed["decision"].as_str(), allowed["sid"].as_str(), allowed["policy_sha256"].as_str()),
        (Some("allow"), Some("ReadPublic"), Some(sha256.as_str()))
    );
    let denied = simulate(r#"{"principal":"alice","action":"s3:PutObject","resource":"arn:aws:s3:::data/public/a"}"#)
        .await
        .json();
    assert_eq!(denied["decision"], "implicit_deny");
    simulate(r#"{"principal":"nobody","action":"s3:GetObject","resource":"*"}"#)
        .await
        .assert_error_mentions(StatusCode::NOT_FOUND, "nobody");

    // Attachments: an attached policy cannot be deleted; limits are checked.
    call(Method::DELETE, "/v1/policies/public-read", None).await.assert_error_mentions(StatusCode::CONFLICT, "alice");
    let limits = |body: &'static str| h.call(Method::PUT, "/v1/principals/alice/limits", Some(TOKEN), Some(body));
    limits(r#"{"quotas":[{"bytes":10,"per":"week"}]}"#).await.assert_error_mentions(StatusCode::BAD_REQUEST, "body");
    limits(r#"{"quotas":[{"bytes":0,"per":"day"}]}"#)
        .await
        .assert_error_mentions(StatusCode::BAD_REQUEST, "quotas[0].bytes");
    limits(r#"{"requests_per_second":0}"#).await.assert_error_mentions(StatusCode::BAD_REQUEST, "requests_per_second");
    assert_eq!(limits(r#"{"quotas":[{"bytes":1000,"per":"day","bucket":"data"}]}"#).await.status, StatusCode::OK);
    let detached = call(Method::PUT, "/v1/principals/alice/policies", Some(r#"{"policies":[]}"#)).await;
    assert_eq!(detached.status, StatusCode::OK, "{}", detached.text());
    assert_eq!(call(Method::DELETE, "/v1/policies/public-read", None).await.status, StatusCode::NO_CONTENT);
    let anonymous = call(Method::PUT, "/v1/principals/anonymous/policies", Some(r#"{"policies":["read-only"]}"#)).await;
    assert_eq!(anonymous.status, StatusCode::OK, "{}", anonymous.text());

    // Every change is on the record, with the document's hash and the token that made it.
    let lines = h.lines();
    let token_id = AdminToken::new(TOKEN).unwrap().id();
    let put = lines.iter().find(|l| l["event"] == "policy_put" && l["policy"] == "public-read").unwrap();
    assert_eq!((put["policy"].as_str(), put["sha256"].as_str()), (Some("public-read"), Some(sha256.as_str())));
    assert_eq!(put["by"], format!("admin:{token_id}"));
    let hash = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(put["document"].as_str().unwrap().as_bytes()));
    assert_eq!(hash, sha256, "the note's hash is the hash of its document");
    let grants: Vec<&Value> = lines.iter().filter(|l| l["event"] == "grants_set").collect();
    assert_eq!(grants.len(), 4, "create, limits, detach, anonymous: {grants:?}");
    assert_eq!(grants[0]["policies"][0], serde_json::json!({"policy": "public-read", "sha256": sha256}));
    assert_eq!(grants[1]["limits"]["quotas"][0]["bucket"], "data");
    assert_eq!(grants[3]["principal"], "anonymous");
    assert!(lines.iter().any(|l| l["event"] == "policy_deleted" && l["policy"] == "public-read"));
    h.close().await;
}
