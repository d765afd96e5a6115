//! The bearer-token check in front of every route but the health probes.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse as _, Response};

use crate::{AdminState, ApiError};

/// Refuses a request without `Authorization: Bearer <the token>` with 401.
pub async fn require_token(State(state): State<AdminState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .map(<[u8]>::trim_ascii);
    match presented {
        Some(token) if state.token.matches(token) => next.run(request).await,
        _ => ApiError::unauthorized().into_response(),
    }
}
