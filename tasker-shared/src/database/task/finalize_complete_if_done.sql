-- task::finalize::complete_if_done: after a step of a task completed without making a
-- child ready, moves the task from `steps_in_process` to `complete` if every step is
-- complete or resolved manually (with its history entry, completion time and settled
-- notification), and otherwise says whether any step is on its way.
--   $1 uuid    the task
--   $2 text[]  the accepted source states (`steps_in_process`)
--   $3 uuid    the history entry's id
--   $4 text    the target state (`complete`)
--   $5 jsonb   the history entry's metadata
--   $6 text    the settled channel (task::transition::SETTLED_CHANNEL)
--   $7 text    its payload
-- Returns whether a step is on its way (enqueued, running, or with a result waiting)
-- and whether the task was completed.
--
-- The two checks read the task's steps through the `(task_uuid, ...)` index until the
-- first step that decides them. `moved` and `ins` are those of transition.sql.
WITH s AS MATERIALIZED (
    SELECT EXISTS (SELECT 1 FROM tasker.workflow_steps w
                   WHERE w.task_uuid = $1
                     AND w.current_state IN ('enqueued', 'in_progress',
                         'enqueued_for_orchestration',
                         'enqueued_as_error_for_orchestration')) AS in_flight,
           NOT EXISTS (SELECT 1 FROM tasker.workflow_steps w
                       WHERE w.task_uuid = $1
                         AND w.current_state NOT IN ('complete', 'resolved_manually'))
               AS all_done
), old AS (
    SELECT t.task_uuid, t.current_state FROM tasker.tasks t
    WHERE t.task_uuid = $1 AND t.current_state = ANY($2) AND (SELECT all_done FROM s)
    FOR UPDATE OF t
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
SELECT s.in_flight, m.from_state IS NOT NULL AS completed
FROM s LEFT JOIN moved m ON true
LEFT JOIN LATERAL (SELECT pg_notify($6, $7) WHERE m.from_state IS NOT NULL) n ON true
