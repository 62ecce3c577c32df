-- Readiness of a task's steps (all of them, or only those in p_step_uuids).
--
-- * current_state: the most recent transition's to_state (pending when there is none).
-- * dependencies_satisfied: no parents, or every parent is complete or resolved_manually.
-- * retry_eligible: no attempt yet (since the last operator reset), or retryable with
--   attempts left; attempts count from retry_baseline.
-- * ready_for_execution: pending, dependencies satisfied and retry eligible, so the
--   orchestration may enqueue it now. A step in waiting_for_retry is not "ready": its
--   next attempt is already scheduled as a delayed queue message.
-- * last_failure_at: when a worker last reported a failed attempt.
CREATE FUNCTION tasker.get_step_readiness_status(
    p_task_uuid uuid,
    p_step_uuids uuid[] DEFAULT NULL
) RETURNS TABLE (
    workflow_step_uuid uuid,
    task_uuid uuid,
    named_step_uuid uuid,
    name text,
    current_state text,
    dependencies_satisfied boolean,
    retry_eligible boolean,
    ready_for_execution boolean,
    last_failure_at timestamptz,
    next_retry_at timestamptz,
    total_parents integer,
    completed_parents integer,
    attempts integer,
    max_attempts integer,
    last_attempted_at timestamptz
)
LANGUAGE sql STABLE AS $$
    SELECT
        ws.workflow_step_uuid,
        ws.task_uuid,
        ws.named_step_uuid,
        ns.name::text,
        state.current_state,
        parents.total = parents.done,
        (ws.attempts = ws.retry_baseline
            OR (ws.retryable AND ws.attempts - ws.retry_baseline < ws.max_attempts)),
        state.current_state = 'pending'
            AND parents.total = parents.done
            AND (ws.attempts = ws.retry_baseline
                 OR (ws.retryable AND ws.attempts - ws.retry_baseline < ws.max_attempts)),
        failure.last_failure_at,
        ws.next_retry_at,
        parents.total,
        parents.done,
        ws.attempts,
        ws.max_attempts,
        ws.last_attempted_at
    FROM tasker.workflow_steps ws
    JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
    CROSS JOIN LATERAL (
        SELECT COALESCE((
            SELECT t.to_state::text
            FROM tasker.workflow_step_transitions t
            WHERE t.workflow_step_uuid = ws.workflow_step_uuid AND t.most_recent
        ), 'pending') AS current_state
    ) state
    CROSS JOIN LATERAL (
        SELECT
            count(*)::integer AS total,
            count(*) FILTER (WHERE pt.to_state IN ('complete', 'resolved_manually'))::integer AS done
        FROM tasker.workflow_step_edges e
        LEFT JOIN tasker.workflow_step_transitions pt
            ON pt.workflow_step_uuid = e.from_step_uuid AND pt.most_recent
        WHERE e.to_step_uuid = ws.workflow_step_uuid
    ) parents
    CROSS JOIN LATERAL (
        SELECT max(ft.created_at) AS last_failure_at
        FROM tasker.workflow_step_transitions ft
        WHERE ft.workflow_step_uuid = ws.workflow_step_uuid
          AND ft.to_state = 'enqueued_as_error_for_orchestration'
    ) failure
    WHERE ws.task_uuid = p_task_uuid
      AND (p_step_uuids IS NULL OR ws.workflow_step_uuid = ANY (p_step_uuids))
    ORDER BY ws.workflow_step_uuid
$$;
