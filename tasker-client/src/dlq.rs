//! The dead-letter routes (`/v1/dlq`): list entries, find a task's entry, record an
//! investigation's progress, and count entries.

use uuid::Uuid;

use tasker_shared::api::{DlqEntry, DlqStatsResponse, DlqUpdateRequest};

use crate::transport::encode;
use crate::{OrchestrationClient, Result};

impl OrchestrationClient {
    /// `GET /v1/dlq`: the first 50 dead-letter entries, optionally of one resolution status.
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

    /// `GET /v1/dlq`: up to `limit` dead-letter entries from `offset`, optionally of one
    /// resolution status.
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
        let mut url = format!("{}/v1/dlq?limit={limit}&offset={offset}", self.base_url());
        if let Some(s) = resolution_status {
            url.push_str(&format!("&resolution_status={}", encode(s)));
        }
        self.get_json(&url).await
    }

    /// `GET /v1/dlq/task/{task_uuid}`: the task's dead-letter entry.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let entry = client.dlq_for_task("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap()).await?;
    /// println!("{}", entry.dlq_reason);
    /// # Ok(()) }
    /// ```
    pub async fn dlq_for_task(&self, task_uuid: Uuid) -> Result<DlqEntry> {
        let url = format!("{}/v1/dlq/task/{task_uuid}", self.base_url());
        self.get_json(&url).await
    }

    /// `PATCH /v1/dlq/entry/{dlq_entry_uuid}`: records an investigation's progress on the
    /// entry; returns the entry after it.
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
        let url = format!("{}/v1/dlq/entry/{entry}", self.base_url());
        self.send_json(reqwest::Method::PATCH, &url, update).await
    }

    /// `GET /v1/dlq/stats`: entry counts by reason and by resolution status.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let stats = client.dlq_stats().await?;
    /// println!("{} entries", stats.total);
    /// # Ok(()) }
    /// ```
    pub async fn dlq_stats(&self) -> Result<DlqStatsResponse> {
        let url = format!("{}/v1/dlq/stats", self.base_url());
        self.get_json(&url).await
    }
}
