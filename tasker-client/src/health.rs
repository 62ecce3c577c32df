//! The health routes (`/health`, `/health/ready`, `/health/detailed`) and the server's
//! effective configuration (`/config`).

use tasker_shared::api::{HealthResponse, ReadinessResponse};

use crate::{OrchestrationClient, Result};

impl OrchestrationClient {
    /// `GET /health`: whether the server is up (`healthy`).
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// assert_eq!(client.health_check().await?.status, "healthy");
    /// # Ok(()) }
    /// ```
    pub async fn health_check(&self) -> Result<HealthResponse> {
        let url = format!("{}/health", self.base_url());
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
        let url = format!("{}/health/ready", self.base_url());
        self.get_json(&url).await
    }

    /// `GET /health/detailed`: the readiness checks, with the server's version and settings.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let r = client.health_detailed().await?;
    /// println!("{:?}", r.info);
    /// # Ok(()) }
    /// ```
    pub async fn health_detailed(&self) -> Result<ReadinessResponse> {
        let url = format!("{}/health/detailed", self.base_url());
        self.get_json(&url).await
    }

    /// `GET /config` (when the server enables it): the effective configuration, secrets
    /// redacted.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// let config = client.get_config().await?;
    /// println!("{}", config["events"]["deployment_mode"]);
    /// # Ok(()) }
    /// ```
    pub async fn get_config(&self) -> Result<serde_json::Value> {
        let url = format!("{}/config", self.base_url());
        self.get_json(&url).await
    }
}
