// See attempt_rules.h; the rule table itself is the comment at the top of attempt_store.h.
#include "consumer/attempt_rules.h"

#include <array>
#include <utility>

namespace warren::consumer {
namespace {

constexpr std::array<std::pair<JobStatus, const char*>, 7> kStatusNames{{
    {JobStatus::kScheduled, "scheduled"},
    {JobStatus::kQueued, "queued"},
    {JobStatus::kRunning, "running"},
    {JobStatus::kRetrying, "retrying"},
    {JobStatus::kSucceeded, "succeeded"},
    {JobStatus::kFailed, "failed"},
    {JobStatus::kCancelled, "cancelled"},
}};

ClaimDecision duplicate(const char* reason) {
  ClaimDecision decision;
  decision.verdict = ClaimVerdict::kDuplicate;
  decision.duplicate_reason = reason;
  return decision;
}

// Whether a delivery may run the job at all, before attempts and cancellation are looked at:
// nullopt when it may, else the duplicate it is.
std::optional<ClaimDecision> refuse_claim(const JobSnapshot& job, int message_attempt,
                                          bool redelivered) {
  switch (job.status) {
    case JobStatus::kSucceeded:
    case JobStatus::kFailed:
      return duplicate("terminal");
    case JobStatus::kCancelled:
      return duplicate("cancelled");
    default:
      break;
  }
  // A copy of a message that an attempt already answered: the job has moved on to a newer
  // message (a retry, a requeue), which is the one to run it.
  if (message_attempt <= job.last_settled_attempt) return duplicate("stale");
  if (job.status == JobStatus::kRetrying && message_attempt <= job.attempts) {
    return duplicate("stale");
  }
  // The current message, while its attempt runs on a consumer that still holds it.
  if (job.status == JobStatus::kRunning && job.attempt_open && job.worker_alive && !redelivered) {
    return duplicate("running");
  }
  return std::nullopt;
}

OutcomeDecision ending(OutcomeVerdict verdict, const char* attempt_outcome, JobStatus status,
                       const char* dead_letter_reason = "") {
  return OutcomeDecision{verdict, attempt_outcome, status, dead_letter_reason};
}

const char* failure_outcome(AttemptEnd end) {
  return end == AttemptEnd::kTimedOut ? "timed_out" : "failed";
}

// Appends the code point starting at text[i] when it is well-formed UTF-8 (RFC 3629: shortest
// form, no surrogates, at most U+10FFFF) and returns its length; 0 when it is not.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  const unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  unsigned char low = 0x80, high = 0xBF;  // bounds of the second byte
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    if (lead == 0xE0) low = 0xA0;
    if (lead == 0xED) high = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    if (lead == 0xF0) low = 0x90;
    if (lead == 0xF4) high = 0x8F;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  if (byte(i + 1) < low || byte(i + 1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return 0;
  }
  return length;
}

}  // namespace

const char* to_string(JobStatus status) {
  for (const auto& [value, name] : kStatusNames) {
    if (value == status) return name;
  }
  return "unknown";
}

std::optional<JobStatus> parse_job_status(std::string_view text) {
  for (const auto& [value, name] : kStatusNames) {
    if (text == name) return value;
  }
  return std::nullopt;
}

ClaimDecision decide_claim(const JobSnapshot& job, int message_attempt, bool redelivered) {
  if (auto refused = refuse_claim(job, message_attempt, redelivered)) return *refused;
  ClaimDecision decision;
  // Running here means its attempt is no longer held by a live consumer: that attempt is over.
  decision.close_lost = job.status == JobStatus::kRunning && job.attempt_open;
  decision.lost_cause = job.worker_alive ? LostCause::kRedelivered : LostCause::kWorkerGone;
  if (job.cancel_requested) {
    decision.verdict = ClaimVerdict::kCancelled;
  } else if (job.attempts >= job.max_attempts) {
    decision.verdict = ClaimVerdict::kGaveUp;
  } else {
    decision.verdict = ClaimVerdict::kStart;
  }
  return decision;
}

void apply_claim(JobSnapshot& job, const ClaimDecision& decision) {
  if (decision.verdict == ClaimVerdict::kDuplicate) return;
  if (decision.close_lost) job.attempt_open = false;
  switch (decision.verdict) {
    case ClaimVerdict::kStart:
      job.status = JobStatus::kRunning;
      job.attempts += 1;
      job.attempt_open = true;
      job.worker_alive = true;
      break;
    case ClaimVerdict::kGaveUp:
      job.status = JobStatus::kFailed;
      break;
    case ClaimVerdict::kCancelled:
      job.status = JobStatus::kCancelled;
      break;
    case ClaimVerdict::kDuplicate:
      break;
  }
}

OutcomeDecision decide_outcome(const JobSnapshot& job, int attempt, AttemptEnd end) {
  // Only the attempt the job is running may end it; any other was closed by someone else.
  if (job.status != JobStatus::kRunning || job.attempts != attempt || !job.attempt_open) {
    return ending(OutcomeVerdict::kStale, "", job.status);
  }
  if (end == AttemptEnd::kSucceeded) {
    return ending(OutcomeVerdict::kSucceeded, "succeeded", JobStatus::kSucceeded);
  }
  // A cancellation that was asked for ends the job whatever else stopped the handler.
  if (end == AttemptEnd::kCancelled || job.cancel_requested) {
    return ending(OutcomeVerdict::kCancelled, "cancelled", JobStatus::kCancelled);
  }
  switch (end) {
    case AttemptEnd::kInterrupted:
      return ending(OutcomeVerdict::kRequeued, "lost", JobStatus::kQueued);
    case AttemptEnd::kPermanentFailure:
      return ending(OutcomeVerdict::kDeadLettered, "permanent_failure", JobStatus::kFailed,
                    "permanent_failure");
    case AttemptEnd::kFailed:
    case AttemptEnd::kTimedOut:
      if (job.attempts < job.max_attempts) {
        return ending(OutcomeVerdict::kRetryScheduled, failure_outcome(end), JobStatus::kRetrying);
      }
      return ending(OutcomeVerdict::kDeadLettered, failure_outcome(end), JobStatus::kFailed,
                    "max_attempts");
    case AttemptEnd::kSucceeded:
    case AttemptEnd::kCancelled:
      break;  // answered above
  }
  return ending(OutcomeVerdict::kStale, "", job.status);
}

void apply_outcome(JobSnapshot& job, const OutcomeDecision& decision) {
  if (decision.verdict == OutcomeVerdict::kStale) return;
  job.attempt_open = false;
  job.status = decision.job_status;
  if (decision.attempt_outcome != "lost") job.last_settled_attempt = job.attempts;
}

std::string clean_text(std::string_view text, std::size_t max_bytes) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  for (std::size_t i = 0; i < text.size();) {
    const std::size_t length = utf8_sequence_length(text, i);
    std::string_view piece = length == 0 ? kReplacement : text.substr(i, length);
    i += length == 0 ? 1 : length;
    if (piece == std::string_view("\0", 1)) continue;
    if (out.size() + piece.size() > max_bytes) break;
    out += piece;
  }
  return out;
}

void scrub_text(nlohmann::json& value) {
  if (value.is_string()) {
    value = clean_text(value.get_ref<const std::string&>(), std::string::npos);
  } else if (value.is_array()) {
    for (auto& element : value) scrub_text(element);
  } else if (value.is_object()) {
    nlohmann::json clean = nlohmann::json::object();
    for (auto& [key, element] : value.items()) {
      scrub_text(element);
      clean[clean_text(key, std::string::npos)] = std::move(element);
    }
    value = std::move(clean);
  }
}

std::chrono::milliseconds retry_delay(const Backoff& backoff, int attempt,
                                      std::optional<std::chrono::milliseconds> requested) {
  if (requested) return clamp_requested_delay(*requested);
  return std::chrono::milliseconds(jittered_delay_ms(backoff, attempt));
}

}  // namespace warren::consumer
