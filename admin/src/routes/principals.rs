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

use std::collections::BTreeMap;

use egress_ledger::access::{Grants, Limits};

use crate::error::ErrorBody;
use crate::{AdminState, ApiError};

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
        .routes(routes!(create_principal, list_principals))
        .routes(routes!(delete_principal))
        .routes(routes!(add_key))
        .routes(routes!(revoke_key))
        .routes(routes!(set_policies))
        .routes(routes!(set_tags))
        .routes(routes!(set_limits))
        .routes(routes!(usage))
}

/// A principal to create.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreatePrincipal {
    /// 1-64 characters from `A-Z a-z 0-9 . _ - @ +`.
    pub name: String,
    pub description: Option<String>,
    /// Policies to attach (built-in or stored); none means it can do
    /// nothing until some are attached.
    #[serde(default)]
    pub policies: Vec<String>,
    /// Tags, for `aws:PrincipalTag/<key>` conditions.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
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
        let policies = match fields.remove("policies") {
            None | Some(Value::Null) => Vec::new(),
            Some(value) => serde_json::from_value(value)
                .map_err(|_| ApiError::bad_field("policies", "must be a list of policy names"))?,
        };
        let tags = match fields.remove("tags") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(value) => serde_json::from_value(value)
                .map_err(|_| ApiError::bad_field("tags", "must be an object of strings"))?,
        };
        if let Some(unknown) = fields.keys().next() {
            return Err(ApiError::bad_field(unknown, "unknown field; expected name, description, policies and tags"));
        }
        egress_ledger::principals::validate_name(&name)?;
        crate::access::check_tags(&tags)?;
        Ok(CreatePrincipal { name, description, policies, tags })
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
    /// Attached policies, in order.
    pub policies: Vec<String>,
    pub tags: BTreeMap<String, String>,
    #[schema(value_type = Object)]
    pub limits: Limits,
}

impl PrincipalBody {
    fn new(p: Principal, grants: Grants) -> PrincipalBody {
        PrincipalBody {
            policies: grants.policies,
            tags: grants.tags,
            limits: grants.limits,
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
    let by = super::policies::actor(&state);
    let issued = super::blocking("principal store", move || {
        crate::access::check_policy_names(&ledger, &request.policies)?;
        let issued = ledger.create_principal_blocking(&request.name, request.description.as_deref(), &by)?;
        if !request.policies.is_empty() || !request.tags.is_empty() {
            crate::access::update_grants(&ledger, &request.name, &by, |grants| {
                grants.policies = request.policies;
                grants.tags = request.tags;
                Ok(())
            })?;
        }
        Ok(issued)
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
    let ledger = state.ledger.clone();
    let listed = super::blocking("principal store", move || {
        let store = ledger.store().ok_or_else(|| ApiError::internal("no state store"))?;
        let mut out = Vec::new();
        for principal in store.principals.list()? {
            let grants = store.access.grants(&principal.name)?;
            out.push(PrincipalBody::new(principal, grants));
        }
        Ok(out)
    })
    .await?;
    Ok(Json(PrincipalList { principals: listed }))
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
    let by = super::policies::actor(&state);
    let issued = super::blocking("principal store", move || Ok(ledger.add_key_blocking(&name, &by)?)).await?;
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
        let by = super::policies::actor(&state);
        state.ledger.append(key_note("access_key_revoked", &principal, &access_key_id, &by)).await?;
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
    let ledger = state.ledger.clone();
    let by = super::policies::actor(&state);
    let (name, active) = super::blocking("principal store", move || {
        let principal = store.get(&name)?.ok_or_else(|| ApiError::not_found(format!("no principal named {name:?}")))?;
        // Grants first, on the record: a principal never loses its keys
        // while the ledger still shows it holding policies.
        let had_grants = ledger.store().is_some_and(|s| s.access.grants(&name).is_ok_and(|g| g != Grants::default()));
        if had_grants {
            crate::access::update_grants(&ledger, &name, &by, |grants| {
                *grants = Grants::default();
                Ok(())
            })?;
        }
        store.delete(&name)?;
        if let Some(s) = ledger.store() {
            s.access.remove_grants(&name)?;
        }
        let active: Vec<String> =
            principal.keys.into_iter().filter(|k| k.revoked.is_none()).map(|k| k.access_key_id).collect();
        Ok((name, active))
    })
    .await?;
    // Each key that worked until now stops working: the ledger says so.
    let by = super::policies::actor(&state);
    for access_key_id in active {
        state.ledger.append(key_note("access_key_revoked", &name, &access_key_id, &by)).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The policies to attach, replacing those attached.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetPolicies {
    pub policies: Vec<String>,
}

/// A principal's grants after a change.
#[derive(Debug, Serialize, ToSchema)]
pub struct GrantsBody {
    pub principal: String,
    pub policies: Vec<String>,
    pub tags: BTreeMap<String, String>,
    #[schema(value_type = Object)]
    pub limits: Limits,
}

impl GrantsBody {
    fn new(principal: String, grants: Grants) -> GrantsBody {
        GrantsBody { principal, policies: grants.policies, tags: grants.tags, limits: grants.limits }
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_field("body", &format!("{e}; send {what}")))
}

/// Sets the policies attached to a principal (or to `anonymous`, which
/// lets unsigned requests do what they allow). Takes effect on the
/// principal's next request; transfers under way keep their decision.
#[utoipa::path(
    put,
    path = "/v1/principals/{name}/policies",
    tag = "principals",
    params(("name" = String, Path, description = "Principal name, or `anonymous`")),
    request_body = SetPolicies,
    responses(
        (status = 200, body = GrantsBody),
        (status = 400, body = ErrorBody),
        (status = 404, description = "No such principal or policy", body = ErrorBody),
        (status = 503, description = "The ledger refuses appends; nothing changed", body = ErrorBody),
    )
)]
async fn set_policies(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<GrantsBody>, ApiError> {
    let Path(name) = path.map_err(|e| bad_path(&e))?;
    let request: SetPolicies = parse_body(&body, "{\"policies\":[\"read-only\", …]}")?;
    change_grants(&state, name, move |ledger, grants| {
        crate::access::check_policy_names(ledger, &request.policies)?;
        grants.policies = request.policies;
        Ok(())
    })
    .await
}

/// Applies `change` to `name`'s grants on the record (off the async
/// workers) and answers them as they are after.
async fn change_grants(
    state: &AdminState,
    name: String,
    change: impl FnOnce(&egress_ledger::Ledger, &mut Grants) -> Result<(), ApiError> + Send + 'static,
) -> Result<Json<GrantsBody>, ApiError> {
    let ledger = state.ledger.clone();
    let by = super::policies::actor(state);
    let grants = super::blocking("principal store", move || {
        let grants = crate::access::update_grants(&ledger, &name, &by, |grants| change(&ledger, grants))?;
        Ok(GrantsBody::new(name, grants))
    })
    .await?;
    Ok(Json(grants))
}

/// The tags to set, replacing the principal's tags.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTags {
    pub tags: BTreeMap<String, String>,
}

/// Sets a principal's tags (`aws:PrincipalTag/<key>` in conditions).
#[utoipa::path(
    put,
    path = "/v1/principals/{name}/tags",
    tag = "principals",
    params(("name" = String, Path, description = "Principal name")),
    request_body = SetTags,
    responses((status = 200, body = GrantsBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn set_tags(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<GrantsBody>, ApiError> {
    let Path(name) = path.map_err(|e| bad_path(&e))?;
    let request: SetTags = parse_body(&body, "{\"tags\":{\"team\":\"vision\"}}")?;
    crate::access::check_tags(&request.tags)?;
    change_grants(&state, name, move |_, grants| {
        grants.tags = request.tags;
        Ok(())
    })
    .await
}

/// Sets a principal's egress limits (byte quotas, bandwidth, request
/// rate), replacing the previous ones; `{}` lifts them all.
#[utoipa::path(
    put,
    path = "/v1/principals/{name}/limits",
    tag = "principals",
    params(("name" = String, Path, description = "Principal name, or `anonymous`")),
    request_body(content = Object, description = "`{\"quotas\":[{\"bytes\":N,\"per\":\"hour|day|month\",\"bucket\":\"optional\"}],\"bandwidth_bytes_per_second\":N,\"requests_per_second\":N}`"),
    responses((status = 200, body = GrantsBody), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody))
)]
async fn set_limits(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<GrantsBody>, ApiError> {
    let Path(name) = path.map_err(|e| bad_path(&e))?;
    let limits: Limits = parse_body(
        &body,
        "{\"quotas\":[{\"bytes\":N,\"per\":\"day\"}],\"bandwidth_bytes_per_second\":N,\"requests_per_second\":N}",
    )?;
    crate::access::check_limits(&limits)?;
    change_grants(&state, name, move |_, grants| {
        grants.limits = limits;
        Ok(())
    })
    .await
}

/// A principal's usage of its limits on this node, now.
#[utoipa::path(
    get,
    path = "/v1/principals/{name}/usage",
    tag = "principals",
    params(("name" = String, Path, description = "Principal name, or `anonymous`")),
    responses((status = 200, body = crate::usage::Usage), (status = 404, body = ErrorBody))
)]
async fn usage(
    State(state): State<AdminState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<crate::usage::Usage>, ApiError> {
    let Path(name) = path.map_err(|e| bad_path(&e))?;
    let ledger = state.ledger.clone();
    let lookup = name.clone();
    let limits = super::blocking("principal store", move || {
        let store = ledger.store().ok_or_else(|| ApiError::internal("no state store"))?;
        if lookup != egress_ledger::principals::ANONYMOUS && store.principals.get(&lookup)?.is_none() {
            return Err(ApiError::not_found(format!("no principal named {lookup:?}")));
        }
        Ok(store.access.grants(&lookup)?.limits)
    })
    .await?;
    Ok(Json(state.usage.usage(&name, &limits)))
}
