// Tests of the attempt store's pure parts: the rule table of attempt_store.h case by case
// (consumer/attempt_rules.h decides it without a database), error text fit for Postgres and
// AMQP headers, the retry delay, the dead letter's headers and the names of verdicts.
// The same rules against a real Postgres: tests/integration/attempt_store_test.cpp.

#include "consumer/attempt_store.h"
#include "consumer/attempt_rules.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace warren::consumer {
namespace {

using std::chrono::milliseconds;

JobSnapshot job(JobStatus status, int attempts, int max_attempts = 5) {
  JobSnapshot snapshot;
  snapshot.status = status;
  snapshot.attempts = attempts;
  snapshot.max_attempts = max_attempts;
  return snapshot;
}

// A job running `attempts` (open), whose earlier attempts all failed (a retry each).
JobSnapshot running(int attempts, bool worker_alive, int max_attempts = 5) {
  JobSnapshot snapshot = job(JobStatus::kRunning, attempts, max_attempts);
  snapshot.attempt_open = true;
  snapshot.worker_alive = worker_alive;
  snapshot.last_settled_attempt = attempts - 1;
  return snapshot;
}

void expect_start(const ClaimDecision& d, bool close_lost) {
  EXPECT_EQ(d.verdict, ClaimVerdict::kStart);
  EXPECT_EQ(d.close_lost, close_lost);
  EXPECT_EQ(d.duplicate_reason, "");
}

void expect_duplicate(const ClaimDecision& d, const std::string& reason) {
  EXPECT_EQ(d.verdict, ClaimVerdict::kDuplicate);
  EXPECT_EQ(d.duplicate_reason, reason);
  EXPECT_FALSE(d.close_lost);
}

// ---- Claims -------------------------------------------------------------------------------

TEST(AttemptRulesClaim, ScheduledAndQueuedJobsStartTheNextAttempt) {
  for (auto status : {JobStatus::kScheduled, JobStatus::kQueued}) {
    for (bool redelivered : {false, true}) {
      expect_start(decide_claim(job(status, 0), 1, redelivered), false);
    }
  }
  // Queued again after an interrupted attempt 2 (lost): the requeued message starts attempt 3.
  auto requeued = job(JobStatus::kQueued, 2);
  requeued.last_settled_attempt = 1;
  expect_start(decide_claim(requeued, 2, true), false);
}

TEST(AttemptRulesClaim, RetryingJobStartsOnlyFromTheRetryMessage) {
  auto retrying = job(JobStatus::kRetrying, 2);
  retrying.last_settled_attempt = 2;
  expect_start(decide_claim(retrying, 3, false), false);
  expect_start(decide_claim(retrying, 3, true), false);
  expect_duplicate(decide_claim(retrying, 2, false), "stale");
  expect_duplicate(decide_claim(retrying, 2, true), "stale");
  expect_duplicate(decide_claim(retrying, 1, true), "stale");
  // Even if the attempt log disagrees, a retrying job's own attempt count decides.
  retrying.last_settled_attempt = 0;
  expect_duplicate(decide_claim(retrying, 2, false), "stale");
}

TEST(AttemptRulesClaim, RunningJobWithALiveAttemptIsADuplicateOfTheFirstCopy) {
  expect_duplicate(decide_claim(running(1, true), 1, false), "running");
  // A copy of the current message, from before a lost attempt (attempt 3 runs message 2).
  auto after_lost = running(3, true);
  after_lost.last_settled_attempt = 1;
  expect_duplicate(decide_claim(after_lost, 2, false), "running");
}

TEST(AttemptRulesClaim, RedeliveredCopyClosesTheRunningAttemptAsLost) {
  const auto d = decide_claim(running(1, true), 1, true);
  expect_start(d, true);
  EXPECT_EQ(d.lost_cause, LostCause::kRedelivered);
}

TEST(AttemptRulesClaim, GoneWorkerClosesTheRunningAttemptAsLost) {
  for (bool redelivered : {false, true}) {
    const auto d = decide_claim(running(2, false), 2, redelivered);
    expect_start(d, true);
    EXPECT_EQ(d.lost_cause, LostCause::kWorkerGone);
  }
}

TEST(AttemptRulesClaim, OldCopyNeverClosesALiveOrDeadAttempt) {
  // Attempt 3 runs from the retry message of attempt 2's failure: a redelivered copy of the
  // message of attempt 2 (or 1) is stale, whatever happened to attempt 3's worker.
  for (bool alive : {false, true}) {
    for (int message : {1, 2}) {
      expect_duplicate(decide_claim(running(3, alive), message, true), "stale");
    }
  }
}

TEST(AttemptRulesClaim, RunningWithoutAnOpenAttemptStartsTheNext) {
  // Inconsistent (no open attempt row): nothing to close, the job is not held by anyone.
  auto odd = job(JobStatus::kRunning, 1);
  odd.worker_alive = true;
  expect_start(decide_claim(odd, 1, false), false);
}

TEST(AttemptRulesClaim, TerminalJobsAreDuplicates) {
  for (bool redelivered : {false, true}) {
    expect_duplicate(decide_claim(job(JobStatus::kSucceeded, 1), 1, redelivered), "terminal");
    expect_duplicate(decide_claim(job(JobStatus::kFailed, 5), 1, redelivered), "terminal");
    expect_duplicate(decide_claim(job(JobStatus::kCancelled, 0), 1, redelivered), "cancelled");
  }
}

TEST(AttemptRulesClaim, NoAttemptsLeftAfterALostOneGivesUp) {
  const auto lost_last = decide_claim(running(3, false, 3), 3, false);
  EXPECT_EQ(lost_last.verdict, ClaimVerdict::kGaveUp);
  EXPECT_TRUE(lost_last.close_lost);
  // Interrupted last attempt (job queued with none left): gives up without closing anything.
  auto interrupted = job(JobStatus::kQueued, 3, 3);
  interrupted.last_settled_attempt = 2;
  const auto d = decide_claim(interrupted, 3, true);
  EXPECT_EQ(d.verdict, ClaimVerdict::kGaveUp);
  EXPECT_FALSE(d.close_lost);
}

TEST(AttemptRulesClaim, CancelRequestedWithALostAttemptCancels) {
  auto snapshot = running(1, false);
  snapshot.cancel_requested = true;
  const auto d = decide_claim(snapshot, 1, false);
  EXPECT_EQ(d.verdict, ClaimVerdict::kCancelled);
  EXPECT_TRUE(d.close_lost);
  // Cancellation wins over giving up, and a live attempt is still left alone.
  snapshot.max_attempts = 1;
  EXPECT_EQ(decide_claim(snapshot, 1, false).verdict, ClaimVerdict::kCancelled);
  snapshot.worker_alive = true;
  expect_duplicate(decide_claim(snapshot, 1, false), "running");
}

// Every combination: a claim starts attempt attempts+1 within max_attempts or starts nothing,
// and closes an attempt only when it takes the job from a consumer that no longer holds it.
TEST(AttemptRulesClaim, InvariantsOverEveryState) {
  const JobStatus statuses[] = {JobStatus::kScheduled, JobStatus::kQueued,    JobStatus::kRunning,
                                JobStatus::kRetrying,  JobStatus::kSucceeded, JobStatus::kFailed,
                                JobStatus::kCancelled};
  int cases = 0;
  for (auto status : statuses) {
    for (int attempts = 0; attempts <= 3; ++attempts) {
      for (int settled = 0; settled <= attempts; ++settled) {
        for (int bits = 0; bits < 16; ++bits) {
          for (int message = 1; message <= 4; ++message) {
            JobSnapshot s = job(status, attempts, 3);
            s.last_settled_attempt = settled;
            s.attempt_open = (bits & 1) != 0;
            s.worker_alive = (bits & 2) != 0;
            s.cancel_requested = (bits & 4) != 0;
            const bool redelivered = (bits & 8) != 0;
            const auto d = decide_claim(s, message, redelivered);
            ++cases;
            SCOPED_TRACE(std::string(to_string(status)) + " attempts " + std::to_string(attempts) +
                         " settled " + std::to_string(settled) + " bits " + std::to_string(bits) +
                         " message " + std::to_string(message));
            const bool terminal = status == JobStatus::kSucceeded || status == JobStatus::kFailed ||
                                  status == JobStatus::kCancelled;
            if (terminal || message <= settled) {
              EXPECT_EQ(d.verdict, ClaimVerdict::kDuplicate);
            }
            if (d.close_lost) {
              EXPECT_EQ(status, JobStatus::kRunning);
              EXPECT_TRUE(s.attempt_open);
              EXPECT_TRUE(!s.worker_alive || redelivered);
            }
            if (d.verdict == ClaimVerdict::kStart) {
              EXPECT_LT(attempts, 3);
              EXPECT_FALSE(s.cancel_requested);
            }
            if (status == JobStatus::kRunning && s.attempt_open && s.worker_alive && !redelivered) {
              EXPECT_EQ(d.verdict, ClaimVerdict::kDuplicate);
            }
            JobSnapshot after = s;
            apply_claim(after, d);
            if (d.verdict == ClaimVerdict::kStart) {
              EXPECT_EQ(after.attempts, attempts + 1);
              EXPECT_EQ(after.status, JobStatus::kRunning);
              EXPECT_TRUE(after.attempt_open);
              // The same message again, first copy: now a duplicate of our own attempt.
              EXPECT_EQ(decide_claim(after, message, false).verdict, ClaimVerdict::kDuplicate);
            } else {
              EXPECT_EQ(after.attempts, attempts);
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(cases, 7 * 10 * 16 * 4);
}

TEST(AttemptRulesClaim, ApplyClaimMovesTheJob) {
  auto s = running(2, false, 2);
  const auto gave_up = decide_claim(s, 2, false);
  apply_claim(s, gave_up);
  EXPECT_EQ(s.status, JobStatus::kFailed);
  EXPECT_FALSE(s.attempt_open);
  EXPECT_EQ(s.attempts, 2);

  auto c = running(1, false);
  c.cancel_requested = true;
  apply_claim(c, decide_claim(c, 1, false));
  EXPECT_EQ(c.status, JobStatus::kCancelled);
  EXPECT_FALSE(c.attempt_open);

  auto q = job(JobStatus::kQueued, 0);
  apply_claim(q, decide_claim(q, 1, false));
  EXPECT_EQ(q.status, JobStatus::kRunning);
  EXPECT_EQ(q.attempts, 1);
  EXPECT_TRUE(q.attempt_open);
  EXPECT_TRUE(q.worker_alive);
  EXPECT_EQ(q.last_settled_attempt, 0);
}

// ---- Outcomes -----------------------------------------------------------------------------

void expect_outcome(const OutcomeDecision& d, OutcomeVerdict verdict, const std::string& outcome,
                    JobStatus status, const std::string& dead_letter_reason = "") {
  EXPECT_EQ(d.verdict, verdict);
  EXPECT_EQ(d.attempt_outcome, outcome);
  EXPECT_EQ(d.job_status, status);
  EXPECT_EQ(d.dead_letter_reason, dead_letter_reason);
}

TEST(AttemptRulesOutcome, Success) {
  expect_outcome(decide_outcome(running(2, true), 2, AttemptEnd::kSucceeded),
                 OutcomeVerdict::kSucceeded, "succeeded", JobStatus::kSucceeded);
  // A success wins over a cancellation that came too late.
  auto cancel = running(2, true);
  cancel.cancel_requested = true;
  expect_outcome(decide_outcome(cancel, 2, AttemptEnd::kSucceeded), OutcomeVerdict::kSucceeded,
                 "succeeded", JobStatus::kSucceeded);
}

TEST(AttemptRulesOutcome, RetryableErrorsAndTimeoutsRetryWhileAttemptsRemain) {
  expect_outcome(decide_outcome(running(1, true, 2), 1, AttemptEnd::kFailed),
                 OutcomeVerdict::kRetryScheduled, "failed", JobStatus::kRetrying);
  expect_outcome(decide_outcome(running(1, true, 2), 1, AttemptEnd::kTimedOut),
                 OutcomeVerdict::kRetryScheduled, "timed_out", JobStatus::kRetrying);
  expect_outcome(decide_outcome(running(2, true, 2), 2, AttemptEnd::kFailed),
                 OutcomeVerdict::kDeadLettered, "failed", JobStatus::kFailed, "max_attempts");
  expect_outcome(decide_outcome(running(2, true, 2), 2, AttemptEnd::kTimedOut),
                 OutcomeVerdict::kDeadLettered, "timed_out", JobStatus::kFailed, "max_attempts");
  // max_attempts lowered below the attempts made: no retry either.
  expect_outcome(decide_outcome(running(3, true, 2), 3, AttemptEnd::kFailed),
                 OutcomeVerdict::kDeadLettered, "failed", JobStatus::kFailed, "max_attempts");
}

TEST(AttemptRulesOutcome, PermanentFailureDeadLettersAtOnce) {
  expect_outcome(decide_outcome(running(1, true, 5), 1, AttemptEnd::kPermanentFailure),
                 OutcomeVerdict::kDeadLettered, "permanent_failure", JobStatus::kFailed,
                 "permanent_failure");
}

TEST(AttemptRulesOutcome, CancelledOrCancelRequested) {
  expect_outcome(decide_outcome(running(1, true), 1, AttemptEnd::kCancelled),
                 OutcomeVerdict::kCancelled, "cancelled", JobStatus::kCancelled);
  auto cancel = running(1, true, 1);
  cancel.cancel_requested = true;
  for (auto end : {AttemptEnd::kFailed, AttemptEnd::kPermanentFailure, AttemptEnd::kTimedOut,
                   AttemptEnd::kCancelled, AttemptEnd::kInterrupted}) {
    expect_outcome(decide_outcome(cancel, 1, end), OutcomeVerdict::kCancelled, "cancelled",
                   JobStatus::kCancelled);
  }
}

TEST(AttemptRulesOutcome, InterruptedIsLostAndQueuedAgain) {
  expect_outcome(decide_outcome(running(5, true, 5), 5, AttemptEnd::kInterrupted),
                 OutcomeVerdict::kRequeued, "lost", JobStatus::kQueued);
}

TEST(AttemptRulesOutcome, StaleUnlessTheJobRunsThatAttempt) {
  const AttemptEnd ends[] = {AttemptEnd::kSucceeded,        AttemptEnd::kFailed,
                             AttemptEnd::kPermanentFailure, AttemptEnd::kTimedOut,
                             AttemptEnd::kCancelled,        AttemptEnd::kInterrupted};
  auto closed = running(2, true);
  closed.attempt_open = false;
  for (auto end : ends) {
    // Another attempt runs now (ours was declared lost), the job moved on, or no row is open.
    expect_outcome(decide_outcome(running(3, true), 2, end), OutcomeVerdict::kStale, "",
                   JobStatus::kRunning);
    expect_outcome(decide_outcome(closed, 2, end), OutcomeVerdict::kStale, "", JobStatus::kRunning);
    for (auto status : {JobStatus::kQueued, JobStatus::kRetrying, JobStatus::kSucceeded,
                        JobStatus::kFailed, JobStatus::kCancelled, JobStatus::kScheduled}) {
      auto s = running(2, true);
      s.status = status;
      EXPECT_EQ(decide_outcome(s, 2, end).verdict, OutcomeVerdict::kStale) << to_string(status);
    }
  }
}

TEST(AttemptRulesOutcome, ApplyOutcomeSettlesTheAttempt) {
  auto retry = running(2, true);
  apply_outcome(retry, decide_outcome(retry, 2, AttemptEnd::kFailed));
  EXPECT_EQ(retry.status, JobStatus::kRetrying);
  EXPECT_FALSE(retry.attempt_open);
  EXPECT_EQ(retry.last_settled_attempt, 2);
  // The retry's message then starts attempt 3 and nothing older does.
  expect_start(decide_claim(retry, 3, false), false);
  expect_duplicate(decide_claim(retry, 2, true), "stale");

  auto interrupted = running(2, true);
  apply_outcome(interrupted, decide_outcome(interrupted, 2, AttemptEnd::kInterrupted));
  EXPECT_EQ(interrupted.status, JobStatus::kQueued);
  EXPECT_EQ(interrupted.last_settled_attempt, 1);  // lost: its message is still the current one
  EXPECT_EQ(interrupted.attempts, 2);
  expect_start(decide_claim(interrupted, 2, true), false);

  auto stale = running(3, true);
  const auto before = stale.last_settled_attempt;
  apply_outcome(stale, decide_outcome(stale, 2, AttemptEnd::kSucceeded));
  EXPECT_EQ(stale.status, JobStatus::kRunning);
  EXPECT_TRUE(stale.attempt_open);
  EXPECT_EQ(stale.last_settled_attempt, before);
}

// ---- Text, delays, headers, names -----------------------------------------------------------

TEST(AttemptStoreText, KeepsCleanTextAndCutsAt4KiB) {
  EXPECT_EQ(clean_text("connection refused"), "connection refused");
  EXPECT_EQ(clean_text(std::string(5000, 'a')), std::string(4096, 'a'));
  EXPECT_EQ(clean_text(std::string(4096, 'a')).size(), 4096u);
  EXPECT_EQ(clean_text("abcdef", 3), "abc");
}

TEST(AttemptStoreText, CutsOnACharacterBoundary) {
  const std::string e_acute = "\xC3\xA9";        // 2 bytes
  const std::string euro = "\xE2\x82\xAC";       // 3 bytes
  const std::string emoji = "\xF0\x9F\x98\x80";  // 4 bytes
  EXPECT_EQ(clean_text(std::string(4095, 'a') + e_acute), std::string(4095, 'a'));
  EXPECT_EQ(clean_text(std::string(4094, 'a') + e_acute), std::string(4094, 'a') + e_acute);
  EXPECT_EQ(clean_text(std::string(4094, 'a') + euro), std::string(4094, 'a'));
  EXPECT_EQ(clean_text(std::string(4093, 'a') + euro + "b"), std::string(4093, 'a') + euro);
  for (std::size_t pad = 4093; pad <= 4095; ++pad) {
    EXPECT_EQ(clean_text(std::string(pad, 'a') + emoji), std::string(pad, 'a')) << pad;
  }
  std::string many;
  for (int i = 0; i < 2000; ++i) many += euro;  // 6000 bytes
  const auto cut = clean_text(many);
  EXPECT_EQ(cut.size(), 4095u);  // 1365 whole characters
  EXPECT_EQ(cut, many.substr(0, 4095));
}

TEST(AttemptStoreText, ReplacesMalformedUtf8AndDropsNul) {
  const std::string replacement = "\xEF\xBF\xBD";
  EXPECT_EQ(clean_text(std::string("a\0b", 3)), "ab");
  EXPECT_EQ(clean_text("a\xFF"
                       "b"),
            "a" + replacement + "b");
  EXPECT_EQ(clean_text("\xC0\x80"), replacement + replacement);                    // overlong NUL
  EXPECT_EQ(clean_text("\xED\xA0\x80"), replacement + replacement + replacement);  // surrogate
  EXPECT_EQ(clean_text("\xF4\x90\x80\x80").substr(0, 3), replacement);             // above U+10FFFF
  EXPECT_EQ(clean_text("ok\xE2\x82"), "ok" + replacement + replacement);           // cut sequence
  EXPECT_EQ(clean_text("\xF0\x9F\x98\x80"), "\xF0\x9F\x98\x80");
  // A replacement that does not fit is left out, like any other character.
  EXPECT_EQ(clean_text("ab\xFF", 4), "ab");
}

TEST(AttemptStoreRetryDelay, RequestedDelayWins) {
  std::mt19937_64 rng(7);
  const Backoff backoff;
  EXPECT_EQ(retry_delay(backoff, 1, milliseconds(1234), rng), milliseconds(1234));
  EXPECT_EQ(retry_delay(backoff, 3, milliseconds(0), rng), milliseconds(0));
  EXPECT_EQ(retry_delay(backoff, 1, milliseconds(-5), rng), milliseconds(0));
  EXPECT_EQ(retry_delay(backoff, 1, milliseconds(int64_t{1} << 40), rng),
            milliseconds(kMaxBackoffMaxMs));
  EXPECT_EQ(retry_delay(backoff, 1, milliseconds(1234)), milliseconds(1234));
}

TEST(AttemptStoreRetryDelay, BackoffWithEqualJitter) {
  std::mt19937_64 rng(42);
  const Backoff backoff{.initial_ms = 1000, .factor = 2, .max_ms = 60000};
  for (int attempt = 1; attempt <= 10; ++attempt) {
    const int64_t d = base_delay_ms(backoff, attempt);
    for (int i = 0; i < 200; ++i) {
      const auto delay = retry_delay(backoff, attempt, std::nullopt, rng).count();
      EXPECT_GE(delay, d - d / 2) << attempt;
      EXPECT_LE(delay, d) << attempt;
      const auto unseeded = retry_delay(backoff, attempt, std::nullopt).count();
      EXPECT_GE(unseeded, d - d / 2) << attempt;
      EXPECT_LE(unseeded, d) << attempt;
    }
  }
}

TEST(AttemptStoreHeaders, DeadLetterHeadersKeepTheDeliveryAndAddWarrensOwn) {
  const amqp::FieldTable x_death_entry{{"queue", "warren.q.default"}, {"count", 1}};
  const amqp::FieldTable delivery{
      {"x-warren-attempt", 2},
      {"x-warren-max-attempts", 3},
      {"x-warren-queue", "default"},
      {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
      {"x-death", amqp::FieldArray{x_death_entry}}};
  DeadLetterRecord record;
  record.id = "0193a4b2-7c1d-7e2f-8a3b-4c5d6e7f8091";
  record.reason = "max_attempts";
  record.error_type = "http_503";
  record.error_message = std::string(5000, 'x');
  record.attempts = 3;
  record.failed_at = "2030-01-01T00:00:00.000Z";

  const auto headers = dead_letter_headers(delivery, record);
  const amqp::FieldTable expected{
      {"x-warren-attempt", 3},  // the last attempt made, not the delivery's
      {"x-warren-max-attempts", 3},
      {"x-warren-queue", "default"},
      {"traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
      {"x-death", amqp::FieldArray{x_death_entry}},
      {"x-warren-reason", "max_attempts"},
      {"x-warren-error-type", "http_503"},
      {"x-warren-error-message", std::string(4096, 'x')},
      {"x-warren-failed-at", "2030-01-01T00:00:00.000Z"},
      {"x-warren-dead-letter-id", "0193a4b2-7c1d-7e2f-8a3b-4c5d6e7f8091"}};
  EXPECT_EQ(headers, expected) << headers;
  EXPECT_EQ(std::string(kDeadLetterIdHeader), "x-warren-dead-letter-id");
}

TEST(AttemptStoreNames, Verdicts) {
  EXPECT_STREQ(to_string(ClaimVerdict::kStart), "start");
  EXPECT_STREQ(to_string(ClaimVerdict::kDuplicate), "duplicate");
  EXPECT_STREQ(to_string(ClaimVerdict::kGaveUp), "gave_up");
  EXPECT_STREQ(to_string(ClaimVerdict::kCancelled), "cancelled");
  EXPECT_STREQ(to_string(OutcomeVerdict::kSucceeded), "succeeded");
  EXPECT_STREQ(to_string(OutcomeVerdict::kRetryScheduled), "retry_scheduled");
  EXPECT_STREQ(to_string(OutcomeVerdict::kDeadLettered), "dead_lettered");
  EXPECT_STREQ(to_string(OutcomeVerdict::kCancelled), "cancelled");
  EXPECT_STREQ(to_string(OutcomeVerdict::kRequeued), "requeued");
  EXPECT_STREQ(to_string(OutcomeVerdict::kStale), "stale");
}

TEST(AttemptStoreNames, JobStatusesRoundTrip) {
  for (const char* name :
       {"scheduled", "queued", "running", "retrying", "succeeded", "failed", "cancelled"}) {
    const auto status = parse_job_status(name);
    ASSERT_TRUE(status.has_value()) << name;
    EXPECT_STREQ(to_string(*status), name);
  }
  EXPECT_FALSE(parse_job_status("done").has_value());
  EXPECT_FALSE(parse_job_status("").has_value());
}

}  // namespace
}  // namespace warren::consumer
