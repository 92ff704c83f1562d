// The operator routes of API.md "Dead letters" against a producer, consumers and their
// dead-letter recorder, on the real broker and database: failure groups and filters that agree
// with the table, requeue with an edited payload (attempt numbers continue, the audit names
// who, when and why), poison messages, and a bulk requeue of 5,000 that keeps to what it
// matched while new failures arrive and survives its producer being killed halfway.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <set>
#include <thread>

#include "shared/amqp/amqp_connection.h"
#include "shared/topology.h"
#include "shared/uuid.h"
#include "support/jobs.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr char kAdminToken[] = "o0000000000000000000000000000001";
constexpr char kReaderToken[] = "v0000000000000000000000000000001";

class DeadLettersApi : public IntegrationTest {
 protected:
  void SetUp() override {
    IntegrationTest::SetUp();
    tokens_file_ = test_env("WARREN_TEST_STACK_DIR") + "/tokens-" + prefix_;
    std::ofstream(tokens_file_) << "night-operator " << kAdminToken << " admin\n"
                                << "dashboard " << kReaderToken << " read\n";
  }

  RunningProducer& start_api(std::map<std::string, std::string> env = {}) {
    env["WARREN_API_TOKENS_FILE"] = tokens_file_;
    return start_producer(env);
  }

  std::unique_ptr<httplib::Client> client(const char* token = kAdminToken) {
    auto c = api();
    c->set_bearer_token_auth(token);
    return c;
  }

  json get(const std::string& path) {
    auto response = client()->Get(path.c_str());
    EXPECT_TRUE(response) << path;
    if (!response) return json();
    EXPECT_EQ(response->status, 200) << path << ": " << response->body;
    return json::parse(response->body);
  }

  httplib::Result post(const std::string& path, const json& body, const char* token = kAdminToken) {
    auto c = client(token);
    return post_json(*c, path, body);
  }

  std::vector<std::string> submit(const std::vector<json>& jobs) {
    return submit_jobs(*client(), jobs);
  }

  // Every page of GET /v1/dead-letters?<query>, following next_cursor.
  std::vector<json> list_all(const std::string& query, int page_size) {
    std::vector<json> all;
    std::string cursor;
    for (int page = 0; page < 1000; ++page) {
      std::string path = "/v1/dead-letters?limit=" + std::to_string(page_size) + "&" + query;
      if (!cursor.empty()) path += "&cursor=" + cursor;
      const json body = get(path);
      for (const auto& letter : body["dead_letters"]) all.push_back(letter);
      if (body["next_cursor"].is_null()) break;
      cursor = body["next_cursor"].get<std::string>();
    }
    return all;
  }

  std::set<std::string> ids_in_db(const std::string& where) {
    std::set<std::string> ids;
    for (const auto& row : query_json("SELECT id FROM dead_letters WHERE " + where)) {
      ids.insert(row["id"].get<std::string>());
    }
    return ids;
  }

  static std::set<std::string> ids_of(const std::vector<json>& letters) {
    std::set<std::string> ids;
    for (const auto& letter : letters) ids.insert(letter["id"].get<std::string>());
    return ids;
  }

  bool dead_letters_recorded(int64_t count, std::chrono::milliseconds timeout) {
    return wait_until([&] { return query_int("SELECT count(*) FROM dead_letters") >= count; },
                      timeout, 200ms);
  }

  std::string tokens_file_;
};

json fail_job(const std::string& message, bool permanent) {
  json job = {{"type", "fail"}, {"payload", {{"message", message}, {"permanent", permanent}}}};
  if (!permanent) job["max_attempts"] = 1;
  return job;
}

json downstream_job(int status, int max_attempts) {
  return {
      {"type", "downstream"}, {"payload", {{"status", status}}}, {"max_attempts", max_attempts}};
}

TEST_F(DeadLettersApi, ThreeFailuresAcrossTwoTypesMakeThreeGroupsAndFiltersAgreeWithTheTable) {
  start_api();
  start_consumer({{"WARREN_CONCURRENCY", "32"}});
  std::vector<json> jobs;
  for (int i = 0; i < 100; ++i) {
    jobs.push_back(fail_job("card declined by the bank", true));
    jobs.push_back(fail_job("SMTP timeout after 30 s", false));
    jobs.push_back(downstream_job(503, 1));
  }
  submit(jobs);
  ASSERT_TRUE(dead_letters_recorded(300, 60s))
      << query_int("SELECT count(*) FROM dead_letters") << " recorded";

  const json groups = get("/v1/dead-letters/summary")["groups"];
  ASSERT_EQ(groups.size(), 3u) << groups.dump(2);
  std::map<std::string, json> by_error;
  for (const auto& group : groups) by_error[group["error_type"].get<std::string>()] = group;
  EXPECT_EQ(by_error["fail_permanent"]["type"], "fail");
  EXPECT_EQ(by_error["fail_permanent"]["reason"], "permanent_failure");
  EXPECT_EQ(by_error["fail_permanent"]["sample_message"], "card declined by the bank");
  EXPECT_EQ(by_error["fail"]["type"], "fail");
  EXPECT_EQ(by_error["fail"]["reason"], "max_attempts");
  EXPECT_EQ(by_error["http_503"]["type"], "downstream");
  EXPECT_EQ(by_error["http_503"]["sample_message"], "the service answered 503");
  for (const auto& group : groups) {
    EXPECT_EQ(group["count"], 100) << group;
    EXPECT_EQ(group["queue"], "default");
    EXPECT_LE(group["first_at"].get<std::string>(), group["last_at"].get<std::string>());
  }

  // Each filter, paged 37 at a time, returns exactly the rows the table has for it, newest
  // first, every row once.
  const std::vector<std::pair<std::string, std::string>> filters = {
      {"type=fail", "type = 'fail'"},
      {"reason=permanent_failure", "reason = 'permanent_failure'"},
      {"error_type=http_503", "error_type = 'http_503'"},
      {"q=smtp%20TIMEOUT", "error_message ILIKE '%smtp timeout%'"},
      {"type=fail&reason=max_attempts", "type = 'fail' AND reason = 'max_attempts'"},
      {"state=all", "true"},
      {"state=requeued", "state = 'requeued'"}};
  for (const auto& [query, where] : filters) {
    const auto letters = list_all(query, 37);
    EXPECT_EQ(ids_of(letters).size(), letters.size()) << query << ": a row appeared twice";
    EXPECT_EQ(ids_of(letters), ids_in_db(where)) << query;
    for (std::size_t i = 1; i < letters.size(); ++i) {
      EXPECT_GE(letters[i - 1]["dead_lettered_at"].get<std::string>(),
                letters[i]["dead_lettered_at"].get<std::string>());
    }
  }
  // A time window, from the table's own times.
  const std::string middle = query_value(
                                 "SELECT to_json(warren_ts(dead_lettered_at)) FROM dead_letters "
                                 "ORDER BY dead_lettered_at OFFSET 150 LIMIT 1")
                                 .get<std::string>();
  EXPECT_EQ(ids_of(list_all("since=" + middle, 100)),
            ids_in_db("dead_lettered_at >= '" + middle + "'"));
  EXPECT_EQ(ids_of(list_all("until=" + middle, 100)),
            ids_in_db("dead_lettered_at < '" + middle + "'"));

  // The shape of one entry.
  const json one = get("/v1/dead-letters?limit=1&error_type=http_503")["dead_letters"][0];
  EXPECT_EQ(one["state"], "dead");
  EXPECT_EQ(one["payload"], json::parse(R"({"status": 503})"));
  EXPECT_TRUE(one["raw_body"].is_null());
  EXPECT_EQ(one["attempts"], 1);
  EXPECT_EQ(one["error"], json::parse(R"({"type": "http_503",
                                          "message": "the service answered 503"})"));
  EXPECT_EQ(one["headers"]["x-warren-reason"], "max_attempts");
  EXPECT_TRUE(one["requeued_at"].is_null());

  auto bad = client()->Get("/v1/dead-letters?reason=tired");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
}

TEST_F(DeadLettersApi, RequeueWithAnEditedPayloadRunsTheJobAgainWithItsAttemptNumbersContinuing) {
  start_api();
  start_consumer();
  const auto job_id = submit({downstream_job(503, 2)}).at(0);
  ASSERT_TRUE(dead_letters_recorded(1, 30s));
  const std::string id = query_value("SELECT to_json(id) FROM dead_letters").get<std::string>();

  const json before = get("/v1/dead-letters/" + id);
  EXPECT_EQ(before["job_id"], job_id);
  ASSERT_EQ(before["attempts_log"].size(), 2u) << before.dump(2);
  EXPECT_EQ(before["attempts_log"][1]["error"]["type"], "http_503");
  EXPECT_EQ(before["audit"], json::array());

  // Only an admin may change a dead letter.
  auto refused = post("/v1/dead-letters/" + id + "/requeue", json::object(), kReaderToken);
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->status, 403);

  auto response =
      post("/v1/dead-letters/" + id + "/requeue", {{"payload", {{"status", 200}}},
                                                   {"max_attempts", 3},
                                                   {"reason", "downstream fixed, see INC-4711"}});
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  const json after = json::parse(response->body);
  EXPECT_EQ(after["state"], "requeued");
  EXPECT_EQ(after["requeued_by"], "night-operator");
  EXPECT_EQ(after["requeued_job_id"], job_id);
  EXPECT_TRUE(after["requeued_at"].is_string());
  ASSERT_EQ(after["audit"].size(), 1u);
  const json audit = after["audit"][0];
  EXPECT_EQ(audit["action"], "requeued");
  EXPECT_EQ(audit["actor"], "night-operator");
  EXPECT_EQ(audit["reason"], "downstream fixed, see INC-4711");
  EXPECT_EQ(audit["details"]["first_attempt"], 3);
  EXPECT_EQ(audit["details"]["last_attempt"], 5);
  EXPECT_EQ(audit["details"]["payload_edited"], true);
  EXPECT_EQ(audit["at"], after["requeued_at"]);

  ASSERT_TRUE(wait_until(
      [&] {
        return query_value("SELECT to_json(status) FROM jobs WHERE id = '" + job_id + "'") ==
               "succeeded";
      },
      20s));
  EXPECT_EQ(
      query_json("SELECT attempt, outcome FROM job_attempts WHERE job_id = '" + job_id +
                 "' ORDER BY attempt"),
      json::parse(R"([{"attempt": 1, "outcome": "failed"}, {"attempt": 2, "outcome": "failed"},
                            {"attempt": 3, "outcome": "succeeded"}])"));
  const json job = get("/v1/jobs/" + job_id);
  EXPECT_EQ(job["payload"], json::parse(R"({"status": 200})"));
  EXPECT_EQ(job["max_attempts"], 5);
  EXPECT_EQ(job["result"], json::parse(R"({"status": 200})"));

  // A requeued dead letter cannot be requeued or discarded again.
  for (const char* action : {"requeue", "discard"}) {
    auto again = post("/v1/dead-letters/" + id + "/" + action, json::object());
    ASSERT_TRUE(again);
    EXPECT_EQ(again->status, 409) << again->body;
  }
  auto missing = post("/v1/dead-letters/" + new_uuid_v7() + "/requeue", json::object());
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404);
}

TEST_F(DeadLettersApi, RequeueWithoutABudgetGivesTheJobTheBudgetItHadLastTime) {
  start_api();
  start_consumer();
  json job = downstream_job(503, 1);
  job["backoff"] = {{"initial_ms", 1000}, {"factor", 1}, {"max_ms", 1000}};
  const auto job_id = submit({job}).at(0);
  auto dead_letter_of_attempt = [&](int attempts) {
    std::string id;
    wait_until(
        [&] {
          auto value = query_value(
              "SELECT to_json(id) FROM dead_letters WHERE state = 'dead' AND "
              "attempts = " +
              std::to_string(attempts));
          if (value.is_string()) id = value.get<std::string>();
          return !id.empty();
        },
        30s);
    return id;
  };
  const auto first = dead_letter_of_attempt(1);
  ASSERT_FALSE(first.empty());
  // Two more attempts (2 and 3); both fail again.
  auto once = post("/v1/dead-letters/" + first + "/requeue", {{"max_attempts", 2}});
  ASSERT_TRUE(once);
  ASSERT_EQ(once->status, 200) << once->body;
  const auto second = dead_letter_of_attempt(3);
  ASSERT_FALSE(second.empty());
  // No budget given: the one it had last time, 2 (attempts 4 and 5), not the original 1.
  auto again = post("/v1/dead-letters/" + second + "/requeue", json::object());
  ASSERT_TRUE(again);
  ASSERT_EQ(again->status, 200) << again->body;
  const json details = json::parse(again->body)["audit"][0]["details"];
  EXPECT_EQ(details["budget"], 2);
  EXPECT_EQ(details["first_attempt"], 4);
  EXPECT_EQ(details["last_attempt"], 5);
  EXPECT_EQ(get("/v1/jobs/" + job_id)["max_attempts"], 5);
}

TEST_F(DeadLettersApi, PoisonMessageShowsItsRawBodyAndCannotBeRequeued) {
  start_api();
  start_consumer();
  const std::string body("{\"not\": \"a job\"", 15);  // truncated JSON
  auto connection = broker();
  connection.enable_confirms();
  amqp::OutgoingMessage message;
  message.routing_key = TopologyNames{prefix_}.work_queue("default");
  message.body = body;
  connection.publish(message);
  ASSERT_TRUE(connection.wait_for_confirms(5s).all_acked());
  ASSERT_TRUE(dead_letters_recorded(1, 20s));

  const json letter = get("/v1/dead-letters?reason=poison")["dead_letters"].at(0);
  EXPECT_TRUE(letter["job_id"].is_null());
  EXPECT_TRUE(letter["payload"].is_null());
  EXPECT_EQ(letter["raw_body"], "eyJub3QiOiAiYSBqb2Ii");  // base64 of the 15 bytes
  const std::string id = letter["id"].get<std::string>();
  auto requeue = post("/v1/dead-letters/" + id + "/requeue", json::object());
  ASSERT_TRUE(requeue);
  EXPECT_EQ(requeue->status, 409) << requeue->body;
  EXPECT_NE(requeue->body.find("not a job"), std::string::npos) << requeue->body;

  auto discard = post("/v1/dead-letters/" + id + "/discard", {{"reason", "garbage from a test"}});
  ASSERT_TRUE(discard);
  ASSERT_EQ(discard->status, 200) << discard->body;
  const json discarded = json::parse(discard->body);
  EXPECT_EQ(discarded["state"], "discarded");
  EXPECT_EQ(discarded["discarded_by"], "night-operator");
  EXPECT_EQ(discarded["audit"][0]["reason"], "garbage from a test");
  EXPECT_EQ(get("/v1/dead-letters")["dead_letters"].size(), 0u) << "the default state is dead";
  EXPECT_EQ(get("/v1/dead-letters?state=discarded")["dead_letters"].size(), 1u);
}

TEST_F(DeadLettersApi, PoisonWhoseBodyIsAValidJobBecomesANewJobWhenRequeued) {
  start_api();
  start_consumer();
  // What a consumer leaves when the database refused a job it could decode: no job row, the
  // raw message.
  const std::string body =
      R"({"id":"01937a5e-8f3c-7d2a-9b4e-0123456789ab","type":"noop","queue":"default",)"
      R"("payload":{"n":1},"max_attempts":3,"created_at":"2026-11-23T10:00:00.000Z"})";
  const std::string id = new_uuid_v7();
  execute(
      "INSERT INTO dead_letters (id, message_key, reason, error_type, dead_lettered_at, "
      "raw_body, queue) VALUES ('" +
      id +
      "', 'k', 'poison', 'poison', now(), "
      "convert_to('" +
      body + "', 'UTF8'), 'default')");
  auto response = post("/v1/dead-letters/" + id + "/requeue", json::object());
  ASSERT_TRUE(response);
  ASSERT_EQ(response->status, 200) << response->body;
  const json letter = json::parse(response->body);
  const std::string job_id = letter["requeued_job_id"].get<std::string>();
  EXPECT_NE(job_id, "01937a5e-8f3c-7d2a-9b4e-0123456789ab") << "a new job";
  EXPECT_EQ(letter["audit"][0]["details"]["new_job"], true);
  ASSERT_TRUE(wait_until(
      [&] {
        return query_value("SELECT to_json(status) FROM jobs WHERE id = '" + job_id + "'") ==
               "succeeded";
      },
      20s));
  EXPECT_EQ(get("/v1/jobs/" + job_id)["payload"], json::parse(R"({"n": 1})"));
}

TEST_F(DeadLettersApi, BulkRequeueKeepsToWhatItMatchedShowsProgressAndResumesAfterItsProducerDies) {
  const std::map<std::string, std::string> paced = {{"WARREN_REPLAY_RATE", "250"}};
  start_api(paced);
  start_consumer({{"WARREN_CONCURRENCY", "64"}});
  start_consumer({{"WARREN_CONCURRENCY", "64"}});
  // 5,000 jobs fail their only attempt (a broken upstream) and would succeed on the next.
  const json flaky = {{"type", "fail"},
                      {"payload", {{"times", 1}, {"message", "upstream answered 502"}}},
                      {"max_attempts", 1}};
  const auto originals = submit(std::vector<json>(5000, flaky));
  ASSERT_TRUE(dead_letters_recorded(5000, 120s));

  const auto begun = std::chrono::steady_clock::now();
  auto created =
      post("/v1/dead-letters/requeue", {{"type", "fail"}, {"comment", "upstream fixed"}});
  ASSERT_TRUE(created);
  ASSERT_EQ(created->status, 202) << created->body;
  const json accepted = json::parse(created->body);
  EXPECT_EQ(accepted["matched"], 5000);
  const std::string operation_id = accepted["operation_id"].get<std::string>();
  EXPECT_EQ(created->get_header_value("Location"), "/v1/operations/" + operation_id);

  // Meanwhile new failures of the same type keep arriving (written without HTTP, so they go on
  // while the producer is down): the operation must not sweep them in.
  const std::string more_file = test_env("WARREN_TEST_STACK_DIR") + "/still-broken-" + prefix_;
  {
    std::ofstream out(more_file);
    for (int i = 0; i < 20; ++i) {
      out << R"({"type":"fail","payload":{"message":"still broken"},"max_attempts":1})"
          << "\n";
    }
  }
  std::atomic<bool> stop_failing{false};
  std::thread new_failures([&] {
    while (!stop_failing) {
      warrenctl({"submit", "--from", more_file});
      std::this_thread::sleep_for(300ms);
    }
  });

  auto progress = [&] { return get("/v1/operations/" + operation_id); };
  std::vector<int> seen;
  ASSERT_TRUE(wait_until(
      [&] {
        const int done = progress()["done"].get<int>();
        if (seen.empty() || seen.back() != done) seen.push_back(done);
        return done >= 1500;
      },
      60s, 100ms));
  const double first_phase_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begun).count();
  EXPECT_GE(seen.size(), 5u) << "progress should be visible chunk by chunk";
  // 250 a second: 1,500 cannot be done in much under 6 s.
  EXPECT_GE(first_phase_s, 5.0) << "the replay rate was not applied";

  // The producer dies halfway; nothing runs the operation until a producer is back.
  producer_->process().kill_now();
  const auto done_at_kill =
      query_int("SELECT done FROM bulk_operations WHERE id = '" + operation_id + "'");
  EXPECT_LT(done_at_kill, 4000);
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(query_int("SELECT done FROM bulk_operations WHERE id = '" + operation_id + "'"),
            done_at_kill);
  EXPECT_EQ(
      query_value("SELECT to_json(state) FROM bulk_operations WHERE id = '" + operation_id + "'"),
      "running");

  start_api(paced);
  ASSERT_TRUE(wait_until([&] { return progress()["state"] == "done"; }, 90s, 200ms))
      << progress().dump(2);
  stop_failing = true;
  new_failures.join();

  const json finished = progress();
  EXPECT_EQ(finished["matched"], 5000);
  EXPECT_EQ(finished["done"], 5000);
  EXPECT_EQ(finished["failed"], 0);
  EXPECT_EQ(finished["requested_by"], "night-operator");
  EXPECT_EQ(finished["reason"], "upstream fixed");
  EXPECT_EQ(finished["failures"], json::array());
  EXPECT_TRUE(finished["finished_at"].is_string());

  // Exactly the 5,000 it matched, each once; the new failures are still dead.
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters WHERE state = 'requeued'"), 5000);
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters WHERE state = 'requeued' AND "
                      "error_message = 'upstream answered 502'"),
            5000);
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letter_audit WHERE operation_id = '" +
                      operation_id + "' AND actor = 'night-operator'"),
            5000);
  EXPECT_EQ(query_int("SELECT count(DISTINCT dead_letter_id) FROM dead_letter_audit"), 5000);
  EXPECT_GT(query_int("SELECT count(*) FROM dead_letters WHERE error_message = 'still broken'"), 0)
      << "no new failure arrived during the run: the test proved nothing";
  EXPECT_EQ(query_int("SELECT count(*) FROM dead_letters WHERE error_message = 'still broken' "
                      "AND state <> 'dead'"),
            0);

  // Every requeued job ran once more and succeeded: attempts 1 (failed) and 2 (succeeded), none
  // run a third time.
  json ids = originals;
  const std::string originals_sql =
      "(SELECT json_array_elements_text('" + ids.dump() + "'::json)::uuid)";
  ASSERT_TRUE(wait_until(
      [&] {
        return query_int("SELECT count(*) FROM jobs WHERE status = 'succeeded' AND id IN " +
                         originals_sql) == 5000;
      },
      60s, 500ms));
  EXPECT_EQ(query_int("SELECT count(*) FROM job_attempts WHERE job_id IN " + originals_sql), 10000);
  EXPECT_EQ(query_int("SELECT max(attempt) FROM job_attempts WHERE job_id IN " + originals_sql), 2);
  std::cout << "bulk requeue: " << seen.size() << " progress steps seen before the kill, "
            << done_at_kill << " done at the kill, first 1500 in " << first_phase_s << " s\n";
}

}  // namespace
}  // namespace warren::test
