//! The task routes: create, read, list, summarize and cancel tasks (`/v1/tasks`), and
//! the filters of a task listing ([`TaskFilters`]).

use uuid::Uuid;

use tasker_shared::api::{TaskListResponse, TaskRequest, TaskResponse, TaskSummaryResponse};

use crate::transport::encode;
use crate::{OrchestrationClient, Result};

impl OrchestrationClient {
    /// `POST /v1/tasks`: creates a task from a registered template and returns it with its
    /// steps (a repeated idempotency key is an [`Error::Api`](crate::Error::Api) with status
    /// 409 and the first task's `existing_task_uuid`).
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let task = client.create_task(&tasker_shared::api::TaskRequest::new("examples", "linear_workflow", serde_json::json!({"even_number": 2}))).await?;
    /// println!("{}", task.task_uuid);
    /// # Ok(()) }
    /// ```
    pub async fn create_task(&self, request: &TaskRequest) -> Result<TaskResponse> {
        let url = format!("{}/v1/tasks", self.base_url());
        self.send_json(reqwest::Method::POST, &url, request).await
    }

    /// `GET /v1/tasks/{uuid}`: the task, its step counts and its steps.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let task = client.get_task("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap()).await?;
    /// println!("{} is {}", task.task_uuid, task.status);
    /// # Ok(()) }
    /// ```
    pub async fn get_task(&self, task_uuid: Uuid) -> Result<TaskResponse> {
        let url = format!("{}/v1/tasks/{task_uuid}", self.base_url());
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
        let url = format!("{}/v1/tasks/{task_uuid}", self.base_url());
        self.send_empty(reqwest::Method::DELETE, &url).await
    }

    /// `GET /v1/tasks`: one page of the tasks matching `filters`, without their steps.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// use tasker_client::TaskFilters;
    /// let page = client.list_tasks(&TaskFilters { namespace: Some("payments".into()), ..Default::default() }).await?;
    /// println!("{} tasks", page.pagination.total_count);
    /// # Ok(()) }
    /// ```
    pub async fn list_tasks(&self, filters: &TaskFilters) -> Result<TaskListResponse> {
        let url = format!("{}/v1/tasks{}", self.base_url(), filters.query());
        self.get_json(&url).await
    }

    /// `GET /v1/tasks/{uuid}/summary`: a compact view of the task, one line per step, with
    /// its pending dead-letter entry.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let s = client.task_summary("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap()).await?;
    /// println!("{}% done", s.completion_percentage);
    /// # Ok(()) }
    /// ```
    pub async fn task_summary(&self, task_uuid: Uuid) -> Result<TaskSummaryResponse> {
        let url = format!("{}/v1/tasks/{task_uuid}/summary", self.base_url());
        self.get_json(&url).await
    }
}

/// Filters of [`OrchestrationClient::list_tasks`]; a field left `None` does not filter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskFilters {
    /// Only tasks of templates in this namespace.
    pub namespace: Option<String>,
    /// Only tasks in this state, such as `complete` or `error`.
    pub status: Option<String>,
    /// Only tasks created with this `initiator`.
    pub initiator: Option<String>,
    /// Only tasks created with this `source_system`.
    pub source_system: Option<String>,
    /// Which page to return, from 1 (default 1).
    pub page: Option<u32>,
    /// Tasks per page, 1-100 (default 25).
    pub per_page: Option<u32>,
}

impl TaskFilters {
    /// The query string of these filters (`?key=value&...`, empty without any).
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
