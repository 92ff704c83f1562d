// See invariants.h. Each check_* function is one invariant; the rules for what an attempt may
// end as are in expected_outcome() and explained there once.
#include "chaos/invariants.h"

#include <algorithm>
#include <set>
#include <utility>

namespace warren::chaos {
namespace {

constexpr std::size_t kViolationsKept = 8;

class Check {
 public:
  explicit Check(std::string name) { result_.name = std::move(name); }
  void looked_at(std::int64_t n = 1) { result_.checked += n; }
  void violated(const std::string& what) {
    if (result_.violations.size() < kViolationsKept) result_.violations.push_back(what);
    ++result_.violation_count;
  }
  InvariantResult done() { return std::move(result_); }

 private:
  InvariantResult result_;
};

bool is_terminal(const std::string& status) {
  return status == "succeeded" || status == "failed" || status == "cancelled";
}

// Ledger lines per (job, attempt).
using LedgerIndex = std::map<std::pair<std::string, int>, std::vector<std::string>>;

LedgerIndex index_ledger(const std::vector<LedgerLine>& ledger) {
  LedgerIndex index;
  for (const auto& line : ledger) index[{line.job_id, line.attempt}].push_back(line.result);
  return index;
}

std::map<std::string, std::vector<const RecordedDeadLetter*>> dead_letters_by_job(
    const SoakState& state) {
  std::map<std::string, std::vector<const RecordedDeadLetter*>> by_job;
  for (const auto& letter : state.dead_letters) {
    if (!letter.job_id.empty()) by_job[letter.job_id].push_back(&letter);
  }
  return by_job;
}

std::string describe(const RecordedJob& job) {
  std::string outcomes;
  for (const auto& a : job.attempt_rows) {
    outcomes += (outcomes.empty() ? "" : ",") + std::to_string(a.attempt) + ":" +
                (a.outcome.empty() ? "running" : a.outcome);
  }
  return job.id + " (" + job.status + ", attempts [" + outcomes + "])";
}

InvariantResult check_accepted_jobs_exist(const std::vector<SubmittedJob>& submitted,
                                          const SoakState& state) {
  Check check("every accepted job exists");
  for (const auto& job : submitted) {
    check.looked_at();
    if (!state.jobs.contains(job.id)) {
      check.violated("accepted " + job.id + " (" + std::string(kind_name(job.kind)) +
                     ") is not in the jobs table");
    }
  }
  return check.done();
}

InvariantResult check_no_unrequested_jobs(const std::vector<SubmittedJob>& submitted,
                                          const SoakState& state) {
  Check check("no job nobody asked for");
  std::set<std::string> ids;
  for (const auto& job : submitted) ids.insert(job.id);
  for (const auto& [id, job] : state.jobs) {
    check.looked_at();
    if (!ids.contains(id))
      check.violated(id + " (key " + job.idempotency_key + ") was never accepted");
  }
  return check.done();
}

InvariantResult check_idempotency(const std::vector<SubmittedJob>& submitted,
                                  const SoakState& state) {
  Check check("one job per idempotency key");
  std::map<std::string, int> jobs_per_key;
  for (const auto& [id, job] : state.jobs) ++jobs_per_key[job.idempotency_key];
  for (const auto& job : submitted) {
    check.looked_at();
    if (jobs_per_key[job.idempotency_key] != 1) {
      check.violated("key " + job.idempotency_key + " has " +
                     std::to_string(jobs_per_key[job.idempotency_key]) + " jobs");
    }
    if (job.kind == JobKind::kDuplicate && job.duplicate_id != job.id) {
      check.violated("key " + job.idempotency_key + ": first answer " + job.id + ", second " +
                     (job.duplicate_id.empty() ? "not 200" : job.duplicate_id));
    }
  }
  return check.done();
}

InvariantResult check_terminal(const SoakState& state) {
  Check check("every job is terminal");
  for (const auto& [id, job] : state.jobs) {
    check.looked_at();
    if (!is_terminal(job.status)) check.violated(describe(job));
  }
  return check.done();
}

InvariantResult check_attempt_numbers(const SoakState& state) {
  Check check("attempts numbered 1..n, all finished");
  for (const auto& [id, job] : state.jobs) {
    check.looked_at();
    bool ok = static_cast<int>(job.attempt_rows.size()) == job.attempts;
    for (std::size_t i = 0; ok && i < job.attempt_rows.size(); ++i) {
      ok = job.attempt_rows[i].attempt == static_cast<int>(i) + 1 &&
           !job.attempt_rows[i].outcome.empty();
    }
    if (!ok) check.violated(describe(job) + " with jobs.attempts " + std::to_string(job.attempts));
  }
  return check.done();
}

InvariantResult check_single_success(const SoakState& state) {
  Check check("succeeded jobs: exactly one succeeded attempt, the last; others none");
  for (const auto& [id, job] : state.jobs) {
    check.looked_at();
    const auto successes = std::count_if(job.attempt_rows.begin(), job.attempt_rows.end(),
                                         [](const auto& a) { return a.outcome == "succeeded"; });
    const bool ok = job.status == "succeeded"
                        ? successes == 1 && job.attempt_rows.back().outcome == "succeeded"
                        : successes == 0;
    if (!ok) check.violated(describe(job));
  }
  return check.done();
}

// Whether `outcome` is what attempt `attempt` of this job may end as. The handler's script
// decides by attempt number (fail attempts 1..K), and any attempt may instead be `lost`: its
// consumer died, was stopped, or lost its connection before recording it (the next delivery
// closes it as lost and starts the next attempt, counted against max_attempts).
bool expected_outcome(const SubmittedJob& job, int attempt, const std::string& outcome) {
  if (outcome == "lost") return true;
  switch (job.kind) {
    case JobKind::kFailThenSucceed:
    case JobKind::kAlwaysFail:
      return outcome == (attempt <= job.fail_times ? "failed" : "succeeded");
    case JobKind::kPermanent:
      return outcome == "permanent_failure";
    case JobKind::kCancelRunning:
      return outcome == "succeeded" || outcome == "cancelled";
    default:
      return outcome == "succeeded";
  }
}

// The terminal status the script leads to, given the attempts as recorded.
bool expected_end(const SubmittedJob& job, const RecordedJob& recorded,
                  const std::vector<const RecordedDeadLetter*>& letters) {
  const std::string reason = letters.empty() ? "" : letters.front()->reason;
  const bool all_lost = std::all_of(recorded.attempt_rows.begin(), recorded.attempt_rows.end(),
                                    [](const auto& a) { return a.outcome == "lost"; });
  // Any job can exhaust its attempts or the broker's delivery limit through lost attempts alone.
  const bool worn_out = recorded.status == "failed" && all_lost &&
                        (reason == "delivery_limit" ||
                         (reason == "max_attempts" && recorded.attempts >= recorded.max_attempts));
  if (worn_out) return true;
  switch (job.kind) {
    case JobKind::kAlwaysFail:
      return recorded.status == "failed" &&
             ((reason == "max_attempts" && recorded.attempts == job.max_attempts) ||
              reason == "delivery_limit");
    case JobKind::kFailThenSucceed:
      return recorded.status == "succeeded" ||
             (recorded.status == "failed" && reason == "max_attempts" &&
              recorded.attempts == job.max_attempts);
    case JobKind::kPermanent:
      return recorded.status == "failed" && reason == "permanent_failure";
    case JobKind::kCancelQueued:
      return recorded.status == "cancelled";
    case JobKind::kCancelRunning:
      return recorded.status == "cancelled" || recorded.status == "succeeded";
    default:
      return recorded.status == "succeeded";
  }
}

InvariantResult check_script(const std::vector<SubmittedJob>& submitted, const SoakState& state) {
  Check check("outcomes follow the handler's script");
  const auto letters = dead_letters_by_job(state);
  for (const auto& job : submitted) {
    auto found = state.jobs.find(job.id);
    if (found == state.jobs.end()) continue;  // reported by "every accepted job exists"
    check.looked_at();
    const auto& recorded = found->second;
    bool ok = recorded.max_attempts == job.max_attempts;
    for (const auto& a : recorded.attempt_rows)
      ok = ok && expected_outcome(job, a.attempt, a.outcome);
    auto job_letters = letters.find(job.id);
    ok = ok && expected_end(job, recorded,
                            job_letters == letters.end() ? std::vector<const RecordedDeadLetter*>{}
                                                         : job_letters->second);
    if (!ok) check.violated(std::string(kind_name(job.kind)) + " " + describe(recorded));
  }
  return check.done();
}

InvariantResult check_ledger_matches_attempts(const SoakState& state) {
  Check check("side-effect ledger agrees with the attempt log");
  const auto ledger = index_ledger(state.ledger);
  for (const auto& [key, results] : ledger) {
    check.looked_at();
    if (results.size() > 1) {
      check.violated(key.first + " attempt " + std::to_string(key.second) + " ran " +
                     std::to_string(results.size()) + " times");
    }
    auto job = state.jobs.find(key.first);
    if (job == state.jobs.end() || key.second > job->second.attempts) {
      check.violated(key.first + " attempt " + std::to_string(key.second) +
                     " ran but was never recorded as started");
    }
  }
  // An attempt recorded as finished by its handler must be in the ledger with that result.
  static const std::map<std::string, std::string> kLedgerResult = {
      {"succeeded", "ok"}, {"failed", "fail"}, {"permanent_failure", "permanent"}};
  for (const auto& [id, job] : state.jobs) {
    for (const auto& a : job.attempt_rows) {
      auto expected = kLedgerResult.find(a.outcome);
      if (expected == kLedgerResult.end()) continue;
      check.looked_at();
      auto lines = ledger.find({id, a.attempt});
      if (lines == ledger.end() || std::find(lines->second.begin(), lines->second.end(),
                                             expected->second) == lines->second.end()) {
        check.violated(describe(job) + ": attempt " + std::to_string(a.attempt) + " recorded " +
                       a.outcome + " without a ledger line '" + expected->second + "'");
      }
    }
  }
  return check.done();
}

InvariantResult check_no_run_after_success(const SoakState& state) {
  Check check("no handler ran after success; extra runs only on lost attempts");
  const auto ledger = index_ledger(state.ledger);
  for (const auto& [id, job] : state.jobs) {
    check.looked_at();
    for (const auto& a : job.attempt_rows) {
      auto lines = ledger.find({id, a.attempt});
      if (lines == ledger.end()) continue;
      const bool succeeded_here =
          std::find(lines->second.begin(), lines->second.end(), "ok") != lines->second.end();
      if (succeeded_here && a.outcome != "succeeded" && a.outcome != "lost") {
        check.violated(describe(job) + ": attempt " + std::to_string(a.attempt) +
                       " succeeded in the handler but was recorded " + a.outcome);
      }
    }
    if (job.status != "succeeded") continue;
    const int success = job.attempt_rows.empty() ? 0 : job.attempt_rows.back().attempt;
    for (auto it = ledger.lower_bound({id, success + 1});
         it != ledger.end() && it->first.first == id; ++it) {
      check.violated(describe(job) + ": attempt " + std::to_string(it->first.second) +
                     " ran after the job succeeded");
    }
  }
  return check.done();
}

InvariantResult check_cancelled_never_ran(const std::vector<SubmittedJob>& submitted,
                                          const SoakState& state) {
  Check check("jobs cancelled while waiting never ran");
  const auto ledger = index_ledger(state.ledger);
  for (const auto& job : submitted) {
    if (job.kind != JobKind::kCancelQueued) continue;
    check.looked_at();
    if (job.cancel_status != 200 || job.status_at_cancel != "cancelled") {
      check.violated(job.id + ": the cancel answered " + std::to_string(job.cancel_status) +
                     " with status '" + job.status_at_cancel + "'");
    }
    auto found = state.jobs.find(job.id);
    const bool ran = ledger.lower_bound({job.id, 0}) != ledger.end() &&
                     ledger.lower_bound({job.id, 0})->first.first == job.id;
    if (found != state.jobs.end() && (found->second.attempts != 0 || ran)) {
      check.violated(describe(found->second) + " ran after it was cancelled");
    }
  }
  return check.done();
}

InvariantResult check_delays(const SoakState& state) {
  Check check("no attempt started before the job was due");
  for (const auto& [id, job] : state.jobs) {
    check.looked_at();
    if (job.started_before_due) check.violated(describe(job));
  }
  return check.done();
}

InvariantResult check_dead_letters(const std::vector<PoisonMessage>& poison,
                                   const SoakState& state) {
  Check check("one dead letter per failed job; every dead letter a failed job or poison");
  const auto letters = dead_letters_by_job(state);
  for (const auto& [id, job] : state.jobs) {
    check.looked_at();
    auto found = letters.find(id);
    const std::size_t count = found == letters.end() ? 0 : found->second.size();
    if (count != (job.status == "failed" ? 1u : 0u)) {
      check.violated(describe(job) + " has " + std::to_string(count) + " dead letters");
    }
  }
  for (const auto& [job_id, rows] : letters) {
    if (!state.jobs.contains(job_id)) check.violated("dead letter of unknown job " + job_id);
  }
  std::map<std::string, int> poison_rows;
  for (const auto& letter : state.dead_letters) {
    if (!letter.job_id.empty()) continue;
    check.looked_at();
    if (letter.reason != "poison") check.violated("a dead letter without a job: " + letter.reason);
    ++poison_rows[letter.raw_body];
  }
  for (const auto& message : poison) {
    const int rows = poison_rows[message.body];
    if ((message.confirmed && rows == 0) || rows > message.publishes) {
      check.violated("poison '" + message.body + "': " + std::to_string(rows) + " dead letters, " +
                     std::to_string(message.publishes) + " publishes");
    }
    poison_rows.erase(message.body);
  }
  for (const auto& [body, rows] : poison_rows) {
    check.violated("poison dead letter nobody published: '" + body + "'");
  }
  return check.done();
}

InvariantResult check_drained(const SoakState& state) {
  Check check("queues drained to zero, outbox empty");
  check.looked_at();
  if (state.outbox_rows != 0) {
    check.violated(std::to_string(state.outbox_rows) + " outbox rows never published");
  }
  for (const auto& [queue, messages] : state.queue_messages) {
    check.looked_at();
    if (messages != 0) check.violated(queue + " holds " + std::to_string(messages) + " messages");
  }
  return check.done();
}

}  // namespace

std::vector<InvariantResult> check_invariants(const std::vector<SubmittedJob>& submitted,
                                              const std::vector<PoisonMessage>& poison,
                                              const SoakState& state) {
  return {check_accepted_jobs_exist(submitted, state),
          check_no_unrequested_jobs(submitted, state),
          check_idempotency(submitted, state),
          check_terminal(state),
          check_attempt_numbers(state),
          check_single_success(state),
          check_script(submitted, state),
          check_ledger_matches_attempts(state),
          check_no_run_after_success(state),
          check_cancelled_never_ran(submitted, state),
          check_delays(state),
          check_dead_letters(poison, state),
          check_drained(state)};
}

}  // namespace warren::chaos
