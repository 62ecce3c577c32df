-- step::claim::one: claims a step for a new attempt (the state moves to
-- `in_progress` and the attempt counter, the fencing token, grows) and returns its
-- context with the results of every ancestor.
--   $1 uuid[]  the step (one element)
--   $2 text[]  the accepted source states
--   $3 text    the target state (`in_progress`)
--   $4 jsonb   the history entry's metadata
-- Returns the columns of claim::StepContextRow, or no row if the step was not
-- claimable.
--
-- `old`, `moved` and `ins` are the compare-and-swap of transition_many.sql, with the
-- attempt and its time set in `moved`. `ancestors` and `ancestor_results` are also in
-- claim_from_queue.sql and handoff_load.sql: each hop of the walk is a LATERAL
-- subquery that cannot be flattened (OFFSET 0), so every plan is a walk of index
-- lookups. Left to itself the planner guesses the recursion's size, and on a young or
-- small database it hashes whole tables (edges, steps) once per hop instead.
WITH RECURSIVE old AS (
    SELECT workflow_step_uuid, current_state FROM tasker.workflow_steps
    WHERE workflow_step_uuid = ANY($1) AND current_state = ANY($2)
    FOR UPDATE
), moved AS (
    UPDATE tasker.workflow_steps ws
    SET current_state = $3, state_sort_key = ws.state_sort_key + 1, updated_at = now(),
        last_failure_at = CASE WHEN $3 = 'enqueued_as_error_for_orchestration'
                               THEN now() ELSE ws.last_failure_at END,
        completed_at = CASE WHEN $3 IN ('complete', 'resolved_manually')
                            THEN now() ELSE ws.completed_at END,
        attempts = ws.attempts + 1, last_attempted_at = now()
    FROM old
    WHERE ws.workflow_step_uuid = ANY($1) AND ws.workflow_step_uuid = old.workflow_step_uuid
    RETURNING ws.*, old.current_state AS from_state
), ins AS (
    INSERT INTO tasker.workflow_step_transitions
        (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key)
    SELECT tasker.uuid_generate_v7(), moved.workflow_step_uuid, $3, moved.from_state, $4,
           moved.state_sort_key
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
SELECT ns.name AS step_name, b.task_uuid, b.handler_callable, b.inputs, b.attempts,
       b.max_attempts, b.retry_baseline, b.retryable, b.timeout_seconds, t.context,
       t.correlation_id, nt.name AS task_name, nt.version AS task_version,
       tn.name AS namespace,
       (SELECT COALESCE(jsonb_agg(jsonb_build_array(a.name, a.result, a.is_parent)), '[]')
        FROM ancestor_results a WHERE a.root = b.workflow_step_uuid) AS ancestors
FROM moved b
JOIN tasker.named_steps ns ON ns.named_step_uuid = b.named_step_uuid
JOIN tasker.tasks t ON t.task_uuid = b.task_uuid
JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
