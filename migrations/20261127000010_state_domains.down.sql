-- Back to table CHECK constraints on plain varchar columns.

ALTER TABLE tasker.workflow_step_transitions
    ALTER COLUMN to_state TYPE varchar(64),
    ALTER COLUMN from_state TYPE varchar(64),
    ADD CONSTRAINT workflow_step_transitions_to_state_check CHECK (to_state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry',
        'complete', 'error', 'cancelled', 'resolved_manually')),
    ADD CONSTRAINT workflow_step_transitions_from_state_check CHECK (from_state IS NULL OR from_state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry',
        'complete', 'error', 'cancelled', 'resolved_manually')),
    ADD CONSTRAINT workflow_step_transitions_terminal_is_final
        CHECK (from_state IS NULL OR from_state NOT IN ('complete', 'cancelled', 'resolved_manually'));

ALTER TABLE tasker.task_transitions
    ALTER COLUMN to_state TYPE varchar(64),
    ALTER COLUMN from_state TYPE varchar(64),
    ADD CONSTRAINT task_transitions_to_state_check CHECK (to_state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
        'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures',
        'complete', 'error', 'cancelled', 'resolved_manually')),
    ADD CONSTRAINT task_transitions_from_state_check CHECK (from_state IS NULL OR from_state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
        'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures',
        'complete', 'error', 'cancelled', 'resolved_manually')),
    ADD CONSTRAINT task_transitions_terminal_is_final
        CHECK (from_state IS NULL OR from_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually'));

ALTER TABLE tasker.workflow_steps
    ALTER COLUMN current_state TYPE varchar(64),
    ALTER COLUMN backoff TYPE varchar(16),
    ADD CONSTRAINT workflow_steps_current_state_check CHECK (current_state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry',
        'complete', 'error', 'cancelled', 'resolved_manually')),
    ADD CONSTRAINT workflow_steps_backoff_check
        CHECK (backoff IN ('none', 'linear', 'exponential', 'fibonacci'));

ALTER TABLE tasker.tasks
    ALTER COLUMN current_state TYPE varchar(64),
    ADD CONSTRAINT tasks_current_state_check CHECK (current_state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
        'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures',
        'complete', 'error', 'cancelled', 'resolved_manually'));

DROP DOMAIN tasker.backoff_kind;
DROP DOMAIN tasker.step_from_state;
DROP DOMAIN tasker.step_state;
DROP DOMAIN tasker.task_from_state;
DROP DOMAIN tasker.task_state;
