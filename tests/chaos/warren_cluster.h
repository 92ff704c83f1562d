// The Warren deployment the chaos soak runs and hurts: a few producers and consumers as real
// processes, on the private test servers. Each process has a slot (producer 0, consumer 2) with
// a fixed port, so clients keep their address across restarts; every start of a slot is a new
// incarnation with its own log file and worker id, as a restarted Kubernetes pod would be.
//
// The fault injector (fault_injector.h) decides when to hurt what; this file only knows how.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "support/child_process.h"

namespace warren::chaos {

struct ClusterSettings {
  std::string database_url;
  std::string amqp_url;
  std::string prefix;
  std::vector<std::string> queues;
  std::string ledger_dir;  // the consumers' side-effect ledgers (WARREN_TEST_LEDGER_DIR)
  std::string log_dir;     // one log file per process incarnation
  int producers = 2;
  int consumers = 3;
  std::chrono::milliseconds shutdown_grace{5000};  // WARREN_SHUTDOWN_GRACE_MS of consumers
  int amqp_heartbeat_seconds = 2;                  // so a paused consumer is noticed quickly
};

class WarrenCluster {
 public:
  explicit WarrenCluster(ClusterSettings settings);
  ~WarrenCluster();  // SIGTERM to everything still running
  WarrenCluster(const WarrenCluster&) = delete;
  WarrenCluster& operator=(const WarrenCluster&) = delete;

  const ClusterSettings& settings() const { return settings_; }
  int producer_port(int slot) const { return producer_ports_.at(slot); }

  void start_producer(int slot);
  void start_consumer(int slot);
  void kill_producer(int slot);  // SIGKILL, and reap
  void kill_consumer(int slot);
  // SIGTERM, as Kubernetes does on a rolling restart; returns the exit status and how long the
  // process took to exit (it is SIGKILLed after grace + 10 s, as the kubelet would).
  struct Termination {
    int exit_status;
    std::chrono::milliseconds took;
  };
  Termination terminate_consumer(int slot);
  void pause_consumer(int slot);   // SIGSTOP
  void resume_consumer(int slot);  // SIGCONT

  // Every process answers /readyz 200 (producers: database and broker; consumers: consuming).
  bool all_ready();
  // Graceful stop of every process; returns the slots whose exit status was not 0.
  std::vector<std::string> stop_all();

 private:
  std::map<std::string, std::string> common_env() const;
  std::unique_ptr<test::ChildProcess> launch(const std::string& program, const std::string& name,
                                             std::map<std::string, std::string> env);

  ClusterSettings settings_;
  std::vector<int> producer_ports_;
  std::vector<int> consumer_health_ports_;
  std::vector<std::unique_ptr<test::ChildProcess>> producers_;
  std::vector<std::unique_ptr<test::ChildProcess>> consumers_;
  std::map<std::string, int> incarnations_;  // per slot name, for log and worker names
};

}  // namespace warren::chaos
