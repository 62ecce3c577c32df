-- step::handoff::load: the steps of messages $1 that the orchestration handed to the
-- worker process with handoff token $2 and that are still its to run. A read: the
-- claim was written with the handoff (complete_many.sql).
--   $1 bigint[]  the messages
--   $2 text      the worker process's handoff token
--   $3 text      the handed steps' state (`in_progress`)
-- Queue placeholders (in braces below; database::splice): worker_queue.
-- Returns one row per message that qualifies, in `msg_id` order (claim::DeliveryRow,
-- with what is left of the lease).
--
-- A message qualifies while it is marked handed to the token, unread since
-- (`read_ct` 1) and its lease not over (past it, any reader may take the step over),
-- and its step is `in_progress` under the handed attempt. The UUID test on the
-- message's `step_uuid` is claim_from_queue.sql's; `ancestors` and `ancestor_results`
-- are claim_one.sql's; the output columns and their LATERAL joins are
-- claim_from_queue.sql's.
WITH RECURSIVE moved AS (
    SELECT ws.*, m.msg_id, m.read_ct, m.message, m.vt
    FROM {worker_queue} m
    JOIN tasker.workflow_steps ws ON ws.workflow_step_uuid =
        CASE WHEN jsonb_typeof(m.message -> 'step_uuid') = 'string'
              AND m.message ->> 'step_uuid' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
             THEN (m.message ->> 'step_uuid')::uuid END
    WHERE m.msg_id = ANY($1)
      AND m.read_ct = 1
      AND m.vt > clock_timestamp()
      AND m.message -> 'handed' ->> 'token' = $2::text
      AND jsonb_typeof(m.message -> 'handed' -> 'attempt') = 'number'
      AND ws.current_state = $3
      AND ws.attempts = (m.message -> 'handed' ->> 'attempt')::numeric
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
SELECT b.msg_id, b.read_ct, b.message, b.workflow_step_uuid AS step_uuid,
       NULL::text AS actual, true AS claimed,
       greatest(0, ceil(extract(epoch FROM b.vt - clock_timestamp()) * 1000))::bigint
           AS lease_left_ms,
       ns.name AS step_name, b.task_uuid, b.handler_callable, b.inputs, b.attempts,
       b.max_attempts, b.retry_baseline, b.retryable, b.timeout_seconds, t.context,
       t.correlation_id, nt.name AS task_name, nt.version AS task_version,
       nt.namespace,
       CASE WHEN b.workflow_step_uuid IS NOT NULL THEN
           (SELECT COALESCE(jsonb_agg(jsonb_build_array(a.name, a.result, a.is_parent)), '[]')
            FROM ancestor_results a WHERE a.root = b.workflow_step_uuid) END AS ancestors
FROM moved b
LEFT JOIN LATERAL (SELECT ns.name FROM tasker.named_steps ns
                   WHERE ns.named_step_uuid = b.named_step_uuid OFFSET 0) ns ON true
LEFT JOIN LATERAL (SELECT t.context, t.correlation_id, t.named_task_uuid
                   FROM tasker.tasks t WHERE t.task_uuid = b.task_uuid OFFSET 0) t ON true
LEFT JOIN LATERAL (SELECT nt.name, nt.version, tn.name AS namespace
                   FROM tasker.named_tasks nt
                   JOIN tasker.task_namespaces tn
                     ON tn.task_namespace_uuid = nt.task_namespace_uuid
                   WHERE nt.named_task_uuid = t.named_task_uuid OFFSET 0) nt ON true
ORDER BY b.msg_id
