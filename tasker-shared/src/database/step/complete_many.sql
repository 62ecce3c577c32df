-- step::complete::many: completes the steps that are `enqueued_for_orchestration`
-- (others are left alone) and enqueues the children they make ready, handing one
-- child per offering parent to the worker that offered (a handoff).
--   $1  uuid[]  the steps
--   $2  text[]  the accepted source states (`enqueued_for_orchestration`)
--   $3  text    the target state (`complete`)
--   $4  jsonb   the history entries' metadata (each gets the step's attempt added)
--   $5  text[]  the states a child may be enqueued from (`pending`)
--   $6  text    the children's state (`enqueued`)
--   $7  jsonb   the enqueued children's history metadata
--   $8  uuid[]  each step's task trace id, for its children's messages
--   $9  uuid[]  each step's handoff token, or NULL (no offer)
--   $10 text[]  each step's offering worker, or NULL
--   $11 int[]   each step's handoff lease in seconds, or NULL
-- Queue placeholders (in braces below; database::splice): worker_queue, worker_queue_notify,
-- worker_queue_name.
-- Returns each step that moved, with the children enqueued (or handed) because of it,
-- in uuid order.
--
-- The `old`/`moved`/`ins` CTEs are complete_many_no_children.sql's. A CTE does not see
-- the writes of its statement, so the readiness test counts the steps completing here
-- as done: it skips those parents. `handed` is each handing parent's first ready
-- child; `enqueued` moves those to `in_progress` (two history entries) and the others
-- to `enqueued`. A handed step's `last_attempted_at` is the clock's, not the
-- transaction's start: under the task's lock this statement may run after another
-- batch, begun later, completed one of the step's parents. A handed message is leased
-- to the worker (`vt` its lease, `read_ct` 1) and named on the worker's own channel
-- (`tasker_handoff.<token>`, messaging::HANDOFF_CHANNEL_PREFIX) instead of the queue's.
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
), input AS (
    SELECT * FROM unnest($1::uuid[], $8::uuid[], $9::uuid[], $10::text[], $11::int[])
        AS i(step_uuid, correlation_id, token, worker_id, lease)
), ready AS (
    SELECT DISTINCT ON (c.workflow_step_uuid)
           c.workflow_step_uuid, m.workflow_step_uuid AS parent, i.correlation_id,
           i.token, i.worker_id, i.lease
    FROM moved m
    JOIN input i ON i.step_uuid = m.workflow_step_uuid
    CROSS JOIN LATERAL (SELECT e.to_step_uuid FROM tasker.workflow_step_edges e
                        WHERE e.from_step_uuid = m.workflow_step_uuid OFFSET 0) e
    CROSS JOIN LATERAL (SELECT c.* FROM tasker.workflow_steps c
                        WHERE c.workflow_step_uuid = e.to_step_uuid OFFSET 0) c
    WHERE c.current_state = ANY($5)
      AND (c.attempts = c.retry_baseline
           OR (c.retryable AND c.attempts - c.retry_baseline < c.max_attempts))
      AND NOT EXISTS (
          SELECT 1 FROM tasker.workflow_step_edges pe
          WHERE pe.to_step_uuid = c.workflow_step_uuid
            AND pe.from_step_uuid <> ALL(ARRAY(SELECT workflow_step_uuid FROM moved))
            AND (SELECT p.current_state FROM tasker.workflow_steps p
                 WHERE p.workflow_step_uuid = pe.from_step_uuid)
                NOT IN ('complete', 'resolved_manually')
          OFFSET 0)
    ORDER BY c.workflow_step_uuid, m.workflow_step_uuid
), handed AS (
    SELECT DISTINCT ON (parent) workflow_step_uuid
    FROM ready WHERE token IS NOT NULL
    ORDER BY parent, workflow_step_uuid
), enqueued AS (
    UPDATE tasker.workflow_steps ws
    SET current_state = CASE
            WHEN ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM handed))
            THEN 'in_progress' ELSE $6 END,
        state_sort_key = ws.state_sort_key + CASE
            WHEN ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM handed))
            THEN 2 ELSE 1 END,
        attempts = ws.attempts + CASE
            WHEN ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM handed))
            THEN 1 ELSE 0 END,
        last_attempted_at = CASE
            WHEN ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM handed))
            THEN clock_timestamp() ELSE ws.last_attempted_at END,
        updated_at = now()
    WHERE ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM ready))
      AND ws.current_state = ANY($5)
    RETURNING ws.workflow_step_uuid, ws.task_uuid, ws.state_sort_key, ws.attempts,
              ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM handed))
                  AS handed
), enqueued_history AS (
    INSERT INTO tasker.workflow_step_transitions
        (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key)
    SELECT tasker.uuid_generate_v7(), workflow_step_uuid, $6, 'pending', $7,
           state_sort_key - CASE WHEN handed THEN 1 ELSE 0 END
    FROM enqueued
    UNION ALL
    SELECT tasker.uuid_generate_v7(), e.workflow_step_uuid, 'in_progress', $6,
           jsonb_build_object('event', 'claimed', 'worker_id', r.worker_id,
                              'redelivered', false, 'handoff', true),
           e.state_sort_key
    FROM enqueued e JOIN ready r ON r.workflow_step_uuid = e.workflow_step_uuid
    WHERE e.handed
), sent AS (
    INSERT INTO {worker_queue} (vt, message)
    SELECT clock_timestamp(), jsonb_build_object(
        'task_uuid', e.task_uuid, 'step_uuid', e.workflow_step_uuid,
        'correlation_id', r.correlation_id)
    FROM enqueued e JOIN ready r ON r.workflow_step_uuid = e.workflow_step_uuid
    WHERE NOT e.handed
    {worker_queue_notify}
), handed_sent AS (
    INSERT INTO {worker_queue} (vt, read_ct, message)
    SELECT clock_timestamp() + make_interval(secs => r.lease), 1,
           jsonb_build_object(
               'task_uuid', e.task_uuid, 'step_uuid', e.workflow_step_uuid,
               'correlation_id', r.correlation_id,
               'handed', jsonb_build_object('token', r.token, 'attempt', e.attempts))
    FROM enqueued e JOIN ready r ON r.workflow_step_uuid = e.workflow_step_uuid
    WHERE e.handed
    RETURNING pg_notify('tasker_handoff.' || replace((message -> 'handed' ->> 'token'), '-', ''),
                        json_build_object('queue', '{worker_queue_name}', 'msg_id', msg_id)::text)
)
SELECT m.workflow_step_uuid,
       ARRAY(SELECT r.workflow_step_uuid FROM ready r
             WHERE r.parent = m.workflow_step_uuid
               AND r.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM enqueued))
             ORDER BY r.workflow_step_uuid)
FROM moved m
