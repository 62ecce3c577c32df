-- A task's and a step's current state live on their own rows; the transition tables
-- become insert-only history.
--
-- Before this migration the current state was the transition row with most_recent =
-- true, so every transition updated the previous history row (a non-HOT update, because
-- most_recent sits in two partial indexes) and inserted a new one, and every reader of
-- a state joined the history. Now a transition is one UPDATE of the task or step row,
-- compare-and-swap on current_state (and, for a worker, on attempts), plus one INSERT
-- into the history. state_sort_key is the sort_key of the row's latest history entry, so
-- the next entry's key comes from the row it already locked; the history's
-- UNIQUE (…, sort_key) still refuses a second entry with the same key.

ALTER TABLE tasker.workflow_steps
    ADD COLUMN current_state varchar(64) NOT NULL DEFAULT 'pending',
    ADD COLUMN state_sort_key integer NOT NULL DEFAULT 0,
    -- When a worker last reported a failed attempt (a transition to
    -- enqueued_as_error_for_orchestration).
    ADD COLUMN last_failure_at timestamptz,
    ADD CONSTRAINT workflow_steps_current_state_check CHECK (current_state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry',
        'complete', 'error', 'cancelled', 'resolved_manually'));

-- One pass over the steps. updated_at moves up to the latest transition, since from now
-- on it moves with every transition (get_stale_tasks reads it).
UPDATE tasker.workflow_steps ws
SET current_state = t.to_state,
    state_sort_key = t.sort_key,
    updated_at = greatest(ws.updated_at, t.created_at),
    last_failure_at = (SELECT max(f.created_at)
                       FROM tasker.workflow_step_transitions f
                       WHERE f.workflow_step_uuid = ws.workflow_step_uuid
                         AND f.to_state = 'enqueued_as_error_for_orchestration')
FROM tasker.workflow_step_transitions t
WHERE t.workflow_step_uuid = ws.workflow_step_uuid AND t.most_recent;

-- Rows are inserted with their state from now on: no default hides an insert that
-- forgets it (its first transition would then fail on the history's sort keys).
ALTER TABLE tasker.workflow_steps
    ALTER COLUMN current_state DROP DEFAULT,
    ALTER COLUMN state_sort_key DROP DEFAULT;

-- Room on each page for the state updates to stay HOT (no index holds current_state).
ALTER TABLE tasker.workflow_steps SET (fillfactor = 80);

ALTER TABLE tasker.tasks
    ADD COLUMN current_state varchar(64) NOT NULL DEFAULT 'pending',
    ADD COLUMN state_sort_key integer NOT NULL DEFAULT 0,
    -- When the task entered current_state: what retention and staleness measure.
    ADD COLUMN state_changed_at timestamptz NOT NULL DEFAULT now(),
    ADD CONSTRAINT tasks_current_state_check CHECK (current_state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
        'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures',
        'complete', 'error', 'cancelled', 'resolved_manually'));

UPDATE tasker.tasks t
SET current_state = tt.to_state, state_sort_key = tt.sort_key, state_changed_at = tt.created_at,
    updated_at = greatest(t.updated_at, tt.created_at)
FROM tasker.task_transitions tt
WHERE tt.task_uuid = t.task_uuid AND tt.most_recent;

ALTER TABLE tasker.tasks
    ALTER COLUMN current_state DROP DEFAULT,
    ALTER COLUMN state_sort_key DROP DEFAULT,
    ALTER COLUMN state_changed_at DROP DEFAULT;

-- The sweeps (ready tasks, stale tasks) and listings by status.
CREATE INDEX tasks_current_state_idx ON tasker.tasks (current_state);
-- Retention: finished tasks by the time they finished.
CREATE INDEX tasks_finished_idx ON tasker.tasks (state_changed_at)
    WHERE current_state IN ('complete', 'error', 'cancelled', 'resolved_manually');

ALTER TABLE tasker.task_transitions DROP COLUMN most_recent;
ALTER TABLE tasker.workflow_step_transitions DROP COLUMN most_recent;

-- Same results as before, read from the rows.
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
        ws.current_state::text,
        parents.total = parents.done,
        (ws.attempts = ws.retry_baseline
            OR (ws.retryable AND ws.attempts - ws.retry_baseline < ws.max_attempts)),
        ws.current_state = 'pending'
            AND parents.total = parents.done
            AND (ws.attempts = ws.retry_baseline
                 OR (ws.retryable AND ws.attempts - ws.retry_baseline < ws.max_attempts)),
        ws.last_failure_at,
        ws.next_retry_at,
        parents.total,
        parents.done,
        ws.attempts,
        ws.max_attempts,
        ws.last_attempted_at
    FROM tasker.workflow_steps ws
    JOIN tasker.named_steps ns ON ns.named_step_uuid = ws.named_step_uuid
    CROSS JOIN LATERAL (
        SELECT
            count(*)::integer AS total,
            count(*) FILTER (WHERE p.current_state IN ('complete', 'resolved_manually'))::integer AS done
        FROM tasker.workflow_step_edges e
        JOIN tasker.workflow_steps p ON p.workflow_step_uuid = e.from_step_uuid
        WHERE e.to_step_uuid = ws.workflow_step_uuid
    ) parents
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
        SELECT t.task_uuid, t.named_task_uuid, t.current_state::text AS status
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
        t.current_state::text
    FROM tasker.tasks t
    JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
    JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
    CROSS JOIN LATERAL (
        SELECT count(*)::integer AS n
        FROM tasker.get_step_readiness_status(t.task_uuid) r
        WHERE r.ready_for_execution
    ) ready
    WHERE t.current_state IN ('pending', 'initializing', 'enqueuing_steps', 'steps_in_process',
                              'evaluating_results', 'waiting_for_dependencies', 'waiting_for_retry')
      AND ready.n > 0
    ORDER BY 6 DESC, t.requested_at ASC
    LIMIT p_limit
$$;

-- A step's updated_at moves with each of its transitions (and with nothing that
-- happens while it sits still), so it stands in for its latest transition's time.
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
            t.task_uuid,
            t.current_state::text AS state,
            extract(epoch FROM now() - CASE
                WHEN t.current_state = 'blocked_by_failures' THEN t.state_changed_at
                ELSE greatest(t.state_changed_at, COALESCE((
                    SELECT max(ws.updated_at)
                    FROM tasker.workflow_steps ws
                    WHERE ws.task_uuid = t.task_uuid
                ), t.state_changed_at))
            END)::numeric / 60 AS idle_minutes,
            CASE t.current_state
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
        FROM tasker.tasks t
        JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
        WHERE t.current_state IN ('waiting_for_dependencies', 'waiting_for_retry',
                                  'steps_in_process', 'blocked_by_failures')
          AND NOT EXISTS (
              SELECT 1 FROM tasker.tasks_dlq d
              WHERE d.task_uuid = t.task_uuid AND d.resolution_status = 'pending')
    ) c
    WHERE c.idle_minutes >= c.threshold
    ORDER BY c.idle_minutes DESC
    LIMIT p_limit
$$;
