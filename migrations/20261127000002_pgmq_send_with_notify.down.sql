DROP FUNCTION IF EXISTS tasker.pgmq_send_with_notify(text, jsonb, timestamptz);
DROP FUNCTION IF EXISTS tasker.pgmq_send_with_notify(text, jsonb, integer);
DROP FUNCTION IF EXISTS tasker.extract_queue_namespace(text);
