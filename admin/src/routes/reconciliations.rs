//! `POST /v1/reconciliations` (run one), `GET /v1/reconciliations` (the
//! kept runs, newest first) and `GET /v1/reconciliations/{id}` (one report).
//! See docs/RECONCILIATION.md.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use egress_reconcile::ledger_reads::Window;
use egress_reconcile::report::{Report, RunStatus, now_micros, parse_time};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ErrorBody, ErrorDetail};
use crate::reconciliation::{ReportSummary, RunRequest};
use crate::{AdminState, ApiError};

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(run_reconciliation, list_reconciliations)).routes(routes!(get_reconciliation))
}

/// What to reconcile.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunBody {
    /// Start of the window: RFC 3339, or a duration before now (`24h`).
    #[schema(example = "24h")]
    pub since: String,
    /// End of the window (exclusive); default now.
    pub until: Option<String>,
    /// The provisioning spec whose log bucket is read; default the only one.
    pub spec: Option<String>,
}

/// A 502 answer: the run could not read the logs; its report is beside.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunFailure {
    pub error: ErrorDetail,
    pub report: Report,
}

/// Run one reconciliation now and answer its report.
#[utoipa::path(
    post,
    path = "/v1/reconciliations",
    tag = "reconciliations",
    request_body(content = RunBody, content_type = "application/json"),
    responses(
        (status = 201, description = "The report (status complete or partial)", body = Report),
        (status = 400, description = "A field is wrong; the message names it", body = ErrorBody),
        (status = 404, description = "No provisioning spec of that name", body = ErrorBody),
        (status = 409, description = "No provisioning spec at all", body = ErrorBody),
        (status = 502, description = "The logs could not be read: nothing is known (the failed report is kept and on the chain)", body = RunFailure),
    )
)]
async fn run_reconciliation(State(state): State<AdminState>, body: Bytes) -> Result<Response, ApiError> {
    let body: RunBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_field("body", &format!("{e}; send {{\"since\": \"24h\"}}")))?;
    let now = now_micros();
    let since = parse_time(&body.since, now).map_err(|e| ApiError::bad_field("since", &e))?;
    let until = match body.until.as_deref() {
        Some(until) => parse_time(until, now).map_err(|e| ApiError::bad_field("until", &e))?,
        None => now,
    };
    let report = state.reconciler.run(RunRequest { spec: body.spec, window: Window { since, until } }).await?;
    if report.status == RunStatus::Failed {
        let error = ErrorDetail {
            code: "reconciliation_failed".to_owned(),
            message: format!(
                "the logs could not be read, so nothing is known about bypass: {}",
                report.error.as_deref().unwrap_or("")
            ),
        };
        return Ok((StatusCode::BAD_GATEWAY, Json(RunFailure { error, report })).into_response());
    }
    Ok((StatusCode::CREATED, Json(report)).into_response())
}

#[derive(Debug, Deserialize)]
struct ListParams {
    limit: Option<usize>,
    before: Option<String>,
}

/// Kept runs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunList {
    pub reconciliations: Vec<ReportSummary>,
    /// Pass as `before` for the next page; absent on the last.
    pub next: Option<String>,
}

/// The kept runs, newest first, each with its counts and the SHA-256 its
/// ledger note holds.
#[utoipa::path(
    get,
    path = "/v1/reconciliations",
    tag = "reconciliations",
    params(
        ("limit" = Option<usize>, Query, description = "At most this many (1-1000, default 50)"),
        ("before" = Option<String>, Query, description = "Runs before this id (the previous page's `next`)"),
    ),
    responses((status = 200, body = RunList), (status = 400, body = ErrorBody))
)]
async fn list_reconciliations(
    State(state): State<AdminState>,
    Query(params): Query<ListParams>,
) -> Result<Json<RunList>, ApiError> {
    let limit = params.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_field("limit", "must be 1 to 1000"));
    }
    let reconciler = std::sync::Arc::clone(&state.reconciler);
    let before = params.before;
    let mut reconciliations =
        super::blocking("reconciliation store", move || reconciler.list(limit + 1, before.as_deref())).await?;
    let next = if reconciliations.len() > limit {
        reconciliations.truncate(limit);
        reconciliations.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(Json(RunList { reconciliations, next }))
}

/// One run's whole report.
#[utoipa::path(
    get,
    path = "/v1/reconciliations/{id}",
    tag = "reconciliations",
    params(("id" = String, Path, description = "The run's id")),
    responses((status = 200, body = Report), (status = 404, body = ErrorBody))
)]
async fn get_reconciliation(State(state): State<AdminState>, Path(id): Path<String>) -> Result<Json<Report>, ApiError> {
    let reconciler = std::sync::Arc::clone(&state.reconciler);
    let found = super::blocking("reconciliation store", {
        let id = id.clone();
        move || reconciler.get(&id)
    })
    .await?;
    found.map(Json).ok_or_else(|| ApiError::not_found(format!("no reconciliation {id:?}")))
}
