//! Principals and their access keys: create, list, rotate, revoke, delete.
//!
//! Every key issued or revoked is also a `note` in the ledger
//! (`principal_created`, `access_key_revoked`; never a secret), as the
//! `egress-proxy principal` commands write. Revoking and deleting go through
//! the [`PrincipalStore`], which drops the keys from its in-memory cache: the
//! next request signed with one fails, without a restart. A secret is shown
//! once, in the answer that issues it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use egress_ledger::principals::{AccessKeyInfo, IssuedKey, Principal, PrincipalStore, SecretKey};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::{AdminState, ApiError};

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(create_principal, list_principals))
        .routes(routes!(delete_principal))
        .routes(routes!(add_key))
        .routes(routes!(revoke_key))
}

/// A principal to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreatePrincipal {
    /// 1-64 characters from `A-Z a-z 0-9 . _ - @ +`.
    pub name: String,
    pub description: Option<String>,
}

impl CreatePrincipal {
    /// Parses the body by hand so that every 400 names its field (axum's
    /// `Json` answers in plain text, and not always with the field).
    fn parse(body: &[u8]) -> Result<CreatePrincipal, ApiError> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::bad_field("body", &format!("not JSON ({e}); send {{\"name\":…,\"description\":…}}"))
        })?;
        let Value::Object(mut fields) = value else {
            return Err(ApiError::bad_field("body", "must be a JSON object {\"name\":…,\"description\":…}"));
        };
        let name = match fields.remove("name") {
            Some(Value::String(name)) => name,
            None | Some(Value::Null) => return Err(ApiError::bad_field("name", "required")),
            Some(_) => return Err(ApiError::bad_field("name", "must be a string")),
        };
        let description = match fields.remove("description") {
            Some(Value::String(d)) => Some(d),
            None | Some(Value::Null) => None,
            Some(_) => return Err(ApiError::bad_field("description", "must be a string or null")),
        };
        if let Some(unknown) = fields.keys().next() {
            return Err(ApiError::bad_field(unknown, "unknown field; expected name and description"));
        }
        egress_ledger::principals::validate_name(&name)?;
        Ok(CreatePrincipal { name, description })
    }
}

/// A freshly issued key; the secret is never shown again.
#[derive(Debug, Serialize, ToSchema)]
pub struct IssuedKeyBody {
    pub name: String,
    pub access_key_id: String,
    #[serde(serialize_with = "expose_secret")]
    #[schema(value_type = String)]
    pub secret_access_key: SecretKey,
}

fn expose_secret<S: serde::Serializer>(secret: &SecretKey, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(secret.expose())
}

impl From<IssuedKey> for IssuedKeyBody {
    fn from(issued: IssuedKey) -> IssuedKeyBody {
        IssuedKeyBody {
            name: issued.principal,
            access_key_id: issued.access_key_id,
            secret_access_key: issued.secret_access_key,
        }
    }
}

impl IntoResponse for IssuedKeyBody {
    fn into_response(self) -> Response {
        // A secret must not stay in a cache on the way.
        (StatusCode::CREATED, [(http::header::CACHE_CONTROL, "no-store")], Json(self)).into_response()
    }
}

/// An access key as listed (no secret).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AccessKeyBody {
    pub access_key_id: String,
    /// RFC 3339.
    pub created: String,
    /// RFC 3339, when revoked; null while the key works.
    pub revoked: Option<String>,
}

/// A principal as listed (no secrets).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PrincipalBody {
    pub name: String,
    pub description: Option<String>,
    /// RFC 3339.
    pub created: String,
    pub keys: Vec<AccessKeyBody>,
}

impl From<Principal> for PrincipalBody {
    fn from(p: Principal) -> PrincipalBody {
        PrincipalBody {
            name: p.name,
            description: p.description,
            created: p.created,
            keys: p
                .keys
                .into_iter()
                .map(|AccessKeyInfo { access_key_id, created, revoked }| AccessKeyBody {
                    access_key_id,
                    created,
                    revoked,
                })
                .collect(),
        }
    }
}

/// Every principal, by name.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PrincipalList {
    pub principals: Vec<PrincipalBody>,
}

fn principals(state: &AdminState) -> Result<PrincipalStore, ApiError> {
    Ok(state
        .ledger
        .store()
        .ok_or_else(|| ApiError::internal("the ledger was opened without its state store"))?
        .principals
        .clone())
}

/// Runs sled work (it flushes to disk) off the async workers.
fn bad_path(rejection: &PathRejection) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("path: {}", rejection.body_text()))
}

use egress_ledger::issuing::key_note;

/// Creates a principal with one access key.
#[utoipa::path(
    post,
    path = "/v1/principals",
    tag = "principals",
    request_body = CreatePrincipal,
    responses(
        (status = 201, description = "Created; the secret is shown only here", body = IssuedKeyBody),
        (status = 400, description = "A bad field, named in the message", body = ErrorBody),
        (status = 409, description = "A principal of that name exists", body = ErrorBody),
        (status = 503, description = "The ledger refuses appends; nothing was created", body = ErrorBody),
    )
)]
async fn create_principal(State(state): State<AdminState>, body: Bytes) -> Result<IssuedKeyBody, ApiError> {
    let request = CreatePrincipal::parse(&body)?;
    // A key the ledger does not know of is never handed out.
    let ledger = state.ledger.clone();
    let issued = super::blocking("principal store", move || {
        Ok(ledger.create_principal_blocking(&request.name, request.description.as_deref())?)
    })
    .await?;
    Ok(issued.into())
}

/// Every principal and its keys, without secrets.
#[utoipa::path(
    get,
    path = "/v1/principals",
    tag = "principals",
    responses((status = 200, description = "Principals by name", body = PrincipalList))
)]
async fn list_principals(State(state): State<AdminState>) -> Result<Json<PrincipalList>, ApiError> {
    let store = principals(&state)?;
    let listed = super::blocking("principal store", move || Ok(store.list()?)).await?;
    Ok(Json(PrincipalList { principals: listed.into_iter().map(PrincipalBody::from).collect() }))
}

/// Adds an access key to a principal (rotation: older keys keep working
/// until revoked).
#[utoipa::path(
    post,
    path = "/v1/principals/{name}/keys",
    tag = "principals",
    params(("name" = String, Path, description = "Principal name")),
    responses(
        (status = 201, description = "Issued; the secret is shown only here", body = IssuedKeyBody),
        (status = 404, description = "No such principal", body = ErrorBody),
        (status = 503, description = "The ledger refuses appends; no key was issued", body = ErrorBody),
    )
)]
async fn add_key(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<IssuedKeyBody, ApiError> {
    let Path(name) = path.map_err(|e| bad_path(&e))?;
    let ledger = state.ledger.clone();
    let issued = super::blocking("principal store", move || Ok(ledger.add_key_blocking(&name)?)).await?;
    Ok(issued.into())
}

/// Revokes an access key: its next request through the proxy fails.
/// Revoking a revoked key changes nothing.
#[utoipa::path(
    delete,
    path = "/v1/principals/{name}/keys/{access_key_id}",
    tag = "principals",
    params(
        ("name" = String, Path, description = "Principal name"),
        ("access_key_id" = String, Path, description = "One of the principal's keys"),
    ),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such principal, or not its key", body = ErrorBody),
        (status = 503, description = "Revoked, but the ledger refused the note", body = ErrorBody),
    )
)]
async fn revoke_key(
    State(state): State<AdminState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path((name, access_key_id)) = path.map_err(|e| bad_path(&e))?;
    let store = principals(&state)?;
    let id = access_key_id.clone();
    let revoked = super::blocking("principal store", move || {
        let principal = store.get(&name)?.ok_or_else(|| ApiError::not_found(format!("no principal named {name:?}")))?;
        let key = principal
            .keys
            .iter()
            .find(|k| k.access_key_id == id)
            .ok_or_else(|| ApiError::not_found(format!("principal {name:?} has no access key {id:?}")))?;
        if key.revoked.is_some() {
            return Ok(None);
        }
        store.revoke_key(&id)?;
        Ok(Some(name))
    })
    .await?;
    if let Some(principal) = revoked {
        state.ledger.append(key_note("access_key_revoked", &principal, &access_key_id)).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a principal and every key of it; their next requests fail.
#[utoipa::path(
    delete,
    path = "/v1/principals/{name}",
    tag = "principals",
    params(("name" = String, Path, description = "Principal name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such principal", body = ErrorBody),
        (status = 503, description = "Deleted, but the ledger refused the notes", body = ErrorBody),
    )
)]
async fn delete_principal(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(name) = path.map_err(|e| bad_path(&e))?;
    let store = principals(&state)?;
    let (name, active) = super::blocking("principal store", move || {
        let principal = store.get(&name)?.ok_or_else(|| ApiError::not_found(format!("no principal named {name:?}")))?;
        store.delete(&name)?;
        let active: Vec<String> =
            principal.keys.into_iter().filter(|k| k.revoked.is_none()).map(|k| k.access_key_id).collect();
        Ok((name, active))
    })
    .await?;
    // Each key that worked until now stops working: the ledger says so.
    for access_key_id in active {
        state.ledger.append(key_note("access_key_revoked", &name, &access_key_id)).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
