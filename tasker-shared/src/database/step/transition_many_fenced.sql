-- step::transition::one with an expected attempt: transition_many.sql, written only
-- while each step's attempt counter still equals $5 (the fencing token).
--   $1 uuid[]  the steps
--   $2 text[]  the accepted source states
--   $3 text    the target state
--   $4 jsonb   the history entries' metadata
--   $5 int     the attempt the caller holds
-- Returns each step that moved, with the state it left.
--
-- The `old`/`moved`/`ins` CTEs are transition_many.sql's, with the fence in `old`.
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
                            THEN now() ELSE ws.completed_at END
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
SELECT workflow_step_uuid, from_state FROM moved
