-- Tasks that have steps the orchestration could enqueue right now, highest priority
-- first. This is the fallback sweep: the hot path enqueues children in the same
-- transaction that records their parent's result, so in a healthy system this finds
-- only tasks that nobody has started yet (for example, requests taken from a queue).
--
-- Candidates are tasks whose current state is neither terminal nor blocked. The boost
-- adds 0.1 per hour waited (capped at +10), so old low-priority work is not starved.
CREATE FUNCTION tasker.get_next_ready_tasks(p_limit integer DEFAULT 5)
RETURNS TABLE (
    task_uuid uuid,
    task_name text,
    priority integer,
    namespace_name text,
    ready_steps_count integer,
    computed_priority numeric,
    current_state text
)
LANGUAGE sql STABLE AS $$
    SELECT
        t.task_uuid,
        nt.name::text,
        t.priority,
        tn.name::text,
        ready.n,
        t.priority + least(10.0, extract(epoch FROM now() - t.requested_at)::numeric / 36000.0),
        tt.to_state::text
    FROM tasker.task_transitions tt
    JOIN tasker.tasks t ON t.task_uuid = tt.task_uuid
    JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
    JOIN tasker.task_namespaces tn ON tn.task_namespace_uuid = nt.task_namespace_uuid
    CROSS JOIN LATERAL (
        SELECT count(*)::integer AS n
        FROM tasker.get_step_readiness_status(t.task_uuid) r
        WHERE r.ready_for_execution
    ) ready
    WHERE tt.most_recent
      AND tt.to_state IN ('pending', 'initializing', 'enqueuing_steps', 'steps_in_process',
                          'evaluating_results', 'waiting_for_dependencies', 'waiting_for_retry')
      AND ready.n > 0
    ORDER BY 6 DESC, t.requested_at ASC
    LIMIT p_limit
$$;
