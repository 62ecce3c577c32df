-- The tables written on every step (tasks, workflow_steps, workflow_step_edges and the
-- two histories) no longer carry foreign keys.
--
-- Each foreign key costs a trigger per inserted row: an SPI query that locks the
-- referenced row FOR KEY SHARE. Creating a linear-4 task ran 22 of them (the task's
-- template, each step's task and named step, each edge's two steps, each history row's
-- task or step) and every step transition one more. In a profile of task creation they
-- were about 18 % of PostgreSQL's CPU (`AfterTriggerEndQuery`), in the step throughput
-- benchmark about 7 %.
--
-- What the keys guaranteed holds by construction instead (docs/ARCHITECTURE.md,
-- invariants):
-- * a task, its steps, edges and first history rows are inserted by one statement
--   (tasker.tasks' row first; nothing else is written if it is not);
-- * every later history row is inserted by the statement that moves its task or step,
--   from the row it updated (`FROM moved`), so its task or step exists;
-- * template registry rows (task_namespaces, named_tasks, named_steps) are never
--   deleted;
-- * tasks are deleted only by retention, which deletes their steps, edges and
--   histories in the same statement (what ON DELETE CASCADE did).
-- tasks_dlq keeps its key: it is written rarely and its cascade costs nothing on insert.

ALTER TABLE tasker.tasks
    DROP CONSTRAINT tasks_named_task_uuid_fkey;
ALTER TABLE tasker.workflow_steps
    DROP CONSTRAINT workflow_steps_task_uuid_fkey,
    DROP CONSTRAINT workflow_steps_named_step_uuid_fkey;
ALTER TABLE tasker.workflow_step_edges
    DROP CONSTRAINT workflow_step_edges_from_step_uuid_fkey,
    DROP CONSTRAINT workflow_step_edges_to_step_uuid_fkey;
ALTER TABLE tasker.task_transitions
    DROP CONSTRAINT task_transitions_task_uuid_fkey;
ALTER TABLE tasker.workflow_step_transitions
    DROP CONSTRAINT workflow_step_transitions_workflow_step_uuid_fkey;
