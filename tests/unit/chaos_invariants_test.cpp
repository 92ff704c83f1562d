// The chaos soak's invariant checker (tests/chaos/invariants.h) must catch what it claims to:
// a consistent state passes, and each kind of broken state fails the invariant meant for it.
// Without these a soak that "held every invariant" could simply be checking nothing.
#include "chaos/invariants.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace warren::chaos {
namespace {

// One job of each interesting kind, accepted, recorded and run exactly as the script says,
// including a lost attempt whose handler had run (a consumer killed before recording it).
struct Scenario {
  std::vector<SubmittedJob> submitted;
  std::vector<PoisonMessage> poison;
  SoakState state;

  void add(JobKind kind, const std::string& id, const std::string& status,
           std::vector<RecordedAttempt> attempts, int fail_times = 0, int max_attempts = 5) {
    SubmittedJob job;
    job.kind = kind;
    job.id = id;
    job.idempotency_key = "key-" + id;
    job.fail_times = fail_times;
    job.permanent = kind == JobKind::kPermanent;
    job.max_attempts = max_attempts;
    if (kind == JobKind::kDuplicate) job.duplicate_id = id;
    if (kind == JobKind::kCancelQueued) {
      job.cancel_status = 200;
      job.status_at_cancel = "cancelled";
    }
    submitted.push_back(job);
    RecordedJob recorded{
        id, status, static_cast<int>(attempts.size()), max_attempts, "key-" + id, false, attempts};
    state.jobs[id] = recorded;
    static const std::map<std::string, std::string> kRan = {
        {"succeeded", "ok"}, {"failed", "fail"}, {"permanent_failure", "permanent"}};
    for (const auto& a : attempts) {
      auto ran = kRan.find(a.outcome);
      if (ran != kRan.end()) state.ledger.push_back({id, a.attempt, ran->second});
    }
  }

  Scenario() {
    add(JobKind::kNoop, "noop", "succeeded", {{1, "succeeded"}});
    add(JobKind::kSleep, "lost-then-ok", "succeeded", {{1, "lost"}, {2, "succeeded"}});
    state.ledger.push_back({"lost-then-ok", 1, "ok"});  // ran, then its consumer was killed
    add(JobKind::kFailThenSucceed, "retry", "succeeded", {{1, "failed"}, {2, "succeeded"}}, 1, 8);
    add(JobKind::kAlwaysFail, "always", "failed", {{1, "failed"}, {2, "lost"}, {3, "failed"}}, 1000,
        3);
    add(JobKind::kPermanent, "permanent", "failed", {{1, "permanent_failure"}}, 1000);
    add(JobKind::kCancelQueued, "cancelled", "cancelled", {});
    add(JobKind::kDuplicate, "dup", "succeeded", {{1, "succeeded"}});
    state.dead_letters.push_back({"always", "max_attempts", "dead", ""});
    state.dead_letters.push_back({"permanent", "permanent_failure", "dead", ""});
    poison.push_back({"not json", 1, true});
    state.dead_letters.push_back({"", "poison", "dead", "not json"});
    state.queue_messages = {{"p.q.default", 0}, {"p.dead-letters", 0}};
  }

  // The invariants that did not hold.
  std::vector<std::string> broken() const {
    std::vector<std::string> names;
    for (const auto& result : check_invariants(submitted, poison, state)) {
      if (!result.held()) names.push_back(result.name);
    }
    return names;
  }
};

bool contains(const std::vector<std::string>& names, const std::string& fragment) {
  return std::any_of(names.begin(), names.end(),
                     [&](const auto& n) { return n.find(fragment) != std::string::npos; });
}

TEST(ChaosInvariants, AConsistentStateHoldsEveryInvariant) {
  Scenario s;
  EXPECT_EQ(s.broken(), std::vector<std::string>{});
  for (const auto& result : check_invariants(s.submitted, s.poison, s.state)) {
    EXPECT_GT(result.checked, 0) << result.name << " looked at nothing";
  }
}

TEST(ChaosInvariants, AnAcceptedJobMissingFromPostgresIsCaught) {
  Scenario s;
  s.state.jobs.erase("noop");
  EXPECT_TRUE(contains(s.broken(), "every accepted job exists"));
}

TEST(ChaosInvariants, AJobNobodyAcceptedIsCaught) {
  Scenario s;
  s.state.jobs["ghost"] = {"ghost", "succeeded", 0, 5, "key-ghost", false, {}};
  EXPECT_TRUE(contains(s.broken(), "no job nobody asked for"));
}

TEST(ChaosInvariants, AnIdempotentDuplicateWithTwoIdsIsCaught) {
  Scenario s;
  s.submitted.back().duplicate_id = "another";
  EXPECT_TRUE(contains(s.broken(), "one job per idempotency key"));
}

TEST(ChaosInvariants, AJobLeftRunningIsCaught) {
  Scenario s;
  s.state.jobs["noop"].status = "running";
  EXPECT_TRUE(contains(s.broken(), "every job is terminal"));
}

TEST(ChaosInvariants, AGapInAttemptNumbersIsCaught) {
  Scenario s;
  s.state.jobs["retry"].attempt_rows[1].attempt = 3;
  EXPECT_TRUE(contains(s.broken(), "attempts numbered 1..n"));
}

TEST(ChaosInvariants, TwoSucceededAttemptsAreCaught) {
  Scenario s;
  s.state.jobs["lost-then-ok"].attempt_rows[0].outcome = "succeeded";
  EXPECT_TRUE(contains(s.broken(), "exactly one succeeded attempt"));
}

TEST(ChaosInvariants, AnOutcomeTheScriptCannotProduceIsCaught) {
  Scenario s;
  s.state.jobs["retry"].attempt_rows[0].outcome = "succeeded";  // attempt 1 must fail
  s.state.jobs["retry"].attempt_rows[1].outcome = "lost";
  s.state.jobs["retry"].status = "failed";
  EXPECT_TRUE(contains(s.broken(), "outcomes follow the handler's script"));
}

TEST(ChaosInvariants, AnAlwaysFailingJobThatStoppedEarlyIsCaught) {
  Scenario s;
  auto& job = s.state.jobs["always"];
  job.attempt_rows.pop_back();
  job.attempts = 2;
  s.state.ledger.erase(
      std::remove_if(s.state.ledger.begin(), s.state.ledger.end(),
                     [](const auto& l) { return l.job_id == "always" && l.attempt == 3; }),
      s.state.ledger.end());
  EXPECT_EQ(s.broken(), std::vector<std::string>{"outcomes follow the handler's script"});
}

TEST(ChaosInvariants, AnAttemptRecordedWithoutItsHandlerRunningIsCaught) {
  Scenario s;
  s.state.ledger.erase(s.state.ledger.begin());  // noop's attempt 1 "ran" only in Postgres
  EXPECT_TRUE(contains(s.broken(), "side-effect ledger agrees"));
}

TEST(ChaosInvariants, AnAttemptThatRanTwiceIsCaught) {
  Scenario s;
  s.state.ledger.push_back({"noop", 1, "ok"});
  EXPECT_TRUE(contains(s.broken(), "side-effect ledger agrees"));
}

TEST(ChaosInvariants, AHandlerRunAfterSuccessIsCaught) {
  Scenario s;
  s.state.ledger.push_back({"noop", 2, "ok"});  // a duplicate delivery run after success
  EXPECT_TRUE(contains(s.broken(), "no handler ran after success"));
}

TEST(ChaosInvariants, ASuccessfulRunRecordedAsAFailureIsCaught) {
  Scenario s;
  s.state.ledger.push_back({"always", 1, "ok"});
  EXPECT_TRUE(contains(s.broken(), "extra runs only on lost attempts"));
}

TEST(ChaosInvariants, ACancelledJobThatRanIsCaught) {
  Scenario s;
  s.state.ledger.push_back({"cancelled", 1, "ok"});
  EXPECT_TRUE(contains(s.broken(), "cancelled while waiting never ran"));
}

TEST(ChaosInvariants, AnAttemptBeforeTheDueTimeIsCaught) {
  Scenario s;
  s.state.jobs["noop"].started_before_due = true;
  EXPECT_TRUE(contains(s.broken(), "before the job was due"));
}

TEST(ChaosInvariants, AFailedJobWithoutOrWithTwoDeadLettersIsCaught) {
  Scenario missing;
  missing.state.dead_letters.erase(missing.state.dead_letters.begin());
  EXPECT_TRUE(contains(missing.broken(), "one dead letter per failed job"));
  Scenario twice;
  twice.state.dead_letters.push_back({"always", "max_attempts", "dead", ""});
  EXPECT_TRUE(contains(twice.broken(), "one dead letter per failed job"));
}

TEST(ChaosInvariants, LostOrUnknownPoisonIsCaught) {
  Scenario lost;
  lost.state.dead_letters.pop_back();
  EXPECT_TRUE(contains(lost.broken(), "every dead letter a failed job or poison"));
  Scenario unknown;
  unknown.state.dead_letters.push_back({"", "poison", "dead", "nobody sent this"});
  EXPECT_TRUE(contains(unknown.broken(), "every dead letter a failed job or poison"));
}

TEST(ChaosInvariants, MessagesLeftInAQueueOrTheOutboxAreCaught) {
  Scenario queue;
  queue.state.queue_messages["p.q.default"] = 1;
  EXPECT_TRUE(contains(queue.broken(), "queues drained"));
  Scenario outbox;
  outbox.state.outbox_rows = 3;
  EXPECT_TRUE(contains(outbox.broken(), "outbox empty"));
}

}  // namespace
}  // namespace warren::chaos
