//! A client for Tasker's REST API.
//!
//! It owns HTTP transport and error mapping; the request and response types come from
//! `tasker_shared::api`, the same types the server uses, so the wire format cannot drift.
//! It must not depend on `sqlx`, `pgmq-notify`, `tasker-orchestration` or `tasker-worker`
//! (it uses `tasker-shared` without its `db` feature).
//!
//! ```no_run
//! # async fn demo() -> Result<(), tasker_client::Error> {
//! use tasker_client::OrchestrationClient;
//! use tasker_shared::api::TaskRequest;
//!
//! let client = OrchestrationClient::new("http://localhost:8080")?;
//! let task = client
//!     .create_task(&TaskRequest::new("examples", "linear_workflow", serde_json::json!({"even_number": 2})))
//!     .await?;
//! println!("{} is {}", task.task_uuid, task.status);
//! # Ok(()) }
//! ```

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use tasker_shared::api::{
    DlqEntry, DlqStatsResponse, DlqUpdateRequest, ErrorResponse, HealthResponse, ReadinessResponse,
    StepAuditResponse, StepManualAction, StepResponse, TaskListResponse, TaskRequest, TaskResponse,
    TaskSummaryResponse, TemplateListResponse, TemplateResponse,
};

/// What can go wrong calling the API.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The base URL is not a valid URL.
    #[error("invalid server URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// Why it is invalid.
        reason: String,
    },
    /// The server could not be reached.
    #[error("cannot reach the Tasker server at {url}: {source}")]
    Connection {
        /// The URL tried.
        url: String,
        /// The transport error.
        source: reqwest::Error,
    },
    /// The server answered with an error.
    #[error("{status}: {code}: {message}")]
    Api {
        /// HTTP status.
        status: StatusCode,
        /// The server's error code, such as `NOT_FOUND`.
        code: String,
        /// The server's message.
        message: String,
        /// For duplicate tasks: the existing task.
        existing_task_uuid: Option<Uuid>,
    },
    /// The server's answer could not be decoded.
    #[error("unexpected response from {url}: {reason}")]
    Decode {
        /// The URL called.
        url: String,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// The HTTP status, for API errors.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Error::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A client of one Tasker server.
#[derive(Debug, Clone)]
pub struct OrchestrationClient {
    base_url: String,
    http: reqwest::Client,
    auth: Option<(reqwest::header::HeaderName, String)>,
    retries: u32,
}

/// Options for an [`OrchestrationClient`].
///
/// ```
/// use std::time::Duration;
/// use tasker_client::OrchestrationClient;
///
/// let client = OrchestrationClient::builder("http://localhost:8080")
///     .timeout(Duration::from_secs(5))
///     .bearer_token("eyJ...")
///     .retries(3)
///     .build()
///     .unwrap();
/// assert_eq!(client.base_url(), "http://localhost:8080");
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    base_url: String,
    timeout: Duration,
    auth: Option<(reqwest::header::HeaderName, String)>,
    retries: u32,
}

impl ClientBuilder {
    /// Per-request time limit (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Authenticate with `Authorization: Bearer <token>`.
    pub fn bearer_token(mut self, token: impl Into<String>) -> Self {
        self.auth = Some((
            reqwest::header::AUTHORIZATION,
            format!("Bearer {}", token.into()),
        ));
        self
    }

    /// Authenticate with `X-API-Key`.
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.auth = Some((
            reqwest::header::HeaderName::from_static("x-api-key"),
            key.into(),
        ));
        self
    }

    /// Retries of idempotent calls (reads) after a connection failure or a 502/503/504,
    /// with exponential backoff from 100 ms (default 2).
    pub fn retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// The client.
    pub fn build(self) -> Result<OrchestrationClient> {
        let trimmed = self.base_url.trim_end_matches('/');
        if !(trimmed.starts_with("http://") || trimmed.starts_with("https://")) {
            return Err(Error::InvalidUrl {
                url: self.base_url.clone(),
                reason: "it must start with http:// or https://".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| Error::InvalidUrl {
                url: self.base_url.clone(),
                reason: e.to_string(),
            })?;
        Ok(OrchestrationClient {
            base_url: trimmed.to_string(),
            http,
            auth: self.auth,
            retries: self.retries,
        })
    }
}

impl OrchestrationClient {
    /// A client for `base_url` (for example `http://localhost:8080`) with default options.
    pub fn new(base_url: &str) -> Result<Self> {
        Self::builder(base_url).build()
    }

    /// A builder for a client of `base_url`.
    pub fn builder(base_url: &str) -> ClientBuilder {
        ClientBuilder {
            base_url: base_url.to_string(),
            timeout: Duration::from_secs(30),
            auth: None,
            retries: 2,
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, url);
        match &self.auth {
            Some((name, value)) => builder.header(name.clone(), value.clone()),
            None => builder,
        }
    }

    /// Sends a GET, retrying transient failures.
    async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T> {
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        loop {
            let outcome = decode(url, self.request(reqwest::Method::GET, url).send().await).await;
            let transient = match &outcome {
                Err(Error::Connection { .. }) => true,
                Err(Error::Api { status, .. }) => matches!(status.as_u16(), 502..=504),
                _ => false,
            };
            if !transient || attempt >= self.retries {
                return outcome;
            }
            attempt += 1;
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }

    /// The server's base URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// `POST /v1/tasks`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let task = client.create_task(&tasker_shared::api::TaskRequest::new("examples", "linear_workflow", serde_json::json!({"even_number": 2}))).await?;
    /// println!("{}", task.task_uuid);
    /// # Ok(()) }
    /// ```
    pub async fn create_task(&self, request: &TaskRequest) -> Result<TaskResponse> {
        let url = format!("{}/v1/tasks", self.base_url);
        let response = self
            .request(reqwest::Method::POST, &url)
            .json(request)
            .send()
            .await;
        decode(&url, response).await
    }

    /// `GET /v1/tasks/{uuid}`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let task = client.get_task("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap()).await?;
    /// println!("{} is {}", task.task_uuid, task.status);
    /// # Ok(()) }
    /// ```
    pub async fn get_task(&self, task_uuid: Uuid) -> Result<TaskResponse> {
        let url = format!("{}/v1/tasks/{task_uuid}", self.base_url);
        self.get_json(&url).await
    }

    /// `DELETE /v1/tasks/{uuid}`: cancels the task; returns it.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let task = client.cancel_task("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap()).await?;
    /// assert_eq!(task.status.as_str(), "cancelled");
    /// # Ok(()) }
    /// ```
    pub async fn cancel_task(&self, task_uuid: Uuid) -> Result<TaskResponse> {
        let url = format!("{}/v1/tasks/{task_uuid}", self.base_url);
        let response = self.request(reqwest::Method::DELETE, &url).send().await;
        decode(&url, response).await
    }

    /// `GET /v1/tasks/{uuid}/workflow_steps`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// for step in client.list_task_steps("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap()).await? {
    ///     println!("{} {}", step.name, step.current_state);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_task_steps(&self, task_uuid: Uuid) -> Result<Vec<StepResponse>> {
        let url = format!("{}/v1/tasks/{task_uuid}/workflow_steps", self.base_url);
        self.get_json(&url).await
    }

    /// `GET /v1/tasks/{uuid}/workflow_steps/{step_uuid}`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let (task, step) = ("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap(), "01a21b73-d42f-7562-b31b-1fd3ac71853a".parse().unwrap());
    /// let s = client.get_step(task, step).await?;
    /// println!("{:?}", s.results);
    /// # Ok(()) }
    /// ```
    pub async fn get_step(&self, task_uuid: Uuid, step_uuid: Uuid) -> Result<StepResponse> {
        let url = format!(
            "{}/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}",
            self.base_url
        );
        self.get_json(&url).await
    }

    /// `PATCH /v1/tasks/{uuid}/workflow_steps/{step_uuid}`: an operator action.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// use tasker_shared::api::StepManualAction;
    /// let (task, step) = ("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap(), "01a21b73-d42f-7562-b31b-1fd3ac71853a".parse().unwrap());
    /// let action = StepManualAction::ResetForRetry { reason: "upstream fixed".into(), reset_by: "ops".into() };
    /// client.step_action(task, step, &action).await?;
    /// # Ok(()) }
    /// ```
    pub async fn step_action(
        &self,
        task_uuid: Uuid,
        step_uuid: Uuid,
        action: &StepManualAction,
    ) -> Result<StepResponse> {
        let url = format!(
            "{}/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}",
            self.base_url
        );
        let response = self
            .request(reqwest::Method::PATCH, &url)
            .json(action)
            .send()
            .await;
        decode(&url, response).await
    }

    /// `GET /v1/tasks/{uuid}/workflow_steps/{step_uuid}/audit`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let (task, step) = ("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap(), "01a21b73-d42f-7562-b31b-1fd3ac71853a".parse().unwrap());
    /// for entry in client.get_step_audit(task, step).await? {
    ///     println!("{} {:?} {:?}", entry.to_state, entry.actor, entry.reason);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_step_audit(
        &self,
        task_uuid: Uuid,
        step_uuid: Uuid,
    ) -> Result<Vec<StepAuditResponse>> {
        let url = format!(
            "{}/v1/tasks/{task_uuid}/workflow_steps/{step_uuid}/audit",
            self.base_url
        );
        self.get_json(&url).await
    }

    /// `GET /v1/dlq`, optionally of one resolution status.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let pending = client.list_dlq(Some("pending")).await?;
    /// println!("{} entries", pending.len());
    /// # Ok(()) }
    /// ```
    pub async fn list_dlq(&self, resolution_status: Option<&str>) -> Result<Vec<DlqEntry>> {
        self.list_dlq_page(resolution_status, 50, 0).await
    }

    /// `GET /v1/dlq` with paging.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let second_page = client.list_dlq_page(None, 50, 50).await?;
    /// println!("{}", second_page.len());
    /// # Ok(()) }
    /// ```
    pub async fn list_dlq_page(
        &self,
        resolution_status: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<DlqEntry>> {
        let mut url = format!("{}/v1/dlq?limit={limit}&offset={offset}", self.base_url);
        if let Some(s) = resolution_status {
            url.push_str(&format!("&resolution_status={}", encode(s)));
        }
        self.get_json(&url).await
    }

    /// `GET /v1/tasks` with filters and paging.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// use tasker_client::TaskFilters;
    /// let page = client.list_tasks(&TaskFilters { namespace: Some("payments".into()), ..Default::default() }).await?;
    /// println!("{} tasks", page.pagination.total_count);
    /// # Ok(()) }
    /// ```
    pub async fn list_tasks(&self, filters: &TaskFilters) -> Result<TaskListResponse> {
        let url = format!("{}/v1/tasks{}", self.base_url, filters.query());
        self.get_json(&url).await
    }

    /// `GET /v1/tasks/{uuid}/summary`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let s = client.task_summary("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap()).await?;
    /// println!("{}% done", s.completion_percentage);
    /// # Ok(()) }
    /// ```
    pub async fn task_summary(&self, task_uuid: Uuid) -> Result<TaskSummaryResponse> {
        let url = format!("{}/v1/tasks/{task_uuid}/summary", self.base_url);
        self.get_json(&url).await
    }

    /// `GET /v1/templates`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// for t in client.list_templates().await?.templates {
    ///     println!("{}/{}:{}", t.namespace, t.name, t.version);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_templates(&self) -> Result<TemplateListResponse> {
        let url = format!("{}/v1/templates", self.base_url);
        self.get_json(&url).await
    }

    /// `GET /v1/templates/{namespace}/{name}/{version}`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let t = client.get_template("examples", "linear_workflow", "1.0.0").await?;
    /// println!("{}", t.template);
    /// # Ok(()) }
    /// ```
    pub async fn get_template(
        &self,
        namespace: &str,
        name: &str,
        version: &str,
    ) -> Result<TemplateResponse> {
        let url = format!(
            "{}/v1/templates/{}/{}/{}",
            self.base_url,
            encode(namespace),
            encode(name),
            encode(version)
        );
        self.get_json(&url).await
    }

    /// `GET /v1/dlq/task/{task_uuid}`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let entry = client.dlq_for_task("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap()).await?;
    /// println!("{}", entry.dlq_reason);
    /// # Ok(()) }
    /// ```
    pub async fn dlq_for_task(&self, task_uuid: Uuid) -> Result<DlqEntry> {
        let url = format!("{}/v1/dlq/task/{task_uuid}", self.base_url);
        self.get_json(&url).await
    }

    /// `PATCH /v1/dlq/entry/{dlq_entry_uuid}`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// use tasker_shared::api::DlqUpdateRequest;
    /// let update = DlqUpdateRequest { resolution_status: Some("manually_resolved".into()), ..Default::default() };
    /// client.update_dlq_entry("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap(), &update).await?;
    /// # Ok(()) }
    /// ```
    pub async fn update_dlq_entry(
        &self,
        entry: Uuid,
        update: &DlqUpdateRequest,
    ) -> Result<DlqEntry> {
        let url = format!("{}/v1/dlq/entry/{entry}", self.base_url);
        let response = self
            .request(reqwest::Method::PATCH, &url)
            .json(update)
            .send()
            .await;
        decode(&url, response).await
    }

    /// `GET /v1/dlq/stats`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let stats = client.dlq_stats().await?;
    /// println!("{} entries", stats.total);
    /// # Ok(()) }
    /// ```
    pub async fn dlq_stats(&self) -> Result<DlqStatsResponse> {
        let url = format!("{}/v1/dlq/stats", self.base_url);
        self.get_json(&url).await
    }

    /// `GET /health/ready` (an unready server answers with an error carrying status 503).
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let r = client.readiness().await?;
    /// println!("{}", r.status);
    /// # Ok(()) }
    /// ```
    pub async fn readiness(&self) -> Result<ReadinessResponse> {
        let url = format!("{}/health/ready", self.base_url);
        self.get_json(&url).await
    }

    /// `GET /health/detailed`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let r = client.health_detailed().await?;
    /// println!("{:?}", r.info);
    /// # Ok(()) }
    /// ```
    pub async fn health_detailed(&self) -> Result<ReadinessResponse> {
        let url = format!("{}/health/detailed", self.base_url);
        self.get_json(&url).await
    }

    /// `GET /config` (when the server enables it).
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let config = client.get_config().await?;
    /// println!("{}", config["events"]["deployment_mode"]);
    /// # Ok(()) }
    /// ```
    pub async fn get_config(&self) -> Result<serde_json::Value> {
        let url = format!("{}/config", self.base_url);
        self.get_json(&url).await
    }

    /// `GET /health`.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// assert_eq!(client.health_check().await?.status, "healthy");
    /// # Ok(()) }
    /// ```
    pub async fn health_check(&self) -> Result<HealthResponse> {
        let url = format!("{}/health", self.base_url);
        self.get_json(&url).await
    }
}

async fn decode<T: DeserializeOwned>(
    url: &str,
    response: Result<reqwest::Response, reqwest::Error>,
) -> Result<T> {
    let response = response.map_err(|source| Error::Connection {
        url: url.to_string(),
        source,
    })?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|source| Error::Connection {
        url: url.to_string(),
        source,
    })?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| Error::Decode {
            url: url.to_string(),
            reason: e.to_string(),
        });
    }
    match serde_json::from_slice::<ErrorResponse>(&bytes) {
        Ok(body) => Err(Error::Api {
            status,
            code: body.error.code,
            message: body.error.message,
            existing_task_uuid: body.error.existing_task_uuid,
        }),
        Err(_) => Err(Error::Api {
            status,
            code: status
                .canonical_reason()
                .unwrap_or("HTTP_ERROR")
                .to_uppercase()
                .replace(' ', "_"),
            message: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
            existing_task_uuid: None,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_urls_without_a_scheme() {
        let err = OrchestrationClient::new("localhost:8080").unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
        let ok = OrchestrationClient::new("http://localhost:8080/").unwrap();
        assert_eq!(ok.base_url(), "http://localhost:8080");
    }

    #[tokio::test]
    async fn unreachable_server_is_a_connection_error() {
        // Port 9 (discard) on loopback is closed on test machines.
        let client = OrchestrationClient::new("http://127.0.0.1:9").unwrap();
        let err = client.health_check().await.unwrap_err();
        assert!(matches!(err, Error::Connection { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("cannot reach the Tasker server at http://127.0.0.1:9/health")
        );
    }
}

/// Filters of [`OrchestrationClient::list_tasks`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilters {
    /// Template namespace.
    pub namespace: Option<String>,
    /// Task state.
    pub status: Option<String>,
    /// Who asked.
    pub initiator: Option<String>,
    /// Which system asked.
    pub source_system: Option<String>,
    /// Page, from 1.
    pub page: Option<u32>,
    /// Items per page, 1-100.
    pub per_page: Option<u32>,
}

impl TaskFilters {
    fn query(&self) -> String {
        let mut parts = Vec::new();
        for (key, value) in [
            ("namespace", &self.namespace),
            ("status", &self.status),
            ("initiator", &self.initiator),
            ("source_system", &self.source_system),
        ] {
            if let Some(v) = value {
                parts.push(format!("{key}={}", encode(v)));
            }
        }
        if let Some(p) = self.page {
            parts.push(format!("page={p}"));
        }
        if let Some(p) = self.per_page {
            parts.push(format!("per_page={p}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("?{}", parts.join("&"))
        }
    }
}

/// Percent-encodes a query value or path segment.
fn encode(raw: &str) -> String {
    url::form_urlencoded::byte_serialize(raw.as_bytes()).collect()
}
