-- The foreign keys back. Adding them checks every existing row: rows left without
-- their task or step (none, if only Tasker wrote) make this migration fail.

ALTER TABLE tasker.tasks
    ADD CONSTRAINT tasks_named_task_uuid_fkey
        FOREIGN KEY (named_task_uuid) REFERENCES tasker.named_tasks;
ALTER TABLE tasker.workflow_steps
    ADD CONSTRAINT workflow_steps_task_uuid_fkey
        FOREIGN KEY (task_uuid) REFERENCES tasker.tasks ON DELETE CASCADE,
    ADD CONSTRAINT workflow_steps_named_step_uuid_fkey
        FOREIGN KEY (named_step_uuid) REFERENCES tasker.named_steps;
ALTER TABLE tasker.workflow_step_edges
    ADD CONSTRAINT workflow_step_edges_from_step_uuid_fkey
        FOREIGN KEY (from_step_uuid) REFERENCES tasker.workflow_steps ON DELETE CASCADE,
    ADD CONSTRAINT workflow_step_edges_to_step_uuid_fkey
        FOREIGN KEY (to_step_uuid) REFERENCES tasker.workflow_steps ON DELETE CASCADE;
ALTER TABLE tasker.task_transitions
    ADD CONSTRAINT task_transitions_task_uuid_fkey
        FOREIGN KEY (task_uuid) REFERENCES tasker.tasks ON DELETE CASCADE;
ALTER TABLE tasker.workflow_step_transitions
    ADD CONSTRAINT workflow_step_transitions_workflow_step_uuid_fkey
        FOREIGN KEY (workflow_step_uuid) REFERENCES tasker.workflow_steps ON DELETE CASCADE;
