// What every scenario gets: the sizes it runs at (full, or tiny for CI's smoke run) and where
// the private servers are. The servers are the ones scripts/bench.sh (or scripts/test.sh, for
// the smoke run) started, found through the same WARREN_TEST_* variables the tests use.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace warren::bench {

struct Sizes {
  int floor_messages;                // (1) messages through the broker alone
  int drain_jobs;                    // (2) and (7): jobs per drain
  int drain_consumers;               // (2)
  int submit_jobs;                   // (3) single POSTs
  int submit_connections;            // (3)
  int latency_rate;                  // (4) jobs/s, steady
  int latency_seconds;               // (4)
  int retry_jobs;                    // (5)
  std::vector<int> scale_consumers;  // (7)

  static Sizes full();  // issue 6's sizes
  static Sizes tiny();  // N=500: proves the suite works, in about two minutes
};

struct BenchContext {
  Sizes sizes;
  std::string amqp_url;
  std::string log_dir;    // every Warren process's log, one file each
  std::string log_level;  // WARREN_LOG_LEVEL of the Warren processes (production default: info)
  // Settings given to every Warren process of the run (--env NAME=VALUE), for experiments.
  std::map<std::string, std::string> extra_env;
};

}  // namespace warren::bench
