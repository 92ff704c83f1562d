// Outages (MESSAGING.md guarantee 1, API.md 503): a broker outage delays jobs but loses none
// and fails no submission; a database outage answers 503 with Retry-After, and the producer
// recovers by itself. These tests really stop the test servers (by PID, via scripts/stack.sh).
#include <gtest/gtest.h>

#include <cstdio>
#include <set>
#include <thread>

#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;

class Outage : public IntegrationTest {};

TEST_F(Outage, BrokerDownSubmissionsAreAcceptedAndPublishedWhenItReturns) {
  start_producer();
  auto c = api();
  ASSERT_TRUE(
      wait_until([&] { return c->Get("/readyz")->status == 200; }, std::chrono::seconds(10)));
  stack_command("stop-rabbitmq");
  struct Restart {  // the broker comes back even if an assertion below fails
    ~Restart() { stack_command("start-rabbitmq"); }
  };
  std::set<std::string> ids;
  {
    Restart restart_at_scope_end;
    for (int i = 0; i < 200; ++i) {
      auto r = post_json(*c, "/v1/jobs", {{"type", "noop"}, {"payload", {{"i", i}}}});
      ASSERT_TRUE(r);
      ASSERT_EQ(r->status, 202) << r->body;
      ids.insert(json::parse(r->body)["id"].get<std::string>());
    }
    auto ready = c->Get("/readyz");
    EXPECT_EQ(ready->status, 503);
    EXPECT_EQ(json::parse(ready->body)["broker"], "down");
    EXPECT_EQ(query_int("SELECT count(*) FROM outbox"), 200);
  }
  // Back: everything is published, exactly the accepted jobs, and the outbox drains.
  ASSERT_TRUE(wait_until([&] { return query_int("SELECT count(*) FROM outbox") == 0; },
                         std::chrono::seconds(60)))
      << producer_->process().log();
  std::set<std::string> published;
  while (auto message = take_message("default", std::chrono::seconds(2))) {
    published.insert(message->message_id);
  }
  EXPECT_EQ(published, ids);
  EXPECT_TRUE(
      wait_until([&] { return c->Get("/readyz")->status == 200; }, std::chrono::seconds(10)));
}

TEST_F(Outage, DatabaseDownAnswers503WithRetryAfterThenRecovers) {
  start_producer();
  auto c = api();
  const json job = {{"type", "noop"}, {"payload", json::object()}};
  ASSERT_EQ(post_json(*c, "/v1/jobs", job)->status, 202);
  stack_command("stop-postgres");
  {
    struct Restart {
      ~Restart() { stack_command("start-postgres"); }
    } restart_at_scope_end;
    auto r = post_json(*c, "/v1/jobs", job);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 503) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/problem+json");
    EXPECT_FALSE(r->get_header_value("Retry-After").empty());
    EXPECT_EQ(c->Get("/v1/jobs")->status, 503);
    auto ready = c->Get("/readyz");
    EXPECT_EQ(ready->status, 503);
    EXPECT_EQ(json::parse(ready->body)["database"], "down");
  }
  ASSERT_TRUE(wait_until([&] { return post_json(*c, "/v1/jobs", job)->status == 202; },
                         std::chrono::seconds(30), std::chrono::milliseconds(250)))
      << producer_->process().log();
  EXPECT_EQ(c->Get("/v1/jobs")->status, 200);
  auto metrics = c->Get("/metrics")->body;
  EXPECT_EQ(metrics.find("status=\"500\""), std::string::npos) << metrics;
}

// Delay queues dead-letter expired messages "at least once" (quorum queues): a job that comes due
// while the broker restarts is dead-lettered onward as the queue recovers. On RabbitMQ 3.10 the
// queue's dead-letter worker can start before it finds its next exchange, and then waits
// dead_letter_worker_publisher_confirm_timeout (default 180 s) before trying again: the chaos
// soak saw every delayed job and retry stall for three minutes after a broker restart.
// rabbitmq/advanced.config lowers that to 15 s; this test fails with the default.
TEST_F(Outage, DelayedJobsDueDuringABrokerRestartRunSoonAfterIt) {
  start_producer();
  start_consumer();
  auto c = api();
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    auto r =
        post_json(*c, "/v1/jobs",
                  {{"type", "noop"}, {"payload", json::object()}, {"delay_ms", 2000 + 100 * i}});
    ASSERT_EQ(r->status, 202) << r->body;
    ids.push_back(json::parse(r->body)["id"].get<std::string>());
  }
  ASSERT_TRUE(wait_until([&] { return query_int("SELECT count(*) FROM outbox") == 0; },
                         std::chrono::seconds(10)));
  // Every job comes due while the broker is down.
  stack_command("stop-rabbitmq");
  std::this_thread::sleep_for(std::chrono::seconds(5));
  stack_command("start-rabbitmq");
  const auto back = std::chrono::steady_clock::now();
  const bool all_ran = wait_until(
      [&] { return query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded'") == 20; },
      std::chrono::seconds(60), std::chrono::milliseconds(250));
  const auto took =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - back);
  EXPECT_TRUE(all_ran) << query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded'")
                       << " of 20 delayed jobs ran within 60 s of the broker's return";
  std::printf("delayed jobs due during the restart ran %lld s after the broker was back\n",
              static_cast<long long>(took.count()));
}

}  // namespace
}  // namespace warren::test
