// Scenario 3, submit: one POST /v1/jobs per job from 64 concurrent keep-alive connections, as
// an application fleet submits; accepted jobs/s and the request latency seen by the clients.
// Each 202 means the job row was committed (fsync on): the producer's group commit is what
// lets 64 waiting requests share one commit instead of paying one fsync each.
#include "http_load.h"
#include "job_bodies.h"
#include "scenarios.h"
#include "warren_deployment.h"

namespace warren::bench {

SubmitRun run_submit(const BenchContext& context) {
  const int jobs = context.sizes.submit_jobs;
  const int connections = context.sizes.submit_connections;
  const auto bodies = single_job_bodies(jobs, kNoopJob);
  // No consumers: this measures accepting work; the jobs wait in the queue.
  WarrenDeployment deployment(context, DeploymentShape("submit", 1, 0));
  const pid_t producer = deployment.producer_pids()[0];
  const double producer_cpu_before = process_usage(producer).cpu_seconds;
  const auto machine_before = machine_cpu();
  const auto load = post_closed_loop(deployment.producer_port(), "/v1/jobs", bodies, connections);
  const auto machine_after = machine_cpu();
  const auto usage = process_usage(producer);
  SubmitRun run;
  run.producer_peak_rss_mib = usage.peak_rss_mib;
  deployment.stop();

  const double rate = load.accepted / load.seconds;
  const double p99 = quantile(load.latencies_ms, 0.99);
  auto& r = run.result;
  r.scenario = "3 submit";
  r.setup = std::to_string(jobs) + " single POST /v1/jobs (noop) from " +
            std::to_string(connections) + " keep-alive connections, closed loop, 1 producer.";
  r.add("accepted jobs/s", rate, "jobs/s");
  r.add("p50 latency", quantile(load.latencies_ms, 0.50), "ms");
  r.add("p99 latency", p99, "ms");
  r.add("max latency", quantile(load.latencies_ms, 1.0), "ms");
  r.add("machine CPU busy (all processes, the load generator too)",
        busy_percent(machine_before, machine_after), "%");
  r.add("producer CPU per 1000 jobs", 1000 * (usage.cpu_seconds - producer_cpu_before) / jobs, "s");
  r.goal = ">= 5,000 jobs/s with p99 <= 25 ms";
  r.goal_met = rate >= 5000 && p99 <= 25;
  return run;
}

ScenarioResult memory_result(const DrainRun& drain, const SubmitRun& submit) {
  ScenarioResult r;
  r.scenario = "6 memory";
  r.setup = "peak RSS (VmHWM) of the processes of (2) and (3).";
  r.add("producer, drain", drain.producer_peak_rss_mib, "MiB");
  r.add("consumer, drain", drain.consumer_peak_rss_mib, "MiB");
  r.add("producer, submit (64 connections)", submit.producer_peak_rss_mib, "MiB");
  r.goal = "<= 64 MiB each";
  r.goal_met = drain.producer_peak_rss_mib <= 64 && drain.consumer_peak_rss_mib <= 64 &&
               submit.producer_peak_rss_mib <= 64;
  return r;
}

}  // namespace warren::bench
