// See chaos_report.h.
#include "chaos/chaos_report.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>

namespace warren::chaos {

InvariantResult client_invariant(const WorkloadCounts& counts) {
  InvariantResult result;
  result.name = "clients: every submission accepted in the end, none refused";
  result.checked = counts.requests.load();
  if (counts.given_up > 0) {
    result.violations.push_back(std::to_string(counts.given_up.load()) + " submissions given up");
  }
  if (counts.rejected > 0) {
    result.violations.push_back(std::to_string(counts.rejected.load()) +
                                " valid requests refused with a 4xx");
  }
  result.violation_count = counts.given_up + counts.rejected;
  return result;
}

InvariantResult fault_invariant(const std::vector<FaultRecord>& faults, bool went_quiet,
                                const std::vector<std::string>& unclean_stops) {
  InvariantResult result;
  result.name = "faults: recovered, clean SIGTERM exits, quiet at the end";
  result.checked = static_cast<std::int64_t>(faults.size());
  auto violated = [&](const std::string& what) {
    result.violations.push_back(what);
    ++result.violation_count;
  };
  for (const auto& fault : faults) {
    if (!fault.problem.empty()) {
      violated(std::string(fault_name(fault.kind)) + " at " +
               std::to_string(static_cast<int>(fault.at_seconds)) + " s: " + fault.problem);
    }
  }
  if (!went_quiet) violated("the cluster did not go quiet (jobs unfinished or messages left)");
  for (const auto& slot : unclean_stops) violated(slot + " did not exit 0 on the final SIGTERM");
  return result;
}

namespace {

struct KindRow {
  std::int64_t accepted = 0, succeeded = 0, failed = 0, cancelled = 0, other = 0;
};

void print_jobs(const ChaosReport& report) {
  std::map<std::string, KindRow> rows;
  KindRow total;
  for (const auto& job : report.submitted) {
    auto& row = rows[std::string(kind_name(job.kind))];
    auto found = report.state.jobs.find(job.id);
    const std::string status = found == report.state.jobs.end() ? "missing" : found->second.status;
    for (KindRow* r : {&row, &total}) {
      ++r->accepted;
      if (status == "succeeded")
        ++r->succeeded;
      else if (status == "failed")
        ++r->failed;
      else if (status == "cancelled")
        ++r->cancelled;
      else
        ++r->other;
    }
  }
  std::printf(
      "\n| job kind | accepted | succeeded | failed | cancelled | other |\n"
      "|---|---:|---:|---:|---:|---:|\n");
  auto print_row = [](const std::string& name, const KindRow& r) {
    std::printf("| %s | %lld | %lld | %lld | %lld | %lld |\n", name.c_str(),
                static_cast<long long>(r.accepted), static_cast<long long>(r.succeeded),
                static_cast<long long>(r.failed), static_cast<long long>(r.cancelled),
                static_cast<long long>(r.other));
  };
  for (const auto& [name, row] : rows) print_row(name, row);
  print_row("**total**", total);
}

void print_attempts(const ChaosReport& report, const WorkloadCounts& counts) {
  std::map<std::string, std::int64_t> outcomes;
  std::int64_t attempts = 0;
  for (const auto& [id, job] : report.state.jobs) {
    for (const auto& a : job.attempt_rows) {
      ++outcomes[a.outcome.empty() ? "running" : a.outcome];
      ++attempts;
    }
  }
  std::set<std::pair<std::string, int>> lost;
  for (const auto& [id, job] : report.state.jobs) {
    for (const auto& a : job.attempt_rows) {
      if (a.outcome == "lost") lost.insert({id, a.attempt});
    }
  }
  const auto reruns =
      std::count_if(report.state.ledger.begin(), report.state.ledger.end(), [&](const auto& l) {
        return lost.contains({l.job_id, l.attempt});
      });
  std::printf("\nattempts %lld:", static_cast<long long>(attempts));
  for (const auto& [outcome, n] : outcomes) {
    std::printf(" %s %lld", outcome.c_str(), static_cast<long long>(n));
  }
  const auto poison_confirmed = std::count_if(report.poison.begin(), report.poison.end(),
                                              [](const auto& p) { return p.confirmed; });
  std::printf(
      "\nhandler runs (ledger lines) %zu, of which on attempts recorded lost %lld\n"
      "poison messages published %zu (confirmed %lld); dead letters %zu\n"
      "HTTP requests %lld, retried on the other producer %lld, idempotent replays %lld\n",
      report.state.ledger.size(), static_cast<long long>(reruns), report.poison.size(),
      static_cast<long long>(poison_confirmed), report.state.dead_letters.size(),
      static_cast<long long>(counts.requests.load()),
      static_cast<long long>(counts.failovers.load()),
      static_cast<long long>(counts.idempotent_replays.load()));
}

void print_faults(const ChaosReport& report) {
  std::map<std::string, std::vector<double>> recovery;
  for (const auto& fault : report.faults) {
    recovery[std::string(fault_name(fault.kind))].push_back(fault.recovery_seconds);
  }
  std::printf(
      "\n| fault | injected | recovery median (s) | recovery max (s) |\n"
      "|---|---:|---:|---:|\n");
  for (auto& [name, times] : recovery) {
    std::sort(times.begin(), times.end());
    std::printf("| %s | %zu | %.1f | %.1f |\n", name.c_str(), times.size(), times[times.size() / 2],
                times.back());
  }
  std::printf("| **total** | %zu | | |\n", report.faults.size());
}

void print_invariants(const ChaosReport& report) {
  std::printf("\n| invariant | checked | result |\n|---|---:|---|\n");
  for (const auto& result : report.invariants) {
    std::printf("| %s | %lld | %s |\n", result.name.c_str(), static_cast<long long>(result.checked),
                result.held()
                    ? "held"
                    : ("**" + std::to_string(result.violation_count) + " violations**").c_str());
  }
  for (const auto& result : report.invariants) {
    for (const auto& violation : result.violations) {
      std::printf("  VIOLATION %s: %s\n", result.name.c_str(), violation.c_str());
    }
  }
}

}  // namespace

void print_report(const ChaosReport& report, const WorkloadCounts& counts) {
  std::printf("\n## Chaos soak: seed %llu, %.0f s of load and faults, quiet %.0f s later\n",
              static_cast<unsigned long long>(report.seed), report.soak_seconds,
              report.settle_seconds);
  print_jobs(report);
  print_attempts(report, counts);
  print_faults(report);
  print_invariants(report);
  std::fflush(stdout);
}

}  // namespace warren::chaos
