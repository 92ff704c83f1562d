// The consumer against the real broker and database: jobs end in the right state with exactly
// the attempt rows MESSAGING.md prescribes (retries through the delay infrastructure, dead
// letters with their headers), timeouts, cancellation, poison messages, unknown types, stuck
// handlers and the workers view.
#include <gtest/gtest.h>

#include <set>

#include "consumer/attempt_store.h"
#include "shared/topology.h"
#include "support/jobs.h"
#include "support/sanitizers.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Delays of 0.5 s - 1 s: the delay infrastructure rounds them up to 1 s.
const json kFastBackoff = {{"initial_ms", 1000}, {"factor", 1}, {"max_ms", 1000}};

class ConsumerFlowTest : public IntegrationTest {
 protected:
  // These tests check the dead-letter messages the consumer publishes, on the queue itself.
  ConsumerFlowTest() { dead_letter_recorder_ = false; }

  bool all_terminal(std::chrono::milliseconds timeout) {
    return wait_until(
        [&] {
          return query_int(
                     "SELECT count(*) FROM jobs WHERE status NOT IN "
                     "('succeeded', 'failed', 'cancelled')") == 0;
        },
        timeout, 200ms);
  }

  std::string job_status(const std::string& id) {
    return query_value("SELECT to_json(status) FROM jobs WHERE id = '" + id + "'")
        .get<std::string>();
  }

  std::string metrics_of(RunningConsumer& consumer) {
    auto r = consumer.health_client()->Get("/metrics");
    return r ? r->body : "";
  }
};

TEST_F(ConsumerFlowTest, MixedJobsThroughTwoConsumersEndExactlyAsScripted) {
  start_producer();
  // Enough slots that retries never queue behind the first wave: lateness measures the delay
  // infrastructure and the consumer, not a backlog.
  start_consumer({{"WARREN_CONCURRENCY", "32"}});
  start_consumer({{"WARREN_CONCURRENCY", "32"}});

  // Five kinds, 200 of each, interleaved.
  const std::vector<std::pair<std::string, json>> kinds = {
      {"noop", {{"type", "noop"}, {"payload", json::object()}}},
      {"sleep", {{"type", "sleep"}, {"payload", {{"ms", 20}}}}},
      {"fail_twice", {{"type", "fail"}, {"payload", {{"times", 2}}}, {"max_attempts", 5}}},
      {"always_fail", {{"type", "fail"}, {"payload", {{"message", "down"}}}, {"max_attempts", 3}}},
      {"permanent", {{"type", "fail"}, {"payload", {{"permanent", true}}}, {"max_attempts", 5}}},
  };
  std::vector<json> jobs;
  for (int i = 0; i < 1000; ++i) {
    const auto& [kind, spec] = kinds[static_cast<std::size_t>(i) % kinds.size()];
    json job = spec;
    job["backoff"] = kFastBackoff;
    job["metadata"] = {{"kind", kind}};
    jobs.push_back(job);
  }
  const auto started = std::chrono::steady_clock::now();
  submit_jobs(*api(), jobs);
  ASSERT_TRUE(all_terminal(90s)) << query_value(
      "SELECT json_agg(json_build_object('status', status, 'n', n)) FROM "
      "(SELECT status, count(*) n FROM jobs GROUP BY status) s");
  const auto took = std::chrono::steady_clock::now() - started;
  std::cout << "1000 mixed jobs (with retries) took "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";

  // Per kind: the final status and the exact sequence of attempt outcomes and error types.
  const json groups = query_value(R"(
    SELECT json_object_agg(kind || ' ' || status || ' ' || outcomes, n) FROM (
      SELECT kind, status, outcomes, count(*) AS n FROM (
        SELECT j.metadata->>'kind' AS kind, j.status,
               string_agg(a.outcome || ':' || coalesce(a.error->>'type', '-'), ','
                          ORDER BY a.attempt) AS outcomes
        FROM jobs j JOIN job_attempts a ON a.job_id = j.id GROUP BY j.id) per_job
      GROUP BY kind, status, outcomes) g)");
  const json expected = {
      {"noop succeeded succeeded:-", 200},
      {"sleep succeeded succeeded:-", 200},
      {"fail_twice succeeded failed:fail,failed:fail,succeeded:-", 200},
      {"always_fail failed failed:fail,failed:fail,failed:fail", 200},
      {"permanent failed permanent_failure:fail_permanent", 200},
  };
  EXPECT_EQ(groups, expected);

  // Attempt numbers are 1..n, jobs.attempts says n, and only retried attempts carry a delay
  // (equal jitter of 1000 ms: 500..1000).
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs j WHERE attempts <> "
                      "(SELECT count(*) FROM job_attempts a WHERE a.job_id = j.id) OR attempts <> "
                      "(SELECT max(attempt) FROM job_attempts a WHERE a.job_id = j.id)"),
            0);
  EXPECT_EQ(query_int(R"(SELECT count(*) FROM job_attempts a JOIN jobs j ON j.id = a.job_id
                         WHERE a.outcome = 'failed' AND a.attempt < j.max_attempts
                           AND a.retry_delay_ms BETWEEN 500 AND 1000)"),
            200 * 2 + 200 * 2);
  EXPECT_EQ(query_int("SELECT count(*) FROM job_attempts WHERE retry_delay_ms IS NOT NULL"), 800);

  // The retry started within +1.5 s of when it was due (finished_at + retry delay; more under a
  // sanitizer); never before it (allowing 50 ms for the clocks of two processes and rounding).
  const json lateness = query_value(R"(
    SELECT json_build_object('min', min(late), 'max', max(late)) FROM (
      SELECT extract(epoch FROM next.started_at - (a.finished_at +
                     a.retry_delay_ms * interval '1 millisecond')) AS late
      FROM job_attempts a JOIN job_attempts next
        ON next.job_id = a.job_id AND next.attempt = a.attempt + 1
      WHERE a.retry_delay_ms IS NOT NULL) l)");
  std::cout << "retry lateness (s): " << lateness << "\n";
  EXPECT_GE(lateness["min"].get<double>(), -0.05) << lateness;
  EXPECT_LE(lateness["max"].get<double>(), 1.5 * test::kTimingSlack) << lateness;

  // Succeeded jobs carry the handler's result; failed ones their last error.
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs WHERE metadata->>'kind' = 'fail_twice' AND "
                      "result = '{\"failed_attempts\": 2}'"),
            200);
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs WHERE status = 'failed' AND "
                      "last_error->>'type' IN ('fail', 'fail_permanent') AND finished_at IS NOT "
                      "NULL"),
            400);

  // Each failed job has exactly one dead letter, in the table and on the dead-letter queue.
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters"), 400);
  EXPECT_EQ(query_int("SELECT count(DISTINCT job_id) FROM dead_letters"), 400);
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters WHERE reason = 'max_attempts'"), 200);
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters WHERE reason = 'permanent_failure'"), 200);
  const auto messages = take_dead_letters(400, 20s);
  ASSERT_EQ(messages.size(), 400u);
  std::set<std::string> dead_ids;
  for (const auto& m : messages) {
    dead_ids.insert(m.message_id);
    const auto reason = m.headers.get_string("x-warren-reason");
    ASSERT_TRUE(reason == "max_attempts" || reason == "permanent_failure") << m.headers;
    EXPECT_TRUE(m.headers.get_string("x-warren-error-type").has_value()) << m.headers;
    EXPECT_TRUE(m.headers.get_string("x-warren-error-message").has_value()) << m.headers;
    EXPECT_TRUE(m.headers.get_string("x-warren-failed-at").has_value()) << m.headers;
    EXPECT_EQ(m.headers.get_string("x-warren-queue"), "default");
    EXPECT_TRUE(m.headers.get_string(consumer::kDeadLetterIdHeader).has_value()) << m.headers;
    EXPECT_EQ(m.routing_key, "default");
  }
  EXPECT_EQ(dead_ids.size(), 400u);
  // Nothing is left on the work queue.
  EXPECT_EQ(queue_depth("default"), 0u);
}

TEST_F(ConsumerFlowTest, TimedOutAttemptsAreRecordedAndRetriedThenDeadLettered) {
  start_producer();
  start_consumer();
  const auto id = submit_job(*api(), {{"type", "sleep"},
                                      {"payload", {{"ms", 60000}}},
                                      {"timeout_ms", 300},
                                      {"max_attempts", 2},
                                      {"backoff", kFastBackoff}});
  ASSERT_TRUE(wait_until([&] { return job_status(id) == "failed"; }, 20s)) << job_status(id);
  const json attempts = query_value(
      "SELECT json_agg(json_build_object('outcome', outcome, 'error', error, 'ms', "
      "extract(epoch FROM finished_at - started_at) * 1000) ORDER BY attempt) FROM job_attempts "
      "WHERE job_id = '" +
      id + "'");
  ASSERT_EQ(attempts.size(), 2u) << attempts;
  for (const auto& a : attempts) {
    EXPECT_EQ(a["outcome"], "timed_out");
    EXPECT_EQ(a["error"]["type"], "timeout");
    EXPECT_EQ(a["error"]["message"], "attempt exceeded 300 ms");
    // The sleep honoured its stop token: recorded right after the timeout, not after 60 s.
    EXPECT_LT(a["ms"].get<double>(), 1500) << a;
  }
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters WHERE job_id = '" + id +
                      "' AND reason = 'max_attempts' AND error_type = 'timeout'"),
            1);
}

TEST_F(ConsumerFlowTest, CancellingARunningJobStopsItsHandlerWithinASecond) {
  start_producer();
  start_consumer();
  const auto id = submit_job(*api(), {{"type", "sleep"}, {"payload", {{"ms", 60000}}}});
  ASSERT_TRUE(wait_until([&] { return job_status(id) == "running"; }, 10s));

  const auto asked = std::chrono::steady_clock::now();
  auto response = post_json(*api(), "/v1/jobs/" + id + "/cancel", json::object());
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  EXPECT_EQ(json::parse(response->body)["cancel_requested"], true);
  ASSERT_TRUE(wait_until([&] { return job_status(id) == "cancelled"; }, 5s, 20ms));
  const auto took = std::chrono::steady_clock::now() - asked;
  EXPECT_LT(took, 1500ms) << "cancellation took "
                          << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
                          << " ms";
  EXPECT_EQ(query_value("SELECT json_agg(outcome) FROM job_attempts WHERE job_id = '" + id + "'"),
            json::array({"cancelled"}));
  // Cancelled is terminal: no retry, no dead letter.
  std::this_thread::sleep_for(1500ms);
  EXPECT_EQ(query_int("SELECT count(*) FROM job_attempts WHERE job_id = '" + id + "'"), 1);
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters"), 0);
}

TEST_F(ConsumerFlowTest, PoisonMessageIsRejectedIntoTheDeadLetterQueue) {
  start_producer();  // declares the topology
  auto& consumer = start_consumer();
  {
    auto connection = broker();
    connection.enable_confirms();
    amqp::OutgoingMessage poison;
    poison.exchange = TopologyNames{prefix_}.jobs_exchange();
    poison.routing_key = "default";
    poison.body = std::string("not json \x01\x02", 11);
    poison.message_id = "poison-1";
    connection.publish(poison);
    ASSERT_TRUE(connection.wait_for_confirms(5s).all_acked());
  }
  const auto messages = take_dead_letters(1, 10s);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].body, std::string("not json \x01\x02", 11));
  EXPECT_EQ(messages[0].message_id, "poison-1");
  ASSERT_TRUE(messages[0].headers.contains("x-death")) << messages[0].headers;
  EXPECT_NE(metrics_of(consumer).find("warren_poison_messages_total 1"), std::string::npos);
  EXPECT_TRUE(consumer.ready());
  EXPECT_EQ(query_int("SELECT count(*) FROM job_attempts"), 0);
}

// A well-formed job whose data Postgres refuses (NUL in a payload string; the producer would
// have answered 400, but anything can publish to the exchange): its claim cannot be written.
// It must neither wedge the batches of other jobs nor vanish: it is rejected, so the broker
// dead-letters it.
TEST_F(ConsumerFlowTest, JobTheDatabaseRefusesIsDeadLetteredWithoutBlockingOthers) {
  start_producer();
  start_consumer();
  const std::string bad_id = "0193c0de-0000-7000-8000-000000000001";
  {
    auto connection = broker();
    connection.enable_confirms();
    amqp::OutgoingMessage message;
    message.exchange = TopologyNames{prefix_}.jobs_exchange();
    message.routing_key = "default";
    message.content_type = "application/json";
    message.message_id = bad_id;
    message.body = json{{"id", bad_id},       {"type", "noop"},
                        {"queue", "default"}, {"payload", {{"s", std::string("a\0b", 3)}}},
                        {"max_attempts", 1},  {"created_at", "2026-01-01T00:00:00.000Z"}}
                       .dump();
    connection.publish(message);
    ASSERT_TRUE(connection.wait_for_confirms(5s).all_acked());
  }
  const auto ok_ids = submit_jobs(
      *api(), std::vector<json>(20, json{{"type", "noop"}, {"payload", json::object()}}));
  const auto messages = take_dead_letters(1, 15s);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].message_id, bad_id);
  ASSERT_TRUE(wait_until(
      [&] { return query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded'") == 20; },
      15s));
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs WHERE id = '" + bad_id + "'"), 0);
}

TEST_F(ConsumerFlowTest, UnknownJobTypeFailsPermanentlyWithADeadLetter) {
  start_producer();
  start_consumer();
  const auto id = submit_job(*api(), {{"type", "no.such.handler"}, {"payload", json::object()}});
  ASSERT_TRUE(wait_until([&] { return job_status(id) == "failed"; }, 10s));
  EXPECT_EQ(query_value("SELECT json_agg(json_build_object('outcome', outcome, 'type', "
                        "error->>'type')) FROM job_attempts WHERE job_id = '" +
                        id + "'"),
            json::parse(R"([{"outcome": "permanent_failure", "type": "unknown_type"}])"));
  const auto messages = take_dead_letters(1, 10s);
  ASSERT_EQ(messages.size(), 1u);
  EXPECT_EQ(messages[0].headers.get_string("x-warren-reason"), "permanent_failure");
  EXPECT_EQ(messages[0].headers.get_string("x-warren-error-type"), "unknown_type");
}

TEST_F(ConsumerFlowTest, StuckHandlerCostsASlotAndFailsLivenessPastTheLimit) {
  start_producer();
  auto& consumer = start_consumer({{"WARREN_MAX_STUCK_HANDLERS", "0"}});
  // Ignores its stop token for 4 s; its attempt times out after 200 ms.
  const auto id = submit_job(*api(), {{"type", "stubborn"},
                                      {"payload", {{"ms", 4000}}},
                                      {"timeout_ms", 200},
                                      {"max_attempts", 1}});
  ASSERT_TRUE(wait_until([&] { return job_status(id) == "failed"; }, 10s));
  // Closed as timed_out after the timeout plus the 1 s stop grace, without the handler.
  EXPECT_EQ(query_value("SELECT to_json(outcome) FROM job_attempts WHERE job_id = '" + id + "'"),
            "timed_out");
  EXPECT_NE(metrics_of(consumer).find("warren_stuck_handlers 1"), std::string::npos)
      << metrics_of(consumer);
  EXPECT_TRUE(wait_until(
      [&] {
        auto r = consumer.health_client()->Get("/healthz");
        return r && r->status == 503;
      },
      3s));
  // When the handler finally returns, its slot is free and the consumer is live again.
  EXPECT_TRUE(wait_until(
      [&] {
        auto r = consumer.health_client()->Get("/healthz");
        return r && r->status == 200;
      },
      10s));
  EXPECT_NE(metrics_of(consumer).find("warren_stuck_handlers 0"), std::string::npos);
}

TEST_F(ConsumerFlowTest, WorkersViewShowsConsumersRunningThenStopped) {
  start_producer();
  auto& consumer = start_consumer({{"WARREN_CONCURRENCY", "3"}});
  submit_jobs(*api(), std::vector<json>(10, json{{"type", "noop"}, {"payload", json::object()}}));
  ASSERT_TRUE(wait_until(
      [&] { return query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded'") == 10; },
      20s));
  json worker;
  std::string last_answer;
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = api()->Get("/v1/workers");
        if (!r || r->status != 200) return false;
        last_answer = r->body;
        const json answer = json::parse(r->body);
        for (const auto& w : answer["workers"]) {
          if (w["id"] == consumer.worker_id() && w["processed"] == 10) worker = w;
        }
        return !worker.is_null();
      },
      5s))
      << last_answer;
  EXPECT_EQ(worker["state"], "running");
  EXPECT_EQ(worker["concurrency"], 3);
  EXPECT_EQ(worker["queues"], json::array({"default"}));
  EXPECT_EQ(worker["failed"], 0);

  EXPECT_EQ(consumer.stop(), 0);
  auto r = api()->Get("/v1/workers");
  ASSERT_TRUE(r);
  const auto workers = json::parse(r->body)["workers"];
  ASSERT_EQ(workers.size(), 1u);
  EXPECT_EQ(workers[0]["state"], "stopped");
}

}  // namespace
}  // namespace warren::test
