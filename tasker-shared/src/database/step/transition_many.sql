-- step::transition::many: moves the steps that are in one of the accepted states to
-- the target state (a compare-and-swap) and writes their history entries.
--   $1 uuid[]  the steps
--   $2 text[]  the accepted source states
--   $3 text    the target state
--   $4 jsonb   the history entries' metadata
-- Returns each step that moved, with the state it left.
--
-- `old` locks the rows still in an accepted state and remembers the state each
-- leaves; `moved` writes the new one; `ins` writes the history. Entering
-- `enqueued_as_error_for_orchestration` records `last_failure_at`; entering
-- `complete` or `resolved_manually` records `completed_at`. The same three CTEs open
-- transition_many_fenced.sql, claim_one.sql, result_record.sql, enqueue_many.sql,
-- complete_many.sql and complete_many_no_children.sql: keep them alike.
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
    SELECT tasker.uuid_generate_v7(), moved.workflow_step_uuid, $3, moved.from_state, $4,
           moved.state_sort_key
    FROM moved
)
SELECT workflow_step_uuid, from_state FROM moved
