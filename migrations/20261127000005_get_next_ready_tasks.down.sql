DROP FUNCTION IF EXISTS tasker.get_next_ready_tasks(integer);
