-- task::transition::one: moves a task from one of the accepted states to the target
-- state (a compare-and-swap), writes its history entry and, for a settled state,
-- notifies the settled channel, in one statement.
--   $1 uuid    the task
--   $2 text[]  the accepted source states
--   $3 uuid    the history entry's id
--   $4 text    the target state
--   $5 jsonb   the history entry's metadata
--   $6 bool    whether to notify (the target state is a settled one)
--   $7 text    the settled channel (task::transition::SETTLED_CHANNEL)
--   $8 text    its payload
-- Returns the state left, or no row if the task was not in an accepted state.
--
-- `old` locks the row and remembers the state it leaves; `moved` writes the new one
-- (re-checked on the latest row version if another writer got there first); `ins`
-- writes the history. finalize_complete_if_done.sql has the same `moved` and `ins`.
WITH old AS (
    SELECT task_uuid, current_state FROM tasker.tasks
    WHERE task_uuid = $1 AND current_state = ANY($2)
    FOR UPDATE
), moved AS (
    UPDATE tasker.tasks t
    SET current_state = $4, state_sort_key = t.state_sort_key + 1,
        state_changed_at = now(), updated_at = now(),
        completed_at = CASE WHEN $4 = 'complete' THEN now() ELSE t.completed_at END
    FROM old WHERE t.task_uuid = old.task_uuid AND t.task_uuid = $1
    RETURNING old.current_state AS from_state, t.state_sort_key
), ins AS (
    INSERT INTO tasker.task_transitions
        (task_transition_uuid, task_uuid, to_state, from_state, metadata, sort_key)
    SELECT $3, $1, $4, moved.from_state, $5, moved.state_sort_key FROM moved
)
SELECT moved.from_state FROM moved
LEFT JOIN LATERAL (SELECT pg_notify($7, $8) WHERE $6) n ON true
