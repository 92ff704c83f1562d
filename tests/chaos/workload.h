// The chaos soak's clients: threads that submit a mixed workload through the producers' REST
// API as a careful application would (every job carries an idempotency key; a failed or
// unanswered submission is retried with the same key on the other producer until it is
// accepted), cancel some jobs, and publish a few poison messages straight to a work queue.
//
// Every job runs the test consumer's `ledger` handler (tests/consumer/test_consumer_main.cpp),
// whose payload scripts what each attempt does; the invariant checker compares that script
// with what Postgres recorded and what the handler's side-effect ledger says really ran.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace warren::chaos {

class WarrenCluster;

enum class JobKind {
  kNoop,             // succeeds at once
  kSleep,            // sleeps 0.2-2.5 s (in flight when a consumer dies or is paused)
  kFailThenSucceed,  // fails attempts 1..K (K = 1..3), then succeeds
  kAlwaysFail,       // fails every attempt: dead-lettered after max_attempts
  kPermanent,        // fails permanently at once: dead-lettered without retries
  kDelayed,          // delay_ms 1-15 s, then succeeds
  kCancelQueued,     // delay_ms 20 s, cancelled 1-3 s after it was accepted: never runs
  kCancelRunning,    // sleeps 4 s, cancelled ~1.5 s after acceptance: cancelled or succeeded
  kDuplicate,        // submitted twice with one idempotency key (once to each producer)
};
inline constexpr int kJobKinds = 9;
std::string_view kind_name(JobKind kind);

struct SubmittedJob {
  JobKind kind = JobKind::kNoop;
  std::string idempotency_key;
  std::string id;  // from the producer's answer
  int fail_times = 0;
  bool permanent = false;
  int max_attempts = 0;
  std::string duplicate_id;      // kDuplicate: the id the second submission answered
  int cancel_status = 0;         // HTTP status of the cancel (200, or 409 when terminal)
  std::string status_at_cancel;  // the job's status in the cancel's 200 answer
};

struct PoisonMessage {
  std::string body;
  int publishes = 0;  // publish attempts (a retry after an unconfirmed publish may duplicate)
  bool confirmed = false;
};

struct WorkloadSettings {
  double jobs_per_second = 40;
  int threads = 4;
  std::uint64_t seed = 1;
  std::string queue_names[2] = {"default", "critical"};
  std::string amqp_url;  // for poison messages
  std::string prefix;
  std::chrono::seconds give_up_after{120};  // a submission still refused after this: reported
};

struct WorkloadCounts {
  std::atomic<std::int64_t> requests{0};            // HTTP requests sent (submissions and cancels)
  std::atomic<std::int64_t> failovers{0};           // refused or unanswered, retried elsewhere
  std::atomic<std::int64_t> given_up{0};            // submissions never accepted (a violation)
  std::atomic<std::int64_t> rejected{0};            // 4xx answers to valid requests (a violation)
  std::atomic<std::int64_t> idempotent_replays{0};  // 200 answers: the key was known
};

class Workload {
 public:
  Workload(WorkloadSettings settings, const WarrenCluster& cluster);

  // Submits until `stop` is set, then finishes the cancels still due. Blocks.
  void run(const std::atomic<bool>& stop);

  std::vector<SubmittedJob> jobs() const;
  std::vector<PoisonMessage> poison() const;
  const WorkloadCounts& counts() const { return counts_; }

 private:
  class Client;
  void submit_loop(int thread_index, const std::atomic<bool>& stop);
  void publish_poison(std::uint64_t number);

  WorkloadSettings settings_;
  const WarrenCluster& cluster_;
  WorkloadCounts counts_;
  mutable std::mutex mutex_;  // guards jobs_ and poison_ (appended to by every thread)
  std::vector<SubmittedJob> jobs_;
  std::vector<PoisonMessage> poison_;
};

}  // namespace warren::chaos
