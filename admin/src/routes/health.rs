//! `/healthz` and `/readyz`, open to anyone (load balancers, compose,
//! probes), so both are cheap and say little:
//!
//! - `/healthz`: alive. With the admin token it also gives the version and
//!   the ledger's head (records, seq, hash), which tests and operators read;
//!   without it, only `{"status":"ok"}`: the head changes with every
//!   request, so it would tell anyone how busy the proxy is.
//! - `/readyz`: whether the ledger takes appends, read from the writer's
//!   state. It writes nothing (it used to ask for a checkpoint, so a loop
//!   of calls grew the checkpoint files without bound).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use serde_json::{Value, json};

use crate::{AdminState, ApiError};

pub fn router() -> axum::Router<AdminState> {
    axum::Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz(State(state): State<AdminState>, headers: HeaderMap) -> Json<Value> {
    if !crate::auth::authorized(&state, &headers) {
        return Json(json!({ "status": "ok" }));
    }
    let head = state.ledger.head();
    let archive = state.archive.as_ref().map(|archive| {
        let s = archive.snapshot(head.records.checked_sub(1));
        json!({
            "shipped_seq": s.shipped_seq,
            "lag_records": s.lag_records,
            "lag_seconds": s.lag_seconds,
            "lagging": s.lagging,
            "diverged": s.diverged.is_some(),
            "last_error": s.last_error,
        })
    });
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "ledger": { "records": head.records, "seq": head.records.checked_sub(1), "head": head.hash.to_hex() },
        "archive": archive,
    }))
}

async fn readyz(State(state): State<AdminState>) -> Result<Json<Value>, ApiError> {
    // False from a failed write until the writer heals, which it retries
    // on its own; the admin API stops before the ledger is closed.
    if !state.ledger.writable() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "ledger_unavailable",
            "the ledger refuses appends after a failed write; it retries on its own",
        ));
    }
    Ok(Json(json!({ "status": "ready" })))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "a test that cannot unwrap has failed, which is what a panic reports")]

    use std::sync::Arc;

    use axum::body::Body;
    use egress_ledger::{Entry, Ledger, LedgerConfig, NoteRecord};
    use egress_metrics::Metrics;
    use http::Request;
    use http_body_util::BodyExt as _;
    use tower::ServiceExt as _;

    use super::*;
    use crate::AdminToken;

    const TOKEN: &str = "a-test-token-of-enough-length";

    async fn app(dir: &std::path::Path) -> (Ledger, axum::Router) {
        let (ledger, _) = Ledger::open(&LedgerConfig::new(dir, "egress-health-test")).unwrap();
        let tree = ledger.store().unwrap().tree("provisioning").unwrap();
        let provisioner = Arc::new(crate::provisioning::Provisioner::new(None, "us-east-1".into(), tree).await);
        let state = AdminState {
            ledger: ledger.clone(),
            token: Arc::new(AdminToken::new(TOKEN).unwrap()),
            metrics: Arc::new(Metrics::default()),
            provisioner: Arc::clone(&provisioner),
            reconciler: Arc::new(crate::reconciliation::Reconciler::new(
                ledger.clone(),
                Arc::clone(&provisioner),
                ledger.clone().store().unwrap().tree("reconciliations").unwrap(),
                egress_reconcile::report::DeliveryWindows::default(),
                Vec::new(),
            )),
            grants: Arc::new(crate::access::GrantsCache::new(ledger.store().unwrap().access.clone())),
            usage: Arc::new(crate::usage::NoDataPlane),
            archive: None,
        };
        (ledger, crate::router(state))
    }

    async fn get(app: &axum::Router, path: &str, token: Option<&str>) -> (StatusCode, Value) {
        let mut request = Request::builder().uri(path);
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = app.clone().oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn healthz_tells_the_head_only_to_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, app) = app(dir.path()).await;
        ledger.append(Entry::Note(NoteRecord::new("test"))).await.unwrap();
        for token in [None, Some("wrong-token-of-enough-length")] {
            assert_eq!(get(&app, "/healthz", token).await, (StatusCode::OK, json!({ "status": "ok" })), "{token:?}");
        }
        let (status, health) = get(&app, "/healthz", Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(health["ledger"]["records"], ledger.head().records);
        assert_eq!(health["ledger"]["head"], ledger.head().hash.to_hex());
        assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
        ledger.close().await.unwrap();
    }

    #[tokio::test]
    async fn readyz_writes_nothing_to_the_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let (ledger, app) = app(dir.path()).await;
        let checkpoint_files = || std::fs::read_dir(dir.path().join("checkpoints")).unwrap().count();
        let files_before = checkpoint_files();
        let records_before = ledger.head().records;
        // Traffic between the probes: each probe used to force a checkpoint
        // (a record, and a file) whenever something had been appended since.
        for _ in 0..20 {
            ledger.append(Entry::Note(NoteRecord::new("traffic"))).await.unwrap();
            assert_eq!(get(&app, "/readyz", None).await, (StatusCode::OK, json!({ "status": "ready" })));
        }
        assert_eq!(ledger.head().records, records_before + 20, "only the appends");
        assert_eq!(checkpoint_files(), files_before);
        ledger.close().await.unwrap();
    }
}
