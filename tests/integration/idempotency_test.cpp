// Idempotency keys under concurrency (API.md "Idempotency"): the unique constraint decides, so
// 50 simultaneous duplicates create exactly one job.
#include <gtest/gtest.h>

#include <future>

#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;

class Idempotency : public IntegrationTest {};

TEST_F(Idempotency, FiftyConcurrentDuplicatesCreateOneJob) {
  start_producer();
  const json job = {{"type", "email.send"},
                    {"payload", {{"to", "a@example.com"}}},
                    {"idempotency_key", "order-123-confirmation"}};
  std::vector<std::future<std::pair<int, json>>> answers;
  std::vector<std::string> replay_headers(50);
  for (int i = 0; i < 50; ++i) {
    answers.push_back(std::async(std::launch::async, [&, i] {
      auto c = api();
      auto r = post_json(*c, "/v1/jobs", job);
      replay_headers[static_cast<std::size_t>(i)] = r->get_header_value("Idempotent-Replayed");
      return std::make_pair(r->status, json::parse(r->body));
    }));
  }
  int created = 0, replayed = 0;
  std::set<std::string> ids;
  for (std::size_t i = 0; i < answers.size(); ++i) {
    auto [status, body] = answers[i].get();
    if (status == 202) ++created;
    if (status == 200) {
      ++replayed;
      EXPECT_EQ(replay_headers[i], "true");
    }
    ids.insert(body["id"].get<std::string>());
  }
  EXPECT_EQ(created, 1);
  EXPECT_EQ(replayed, 49);
  EXPECT_EQ(ids.size(), 1u);
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs"), 1);
  // One message: once the relay has committed (until then its row is in the outbox and, after
  // the broker's confirm, its message in the queue too: summing both raced under ASan).
  ASSERT_TRUE(wait_until([&] { return query_int("SELECT count(*) FROM outbox") == 0; },
                         std::chrono::seconds(15)));
  EXPECT_EQ(queue_depth("default"), 1u);
}

TEST_F(Idempotency, SameKeyDifferentBodyIsAConflictAndHeaderEqualsField) {
  start_producer();
  auto c = api();
  auto first = post_json(*c, "/v1/jobs", {{"type", "noop"}, {"payload", {{"n", 1}}}},
                         {{"Idempotency-Key", "k-1"}});
  ASSERT_EQ(first->status, 202);
  // Same request through the field instead of the header, keys in another order: a replay.
  auto replay =
      c->Post("/v1/jobs", R"({"payload": {"n": 1}, "idempotency_key": "k-1", "type": "noop"})",
              "application/json");
  EXPECT_EQ(replay->status, 200);
  EXPECT_EQ(json::parse(replay->body)["id"], json::parse(first->body)["id"]);
  auto conflict = post_json(*c, "/v1/jobs", {{"type", "noop"}, {"payload", {{"n", 2}}}},
                            {{"Idempotency-Key", "k-1"}});
  EXPECT_EQ(conflict->status, 409);
  EXPECT_EQ(json::parse(conflict->body)["type"], "https://warren.dev/problems/conflict");
  auto mismatch = post_json(
      *c, "/v1/jobs", {{"type", "noop"}, {"payload", json::object()}, {"idempotency_key", "a"}},
      {{"Idempotency-Key", "b"}});
  EXPECT_EQ(mismatch->status, 400);
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs"), 1);
}

TEST_F(Idempotency, BatchWithAConflictingKeyWritesNothing) {
  start_producer();
  auto c = api();
  ASSERT_EQ(post_json(*c, "/v1/jobs",
                      {{"type", "noop"}, {"payload", {{"n", 1}}}, {"idempotency_key", "taken"}})
                ->status,
            202);
  json jobs =
      json::array({{{"type", "noop"}, {"payload", json::object()}, {"idempotency_key", "new-1"}},
                   {{"type", "noop"}, {"payload", {{"n", 9}}}, {"idempotency_key", "taken"}},
                   {{"type", "noop"}, {"payload", json::object()}}});
  auto r = post_json(*c, "/v1/jobs/batch", {{"jobs", jobs}});
  ASSERT_EQ(r->status, 409) << r->body;
  EXPECT_EQ(json::parse(r->body)["errors"][0]["field"], "jobs[1].idempotency_key");
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs"), 1);

  // The same batch with the original request for "taken" replays it and creates the others.
  jobs[1]["payload"] = {{"n", 1}};
  r = post_json(*c, "/v1/jobs/batch", {{"jobs", jobs}});
  ASSERT_EQ(r->status, 202) << r->body;
  EXPECT_EQ(json::parse(r->body)["jobs"][1]["idempotent_replayed"], true);
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs"), 3);
}

// Two writers committing batches with the same keys in opposite order used to deadlock
// (Postgres 40P01, answered 500). Keys are now taken in one order, and rollbacks retried.
TEST_F(Idempotency, OpposedBatchesWithSharedKeysDoNotDeadlock) {
  start_producer();
  std::vector<std::future<int>> statuses;
  for (int pair = 0; pair < 20; ++pair) {
    json forward = json::array(), backward = json::array();
    for (int k = 0; k < 20; ++k) {
      forward.push_back(
          {{"type", "noop"},
           {"payload", {{"k", k}}},
           {"idempotency_key", "p" + std::to_string(pair) + "-" + std::to_string(k)}});
    }
    for (auto it = forward.rbegin(); it != forward.rend(); ++it) backward.push_back(*it);
    for (const auto& jobs : {forward, backward}) {
      statuses.push_back(std::async(std::launch::async, [this, jobs] {
        return post_json(*api(), "/v1/jobs/batch", {{"jobs", jobs}})->status;
      }));
    }
  }
  for (auto& status : statuses) EXPECT_EQ(status.get(), 202);
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs"), 400);
}

// A request the database refuses must not fail the requests that shared its commit.
TEST_F(Idempotency, BadRequestsNeverFailTheOthersSharingTheirCommit) {
  start_producer();
  std::vector<std::future<int>> good, bad;
  for (int i = 0; i < 100; ++i) {
    good.push_back(std::async(std::launch::async, [this, i] {
      return post_json(*api(), "/v1/jobs", {{"type", "noop"}, {"payload", {{"i", i}}}})->status;
    }));
    bad.push_back(std::async(std::launch::async, [this] {
      return api()
          ->Post("/v1/jobs", R"({"type":"noop","payload":{"x":"\u0000"}})", "application/json")
          ->status;
    }));
  }
  for (auto& status : good) EXPECT_EQ(status.get(), 202);
  for (auto& status : bad) EXPECT_EQ(status.get(), 400);
}

}  // namespace
}  // namespace warren::test
