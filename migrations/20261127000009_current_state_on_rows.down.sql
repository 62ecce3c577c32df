-- Back to the current state as the history row with most_recent = true.
ALTER TABLE tasker.task_transitions ADD COLUMN most_recent boolean NOT NULL DEFAULT false;
ALTER TABLE tasker.workflow_step_transitions ADD COLUMN most_recent boolean NOT NULL DEFAULT false;

UPDATE tasker.task_transitions tt SET most_recent = true
FROM tasker.tasks t WHERE t.task_uuid = tt.task_uuid AND tt.sort_key = t.state_sort_key;
UPDATE tasker.workflow_step_transitions st SET most_recent = true
FROM tasker.workflow_steps ws
WHERE ws.workflow_step_uuid = st.workflow_step_uuid AND st.sort_key = ws.state_sort_key;

CREATE UNIQUE INDEX task_transitions_most_recent_key
    ON tasker.task_transitions (task_uuid) WHERE most_recent;
CREATE INDEX task_transitions_current_state_idx
    ON tasker.task_transitions (to_state, task_uuid) WHERE most_recent;
CREATE UNIQUE INDEX workflow_step_transitions_most_recent_key
    ON tasker.workflow_step_transitions (workflow_step_uuid) WHERE most_recent;

-- The functions as migrations 3, 4, 5 and 7 created them.
CREATE OR REPLACE FUNCTION tasker.get_step_readiness_status(
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

CREATE OR REPLACE FUNCTION tasker.get_task_execution_context(p_task_uuid uuid)
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

CREATE OR REPLACE FUNCTION tasker.get_next_ready_tasks(p_limit integer DEFAULT 5)
RETURNS TABLE (
    task_uuid uuid,
    task_name text,
    priority integer,
    namespace_name text,
    ready_steps_count integer,
    computed_priority numeric,
    current_state text
)
LANGUAGE sql STABLE AS $$
    SELECT
        t.task_uuid,
        nt.name::text,
        t.priority,
        tn.name::text,
        ready.n,
        t.priority + least(10.0, extract(epoch FROM now() - t.requested_at)::numeric / 36000.0),
        tt.to_state::text
    FROM tasker.task_transitions tt
    JOIN tasker.tasks t ON t.task_uuid = tt.task_uuid
    JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
    JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
    CROSS JOIN LATERAL (
        SELECT count(*)::integer AS n
        FROM tasker.get_step_readiness_status(t.task_uuid) r
        WHERE r.ready_for_execution
    ) ready
    WHERE tt.most_recent
      AND tt.to_state IN ('pending', 'initializing', 'enqueuing_steps', 'steps_in_process',
                          'evaluating_results', 'waiting_for_dependencies', 'waiting_for_retry')
      AND ready.n > 0
    ORDER BY 6 DESC, t.requested_at ASC
    LIMIT p_limit
$$;

CREATE OR REPLACE FUNCTION tasker.get_stale_tasks(
    p_waiting_for_dependencies_minutes integer,
    p_waiting_for_retry_minutes integer,
    p_steps_in_process_minutes integer,
    p_blocked_minutes integer,
    p_limit integer DEFAULT 100
) RETURNS TABLE (
    task_uuid uuid,
    current_state text,
    minutes_in_state numeric,
    threshold_minutes integer
)
LANGUAGE sql STABLE AS $$
    SELECT c.task_uuid, c.state, round(c.idle_minutes, 2), c.threshold
    FROM (
        SELECT
            tt.task_uuid,
            tt.to_state::text AS state,
            extract(epoch FROM now() - CASE
                WHEN tt.to_state = 'blocked_by_failures' THEN tt.created_at
                ELSE greatest(tt.created_at, COALESCE((
                    SELECT max(st.created_at)
                    FROM tasker.workflow_steps ws
                    JOIN tasker.workflow_step_transitions st
                        ON st.workflow_step_uuid = ws.workflow_step_uuid AND st.most_recent
                    WHERE ws.task_uuid = tt.task_uuid
                ), tt.created_at))
            END)::numeric / 60 AS idle_minutes,
            CASE tt.to_state
                WHEN 'waiting_for_dependencies' THEN COALESCE(
                    (nt.configuration -> 'lifecycle' ->> 'max_waiting_for_dependencies_minutes')::integer,
                    p_waiting_for_dependencies_minutes)
                WHEN 'waiting_for_retry' THEN COALESCE(
                    (nt.configuration -> 'lifecycle' ->> 'max_waiting_for_retry_minutes')::integer,
                    p_waiting_for_retry_minutes)
                WHEN 'steps_in_process' THEN COALESCE(
                    (nt.configuration -> 'lifecycle' ->> 'max_steps_in_process_minutes')::integer,
                    p_steps_in_process_minutes)
                ELSE COALESCE(
                    (nt.configuration -> 'lifecycle' ->> 'max_blocked_minutes')::integer,
                    p_blocked_minutes)
            END AS threshold
        FROM tasker.task_transitions tt
        JOIN tasker.tasks t ON t.task_uuid = tt.task_uuid
        JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
        WHERE tt.most_recent
          AND tt.to_state IN ('waiting_for_dependencies', 'waiting_for_retry',
                              'steps_in_process', 'blocked_by_failures')
          AND NOT EXISTS (
              SELECT 1 FROM tasker.tasks_dlq d
              WHERE d.task_uuid = tt.task_uuid AND d.resolution_status = 'pending')
    ) c
    WHERE c.idle_minutes >= c.threshold
    ORDER BY c.idle_minutes DESC
    LIMIT p_limit
$$;

DROP INDEX tasker.tasks_current_state_idx;
DROP INDEX tasker.tasks_finished_idx;
ALTER TABLE tasker.tasks
    DROP COLUMN current_state, DROP COLUMN state_sort_key, DROP COLUMN state_changed_at;
ALTER TABLE tasker.workflow_steps RESET (fillfactor);
ALTER TABLE tasker.workflow_steps
    DROP COLUMN current_state, DROP COLUMN state_sort_key, DROP COLUMN last_failure_at;
