// One Warren deployment for one scenario: a fresh database, a fresh AMQP prefix, producers and
// consumers as real processes (the release binaries, with the settings a user gets by default
// unless the scenario says otherwise), and what the scenarios read from it: the job rows, and
// each process's CPU time and peak memory from /proc.
//
// Everything is removed when the object goes away: processes stopped (SIGTERM, by PID), the
// topology deleted, the database dropped.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <pqxx/pqxx>
#include <string>
#include <vector>

#include "bench_context.h"
#include "support/child_process.h"
#include "support/test_stack.h"

namespace warren::bench {

struct DeploymentShape {
  DeploymentShape(std::string name, int producers, int consumers)
      : name(std::move(name)), producers(producers), consumers(consumers) {}

  std::string name;  // for log files: <log_dir>/<name>-producer-0.log
  int producers = 1;
  int consumers = 2;
};

// From /proc/PID: the process's CPU time so far and its peak resident set.
struct ProcessUsage {
  double cpu_seconds = 0;   // user + system
  double peak_rss_mib = 0;  // VmHWM
};
ProcessUsage process_usage(pid_t pid);

// The whole machine's CPU time from /proc/stat (every process: Postgres, RabbitMQ, the load
// generator too): busy and total core-seconds since boot. Two readings give the share of the
// machine a scenario kept busy, which tells "waiting on something" from "out of CPU".
struct MachineCpu {
  double busy_seconds = 0;
  double total_seconds = 0;
};
MachineCpu machine_cpu();
// How busy the machine was between two readings, in percent of all its cores.
double busy_percent(const MachineCpu& before, const MachineCpu& after);

class WarrenDeployment {
 public:
  WarrenDeployment(const BenchContext& context, DeploymentShape shape);
  ~WarrenDeployment();
  WarrenDeployment(const WarrenDeployment&) = delete;
  WarrenDeployment& operator=(const WarrenDeployment&) = delete;

  int producer_port(int index = 0) const { return producer_ports_.at(index); }
  std::vector<pid_t> producer_pids() const;
  std::vector<pid_t> consumer_pids() const;
  // The value of a Prometheus sample (`name` with its labels as printed, e.g.
  // `warren_db_batch_size_sum{kind="claims"}`), summed over every consumer (or the producers):
  // what the scenarios report about where the time went.
  double consumer_metric(const std::string& sample) const;
  double producer_metric(const std::string& sample) const;
  const std::string& prefix() const { return prefix_; }

  // One number from this deployment's database (the first column of the first row).
  double query_number(const std::string& sql);
  // Waits until `jobs` jobs are `succeeded`; throws, with how many were, after `timeout`.
  void wait_until_succeeded(int jobs, std::chrono::seconds timeout);
  // Seconds from `start` to the last job's finished_at (the consumers' commit clocks).
  double seconds_to_last_finish(std::chrono::system_clock::time_point start);

  // Graceful stop of every process (SIGTERM); throws naming the first that did not exit 0.
  void stop();

 private:
  void start_consumers(int count);
  std::unique_ptr<test::ChildProcess> launch(const std::string& binary, const std::string& role,
                                             int index, std::map<std::string, std::string> env);
  std::map<std::string, std::string> common_env() const;

  const BenchContext& context_;
  DeploymentShape shape_;
  test::TestDatabase database_;
  std::string prefix_;
  std::vector<int> producer_ports_;
  std::vector<int> consumer_health_ports_;
  std::vector<std::unique_ptr<test::ChildProcess>> producers_;
  std::vector<std::unique_ptr<test::ChildProcess>> consumers_;
  std::unique_ptr<pqxx::connection> sql_;
  bool stopped_ = false;
};

}  // namespace warren::bench
