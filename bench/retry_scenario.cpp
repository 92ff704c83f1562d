// Scenario 5, retry: jobs whose handler fails the first attempt and succeeds the second, with
// a 1 s backoff (equal jitter makes each delay 0.5..1 s, MESSAGING.md). The retry goes through
// the broker's delay exchanges; its lateness is when attempt 2 started minus when it was due
// (attempt 1's finished_at + the retry_delay_ms recorded with it).
#include "http_load.h"
#include "job_bodies.h"
#include "scenarios.h"
#include "warren_deployment.h"

namespace warren::bench {
namespace {

constexpr char kFailOnceJob[] = R"({"type":"fail","payload":{"times":1},"max_attempts":3,)"
                                R"("backoff":{"initial_ms":1000,"factor":1,"max_ms":1000}})";

std::string lateness_sql(double q) {
  return "SELECT percentile_cont(" + std::to_string(q) +
         ") WITHIN GROUP (ORDER BY extract(epoch FROM a2.started_at - a1.finished_at) * 1000"
         " - a1.retry_delay_ms) FROM job_attempts a1 JOIN job_attempts a2"
         " ON a2.job_id = a1.job_id AND a2.attempt = 2 WHERE a1.attempt = 1";
}

}  // namespace

ScenarioResult run_retry(const BenchContext& context) {
  const int jobs = context.sizes.retry_jobs;
  const auto bodies = batch_bodies(jobs, 1000, kFailOnceJob);
  WarrenDeployment deployment(context, DeploymentShape("retry", 1, 2));
  const auto load = post_closed_loop(deployment.producer_port(), "/v1/jobs/batch", bodies, 2, 1000);
  deployment.wait_until_succeeded(jobs, std::chrono::seconds(120 + jobs / 100));
  const double completion = deployment.seconds_to_last_finish(load.started_at);
  const double attempts = deployment.query_number("SELECT count(*) FROM job_attempts");
  const double p50 = deployment.query_number(lateness_sql(0.50));
  const double p99 = deployment.query_number(lateness_sql(0.99));
  const double max = deployment.query_number(lateness_sql(1.0));
  deployment.stop();

  ScenarioResult r;
  r.scenario = "5 retry";
  r.setup = std::to_string(jobs) +
            " jobs failing their first attempt, backoff 1 s (0.5..1 s with jitter), submitted "
            "in batches of 1000; 1 producer, 2 consumers.";
  r.add("completion (first submit -> last succeeded)", completion, "s");
  r.add("attempts recorded", attempts, "");
  r.add("retry lateness p50", p50, "ms");
  r.add("retry lateness p99", p99, "ms");
  r.add("retry lateness max", max, "ms");
  r.goal = "lateness p99 <= 1,500 ms";
  r.goal_met = p99 <= 1500;
  return r;
}

}  // namespace warren::bench
