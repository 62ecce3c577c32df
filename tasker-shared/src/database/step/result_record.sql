-- step::result::record: stores a worker's result for an attempt and hands the step to
-- the orchestration, fenced on the attempt (the fencing token).
--   $1 uuid[]  the step (one element)
--   $2 text[]  the accepted source states (`in_progress`)
--   $3 text    the target state (`enqueued_for_orchestration` or
--              `enqueued_as_error_for_orchestration`)
--   $4 jsonb   the history entry's metadata
--   $5 int     the attempt that produced the result
--   $6 jsonb   the result
-- Returns the state left, or no row if the step is no longer in progress under $5.
--
-- The `old`/`moved`/`ins` CTEs are transition_many.sql's, with the fence in `old` and
-- the result stored in `moved`.
WITH old AS (
    SELECT workflow_step_uuid, current_state FROM tasker.workflow_steps
    WHERE workflow_step_uuid = ANY($1) AND current_state = ANY($2) AND attempts = $5
    FOR UPDATE
), moved AS (
    UPDATE tasker.workflow_steps ws
    SET current_state = $3, state_sort_key = ws.state_sort_key + 1, updated_at = now(),
        last_failure_at = CASE WHEN $3 = 'enqueued_as_error_for_orchestration'
                               THEN now() ELSE ws.last_failure_at END,
        completed_at = CASE WHEN $3 IN ('complete', 'resolved_manually')
                            THEN now() ELSE ws.completed_at END,
        results = $6
    FROM old
    WHERE ws.workflow_step_uuid = ANY($1) AND ws.workflow_step_uuid = old.workflow_step_uuid
    RETURNING ws.*, old.current_state AS from_state
), ins AS (
    INSERT INTO tasker.workflow_step_transitions
        (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key)
    SELECT tasker.uuid_generate_v7(), moved.workflow_step_uuid, $3, moved.from_state, $4,
           moved.state_sort_key
    FROM moved
)
SELECT from_state FROM moved
