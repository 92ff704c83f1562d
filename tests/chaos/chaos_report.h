// The chaos soak's summary: jobs by kind and end, attempts, faults by kind with their recovery
// times, and every invariant with what it checked. Printed as markdown tables, so a long run's
// summary can go into the README's "Reliability" section as it is.
#pragma once

#include <vector>

#include "chaos/fault_injector.h"
#include "chaos/invariants.h"
#include "chaos/workload.h"

namespace warren::chaos {

struct ChaosReport {
  std::uint64_t seed = 0;
  double soak_seconds = 0;    // workload and faults
  double settle_seconds = 0;  // then until the cluster was quiet
  std::vector<SubmittedJob> submitted;
  std::vector<PoisonMessage> poison;
  std::vector<FaultRecord> faults;
  SoakState state;
  std::vector<InvariantResult> invariants;
};

// Clients always got an answer: no submission given up, no valid request refused with a 4xx.
InvariantResult client_invariant(const WorkloadCounts& counts);
// Every fault was recovered from (all processes ready again), rolling restarts exited 0 within
// their grace, the cluster went quiet, and every process stopped cleanly at the end.
InvariantResult fault_invariant(const std::vector<FaultRecord>& faults, bool went_quiet,
                                const std::vector<std::string>& unclean_stops);

void print_report(const ChaosReport& report, const WorkloadCounts& counts);

}  // namespace warren::chaos
