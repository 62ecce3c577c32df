DROP FUNCTION IF EXISTS tasker.get_stale_tasks(integer, integer, integer, integer, integer);
