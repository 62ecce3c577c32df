DROP TABLE IF EXISTS tasker.tasks_dlq;
