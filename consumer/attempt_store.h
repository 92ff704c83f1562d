// The consumer's bookkeeping in Postgres: starting attempts ("claims") and recording how they
// ended ("outcomes"), for many deliveries in one transaction (group commit; the attempt
// recorder decides what goes into a batch and when it commits).
//
// This is where MESSAGING.md's "exactly-once bookkeeping" is decided. Every rule works on the
// job row locked FOR UPDATE, so two consumers holding copies of one job's message cannot both
// start it, and a consumer whose attempt was already closed by someone else (declared lost)
// cannot overwrite that:
//
//   claim of a delivery, by the job's state:
//     scheduled / queued                  -> start attempt attempts+1
//     retrying, message for attempt n+1   -> start it; a copy for an older attempt is stale
//     running, live attempt, first copy   -> duplicate (ack and drop)
//     running, attempt's worker gone or
//       the delivery is redelivered       -> close that attempt as `lost`, start the next
//     any state, copy of an older message
//       (x-warren-attempt <= the last
//       attempt that ended but not `lost`) -> stale duplicate (never closes a live attempt)
//     succeeded / failed / cancelled      -> duplicate
//     no attempts left (after a lost one) -> job `failed`, dead letter `max_attempts`
//     no row at all                       -> the row is created from the message, then started
//   outcome of attempt n (ignored as stale unless the job is still `running` attempt n):
//     success                             -> attempt succeeded, job succeeded + result
//     retryable error / timeout, left     -> attempt failed|timed_out, job retrying, outbox row
//     retryable error / timeout, none left-> job failed, dead letter `max_attempts`
//     permanent error                     -> job failed, dead letter `permanent_failure`
//     cancelled (or cancel requested and
//       not a success)                    -> attempt cancelled, job cancelled
//     interrupted (shutdown, broker lost) -> attempt lost, job queued again (the message is
//                                            requeued and its redelivery starts attempt n+1)
//
// Dead letters of failed jobs are written to `dead_letters` here, in the transaction that fails
// the job, so "every failed job has exactly one dead letter" holds even if the consumer dies
// before its publish to the dead exchange is confirmed; the published copy carries the row's id
// (header x-warren-dead-letter-id) so the dead-letter recorder knows it is the same one.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "shared/amqp/field_table.h"
#include "shared/job_message.h"

namespace warren::consumer {

// Header naming the dead_letters row a published dead letter was recorded as.
inline constexpr char kDeadLetterIdHeader[] = "x-warren-dead-letter-id";

// How long a scheduled retry's outbox row is left to its consumer before a producer's relay
// publishes it instead (the consumer died between commit and confirm).
inline constexpr std::chrono::seconds kRetryOutboxLease{30};

// ---- Claims -------------------------------------------------------------------------------
struct ClaimRequest {
  std::uint64_t key = 0;  // the caller's handle for the delivery, echoed in the result
  JobMessage job;         // decoded from the message (creates the job row if there is none)
  bool redelivered = false;
  amqp::FieldTable headers;  // of the delivery: a dead letter written by the claim keeps them
};

enum class ClaimVerdict {
  kStart,      // run attempt `attempt` now; the job is `running` under it, owned by us
  kDuplicate,  // nothing to run: ack and drop (count warren_duplicate_deliveries_total)
  kGaveUp,     // attempts exhausted by a lost attempt: job failed, `dead_letter` written
  kCancelled,  // a lost attempt's job had cancel_requested: job cancelled, nothing to run
};

const char* to_string(ClaimVerdict verdict);

struct DeadLetterRecord {
  std::string id;      // dead_letters.id (UUID v7)
  std::string reason;  // max_attempts, permanent_failure
  std::string error_type;
  std::string error_message;  // at most 4 KiB (cut on a UTF-8 boundary)
  int attempts = 0;           // attempts the job made
  std::string failed_at;      // RFC 3339
};

struct ClaimResult {
  std::uint64_t key = 0;
  ClaimVerdict verdict = ClaimVerdict::kDuplicate;
  int attempt = 0;                         // kStart: the attempt to run
  std::optional<int> closed_lost_attempt;  // an attempt this claim closed as `lost`
  std::string duplicate_reason;            // kDuplicate: terminal, cancelled, running, stale
  // kStart: time from when the job became due (next_attempt_at, scheduled_for or created_at)
  // until this claim, for the queue wait histogram.
  std::chrono::milliseconds queue_wait{0};
  std::optional<DeadLetterRecord> dead_letter;  // kGaveUp
};

// ---- Outcomes -----------------------------------------------------------------------------
enum class AttemptEnd {
  kSucceeded,
  kFailed,            // retryable error (or an exception)
  kPermanentFailure,  // handler said so, or unknown job type
  kTimedOut,
  kCancelled,    // the job's cancellation stopped the handler
  kInterrupted,  // shutdown or broker connection lost: recorded `lost`, job back to `queued`
};

struct OutcomeRequest {
  std::uint64_t key = 0;
  JobMessage job;  // as claimed (id, queue, type, max_attempts, backoff, ...)
  int attempt = 0;
  AttemptEnd end = AttemptEnd::kSucceeded;
  nlohmann::json result;  // kSucceeded: the handler's result (null for none)
  std::string error_type;
  std::string error_message;
  std::optional<std::chrono::milliseconds> requested_retry_delay;  // wins over the backoff
  amqp::FieldTable headers;  // of the delivery: the dead letter keeps them (x-death included)
};

enum class OutcomeVerdict {
  kSucceeded,
  kRetryScheduled,  // publish the retry (outbox_id) with retry_delay, then ack
  kDeadLettered,    // publish the dead letter, then ack
  kCancelled,
  kRequeued,  // interrupted: nack with requeue
  kStale,     // the attempt was already closed (declared lost elsewhere): nothing was written
};

const char* to_string(OutcomeVerdict verdict);

struct OutcomeResult {
  std::uint64_t key = 0;
  OutcomeVerdict verdict = OutcomeVerdict::kStale;
  std::string attempt_outcome;  // as written: succeeded, failed, timed_out, ... ("" when stale)
  std::chrono::milliseconds retry_delay{0};  // kRetryScheduled
  // kRetryScheduled: when the retry is due (jobs.next_attempt_at). The publish aims at this
  // time, not at "now + retry_delay", so the commit's latency is not added to the wait.
  std::chrono::system_clock::time_point next_attempt_at;
  std::int64_t outbox_id = 0;                   // kRetryScheduled: delete after the confirm
  std::optional<DeadLetterRecord> dead_letter;  // kDeadLettered
};

// ---- The batch ----------------------------------------------------------------------------
struct BatchResult {
  std::vector<OutcomeResult> outcomes;  // in request order
  std::vector<ClaimResult> claims;      // in request order
};

struct AttemptStoreSettings {
  std::string worker_id;
  // dead_letters.exchange of the dead letters written here: where the consumer publishes them
  // (TopologyNames::dead_exchange(), "<prefix>.dead"); empty leaves the column NULL. Their
  // routing_key is the job's queue.
  std::string dead_exchange;
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

// Writes outcomes, then claims (an outcome and a claim for the same job in one batch see each
// other in that order), locking every job involved first in id order so that consumers never
// deadlock each other. Throws pqxx errors; the caller retries the whole batch on
// broken_connection / transaction_rollback (nothing is committed by this function).
BatchResult write_attempt_batch(pqxx::work& tx, const AttemptStoreSettings& settings,
                                const std::vector<OutcomeRequest>& outcomes,
                                const std::vector<ClaimRequest>& claims);

// Removes outbox rows of retries whose publish the broker confirmed.
void delete_outbox_rows(pqxx::work& tx, const std::vector<std::int64_t>& ids);

// The headers of the dead-letter message for a failed job: the delivery's headers (x-death
// kept) plus x-warren-reason, -error-type, -error-message, -failed-at, -attempt (the last attempt
// made) and x-warren-dead-letter-id. Also what the dead_letters row stores as `headers`.
amqp::FieldTable dead_letter_headers(const amqp::FieldTable& delivery_headers,
                                     const DeadLetterRecord& record);

}  // namespace warren::consumer
