-- step::processing::lock_and_load_many: locks the tasks of many (task, step) pairs in
-- task order and loads their steps for result processing.
--   $1 uuid[]  the tasks
--   $2 uuid[]  the steps ($2[i] must belong to $1[i])
-- Returns each pair that exists, the step belonging to the task, with its task's state,
-- in the order given (processing::StepForOrchestration's columns plus `task_state`).
--
-- Only the task rows are locked, in task order, so concurrent batches cannot deadlock.
-- Each step and namespace is read in a LATERAL subquery keyed on the pair (OFFSET 0
-- keeps the planner from turning the key into a filter over a whole table). The
-- step's columns are those of processing::load.
WITH locked AS MATERIALIZED (
    SELECT t.task_uuid, t.current_state, t.named_task_uuid FROM tasker.tasks t
    WHERE t.task_uuid = ANY($1)
    ORDER BY t.task_uuid
    FOR UPDATE
)
SELECT t.current_state AS task_state,
       ws.workflow_step_uuid, ws.task_uuid, ws.current_state, ws.attempts, ws.retry_baseline,
       ws.max_attempts, ws.retryable, ws.backoff, ws.backoff_base_ms, ws.max_backoff_ms,
       ws.results, tn.name AS namespace
FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS p(task_uuid, step_uuid, n)
CROSS JOIN LATERAL (SELECT l.* FROM locked l WHERE l.task_uuid = p.task_uuid) t
CROSS JOIN LATERAL (SELECT s.* FROM tasker.workflow_steps s
                    WHERE s.workflow_step_uuid = p.step_uuid AND s.task_uuid = t.task_uuid
                    OFFSET 0) ws
CROSS JOIN LATERAL (SELECT tn.name FROM tasker.named_tasks nt
                    JOIN tasker.task_namespaces tn
                      ON tn.task_namespace_uuid = nt.task_namespace_uuid
                    WHERE nt.named_task_uuid = t.named_task_uuid OFFSET 0) tn
ORDER BY p.n
