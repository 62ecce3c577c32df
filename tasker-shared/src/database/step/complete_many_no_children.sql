-- step::complete::many without a worker queue (the task may start nothing new):
-- completes the steps that are `enqueued_for_orchestration`; others are left alone.
--   $1 uuid[]  the steps
--   $2 text[]  the accepted source states (`enqueued_for_orchestration`)
--   $3 text    the target state (`complete`)
--   $4 jsonb   the history entries' metadata (each gets the step's attempt added)
-- Returns each step that moved, with no children.
--
-- The `old`/`moved`/`ins` CTEs are transition_many.sql's, with the attempt in the
-- history entry; complete_many.sql opens with the same three.
WITH old AS (
    SELECT workflow_step_uuid, current_state FROM tasker.workflow_steps
    WHERE workflow_step_uuid = ANY($1) AND current_state = ANY($2)
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
    SELECT tasker.uuid_generate_v7(), moved.workflow_step_uuid, $3, moved.from_state,
           $4 || jsonb_build_object('attempt', moved.attempts), moved.state_sort_key
    FROM moved
)
SELECT workflow_step_uuid, '{}'::uuid[] FROM moved
