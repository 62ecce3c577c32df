-- Deleting a task (retention) cascades to its DLQ entries; without an index on task_uuid
-- each cascade scanned the whole table. The partial index on pending entries alone does
-- not serve it.
CREATE INDEX tasks_dlq_task_idx ON tasker.tasks_dlq (task_uuid);
