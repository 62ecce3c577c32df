//! The OpenAPI 3 document, generated from the handlers' annotations (utoipa), served at
//! `/api-docs/openapi.json` with a Swagger UI at `/api-docs/ui` (assets vendored in
//! the binary, nothing fetched at build time).

use axum::Router;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_swagger_ui::SwaggerUi;

use crate::web::AppState;

/// The API description.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Tasker orchestration API", description = "Create tasks, follow them, and operate on their steps."),
    paths(
        crate::web::tasks::create_task,
        crate::web::tasks::list_tasks,
        crate::web::tasks::get_task,
        crate::web::tasks::cancel_task,
        crate::web::tasks::task_summary,
        crate::web::steps::list_steps,
        crate::web::steps::get_step,
        crate::web::steps::act_on_step,
        crate::web::steps::step_audit,
        crate::web::templates::list_templates,
        crate::web::templates::get_template,
        crate::web::dlq::list_dlq,
        crate::web::dlq::dlq_for_task,
        crate::web::dlq::update_dlq_entry,
        crate::web::dlq::dlq_stats,
        crate::web::health::health_check,
        crate::web::health::live,
        crate::web::health::ready,
        crate::web::health::detailed,
        crate::web::health::metrics,
        crate::web::health::config,
    ),
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
pub struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
    }
}

/// `/api-docs/openapi.json` and the Swagger UI at `/api-docs/ui`.
pub fn routes() -> Router<AppState> {
    SwaggerUi::new("/api-docs/ui")
        .url("/api-docs/openapi.json", ApiDoc::openapi())
        .into()
}
