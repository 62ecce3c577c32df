DROP FUNCTION IF EXISTS tasker.get_step_readiness_status(uuid, uuid[]);
