//! Provisioning end to end against a real moto server: the admin API is
//! driven in-process, and moto is read back with the AWS SDK directly as an
//! independent oracle.
//!
//! moto comes from the test venv (`EGRESS_TEST_VENV`, made by
//! scripts/venv.sh from tests/requirements.txt), or from `PATH`, started by
//! the end-to-end crate's harness (`egress_e2e::moto`).

use std::sync::Arc;

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLoggingStatus, DefaultRetention, ObjectLockConfiguration, ObjectLockEnabled, ObjectLockRetentionMode,
    ObjectLockRule,
};
use egress_admin::provisioning::{Provisioner, ProvisioningSpec, policy};
use egress_admin::{AdminState, AdminToken};
use egress_e2e::moto::{ACCOUNT, Moto};
use egress_metrics::Metrics;
use http::{Request, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const TOKEN: &str = "a-test-token-of-enough-length";
const REGION: &str = "eu-west-1";
const PROXY_ARN: &str = "arn:aws:iam::123456789012:role/egress-proxy";

/// AWS configuration toward `endpoint` with dummy credentials: moto checks
/// no signatures, and nothing asks the credential chain or IMDS.
async fn sdk_config(endpoint: &str) -> aws_types::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(egress_admin::provisioning::https_client())
        .region(aws_types::region::Region::new(REGION))
        .credentials_provider(aws_sdk_s3::config::Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .endpoint_url(endpoint)
        .load()
        .await
}

/// The admin API over a real ledger in a temp dir, provisioning toward `endpoint`.
struct Api {
    router: axum::Router,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn new(endpoint: &str) -> Api {
        let dir = tempfile::tempdir().expect("temp dir");
        let (ledger, _) =
            egress_ledger::Ledger::open(&egress_ledger::LedgerConfig::new(dir.path(), "t")).expect("open ledger");
        let specs = ledger.store().expect("a store").tree("provisioning").expect("tree");
        let provisioner = Arc::new(Provisioner::with_sdk_config(sdk_config(endpoint).await, specs));
        let grants = Arc::new(egress_admin::access::GrantsCache::new(ledger.store().expect("a store").access.clone()));
        let state = AdminState {
            ledger: ledger.clone(),
            token: Arc::new(AdminToken::new(TOKEN).expect("token")),
            metrics: Arc::new(Metrics::default()),
            provisioner: Arc::clone(&provisioner),
            reconciler: Arc::new(egress_admin::reconciliation::Reconciler::new(
                ledger.clone(),
                Arc::clone(&provisioner),
                ledger.store().expect("a store").tree("reconciliations").expect("tree"),
                egress_reconcile::report::DeliveryWindows::default(),
                Vec::new(),
            )),
            grants,
            usage: Arc::new(egress_admin::usage::NoDataPlane),
            archive: None,
        };
        Api { router: egress_admin::router(state), _dir: dir }
    }

    async fn call(&self, method: &str, uri: &str, body: Option<Vec<u8>>) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", format!("Bearer {TOKEN}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.unwrap_or_default()))
            .expect("request");
        let response = self.router.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{status}: not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    async fn put(&self, name: &str, spec: &Value, dry_run: bool) -> (StatusCode, Value) {
        let query = if dry_run { "?dry_run=true" } else { "" };
        self.call("PUT", &format!("/v1/provisioning/{name}{query}"), Some(spec.to_string().into_bytes())).await
    }

    async fn get(&self, name: &str) -> (StatusCode, Value) {
        self.call("GET", &format!("/v1/provisioning/{name}"), None).await
    }
}

fn spec() -> Value {
    json!({
        "data_bucket": "egress-data",
        "log_bucket": "egress-logs",
        "trail_name": "egress-reads",
        "region": REGION,
        "proxy_principal_arn": PROXY_ARN,
        "allowed_source_cidrs": ["203.0.113.0/24"],
    })
}

/// `{step: result}` of an apply answer (or `{step: state}` of a GET).
fn results(report: &Value, field: &str) -> Vec<(String, String)> {
    report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| (s["step"].as_str().unwrap_or("").to_owned(), s[field].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// Whether the report has the 12 steps of a spec without an archive bucket,
/// all `want`.
fn all(report: &Value, field: &str, want: &str) -> bool {
    all_of(report, field, want, 12)
}

fn all_of(report: &Value, field: &str, want: &str, steps: usize) -> bool {
    let results = results(report, field);
    results.len() == steps && results.iter().all(|(_, r)| r == want)
}

fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
    policy["Statement"]
        .as_array()
        .and_then(|list| list.iter().find(|s| s["Sid"] == sid))
        .unwrap_or_else(|| panic!("no statement {sid} in {policy}"))
}

fn as_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn apply_is_idempotent_shows_drift_and_corrects_it() {
    let moto = Moto::start();
    let api = Api::new(&moto.endpoint()).await;
    let sdk = sdk_config(&moto.endpoint()).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let cloudtrail = aws_sdk_cloudtrail::Client::new(&sdk);

    // A dry run plans everything and changes nothing, not even the store.
    let (status, plan) = api.put("main", &spec(), true).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert!(all(&plan, "result", "would_create"), "{plan}");
    let buckets = s3.list_buckets().send().await.expect("list buckets");
    assert!(buckets.buckets().is_empty(), "a dry run created {:?}", buckets.buckets());
    let trails = cloudtrail.describe_trails().send().await.expect("describe trails");
    assert!(trails.trail_list().is_empty());
    assert_eq!(api.get("main").await.0, StatusCode::NOT_FOUND);

    // The first apply creates everything.
    let (status, report) = api.put("main", &spec(), false).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(all(&report, "result", "created"), "{report}");
    assert_eq!(report["trail_is_logging"], true);

    // Read back with the SDK directly.
    for bucket in ["egress-data", "egress-logs"] {
        s3.head_bucket().bucket(bucket).send().await.unwrap_or_else(|e| panic!("{bucket}: {e:?}"));
        let pab = s3.get_public_access_block().bucket(bucket).send().await.expect("public access block");
        let pab = pab.public_access_block_configuration().expect("configuration");
        assert_eq!(
            [
                pab.block_public_acls(),
                pab.ignore_public_acls(),
                pab.block_public_policy(),
                pab.restrict_public_buckets()
            ],
            [Some(true); 4],
            "{bucket}"
        );
    }
    let encryption = s3.get_bucket_encryption().bucket("egress-data").send().await.expect("encryption");
    let algorithm = encryption
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .map(|d| d.sse_algorithm().as_str().to_owned());
    assert_eq!(algorithm.as_deref(), Some("AES256"));
    let logging = s3.get_bucket_logging().bucket("egress-data").send().await.expect("logging");
    let target = logging.logging_enabled().expect("logging on");
    assert_eq!((target.target_bucket(), target.target_prefix()), ("egress-logs", "s3-access/"));
    let ownership = s3.get_bucket_ownership_controls().bucket("egress-logs").send().await.expect("ownership");
    let rules = ownership.ownership_controls().map(|c| c.rules().to_vec()).unwrap_or_default();
    assert_eq!(rules.first().map(|r| r.object_ownership().as_str()), Some("BucketOwnerEnforced"));

    let data_policy = s3.get_bucket_policy().bucket("egress-data").send().await.expect("data policy");
    let data_policy: Value = serde_json::from_str(data_policy.policy().expect("policy")).expect("JSON");
    let only_proxy = statement(&data_policy, "OnlyTheProxyReadsObjects");
    assert_eq!(only_proxy["Effect"], "Deny");
    assert!(as_list(&only_proxy["Action"]).contains(&"s3:GetObject".to_owned()));
    assert_eq!(only_proxy["Resource"], "arn:aws:s3:::egress-data/*");
    assert_eq!(only_proxy["Condition"]["ArnNotEquals"]["aws:PrincipalArn"], PROXY_ARN);
    let networks = statement(&data_policy, "ReadsOnlyFromAllowedNetworks");
    assert_eq!(as_list(&networks["Condition"]["NotIpAddress"]["aws:SourceIp"]), ["203.0.113.0/24"]);
    let tls = statement(&data_policy, "DenyRequestsWithoutTls");
    assert_eq!((&tls["Effect"], &tls["Condition"]["Bool"]["aws:SecureTransport"]), (&json!("Deny"), &json!("false")));

    let log_policy = s3.get_bucket_policy().bucket("egress-logs").send().await.expect("log policy");
    let log_policy: Value = serde_json::from_str(log_policy.policy().expect("policy")).expect("JSON");
    let delivery = statement(&log_policy, "S3ServerAccessLogDelivery");
    assert_eq!(delivery["Principal"]["Service"], "logging.s3.amazonaws.com");
    assert_eq!(delivery["Resource"], "arn:aws:s3:::egress-logs/s3-access/*");
    assert_eq!(delivery["Condition"]["ArnLike"]["aws:SourceArn"], "arn:aws:s3:::egress-data");
    assert_eq!(delivery["Condition"]["StringEquals"]["aws:SourceAccount"], ACCOUNT);
    let trail_arn = format!("arn:aws:cloudtrail:{REGION}:{ACCOUNT}:trail/egress-reads");
    let acl_check = statement(&log_policy, "CloudTrailAclCheck");
    assert_eq!(acl_check["Action"], "s3:GetBucketAcl");
    assert_eq!(acl_check["Resource"], "arn:aws:s3:::egress-logs");
    assert_eq!(acl_check["Condition"]["StringEquals"]["aws:SourceArn"], trail_arn.as_str());
    let write = statement(&log_policy, "CloudTrailWrite");
    assert_eq!(write["Resource"], format!("arn:aws:s3:::egress-logs/AWSLogs/{ACCOUNT}/*"));
    assert_eq!(write["Condition"]["StringEquals"]["s3:x-amz-acl"], "bucket-owner-full-control");

    let trail = cloudtrail.get_trail().name("egress-reads").send().await.expect("trail");
    let trail = trail.trail().expect("a trail");
    assert_eq!(trail.s3_bucket_name(), Some("egress-logs"));
    assert_eq!(trail.log_file_validation_enabled(), Some(true));
    let selectors = cloudtrail.get_event_selectors().trail_name("egress-reads").send().await.expect("selectors");
    assert!(selectors.event_selectors().is_empty(), "no basic selectors (management events off)");
    let [selector] = selectors.advanced_event_selectors() else {
        panic!("one advanced selector: {selectors:?}");
    };
    let fields: Vec<(String, Vec<String>, Vec<String>)> = selector
        .field_selectors()
        .iter()
        .map(|f| (f.field().to_owned(), f.equals().to_vec(), f.starts_with().to_vec()))
        .collect();
    for want in [
        ("eventCategory", vec!["Data"], vec![]),
        ("resources.type", vec!["AWS::S3::Object"], vec![]),
        ("readOnly", vec!["true"], vec![]),
        ("resources.ARN", vec![], vec!["arn:aws:s3:::egress-data/"]),
    ] {
        let want = (
            want.0.to_owned(),
            want.1.iter().map(|s| (*s).to_owned()).collect(),
            want.2.iter().map(|s| (*s).to_owned()).collect(),
        );
        assert!(fields.contains(&want), "{want:?} not in {fields:?}");
    }
    let status = cloudtrail.get_trail_status().name("egress-reads").send().await.expect("trail status");
    assert_eq!(status.is_logging(), Some(true));

    // Applying again changes nothing; GET sees no drift.
    let (status, again) = api.put("main", &spec(), false).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert!(all(&again, "result", "unchanged"), "{again}");
    let (status, state) = api.get("main").await;
    assert_eq!(status, StatusCode::OK, "{state}");
    assert_eq!(state["drift"], false, "{state}");
    assert!(all(&state, "state", "in_sync"), "{state}");
    assert_eq!(state["spec"]["log_prefix"], "s3-access/");

    // The same policy written differently (statements reversed, one-element
    // lists) is no drift.
    let mut reordered = data_policy.clone();
    if let Some(list) = reordered["Statement"].as_array_mut() {
        list.reverse();
        for s in list.iter_mut() {
            s["Resource"] = json!(as_list(&s["Resource"]));
            s.as_object_mut().map(|m| m.remove("Sid"));
        }
    }
    s3.put_bucket_policy().bucket("egress-data").policy(reordered.to_string()).send().await.expect("put policy");
    let (_, state) = api.get("main").await;
    assert_eq!(state["drift"], false, "{state}");

    // Logging removed out of band: GET marks that step, and only that one;
    // the next apply puts it back.
    s3.put_bucket_logging()
        .bucket("egress-data")
        .bucket_logging_status(BucketLoggingStatus::builder().build())
        .send()
        .await
        .expect("remove logging");
    let (_, state) = api.get("main").await;
    assert_eq!(state["drift"], true, "{state}");
    for (step, state) in results(&state, "state") {
        let want = if step == "data_bucket.logging" { "missing" } else { "in_sync" };
        assert_eq!(state, want, "{step}");
    }
    let (status, fixed) = api.put("main", &spec(), false).await;
    assert_eq!(status, StatusCode::OK, "{fixed}");
    for (step, result) in results(&fixed, "result") {
        let want = if step == "data_bucket.logging" { "updated" } else { "unchanged" };
        assert_eq!(result, want, "{step}: {fixed}");
    }
    let logging = s3.get_bucket_logging().bucket("egress-data").send().await.expect("logging");
    assert_eq!(logging.logging_enabled().map(|l| l.target_bucket().to_owned()).as_deref(), Some("egress-logs"));

    // A stopped trail and a changed policy are drift too, and corrected.
    cloudtrail.stop_logging().name("egress-reads").send().await.expect("stop logging");
    let mut widened = data_policy.clone();
    widened["Statement"][1]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] =
        json!([PROXY_ARN, "arn:aws:iam::123456789012:user/someone"]);
    s3.put_bucket_policy().bucket("egress-data").policy(widened.to_string()).send().await.expect("put policy");
    let (_, plan) = api.put("main", &spec(), true).await;
    let changed: Vec<(String, String)> =
        results(&plan, "result").into_iter().filter(|(_, r)| r != "unchanged").collect();
    assert_eq!(
        changed,
        [
            ("data_bucket.policy".to_owned(), "would_update".to_owned()),
            ("trail.logging".to_owned(), "would_update".to_owned())
        ],
        "{plan}"
    );
    let (_, fixed) = api.put("main", &spec(), false).await;
    assert_eq!(fixed["trail_is_logging"], true, "{fixed}");
    let (_, state) = api.get("main").await;
    assert_eq!(state["drift"], false, "{state}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_spec_is_refused_naming_the_field() {
    // Nothing listens here: a refused spec must not reach AWS.
    let api = Api::new("http://127.0.0.1:9").await;
    let cases: [(&str, Value); 12] = [
        ("data_bucket", json!({"data_bucket": "Not_A_Bucket"})),
        ("log_bucket", json!({"log_bucket": "ab"})),
        ("proxy_principal_arn", json!({"proxy_principal_arn": "egress-proxy"})),
        ("allowed_source_cidrs[0]", json!({"allowed_source_cidrs": ["10.0.0.0/40"]})),
        ("trail_name", json!({"trail_name": null})),
        ("colour", json!({"colour": "blue"})),
        ("retention_days", json!({"retention_days": 30})),
        ("archive_retention_days", json!({"archive_retention_days": 30})),
        ("archive_retention_days", json!({"archive_bucket": "egress-archive"})),
        ("archive_retention_days", json!({"archive_bucket": "egress-archive", "archive_retention_days": 36_501})),
        ("archive_bucket", json!({"archive_bucket": "egress-logs", "archive_retention_days": 30})),
        ("archive_bucket", json!({"archive_bucket": "Egress_Archive", "archive_retention_days": 30})),
    ];
    for (field, change) in cases {
        let mut body = spec();
        for (k, v) in change.as_object().expect("object") {
            if v.is_null() {
                body.as_object_mut().map(|m| m.remove(k));
            } else {
                body[k] = v.clone();
            }
        }
        let (status, answer) = api.put("main", &body, false).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{field}: {answer}");
        assert_eq!(answer["error"]["code"], "bad_request");
        let message = answer["error"]["message"].as_str().unwrap_or("");
        assert!(message.starts_with(&format!("{field}: ")), "{field}: {message}");
        if field == "retention_days" {
            assert!(message.contains("archive_bucket") && message.contains("archive_retention_days"), "{message}");
        }
    }
    let (status, answer) = api.call("PUT", "/v1/provisioning/main", Some(b"{not json".to_vec())).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let (status, answer) = api.put("Bad_Name", &spec(), false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    // Nothing was stored.
    assert_eq!(api.get("main").await.0, StatusCode::NOT_FOUND);
    // The routes are in the OpenAPI document.
    let (status, openapi) = api.call("GET", "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    let path = &openapi["paths"]["/v1/provisioning/{name}"];
    assert!(path["put"].is_object() && path["get"].is_object(), "{path}");
    let fields = &openapi["components"]["schemas"]["ProvisioningSpec"]["properties"];
    assert!(fields["archive_bucket"].is_object() && fields["archive_retention_days"].is_object(), "{fields}");
}

const ARCHIVE: &str = "egress-archive";
const ARCHIVE_STEPS: usize = 19;

fn archive_spec(days: u32) -> Value {
    let mut spec = spec();
    spec["archive_bucket"] = json!(ARCHIVE);
    spec["archive_retention_days"] = json!(days);
    spec
}

/// `GetObjectLockConfiguration` of the archive: enabled, mode, days, years.
async fn lock_of(s3: &aws_sdk_s3::Client) -> (bool, Option<String>, Option<i32>, Option<i32>) {
    let lock = s3.get_object_lock_configuration().bucket(ARCHIVE).send().await.expect("lock configuration");
    let config = lock.object_lock_configuration().expect("a configuration");
    let retention = config.rule().and_then(|r| r.default_retention());
    (
        config.object_lock_enabled() == Some(&ObjectLockEnabled::Enabled),
        retention.and_then(|r| r.mode()).map(|m| m.as_str().to_owned()),
        retention.and_then(DefaultRetention::days),
        retention.and_then(DefaultRetention::years).filter(|y| *y != 0),
    )
}

/// The archive's versioning status. moto 5.2 answers `GetBucketVersioning`
/// under a root element the SDK refuses (`GetBucketVersioningResponse`, not
/// `VersioningConfiguration`), so the status is read from the raw answer then.
async fn versioning_of(s3: &aws_sdk_s3::Client) -> Option<String> {
    match s3.get_bucket_versioning().bucket(ARCHIVE).send().await {
        Ok(output) => output.status().map(|s| s.as_str().to_owned()),
        Err(aws_sdk_s3::error::SdkError::ServiceError(err)) if err.raw().status().is_success() => {
            let body = String::from_utf8_lossy(err.raw().body().bytes().unwrap_or_default()).into_owned();
            let status = body.split_once("<Status>").and_then(|(_, rest)| rest.split_once("</Status>"));
            status.map(|(status, _)| status.to_owned())
        }
        Err(err) => panic!("versioning: {err:?}"),
    }
}

/// The steps whose result (or state) is not `unchanged` (or `in_sync`).
fn changed(report: &Value, field: &str, quiet: &str) -> Vec<(String, String)> {
    results(report, field).into_iter().filter(|(_, r)| r != quiet).collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(a, b)| ((*a).to_owned(), (*b).to_owned())).collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archive_bucket_gets_object_lock_and_a_write_once_policy() {
    let moto = Moto::start();
    let api = Api::new(&moto.endpoint()).await;
    let sdk = sdk_config(&moto.endpoint()).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());

    let (status, plan) = api.put("main", &archive_spec(30), true).await;
    assert_eq!(status, StatusCode::OK, "{plan}");
    assert!(all_of(&plan, "result", "would_create", ARCHIVE_STEPS), "{plan}");
    let (status, report) = api.put("main", &archive_spec(30), false).await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(all_of(&report, "result", "created", ARCHIVE_STEPS), "{report}");
    let archive_steps: Vec<String> = results(&report, "result").into_iter().skip(12).map(|(s, _)| s).collect();
    assert_eq!(
        archive_steps,
        [
            "archive_bucket",
            "archive_bucket.versioning",
            "archive_bucket.object_lock",
            "archive_bucket.public_access_block",
            "archive_bucket.ownership_controls",
            "archive_bucket.encryption",
            "archive_bucket.policy"
        ]
    );

    // Read back with the SDK directly.
    assert_eq!(lock_of(&s3).await, (true, Some("COMPLIANCE".to_owned()), Some(30), None));
    assert_eq!(versioning_of(&s3).await.as_deref(), Some("Enabled"));
    let pab = s3.get_public_access_block().bucket(ARCHIVE).send().await.expect("public access block");
    let pab = pab.public_access_block_configuration().expect("configuration");
    assert_eq!(
        [pab.block_public_acls(), pab.ignore_public_acls(), pab.block_public_policy(), pab.restrict_public_buckets()],
        [Some(true); 4]
    );
    let ownership = s3.get_bucket_ownership_controls().bucket(ARCHIVE).send().await.expect("ownership");
    let rules = ownership.ownership_controls().map(|c| c.rules().to_vec()).unwrap_or_default();
    assert_eq!(rules.first().map(|r| r.object_ownership().as_str()), Some("BucketOwnerEnforced"));
    let encryption = s3.get_bucket_encryption().bucket(ARCHIVE).send().await.expect("encryption");
    let algorithm = encryption
        .server_side_encryption_configuration()
        .and_then(|c| c.rules().first())
        .and_then(|r| r.apply_server_side_encryption_by_default())
        .map(|d| d.sse_algorithm().as_str().to_owned());
    assert_eq!(algorithm.as_deref(), Some("AES256"));
    let live = s3.get_bucket_policy().bucket(ARCHIVE).send().await.expect("archive policy");
    let live: Value = serde_json::from_str(live.policy().expect("policy")).expect("JSON");
    let stored: ProvisioningSpec = serde_json::from_value(report["spec"].clone()).expect("the spec");
    assert!(policy::same_policy(&live, &policy::archive_bucket_policy(&stored, ARCHIVE)), "{live}");
    let grant = statement(&live, "TheProxyWritesAndReadsObjects");
    assert_eq!(
        (&grant["Effect"], &grant["Condition"]["ArnEquals"]["aws:PrincipalArn"]),
        (&json!("Allow"), &json!(PROXY_ARN))
    );
    let once = statement(&live, "NoKeyIsWrittenTwice");
    assert_eq!(
        (&once["Effect"], &once["Principal"], &once["Action"]),
        (&json!("Deny"), &json!("*"), &json!("s3:PutObject"))
    );
    assert_eq!(once["Condition"]["Null"]["s3:if-none-match"], "true");
    let deletes = statement(&live, "NothingIsDeleted");
    assert!(as_list(&deletes["Action"]).contains(&"s3:DeleteObjectVersion".to_owned()), "{deletes}");
    assert!(
        as_list(&statement(&live, "TheLockStays")["Action"])
            .contains(&"s3:PutBucketObjectLockConfiguration".to_owned())
    );
    // The data bucket's policy is untouched by the archive.
    let data_policy = s3.get_bucket_policy().bucket("egress-data").send().await.expect("data policy");
    assert!(!data_policy.policy().unwrap_or_default().contains(ARCHIVE));

    // Applying again changes nothing; GET sees no drift.
    let (status, again) = api.put("main", &archive_spec(30), false).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert!(all_of(&again, "result", "unchanged", ARCHIVE_STEPS), "{again}");
    let (_, state) = api.get("main").await;
    assert_eq!(state["drift"], false, "{state}");
    assert!(all_of(&state, "state", "in_sync", ARCHIVE_STEPS), "{state}");

    // Drift on the lock configuration and on the policy is reported on those
    // two steps, and the next apply corrects both.
    let governance = DefaultRetention::builder().mode(ObjectLockRetentionMode::Governance).days(1).build();
    let weaker = ObjectLockConfiguration::builder()
        .object_lock_enabled(ObjectLockEnabled::Enabled)
        .rule(ObjectLockRule::builder().default_retention(governance).build())
        .build();
    s3.put_object_lock_configuration().bucket(ARCHIVE).object_lock_configuration(weaker).send().await.expect("weaken");
    let mut widened = live.clone();
    if let Some(list) = widened["Statement"].as_array_mut() {
        list.retain(|s| s["Sid"] != "NothingIsDeleted");
    }
    s3.put_bucket_policy().bucket(ARCHIVE).policy(widened.to_string()).send().await.expect("put policy");
    let (_, state) = api.get("main").await;
    assert_eq!(state["drift"], true, "{state}");
    assert_eq!(
        changed(&state, "state", "in_sync"),
        pairs(&[("archive_bucket.object_lock", "drifted"), ("archive_bucket.policy", "drifted")]),
        "{state}"
    );
    let lock_detail =
        state["steps"].as_array().and_then(|l| l.iter().find(|s| s["step"] == "archive_bucket.object_lock"));
    let lock_detail = lock_detail.map(|s| s["detail"].as_str().unwrap_or("").to_owned()).unwrap_or_default();
    assert!(lock_detail.contains("GOVERNANCE 1 days") && lock_detail.contains("COMPLIANCE 30 days"), "{lock_detail}");
    let (status, fixed) = api.put("main", &archive_spec(30), false).await;
    assert_eq!(status, StatusCode::OK, "{fixed}");
    assert_eq!(
        changed(&fixed, "result", "unchanged"),
        pairs(&[("archive_bucket.object_lock", "updated"), ("archive_bucket.policy", "updated")]),
        "{fixed}"
    );
    assert_eq!(lock_of(&s3).await, (true, Some("COMPLIANCE".to_owned()), Some(30), None));

    // A longer retention in the spec is an update of that one step.
    let (_, longer) = api.put("main", &archive_spec(400), false).await;
    assert_eq!(
        changed(&longer, "result", "unchanged"),
        pairs(&[("archive_bucket.object_lock", "updated")]),
        "{longer}"
    );
    assert_eq!(lock_of(&s3).await, (true, Some("COMPLIANCE".to_owned()), Some(400), None));

    // S3 refuses to suspend versioning on a bucket with Object Lock; moto
    // does not, which lets the versioning step be seen correcting it.
    let suspended = aws_sdk_s3::types::VersioningConfiguration::builder()
        .status(aws_sdk_s3::types::BucketVersioningStatus::Suspended);
    s3.put_bucket_versioning()
        .bucket(ARCHIVE)
        .versioning_configuration(suspended.build())
        .send()
        .await
        .expect("suspend versioning");
    let (_, state) = api.get("main").await;
    assert_eq!(changed(&state, "state", "in_sync"), pairs(&[("archive_bucket.versioning", "drifted")]), "{state}");
    let (_, fixed) = api.put("main", &archive_spec(400), false).await;
    assert_eq!(changed(&fixed, "result", "unchanged"), pairs(&[("archive_bucket.versioning", "updated")]), "{fixed}");
    assert_eq!(versioning_of(&s3).await.as_deref(), Some("Enabled"));

    // What moto itself enforces once objects are in (see docs/PROVISIONING.md):
    // with the policy in place every object call is refused (moto 5.2 counts
    // a statement whose Condition does not hold as a Deny), so it goes first.
    let refused = s3.put_object().bucket(ARCHIVE).key("seg/1").body(ByteStream::from_static(b"one")).send().await;
    assert_eq!(refused.err().and_then(|e| e.raw_response().map(|r| r.status().as_u16())), Some(403));
    s3.delete_bucket_policy().bucket(ARCHIVE).send().await.expect("drop the policy");
    let put = s3
        .put_object()
        .bucket(ARCHIVE)
        .key("seg/1")
        .if_none_match("*")
        .body(ByteStream::from_static(b"one"))
        .send()
        .await
        .expect("a first write");
    let head = s3.head_object().bucket(ARCHIVE).key("seg/1").send().await.expect("head");
    assert_eq!(head.object_lock_mode().map(|m| m.as_str().to_owned()).as_deref(), Some("COMPLIANCE"));
    assert!(head.object_lock_retain_until_date().is_some(), "the default retention applies");
    let again = s3
        .put_object()
        .bucket(ARCHIVE)
        .key("seg/1")
        .if_none_match("*")
        .body(ByteStream::from_static(b"two"))
        .send()
        .await;
    assert_eq!(again.err().and_then(|e| e.raw_response().map(|r| r.status().as_u16())), Some(412));
    let version = put.version_id().expect("a version").to_owned();
    let delete = s3.delete_object().bucket(ARCHIVE).key("seg/1").version_id(&version).send().await;
    let delete = delete.expect_err("a locked version is not deleted");
    assert_eq!(delete.raw_response().map(|r| r.status().as_u16()), Some(403), "{delete:?}");
    let body = s3.get_object().bucket(ARCHIVE).key("seg/1").version_id(&version).send().await.expect("still there");
    assert_eq!(body.body.collect().await.expect("body").into_bytes().as_ref(), b"one");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_existing_bucket_without_object_lock_fails_the_apply() {
    let moto = Moto::start();
    let api = Api::new(&moto.endpoint()).await;
    let sdk = sdk_config(&moto.endpoint()).await;
    let s3 = aws_sdk_s3::Client::from_conf(aws_sdk_s3::config::Builder::from(&sdk).force_path_style(true).build());
    let location = aws_sdk_s3::types::CreateBucketConfiguration::builder()
        .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::from(REGION))
        .build();
    s3.create_bucket().bucket(ARCHIVE).create_bucket_configuration(location).send().await.expect("a plain bucket");

    let (status, plan) = api.put("main", &archive_spec(30), true).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{plan}");
    let (status, answer) = api.put("main", &archive_spec(30), false).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{answer}");
    assert_eq!(answer["error"]["code"], "ObjectLockNotEnabled", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap_or("");
    assert!(message.contains("archive_bucket") && message.contains("without Object Lock"), "{message}");
    // The other buckets and the trail are made; under the archive bucket
    // nothing is sent.
    let outcomes = results(&answer, "result");
    assert_eq!(outcomes.len(), ARCHIVE_STEPS);
    for (step, result) in &outcomes {
        let want = if step.starts_with("archive_bucket") { "failed" } else { "created" };
        assert_eq!(result, want, "{step}: {answer}");
    }
    assert_eq!(versioning_of(&s3).await, None, "versioning was not turned on");
    let lock = s3.get_object_lock_configuration().bucket(ARCHIVE).send().await;
    assert!(lock.is_err(), "Object Lock was not enabled: {lock:?}");
    assert!(s3.get_bucket_policy().bucket(ARCHIVE).send().await.is_err(), "no policy was put");
    assert!(s3.get_public_access_block().bucket(ARCHIVE).send().await.is_err(), "no public access block was put");

    // GET says so too.
    let (_, state) = api.get("main").await;
    assert_eq!(state["drift"], true, "{state}");
    let per_step = results(&state, "state");
    assert!(per_step.contains(&("archive_bucket".to_owned(), "unfixable".to_owned())), "{state}");
    assert!(per_step.contains(&("archive_bucket.object_lock".to_owned(), "unfixable".to_owned())), "{state}");
}
