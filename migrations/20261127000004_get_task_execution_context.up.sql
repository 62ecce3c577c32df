-- One row summarising where a task stands, from its steps' readiness.
--
-- execution_status, first match wins:
--   blocked_by_failures    a step is in error (no attempts left, or a permanent failure)
--   has_ready_steps        a step can be enqueued now
--   processing             a step is enqueued, running, or its result awaits orchestration
--   waiting_for_retry      a step waits for its next, already scheduled, attempt
--   all_complete           every step is complete or resolved_manually
--   waiting_for_dependencies  anything else
CREATE FUNCTION tasker.get_task_execution_context(p_task_uuid uuid)
RETURNS TABLE (
    task_uuid uuid,
    named_task_uuid uuid,
    status text,
    total_steps integer,
    pending_steps integer,
    in_progress_steps integer,
    completed_steps integer,
    failed_steps integer,
    ready_steps integer,
    enqueued_steps integer,
    waiting_for_retry_steps integer,
    cancelled_steps integer,
    execution_status text,
    recommended_action text,
    completion_percentage numeric,
    health_status text
)
LANGUAGE sql STABLE AS $$
    WITH steps AS (
        SELECT * FROM tasker.get_step_readiness_status(p_task_uuid)
    ), counts AS (
        SELECT
            count(*)::integer AS total,
            count(*) FILTER (WHERE current_state = 'pending')::integer AS pending,
            count(*) FILTER (WHERE current_state IN ('in_progress', 'enqueued_for_orchestration',
                'enqueued_as_error_for_orchestration'))::integer AS in_progress,
            count(*) FILTER (WHERE current_state = 'enqueued')::integer AS enqueued,
            count(*) FILTER (WHERE current_state IN ('complete', 'resolved_manually'))::integer AS completed,
            count(*) FILTER (WHERE current_state = 'error')::integer AS failed,
            count(*) FILTER (WHERE ready_for_execution)::integer AS ready,
            count(*) FILTER (WHERE current_state = 'waiting_for_retry')::integer AS retrying,
            count(*) FILTER (WHERE current_state = 'cancelled')::integer AS cancelled
        FROM steps
    ), task AS (
        SELECT t.task_uuid, t.named_task_uuid,
            COALESCE((SELECT tt.to_state::text FROM tasker.task_transitions tt
                      WHERE tt.task_uuid = t.task_uuid AND tt.most_recent), 'pending') AS status
        FROM tasker.tasks t
        WHERE t.task_uuid = p_task_uuid
    ), verdict AS (
        SELECT CASE
            WHEN c.failed > 0 THEN 'blocked_by_failures'
            WHEN c.ready > 0 THEN 'has_ready_steps'
            WHEN c.in_progress + c.enqueued > 0 THEN 'processing'
            WHEN c.retrying > 0 THEN 'waiting_for_retry'
            WHEN c.completed = c.total THEN 'all_complete'
            ELSE 'waiting_for_dependencies'
        END AS execution_status
        FROM counts c
    )
    SELECT
        task.task_uuid,
        task.named_task_uuid,
        task.status,
        c.total, c.pending, c.in_progress, c.completed, c.failed, c.ready, c.enqueued,
        c.retrying, c.cancelled,
        v.execution_status,
        CASE v.execution_status
            WHEN 'blocked_by_failures' THEN 'handle_failures'
            WHEN 'has_ready_steps' THEN 'execute_ready_steps'
            WHEN 'processing' THEN 'wait_for_completion'
            WHEN 'waiting_for_retry' THEN 'wait_for_retry'
            WHEN 'all_complete' THEN 'finalize_task'
            ELSE 'wait_for_dependencies'
        END,
        CASE WHEN c.total = 0 THEN 100.0
             ELSE round(100.0 * c.completed / c.total, 2) END,
        CASE
            WHEN c.failed > 0 THEN 'blocked'
            WHEN c.retrying > 0 THEN 'recovering'
            ELSE 'healthy'
        END
    FROM task CROSS JOIN counts c CROSS JOIN verdict v
$$;
