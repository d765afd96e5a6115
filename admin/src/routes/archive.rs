//! `GET /v1/archive`: how far the ledger is shipped to the archive
//! (`serve --archive`), and how far behind.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use egress_archive::status::ArchiveSnapshot;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::error::ErrorBody;
use crate::{AdminState, ApiError};

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new().routes(routes!(archive_status))
}

/// The archive shipper's status: shipped seq, lag in records and seconds,
/// uploads, the last error, and whether the archive and the local ledger
/// disagree.
#[utoipa::path(
    get,
    path = "/v1/archive",
    tag = "archive",
    responses(
        (status = 200, description = "The shipper's status", body = ArchiveSnapshot),
        (status = 404, description = "No archive: serve runs without --archive", body = ErrorBody),
    )
)]
async fn archive_status(State(state): State<AdminState>) -> Result<Json<ArchiveSnapshot>, ApiError> {
    let status = state.archive.as_ref().ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "no_archive", "no archive: start serve with --archive s3://BUCKET/PREFIX")
    })?;
    Ok(Json(status.snapshot(state.ledger.head().records.checked_sub(1))))
}
