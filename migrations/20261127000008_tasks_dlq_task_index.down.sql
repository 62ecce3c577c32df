DROP INDEX IF EXISTS tasker.tasks_dlq_task_idx;
