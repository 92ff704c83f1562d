-- Schema version 2: what the consumer (issue 3) needs beyond version 1.
--
-- * workers.stopped_at: a consumer that shut down cleanly says so, so GET /v1/workers can tell
--   "stopped" (left on purpose) from "gone" (no heartbeat for 3 intervals: killed, partitioned).
-- * outbox.kind: the outbox also carries a consumer's scheduled retry, written in the same
--   transaction as the failed attempt (consumer/attempt_store.cpp). The consumer publishes it
--   at once and deletes the row after the broker's confirm; if the consumer dies in between,
--   a producer's relay publishes it when available_at (a lease) passes. 'job' rows are the
--   producer's own first publishes. Both are published the same way (the job's message with
--   attempt = attempts + 1), so the relay does not need to tell them apart; the column is for
--   people reading the table and for metrics.
ALTER TABLE workers ADD COLUMN stopped_at timestamptz;

ALTER TABLE outbox ADD COLUMN kind text NOT NULL DEFAULT 'job' CHECK (kind IN ('job', 'retry'));
