// The chaos soak's adversary: at random moments (seeded, so a schedule can be replayed) it does
// to the cluster what real deployments suffer, one fault at a time, and waits for every process
// to report ready again before the next, measuring that recovery:
//   kill-consumer      SIGKILL a consumer mid-work (OOM killer, node loss), restart it
//   terminate-consumer SIGTERM a consumer and restart it (a Kubernetes rolling restart); it must
//                      exit 0 within its shutdown grace
//   kill-producer      SIGKILL a producer mid-request and mid-relay, restart it
//   restart-rabbitmq   stop the broker, wait, start it (the node restarts; quorum queues recover)
//   restart-postgres   stop Postgres (fast shutdown: sessions cut), wait, start it
//   pause-consumer     SIGSTOP a consumer for longer than two AMQP heartbeats (a frozen VM, a
//                      long GC-like stall), then SIGCONT: the broker has given its messages to
//                      others by then, and the paused process must not record stale outcomes
// The first faults go through every kind once in a shuffled order, so even a short run covers
// them all; after that kinds are drawn uniformly.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace warren::chaos {

class WarrenCluster;

enum class FaultKind {
  kKillConsumer,
  kTerminateConsumer,
  kKillProducer,
  kRestartRabbitmq,
  kRestartPostgres,
  kPauseConsumer,
};
inline constexpr int kFaultKinds = 6;
std::string_view fault_name(FaultKind kind);

struct FaultRecord {
  FaultKind kind = FaultKind::kKillConsumer;
  int slot = -1;                 // the process slot, -1 for a server
  double at_seconds = 0;         // since the soak started
  double recovery_seconds = -1;  // until all ready again; -1: never within the limit
  std::string problem;           // empty unless the fault revealed a violation
};

struct FaultSettings {
  std::uint64_t seed = 1;
  std::chrono::seconds min_gap{4};
  std::chrono::seconds max_gap{12};
  std::chrono::seconds recovery_limit{90};
};

class FaultInjector {
 public:
  FaultInjector(FaultSettings settings, WarrenCluster& cluster);

  // Injects faults until `stop` is set; always leaves every process running. Blocks.
  void run(const std::atomic<bool>& stop, std::chrono::steady_clock::time_point soak_start);

  const std::vector<FaultRecord>& records() const { return records_; }

 private:
  void inject(FaultRecord& record, std::chrono::milliseconds downtime);

  FaultSettings settings_;
  WarrenCluster& cluster_;
  std::vector<FaultRecord> records_;
};

}  // namespace warren::chaos
