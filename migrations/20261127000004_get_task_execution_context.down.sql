DROP FUNCTION IF EXISTS tasker.get_task_execution_context(uuid);
