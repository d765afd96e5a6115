//! Routes of the admin API: principals (being written).

use utoipa_axum::router::OpenApiRouter;

use crate::AdminState;

pub fn router() -> OpenApiRouter<AdminState> {
    OpenApiRouter::new()
}
