-- step::result::submit_many: records each result that is still wanted (its step
-- `in_progress` under that attempt), deletes its step message from the worker queue
-- (unless a reader holds it) and sends its message to the results queue, with the
-- notification, in one statement.
--   $1 uuid[]    the steps
--   $2 int[]     the attempt that produced each result (the fence)
--   $3 text[]    each step's target state
--   $4 jsonb[]   each history entry's metadata
--   $5 jsonb[]   each result
--   $6 bigint[]  each step's message on the worker queue
--   $7 jsonb[]   each message for the orchestration
-- Queue placeholders (in braces below; database::splice): worker_queue, results_queue,
-- results_queue_notify.
-- Returns each step that moved, with its attempt.
--
-- Fenced on the attempt, the state moves and the result is stored; the step's message
-- is deleted only if no reader holds it (a reader re-leasing it locks it before the
-- step, the reverse order), and the orchestration's message is sent only for the steps
-- that moved. The compare-and-swap is transition_many.sql's, written per row.
WITH u AS MATERIALIZED (
    -- One result per attempt, so that `old` holds a step at most once.
    SELECT DISTINCT ON (step, attempt) *
    FROM unnest($1::uuid[], $2::int[], $3::text[], $4::jsonb[], $5::jsonb[],
                $6::bigint[], $7::jsonb[])
        AS u(step, attempt, to_state, metadata, results, msg_id, message)
    ORDER BY step, attempt
), old AS (
    SELECT ws.workflow_step_uuid, ws.current_state, u.to_state, u.metadata, u.results,
           u.msg_id, u.message
    FROM tasker.workflow_steps ws
    JOIN u ON u.step = ws.workflow_step_uuid
    WHERE ws.workflow_step_uuid = ANY($1) AND ws.current_state = 'in_progress'
      AND ws.attempts = u.attempt
    ORDER BY ws.workflow_step_uuid
    FOR UPDATE OF ws
), updated AS (
    -- By key alone, with the values looked up in `old` in memory: joined to `old`, the
    -- UPDATE was planned as n² index probes (see claim_from_queue.sql).
    UPDATE tasker.workflow_steps ws
    SET (current_state, results, last_failure_at) = (
            SELECT o.to_state, o.results,
                   CASE WHEN o.to_state = 'enqueued_as_error_for_orchestration'
                        THEN now() ELSE ws.last_failure_at END
            FROM old o WHERE o.workflow_step_uuid = ws.workflow_step_uuid),
        state_sort_key = ws.state_sort_key + 1, updated_at = now()
    WHERE ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM old))
    RETURNING ws.workflow_step_uuid, ws.attempts, ws.state_sort_key
), moved AS (
    SELECT u.workflow_step_uuid, u.attempts, u.state_sort_key,
           o.current_state AS from_state, o.to_state, o.metadata, o.msg_id, o.message
    FROM updated u JOIN old o ON o.workflow_step_uuid = u.workflow_step_uuid
), ins AS (
    INSERT INTO tasker.workflow_step_transitions
        (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key)
    SELECT tasker.uuid_generate_v7(), workflow_step_uuid, to_state, from_state, metadata,
           state_sort_key
    FROM moved
), handed_back AS (
    DELETE FROM {worker_queue}
    WHERE msg_id = ANY(ARRAY(SELECT q.msg_id FROM {worker_queue} q
                             WHERE q.msg_id = ANY(ARRAY(SELECT msg_id FROM moved))
                             FOR UPDATE SKIP LOCKED))
), handed_over AS (
    INSERT INTO {results_queue} (vt, message)
    SELECT clock_timestamp(), message FROM moved ORDER BY workflow_step_uuid
    {results_queue_notify}
)
SELECT workflow_step_uuid, attempts FROM moved
