-- Tasker's own schema. Every object lives in `tasker`; queries qualify names, so nothing
-- depends on the role's name or its search_path.
CREATE SCHEMA IF NOT EXISTS tasker;

-- UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version 7, random rest.
-- PostgreSQL 15 has no built-in generator; Rust code generates v7 ids itself and this
-- function serves SQL defaults.
CREATE FUNCTION tasker.uuid_generate_v7() RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL SAFE AS $$
DECLARE
    unix_ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000);
    bytes bytea := uuid_send(gen_random_uuid());
BEGIN
    bytes := overlay(bytes PLACING substring(int8send(unix_ms) FROM 3) FROM 1 FOR 6);
    bytes := set_byte(bytes, 6, (get_byte(bytes, 6) & 15) | 112);
    RETURN encode(bytes, 'hex')::uuid;
END
$$;

CREATE TABLE tasker.task_namespaces (
    task_namespace_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    name varchar(29) NOT NULL,
    description text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_namespaces_name_key UNIQUE (name),
    CONSTRAINT task_namespaces_name_format CHECK (name ~ '^[a-z0-9_]{1,29}$')
);

-- The template registry: one row per (namespace, name, version).
CREATE TABLE tasker.named_tasks (
    named_task_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    task_namespace_uuid uuid NOT NULL REFERENCES tasker.task_namespaces,
    name varchar(64) NOT NULL,
    version varchar(32) NOT NULL,
    description text,
    -- The whole validated template, as JSON.
    configuration jsonb NOT NULL,
    -- SHA-256 of the canonical configuration: re-registering the same template is a no-op.
    content_hash varchar(64) NOT NULL,
    identity_strategy varchar(16) NOT NULL DEFAULT 'strict',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT named_tasks_namespace_name_version_key UNIQUE (task_namespace_uuid, name, version),
    CONSTRAINT named_tasks_identity_strategy_check
        CHECK (identity_strategy IN ('strict', 'caller_provided', 'always_unique'))
);

CREATE TABLE tasker.named_steps (
    named_step_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    name varchar(128) NOT NULL,
    description text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT named_steps_name_key UNIQUE (name)
);

CREATE TABLE tasker.tasks (
    task_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    named_task_uuid uuid NOT NULL REFERENCES tasker.named_tasks,
    requested_at timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    initiator varchar(128) NOT NULL DEFAULT 'unknown',
    source_system varchar(128) NOT NULL DEFAULT 'unknown',
    reason varchar(500) NOT NULL DEFAULT 'unspecified',
    tags jsonb NOT NULL DEFAULT '[]',
    context jsonb NOT NULL DEFAULT '{}',
    identity_hash varchar(128) NOT NULL,
    priority integer NOT NULL DEFAULT 0,
    correlation_id uuid NOT NULL,
    parent_correlation_id uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tasks_priority_range CHECK (priority BETWEEN -100 AND 100)
);
CREATE UNIQUE INDEX tasks_identity_hash_key ON tasker.tasks (identity_hash);
CREATE INDEX tasks_named_task_idx ON tasker.tasks (named_task_uuid);
CREATE INDEX tasks_correlation_idx ON tasker.tasks (correlation_id);

CREATE TABLE tasker.workflow_steps (
    workflow_step_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    task_uuid uuid NOT NULL REFERENCES tasker.tasks ON DELETE CASCADE,
    named_step_uuid uuid NOT NULL REFERENCES tasker.named_steps,
    -- The step definition is copied from the template when the task is created, so a
    -- re-registered template never changes a task that is already running.
    handler_callable varchar(255) NOT NULL,
    inputs jsonb NOT NULL DEFAULT '{}',
    retryable boolean NOT NULL DEFAULT true,
    max_attempts integer NOT NULL DEFAULT 3,
    backoff varchar(16) NOT NULL DEFAULT 'exponential',
    backoff_base_ms integer NOT NULL DEFAULT 1000,
    max_backoff_ms integer NOT NULL DEFAULT 30000,
    timeout_seconds integer,
    -- The attempt number doubles as the fencing token of a worker's claim, so it only
    -- ever grows. An operator's reset_for_retry moves retry_baseline up to it instead:
    -- attempts - retry_baseline is what the retry policy counts.
    attempts integer NOT NULL DEFAULT 0,
    retry_baseline integer NOT NULL DEFAULT 0,
    last_attempted_at timestamptz,
    next_retry_at timestamptz,
    -- The StepExecutionResult of the latest attempt.
    results jsonb,
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_steps_task_named_step_key UNIQUE (task_uuid, named_step_uuid),
    CONSTRAINT workflow_steps_attempts_check
        CHECK (attempts >= 0 AND max_attempts >= 0 AND retry_baseline BETWEEN 0 AND attempts),
    CONSTRAINT workflow_steps_backoff_check
        CHECK (backoff IN ('none', 'linear', 'exponential', 'fibonacci')),
    CONSTRAINT workflow_steps_backoff_ms_check CHECK (backoff_base_ms >= 0 AND max_backoff_ms >= 0),
    CONSTRAINT workflow_steps_timeout_check CHECK (timeout_seconds IS NULL OR timeout_seconds > 0)
);

-- from_step_uuid (parent) provides to to_step_uuid (child).
CREATE TABLE tasker.workflow_step_edges (
    workflow_step_edge_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    from_step_uuid uuid NOT NULL REFERENCES tasker.workflow_steps ON DELETE CASCADE,
    to_step_uuid uuid NOT NULL REFERENCES tasker.workflow_steps ON DELETE CASCADE,
    name varchar(64) NOT NULL DEFAULT 'provides',
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_step_edges_from_to_name_key UNIQUE (from_step_uuid, to_step_uuid, name),
    CONSTRAINT workflow_step_edges_no_self_loop CHECK (from_step_uuid <> to_step_uuid)
);
CREATE INDEX workflow_step_edges_to_idx ON tasker.workflow_step_edges (to_step_uuid);

-- Append-only state history. The row with most_recent = true is the current state;
-- the partial unique index allows exactly one. A transition is written by flipping the
-- current row's most_recent only while its to_state is the expected one (compare and
-- swap), so two writers racing from the same state cannot both win.
CREATE TABLE tasker.task_transitions (
    task_transition_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    task_uuid uuid NOT NULL REFERENCES tasker.tasks ON DELETE CASCADE,
    to_state varchar(64) NOT NULL,
    from_state varchar(64),
    metadata jsonb NOT NULL DEFAULT '{}',
    sort_key integer NOT NULL,
    most_recent boolean NOT NULL DEFAULT false,
    processor_uuid uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT task_transitions_sort_key_key UNIQUE (task_uuid, sort_key),
    CONSTRAINT task_transitions_first_has_no_from CHECK ((sort_key = 1) = (from_state IS NULL)),
    CONSTRAINT task_transitions_to_state_check CHECK (to_state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
        'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures',
        'complete', 'error', 'cancelled', 'resolved_manually')),
    CONSTRAINT task_transitions_from_state_check CHECK (from_state IS NULL OR from_state IN (
        'pending', 'initializing', 'enqueuing_steps', 'steps_in_process', 'evaluating_results',
        'waiting_for_dependencies', 'waiting_for_retry', 'blocked_by_failures',
        'complete', 'error', 'cancelled', 'resolved_manually')),
    -- Nothing leaves a terminal state.
    CONSTRAINT task_transitions_terminal_is_final
        CHECK (from_state IS NULL OR from_state NOT IN ('complete', 'error', 'cancelled', 'resolved_manually'))
);
CREATE UNIQUE INDEX task_transitions_most_recent_key
    ON tasker.task_transitions (task_uuid) WHERE most_recent;
CREATE INDEX task_transitions_current_state_idx
    ON tasker.task_transitions (to_state, task_uuid) WHERE most_recent;

CREATE TABLE tasker.workflow_step_transitions (
    workflow_step_transition_uuid uuid PRIMARY KEY DEFAULT tasker.uuid_generate_v7(),
    workflow_step_uuid uuid NOT NULL REFERENCES tasker.workflow_steps ON DELETE CASCADE,
    to_state varchar(64) NOT NULL,
    from_state varchar(64),
    metadata jsonb NOT NULL DEFAULT '{}',
    sort_key integer NOT NULL,
    most_recent boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT workflow_step_transitions_sort_key_key UNIQUE (workflow_step_uuid, sort_key),
    CONSTRAINT workflow_step_transitions_first_has_no_from CHECK ((sort_key = 1) = (from_state IS NULL)),
    CONSTRAINT workflow_step_transitions_to_state_check CHECK (to_state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry',
        'complete', 'error', 'cancelled', 'resolved_manually')),
    CONSTRAINT workflow_step_transitions_from_state_check CHECK (from_state IS NULL OR from_state IN (
        'pending', 'enqueued', 'in_progress', 'enqueued_for_orchestration',
        'enqueued_as_error_for_orchestration', 'waiting_for_retry',
        'complete', 'error', 'cancelled', 'resolved_manually')),
    CONSTRAINT workflow_step_transitions_terminal_is_final
        CHECK (from_state IS NULL OR from_state NOT IN ('complete', 'cancelled', 'resolved_manually'))
);
CREATE UNIQUE INDEX workflow_step_transitions_most_recent_key
    ON tasker.workflow_step_transitions (workflow_step_uuid) WHERE most_recent;
