// See fault_injector.h.
#include "chaos/fault_injector.h"

#include <algorithm>
#include <random>
#include <thread>

#include "chaos/warren_cluster.h"
#include "support/test_stack.h"

namespace warren::chaos {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string_view fault_name(FaultKind kind) {
  switch (kind) {
    case FaultKind::kKillConsumer:
      return "kill-consumer";
    case FaultKind::kTerminateConsumer:
      return "terminate-consumer";
    case FaultKind::kKillProducer:
      return "kill-producer";
    case FaultKind::kRestartRabbitmq:
      return "restart-rabbitmq";
    case FaultKind::kRestartPostgres:
      return "restart-postgres";
    case FaultKind::kPauseConsumer:
      return "pause-consumer";
  }
  return "?";
}

FaultInjector::FaultInjector(FaultSettings settings, WarrenCluster& cluster)
    : settings_(settings), cluster_(cluster) {}

namespace {

// Sleeps up to `duration`, in small steps so a stop request is seen quickly.
void pause_unless_stopped(std::chrono::milliseconds duration, const std::atomic<bool>& stop) {
  const auto until = Clock::now() + duration;
  while (!stop.load() && Clock::now() < until) std::this_thread::sleep_for(milliseconds(100));
}

}  // namespace

void FaultInjector::run(const std::atomic<bool>& stop, Clock::time_point soak_start) {
  std::mt19937_64 random(settings_.seed);
  std::vector<FaultKind> first_round;
  for (int k = 0; k < kFaultKinds; ++k) first_round.push_back(static_cast<FaultKind>(k));
  std::shuffle(first_round.begin(), first_round.end(), random);
  std::uniform_int_distribution<int> gap_ms(static_cast<int>(settings_.min_gap.count() * 1000),
                                            static_cast<int>(settings_.max_gap.count() * 1000));
  std::uniform_int_distribution<int> any_kind(0, kFaultKinds - 1);

  while (true) {
    pause_unless_stopped(milliseconds(gap_ms(random)), stop);
    if (stop.load()) return;
    FaultRecord record;
    record.kind = records_.size() < first_round.size() ? first_round[records_.size()]
                                                       : static_cast<FaultKind>(any_kind(random));
    const bool on_producer = record.kind == FaultKind::kKillProducer;
    const bool on_consumer = !on_producer && record.kind != FaultKind::kRestartRabbitmq &&
                             record.kind != FaultKind::kRestartPostgres;
    if (on_producer || on_consumer) {
      const int slots = on_producer ? cluster_.settings().producers : cluster_.settings().consumers;
      record.slot = std::uniform_int_distribution<int>(0, slots - 1)(random);
    }
    record.at_seconds = std::chrono::duration<double>(Clock::now() - soak_start).count();
    // How long a server stays down, or a process dead, before it comes back.
    const auto downtime = milliseconds(std::uniform_int_distribution<int>(500, 3000)(random));

    std::printf("[chaos %7.1fs] %s%s\n", record.at_seconds, fault_name(record.kind).data(),
                record.slot >= 0 ? (" #" + std::to_string(record.slot)).c_str() : "");
    std::fflush(stdout);
    try {
      inject(record, downtime);
    } catch (const std::exception& error) {
      record.problem = std::string("the fault itself failed: ") + error.what();
    }

    const auto recovering = Clock::now();
    if (test::wait_until([&] { return cluster_.all_ready(); }, settings_.recovery_limit,
                         milliseconds(100))) {
      record.recovery_seconds = std::chrono::duration<double>(Clock::now() - recovering).count();
    } else if (record.problem.empty()) {
      record.problem = "not every process was ready " +
                       std::to_string(settings_.recovery_limit.count()) + " s after the fault";
    }
    records_.push_back(record);
  }
}

void FaultInjector::inject(FaultRecord& record, milliseconds downtime) {
  switch (record.kind) {
    case FaultKind::kKillConsumer:
      cluster_.kill_consumer(record.slot);
      std::this_thread::sleep_for(downtime);
      cluster_.start_consumer(record.slot);
      break;
    case FaultKind::kTerminateConsumer: {
      const auto ended = cluster_.terminate_consumer(record.slot);
      const auto limit = cluster_.settings().shutdown_grace + std::chrono::seconds(5);
      if (ended.exit_status != 0 || ended.took > limit) {
        record.problem = "SIGTERM: exit status " + std::to_string(ended.exit_status) + " after " +
                         std::to_string(ended.took.count()) + " ms";
      }
      cluster_.start_consumer(record.slot);
      break;
    }
    case FaultKind::kKillProducer:
      cluster_.kill_producer(record.slot);
      std::this_thread::sleep_for(downtime);
      cluster_.start_producer(record.slot);
      break;
    case FaultKind::kRestartRabbitmq:
      test::stack_command("stop-rabbitmq");
      std::this_thread::sleep_for(downtime);
      test::stack_command("start-rabbitmq");
      break;
    case FaultKind::kRestartPostgres:
      test::stack_command("stop-postgres");
      std::this_thread::sleep_for(downtime);
      test::stack_command("start-postgres");
      break;
    case FaultKind::kPauseConsumer:
      // Longer than two heartbeat intervals: the broker closes the connection and requeues the
      // paused consumer's unacknowledged messages to the others.
      cluster_.pause_consumer(record.slot);
      std::this_thread::sleep_for(
          std::chrono::seconds(cluster_.settings().amqp_heartbeat_seconds * 3 + 2));
      cluster_.resume_consumer(record.slot);
      break;
  }
}

}  // namespace warren::chaos
