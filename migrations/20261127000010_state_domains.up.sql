-- State columns check their values through domains instead of table CHECK constraints.
--
-- PostgreSQL parses a table's CHECK constraints from their stored text in every
-- statement that inserts or updates a row of it (all of them, whichever columns
-- change), and the state lists were the longest: in a profile of the step throughput
-- benchmark, CHECK evaluation was about 13 % of PostgreSQL's CPU, most of it that
-- parsing. A domain's constraints are parsed once per connection and cached, and are
-- checked only where a value is assigned to the column. An insert into a transition
-- table costs about a third of what it did (20,000 inserts: 1.08 s → 0.31–0.39 s).
--
-- The from-state domains also carry the rule that nothing leaves a terminal state,
-- which was a constraint of its own.

CREATE DOMAIN tasker.task_state AS varchar(64) CHECK (VALUE IN (
    'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
    'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures',
    'complete', 'error', 'cancelled', 'resolved_manually'));

-- A task state a transition may leave: any but the terminal ones.
CREATE DOMAIN tasker.task_from_state AS varchar(64) CHECK (VALUE IN (
    'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
    'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures'));

CREATE DOMAIN tasker.step_state AS varchar(64) CHECK (VALUE IN (
    'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
    'enqueued_as_error_for_orchestration', 'waiting_for_retry',
    'complete', 'error', 'cancelled', 'resolved_manually'));

-- A step state a transition may leave: any but the terminal ones (a step in `error`
-- may be retried).
CREATE DOMAIN tasker.step_from_state AS varchar(64) CHECK (VALUE IN (
    'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
    'enqueued_as_error_for_orchestration', 'waiting_for_retry', 'error'));

CREATE DOMAIN tasker.backoff_kind AS varchar(16) CHECK (VALUE IN (
    'none', 'linear', 'exponential', 'fibonacci'));

ALTER TABLE tasker.tasks
    DROP CONSTRAINT tasks_current_state_check,
    ALTER COLUMN current_state TYPE tasker.task_state;

ALTER TABLE tasker.workflow_steps
    DROP CONSTRAINT workflow_steps_current_state_check,
    DROP CONSTRAINT workflow_steps_backoff_check,
    ALTER COLUMN current_state TYPE tasker.step_state,
    ALTER COLUMN backoff TYPE tasker.backoff_kind;

ALTER TABLE tasker.task_transitions
    DROP CONSTRAINT task_transitions_to_state_check,
    DROP CONSTRAINT task_transitions_from_state_check,
    DROP CONSTRAINT task_transitions_terminal_is_final,
    ALTER COLUMN to_state TYPE tasker.task_state,
    ALTER COLUMN from_state TYPE tasker.task_from_state;

ALTER TABLE tasker.workflow_step_transitions
    DROP CONSTRAINT workflow_step_transitions_to_state_check,
    DROP CONSTRAINT workflow_step_transitions_from_state_check,
    DROP CONSTRAINT workflow_step_transitions_terminal_is_final,
    ALTER COLUMN to_state TYPE tasker.step_state,
    ALTER COLUMN from_state TYPE tasker.step_from_state;
