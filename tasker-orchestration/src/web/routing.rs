//! The route table. Each route is declared once, by its handler's `#[utoipa::path]`.
//!
//! The attribute holds the method, the path, the documentation and, in `security`, who
//! may call the route:
//!
//! - `security(("permission" = ["tasks:create"]))`: credentials that hold this permission,
//!   one of `tasker_shared::auth::PERMISSIONS`;
//! - `security(())`: an operations route (health, metrics). It is public, or needs valid
//!   credentials but no permission when `web.auth.public_health_and_metrics` is false.
//!
//! [`declared`] lists the handlers, and nothing else. `utoipa_axum::routes!` reads each
//! handler's method and path from its attribute, so the axum router and the OpenAPI paths
//! come from the same list. A handler is routed only through that list, so it cannot be
//! routed without being documented (`OpenApiRouter::route` and axum's own `route` would
//! bypass both the document and the table: they are not used here).
//! The [`Table`] is derived from the document those handlers make. It refuses an
//! operation without `security`, an unknown permission, or a public route under `/v1`,
//! so no route can lack an access decision. [`super::app`] builds it before it routes
//! anything, so the server does not start with such a route. A unit test builds it
//! without a database. The table also rewrites each `permission` requirement into the
//! schemes that carry it (`bearer` and `api_key`, [`crate::openapi::requirements`]), so the
//! served document shows every route's permission.
//! The authorization middleware looks requests up in the table ([`find`]), and tests
//! iterate over it ([`routes`]).
//!
//! Why the attribute and not a table of our own: the attribute must exist anyway for the
//! documentation, and it already holds the method and the path. With the permission next
//! to them, nothing about a route is written twice. A `macro_rules!` table would either
//! repeat the method and the path beside the attribute, or wrap every handler's
//! definition to write the attribute itself (code rustfmt leaves alone). The price is
//! that the compiler does not enforce the access decision: building the table does, when
//! the process starts and in every test.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::Router;
use axum::http::Method;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::SecurityRequirement;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use tasker_shared::auth::PERMISSIONS;

use super::{AppState, dlq, health, steps, tasks, templates};

/// The scheme name a route's `security` uses to name its permission. It is not a
/// security scheme of the served document: [`Table::derive`] replaces it.
const PERMISSION: &str = "permission";

/// Every routed handler, once. Its `#[utoipa::path]` says where it is routed, how it is
/// documented and who may call it (see the module doc).
fn declared() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(health::health_check))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(health::detailed))
        .routes(routes!(health::metrics))
        .routes(routes!(health::config))
        .routes(routes!(tasks::create_task))
        .routes(routes!(tasks::list_tasks))
        .routes(routes!(tasks::get_task))
        .routes(routes!(tasks::cancel_task))
        .routes(routes!(tasks::task_summary))
        .routes(routes!(steps::list_steps))
        .routes(routes!(steps::get_step))
        .routes(routes!(steps::act_on_step))
        .routes(routes!(steps::step_audit))
        .routes(routes!(templates::list_templates))
        .routes(routes!(templates::get_template))
        .routes(routes!(dlq::list_dlq))
        .routes(routes!(dlq::dlq_stats))
        .routes(routes!(dlq::dlq_for_task))
        .routes(routes!(dlq::update_dlq_entry))
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `security(())`: public, or valid credentials without a permission when
    /// `web.auth.public_health_and_metrics` is false.
    Operations,
    /// `security(("permission" = ["resource:action"]))`: credentials with this permission.
    Permission(&'static str),
}

/// One route of the API, as its handler declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The HTTP method.
    pub method: Method,
    /// The path template, as axum matches it (`/v1/tasks/{task_uuid}`).
    pub path: String,
    /// The handler's name (the operation id).
    pub handler: String,
    /// Who may call it.
    pub access: Access,
}

/// The routes and the document, derived once from [`declared`].
struct Table {
    routes: Vec<Route>,
    spec: utoipa::openapi::OpenApi,
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    Table::derive(declared().into_openapi())
        .unwrap_or_else(|problems| panic!("the route table is refused:\n{}", problems.join("\n")))
});

/// The table, derived on first use.
fn table() -> &'static Table {
    &TABLE
}

/// Every route the API serves, in path order.
pub fn routes() -> &'static [Route] {
    &table().routes
}

/// The route a request matched: `path` is axum's matched path template.
pub(crate) fn find(method: &Method, path: &str) -> Option<&'static Route> {
    routes()
        .iter()
        .find(|r| r.method == *method && r.path == path)
}

/// The OpenAPI document served at `/api-docs/openapi.json`.
pub(crate) fn spec() -> &'static utoipa::openapi::OpenApi {
    &table().spec
}

/// The router with every declared route. The table is derived first, so a route without
/// an access decision stops the process before it serves anything.
pub(super) fn router() -> Router<AppState> {
    LazyLock::force(&TABLE);
    declared().into()
}

impl Table {
    /// Reads every operation's access from its `security` and writes the schemes that
    /// carry it into the document; lists every operation that has no valid decision.
    fn derive(mut spec: utoipa::openapi::OpenApi) -> Result<Self, Vec<String>> {
        let mut routes = Vec::new();
        let mut problems = Vec::new();
        for (path, item) in spec.paths.paths.iter_mut() {
            for (method, operation) in operations(item) {
                let Some(operation) = operation else {
                    continue;
                };
                let handler = operation.operation_id.clone().unwrap_or_default();
                match access(path, operation.security.as_deref()) {
                    Ok(access) => {
                        operation.security = Some(crate::openapi::requirements(access));
                        routes.push(Route {
                            method,
                            path: path.clone(),
                            handler,
                            access,
                        });
                    }
                    Err(problem) => {
                        problems.push(format!("{method} {path} ({handler}): {problem}"))
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(Self { routes, spec })
        } else {
            Err(problems)
        }
    }
}

fn operations(item: &mut PathItem) -> [(Method, Option<&mut Operation>); 8] {
    [
        (Method::GET, item.get.as_mut()),
        (Method::PUT, item.put.as_mut()),
        (Method::POST, item.post.as_mut()),
        (Method::DELETE, item.delete.as_mut()),
        (Method::OPTIONS, item.options.as_mut()),
        (Method::HEAD, item.head.as_mut()),
        (Method::PATCH, item.patch.as_mut()),
        (Method::TRACE, item.trace.as_mut()),
    ]
}

/// The access an operation's `security` declares.
fn access(path: &str, security: Option<&[SecurityRequirement]>) -> Result<Access, String> {
    const HOW: &str = "declare `security((\"permission\" = [\"resource:action\"]))` in its #[utoipa::path], or `security(())` for an operations route outside /v1";
    let Some(requirements) = security else {
        return Err(format!("no access decision: {HOW}"));
    };
    let requirements = requirements
        .iter()
        .map(|r| {
            serde_json::to_value(r)
                .and_then(serde_json::from_value::<BTreeMap<String, Vec<String>>>)
                .map_err(|e| format!("unreadable security requirement: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    match requirements.as_slice() {
        [public] if public.is_empty() => {
            if path.starts_with("/v1") {
                Err(format!("a /v1 route cannot be public: {HOW}"))
            } else {
                Ok(Access::Operations)
            }
        }
        [named] if named.len() == 1 => match named.get(PERMISSION).map(Vec::as_slice) {
            Some([permission]) => PERMISSIONS
                .iter()
                .find(|known| **known == permission.as_str())
                .map(|known| Access::Permission(known))
                .ok_or_else(|| {
                    format!(
                        "unknown permission {permission:?}; known: {}",
                        PERMISSIONS.join(", ")
                    )
                }),
            _ => Err(format!("expected one permission: {HOW}")),
        },
        _ => Err(format!("expected one security requirement: {HOW}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_declared_route_has_an_access_decision() {
        if let Err(problems) = Table::derive(declared().into_openapi()) {
            panic!("{}", problems.join("\n"));
        }
    }

    #[test]
    fn every_permission_of_the_vocabulary_guards_a_route() {
        for permission in PERMISSIONS {
            assert!(
                routes()
                    .iter()
                    .any(|r| r.access == Access::Permission(permission)),
                "no route needs {permission}"
            );
        }
    }

    // Handlers that only these tests declare, each with a faulty access decision.
    #[utoipa::path(get, path = "/v1/undecided", responses((status = 200)))]
    async fn undecided() {}

    #[utoipa::path(get, path = "/v1/public", security(()), responses((status = 200)))]
    async fn public_v1() {}

    #[utoipa::path(get, path = "/v1/unknown", security(("permission" = ["tasks:explode"])), responses((status = 200)))]
    async fn unknown_permission() {}

    #[utoipa::path(get, path = "/v1/two", security(("permission" = ["tasks:read", "tasks:list"])), responses((status = 200)))]
    async fn two_permissions() {}

    #[utoipa::path(get, path = "/v1/bearer", security(("bearer" = [])), responses((status = 200)))]
    async fn other_scheme() {}

    #[test]
    fn a_route_without_a_valid_access_decision_is_refused() {
        let router: OpenApiRouter<AppState> = declared()
            .routes(routes!(undecided))
            .routes(routes!(public_v1))
            .routes(routes!(unknown_permission))
            .routes(routes!(two_permissions))
            .routes(routes!(other_scheme));
        let Err(problems) = Table::derive(router.into_openapi()) else {
            panic!("the faulty declarations were accepted");
        };
        let expected = [
            ("GET /v1/undecided (undecided)", "no access decision"),
            ("GET /v1/public (public_v1)", "cannot be public"),
            ("GET /v1/unknown (unknown_permission)", "unknown permission"),
            ("GET /v1/two (two_permissions)", "expected one permission"),
            ("GET /v1/bearer (other_scheme)", "expected one permission"),
        ];
        assert_eq!(problems.len(), expected.len(), "{problems:#?}");
        for (route, problem) in expected {
            assert!(
                problems
                    .iter()
                    .any(|p| p.starts_with(route) && p.contains(problem)),
                "{route}: {problems:#?}"
            );
        }
    }
}
