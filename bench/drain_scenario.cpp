// Scenario 2, drain (and the runs behind 6 memory and 7 scale): N noop jobs submitted through
// POST /v1/jobs/batch, 1000 per request, to a producer and K consumers that are already
// waiting; jobs/s from the first submit to the last `succeeded` row (the rows' finished_at,
// written by the consumers' commits). Everything a job is promised happens on the way: the job
// row and outbox row committed before the 202, the publish confirmed, the attempt claimed and
// recorded, the ack after the commit.
#include <algorithm>
#include <cmath>

#include "http_load.h"
#include "job_bodies.h"
#include "scenarios.h"
#include "warren_deployment.h"

namespace warren::bench {
namespace {

constexpr int kJobsPerBatch = 1000;
constexpr int kSubmitConnections = 2;  // one per submit writer of the producer

// Where the time went, from the processes' own metrics: how well the group commits and the
// confirm batches filled up.
struct Pipeline {
  double claims_per_commit, outcomes_per_commit, commit_ms;
  double jobs_per_submit_commit, messages_per_confirm_wait;
};

Pipeline read_pipeline(const WarrenDeployment& d) {
  auto mean = [](double sum, double count) { return count > 0 ? sum / count : 0.0; };
  const double commits = d.consumer_metric("warren_db_commit_seconds_count");
  return {
      .claims_per_commit =
          mean(d.consumer_metric(R"(warren_db_batch_size_sum{kind="claims"})"), commits),
      .outcomes_per_commit =
          mean(d.consumer_metric(R"(warren_db_batch_size_sum{kind="outcomes"})"), commits),
      .commit_ms = 1000 * mean(d.consumer_metric("warren_db_commit_seconds_sum"), commits),
      .jobs_per_submit_commit = mean(d.producer_metric("warren_submit_batch_jobs_sum"),
                                     d.producer_metric("warren_submit_batch_jobs_count")),
      .messages_per_confirm_wait = mean(d.producer_metric("warren_outbox_batch_messages_sum"),
                                        d.producer_metric("warren_outbox_batch_messages_count")),
  };
}

}  // namespace

DrainRun run_drain(const BenchContext& context, int consumers, double floor_jobs_per_second) {
  const int jobs = context.sizes.drain_jobs;
  const auto bodies = batch_bodies(jobs, kJobsPerBatch, kNoopJob);
  WarrenDeployment deployment(
      context, DeploymentShape("drain-" + std::to_string(consumers) + "c", 1, consumers));
  std::vector<double> consumer_cpu_before;
  for (auto pid : deployment.consumer_pids()) {
    consumer_cpu_before.push_back(process_usage(pid).cpu_seconds);
  }
  const double producer_cpu_before = process_usage(deployment.producer_pids()[0]).cpu_seconds;
  const auto machine_before = machine_cpu();

  const auto load = post_closed_loop(deployment.producer_port(), "/v1/jobs/batch", bodies,
                                     kSubmitConnections, kJobsPerBatch);
  deployment.wait_until_succeeded(jobs, std::chrono::seconds(60 + jobs / 100));
  const auto machine_after = machine_cpu();
  const double seconds = deployment.seconds_to_last_finish(load.started_at);

  DrainRun run;
  run.consumers = consumers;
  run.jobs_per_second = jobs / seconds;
  double consumer_cpu = 0;
  const auto pids = deployment.consumer_pids();
  for (std::size_t i = 0; i < pids.size(); ++i) {
    const auto usage = process_usage(pids[i]);
    consumer_cpu += usage.cpu_seconds - consumer_cpu_before[i];
    run.consumer_peak_rss_mib = std::max(run.consumer_peak_rss_mib, usage.peak_rss_mib);
  }
  const auto producer = process_usage(deployment.producer_pids()[0]);
  const auto pipeline = read_pipeline(deployment);
  run.producer_peak_rss_mib = producer.peak_rss_mib;
  deployment.stop();

  auto& r = run.result;
  r.scenario = "2 drain";
  r.setup = std::to_string(jobs) + " noop jobs in batches of " + std::to_string(kJobsPerBatch) +
            " over " + std::to_string(kSubmitConnections) + " connections to 1 producer, " +
            std::to_string(consumers) + " consumer(s) at their defaults.";
  r.add("jobs/s (first submit -> last succeeded)", run.jobs_per_second, "jobs/s");
  r.add("submit phase (all 202s)", load.accepted / load.seconds, "jobs/s");
  r.add("ratio to floor", run.jobs_per_second / floor_jobs_per_second, "");
  r.add("machine CPU busy (all processes, 2 cores = 100%)",
        busy_percent(machine_before, machine_after), "%");
  r.add("consumer CPU per 1000 jobs", 1000 * consumer_cpu / jobs, "s");
  r.add("producer CPU per 1000 jobs", 1000 * (producer.cpu_seconds - producer_cpu_before) / jobs,
        "s");
  r.add("consumer commits: mean claims per commit", pipeline.claims_per_commit, "");
  r.add("consumer commits: mean outcomes per commit", pipeline.outcomes_per_commit, "");
  r.add("consumer commits: mean duration", pipeline.commit_ms, "ms");
  r.add("producer: mean jobs per submit commit", pipeline.jobs_per_submit_commit, "");
  r.add("producer: mean messages per confirm wait", pipeline.messages_per_confirm_wait, "");
  r.goal = "ratio to floor >= 0.75";
  r.goal_met = run.jobs_per_second / floor_jobs_per_second >= 0.75;
  return run;
}

ScenarioResult scale_result(const std::vector<DrainRun>& drains) {
  ScenarioResult r;
  r.scenario = "7 scale";
  r.setup = "the drain of (2) with 1, 2, 4... consumer processes, each its own run.";
  for (const auto& drain : drains) {
    r.add(std::to_string(drain.consumers) + (drain.consumers == 1 ? " consumer" : " consumers"),
          drain.jobs_per_second, "jobs/s");
  }
  return r;
}

}  // namespace warren::bench
