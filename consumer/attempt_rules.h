// The decisions of the attempt store (attempt_store.h), as pure functions over a job's state, so
// that the rule table at the top of attempt_store.h is tested case by case without a database.
// attempt_store.cpp reads each job's state into a JobSnapshot (with the job row locked), asks
// decide_claim / decide_outcome what to do, writes that, and advances the snapshot with
// apply_claim / apply_outcome so that a later request for the same job in the same batch sees
// the effect of the earlier one.
//
// Also here: the small text and delay helpers whose exact results the tests pin down (error
// text fit for Postgres and headers, the retry delay).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include "consumer/attempt_store.h"
#include "shared/retry_policy.h"

namespace warren::consumer {

enum class JobStatus { kScheduled, kQueued, kRunning, kRetrying, kSucceeded, kFailed, kCancelled };

const char* to_string(JobStatus status);
// nullopt for text that is not one of jobs.status's values.
std::optional<JobStatus> parse_job_status(std::string_view text);

// What the rules need to know about a job, read with its row locked.
struct JobSnapshot {
  JobStatus status = JobStatus::kQueued;
  int attempts = 0;  // attempts started so far; the current one when running
  int max_attempts = 1;
  bool cancel_requested = false;
  // Attempt `attempts` is recorded in job_attempts and has no outcome yet.
  bool attempt_open = false;
  // That attempt's worker has a workers row, not stopped, with a heartbeat newer than three of
  // its own intervals.
  bool worker_alive = false;
  // The highest attempt that ended other than `lost` (0: none). Each such end is followed by a
  // new message for attempt last_settled + 1 (the retry, or an operator's requeue), or by no
  // message at all (terminal); a lost attempt's successor runs from the same message. So a copy
  // whose x-warren-attempt is at most this number is from before the current message: stale.
  int last_settled_attempt = 0;
};

// ---- Claims -------------------------------------------------------------------------------
enum class LostCause {
  kWorkerGone,   // the attempt's worker stopped or stopped heartbeating
  kRedelivered,  // the broker redelivered the message: its consumer lost it
};

struct ClaimDecision {
  ClaimVerdict verdict = ClaimVerdict::kDuplicate;
  std::string duplicate_reason;  // kDuplicate: terminal, cancelled, running, stale
  // The running attempt `attempts` is closed as lost first (any verdict but kDuplicate).
  bool close_lost = false;
  LostCause lost_cause = LostCause::kWorkerGone;
};

// A delivery of the job's message that says it starts attempt `message_attempt`.
ClaimDecision decide_claim(const JobSnapshot& job, int message_attempt, bool redelivered);

// The job as the decision leaves it. A started attempt belongs to this consumer: alive.
void apply_claim(JobSnapshot& job, const ClaimDecision& decision);

// ---- Outcomes -----------------------------------------------------------------------------
struct OutcomeDecision {
  OutcomeVerdict verdict = OutcomeVerdict::kStale;
  std::string attempt_outcome;  // job_attempts.outcome to write ("" when stale)
  JobStatus job_status = JobStatus::kRunning;
  std::string dead_letter_reason;  // kDeadLettered: max_attempts or permanent_failure
};

OutcomeDecision decide_outcome(const JobSnapshot& job, int attempt, AttemptEnd end);

void apply_outcome(JobSnapshot& job, const OutcomeDecision& decision);

// ---- Helpers ------------------------------------------------------------------------------
// MESSAGING.md: x-warren-error-message is at most 4 KiB. Every error text is stored at most
// this long, so the attempt log, the job and the dead letter say the same thing.
inline constexpr std::size_t kMaxErrorTextBytes = 4096;

// Text that Postgres (text and jsonb) and AMQP headers accept: malformed UTF-8 becomes U+FFFD,
// NUL bytes are dropped, and the result is cut to at most `max_bytes` on a character boundary.
std::string clean_text(std::string_view text, std::size_t max_bytes = kMaxErrorTextBytes);

// clean_text() on every string (keys included, not cut) of an outside JSON value (a handler's
// result, delivery headers) before it goes into jsonb: one bad string must not fail a batch.
void scrub_text(nlohmann::json& value);

inline std::chrono::milliseconds clamp_requested_delay(std::chrono::milliseconds requested) {
  return std::chrono::milliseconds(
      std::clamp<std::int64_t>(requested.count(), 0, kMaxBackoffMaxMs));
}

// The wait before the retry of the failed `attempt`: the handler's requested delay when it
// asked for one (clamped to 0 .. kMaxBackoffMaxMs, what job_attempts.retry_delay_ms holds),
// else the job's backoff with equal jitter.
template <std::uniform_random_bit_generator Rng>
std::chrono::milliseconds retry_delay(const Backoff& backoff, int attempt,
                                      std::optional<std::chrono::milliseconds> requested,
                                      Rng& rng) {
  if (requested) return clamp_requested_delay(*requested);
  return std::chrono::milliseconds(jittered_delay_ms(backoff, attempt, rng));
}

// The same with the per-thread random source of retry_policy.h.
std::chrono::milliseconds retry_delay(const Backoff& backoff, int attempt,
                                      std::optional<std::chrono::milliseconds> requested);

}  // namespace warren::consumer
