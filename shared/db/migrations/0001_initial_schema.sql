-- Warren's schema, version 1: jobs, their attempts, the outbox, dead letters, workers and
-- bulk operations. Applied by `warrenctl migrate` or the producer at start (db/migrator.cpp)
-- inside one transaction, under an advisory lock.
--
-- Sizing notes (a deployment with 100 million attempts):
-- * job_attempts is reached only through its job, so its primary key (job_id, attempt) is its
--   only index: no secondary index to maintain on the hottest insert path. It is pruned with
--   its job (ON DELETE CASCADE, driven by the primary key) by the retention cleaner, which
--   deletes finished jobs in small batches (WARREN_RETENTION_*). If deletes ever cannot keep up,
--   the next step is range partitioning jobs and attempts by creation month and dropping whole
--   partitions; not done yet because it forbids the foreign key and the unique idempotency key.
-- * jobs carries one index per list filter of API.md, each ending in (created_at, id) so that
--   "newest first" keyset pagination is an index range scan whatever the filter.
-- * Text columns with CHECK constraints instead of enum types: adding a status later is an
--   ALTER of a constraint, not a type rewrite.

-- Times as API.md writes them: RFC 3339 UTC with milliseconds.
CREATE FUNCTION warren_ts(t timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

CREATE TABLE jobs (
  id               uuid        PRIMARY KEY,
  type             text        NOT NULL,
  queue            text        NOT NULL,
  status           text        NOT NULL CHECK (status IN ('scheduled', 'queued', 'running',
                                   'retrying', 'succeeded', 'failed', 'cancelled')),
  payload          jsonb       NOT NULL,
  metadata         jsonb       NOT NULL DEFAULT '{}',
  result           jsonb,
  attempts         integer     NOT NULL DEFAULT 0,  -- attempts started so far
  max_attempts     integer     NOT NULL CHECK (max_attempts >= 1),
  timeout_ms       integer,
  backoff          jsonb,                           -- null: the deployment's default
  last_error       jsonb,
  idempotency_key  text        UNIQUE,              -- the constraint that makes replays race-free
  request_hash     text,                            -- fingerprint of the request (same key, same body?)
  traceparent      text,                            -- W3C trace context carried into messages
  created_at       timestamptz NOT NULL,
  scheduled_for    timestamptz,
  started_at       timestamptz,
  finished_at      timestamptz,
  next_attempt_at  timestamptz,
  updated_at       timestamptz NOT NULL,
  cancel_requested boolean     NOT NULL DEFAULT false
);

CREATE INDEX jobs_by_created ON jobs (created_at DESC, id DESC);
CREATE INDEX jobs_by_status ON jobs (status, created_at DESC, id DESC);
CREATE INDEX jobs_by_type ON jobs (type, created_at DESC, id DESC);
CREATE INDEX jobs_by_queue ON jobs (queue, created_at DESC, id DESC);
CREATE INDEX jobs_by_metadata ON jobs USING gin (metadata jsonb_path_ops);
-- Retention walks finished jobs oldest first, per terminal status.
CREATE INDEX jobs_finished ON jobs (status, finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE job_attempts (
  job_id         uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  attempt        integer     NOT NULL CHECK (attempt >= 1),
  outcome        text        CHECK (outcome IN ('succeeded', 'failed', 'permanent_failure',
                                 'timed_out', 'lost', 'cancelled')),  -- null while running
  error          jsonb,
  started_at     timestamptz NOT NULL,
  finished_at    timestamptz,
  worker         text        NOT NULL,
  retry_delay_ms integer,
  PRIMARY KEY (job_id, attempt)
);

-- Messages committed but not yet confirmed by the broker (MESSAGING.md guarantee 1). A row is
-- written in the same transaction as its job and deleted once the broker confirmed the publish;
-- the outbox relay of every producer replica drains it with FOR UPDATE SKIP LOCKED.
-- available_at: when the relay may publish it (jobs more than an hour ahead wait here and move
-- into the broker's delay infrastructure when they come within the hour).
-- deliver_at: when the job must reach its work queue (null: at once).
CREATE TABLE outbox (
  id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id       uuid        NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
  available_at timestamptz NOT NULL,
  deliver_at   timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX outbox_by_available ON outbox (available_at);
CREATE INDEX outbox_by_job ON outbox (job_id);

-- Every message that left the normal flow, with everything needed to inspect and replay it.
-- No foreign key to jobs: poison messages have no job, and a dead letter outlives nothing it
-- points to (failed jobs are kept while they have a dead letter in state 'dead').
CREATE TABLE dead_letters (
  id               uuid        PRIMARY KEY,
  message_key      text        NOT NULL UNIQUE,  -- makes recording idempotent on redelivery
  job_id           uuid,
  type             text,
  queue            text,
  reason           text        NOT NULL CHECK (reason IN ('max_attempts', 'permanent_failure',
                                   'delivery_limit', 'poison', 'expired')),
  error_type       text,
  error_message    text,
  attempts         integer,
  dead_lettered_at timestamptz NOT NULL,
  recorded_at      timestamptz NOT NULL DEFAULT now(),
  state            text        NOT NULL DEFAULT 'dead'
                               CHECK (state IN ('dead', 'requeued', 'discarded')),
  payload          jsonb,
  raw_body         bytea,                       -- only when the body is not JSON (poison)
  headers          jsonb       NOT NULL DEFAULT '{}',
  exchange         text,
  routing_key      text,
  requeued_at      timestamptz,
  requeued_by      text,
  requeued_job_id  uuid,
  discarded_at     timestamptz,
  discarded_by     text
);
CREATE INDEX dead_letters_by_state ON dead_letters (state, dead_lettered_at DESC, id DESC);
CREATE INDEX dead_letters_groups ON dead_letters (state, type, queue, reason, error_type);
CREATE INDEX dead_letters_by_job ON dead_letters (job_id) WHERE job_id IS NOT NULL;

-- Who did what to a dead letter, when and why; never deleted before its dead letter.
CREATE TABLE dead_letter_audit (
  id             bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  dead_letter_id uuid        NOT NULL REFERENCES dead_letters (id) ON DELETE CASCADE,
  action         text        NOT NULL CHECK (action IN ('requeued', 'discarded')),
  actor          text        NOT NULL,
  reason         text,
  operation_id   uuid,
  details        jsonb       NOT NULL DEFAULT '{}',  -- e.g. the new attempt numbers
  at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX dead_letter_audit_by_letter ON dead_letter_audit (dead_letter_id);

-- One row per consumer process, refreshed every WARREN_HEARTBEAT_MS.
CREATE TABLE workers (
  id                text        PRIMARY KEY,
  host              text        NOT NULL,
  queues            text[]      NOT NULL,
  concurrency       integer     NOT NULL,
  in_flight         integer     NOT NULL DEFAULT 0,
  processed         bigint      NOT NULL DEFAULT 0,
  failed            bigint      NOT NULL DEFAULT 0,
  heartbeat_ms      integer     NOT NULL,
  version           text        NOT NULL,
  started_at        timestamptz NOT NULL,
  last_heartbeat_at timestamptz NOT NULL
);

-- Bulk requeue/discard runs as a durable operation: the ids it matched at start are frozen in
-- bulk_operation_items, so new failures are not swept in and a restarted producer resumes.
CREATE TABLE bulk_operations (
  id           uuid        PRIMARY KEY,
  kind         text        NOT NULL CHECK (kind IN ('requeue', 'discard')),
  state        text        NOT NULL CHECK (state IN ('running', 'done', 'failed')),
  filter       jsonb       NOT NULL,
  params       jsonb       NOT NULL DEFAULT '{}',
  reason       text,
  matched      integer     NOT NULL,
  done         integer     NOT NULL DEFAULT 0,
  failed       integer     NOT NULL DEFAULT 0,
  requested_by text        NOT NULL,
  last_error   text,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz,
  updated_at   timestamptz NOT NULL
);
CREATE INDEX bulk_operations_running ON bulk_operations (started_at) WHERE state = 'running';

CREATE TABLE bulk_operation_items (
  operation_id   uuid    NOT NULL REFERENCES bulk_operations (id) ON DELETE CASCADE,
  dead_letter_id uuid    NOT NULL,
  state          text    NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'done', 'failed')),
  error          text,
  PRIMARY KEY (operation_id, dead_letter_id)
);
