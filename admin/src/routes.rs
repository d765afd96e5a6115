//! The routes, each group in its own module; every handler is annotated
//! for the `OpenAPI` document (`/openapi.json`, see [`crate::openapi`]).

pub mod archive;
pub mod health;
pub mod policies;
pub mod principals;
pub mod provisioning;
pub mod queries;
pub mod reconciliations;

use axum::middleware;
use utoipa_axum::router::OpenApiRouter;

use crate::{AdminState, ApiError};

/// Runs store or ledger reads off the async workers; `what` names the work
/// in the error if the task itself fails.
pub(crate) async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("{what} task failed: {e}")))?
}

/// Every route; the token layer covers all but the health probes.
pub fn router(state: AdminState) -> axum::Router {
    let (protected, api) = OpenApiRouter::with_openapi(crate::openapi::base())
        .merge(principals::router())
        .merge(policies::router())
        .merge(provisioning::router())
        .merge(queries::router())
        .merge(reconciliations::router())
        .merge(archive::router())
        .split_for_parts();
    let spec = axum::Json(api.clone());
    let protected = protected
        .route("/openapi.json", axum::routing::get(move || async move { spec.clone() }))
        .layer(middleware::from_fn_with_state(state.clone(), crate::auth::require_token));
    health::router().merge(protected).with_state(state)
}
