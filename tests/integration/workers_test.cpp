// The workers table and GET /v1/workers (API.md "Operations and health", MESSAGING.md
// "Heartbeat"), against a real Postgres and producer: rows written through
// shared/db/worker_registry.h as a consumer writes them, the answer's shape, the running /
// stopped / gone states, the read scope, and retention of departed workers' rows.
#include <gtest/gtest.h>

#include <fstream>
#include <pqxx/pqxx>
#include <regex>
#include <set>

#include "producer/retention_cleaner.h"
#include "shared/db/worker_registry.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

class Workers : public IntegrationTest {
 protected:
  // Runs `write` in one committed transaction on this test's database, as a consumer would.
  template <typename Write>
  void in_transaction(Write&& write) {
    pqxx::connection connection(database_->url());
    pqxx::work tx(connection);
    write(tx);
    tx.commit();
  }

  void register_worker(const std::string& id, std::chrono::milliseconds heartbeat,
                       std::vector<std::string> queues = {"default"}) {
    in_transaction([&](pqxx::work& tx) {
      db::register_worker(tx, {id, "host-" + id, "1.2.3", std::move(queues), 8, heartbeat});
    });
  }

  // Moves a worker's times into the past, as if it had started and last beaten that long ago.
  void age(const std::string& id, const std::string& started_ago, const std::string& beat_ago) {
    execute("UPDATE workers SET started_at = now() - interval '" + started_ago +
            "', last_heartbeat_at = now() - interval '" + beat_ago + "' WHERE id = '" + id + "'");
  }

  json workers() {
    auto r = api()->Get("/v1/workers");
    EXPECT_TRUE(r);
    if (!r) return json();
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json; charset=utf-8");
    return json::parse(r->body);
  }

  static std::map<std::string, json> by_id(const json& answer) {
    std::map<std::string, json> rows;
    for (const auto& w : answer["workers"]) rows[w["id"].get<std::string>()] = w;
    return rows;
  }
};

TEST_F(Workers, ListShowsEveryWorkerWithItsStateNewestStartFirst) {
  start_producer();
  EXPECT_EQ(workers(), json({{"workers", json::array()}}));

  register_worker("w-stopped", 5000ms);
  in_transaction([](pqxx::work& tx) { db::mark_worker_stopped(tx, "w-stopped", {0, 40, 2}); });
  age("w-stopped", "3 hours", "10 minutes");
  // No heartbeat for just over 3 intervals of 5 s: gone.
  register_worker("w-gone", 5000ms);
  age("w-gone", "2 hours", "16 seconds");
  // No heartbeat for 2 of its own (longer) intervals: still running.
  register_worker("w-slow", 60000ms);
  age("w-slow", "1 hour", "2 minutes");
  // Late by more than 2 intervals but fewer than 3: still running.
  register_worker("w-late", 5000ms);
  age("w-late", "30 minutes", "12 seconds");
  register_worker("w-running", 5000ms, {"default", "emails"});
  bool found = false;
  in_transaction([&](pqxx::work& tx) {
    found = db::record_heartbeat(tx, "w-running", {3, 120, 7});
  });
  EXPECT_TRUE(found);

  const auto answer = workers();
  ASSERT_EQ(answer["workers"].size(), 5u) << answer.dump();
  std::vector<std::string> order;
  for (const auto& w : answer["workers"]) order.push_back(w["id"]);
  EXPECT_EQ(order,
            (std::vector<std::string>{"w-running", "w-late", "w-slow", "w-gone", "w-stopped"}));

  const std::set<std::string> fields{"id",          "host",       "queues",
                                     "concurrency", "in_flight",  "processed",
                                     "failed",      "started_at", "last_heartbeat_at",
                                     "version",     "state"};
  const std::regex rfc3339(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$)");
  for (const auto& w : answer["workers"]) {
    std::set<std::string> keys;
    for (const auto& [key, value] : w.items()) keys.insert(key);
    EXPECT_EQ(keys, fields) << w.dump();
    EXPECT_TRUE(std::regex_match(w["started_at"].get<std::string>(), rfc3339)) << w.dump();
    EXPECT_TRUE(std::regex_match(w["last_heartbeat_at"].get<std::string>(), rfc3339)) << w.dump();
  }

  auto rows = by_id(answer);
  EXPECT_EQ(rows["w-running"]["state"], "running");
  EXPECT_EQ(rows["w-running"]["host"], "host-w-running");
  EXPECT_EQ(rows["w-running"]["queues"], json({"default", "emails"}));
  EXPECT_EQ(rows["w-running"]["concurrency"], 8);
  EXPECT_EQ(rows["w-running"]["in_flight"], 3);
  EXPECT_EQ(rows["w-running"]["processed"], 120);
  EXPECT_EQ(rows["w-running"]["failed"], 7);
  EXPECT_EQ(rows["w-running"]["version"], "1.2.3");
  EXPECT_EQ(rows["w-late"]["state"], "running");
  EXPECT_EQ(rows["w-slow"]["state"], "running");
  EXPECT_EQ(rows["w-gone"]["state"], "gone");
  EXPECT_EQ(rows["w-stopped"]["state"], "stopped");
  EXPECT_EQ(rows["w-stopped"]["processed"], 40);
  EXPECT_EQ(rows["w-stopped"]["failed"], 2);
  EXPECT_EQ(rows["w-stopped"]["in_flight"], 0);

  // A gone worker that beats again is running again; a stopped one that restarts under the same
  // id starts afresh; a heartbeat for a row that is not there says so.
  in_transaction([&](pqxx::work& tx) {
    EXPECT_TRUE(db::record_heartbeat(tx, "w-gone", {1, 5, 0}));
    db::register_worker(tx, {"w-stopped", "host-new", "1.2.4", {"default"}, 4, 5000ms});
    EXPECT_FALSE(db::record_heartbeat(tx, "w-never-registered", {0, 0, 0}));
  });
  rows = by_id(workers());
  EXPECT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows["w-gone"]["state"], "running");
  EXPECT_EQ(rows["w-gone"]["processed"], 5);
  EXPECT_EQ(rows["w-stopped"]["state"], "running");
  EXPECT_EQ(rows["w-stopped"]["processed"], 0);
  EXPECT_EQ(rows["w-stopped"]["failed"], 0);
  EXPECT_EQ(rows["w-stopped"]["concurrency"], 4);
  EXPECT_EQ(rows["w-stopped"]["host"], "host-new");
  EXPECT_EQ(rows["w-stopped"]["version"], "1.2.4");
  EXPECT_EQ(query_int("SELECT count(*) FROM workers WHERE stopped_at IS NOT NULL"), 0);
  EXPECT_EQ(query_int("SELECT count(*) FROM workers WHERE id = 'w-stopped' AND "
                      "started_at > now() - interval '1 minute'"),
            1);
}

TEST_F(Workers, ListNeedsTheReadScope) {
  const std::string tokens = test_env("WARREN_TEST_STACK_DIR") + "/tokens-" + prefix_;
  std::ofstream(tokens) << "submitter s0000000000000000001 submit\n"
                           "reader    r0000000000000000001 read\n"
                           "operator  a0000000000000000001 admin\n";
  start_producer({{"WARREN_API_TOKENS_FILE", tokens}});
  auto c = api();
  auto with = [](const std::string& token) {
    return httplib::Headers{{"Authorization", "Bearer " + token}};
  };
  auto none = c->Get("/v1/workers");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("WWW-Authenticate").rfind("Bearer", 0), 0u);
  EXPECT_EQ(none->get_header_value("Content-Type"), "application/problem+json");
  EXPECT_EQ(c->Get("/v1/workers", with("wrong0000000000000000"))->status, 401);
  auto submit_only = c->Get("/v1/workers", with("s0000000000000000001"));
  EXPECT_EQ(submit_only->status, 403);
  EXPECT_EQ(submit_only->get_header_value("Content-Type"), "application/problem+json");
  EXPECT_EQ(c->Get("/v1/workers", with("r0000000000000000001"))->status, 200);
  EXPECT_EQ(c->Get("/v1/workers", with("a0000000000000000001"))->status, 200);
  // Other methods on the path: 405 naming GET.
  auto post = c->Post("/v1/workers", with("a0000000000000000001"), "{}", "application/json");
  EXPECT_EQ(post->status, 405);
  EXPECT_EQ(post->get_header_value("Allow"), "GET");
  // Counted under the route's pattern.
  auto metrics = c->Get("/metrics");
  EXPECT_NE(
      metrics->body.find("warren_http_requests_total{route=\"GET /v1/workers\",status=\"403\"} 1"),
      std::string::npos)
      << metrics->body;
}

TEST_F(Workers, RetentionDeletesOnlyWorkersStoppedOrGoneLongAgo) {
  ASSERT_EQ(warrenctl({"migrate"}).exit_code, 0);
  register_worker("live", 5000ms);
  age("live", "3 days", "1 second");
  register_worker("stopped-recently", 5000ms);
  in_transaction([](pqxx::work& tx) { db::mark_worker_stopped(tx, "stopped-recently", {}); });
  register_worker("stopped-long-ago", 5000ms);
  in_transaction([](pqxx::work& tx) { db::mark_worker_stopped(tx, "stopped-long-ago", {}); });
  age("stopped-long-ago", "3 days", "25 hours");
  register_worker("gone-long-ago", 5000ms);
  age("gone-long-ago", "3 days", "25 hours");
  register_worker("gone-recently", 5000ms);
  age("gone-recently", "3 days", "2 hours");
  // Silent for 25 hours, but its interval is 10 hours: not gone, whatever the age.
  register_worker("slow", 36000000ms);
  age("slow", "3 days", "25 hours");

  auto remaining = [&] {
    std::set<std::string> ids;
    for (const auto& row : query_json("SELECT id FROM workers")) ids.insert(row["id"]);
    return ids;
  };
  int deleted = -1;
  in_transaction([&](pqxx::work& tx) { deleted = db::delete_old_workers(tx, 24h); });
  EXPECT_EQ(deleted, 2);
  EXPECT_EQ(remaining(),
            (std::set<std::string>{"live", "stopped-recently", "gone-recently", "slow"}));

  // The retention pass does the same with its setting; 0 keeps the rows forever.
  pqxx::connection connection(database_->url());
  RetentionSettings settings;
  EXPECT_EQ(settings.departed_workers, std::chrono::seconds(24h));
  settings.departed_workers = std::chrono::seconds(0);
  EXPECT_EQ(run_retention(connection, settings).workers, 0);
  EXPECT_EQ(remaining().size(), 4u);
  settings.departed_workers = 1h;
  EXPECT_EQ(run_retention(connection, settings).workers, 1);
  EXPECT_EQ(remaining(), (std::set<std::string>{"live", "stopped-recently", "slow"}));

  // A worker whose row was removed while it was cut off learns it from its next heartbeat.
  bool found = true;
  in_transaction([&](pqxx::work& tx) { found = db::record_heartbeat(tx, "gone-long-ago", {}); });
  EXPECT_FALSE(found);
}

}  // namespace
}  // namespace warren::test
