-- step::enqueue::many: moves the steps still `pending` to `enqueued` and sends each
-- moved step's message to the worker queue with its notification, in one statement:
-- a step is enqueued if and only if its message is on the queue.
--   $1 uuid[]   the steps
--   $2 text[]   the accepted source states (`pending`)
--   $3 text     the target state (`enqueued`)
--   $4 jsonb    the history entries' metadata
--   $5 jsonb[]  each step's message ($5[i] belongs to $1[i])
-- Queue placeholders (in braces below; database::splice): worker_queue, worker_queue_notify.
-- Returns the steps enqueued.
--
-- The `old`/`moved`/`ins` CTEs are transition_many.sql's. `moved` holds each step
-- once, so each moved step gets exactly one message, even if a step is listed twice.
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
), sent AS (
    INSERT INTO {worker_queue} (vt, message)
    SELECT clock_timestamp(), u.msg
    FROM moved m
    JOIN (SELECT DISTINCT ON (id) id, msg
          FROM unnest($1::uuid[], $5::jsonb[]) AS i(id, msg)) u
      ON u.id = m.workflow_step_uuid
    {worker_queue_notify}
)
SELECT workflow_step_uuid FROM moved
