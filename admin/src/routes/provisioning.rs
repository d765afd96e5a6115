//! `PUT /v1/provisioning/{name}` (store a spec and apply it, or with
//! `?dry_run=true` answer the plan) and `GET /v1/provisioning/{name}` (the
//! stored spec and the live state, drift marked). See docs/PROVISIONING.md.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::{ErrorBody, ErrorDetail};
use crate::provisioning::{ApplyReport, ProvisioningError, ProvisioningSpec, SpecError, StateReport, spec};
use crate::{AdminState, ApiError};

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(put_provisioning, get_provisioning))
}

#[derive(Debug, Deserialize)]
struct ApplyParams {
    dry_run: Option<String>,
}

/// A 502 answer: the error, and every step's result beside it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApplyFailure {
    pub error: ErrorDetail,
    #[serde(flatten)]
    pub report: ApplyReport,
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> ApiError {
        ApiError::bad_field(&e.field, &e.reason)
    }
}

impl From<ProvisioningError> for ApiError {
    fn from(e: ProvisioningError) -> ApiError {
        match e {
            ProvisioningError::NotFound(_) => ApiError::not_found(e.to_string()),
            _ => ApiError::internal(e.to_string()),
        }
    }
}

/// Store a provisioning spec and apply it (idempotent), or plan it.
#[utoipa::path(
    put,
    path = "/v1/provisioning/{name}",
    tag = "provisioning",
    params(
        ("name" = String, Path, description = "Name the spec is kept under: 1 to 64 of a-z, 0-9, '-', '_'"),
        ("dry_run" = Option<bool>, Query, description = "Answer the plan; store and change nothing"),
    ),
    request_body(content = ProvisioningSpec, content_type = "application/json"),
    responses(
        (status = 200, description = "Every step and its result", body = ApplyReport),
        (status = 400, description = "A spec field is missing or wrong; the message names it", body = ErrorBody),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 502, description = "AWS refused a step, or the archive bucket exists without Object Lock \
            (code ObjectLockNotEnabled); every step's result is beside the error", body = ApplyFailure),
    )
)]
async fn put_provisioning(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Query(params): Query<ApplyParams>,
    body: Bytes,
) -> Result<Response, ApiError> {
    spec::check_name(&name)?;
    let dry_run = match params.dry_run.as_deref() {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(_) => return Err(ApiError::bad_field("dry_run", "must be true or false")),
    };
    let spec = ProvisioningSpec::from_json(&body)?;
    let report = state.provisioner.apply(&name, spec, dry_run).await?;
    let failed: Vec<_> = report.failures().collect();
    let Some(first) = failed.first() else {
        return Ok(Json(report).into_response());
    };
    let aws = first
        .error
        .clone()
        .unwrap_or_else(|| crate::provisioning::AwsFailure { code: "aws_error".to_owned(), message: String::new() });
    let step = serde_json::to_value(first.step).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let error = ErrorDetail {
        code: aws.code,
        message: format!(
            "{} of {} steps failed; the first, {step}: {}. Fix it and PUT again (applying is idempotent)",
            failed.len(),
            report.steps.len(),
            aws.message
        ),
    };
    Ok((StatusCode::BAD_GATEWAY, Json(ApplyFailure { error, report })).into_response())
}

/// The stored spec and the live AWS configuration, drift marked per step.
#[utoipa::path(
    get,
    path = "/v1/provisioning/{name}",
    tag = "provisioning",
    params(("name" = String, Path, description = "Name the spec was PUT under")),
    responses(
        (status = 200, description = "Spec and live state", body = StateReport),
        (status = 401, description = "No or wrong admin token", body = ErrorBody),
        (status = 404, description = "No spec of that name", body = ErrorBody),
    )
)]
async fn get_provisioning(
    State(state): State<AdminState>,
    Path(name): Path<String>,
) -> Result<Json<StateReport>, ApiError> {
    spec::check_name(&name)?;
    Ok(Json(state.provisioner.state(&name).await?))
}
