-- task::create::pending: inserts a task with its steps, edges and first history
-- entries, everything `pending`, in one statement.
--   $1  uuid     the task
--   $2  uuid     its template (named task)
--   $3  text     initiator
--   $4  text     source system
--   $5  text     reason
--   $6  jsonb    tags
--   $7  jsonb    context
--   $8  text     identity hash
--   $9  int      priority
--   $10 uuid     correlation id
--   $11 uuid     parent correlation id
--   $12 text     the task's state
--   $13 int      its state's sort key (the number of history entries)
--   $14-$17      the task's history entries: ids, from states, to states, metadata
--   $18-$29      the steps: ids, named steps, handler callables, inputs, retryable,
--                max attempts, backoffs, backoff bases, longest backoffs, timeouts,
--                states, state sort keys
--   $30-$35      the steps' history entries: steps, ids, from states, to states,
--                metadata, sort keys
--   $36-$38      the edges: ids, parents, children
--   $39 jsonb[]  the root steps' messages (unused here)
-- Returns the task's creation time, or no row if its identity exists already.
--
-- Every part reads `t`, the task row the insert returned: if the identity exists
-- already, `t` is empty and nothing else is written. The tables have no foreign keys
-- (migration 11): that the steps, edges and history rows belong to a task written
-- with them holds because this one statement writes them all.
-- create_and_enqueue.sql is this statement with the root messages sent.
WITH t AS (
    INSERT INTO tasker.tasks
        (task_uuid, named_task_uuid, initiator, source_system, reason, tags, context,
         identity_hash, priority, correlation_id, parent_correlation_id,
         current_state, state_sort_key, state_changed_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, now())
    ON CONFLICT (identity_hash) DO NOTHING
    RETURNING task_uuid, created_at
), task_history AS (
    INSERT INTO tasker.task_transitions
        (task_transition_uuid, task_uuid, to_state, from_state, metadata, sort_key)
    SELECT h.id, t.task_uuid, h.to_state, h.from_state, h.metadata, h.sort_key
    FROM t, unnest($14::uuid[], $15::text[], $16::text[], $17::jsonb[])
            WITH ORDINALITY AS h(id, from_state, to_state, metadata, sort_key)
), steps AS (
    INSERT INTO tasker.workflow_steps
        (workflow_step_uuid, task_uuid, named_step_uuid, handler_callable, inputs, retryable,
         max_attempts, backoff, backoff_base_ms, max_backoff_ms, timeout_seconds,
         current_state, state_sort_key)
    SELECT u.id, t.task_uuid, u.named, u.callable, u.inputs, u.retryable, u.max_attempts,
           u.backoff, u.base_ms, u.max_ms, u.timeout, u.state, u.sort_key
    FROM t, unnest($18::uuid[], $19::uuid[], $20::text[], $21::jsonb[], $22::bool[],
                   $23::int[], $24::text[], $25::int[], $26::int[], $27::int[],
                   $28::text[], $29::int[])
            AS u(id, named, callable, inputs, retryable, max_attempts, backoff, base_ms,
                 max_ms, timeout, state, sort_key)
), step_history AS (
    INSERT INTO tasker.workflow_step_transitions
        (workflow_step_transition_uuid, workflow_step_uuid, to_state, from_state, metadata, sort_key)
    SELECT h.id, h.step, h.to_state, h.from_state, h.metadata, h.sort_key
    FROM t, unnest($30::uuid[], $31::uuid[], $32::text[], $33::text[], $34::jsonb[], $35::int[])
            AS h(step, id, from_state, to_state, metadata, sort_key)
), edges AS (
    INSERT INTO tasker.workflow_step_edges
        (workflow_step_edge_uuid, from_step_uuid, to_step_uuid, name)
    SELECT e.id, e.from_step, e.to_step, 'provides'
    FROM t, unnest($36::uuid[], $37::uuid[], $38::uuid[]) AS e(id, from_step, to_step)
), sent AS (
    -- $39 must still appear for PostgreSQL to know its type.
    SELECT $39::jsonb[] AS unused
)
SELECT created_at FROM t
