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
-- drops both. The payload is a small wake-up ({"queue", "msg_id", "delay_ms"}), never the
-- message itself: the queue table is the truth and consumers read it.
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
            'delay_ms', greatest(delay_seconds, 0)::bigint * 1000
        )::text
    );
    RETURN new_msg_id;
END
$$;

-- The same, with millisecond precision: the message becomes visible at visible_at.
-- Retries use it so that a 250 ms backoff is 250 ms, not a whole second.
CREATE FUNCTION tasker.pgmq_send_with_notify(
    queue_name text,
    message jsonb,
    visible_at timestamptz
) RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    new_msg_id bigint;
BEGIN
    SELECT pgmq.send(queue_name, message, visible_at) INTO new_msg_id;
    PERFORM pg_notify(
        'pgmq_message_ready.' || tasker.extract_queue_namespace(queue_name),
        json_build_object(
            'queue', queue_name,
            'msg_id', new_msg_id,
            'delay_ms', greatest(0, ceil(extract(epoch FROM visible_at - clock_timestamp()) * 1000))::bigint
        )::text
    );
    RETURN new_msg_id;
END
$$;
