//! The OpenAPI 3 document, served at `/api-docs/openapi.json` with a Swagger UI at
//! `/api-docs/ui` (assets vendored in the binary, nothing fetched at build time).
//!
//! Its paths come from the route table ([`crate::web::routing`]): each routed handler's
//! `#[utoipa::path]`, with the route's access written as security requirements
//! ([`requirements`]). This module adds what is not a route: the title, the tags and the
//! security schemes.

use axum::Router;
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::web::{Access, AppState};

/// Where the document and the Swagger UI are served. Not routes of the API: they need
/// what an operations route needs ([`Access::Operations`]).
pub(crate) const PREFIX: &str = "/api-docs";

/// The security scheme of a bearer JWT.
const BEARER: &str = "bearer";
/// The security scheme of an `X-API-Key`.
const API_KEY: &str = "api_key";

/// The API description: `ApiDoc::openapi()` is the document the server serves, every
/// route included.
#[derive(Debug)]
pub struct ApiDoc;

impl OpenApi for ApiDoc {
    fn openapi() -> utoipa::openapi::OpenApi {
        crate::web::routing::spec().clone()
    }
}

/// The document without its paths, which the route table adds.
pub(crate) fn base() -> utoipa::openapi::OpenApi {
    Base::openapi()
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Tasker orchestration API", description = "Create tasks, follow them, and operate on their steps."),
    modifiers(&Security),
    tags(
        (name = "tasks", description = "Tasks"),
        (name = "steps", description = "Workflow steps and operator actions"),
        (name = "templates", description = "Registered task templates"),
        (name = "dlq", description = "Dead letter queue"),
        (name = "health", description = "Health and metrics"),
        (name = "system", description = "Configuration"),
    )
)]
struct Base;

/// A route's access as the security requirements of its operation, any one of which
/// suffices: its permission through either scheme, or, for an operations route, no
/// credentials or either scheme's.
pub(crate) fn requirements(access: Access) -> Vec<SecurityRequirement> {
    let by = |scopes: &[&str]| {
        [BEARER, API_KEY].map(|scheme| SecurityRequirement::new(scheme, scopes.iter().copied()))
    };
    match access {
        Access::Operations => std::iter::once(SecurityRequirement::default())
            .chain(by(&[]))
            .collect(),
        Access::Permission(permission) => by(&[permission]).to_vec(),
    }
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            API_KEY,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// `/api-docs/openapi.json` and the Swagger UI at `/api-docs/ui`.
pub fn routes() -> Router<AppState> {
    SwaggerUi::new(format!("{PREFIX}/ui"))
        .url(format!("{PREFIX}/openapi.json"), ApiDoc::openapi())
        .into()
}
