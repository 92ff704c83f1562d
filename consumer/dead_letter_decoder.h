// What the dead-letter recorder makes of one message from `warren.dead-letters`: the
// `dead_letters` row it becomes. Pure (no I/O), so every rule here is unit-tested.
//
// Two kinds of message arrive on that queue (MESSAGING.md):
//   - dead letters a consumer published itself (max attempts, permanent failure). The consumer
//     wrote their row in the transaction that failed the job and tagged the message with the
//     row's id (x-warren-dead-letter-id); recording them again is a no-op.
//   - messages the broker dead-lettered out of a work queue: rejected by a consumer (poison, or a
//     job the database refused), redelivered WARREN_DELIVERY_LIMIT times, or expired. Only the
//     recorder ever sees these, so it alone writes their row, from the message itself.
//
// Idempotency: every row has a message_key, unique in the table, that a redelivery of the same
// message reproduces: "<job id>/<attempts>" for the consumer's own dead letters (the key the
// consumer wrote), a SHA-256 of the message's stable content for the broker's. The broker's
// x-death (queue, reason, time, count) makes two dead-letterings of one job differ; only two
// byte-identical messages dead-lettered within the same second share a key, and those are told
// apart by the redelivered flag (see distinct_message_key()).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "shared/amqp/message.h"
#include "shared/retry_policy.h"

namespace warren::consumer {

struct DeadLetterRow {
  std::string id;                    // dead_letters.id: the consumer's (header) or a new UUID v7
  std::string message_key;           // see above
  bool written_by_consumer = false;  // carries x-warren-dead-letter-id
  bool redelivered = false;          // the recorder saw this message before (maybe recorded it)
  // "" when unknown (stored as null): a poison message may have none of them.
  std::string job_id, type, queue;
  std::string reason;  // max_attempts, permanent_failure, delivery_limit, poison, expired
  std::string error_type, error_message;
  std::optional<int> attempts;   // nullopt: the job's own count, filled in by the store
  std::string dead_lettered_at;  // RFC 3339 ms
  // The job payload when the body is a job message whose payload jsonb can hold; otherwise the
  // body's exact bytes in raw_body (poison messages keep their raw bytes).
  std::optional<std::string> payload_json;
  std::optional<std::string> raw_body;
  nlohmann::json headers = nlohmann::json::object();  // every header, x-death included
  std::string exchange, routing_key;                  // how it reached the dead-letter queue
  // The broker gave up on the job's message (delivery limit, expiry): nothing will run the job
  // again, so the store marks it failed (MESSAGING.md "Delivery limit").
  bool fails_job = false;
};

DeadLetterRow decode_dead_letter(const amqp::Delivery& delivery, const std::string& amqp_prefix,
                                 const Backoff& default_backoff,
                                 std::chrono::system_clock::time_point now);

// The key for a first delivery (not redelivered) whose content key is already taken. A message
// the recorder has recorded was delivered before, so its every later delivery is marked
// redelivered; a first delivery with a taken key is therefore a different message with the
// same bytes (a client published the same poison twice in one second) and must get its own row.
std::string distinct_message_key(const DeadLetterRow& row);

}  // namespace warren::consumer
