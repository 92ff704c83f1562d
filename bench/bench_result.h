// What a benchmark scenario reports, and how a run is printed: a markdown table for people
// (bench/RESULTS.md keeps dated runs) and a JSON file for tools.
//
// Every number is a Measurement with its unit. A scenario may carry a goal (issue 6's numbers to
// beat); the goal is reported, never enforced: the suite is a benchmark, not a timed test, and a
// shared 2-core machine drifts. Ratios to the broker floor measured in the same run are what to
// compare between runs.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace warren::bench {

struct Measurement {
  std::string name;  // "jobs/s", "p99 latency", ...
  double value = 0;
  std::string unit;  // "jobs/s", "ms", "MiB", "" for ratios
};

struct ScenarioResult {
  std::string scenario;  // "floor", "drain", ...
  std::string setup;     // what ran: sizes, processes, settings that matter
  std::vector<Measurement> measurements;
  std::string goal;              // e.g. "ratio to floor >= 0.75"; empty: none
  std::optional<bool> goal_met;  // unset when there is no goal
  std::string note;              // anything a reader needs to interpret the numbers

  void add(std::string name, double value, std::string unit) {
    measurements.push_back({std::move(name), value, std::move(unit)});
  }
  // The measurement called `name`; throws if the scenario did not report it.
  double value(const std::string& name) const;
};

struct RunInfo {
  std::string started_at;  // RFC 3339, UTC
  std::string host;
  std::string cpu;  // model name and count, from /proc/cpuinfo
  std::string commit;
  std::string size;  // "full" or "tiny"
};

// "| scenario | measurement | value | goal |" rows, grouped by scenario.
std::string markdown_report(const RunInfo& run, const std::vector<ScenarioResult>& results);
nlohmann::json json_report(const RunInfo& run, const std::vector<ScenarioResult>& results);

// Numbers as people read them: 12,345 for large values, 2 decimals for small ones.
std::string format_number(double value);

}  // namespace warren::bench
