//! Errors of the admin API: one type, turned into `{"error":{"code","message"}}`
//! with its status in one place.

use axum::Json;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::Serialize;

/// An error answered to an admin client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    /// Machine-readable: `bad_request`, `unauthorized`, `not_found`,
    /// `conflict`, `aws_error`, `internal`, or an AWS error code.
    pub code: String,
    pub message: String,
}

impl ApiError {
    #[must_use]
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> ApiError {
        ApiError { status, code: code.to_owned(), message: message.into() }
    }

    /// 400 naming the field that is wrong.
    #[must_use]
    pub fn bad_field(field: &str, why: &str) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("{field}: {why}"))
    }

    #[must_use]
    pub fn not_found(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", what)
    }

    #[must_use]
    pub fn conflict(what: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, "conflict", what)
    }

    #[must_use]
    pub fn unauthorized() -> ApiError {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong admin token: send `Authorization: Bearer <token>`",
        )
    }

    #[must_use]
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message } };
        (self.status, Json(body)).into_response()
    }
}

impl From<egress_ledger::principals::PrincipalError> for ApiError {
    fn from(e: egress_ledger::principals::PrincipalError) -> ApiError {
        use egress_ledger::principals::PrincipalError as P;
        match &e {
            P::InvalidName(_) | P::Reserved(_) => ApiError::bad_field("name", &e.to_string()),
            P::Exists(_) => ApiError::conflict(e.to_string()),
            P::NoSuchPrincipal(_) | P::NoSuchKey(_) => ApiError::not_found(e.to_string()),
            _ => ApiError::internal(e.to_string()),
        }
    }
}

impl From<egress_ledger::issuing::IssueError> for ApiError {
    fn from(e: egress_ledger::issuing::IssueError) -> ApiError {
        match e {
            egress_ledger::issuing::IssueError::Principal(e) => e.into(),
            egress_ledger::issuing::IssueError::Ledger(e) => e.into(),
            other => ApiError::internal(other.to_string()),
        }
    }
}

impl From<egress_ledger::AppendError> for ApiError {
    fn from(e: egress_ledger::AppendError) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ledger_unavailable", e.to_string())
    }
}

impl From<egress_ledger::cursor::ReadError> for ApiError {
    fn from(e: egress_ledger::cursor::ReadError) -> ApiError {
        match e {
            // Not an error of ours: the history asked for was archived and
            // pruned from this host (the message says where it is).
            egress_ledger::cursor::ReadError::Pruned { .. } => ApiError::new(StatusCode::GONE, "pruned", e.to_string()),
            other => ApiError::internal(other.to_string()),
        }
    }
}
