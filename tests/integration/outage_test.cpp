// Outages (MESSAGING.md guarantee 1, API.md 503): a broker outage delays jobs but loses none
// and fails no submission; a database outage answers 503 with Retry-After, and the producer
// recovers by itself. These tests really stop the test servers (by PID, via scripts/stack.sh).
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace warren::test
