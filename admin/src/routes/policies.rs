//! Named IAM policies (`/v1/policies`) and the policy simulator
//! (`/v1/authorize/simulate`). Every put and delete is a ledger note with
//! the SHA-256 of the canonical document and the token that made it
//! (`docs/POLICIES.md`, `docs/LEDGER.md`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use egress_ledger::access::Actor;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::access::{self, PolicyBody, PolicyStored, SimulateAnswer};
use crate::error::ErrorBody;
use crate::{AdminState, ApiError};

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(list_policies))
        .routes(routes!(put_policy, get_policy, delete_policy))
        .routes(routes!(simulate))
}

/// Who a request with the admin token is, in the ledger's notes.
pub(crate) fn actor(state: &AdminState) -> Actor {
    Actor(format!("admin:{}", state.token.id()))
}

fn bad_path(rejection: &PathRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("path: {}", rejection.body_text()))
}

/// Every policy.
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyList {
    pub policies: Vec<PolicyBody>,
}

/// The built-in policies, then the stored ones by name.
#[utoipa::path(get, path = "/v1/policies", tag = "policies", responses((status = 200, body = PolicyList)))]
async fn list_policies(State(state): State<AdminState>) -> Result<Json<PolicyList>, ApiError> {
    let ledger = state.ledger.clone();
    let policies = super::blocking("policy store", move || access::list_policies(&ledger)).await?;
    Ok(Json(PolicyList { policies }))
}

/// Stores (or replaces) a policy; the body is the IAM policy document.
/// Takes effect on the next request of every principal it is attached to.
#[utoipa::path(
    put,
    path = "/v1/policies/{name}",
    tag = "policies",
    params(("name" = String, Path, description = "1-128 characters from A-Z a-z 0-9 + = , . @ _ -")),
    request_body(content = Object, description = "An IAM policy document"),
    responses(
        (status = 200, description = "Stored; warnings name what may not do what was meant", body = PolicyStored),
        (status = 400, description = "Not a policy this proxy can evaluate (code `malformed_policy`)", body = ErrorBody),
        (status = 409, description = "A built-in policy's name", body = ErrorBody),
        (status = 503, description = "The ledger refuses appends; nothing changed", body = ErrorBody),
    )
)]
async fn put_policy(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<PolicyStored>, ApiError> {
    let Path(name) = path.map_err(|e| bad_path(&e))?;
    let ledger = state.ledger.clone();
    let by = actor(&state);
    let stored = super::blocking("policy store", move || access::put_policy(&ledger, &name, &body, &by)).await?;
    Ok(Json(stored))
}

/// One policy with its canonical document and where it is attached.
#[utoipa::path(
    get,
    path = "/v1/policies/{name}",
    tag = "policies",
    params(("name" = String, Path, description = "Policy name")),
    responses((status = 200, body = PolicyBody), (status = 404, body = ErrorBody))
)]
async fn get_policy(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<PolicyBody>, ApiError> {
    let Path(name) = path.map_err(|e| bad_path(&e))?;
    let ledger = state.ledger.clone();
    Ok(Json(super::blocking("policy store", move || access::get_policy(&ledger, &name)).await?))
}

/// Deletes a policy that no principal has attached.
#[utoipa::path(
    delete,
    path = "/v1/policies/{name}",
    tag = "policies",
    params(("name" = String, Path, description = "Policy name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Built in, or still attached (the message names to whom)", body = ErrorBody),
    )
)]
async fn delete_policy(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(name) = path.map_err(|e| bad_path(&e))?;
    let ledger = state.ledger.clone();
    let by = actor(&state);
    super::blocking("policy store", move || access::delete_policy(&ledger, &name, &by)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A question for the simulator.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SimulateRequest {
    /// A principal, or `anonymous`.
    pub principal: String,
    /// An IAM action, e.g. `s3:GetObject`.
    pub action: String,
    /// An ARN, e.g. `arn:aws:s3:::data/public/a.csv`, or `*`.
    pub resource: String,
    /// Condition keys and their values (a string or a list of strings).
    /// `aws:username`, `aws:userid` and `aws:PrincipalTag/*` come from the
    /// principal, `aws:CurrentTime` and `aws:EpochTime` default to now.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub context: serde_json::Map<String, Value>,
}

/// Evaluates one action on one resource for a principal with its attached
/// policies, as the proxy does for a request.
#[utoipa::path(
    post,
    path = "/v1/authorize/simulate",
    tag = "policies",
    request_body = SimulateRequest,
    responses((status = 200, body = SimulateAnswer), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn simulate(State(state): State<AdminState>, body: Bytes) -> Result<Json<SimulateAnswer>, ApiError> {
    let request: SimulateRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_field("body", &format!("{e}; send principal, action, resource and context")))?;
    let mut context = Vec::with_capacity(request.context.len());
    for (key, value) in &request.context {
        let values = match value {
            Value::String(s) => vec![s.clone()],
            Value::Bool(b) => vec![b.to_string()],
            Value::Number(n) => vec![n.to_string()],
            Value::Array(items) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| ApiError::bad_field(&format!("context.{key}"), "list items must be strings"))?,
            _ => return Err(ApiError::bad_field(&format!("context.{key}"), "must be a string or a list of strings")),
        };
        context.push((key.clone(), values));
    }
    let grants = std::sync::Arc::clone(&state.grants);
    let ledger = state.ledger.clone();
    let answer = super::blocking("policy store", move || {
        access::simulate(&ledger, &grants, &request.principal, &request.action, &request.resource, &context)
    })
    .await?;
    Ok(Json(answer))
}
