// The scenarios of the suite (issue 6), one file each under bench/. Each builds what it needs
// (its own topology or Warren deployment), measures, tears down, and returns its numbers.
//
//   1 floor    the broker alone: persistent + confirms + consume + ack on a quorum queue
//   2 drain    batched submit -> 2 consumers -> every job `succeeded`; ratio to the floor
//   3 submit   single POSTs from 64 connections: accepted jobs/s, p50/p99 latency
//   4 latency  a steady rate: submit -> `succeeded` p50/p99
//   5 retry    jobs failing once with a 1 s backoff: completion time, retry lateness p99
//   6 memory   peak RSS of the producer and a consumer during 2 and 3
//   7 scale    drain with 1, 2, 4 consumer processes
#pragma once

#include <vector>

#include "bench_context.h"
#include "bench_result.h"

namespace warren::bench {

ScenarioResult run_floor(const BenchContext& context);

// What a drain measured, beyond its result row: the scale and memory scenarios reuse it.
struct DrainRun {
  ScenarioResult result;
  int consumers = 0;
  double jobs_per_second = 0;
  double producer_peak_rss_mib = 0;
  double consumer_peak_rss_mib = 0;  // the largest of the consumers
};
DrainRun run_drain(const BenchContext& context, int consumers, double floor_jobs_per_second);

struct SubmitRun {
  ScenarioResult result;
  double producer_peak_rss_mib = 0;
};
SubmitRun run_submit(const BenchContext& context);

ScenarioResult run_latency(const BenchContext& context);
ScenarioResult run_retry(const BenchContext& context);
ScenarioResult memory_result(const DrainRun& drain, const SubmitRun& submit);
ScenarioResult scale_result(const std::vector<DrainRun>& drains);

}  // namespace warren::bench
