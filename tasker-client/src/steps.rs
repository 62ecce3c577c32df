//! The step routes of a task (`/v1/tasks/{uuid}/workflow_steps`): read its steps, act
//! on one as an operator, and read one's history.

use uuid::Uuid;

use tasker_shared::api::{StepAuditResponse, StepManualAction, StepResponse};

use crate::{OrchestrationClient, Result};

impl OrchestrationClient {
    /// `GET /v1/tasks/{uuid}/workflow_steps`: the task's steps, with their readiness and
    /// latest results.
    ///
    /// ```no_run
    /// # async fn demo(client: tasker_client::OrchestrationClient) -> tasker_client::Result<()> {
    /// for step in client.list_task_steps("01a21b73-d42e-76d6-a9f5-e422e6abc1d8".parse().unwrap()).await? {
    ///     println!("{} {}", step.name, step.current_state);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn list_task_steps(&self, task_uuid: Uuid) -> Result<Vec<StepResponse>> {
        let url = format!("{}/v1/tasks/{task_uuid}/workflow_steps", self.base_url());
        self.get_json(&url).await
    }

    /// `GET /v1/tasks/{uuid}/workflow_steps/{step_uuid}`: one step, with its readiness and
    /// latest result.
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

    /// `PATCH /v1/tasks/{uuid}/workflow_steps/{step_uuid}`: an operator's action (reset for
    /// retry, resolve or complete manually); returns the step after it.
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
        self.send_json(reqwest::Method::PATCH, &url, action).await
    }

    /// `GET /v1/tasks/{uuid}/workflow_steps/{step_uuid}/audit`: the step's transitions in
    /// order, with who acted and why.
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
}
