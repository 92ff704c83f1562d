// The running producer against its own OpenAPI document: real answers match the documented
// schemas, and each documented path allows exactly the documented methods.
#include <gtest/gtest.h>

#include <pqxx/pqxx>
#include <sstream>

#include "shared/db/worker_registry.h"
#include "support/json_schema.h"

#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;

class OpenApiConformance : public IntegrationTest {
 protected:
  json document_;

  // The schema of `status` answers of `method path`, following a component response $ref.
  json schema_for(const std::string& path, const std::string& method, int status) {
    json response = document_["paths"][path][method]["responses"][std::to_string(status)];
    if (response.contains("$ref")) {
      response = document_.at(json::json_pointer(response["$ref"].get<std::string>().substr(1)));
    }
    const auto& content = response["content"];
    return content.begin().value()["schema"];
  }

  void expect_conforms(const httplib::Result& r, const std::string& path,
                       const std::string& method) {
    ASSERT_TRUE(r);
    const auto errors =
        schema_errors(json::parse(r->body), schema_for(path, method, r->status), document_);
    EXPECT_TRUE(errors.empty()) << method << " " << path << " " << r->status << ":\n"
                                << [&] {
                                     std::string all;
                                     for (const auto& e : errors) all += e + "\n";
                                     return all;
                                   }();
  }
};

TEST_F(OpenApiConformance, AnswersMatchTheDocumentedSchemas) {
  start_producer();
  auto c = api();
  auto served = c->Get("/openapi.json");
  ASSERT_EQ(served->status, 200);
  document_ = json::parse(served->body);

  auto accepted = post_json(*c, "/v1/jobs",
                            {{"type", "noop"},
                             {"payload", {{"a", 1}}},
                             {"metadata", {{"k", "v"}}},
                             {"idempotency_key", "openapi-1"}});
  expect_conforms(accepted, "/v1/jobs", "post");
  const std::string id = json::parse(accepted->body)["id"];
  expect_conforms(post_json(*c, "/v1/jobs",
                            {{"type", "noop"},
                             {"payload", {{"a", 1}}},
                             {"metadata", {{"k", "v"}}},
                             {"idempotency_key", "openapi-1"}}),
                  "/v1/jobs", "post");                                                 // 200 replay
  expect_conforms(post_json(*c, "/v1/jobs", {{"type", "noop"}}), "/v1/jobs", "post");  // 400
  expect_conforms(c->Post("/v1/jobs", "{}", "text/plain"), "/v1/jobs", "post");        // 415
  expect_conforms(
      post_json(
          *c, "/v1/jobs/batch",
          {{"jobs",
            json::array({{{"type", "noop"}, {"payload", json::object()}},
                         {{"type", "noop"}, {"payload", json::object()}, {"delay_ms", 60000}}})}}),
      "/v1/jobs/batch", "post");
  expect_conforms(c->Get(("/v1/jobs/" + id).c_str()), "/v1/jobs/{id}", "get");
  expect_conforms(c->Get("/v1/jobs/0193a1b2-0000-7000-8000-000000000001"), "/v1/jobs/{id}", "get");
  execute(
      "INSERT INTO job_attempts (job_id, attempt, outcome, error, started_at, finished_at, "
      "worker, retry_delay_ms) VALUES ('" +
      id +
      "', 1, 'failed', "
      "'{\"type\":\"http_503\",\"message\":\"down\"}', now(), now(), 'w-1', 2000), ('" +
      id + "', 2, NULL, NULL, now(), NULL, 'w-2', NULL)");
  expect_conforms(c->Get(("/v1/jobs/" + id + "/attempts").c_str()), "/v1/jobs/{id}/attempts",
                  "get");
  expect_conforms(c->Get("/v1/jobs?limit=1"), "/v1/jobs", "get");
  expect_conforms(c->Get("/v1/jobs?limit=9999"), "/v1/jobs", "get");  // 400
  expect_conforms(c->Post(("/v1/jobs/" + id + "/cancel").c_str(), "", "application/json"),
                  "/v1/jobs/{id}/cancel", "post");
  expect_conforms(c->Post(("/v1/jobs/" + id + "/cancel").c_str(), "", "application/json"),
                  "/v1/jobs/{id}/cancel", "post");  // 409
  expect_conforms(c->Get("/healthz"), "/healthz", "get");
  ASSERT_TRUE(
      wait_until([&] { return c->Get("/readyz")->status == 200; }, std::chrono::seconds(10)));
  expect_conforms(c->Get("/readyz"), "/readyz", "get");

  expect_conforms(c->Get("/v1/workers"), "/v1/workers", "get");  // none yet
  {
    pqxx::connection connection(database_->url());
    pqxx::work tx(connection);
    const auto beat = std::chrono::milliseconds(5000);
    db::register_worker(tx, {"w-running", "host-a", "0.1.0", {"default", "emails"}, 16, beat});
    db::record_heartbeat(tx, "w-running", {2, 1000, 3});
    db::register_worker(tx, {"w-stopped", "host-b", "0.1.0", {"default"}, 4, beat});
    db::mark_worker_stopped(tx, "w-stopped", {0, 10, 0});
    db::register_worker(tx, {"w-gone", "host-c", "0.1.0", {"default"}, 4, beat});
    tx.exec("UPDATE workers SET last_heartbeat_at = now() - interval '1 hour' WHERE id = 'w-gone'");
    tx.commit();
  }
  auto workers = c->Get("/v1/workers");
  ASSERT_EQ(workers->status, 200);
  EXPECT_EQ(json::parse(workers->body)["workers"].size(), 3u);
  expect_conforms(workers, "/v1/workers", "get");

  // Dead letters and bulk operations: a job that fails permanently leaves one dead letter.
  start_consumer();
  const std::string failing =
      json::parse(post_json(*c, "/v1/jobs", {{"type", "fail"}, {"payload", {{"permanent", true}}}})
                      ->body)["id"];
  ASSERT_TRUE(wait_until([&] { return query_int("SELECT count(*) FROM dead_letters") == 1; },
                         std::chrono::seconds(30)));
  auto letters = c->Get("/v1/dead-letters");
  ASSERT_EQ(letters->status, 200) << letters->body;
  const json letter = json::parse(letters->body)["dead_letters"].at(0);
  EXPECT_EQ(letter["job_id"], failing);
  const std::string dead = letter["id"];
  expect_conforms(letters, "/v1/dead-letters", "get");
  expect_conforms(c->Get("/v1/dead-letters?state=all&limit=1"), "/v1/dead-letters", "get");
  expect_conforms(c->Get("/v1/dead-letters?reason=tired"), "/v1/dead-letters", "get");  // 400
  auto summary = c->Get("/v1/dead-letters/summary");
  ASSERT_EQ(summary->status, 200) << summary->body;
  EXPECT_EQ(json::parse(summary->body)["groups"].size(), 1u);
  expect_conforms(summary, "/v1/dead-letters/summary", "get");
  auto one = c->Get(("/v1/dead-letters/" + dead).c_str());
  ASSERT_EQ(one->status, 200) << one->body;
  EXPECT_EQ(json::parse(one->body)["attempts_log"].size(), 1u);
  expect_conforms(one, "/v1/dead-letters/{id}", "get");
  expect_conforms(c->Get("/v1/dead-letters/0193a1b2-0000-7000-8000-000000000001"),
                  "/v1/dead-letters/{id}", "get");  // 404
  auto discarded = post_json(*c, "/v1/dead-letters/" + dead + "/discard",
                             {{"reason", "checked against the document"}});
  ASSERT_EQ(discarded->status, 200) << discarded->body;
  EXPECT_EQ(json::parse(discarded->body)["audit"].size(), 1u);
  expect_conforms(discarded, "/v1/dead-letters/{id}/discard", "post");
  expect_conforms(post_json(*c, "/v1/dead-letters/" + dead + "/discard", json::object()),
                  "/v1/dead-letters/{id}/discard", "post");  // 409
  expect_conforms(post_json(*c, "/v1/dead-letters/" + dead + "/requeue", json::object()),
                  "/v1/dead-letters/{id}/requeue", "post");  // 409

  auto bulk = post_json(*c, "/v1/dead-letters/discard", {{"ids", json::array({dead})}});
  ASSERT_EQ(bulk->status, 202) << bulk->body;
  const json accepted_bulk = json::parse(bulk->body);
  EXPECT_EQ(accepted_bulk["matched"], 0);
  EXPECT_EQ(accepted_bulk["not_matched"], json::array({dead}));
  const std::string operation = accepted_bulk["operation_id"];
  EXPECT_EQ(bulk->get_header_value("Location"), "/v1/operations/" + operation);
  expect_conforms(bulk, "/v1/dead-letters/discard", "post");
  expect_conforms(post_json(*c, "/v1/dead-letters/requeue", {{"type", "fail"}, {"limit", 10}}),
                  "/v1/dead-letters/requeue", "post");  // 202, no dead letter left
  expect_conforms(post_json(*c, "/v1/dead-letters/requeue", {{"state", "all"}}),
                  "/v1/dead-letters/requeue", "post");  // 400
  auto status = c->Get(("/v1/operations/" + operation).c_str());
  ASSERT_EQ(status->status, 200) << status->body;
  EXPECT_EQ(json::parse(status->body)["state"], "done");
  expect_conforms(status, "/v1/operations/{id}", "get");
  expect_conforms(c->Get("/v1/operations/0193a1b2-0000-7000-8000-000000000001"),
                  "/v1/operations/{id}", "get");  // 404
  auto operations = c->Get("/v1/operations");
  ASSERT_EQ(operations->status, 200) << operations->body;
  EXPECT_EQ(json::parse(operations->body)["operations"].size(), 2u);
  expect_conforms(operations, "/v1/operations", "get");
}

// The checker itself must fail on what the conformance tests rely on it to catch.
TEST(JsonSchemaChecker, CatchesMissingFieldsWrongTypesAndEnumValues) {
  const json document = json::parse(R"({"components": {"schemas": {"S": {"enum": ["a", "b"]}}}})");
  const json schema = {{"type", "object"},
                       {"required", {"id", "n"}},
                       {"additionalProperties", false},
                       {"properties",
                        {{"id", {{"type", "string"}, {"pattern", "^[0-9a-f]{4}$"}}},
                         {"n", {{"type", {"integer", "null"}}, {"minimum", 1}}},
                         {"s", {{"$ref", "#/components/schemas/S"}}},
                         {"items", {{"type", "array"}, {"items", {{"type", "string"}}}}}}}};
  EXPECT_TRUE(
      schema_errors({{"id", "00ff"}, {"n", nullptr}, {"s", "a"}}, schema, document).empty());
  EXPECT_EQ(schema_errors({{"id", "00ff"}}, schema, document).size(), 1u);  // missing n
  EXPECT_EQ(schema_errors({{"id", "00ff"}, {"n", 1.5}}, schema, document).size(),
            1u);  // not integer
  EXPECT_EQ(schema_errors({{"id", "00ff"}, {"n", 0}}, schema, document).size(),
            1u);                                                                    // below minimum
  EXPECT_EQ(schema_errors({{"id", "zz"}, {"n", 1}}, schema, document).size(), 1u);  // pattern
  EXPECT_EQ(schema_errors({{"id", "00ff"}, {"n", 1}, {"s", "c"}}, schema, document).size(), 1u);
  EXPECT_EQ(schema_errors({{"id", "00ff"}, {"n", 1}, {"x", 1}}, schema, document).size(), 1u);
  EXPECT_EQ(schema_errors({{"id", "00ff"}, {"n", 1}, {"items", {"a", 2}}}, schema, document).size(),
            1u);
  EXPECT_EQ(schema_errors(json::array(), schema, document).size(), 1u);
}

TEST_F(OpenApiConformance, EachPathAllowsExactlyTheDocumentedMethods) {
  start_producer();
  auto c = api();
  document_ = json::parse(c->Get("/openapi.json")->body);
  for (const auto& [path, operations] : document_["paths"].items()) {
    std::set<std::string> documented;
    for (const auto& [method, operation] : operations.items()) {
      if (method == "parameters") continue;
      std::string upper = method;
      std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
      documented.insert(upper);
    }
    std::string concrete = path;
    if (auto at = concrete.find("{id}"); at != std::string::npos) {
      concrete.replace(at, 4, "0193a1b2-0000-7000-8000-000000000001");
    }
    auto r = c->Delete(concrete.c_str());
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 405) << path;
    std::set<std::string> allowed;
    std::stringstream allow(r->get_header_value("Allow"));
    for (std::string m; std::getline(allow, m, ',');)
      allowed.insert(m.substr(m.find_first_not_of(' ')));
    EXPECT_EQ(allowed, documented) << path;
  }
}

}  // namespace
}  // namespace warren::test
