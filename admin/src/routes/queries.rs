//! Routes of the admin API: queries (being written).

use utoipa_axum::router::OpenApiRouter;

use crate::AdminState;

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
}
