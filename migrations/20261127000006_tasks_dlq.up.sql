-- The dead letter queue is an investigation tracker: a task that was given up on (for
-- example, stale past its threshold) gets an entry with a snapshot of how it looked;
-- the task itself stays in tasker.tasks. At most one pending entry per task.
CREATE TABLE tasker.tasks_dlq (
    dlq_entry_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    task_uuid uuid NOT NULL REFERENCES tasker.tasks ON DELETE CASCADE,
    original_state varchar(64) NOT NULL,
    dlq_reason varchar(32) NOT NULL,
    dlq_timestamp timestamptz NOT NULL DEFAULT now(),
    resolution_status varchar(32) NOT NULL DEFAULT 'pending',
    resolution_timestamp timestamptz,
    resolution_notes text,
    resolved_by varchar(255),
    task_snapshot jsonb NOT NULL,
    metadata jsonb NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_dlq_reason_check CHECK (dlq_reason IN (
        'staleness_timeout', 'max_retries_exceeded', 'dependency_cycle_detected',
        'worker_unavailable', 'manual_dlq')),
    CONSTRAINT tasks_dlq_resolution_status_check CHECK (resolution_status IN (
        'pending', 'manually_resolved', 'permanently_failed', 'cancelled'))
);
CREATE UNIQUE INDEX tasks_dlq_one_pending_per_task
    ON tasker.tasks_dlq (task_uuid) WHERE resolution_status = 'pending';
CREATE INDEX tasks_dlq_status_idx ON tasker.tasks_dlq (resolution_status, dlq_timestamp);
