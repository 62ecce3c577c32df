-- Tasks that have sat in a waiting, processing or blocked state longer than allowed.
--
-- The threshold (minutes) comes from the template's `lifecycle` when it sets one,
-- otherwise from the arguments:
--   waiting_for_dependencies  lifecycle.max_waiting_for_dependencies_minutes
--   waiting_for_retry         lifecycle.max_waiting_for_retry_minutes
--   steps_in_process          lifecycle.max_steps_in_process_minutes
--   blocked_by_failures       lifecycle.max_blocked_minutes
-- Time is measured from the task's last activity: its latest task transition, and for
-- every state but blocked_by_failures also its steps' latest transitions, so a long
-- workflow that keeps making progress is never stale. Tasks with a pending DLQ entry
-- are skipped.
CREATE FUNCTION tasker.get_stale_tasks(
    p_waiting_for_dependencies_minutes integer,
    p_waiting_for_retry_minutes integer,
    p_steps_in_process_minutes integer,
    p_blocked_minutes integer,
    p_limit integer DEFAULT 100
) RETURNS TABLE (
    task_uuid uuid,
    current_state text,
    minutes_in_state numeric,
    threshold_minutes integer
)
LANGUAGE sql STABLE AS $$
    SELECT c.task_uuid, c.state, round(c.idle_minutes, 2), c.threshold
    FROM (
        SELECT
            tt.task_uuid,
            tt.to_state::text AS state,
            extract(epoch FROM now() - CASE
                WHEN tt.to_state = 'blocked_by_failures' THEN tt.created_at
                ELSE greatest(tt.created_at, COALESCE((
                    SELECT max(st.created_at)
                    FROM tasker.workflow_steps ws
                    JOIN tasker.workflow_step_transitions st
                        ON st.workflow_step_uuid = ws.workflow_step_uuid AND st.most_recent
                    WHERE ws.task_uuid = tt.task_uuid
                ), tt.created_at))
            END)::numeric / 60 AS idle_minutes,
            CASE tt.to_state
                WHEN 'waiting_for_dependencies' THEN COALESCE(
                    (nt.configuration -> 'lifecycle' ->> 'max_waiting_for_dependencies_minutes')::integer,
                    p_waiting_for_dependencies_minutes)
                WHEN 'waiting_for_retry' THEN COALESCE(
                    (nt.configuration -> 'lifecycle' ->> 'max_waiting_for_retry_minutes')::integer,
                    p_waiting_for_retry_minutes)
                WHEN 'steps_in_process' THEN COALESCE(
                    (nt.configuration -> 'lifecycle' ->> 'max_steps_in_process_minutes')::integer,
                    p_steps_in_process_minutes)
                ELSE COALESCE(
                    (nt.configuration -> 'lifecycle' ->> 'max_blocked_minutes')::integer,
                    p_blocked_minutes)
            END AS threshold
        FROM tasker.task_transitions tt
        JOIN tasker.tasks t ON t.task_uuid = tt.task_uuid
        JOIN tasker.named_tasks nt ON nt.named_task_uuid = t.named_task_uuid
        WHERE tt.most_recent
          AND tt.to_state IN ('waiting_for_dependencies', 'waiting_for_retry',
                              'steps_in_process', 'blocked_by_failures')
          AND NOT EXISTS (
              SELECT 1 FROM tasker.tasks_dlq d
              WHERE d.task_uuid = tt.task_uuid AND d.resolution_status = 'pending')
    ) c
    WHERE c.idle_minutes >= c.threshold
    ORDER BY c.idle_minutes DESC
    LIMIT p_limit
$$;
