// Several producer replicas share one outbox (FOR UPDATE SKIP LOCKED): every accepted job is
// published, and none twice, whichever replica's relay takes it.
#include <gtest/gtest.h>

#include <future>

#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;

class OutboxRelayReplicas : public IntegrationTest {};

TEST_F(OutboxRelayReplicas, TwoProducersPublishEveryJobExactlyOnce) {
  // Small relay batches and fast polls make the two relays compete for the same rows.
  const std::map<std::string, std::string> env{{"WARREN_OUTBOX_BATCH", "20"},
                                               {"WARREN_OUTBOX_POLL_MS", "20"}};
  start_producer(env);
  auto second_env = warren_env();
  second_env.insert(env.begin(), env.end());
  RunningProducer second(second_env, "producer-second-" + prefix_);

  auto submit_many = [](std::unique_ptr<httplib::Client> client) {
    std::set<std::string> ids;
    for (int batch = 0; batch < 10; ++batch) {
      json jobs = json::array();
      for (int i = 0; i < 50; ++i) jobs.push_back({{"type", "noop"}, {"payload", {{"i", i}}}});
      auto r = post_json(*client, "/v1/jobs/batch", {{"jobs", jobs}});
      if (!r || r->status != 202) throw std::runtime_error("batch refused");
      const auto answer = json::parse(r->body);  // kept alive: the loop iterates into it
      for (const auto& job : answer["jobs"]) ids.insert(job["id"].get<std::string>());
    }
    return ids;
  };
  auto first_ids = std::async(std::launch::async, submit_many, api());
  auto second_ids = std::async(std::launch::async, submit_many, second.client());
  std::set<std::string> accepted = first_ids.get();
  for (const auto& id : second_ids.get()) accepted.insert(id);
  ASSERT_EQ(accepted.size(), 1000u);

  ASSERT_TRUE(wait_until([&] { return query_int("SELECT count(*) FROM outbox") == 0; },
                         std::chrono::seconds(30)));
  std::map<std::string, int> published;
  while (auto message = take_message("default", std::chrono::seconds(2))) {
    ++published[message->message_id];
  }
  EXPECT_EQ(published.size(), 1000u);
  for (const auto& [id, times] : published) {
    EXPECT_EQ(times, 1) << id;
    EXPECT_TRUE(accepted.count(id)) << id;
  }
  // Both relays did part of the work.
  auto relayed = [](httplib::Client& client) {
    const auto metrics = client.Get("/metrics")->body;
    const std::string name = "\nwarren_outbox_published_total ";  // the sample, not # HELP
    auto at = metrics.find(name);
    return at == std::string::npos ? 0 : std::stoi(metrics.substr(at + name.size()));
  };
  const int by_first = relayed(*api()), by_second = relayed(*second.client());
  EXPECT_EQ(by_first + by_second, 1000);
  EXPECT_GT(by_first, 0);
  EXPECT_GT(by_second, 0);
  EXPECT_EQ(second.stop(), 0);
}

}  // namespace
}  // namespace warren::test
