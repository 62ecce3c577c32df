//! Every route, without a port: successes and each error status, auth, limits, OpenAPI.

#![allow(clippy::unwrap_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use tasker_orchestration::lifecycle::task_initializer::create_task;
use tasker_orchestration::web::{self, AppState, Authenticator};
use tasker_shared::api::TaskRequest;
use tasker_shared::config::{ApiKeyConfig, TaskerConfig};
use tasker_shared::database::{dlq, named_task, step};
use tasker_shared::template::TaskTemplate;
use tasker_shared::testing::TestDb;

const TEMPLATE: &str = "name: api\nnamespace_name: apins\nversion: 1.0.0\nsteps:\n  - name: a\n    handler: { callable: c }\n  - name: b\n    dependencies: [a]\n    handler: { callable: c }\n";

struct Api {
    app: Router,
    db: TestDb,
}

impl Api {
    async fn new(config: TaskerConfig) -> Self {
        let db = TestDb::new().await;
        named_task::register(&db.pool, &TaskTemplate::from_yaml(TEMPLATE, "t").unwrap())
            .await
            .unwrap();
        let auth = Authenticator::from_config(&config.web.auth).unwrap();
        let app = web::app(AppState::with_config(db.pool.clone(), config, auth, None));
        Self { app, db }
    }

    async fn call(&self, req: Request<Body>) -> (StatusCode, Value, axum::http::HeaderMap) {
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = axum::body::to_bytes(resp.into_body(), 1 << 22)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            headers,
        )
    }

    async fn get(&self, uri: &str) -> (StatusCode, Value) {
        let (s, v, _) = self
            .call(Request::get(uri).body(Body::empty()).unwrap())
            .await;
        (s, v)
    }

    async fn send(&self, method: &str, uri: &str, body: Value) -> (StatusCode, Value) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let (s, v, _) = self.call(req).await;
        (s, v)
    }

    async fn task(&self, ctx: Value) -> Uuid {
        create_task(&self.db.pool, &TaskRequest::new("apins", "api", ctx))
            .await
            .unwrap()
            .task_uuid
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

/// `POST /v1/tasks` answers with the task as committed, built from what it wrote rather
/// than read back; it must say exactly what a read right after it says.
#[tokio::test]
async fn a_created_task_reads_back_as_the_post_answered() {
    let api = Api::new(TaskerConfig::default()).await;
    // Parent names that byte order and a linguistic collation sort differently.
    let join = "name: join\nnamespace_name: apins\nversion: 2.1.0\nsteps:\n  - name: ab\n    handler: { callable: c }\n  - name: a_z\n    handler: { callable: c }\n    retry: { max_attempts: 7 }\n  - name: m\n    dependencies: [ab, a_z]\n    handler: { callable: c }\n  - name: last\n    dependencies: [m]\n    handler: { callable: c }\n";
    named_task::register(&api.db.pool, &TaskTemplate::from_yaml(join, "t").unwrap())
        .await
        .unwrap();
    let (s, posted) = api
        .send(
            "POST",
            "/v1/tasks",
            json!({
                "namespace": "apins", "name": "join",
                "context": {"order": {"id": 7, "lines": [1, 2.5, "x"]}, "flag": true},
                "initiator": "me", "source_system": "tests", "reason": "compare",
                "tags": ["b", "a"], "priority": 5,
            }),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{posted}");
    assert_eq!(posted["steps"].as_array().unwrap().len(), 4);
    assert_eq!(posted["status"], "steps_in_process");
    let (s, read) = api
        .get(&format!(
            "/v1/tasks/{}",
            posted["task_uuid"].as_str().unwrap()
        ))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(posted, read);
}

#[tokio::test]
async fn task_routes() {
    let api = Api::new(TaskerConfig::default()).await;
    let a = api.task(json!({"n": 1})).await;
    let _b = api.task(json!({"n": 2})).await;

    let (s, v) = api.get("/v1/tasks?namespace=apins&per_page=1").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["pagination"]["total_count"], 2);
    assert_eq!(v["pagination"]["total_pages"], 2);
    assert_eq!(v["pagination"]["has_next"], true);
    assert_eq!(v["tasks"].as_array().unwrap().len(), 1);
    let (_, v) = api.get("/v1/tasks?status=complete").await;
    assert_eq!(v["pagination"]["total_count"], 0);
    // Filters combine, and each page comes with the count of the same filters.
    let (_, v) = api
        .get("/v1/tasks?namespace=apins&status=steps_in_process&per_page=1&page=2")
        .await;
    assert_eq!(v["pagination"]["total_count"], 2, "{v}");
    assert_eq!(v["tasks"].as_array().unwrap().len(), 1, "{v}");
    let (_, v) = api
        .get("/v1/tasks?namespace=apins&status=steps_in_process&initiator=nobody")
        .await;
    assert_eq!(v["pagination"]["total_count"], 0, "{v}");
    let (_, v) = api.get("/v1/tasks?namespace=other").await;
    assert_eq!(v["tasks"], json!([]));
    let (s, v) = api.get("/v1/tasks?status=done").await;
    assert_eq!((s, code(&v)), (StatusCode::BAD_REQUEST, "BAD_REQUEST"));
    assert!(v["error"]["message"].as_str().unwrap().contains("\"done\""));
    let (s, _) = api.get("/v1/tasks?per_page=1000").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = api.get("/v1/tasks?bogus=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // A known path with the wrong method answers in the usual error shape.
    let (s, v) = api.send("PUT", "/v1/tasks", json!({})).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
        "{v}"
    );

    let (s, v) = api.get(&format!("/v1/tasks/{a}/summary")).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["steps"].as_array().unwrap().len(), 2);
    assert_eq!(v["status"], "steps_in_process");
    let (s, _) = api
        .get(&format!("/v1/tasks/{}/summary", Uuid::now_v7()))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, v) = api
        .send(
            "DELETE",
            &format!("/v1/tasks/{a}?reason=test&cancelled_by=me"),
            Value::Null,
        )
        .await;
    assert_eq!(
        (s, v["status"].as_str()),
        (StatusCode::OK, Some("cancelled"))
    );
    let (s, v) = api
        .send("DELETE", &format!("/v1/tasks/{a}"), Value::Null)
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "CONFLICT"));
    let (s, _) = api
        .send(
            "DELETE",
            &format!("/v1/tasks/{}", Uuid::now_v7()),
            Value::Null,
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn step_routes() {
    let api = Api::new(TaskerConfig::default()).await;
    let t = api.task(json!({})).await;
    let (s, steps) = api.get(&format!("/v1/tasks/{t}/workflow_steps")).await;
    assert_eq!(s, StatusCode::OK);
    let b = steps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "b")
        .unwrap()["step_uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let (s, v) = api.get(&format!("/v1/tasks/{t}/workflow_steps/{b}")).await;
    assert_eq!(
        (s, v["current_state"].as_str()),
        (StatusCode::OK, Some("pending"))
    );
    let (s, _) = api
        .get(&format!("/v1/tasks/{}/workflow_steps", Uuid::now_v7()))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = api
        .get(&format!("/v1/tasks/{t}/workflow_steps/{}", Uuid::now_v7()))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    let (s, v) = api
        .send(
            "PATCH",
            &format!("/v1/tasks/{t}/workflow_steps/{b}"),
            json!({"action_type": "reset_for_retry", "reason": "r", "reset_by": "me"}),
        )
        .await;
    assert_eq!((s, code(&v)), (StatusCode::CONFLICT, "CONFLICT"), "{v}");
    let (s, v) = api
        .send(
            "PATCH",
            &format!("/v1/tasks/{t}/workflow_steps/{b}"),
            json!({"action_type": "nope"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = api
        .send(
            "PATCH",
            &format!("/v1/tasks/{t}/workflow_steps/{b}"),
            json!({"action_type": "resolve_manually", "reason": "", "resolved_by": "me"}),
        )
        .await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR")
    );
    let (s, v) = api
        .send(
            "PATCH",
            &format!("/v1/tasks/{t}/workflow_steps/{b}"),
            json!({"action_type": "resolve_manually", "reason": "skip", "resolved_by": "me"}),
        )
        .await;
    assert_eq!(
        (s, v["current_state"].as_str()),
        (StatusCode::OK, Some("resolved_manually")),
        "{v}"
    );

    let (s, v) = api
        .get(&format!("/v1/tasks/{t}/workflow_steps/{b}/audit"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let last = v.as_array().unwrap().last().unwrap();
    assert_eq!(
        (last["actor"].as_str(), last["reason"].as_str()),
        (Some("me"), Some("skip"))
    );
    let (s, _) = api
        .get(&format!(
            "/v1/tasks/{t}/workflow_steps/{}/audit",
            Uuid::now_v7()
        ))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn template_dlq_health_and_config_routes() {
    let mut config = TaskerConfig::default();
    config.database.url = "postgres://u:hunter2@h/db".into();
    let api = Api::new(config).await;
    let (s, v) = api.get("/v1/templates").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["namespaces"],
        json!([{"name": "apins", "template_count": 1}])
    );
    assert_eq!(v["templates"][0]["step_count"], 2);
    let (s, v) = api.get("/v1/templates/apins/api/1.0.0").await;
    assert_eq!(
        (s, v["identity_strategy"].as_str()),
        (StatusCode::OK, Some("strict"))
    );
    assert_eq!(v["template"]["steps"][1]["dependencies"], json!(["a"]));
    let (s, _) = api.get("/v1/templates/apins/api/9.9.9").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // A DLQ entry to look at.
    let t = api.task(json!({})).await;
    let mut conn = api.db.pool.acquire().await.unwrap();
    let entry = dlq::create_entry(&mut conn, t, "steps_in_process", "manual_dlq", &json!({}))
        .await
        .unwrap()
        .unwrap();
    drop(conn);
    let (s, v) = api.get("/v1/dlq?resolution_status=pending").await;
    assert_eq!((s, v.as_array().unwrap().len()), (StatusCode::OK, 1));
    let (s, _) = api.get("/v1/dlq?resolution_status=weird").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, v) = api.get(&format!("/v1/dlq/task/{t}")).await;
    assert_eq!(
        (s, v["dlq_reason"].as_str()),
        (StatusCode::OK, Some("manual_dlq"))
    );
    let (s, _) = api.get(&format!("/v1/dlq/task/{}", Uuid::now_v7())).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = api
        .send("PATCH", &format!("/v1/dlq/entry/{entry}"), json!({"resolution_status": "manually_resolved", "resolution_notes": "fixed", "resolved_by": "ops"}))
        .await;
    assert_eq!(
        (s, v["resolution_status"].as_str()),
        (StatusCode::OK, Some("manually_resolved")),
        "{v}"
    );
    assert!(v["resolution_timestamp"].is_string());
    let (s, _) = api
        .send(
            "PATCH",
            &format!("/v1/dlq/entry/{entry}"),
            json!({"resolution_status": "maybe"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = api
        .send("PATCH", &format!("/v1/dlq/entry/{entry}"), json!({}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) = api
        .send(
            "PATCH",
            &format!("/v1/dlq/entry/{}", Uuid::now_v7()),
            json!({"resolution_notes": "x"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, v) = api.get("/v1/dlq/stats").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        (v["total"].as_u64(), v["by_reason"]["manual_dlq"].as_u64()),
        (Some(1), Some(1))
    );

    for path in ["/health", "/health/live"] {
        assert_eq!(api.get(path).await.0, StatusCode::OK, "{path}");
    }
    let (s, v) = api.get("/health/ready").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["checks"]["migrations"]["status"], "healthy");
    assert_eq!(v["checks"]["queues"]["status"], "healthy");
    let (s, v) = api.get("/health/detailed").await;
    assert_eq!(
        (s, v["info"]["auth_enabled"].as_bool()),
        (StatusCode::OK, Some(false))
    );
    // No recorder installed in this process, and the config endpoint is off by default.
    assert_eq!(api.get("/metrics").await.0, StatusCode::NOT_FOUND);
    assert_eq!(api.get("/config").await.0, StatusCode::NOT_FOUND);

    let mut config = TaskerConfig::default();
    config.database.url = "postgres://u:hunter2@h/db".into();
    config.web.config_endpoint_enabled = true;
    let api = Api::new(config).await;
    let (s, v) = api.get("/config").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["database"]["url"], "postgres://u:[redacted]@h/db");
}

#[tokio::test]
async fn limits_request_ids_and_backpressure() {
    let mut config = TaskerConfig::default();
    config.web.body_limit_bytes = 2048;
    config.orchestration.backpressure.queue_depth_threshold = 1;
    config.orchestration.backpressure.retry_after_seconds = 7;
    let api = Api::new(config).await;

    let big = json!({"namespace": "apins", "name": "api", "context": {"blob": "x".repeat(4096)}});
    let (s, v) = api.send("POST", "/v1/tasks", big).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE"),
        "{v}"
    );

    let (_, _, headers) = api
        .call(Request::get("/health").body(Body::empty()).unwrap())
        .await;
    assert!(headers.get("x-request-id").is_some());
    let req = Request::get("/health")
        .header("x-request-id", "abc-123")
        .body(Body::empty())
        .unwrap();
    let (_, _, headers) = api.call(req).await;
    assert_eq!(headers.get("x-request-id").unwrap(), "abc-123");

    // Two tasks put two messages on the namespace queue: past the threshold of 1.
    api.task(json!({"n": 1})).await;
    api.task(json!({"n": 2})).await;
    let req = Request::post("/v1/tasks")
        .header("content-type", "application/json")
        .body(Body::from(
            json!({"namespace": "apins", "name": "api", "context": {"n": 3}}).to_string(),
        ))
        .unwrap();
    let (s, v, headers) = api.call(req).await;
    assert_eq!(
        (s, code(&v)),
        (StatusCode::SERVICE_UNAVAILABLE, "BACKPRESSURE"),
        "{v}"
    );
    assert_eq!(headers.get("retry-after").unwrap(), "7");
}

const SECRET: &str = "test-secret-that-is-long-enough";
const API_KEY: &str = "key-0123456789abcdef";

fn token(permissions: &[&str]) -> String {
    let now = chrono::Utc::now().timestamp();
    let claims = json!({"sub": "tester", "iss": "tasker-core", "aud": "tasker-api", "iat": now, "exp": now + 600, "permissions": permissions});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap()
}

fn concrete(path: &str, task: Uuid, step: Uuid) -> String {
    path.replace("{task_uuid}", &task.to_string())
        .replace("{step_uuid}", &step.to_string())
        .replace("{dlq_entry_uuid}", &Uuid::now_v7().to_string())
        .replace("{namespace}", "apins")
        .replace("{name}", "api")
        .replace("{version}", "1.0.0")
}

#[tokio::test]
async fn every_protected_route_needs_credentials_and_its_permission() {
    let mut config = TaskerConfig::default();
    config.web.auth.enabled = true;
    config.web.auth.jwt_hs256_secret = Some(SECRET.into());
    config.web.auth.api_keys = vec![ApiKeyConfig {
        key: API_KEY.into(),
        name: "ci".into(),
        permissions: vec!["tasks:*".into()],
    }];
    config.web.config_endpoint_enabled = true;
    let api = Api::new(config).await;
    let task = api.task(json!({})).await;
    let step = step::read::ids_for_task(&api.db.pool, task).await.unwrap()[0];

    let mut protected = 0;
    for route in web::routes() {
        let (method, path) = (route.method.as_str(), route.path.as_str());
        let uri = concrete(path, task, step);
        let required = web::auth::required_permission(&route.method, path, true);
        let request = |auth: Option<(&str, String)>| {
            let mut b = Request::builder()
                .method(method)
                .uri(&uri)
                .header("content-type", "application/json");
            if let Some((h, v)) = auth {
                b = b.header(h, v);
            }
            let body = if method == "GET" || method == "DELETE" {
                Body::empty()
            } else {
                Body::from("{}")
            };
            b.body(body).unwrap()
        };
        let Some(permission) = required else {
            let (s, v, _) = api.call(request(None)).await;
            assert!(
                s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN,
                "{method} {path} should be public: {s} {v}"
            );
            continue;
        };
        protected += 1;
        let (s, v, _) = api.call(request(None)).await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::UNAUTHORIZED, "AUTHENTICATION_FAILED"),
            "{method} {path}"
        );
        let other = if permission.starts_with("dlq") {
            "templates:read"
        } else {
            "dlq:read"
        };
        let (s, v, _) = api
            .call(request(Some((
                "authorization",
                format!("Bearer {}", token(&[other])),
            ))))
            .await;
        assert_eq!(
            (s, code(&v)),
            (StatusCode::FORBIDDEN, "AUTHORIZATION_FAILED"),
            "{method} {path}: {v}"
        );
        assert!(
            v["error"]["message"].as_str().unwrap().contains(permission),
            "{v}"
        );
        let (s, v, _) = api
            .call(request(Some((
                "authorization",
                format!("Bearer {}", token(&[permission])),
            ))))
            .await;
        assert!(
            s != StatusCode::UNAUTHORIZED && s != StatusCode::FORBIDDEN,
            "{method} {path} with {permission}: {s} {v}"
        );
    }
    assert_eq!(protected, 16, "the 15 /v1 routes and /config");

    // Wildcards, API keys, bad tokens.
    let (s, _, _) = api
        .call(
            Request::get(format!("/v1/tasks/{task}"))
                .header("x-api-key", API_KEY)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _, _) = api
        .call(
            Request::get("/v1/templates")
                .header("x-api-key", API_KEY)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, v, _) = api
        .call(
            Request::get("/v1/templates")
                .header("x-api-key", "wrong-key-000000000")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{v}");
    let now = chrono::Utc::now().timestamp();
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "x", "iss": "tasker-core", "aud": "tasker-api", "exp": now - 3600, "permissions": ["tasks:*"]}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let (s, v, _) = api
        .call(
            Request::get("/v1/tasks")
                .header("authorization", format!("Bearer {expired}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ExpiredSignature"),
        "{v}"
    );
    let wrong_audience = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({"sub": "x", "iss": "tasker-core", "aud": "someone-else", "exp": now + 60, "permissions": ["tasks:*"]}),
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )
    .unwrap();
    let (s, _, _) = api
        .call(
            Request::get("/v1/tasks")
                .header("authorization", format!("Bearer {wrong_audience}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// What a request needs when no declared route serves it, and what the OpenAPI document
/// needs: it answers 401 only where credentials are required.
#[tokio::test]
async fn requests_outside_the_route_table() {
    let mut config = TaskerConfig::default();
    config.web.auth.enabled = true;
    config.web.auth.jwt_hs256_secret = Some(SECRET.into());
    config.web.auth.public_health_and_metrics = false;
    let api = Api::new(config).await;
    let bearer = format!("Bearer {}", token(&[]));
    for (method, uri, anonymous, authenticated) in [
        (
            "GET",
            "/v1/nope",
            StatusCode::UNAUTHORIZED,
            StatusCode::NOT_FOUND,
        ),
        (
            "PUT",
            "/v1/tasks",
            StatusCode::UNAUTHORIZED,
            StatusCode::METHOD_NOT_ALLOWED,
        ),
        ("GET", "/nope", StatusCode::NOT_FOUND, StatusCode::NOT_FOUND),
        ("GET", "/health", StatusCode::UNAUTHORIZED, StatusCode::OK),
        (
            "GET",
            "/api-docs/openapi.json",
            StatusCode::UNAUTHORIZED,
            StatusCode::OK,
        ),
    ] {
        for (credentials, expected) in [(None, anonymous), (Some(&bearer), authenticated)] {
            let mut request = Request::builder().method(method).uri(uri);
            if let Some(credentials) = credentials {
                request = request.header("authorization", credentials);
            }
            let (s, v, _) = api.call(request.body(Body::empty()).unwrap()).await;
            assert_eq!(s, expected, "{method} {uri} with {credentials:?}: {v}");
        }
    }
}

#[tokio::test]
async fn the_openapi_spec_documents_every_route() {
    let api = Api::new(TaskerConfig::default()).await;
    let (s, spec) = api.get("/api-docs/openapi.json").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        spec["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        spec["openapi"]
    );
    for route in web::routes() {
        let (method, path) = (route.method.as_str(), route.path.as_str());
        let op = &spec["paths"][path][method.to_lowercase()];
        assert!(
            op.is_object(),
            "{method} {path} is missing from the OpenAPI spec"
        );
        assert!(
            op["responses"].as_object().is_some_and(|r| !r.is_empty()),
            "{method} {path} has no responses"
        );
        // The route's access, as the alternatives that satisfy it.
        let security = match route.access {
            web::Access::Operations => json!([{}, {"bearer": []}, {"api_key": []}]),
            web::Access::Permission(p) => json!([{"bearer": [p]}, {"api_key": [p]}]),
        };
        assert_eq!(op["security"], security, "{method} {path}");
    }
    let documented: usize = spec["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|p| p.as_object().unwrap().len())
        .sum();
    assert_eq!(
        documented,
        web::routes().len(),
        "the spec documents a route the router does not serve"
    );
    for schema in [
        "TaskRequest",
        "TaskResponse",
        "ErrorResponse",
        "StepManualAction",
        "DlqEntry",
    ] {
        assert!(
            spec["components"]["schemas"][schema].is_object(),
            "schema {schema} missing"
        );
    }
    // The UI is served from the binary.
    let (s, _, _) = api
        .call(Request::get("/api-docs/ui/").body(Body::empty()).unwrap())
        .await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn every_listed_route_is_routed() {
    let api = Api::new(TaskerConfig::default()).await;
    for route in web::routes() {
        let (method, path) = (route.method.as_str(), route.path.as_str());
        let uri = concrete(path, Uuid::now_v7(), Uuid::now_v7());
        let req = Request::builder()
            .method(method)
            .uri(&uri)
            .header("content-type", "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let (_, v, _) = api.call(req).await;
        let message = v["error"]["message"].as_str().unwrap_or("");
        assert!(
            !message.starts_with("no route for"),
            "{method} {path} is not routed"
        );
    }
}

#[test]
fn enabling_auth_without_credentials_is_refused_at_start() {
    let mut config = TaskerConfig::default();
    config.web.auth.enabled = true;
    let err = Authenticator::from_config(&config.web.auth).unwrap_err();
    assert!(
        err.contains("TASKER__WEB__AUTH__JWT_PUBLIC_KEY_PATH"),
        "{err}"
    );
}
