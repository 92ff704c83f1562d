// The consumer when things break: a consumer SIGKILLed or SIGTERMed mid-load, the broker or the
// database restarted under a run, a handler that crashes its process until the broker's
// delivery limit dead-letters the message. After each, every job must end terminal with a
// consistent attempt log (MESSAGING.md "Guarantees").
#include <gtest/gtest.h>
#include <signal.h>

#include "shared/topology.h"
#include "support/jobs.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class ConsumerResilienceTest : public IntegrationTest {
 protected:
  int64_t unfinished() {
    return query_int(
        "SELECT count(*) FROM jobs WHERE status NOT IN ('succeeded', 'failed', 'cancelled')");
  }

  // The attempt log of every job is consistent: numbered 1..n with n = jobs.attempts, every
  // attempt closed, exactly one `succeeded` attempt (the last) for a succeeded job, and only
  // `lost` attempts before it (these tests run jobs that always succeed).
  void expect_consistent_attempts() {
    EXPECT_EQ(query_int(R"(SELECT count(*) FROM jobs j WHERE j.attempts <>
                             (SELECT count(*) FROM job_attempts a WHERE a.job_id = j.id)
                           OR j.attempts <>
                             (SELECT coalesce(max(attempt), 0) FROM job_attempts a
                              WHERE a.job_id = j.id))"),
              0);
    EXPECT_EQ(query_int("SELECT count(*) FROM job_attempts WHERE outcome IS NULL"), 0);
    EXPECT_EQ(query_int(R"(SELECT count(*) FROM jobs j WHERE status = 'succeeded' AND
                             (SELECT count(*) FROM job_attempts a WHERE a.job_id = j.id
                              AND a.outcome = 'succeeded') <> 1)"),
              0);
    EXPECT_EQ(query_int(R"(SELECT count(*) FROM job_attempts a JOIN jobs j ON j.id = a.job_id
                           WHERE a.outcome NOT IN ('succeeded', 'lost')
                              OR (a.outcome = 'succeeded' AND a.attempt <> j.attempts))"),
              0);
  }

  std::string outcome_summary() {
    return query_value(
               "SELECT json_object_agg(k, n) FROM (SELECT coalesce(outcome, 'running') k, "
               "count(*) n FROM job_attempts GROUP BY 1) s")
        .dump();
  }
};

TEST_F(ConsumerResilienceTest, SigkilledConsumersAttemptsAreLostAndRedoneElsewhere) {
  start_producer();
  auto& doomed = start_consumer({{"WARREN_CONCURRENCY", "100"}});
  submit_jobs(*api(), std::vector<json>(200, json{{"type", "sleep"}, {"payload", {{"ms", 3000}}}}));
  // Let the doomed consumer take a good share before the second one starts.
  ASSERT_TRUE(wait_until(
      [&] {
        return query_int("SELECT count(*) FROM job_attempts WHERE outcome IS NULL AND worker = '" +
                         doomed.worker_id() + "'") >= 50;
      },
      20s));
  start_consumer({{"WARREN_CONCURRENCY", "100"}});
  const int64_t running_on_doomed =
      query_int("SELECT count(*) FROM job_attempts WHERE outcome IS NULL AND worker = '" +
                doomed.worker_id() + "'");
  doomed.process().kill_now();

  ASSERT_TRUE(wait_until([&] { return unfinished() == 0; }, 60s)) << outcome_summary();
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded'"), 200);
  // Every attempt that was running on the killed consumer is `lost` (a few may have finished
  // between the count and the kill), and each of those jobs then succeeded on the other one.
  const int64_t lost = query_int("SELECT count(*) FROM job_attempts WHERE outcome = 'lost'");
  EXPECT_GE(lost, running_on_doomed - 5);
  EXPECT_LE(lost, running_on_doomed);
  EXPECT_EQ(query_int("SELECT count(*) FROM job_attempts WHERE outcome = 'lost' AND "
                      "(worker <> '" +
                      doomed.worker_id() + "' OR error->>'type' <> 'worker_lost')"),
            0);
  expect_consistent_attempts();
}

TEST_F(ConsumerResilienceTest, SigtermMidLoadExitsZeroWithinTheGraceAndLosesNothing) {
  start_producer();
  auto& leaving = start_consumer({{"WARREN_SHUTDOWN_GRACE_MS", "8000"}});
  start_consumer();
  submit_jobs(*api(), std::vector<json>(600, json{{"type", "sleep"}, {"payload", {{"ms", 150}}}}));
  ASSERT_TRUE(wait_until(
      [&] { return query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded'") >= 100; },
      30s));
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_EQ(leaving.stop(), 0) << leaving.process().log();
  const auto took = std::chrono::steady_clock::now() - asked;
  EXPECT_LT(took, 8s) << "shutdown took "
                      << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                      << " ms";

  ASSERT_TRUE(wait_until([&] { return unfinished() == 0; }, 60s)) << outcome_summary();
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded'"), 600);
  EXPECT_EQ(query_int("SELECT count(*) FROM job_attempts WHERE outcome <> 'succeeded'"), 0)
      << outcome_summary();
  expect_consistent_attempts();
  EXPECT_EQ(query_value("SELECT to_json(stopped_at IS NOT NULL) FROM workers WHERE id = '" +
                        leaving.worker_id() + "'"),
            true);
}

// A handler still running when the grace period ends is stopped; its attempt is recorded
// `lost` (worker_shutdown), its message requeued, and another consumer runs the job again.
TEST_F(ConsumerResilienceTest, HandlerOutlastingTheGraceIsStoppedRecordedLostAndRunElsewhere) {
  start_producer();
  auto& leaving = start_consumer({{"WARREN_SHUTDOWN_GRACE_MS", "500"}});
  const auto id = submit_job(*api(), {{"type", "sleep"}, {"payload", {{"ms", 2000}}}});
  ASSERT_TRUE(wait_until(
      [&] {
        return query_int("SELECT count(*) FROM jobs WHERE status = 'running' AND id = '" + id +
                         "'") == 1;
      },
      10s));
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_EQ(leaving.stop(), 0) << leaving.process().log();
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 3s);
  // Recorded and requeued before the process left.
  EXPECT_EQ(query_value("SELECT json_build_object('outcome', outcome, 'error', error->>'type') "
                        "FROM job_attempts WHERE job_id = '" +
                        id + "'"),
            json::parse(R"({"outcome": "lost", "error": "worker_shutdown"})"));
  EXPECT_EQ(query_value("SELECT to_json(status) FROM jobs WHERE id = '" + id + "'"), "queued");

  start_consumer();
  ASSERT_TRUE(wait_until([&] { return unfinished() == 0; }, 20s)) << outcome_summary();
  EXPECT_EQ(query_value("SELECT json_agg(outcome ORDER BY attempt) FROM job_attempts WHERE "
                        "job_id = '" +
                        id + "'"),
            json::parse(R"(["lost", "succeeded"])"));
  expect_consistent_attempts();
}

// Broker or database restarted under a run of 2,000 jobs: consumers stay up, stop consuming,
// reconnect, and every job ends succeeded with a consistent log.
class ConsumerOutageTest : public ConsumerResilienceTest,
                           public ::testing::WithParamInterface<std::string> {};

TEST_P(ConsumerOutageTest, EveryJobEndsTerminalAcrossARestart) {
  const std::string server = GetParam();
  start_producer();
  auto& first = start_consumer();
  auto& second = start_consumer();
  std::vector<json> jobs;
  for (int i = 0; i < 2000; ++i) {
    jobs.push_back(i % 2 == 0 ? json{{"type", "noop"}, {"payload", json::object()}}
                              : json{{"type", "sleep"}, {"payload", {{"ms", 30}}}});
  }
  submit_jobs(*api(), jobs);
  ASSERT_TRUE(wait_until(
      [&] { return query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded'") >= 300; },
      60s));
  stack_command("stop-" + server);
  // Consumers notice and say so, but stay alive.
  EXPECT_TRUE(wait_until([&] { return !first.ready() && !second.ready(); }, 30s));
  EXPECT_TRUE(first.process().running());
  EXPECT_TRUE(second.process().running());
  stack_command("start-" + server);
  EXPECT_TRUE(wait_until([&] { return first.ready() && second.ready(); }, 60s))
      << first.process().log();

  ASSERT_TRUE(wait_until([&] { return unfinished() == 0; }, 120s)) << outcome_summary();
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded'"), 2000);
  expect_consistent_attempts();
  std::cout << server << " restart: attempts " << outcome_summary() << "\n";
}

INSTANTIATE_TEST_SUITE_P(Servers, ConsumerOutageTest, ::testing::Values("rabbitmq", "postgres"));

TEST_F(ConsumerResilienceTest, HandlerThatCrashesItsProcessEndsFailedByDeliveryLimit) {
  const std::map<std::string, std::string> limit = {{"WARREN_DELIVERY_LIMIT", "2"}};
  start_producer(limit);
  const auto id =
      submit_job(*api(), {{"type", "crash"}, {"payload", json::object()}, {"max_attempts", 10}});
  // Each consumer aborts on the job; the broker counts the deliveries and, past the limit,
  // dead-letters the message, which the next consumer's dead-letter recorder records.
  auto recorded = [&] {
    return query_int("SELECT count(*) FROM dead_letters WHERE job_id = '" + id + "'") > 0;
  };
  for (int round = 0; round < 6 && !recorded(); ++round) {
    auto& consumer = start_consumer(limit, false);
    wait_until([&] { return !consumer.process().running() || recorded(); }, 20s);
  }
  ASSERT_TRUE(wait_until(recorded, 10s)) << "never dead-lettered";
  const json dead = query_json(
      "SELECT reason, error_type, attempts, headers->'x-death'->0->>'reason' AS broker_reason, "
      "payload FROM dead_letters WHERE job_id = '" +
      id + "'")[0];
  EXPECT_EQ(dead["reason"], "delivery_limit");
  EXPECT_EQ(dead["error_type"], "delivery_limit");
  EXPECT_EQ(dead["broker_reason"], "delivery_limit");
  EXPECT_EQ(dead["payload"], json::object());
  // MESSAGING.md: the job becomes failed when the recorder sees it.
  const json job = query_json(
      "SELECT status, attempts, last_error->>'type' AS error FROM jobs "
      "WHERE id = '" +
      id + "'")[0];
  EXPECT_EQ(job["status"], "failed");
  EXPECT_EQ(job["error"], "delivery_limit");
  EXPECT_EQ(dead["attempts"], job["attempts"]);
  // Every attempt ended `lost` (its consumer died), none left open, none duplicated.
  EXPECT_EQ(query_int("SELECT count(*) FROM job_attempts WHERE job_id = '" + id +
                      "' AND outcome IS DISTINCT FROM 'lost'"),
            0);
  EXPECT_GE(query_int("SELECT count(*) FROM job_attempts WHERE job_id = '" + id + "'"), 1);
  EXPECT_EQ(queue_depth("default"), 0u);
}

}  // namespace
}  // namespace warren::test
