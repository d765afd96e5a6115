//! The `OpenAPI` document's frame; the paths come from the route modules'
//! `#[utoipa::path]` annotations, collected as the router is built.

use utoipa::OpenApi;

#[derive(OpenApi)]
#[openapi(
    info(title = "egress-proxy admin API", description = "Principals, AWS provisioning and ledger queries. See docs/ADMIN_API.md."),
    components(schemas(crate::error::ErrorBody, crate::error::ErrorDetail)),
    modifiers(&BearerAuth),
    security(("bearer" = []))
)]
struct Base;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The document before the routes add their paths.
#[must_use]
pub fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}
