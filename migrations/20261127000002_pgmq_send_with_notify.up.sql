-- The namespace a queue belongs to: worker_<ns>_queue → <ns>; orchestration* →
-- orchestration; anything else → the queue name. Mirrors pgmq_notify::names::namespace_of.
CREATE FUNCTION tasker.extract_queue_namespace(queue_name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE
        WHEN queue_name LIKE 'orchestration%' THEN 'orchestration'
        WHEN queue_name ~ '^worker_.+_queue$' THEN substring(queue_name FROM '^worker_(.+)_queue$')
        ELSE queue_name
    END
$$;

-- Sends a message and announces it on channel pgmq_message_ready.<namespace>, in the
-- caller's transaction: nothing is visible or notified before commit, and a rollback
-- drops both. The payload is a small wake-up ({"queue", "msg_id", "delay_seconds"}), never
-- the message itself: the queue table is the truth and consumers read it.
CREATE FUNCTION tasker.pgmq_send_with_notify(
    queue_name text,
    message jsonb,
    delay_seconds integer DEFAULT 0
) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    new_msg_id bigint;
BEGIN
    SELECT pgmq.send(queue_name, message, delay_seconds) INTO new_msg_id;
    PERFORM pg_notify(
        'pgmq_message_ready.' || tasker.extract_queue_namespace(queue_name),
        json_build_object(
            'queue', queue_name,
            'msg_id', new_msg_id,
            'delay_seconds', delay_seconds
        )::text
    );
    RETURN new_msg_id;
END
$$;
