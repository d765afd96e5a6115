//! `/healthz` (alive: version and ledger head) and `/readyz` (the ledger
//! takes appends), both without a token, for load balancers and compose.

use axum::Json;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};

use crate::AdminState;

pub fn router() -> axum::Router<AdminState> {
    axum::Router::new().route("/healthz", get(healthz)).route("/readyz", get(readyz))
}

async fn healthz(State(state): State<AdminState>) -> Json<Value> {
    let head = state.ledger.head();
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "ledger": { "records": head.records, "seq": head.records.checked_sub(1), "head": head.hash.to_hex() },
    }))
}

async fn readyz(State(state): State<AdminState>) -> Result<Json<Value>, crate::ApiError> {
    // A checkpoint request goes through the writer: it fails if the ledger
    // refuses appends (closed, or poisoned by a failed write).
    state.ledger.checkpoint().await?;
    Ok(Json(json!({ "status": "ready" })))
}
