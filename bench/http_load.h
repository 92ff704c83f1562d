// The load generator of the HTTP scenarios: real clients on keep-alive connections to a running
// producer, one thread per connection (cpp-httplib's client is blocking). It runs on the same 2
// cores as Warren, so it is kept cheap: request bodies are built before the clock starts.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace warren::bench {

using Clock = std::chrono::steady_clock;

struct LoadResult {
  std::size_t accepted = 0;  // 202 answers (jobs, for batches)
  std::size_t requests = 0;
  double seconds = 0;                                // first request sent -> last answer received
  std::vector<double> latencies_ms;                  // one per request
  std::chrono::system_clock::time_point started_at;  // wall clock of the first request
};

// POSTs every body to `path` over `connections` connections, each taking the next unsent body,
// as fast as the answers come back (a closed loop). `jobs_per_body` converts answers to jobs.
// Throws on any answer but 202, or a transport error: a benchmark of failures is worthless.
LoadResult post_closed_loop(int port, const std::string& path,
                            const std::vector<std::string>& bodies, int connections,
                            std::size_t jobs_per_body = 1);

// POSTs `bodies` to /v1/jobs at a steady `rate` per second (an open loop: request k is due at
// start + k / rate whatever happened to earlier ones), over `connections` connections.
LoadResult post_paced(int port, const std::vector<std::string>& bodies, double rate,
                      int connections);

// The q-quantile (0..1) of `values` (nearest rank); NaN when empty.
double quantile(std::vector<double> values, double q);

}  // namespace warren::bench
