//! SQL text for statements on a queue's own tables.
//!
//! PGMQ's functions (`pgmq.send`, `pgmq.read`, `pgmq.delete`, …) are PL/pgSQL around a
//! dynamic `EXECUTE`, so PostgreSQL parses and plans their statement on every call
//! (measured on the reference machine: `pgmq.send` 75 µs against 7.5 µs for the same
//! `INSERT`). This crate writes the same statements against `pgmq.q_<queue>` and
//! `pgmq.a_<queue>` directly: one text per queue, prepared once per connection.
//!
//! The statements use only the columns every PGMQ 1.x queue table has (`msg_id`,
//! `read_ct`, `enqueued_at`, `vt`, `message`), so they work on the SQL install and on
//! the extension alike. A read does not set `last_read_at`, which Tasker never uses.
//!
//! Names are spliced into the text, never bound: they come from a validated
//! [`QueueName`] (`[a-z0-9_]`), so they need no quoting.

use crate::names::QueueName;

/// The queue's message table, `pgmq.q_<queue>`.
pub fn queue_table(queue: &QueueName) -> String {
    format!("pgmq.q_{}", queue.as_str())
}

/// The queue's archive table, `pgmq.a_<queue>`.
pub fn archive_table(queue: &QueueName) -> String {
    format!("pgmq.a_{}", queue.as_str())
}

/// `INSERT INTO pgmq.q_<queue> (vt, message) <rows> RETURNING msg_id, message, <notify>`:
/// sends one message per row of `rows` (a `VALUES` list or a `SELECT` yielding
/// `vt timestamptz, message jsonb`) and notifies each on the queue's channel, with the
/// payload of `tasker.pgmq_send_with_notify`: `{"queue", "msg_id", "delay_ms"}`.
///
/// The notification sits in the `RETURNING` list, so it fires for every row inserted
/// even when the statement is a data-modifying CTE whose output nobody reads: PostgreSQL
/// runs such CTEs to completion. Like every `NOTIFY`, it is delivered at commit.
pub fn insert_with_notify(queue: &QueueName, rows: &str) -> String {
    format!(
        "INSERT INTO {} (vt, message) {rows}
         {}",
        queue_table(queue),
        returning_with_notify(queue)
    )
}

/// The `RETURNING` list of [`insert_with_notify`]: `msg_id, message` and the
/// notification of each inserted row. For a statement that writes its own
/// `INSERT INTO pgmq.q_<queue> (vt, message) ...` (tasker-shared's `.sql` files) and must
/// notify exactly as a send does.
pub fn returning_with_notify(queue: &QueueName) -> String {
    let name = queue.as_str();
    let channel = queue.channel();
    format!(
        "RETURNING msg_id, message, pg_notify('{channel}', json_build_object(
             'queue', '{name}', 'msg_id', msg_id,
             'delay_ms', greatest(0, ceil(extract(epoch FROM vt - clock_timestamp()) * 1000))::bigint
         )::text)"
    )
}

/// The CTE `visible AS (...)`: the ids of up to `limit` (a parameter such as `$2`)
/// messages visible when the statement started, in the order they became visible,
/// locked, skipping rows other readers hold. As a CTE PostgreSQL runs it once; a
/// subquery could be re-run and take more rows than asked.
///
/// The order is `vt`'s, not `msg_id`'s (PGMQ's `read`): PGMQ's index on `vt` then
/// serves both the condition and the order, so a read stops at the visible messages and
/// never walks those leased to running steps or delayed for retries. Ordered by
/// `msg_id`, every read filtered its way past all of them, the more the busier the
/// queue. A fresh message's `vt` is its send time, so fresh messages still come out
/// first in, first out; a redelivered one takes its turn from when its lease ran out.
/// (`statement_timestamp()`, unlike `clock_timestamp()`, is stable within the
/// statement, so the index can use it.)
pub fn visible_cte(queue: &QueueName, limit: &str) -> String {
    format!(
        "visible AS (
             SELECT msg_id FROM {}
             WHERE vt <= statement_timestamp()
             ORDER BY vt
             LIMIT {limit}
             FOR UPDATE SKIP LOCKED
         )",
        queue_table(queue)
    )
}

/// Leases up to `$2` visible messages, oldest first, for `$1` seconds, skipping rows
/// other readers hold; returns `msg_id, read_ct, enqueued_at, vt, message`.
pub fn read(queue: &QueueName) -> String {
    let table = queue_table(queue);
    format!(
        "WITH {visible}
         UPDATE {table} m
         SET vt = clock_timestamp() + make_interval(secs => $1), read_ct = m.read_ct + 1
         WHERE m.msg_id = ANY(ARRAY(SELECT msg_id FROM visible))
         RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message",
        visible = visible_cte(queue, "$2"),
    )
}

/// Deletes message `$1`; returns its id if it existed.
pub fn delete(queue: &QueueName) -> String {
    format!(
        "DELETE FROM {} WHERE msg_id = $1 RETURNING msg_id",
        queue_table(queue)
    )
}

/// Deletes up to `$1` visible messages, oldest first, skipping rows other readers hold,
/// and returns them (`msg_id, read_ct, enqueued_at, vt, message`; `read_ct` as stored).
pub fn take(queue: &QueueName) -> String {
    format!(
        "WITH {visible}
         DELETE FROM {table} m WHERE m.msg_id = ANY(ARRAY(SELECT msg_id FROM visible))
         RETURNING m.msg_id, m.read_ct, m.enqueued_at, m.vt, m.message",
        table = queue_table(queue),
        visible = visible_cte(queue, "$1"),
    )
}

/// Moves message `$1` to the archive table; returns its id if it existed.
pub fn archive(queue: &QueueName) -> String {
    format!(
        "WITH gone AS (
             DELETE FROM {} WHERE msg_id = $1
             RETURNING msg_id, vt, read_ct, enqueued_at, message
         )
         INSERT INTO {} (msg_id, vt, read_ct, enqueued_at, message)
         SELECT msg_id, vt, read_ct, enqueued_at, message FROM gone
         RETURNING msg_id",
        queue_table(queue),
        archive_table(queue)
    )
}

/// Sets message `$1`'s visibility to `$2` seconds from now; returns its id if it existed.
pub fn set_vt(queue: &QueueName) -> String {
    format!(
        "UPDATE {} SET vt = clock_timestamp() + make_interval(secs => $2)
         WHERE msg_id = $1 RETURNING msg_id",
        queue_table(queue)
    )
}

/// Makes message `$1` visible now and notifies the queue's channel, as a send does:
/// for giving a leased message back, so that consumers that rely on notifications
/// alone hear of it. Returns its id if it existed.
pub fn give_back(queue: &QueueName) -> String {
    format!(
        "UPDATE {} SET vt = clock_timestamp() WHERE msg_id = $1
         RETURNING msg_id, pg_notify('{}', json_build_object(
             'queue', '{}', 'msg_id', msg_id, 'delay_ms', 0)::text)",
        queue_table(queue),
        queue.channel(),
        queue.as_str()
    )
}

/// Extends the lease of those of messages `$1` not read since they were sent
/// (`read_ct` 1) to `$2` seconds from now; returns their ids.
pub fn extend_unread(queue: &QueueName) -> String {
    format!(
        "UPDATE {} SET vt = clock_timestamp() + make_interval(secs => $2)
         WHERE msg_id = ANY($1) AND read_ct = 1 RETURNING msg_id",
        queue_table(queue)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_name_the_queue_tables() {
        let q = QueueName::worker("payments").unwrap();
        assert_eq!(queue_table(&q), "pgmq.q_worker_payments_queue");
        assert_eq!(archive_table(&q), "pgmq.a_worker_payments_queue");
        let send = insert_with_notify(&q, "VALUES (clock_timestamp(), $1)");
        assert!(send.starts_with("INSERT INTO pgmq.q_worker_payments_queue (vt, message) VALUES"));
        assert!(send.contains("pg_notify('pgmq_message_ready.payments'"));
        assert!(archive(&q).contains("INSERT INTO pgmq.a_worker_payments_queue"));
    }
}
