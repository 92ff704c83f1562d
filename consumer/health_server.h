// The consumer's health and metrics port (WARREN_HEALTH_ADDR), what Kubernetes probes and
// Prometheus scrapes:
//   GET /healthz  liveness: 200 while the event loop turns and stuck handlers are within
//                 WARREN_MAX_STUCK_HANDLERS; 503 otherwise, so Kubernetes restarts the pod
//                 (its unacked messages go back to the queue). A dependency being down is NOT a
//                 liveness failure: restarting would not bring it back.
//   GET /readyz   readiness: 200 when connected to the broker and the database and consuming;
//                 503 naming what is missing (and during shutdown).
//   GET /metrics  Prometheus text format.
//
// It runs on cpp-httplib's own threads and only reads HealthState, which the loop and the
// database thread update (atomics: no locks shared with the loop).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

namespace httplib {
class Server;
}

namespace warren::metrics {
class MetricsRegistry;
}

namespace warren::consumer {

struct HealthState {
  std::atomic<std::int64_t> loop_tick_ms{0};  // steady clock, updated by a loop timer
  std::atomic<bool> broker_connected{false};
  std::atomic<bool> database_available{false};
  std::atomic<bool> consuming{false};
  std::atomic<bool> shutting_down{false};
  std::atomic<int> stuck_handlers{0};
};

std::int64_t steady_now_ms();

class HealthServer {
 public:
  HealthServer(const std::string& addr, const HealthState& state, int max_stuck_handlers,
               const metrics::MetricsRegistry& registry);
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  // Binds (throws std::runtime_error naming the address when it cannot) and serves.
  void start();
  void stop();

 private:
  std::string host_;
  int port_;
  const HealthState& state_;
  int max_stuck_handlers_;
  const metrics::MetricsRegistry& registry_;
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
};

}  // namespace warren::consumer
