//! Typed queue operations.
//!
//! Every operation takes an executor, so it can run on the pool or inside the caller's
//! transaction: that is how a state change and the message announcing it commit together.

use serde::{Serialize, de::DeserializeOwned};
use sqlx::{PgExecutor, PgPool};

use crate::error::Result;
use crate::names::QueueName;
use crate::sql;

/// A message read from a queue.
#[derive(Debug, Clone)]
pub struct QueueMessage<T> {
    /// PGMQ's id for the message, unique within its queue.
    pub msg_id: i64,
    /// How many times the message has been read, this read included.
    pub read_ct: i32,
    /// When it was sent.
    pub enqueued_at: chrono::DateTime<chrono::Utc>,
    /// Until when it stays invisible to other readers (the reader's lease).
    pub vt: chrono::DateTime<chrono::Utc>,
    /// The decoded body.
    pub message: T,
}

#[derive(sqlx::FromRow)]
struct RawMessage {
    msg_id: i64,
    read_ct: i32,
    enqueued_at: chrono::DateTime<chrono::Utc>,
    vt: chrono::DateTime<chrono::Utc>,
    message: serde_json::Value,
}

/// Decodes rows oldest first (`RETURNING` keeps no order).
fn in_order<T: DeserializeOwned>(mut rows: Vec<RawMessage>) -> Result<Vec<QueueMessage<T>>> {
    rows.sort_by_key(|r| r.msg_id);
    rows.into_iter().map(decode).collect()
}

fn decode<T: DeserializeOwned>(r: RawMessage) -> Result<QueueMessage<T>> {
    Ok(QueueMessage {
        msg_id: r.msg_id,
        read_ct: r.read_ct,
        enqueued_at: r.enqueued_at,
        vt: r.vt,
        message: serde_json::from_value(r.message)?,
    })
}

/// A PGMQ client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PgmqClient {
    pool: PgPool,
}

impl PgmqClient {
    /// Wraps a pool. PGMQ must already be installed (see [`crate::install::install`]).
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }

    /// The pool this client uses when no transaction is given.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Creates a queue if it does not exist yet.
    pub async fn create_queue(&self, queue: &QueueName) -> Result<()> {
        sqlx::query("SELECT pgmq.create($1)")
            .bind(queue.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Sends `msg` and notifies `pgmq_message_ready.<namespace>` in the same statement
    /// (see [`sql::insert_with_notify`]). Nothing is visible or notified before the
    /// surrounding transaction commits.
    pub async fn send_with_notify<'e, T: Serialize>(
        executor: impl PgExecutor<'e>,
        queue: &QueueName,
        msg: &T,
        delay_seconds: i32,
    ) -> Result<i64> {
        let body = serde_json::to_value(msg)?;
        let statement = sql::insert_with_notify(
            queue,
            "VALUES (clock_timestamp() + make_interval(secs => $2), $1)",
        );
        let (id,): (i64,) = sqlx::query_as(&statement)
            .bind(body)
            .bind(delay_seconds)
            .fetch_one(executor)
            .await?;
        Ok(id)
    }

    /// Sends `msg` so that it becomes visible at `visible_at` (millisecond precision), and
    /// notifies with the delay, so that listeners can wake up on time.
    pub async fn send_with_notify_at<'e, T: Serialize>(
        executor: impl PgExecutor<'e>,
        queue: &QueueName,
        msg: &T,
        visible_at: chrono::DateTime<chrono::Utc>,
    ) -> Result<i64> {
        let body = serde_json::to_value(msg)?;
        let statement = sql::insert_with_notify(queue, "VALUES ($2::timestamptz, $1)");
        let (id,): (i64,) = sqlx::query_as(&statement)
            .bind(body)
            .bind(visible_at)
            .fetch_one(executor)
            .await?;
        Ok(id)
    }

    /// Sends many messages with one statement, each with its own notification.
    pub async fn send_batch_with_notify<'e, T: Serialize>(
        executor: impl PgExecutor<'e>,
        queue: &QueueName,
        msgs: &[T],
        delay_seconds: i32,
    ) -> Result<Vec<i64>> {
        if msgs.is_empty() {
            return Ok(Vec::new());
        }
        let bodies = msgs
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<Vec<_>, _>>()?;
        // The rows go in in the order of `msgs`, so their ids (an identity) ascend in that
        // order; RETURNING keeps no order, hence the sort.
        let statement = sql::insert_with_notify(
            queue,
            "SELECT clock_timestamp() + make_interval(secs => $2), m
             FROM unnest($1::jsonb[]) WITH ORDINALITY AS u(m, n) ORDER BY n",
        );
        let rows: Vec<(i64,)> = sqlx::query_as(&statement)
            .bind(bodies)
            .bind(delay_seconds)
            .fetch_all(executor)
            .await?;
        let mut ids: Vec<i64> = rows.into_iter().map(|(id,)| id).collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Reads up to `qty` visible messages, oldest first, and hides them for `vt_seconds`
    /// (the lease).
    pub async fn read<T: DeserializeOwned>(
        &self,
        queue: &QueueName,
        vt_seconds: i32,
        qty: i32,
    ) -> Result<Vec<QueueMessage<T>>> {
        Self::read_with(&self.pool, queue, vt_seconds, qty).await
    }

    /// [`read`](Self::read) on any executor: inside a transaction, the lease is taken only
    /// if the transaction commits, so a consumer can read and act in one commit.
    pub async fn read_with<'e, T: DeserializeOwned>(
        executor: impl PgExecutor<'e>,
        queue: &QueueName,
        vt_seconds: i32,
        qty: i32,
    ) -> Result<Vec<QueueMessage<T>>> {
        let statement = sql::read(queue);
        let rows: Vec<RawMessage> = sqlx::query_as(&statement)
            .bind(vt_seconds)
            .bind(i64::from(qty))
            .fetch_all(executor)
            .await?;
        in_order(rows)
    }

    /// Deletes a message. Returns whether it still existed.
    pub async fn delete<'e>(
        executor: impl PgExecutor<'e>,
        queue: &QueueName,
        msg_id: i64,
    ) -> Result<bool> {
        let statement = sql::delete(queue);
        let deleted: Option<i64> = sqlx::query_scalar(&statement)
            .bind(msg_id)
            .fetch_optional(executor)
            .await?;
        Ok(deleted.is_some())
    }

    /// Deletes up to `qty` visible messages and returns them: a read that needs no lease
    /// and no delete afterwards, for a consumer that handles its messages inside the
    /// transaction that takes them. Until that transaction ends, other readers skip the
    /// messages; if it rolls back, they are back as they were (`read_ct` unchanged), so
    /// a crash or an error in the middle loses nothing.
    pub async fn take_with<'e, T: DeserializeOwned>(
        executor: impl PgExecutor<'e>,
        queue: &QueueName,
        qty: i32,
    ) -> Result<Vec<QueueMessage<T>>> {
        let statement = sql::take(queue);
        let rows: Vec<RawMessage> = sqlx::query_as(&statement)
            .bind(i64::from(qty))
            .fetch_all(executor)
            .await?;
        in_order(rows)
    }

    /// Moves a message to the queue's archive table. Returns whether it still existed.
    pub async fn archive<'e>(
        executor: impl PgExecutor<'e>,
        queue: &QueueName,
        msg_id: i64,
    ) -> Result<bool> {
        let statement = sql::archive(queue);
        let archived: Option<i64> = sqlx::query_scalar(&statement)
            .bind(msg_id)
            .fetch_optional(executor)
            .await?;
        Ok(archived.is_some())
    }

    /// Sets a message's visibility timeout to `vt_seconds` from now: extends a lease, or
    /// (with 0) gives the message back at once. Returns whether the message still existed.
    pub async fn set_vt<'e>(
        executor: impl PgExecutor<'e>,
        queue: &QueueName,
        msg_id: i64,
        vt_seconds: i32,
    ) -> Result<bool> {
        let statement = sql::set_vt(queue);
        let row: Option<i64> = sqlx::query_scalar(&statement)
            .bind(msg_id)
            .bind(vt_seconds)
            .fetch_optional(executor)
            .await?;
        Ok(row.is_some())
    }

    /// Makes a leased message visible at once and notifies the queue's channel (a
    /// consumer that relies on notifications alone would not otherwise hear of it).
    /// Returns whether the message still existed.
    pub async fn give_back<'e>(
        executor: impl PgExecutor<'e>,
        queue: &QueueName,
        msg_id: i64,
    ) -> Result<bool> {
        let row: Option<i64> = sqlx::query_scalar(&sql::give_back(queue))
            .bind(msg_id)
            .fetch_optional(executor)
            .await?;
        Ok(row.is_some())
    }

    /// Extends to `vt_seconds` from now the leases of those of `msg_ids` that nobody
    /// has read since they were sent (`read_ct` 1: leased to one consumer by their
    /// producer); returns the ids extended.
    pub async fn extend_unread<'e>(
        executor: impl PgExecutor<'e>,
        queue: &QueueName,
        msg_ids: &[i64],
        vt_seconds: i32,
    ) -> Result<Vec<i64>> {
        let ids = sqlx::query_scalar(&sql::extend_unread(queue))
            .bind(msg_ids)
            .bind(vt_seconds)
            .fetch_all(executor)
            .await?;
        Ok(ids)
    }

    /// Every queue PGMQ knows whose name is a valid [`QueueName`] (queues other
    /// software created with other names are left out).
    pub async fn queue_names<'e>(executor: impl PgExecutor<'e>) -> Result<Vec<QueueName>> {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT queue_name::text FROM pgmq.meta ORDER BY queue_name")
                .fetch_all(executor)
                .await?;
        Ok(names
            .into_iter()
            .filter_map(|n| QueueName::new(n).ok())
            .collect())
    }

    /// Deletes up to `limit` messages archived more than `older_than_seconds` ago from
    /// the queue's archive table (`pgmq.a_<queue>`). Returns how many were deleted.
    pub async fn delete_archived_before<'e>(
        executor: impl PgExecutor<'e>,
        queue: &QueueName,
        older_than_seconds: f64,
        limit: i64,
    ) -> Result<u64> {
        let table = sql::archive_table(queue);
        let statement = format!(
            "DELETE FROM {table} WHERE msg_id IN (
                SELECT msg_id FROM {table}
                WHERE archived_at < now() - $1 * interval '1 second'
                LIMIT $2)"
        );
        let done = sqlx::query(&statement)
            .bind(older_than_seconds)
            .bind(limit)
            .execute(executor)
            .await?;
        Ok(done.rows_affected())
    }

    /// Number of messages archived more than `older_than_seconds` ago in the queue's
    /// archive table.
    pub async fn count_archived_before<'e>(
        executor: impl PgExecutor<'e>,
        queue: &QueueName,
        older_than_seconds: f64,
    ) -> Result<i64> {
        let statement = format!(
            "SELECT count(*) FROM {} WHERE archived_at < now() - $1 * interval '1 second'",
            sql::archive_table(queue)
        );
        let n = sqlx::query_scalar(&statement)
            .bind(older_than_seconds)
            .fetch_one(executor)
            .await?;
        Ok(n)
    }

    /// Which of `queues` hold a message visible now, in one query (an index probe per
    /// queue): a consumer of many queues polls them at the cost of one.
    pub async fn queues_with_visible<'e>(
        executor: impl PgExecutor<'e>,
        queues: &[QueueName],
    ) -> Result<Vec<QueueName>> {
        if queues.is_empty() {
            return Ok(Vec::new());
        }
        // Names come from validated QueueNames: letters, digits, underscores.
        let statement = queues
            .iter()
            .map(|q| {
                let name = q.as_str();
                format!(
                    "SELECT '{name}'::text AS queue WHERE EXISTS \
                     (SELECT 1 FROM pgmq.q_{name} WHERE vt <= clock_timestamp())"
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let names: Vec<String> = sqlx::query_scalar(&statement).fetch_all(executor).await?;
        Ok(queues
            .iter()
            .filter(|q| names.iter().any(|n| n == q.as_str()))
            .cloned()
            .collect())
    }

    /// Number of messages in a queue, visible or not.
    pub async fn depth(&self, queue: &QueueName) -> Result<i64> {
        let n: Option<i64> = sqlx::query_scalar("SELECT queue_length FROM pgmq.metrics($1)")
            .bind(queue.as_str())
            .fetch_optional(&self.pool)
            .await?;
        Ok(n.unwrap_or(0))
    }
}
