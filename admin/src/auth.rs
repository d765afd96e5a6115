//! The bearer-token check in front of every route but the health probes
//! (which answer more with the token than without).

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};
use http::HeaderMap;

use crate::{AdminState, ApiError};

/// Refuses a request without `Authorization: Bearer <the token>` with 401.
pub async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    if authorized(&state, request.headers()) {
        next.run(request).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

/// Whether `headers` carry `Authorization: Bearer <the token>`.
#[must_use]
pub fn authorized(state: &AdminState, headers: &HeaderMap) -> bool {
    let presented = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .map(<[u8]>::trim_ascii);
    presented.is_some_and(|token| state.token.matches(token))
}
