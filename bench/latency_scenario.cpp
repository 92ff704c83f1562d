// Scenario 4, latency: a steady rate of single submissions (an open loop: requests leave on
// schedule whatever the earlier ones did) to a producer and 2 consumers; per job, the time from
// submit (the job's created_at, stamped by the producer on arrival) to `succeeded` (its
// finished_at, stamped by the consumer), read from the rows.
#include "http_load.h"
#include "job_bodies.h"
#include "scenarios.h"
#include "warren_deployment.h"

namespace warren::bench {
namespace {

constexpr int kConnections = 32;

// The q-quantile, in ms, of `interval` (an SQL expression over jobs) across every job.
std::string percentile_sql(double q, const std::string& interval = "finished_at - created_at") {
  return "SELECT percentile_cont(" + std::to_string(q) +
         ") WITHIN GROUP (ORDER BY extract(epoch FROM " + interval + ") * 1000) FROM jobs";
}

}  // namespace

ScenarioResult run_latency(const BenchContext& context) {
  const int rate = context.sizes.latency_rate;
  const int jobs = rate * context.sizes.latency_seconds;
  const auto bodies = single_job_bodies(jobs, kNoopJob);
  WarrenDeployment deployment(context, DeploymentShape("latency", 1, 2));
  const auto load = post_paced(deployment.producer_port(), bodies, rate, kConnections);
  deployment.wait_until_succeeded(jobs, std::chrono::seconds(120));
  const double p50 = deployment.query_number(percentile_sql(0.50));
  const double p99 = deployment.query_number(percentile_sql(0.99));
  const double max = deployment.query_number(percentile_sql(1.0));
  // Where the time went: until the attempt's claim was committed (the outbox relay, the broker,
  // the consumer's window and its claim batch), then until the outcome was (handler, outcome
  // batch). Both stamps are the batches' commit-time clocks (attempt_store.h).
  const double to_start_p50 =
      deployment.query_number(percentile_sql(0.50, "started_at - created_at"));
  const double to_start_p99 =
      deployment.query_number(percentile_sql(0.99, "started_at - created_at"));
  const double to_finish_p50 =
      deployment.query_number(percentile_sql(0.50, "finished_at - started_at"));
  const double to_finish_p99 =
      deployment.query_number(percentile_sql(0.99, "finished_at - started_at"));
  deployment.stop();

  ScenarioResult r;
  r.scenario = "4 latency";
  r.setup = std::to_string(rate) + " noop jobs/s for " +
            std::to_string(context.sizes.latency_seconds) + " s (single POSTs over " +
            std::to_string(kConnections) + " connections), 1 producer, 2 consumers.";
  r.add("offered rate achieved", load.accepted / load.seconds, "jobs/s");
  r.add("submit -> succeeded p50", p50, "ms");
  r.add("submit -> succeeded p99", p99, "ms");
  r.add("submit -> succeeded max", max, "ms");
  r.add("of which submit -> attempt started p50", to_start_p50, "ms");
  r.add("of which submit -> attempt started p99", to_start_p99, "ms");
  r.add("of which attempt started -> succeeded p50", to_finish_p50, "ms");
  r.add("of which attempt started -> succeeded p99", to_finish_p99, "ms");
  r.add("submit request p99", quantile(load.latencies_ms, 0.99), "ms");
  r.goal = "p50 <= 15 ms, p99 <= 60 ms";
  r.goal_met = p50 <= 15 && p99 <= 60;
  return r;
}

}  // namespace warren::bench
