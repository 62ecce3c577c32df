//! The template routes (`/v1/templates`): list the registered templates and read one.

use tasker_shared::api::{TemplateListResponse, TemplateResponse};

use crate::transport::encode;
use crate::{OrchestrationClient, Result};

impl OrchestrationClient {
    /// `GET /v1/templates`: the namespaces and every registered template version.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// for t in client.list_templates().await?.templates {
    ///     println!("{}/{}:{}", t.namespace, t.name, t.version);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_templates(&self) -> Result<TemplateListResponse> {
        let url = format!("{}/v1/templates", self.base_url());
        self.get_json(&url).await
    }

    /// `GET /v1/templates/{namespace}/{name}/{version}`: one template as registered.
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
            self.base_url(),
            encode(namespace),
            encode(name),
            encode(version)
        );
        self.get_json(&url).await
    }
}
