//! Queue names spliced into the text of a statement.
//!
//! A statement that reads or writes a queue's own tables (`pgmq.q_<queue>`) names them
//! in its text: queue names are validated ([`pgmq_notify::QueueName`], `[a-z0-9_]`) and
//! spliced in, never bound (see `pgmq_notify::sql`). Its `.sql` file holds a
//! placeholder in braces where the queue goes, named for the queue's role and for what
//! goes there, and the function that runs it fills them in with [`fill`]:
//!
//! - `{worker_queue}`: the table, `pgmq.q_<queue>` (`pgmq_notify::sql::queue_table`);
//! - `{worker_queue_name}`: the queue's name, inside a string literal;
//! - `{worker_queue_visible}`: the CTE `visible AS (...)` that picks the messages a
//!   read leases (`pgmq_notify::sql::visible_cte`, shared with `PgmqClient::read`);
//! - `{worker_queue_notify}`: the `RETURNING` list that notifies each message sent,
//!   as `PgmqClient::send_with_notify` does (`pgmq_notify::sql::returning_with_notify`);
//! - the same with `results_queue` for the orchestration's results queue.
//!
//! No other brace pair in the statements is a placeholder (`'{}'::jsonb` and the
//! regular expressions' `{8}` are SQL), and comments name placeholders without their
//! braces: a fill may span lines, which would end the comment.

/// `text` with each `(placeholder, value)` of `fills` replaced.
pub(crate) fn fill(text: &str, fills: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (placeholder, value) in fills {
        debug_assert!(
            out.contains(placeholder),
            "{placeholder} is not in the statement"
        );
        // A fill may span lines: in a `--` comment, it would turn into code.
        debug_assert!(
            !out.lines()
                .any(|l| l.trim_start().starts_with("--") && l.contains(placeholder)),
            "{placeholder} is in a comment"
        );
        out = out.replace(placeholder, value);
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    /// Fails if a queue placeholder is left in a filled statement.
    pub(crate) fn assert_filled(statement: &str) {
        for role in ["{worker_queue", "{results_queue"] {
            assert!(
                !statement.contains(role),
                "unfilled placeholder in: {statement}"
            );
        }
    }

    #[test]
    fn fills_every_occurrence() {
        let filled = super::fill(
            "SELECT 1 FROM {worker_queue} a, {worker_queue} b WHERE x = '{}'",
            &[("{worker_queue}", "pgmq.q_x")],
        );
        assert_eq!(
            filled,
            "SELECT 1 FROM pgmq.q_x a, pgmq.q_x b WHERE x = '{}'"
        );
        assert_filled(&filled);
    }
}
