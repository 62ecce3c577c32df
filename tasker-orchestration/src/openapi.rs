//! The OpenAPI document (placeholder until annotated).

use axum::Router;

use crate::web::AppState;

/// Routes serving the API description.
pub fn routes() -> Router<AppState> {
    Router::new()
}
