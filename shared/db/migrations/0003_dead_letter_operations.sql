-- Schema version 3: what dead-letter operations (issue 4) need beyond version 2.
--
-- * dead_letters_by_time: GET /v1/dead-letters?state=all pages newest first over every state;
--   the per-state index of version 1 cannot serve that order.
-- * bulk_operation_items_pending: a bulk operation takes its next chunk of pending items by
--   (operation_id, dead_letter_id); done items drop out of this index as the run advances, so
--   each chunk is a short index range whatever the operation's size.
-- * dead_letters_resolved: retention removes dead letters an operator resolved (requeued or
--   discarded) once they are older than WARREN_RETENTION_DISCARDED, oldest first.
CREATE INDEX dead_letters_by_time ON dead_letters (dead_lettered_at DESC, id DESC);

CREATE INDEX bulk_operation_items_pending ON bulk_operation_items (operation_id, dead_letter_id)
  WHERE state = 'pending';

CREATE INDEX dead_letters_resolved ON dead_letters (coalesce(discarded_at, requeued_at))
  WHERE state IN ('requeued', 'discarded');
