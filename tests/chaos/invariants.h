// What the chaos soak proves once the cluster is quiet: MESSAGING.md's guarantees, checked job by
// job against three independent records of what happened:
//   - what the clients were told (the workload's accepted jobs and their scripts),
//   - what Warren recorded (jobs, job_attempts, dead_letters, outbox, queue depths),
//   - what really ran (the test handler's side-effect ledger, written outside Warren).
// Pure logic over plain structs (soak_state.h loads them), so the checks themselves are unit
// tested with states that break each one (tests/unit/chaos_invariants_test.cpp).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "chaos/workload.h"

namespace warren::chaos {

struct RecordedAttempt {
  int attempt = 0;
  std::string outcome;  // empty while running
};

struct RecordedJob {
  std::string id;
  std::string status;
  int attempts = 0;  // jobs.attempts: attempts started
  int max_attempts = 0;
  std::string idempotency_key;
  bool started_before_due = false;            // an attempt began before scheduled_for
  std::vector<RecordedAttempt> attempt_rows;  // ascending attempt
};

struct RecordedDeadLetter {
  std::string job_id;  // empty for poison
  std::string reason;
  std::string state;
  std::string raw_body;  // poison only
};

struct LedgerLine {
  std::string job_id;
  int attempt = 0;
  std::string result;  // ok, fail, permanent, stopped
};

struct SoakState {
  std::map<std::string, RecordedJob> jobs;  // by id
  std::vector<RecordedDeadLetter> dead_letters;
  std::vector<LedgerLine> ledger;
  std::int64_t outbox_rows = 0;
  std::map<std::string, std::int64_t> queue_messages;  // every Warren queue of the soak
};

struct InvariantResult {
  std::string name;
  std::int64_t checked = 0;             // how many things it looked at (jobs, lines, queues)
  std::vector<std::string> violations;  // the first few are printed
  std::int64_t violation_count = 0;
  bool held() const { return violation_count == 0; }
};

std::vector<InvariantResult> check_invariants(const std::vector<SubmittedJob>& submitted,
                                              const std::vector<PoisonMessage>& poison,
                                              const SoakState& state);

}  // namespace warren::chaos
