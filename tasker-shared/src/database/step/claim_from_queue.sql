-- step::claim::from_queue: leases up to $2 visible messages of a worker queue and
-- claims their steps, in one statement that commits on its own.
--   $1 int     the lease, in seconds
--   $2 bigint  how many messages to read at most
--   $3 text[]  the states a fresh message's step may be claimed from
--   $4 text[]  the states a redelivered message's step may be claimed from
--   $5 text    the target state (`in_progress`)
--   $6 text    the worker's id, for the history
-- Queue placeholders (in braces below; database::splice): worker_queue,
-- worker_queue_visible (its limit is $2).
-- Returns one row per leased message, in `msg_id` order (claim::DeliveryRow).
--
-- `parsed` keeps every leased message; `wanted` one message per step: a redelivered
-- one first (only it may take over a step still `in_progress` from a lost worker),
-- else the oldest. The UUID test guards the cast, so one malformed body cannot fail
-- the whole read (the same test is in handoff_load.sql). `old` locks the steps in
-- `step_uuid` order, so overlapping reads cannot deadlock. `updated` finds its rows
-- by key alone and `moved` joins them to `old` in memory: an UPDATE joined to `old`
-- was planned (generic plan, made on small tables) as a loop over `old` probing the
-- index for every key of the batch, n² probes per read. The first takeover of a
-- handed message (`untaken`: handed, `read_ct` 2, step still `in_progress`) moves
-- `retry_baseline` with the attempt, so the handed attempt does not count.
--
-- `ancestors` and `ancestor_results` are claim_one.sql's (also in handoff_load.sql);
-- the output columns and their LATERAL joins are handoff_load.sql's.
WITH RECURSIVE {worker_queue_visible}, leased AS (
    UPDATE {worker_queue} m
    SET vt = clock_timestamp() + make_interval(secs => $1), read_ct = m.read_ct + 1
    WHERE m.msg_id = ANY(ARRAY(SELECT msg_id FROM visible))
    RETURNING m.msg_id, m.read_ct, m.message
), parsed AS (
    SELECT msg_id, read_ct, message,
           CASE WHEN jsonb_typeof(message -> 'step_uuid') = 'string'
                 AND message ->> 'step_uuid' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                THEN (message ->> 'step_uuid')::uuid END AS step_uuid,
           message -> 'handed' IS NOT NULL AS handed
    FROM leased
), wanted AS (
    SELECT DISTINCT ON (step_uuid) msg_id, read_ct, step_uuid, handed
    FROM parsed WHERE step_uuid IS NOT NULL
    ORDER BY step_uuid, read_ct > 1 DESC, msg_id
), old AS (
    SELECT ws.workflow_step_uuid, ws.current_state, w.msg_id, w.read_ct,
           w.handed AND w.read_ct = 2 AND ws.current_state = $5 AS untaken
    FROM tasker.workflow_steps ws
    JOIN wanted w ON w.step_uuid = ws.workflow_step_uuid
    WHERE ws.workflow_step_uuid = ANY(ARRAY(SELECT step_uuid FROM wanted))
      AND ws.current_state = ANY(CASE WHEN w.read_ct > 1 THEN $4 ELSE $3 END)
    ORDER BY ws.workflow_step_uuid
    FOR UPDATE OF ws
), updated AS (
    UPDATE tasker.workflow_steps ws
    SET current_state = $5, state_sort_key = ws.state_sort_key + 1, updated_at = now(),
        attempts = ws.attempts + 1, last_attempted_at = now(),
        retry_baseline = ws.retry_baseline + CASE
            WHEN ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM old WHERE untaken))
            THEN 1 ELSE 0 END
    WHERE ws.workflow_step_uuid = ANY(ARRAY(SELECT workflow_step_uuid FROM old))
    RETURNING ws.*
), moved AS (
    SELECT u.*, o.current_state AS from_state, o.msg_id, o.read_ct AS claim_read_ct,
           o.untaken
    FROM updated u JOIN old o ON o.workflow_step_uuid = u.workflow_step_uuid
), ins AS (
    INSERT INTO tasker.workflow_step_transitions
        (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key)
    SELECT tasker.uuid_generate_v7(), workflow_step_uuid, $5, from_state,
           jsonb_build_object('event', 'claimed', 'worker_id', $6::text,
                              'redelivered', claim_read_ct > 1)
           || CASE WHEN untaken THEN jsonb_build_object('handoff_expired', true)
                   ELSE '{}'::jsonb END,
           state_sort_key
    FROM moved
), ancestors(root, step_uuid) AS (
    SELECT r.workflow_step_uuid, up.from_step_uuid
    FROM moved r
    CROSS JOIN LATERAL (SELECT e.from_step_uuid FROM tasker.workflow_step_edges e
                        WHERE e.to_step_uuid = r.workflow_step_uuid OFFSET 0) up
    UNION
    SELECT a.root, up.from_step_uuid
    FROM ancestors a
    CROSS JOIN LATERAL (SELECT e.from_step_uuid FROM tasker.workflow_step_edges e
                        WHERE e.to_step_uuid = a.step_uuid OFFSET 0) up
), ancestor_results AS (
    SELECT a.root, ns.name, s.result,
           EXISTS (SELECT 1 FROM tasker.workflow_step_edges p
                   WHERE p.from_step_uuid = a.step_uuid AND p.to_step_uuid = a.root) AS is_parent
    FROM ancestors a
    CROSS JOIN LATERAL (SELECT ws.named_step_uuid, ws.results -> 'result' AS result
                        FROM tasker.workflow_steps ws
                        WHERE ws.workflow_step_uuid = a.step_uuid OFFSET 0) s
    CROSS JOIN LATERAL (SELECT ns.name FROM tasker.named_steps ns
                        WHERE ns.named_step_uuid = s.named_step_uuid OFFSET 0) ns
)
SELECT p.msg_id, p.read_ct, p.message, p.step_uuid,
       CASE WHEN b.workflow_step_uuid IS NULL AND p.step_uuid IS NOT NULL THEN
           (SELECT s.current_state FROM tasker.workflow_steps s
            WHERE s.workflow_step_uuid = p.step_uuid) END AS actual,
       b.workflow_step_uuid IS NOT NULL AS claimed,
       ns.name AS step_name, b.task_uuid, b.handler_callable, b.inputs, b.attempts,
       b.max_attempts, b.retry_baseline, b.retryable, b.timeout_seconds, t.context,
       t.correlation_id, nt.name AS task_name, nt.version AS task_version,
       nt.namespace,
       CASE WHEN b.workflow_step_uuid IS NOT NULL THEN
           (SELECT COALESCE(jsonb_agg(jsonb_build_array(a.name, a.result, a.is_parent)), '[]')
            FROM ancestor_results a WHERE a.root = b.workflow_step_uuid) END AS ancestors
FROM parsed p
LEFT JOIN moved b ON b.msg_id = p.msg_id
LEFT JOIN LATERAL (SELECT ns.name FROM tasker.named_steps ns
                   WHERE ns.named_step_uuid = b.named_step_uuid OFFSET 0) ns ON true
LEFT JOIN LATERAL (SELECT t.context, t.correlation_id, t.named_task_uuid
                   FROM tasker.tasks t WHERE t.task_uuid = b.task_uuid OFFSET 0) t ON true
LEFT JOIN LATERAL (SELECT nt.name, nt.version, tn.name AS namespace
                   FROM tasker.named_tasks nt
                   JOIN tasker.task_namespaces tn
                     ON tn.task_namespace_uuid = nt.task_namespace_uuid
                   WHERE nt.named_task_uuid = t.named_task_uuid OFFSET 0) nt ON true
ORDER BY p.msg_id
