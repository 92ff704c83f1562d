// Delayed and scheduled jobs (MESSAGING.md "Delay infrastructure"): exact delays through the
// broker's TTL levels, and jobs beyond the broker horizon (an hour) waiting in Postgres.
#include <gtest/gtest.h>

#include "shared/time_format.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;

class Delay : public IntegrationTest {};

TEST_F(Delay, DelayedJobReachesItsWorkQueueAfterTheDelay) {
  start_producer();
  auto c = api();
  const auto submitted = std::chrono::steady_clock::now();
  // 3 s = bits 0 and 1: the message passes two TTL levels before reaching the work queue.
  auto r = post_json(*c, "/v1/jobs",
                     {{"type", "noop"}, {"payload", json::object()}, {"delay_ms", 3000}});
  ASSERT_EQ(r->status, 202) << r->body;
  EXPECT_EQ(json::parse(r->body)["status"], "scheduled");
  const std::string id = json::parse(r->body)["id"];
  // Early: published into the delay levels but not in the work queue.
  ASSERT_TRUE(wait_until([&] { return query_int("SELECT count(*) FROM outbox") == 0; },
                         std::chrono::seconds(2)));
  EXPECT_EQ(queue_depth("default"), 0u);
  auto message = take_message("default", std::chrono::milliseconds(3000 + 1500 + 500));
  const auto arrived = std::chrono::steady_clock::now() - submitted;
  ASSERT_TRUE(message) << "the delayed job never reached the work queue";
  EXPECT_EQ(message->message_id, id);
  EXPECT_GE(arrived, std::chrono::milliseconds(2900));
  EXPECT_LE(arrived, std::chrono::milliseconds(4500));  // within 1.5 s of its time
  // Once due, the API shows it waiting for a consumer.
  EXPECT_EQ(json::parse(c->Get(("/v1/jobs/" + id).c_str())->body)["status"], "queued");
}

TEST_F(Delay, RunAtBeyondTheHourWaitsInPostgres) {
  start_producer();
  auto c = api();
  const auto run_at = std::chrono::system_clock::now() + std::chrono::hours(3);
  auto r = post_json(
      *c, "/v1/jobs",
      {{"type", "noop"}, {"payload", json::object()}, {"run_at", format_rfc3339_ms(run_at)}});
  ASSERT_EQ(r->status, 202) << r->body;
  const std::string id = json::parse(r->body)["id"];
  auto job = json::parse(c->Get(("/v1/jobs/" + id).c_str())->body);
  EXPECT_EQ(job["status"], "scheduled");
  EXPECT_EQ(job["scheduled_for"], format_rfc3339_ms(run_at));
  // The relay leaves it alone until an hour before its time.
  std::this_thread::sleep_for(std::chrono::milliseconds(600));  // several relay polls (200 ms)
  EXPECT_EQ(query_int("SELECT count(*) FROM outbox WHERE job_id = '" + id + "'"), 1);
  EXPECT_EQ(
      query_int("SELECT round(extract(epoch FROM deliver_at - available_at))::int FROM outbox"),
      3600);
  // Move its time close (as the clock would): the relay publishes it into the delay levels.
  execute("UPDATE outbox SET available_at = now(), deliver_at = now() + interval '2 seconds' ");
  EXPECT_TRUE(wait_until([&] { return query_int("SELECT count(*) FROM outbox") == 0; },
                         std::chrono::seconds(3)));
  auto message = take_message("default", std::chrono::seconds(5));
  ASSERT_TRUE(message);
  EXPECT_EQ(message->message_id, id);
}

TEST_F(Delay, CancelledScheduledJobIsNeverPublished) {
  start_producer();
  auto c = api();
  auto r = post_json(*c, "/v1/jobs",
                     {{"type", "noop"}, {"payload", json::object()}, {"delay_ms", 7200000}});
  const std::string id = json::parse(r->body)["id"];
  ASSERT_EQ(c->Post(("/v1/jobs/" + id + "/cancel").c_str(), "", "application/json")->status, 200);
  // When its outbox row comes due, the relay drops it without publishing.
  execute("UPDATE outbox SET available_at = now(), deliver_at = now()");
  ASSERT_TRUE(wait_until([&] { return query_int("SELECT count(*) FROM outbox") == 0; },
                         std::chrono::seconds(5)));
  EXPECT_FALSE(take_message("default", std::chrono::milliseconds(500)));
}

}  // namespace
}  // namespace warren::test
