// The producer's HTTP API against a real Postgres and RabbitMQ (API.md "Jobs", "Errors",
// "Authentication"): what is answered, what is committed, what is published.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;

class ProducerApi : public IntegrationTest {};

json body_of(const httplib::Result& r) {
  return json::parse(r->body);
}

// Sends `request` in one write and returns everything the server answers until it closes.
std::string raw_http(int port, const std::string& request) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    ::close(fd);
    return "connect failed";
  }
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  (void)::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
  std::string answer;
  char buffer[4096];
  for (ssize_t n; (n = ::recv(fd, buffer, sizeof(buffer), 0)) > 0;)
    answer.append(buffer, static_cast<std::size_t>(n));
  ::close(fd);
  return answer;
}

TEST_F(ProducerApi, SubmitCommitsTheJobAndPublishesItWithMessagingHeaders) {
  start_producer();
  auto c = api();
  auto r = post_json(*c, "/v1/jobs",
                     {{"type", "email.send"},
                      {"payload", {{"to", "a@example.com"}}},
                      {"max_attempts", 3},
                      {"timeout_ms", 30000},
                      {"metadata", {{"tenant", "acme"}}}},
                     {{"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}});
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 202) << r->body;
  const auto answer = body_of(r);
  const std::string id = answer["id"];
  EXPECT_EQ(answer["status"], "queued");
  EXPECT_EQ(answer["status_url"], "/v1/jobs/" + id);
  EXPECT_EQ(answer["attempts_url"], "/v1/jobs/" + id + "/attempts");
  EXPECT_EQ(r->get_header_value("Location"), "/v1/jobs/" + id);
  EXPECT_FALSE(r->get_header_value("X-Request-Id").empty());

  // Committed before the answer.
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs WHERE id = '" + id + "'"), 1);

  auto message = take_message("default", std::chrono::seconds(10));
  ASSERT_TRUE(message) << "no message in the work queue";
  EXPECT_EQ(message->message_id, id);
  EXPECT_EQ(message->type, "email.send");
  EXPECT_EQ(message->content_type, "application/json");
  EXPECT_EQ(message->app_id, "warren");
  EXPECT_EQ(message->delivery_mode, 2);
  EXPECT_GT(message->timestamp, 0);
  EXPECT_EQ(message->headers.get_int("x-warren-attempt"), 1);
  EXPECT_EQ(message->headers.get_int("x-warren-max-attempts"), 3);
  EXPECT_EQ(message->headers.get_string("x-warren-queue"), "default");
  EXPECT_EQ(message->headers.get_string("traceparent"),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
  const auto body = json::parse(message->body);
  EXPECT_EQ(body["id"], id);
  EXPECT_EQ(body["type"], "email.send");
  EXPECT_EQ(body["queue"], "default");
  EXPECT_EQ(body["payload"], json({{"to", "a@example.com"}}));
  EXPECT_EQ(body["max_attempts"], 3);
  EXPECT_EQ(body["timeout_ms"], 30000);
  EXPECT_TRUE(body["created_at"].is_string());
  EXPECT_EQ(body["backoff"], json({{"initial_ms", 5000}, {"factor", 3.0}, {"max_ms", 3600000}}));

  // The outbox row is gone once the broker confirmed.
  EXPECT_TRUE(wait_until([&] { return query_int("SELECT count(*) FROM outbox") == 0; },
                         std::chrono::seconds(5)));

  auto got = c->Get(("/v1/jobs/" + id).c_str());
  ASSERT_EQ(got->status, 200);
  const auto job = body_of(got);
  EXPECT_EQ(job["status"], "queued");
  EXPECT_EQ(job["attempts"], 0);
  EXPECT_EQ(job["max_attempts"], 3);
  EXPECT_EQ(job["metadata"]["tenant"], "acme");
  EXPECT_EQ(job["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(job["cancel_requested"], false);
  EXPECT_TRUE(job["result"].is_null());
  for (const char* field : {"created_at", "updated_at"}) {
    EXPECT_TRUE(std::regex_match(job[field].get<std::string>(),
                                 std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
        << field << " " << job[field];
  }
  auto attempts = c->Get(("/v1/jobs/" + id + "/attempts").c_str());
  ASSERT_EQ(attempts->status, 200);
  EXPECT_EQ(body_of(attempts), json({{"attempts", json::array()}}));
}

TEST_F(ProducerApi, BatchAnswersInRequestOrderAndValidatesAllOrNothing) {
  start_producer();
  auto c = api();
  json jobs = json::array();
  for (int i = 0; i < 1000; ++i) jobs.push_back({{"type", "noop"}, {"payload", {{"i", i}}}});
  auto r = post_json(*c, "/v1/jobs/batch", {{"jobs", jobs}});
  ASSERT_EQ(r->status, 202) << r->body;
  const auto answer = body_of(r);
  ASSERT_EQ(answer["jobs"].size(), 1000u);
  // Request order: the i-th answer is the job whose payload says i.
  for (int i : {0, 499, 999}) {
    const std::string id = answer["jobs"][i]["id"];
    EXPECT_EQ(query_int("SELECT (payload->>'i')::int FROM jobs WHERE id = '" + id + "'"), i);
  }
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs"), 1000);
  EXPECT_TRUE(wait_until([&] { return queue_depth("default") == 1000; }, std::chrono::seconds(20)));

  jobs = json::array({{{"type", "noop"}, {"payload", json::object()}},
                      {{"type", "noop"}},
                      {{"type", "Bad"}, {"payload", json::object()}}});
  auto bad = post_json(*c, "/v1/jobs/batch", {{"jobs", jobs}});
  ASSERT_EQ(bad->status, 400);
  const auto problem = body_of(bad);
  ASSERT_EQ(problem["errors"].size(), 2u);
  EXPECT_EQ(problem["errors"][0]["field"], "jobs[1].payload");
  EXPECT_EQ(problem["errors"][1]["field"], "jobs[2].type");
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs"), 1000);  // nothing of the bad batch

  EXPECT_EQ(post_json(*c, "/v1/jobs/batch", {{"jobs", json::array()}})->status, 400);
  jobs = json::array();
  for (int i = 0; i < 1001; ++i) jobs.push_back({{"type", "noop"}, {"payload", json::object()}});
  EXPECT_EQ(post_json(*c, "/v1/jobs/batch", {{"jobs", jobs}})->status, 400);
}

TEST_F(ProducerApi, EveryErrorIsProblemJsonWithTheStatusOfTheTable) {
  start_producer({{"WARREN_MAX_BODY_BYTES", "4096"}, {"WARREN_JOB_TYPES", "noop,email.send"}});
  auto c = api();
  auto expect_problem = [](const httplib::Result& r, int status, const std::string& slug) {
    ASSERT_TRUE(r) << "expected " << status << " " << slug << ", got "
                   << httplib::to_string(r.error());
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/problem+json");
    const auto p = json::parse(r->body);
    EXPECT_EQ(p["type"], "https://warren.dev/problems/" + slug);
    EXPECT_EQ(p["status"], status);
    EXPECT_TRUE(p["title"].is_string());
    EXPECT_TRUE(p["detail"].is_string());
    EXPECT_FALSE(r->get_header_value("X-Request-Id").empty());
  };
  expect_problem(c->Post("/v1/jobs", "{not json", "application/json"), 400, "validation");
  expect_problem(
      c->Post("/v1/jobs", R"({"type":"noop","payload":{},"max_attempts":0})", "application/json"),
      400, "validation");
  expect_problem(c->Post("/v1/jobs", "", "application/json"), 400, "validation");
  expect_problem(
      c->Post("/v1/jobs", R"({"type":"noop","payload":{},"type":"x"})", "application/json"), 400,
      "validation");
  expect_problem(post_json(*c, "/v1/jobs",
                           {{"type", "noop"}, {"payload", json::object()}, {"max_attempts", 0}}),
                 400, "validation");
  expect_problem(c->Post("/v1/jobs", R"({"type":"noop","payload":{}})", "text/plain"), 415,
                 "unsupported-media-type");
  expect_problem(post_json(*c, "/v1/jobs", {{"type", "sms.send"}, {"payload", json::object()}}),
                 422, "unprocessable");
  expect_problem(post_json(*c, "/v1/jobs",
                           {{"type", "noop"}, {"payload", json::object()}, {"queue", "elsewhere"}}),
                 422, "unprocessable");
  expect_problem(
      post_json(*c, "/v1/jobs", {{"type", "noop"}, {"payload", {{"x", std::string(5000, 'a')}}}}),
      413, "payload-too-large");
  expect_problem(c->Get("/v1/nothing-here"), 404, "not-found");
  expect_problem(c->Get("/v1/jobs/0193a1b2-0000-7000-8000-000000000001"), 404, "not-found");
  expect_problem(c->Get("/v1/jobs/not-a-uuid"), 404, "not-found");
  expect_problem(c->Get("/v1/jobs/0193a1b2-0000-7000-8000-000000000001/attempts"), 404,
                 "not-found");
  expect_problem(
      c->Post("/v1/jobs/0193a1b2-0000-7000-8000-000000000001/cancel", "", "application/json"), 404,
      "not-found");
  auto wrong_method = c->Delete("/v1/jobs");
  expect_problem(wrong_method, 405, "method-not-allowed");
  EXPECT_EQ(wrong_method->get_header_value("Allow"), "GET, POST");
  auto batch_get = c->Get("/v1/jobs/batch");
  expect_problem(batch_get, 405, "method-not-allowed");
  EXPECT_EQ(batch_get->get_header_value("Allow"), "POST");
  expect_problem(c->Get("/v1/jobs?limit=0"), 400, "validation");
  expect_problem(c->Get("/v1/jobs?status=bogus"), 400, "validation");
  expect_problem(c->Get("/v1/jobs?cursor=AAAA"), 400, "validation");
  expect_problem(c->Get("/v1/jobs?colour=red"), 400, "validation");

  // Input that must be refused cleanly, never a 500 or an unreadable body.
  expect_problem(
      c->Post("/v1/jobs", R"({"type":"noop","payload":{"x":"a\u0000b"}})", "application/json"), 400,
      "validation");
  expect_problem(
      c->Post("/v1/jobs", "{\"type\":\"noop\",\"payload\":{\"x\":\"\xff\"}}", "application/json"),
      400, "validation");
  expect_problem(post_json(*c, "/v1/jobs", {{"type", "noop"}, {"payload", json::object()}},
                           {{"Idempotency-Key", "\xff\xfe"}}),
                 400, "validation");
  expect_problem(c->Get("/v1/jobs/%FF"), 404, "not-found");
  expect_problem(c->Get("/v1/jobs/%FF/attempts"), 404, "not-found");
  expect_problem(c->Get("/v1/jobs?%FF=1"), 400, "validation");
  expect_problem(c->Get("/v1/jobs?type=%FF"), 400, "validation");
  expect_problem(c->Get("/v1/jobs?type=%00"), 400, "validation");
  expect_problem(c->Get("/v1/jobs?metadata.k=%00"), 400, "validation");
  expect_problem(
      c->Get("/v1/"
             "jobs?cursor="
             "OTk5OTk5OTk5OTk5OTk5OTk5OTowMTkzYTFiMi0wMDAwLTcwMDAtODAwMC0wMDAwMDAwMDAwMDE"),
      400, "validation");  // micros beyond bigint
  // Bodies the size limit cannot see: chunked (411) and compressed (415), refused unread. Sent
  // in one write on a raw socket: the server answers from the headers and closes, and an HTTP
  // client still writing its body at that moment may see the reset instead of the answer.
  const std::string chunk = R"({"type":"noop","payload":{}})";
  auto chunked = raw_http(producer_->port(),
                          "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Transfer-Encoding: chunked\r\n\r\n" +
                              (std::ostringstream() << std::hex << chunk.size()).str() + "\r\n" +
                              chunk + "\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.substr(0, 12), "HTTP/1.1 411") << chunked;
  EXPECT_NE(chunked.find("https://warren.dev/problems/length-required"), std::string::npos);
  auto gzipped =
      raw_http(producer_->port(), std::string("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                              "application/json\r\nContent-Encoding: gzip\r\n"
                                              "Content-Length: 3\r\n\r\n\x1f\x8b\x08"));
  EXPECT_EQ(gzipped.substr(0, 12), "HTTP/1.1 415") << gzipped;
  EXPECT_NE(gzipped.find("https://warren.dev/problems/unsupported-media-type"), std::string::npos);

  // The client's request id is echoed.
  auto echoed = c->Get("/v1/jobs", {{"X-Request-Id", "req-12345"}});
  EXPECT_EQ(echoed->get_header_value("X-Request-Id"), "req-12345");
  // No 500 anywhere above.
  auto metrics = c->Get("/metrics");
  ASSERT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->body.find("status=\"500\""), std::string::npos);
  EXPECT_NE(
      metrics->body.find("warren_http_requests_total{route=\"POST /v1/jobs\",status=\"415\"} 2"),
      std::string::npos)
      << metrics->body;
}

TEST_F(ProducerApi, BearerTokensAndScopes) {
  const std::string tokens = test_env("WARREN_TEST_STACK_DIR") + "/tokens-" + prefix_;
  std::ofstream(tokens) << "submitter s0000000000000000001 submit\n"
                           "reader    r0000000000000000001 read\n"
                           "operator  a0000000000000000001 admin\n";
  start_producer({{"WARREN_API_TOKENS_FILE", tokens}});
  auto c = api();
  const json job = {{"type", "noop"}, {"payload", json::object()}};
  auto with = [](const std::string& token) {
    return httplib::Headers{{"Authorization", "Bearer " + token}};
  };
  auto none = post_json(*c, "/v1/jobs", job);
  EXPECT_EQ(none->status, 401);
  EXPECT_EQ(none->get_header_value("WWW-Authenticate").rfind("Bearer", 0), 0u);
  EXPECT_EQ(post_json(*c, "/v1/jobs", job, with("wrong0000000000000000"))->status, 401);
  EXPECT_EQ(post_json(*c, "/v1/jobs", job, with("r0000000000000000001"))->status, 403);
  auto ok = post_json(*c, "/v1/jobs", job, with("s0000000000000000001"));
  ASSERT_EQ(ok->status, 202);
  const std::string id = json::parse(ok->body)["id"];
  EXPECT_EQ(c->Get(("/v1/jobs/" + id).c_str(), with("s0000000000000000001"))->status, 403);
  EXPECT_EQ(c->Get(("/v1/jobs/" + id).c_str(), with("r0000000000000000001"))->status, 200);
  EXPECT_EQ(c->Get(("/v1/jobs/" + id).c_str(), with("a0000000000000000001"))->status, 200);
  EXPECT_EQ(c->Get("/v1/jobs")->status, 401);
  // Health and metrics need no token.
  EXPECT_EQ(c->Get("/healthz")->status, 200);
  EXPECT_EQ(c->Get("/metrics")->status, 200);
  // The token never reaches the log; the caller's name does.
  producer_->stop();
  const auto log = producer_->process().log();
  EXPECT_EQ(log.find("s0000000000000000001"), std::string::npos);
  EXPECT_NE(log.find("\"caller\":\"submitter\""), std::string::npos);
}

TEST_F(ProducerApi, CancelWaitingJobsAndRefuseFinishedOnes) {
  start_producer();
  auto c = api();
  auto submit = [&](json extra) {
    json job = {{"type", "noop"}, {"payload", json::object()}};
    job.update(extra);
    return json::parse(post_json(*c, "/v1/jobs", job)->body)["id"].get<std::string>();
  };
  const auto queued = submit(json::object());
  const auto scheduled = submit({{"delay_ms", 600000}});
  auto r = c->Post(("/v1/jobs/" + queued + "/cancel").c_str(), "", "application/json");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(json::parse(r->body)["status"], "cancelled");
  EXPECT_FALSE(json::parse(r->body)["finished_at"].is_null());
  r = c->Post(("/v1/jobs/" + scheduled + "/cancel").c_str(), "", "application/json");
  EXPECT_EQ(json::parse(r->body)["status"], "cancelled");
  EXPECT_EQ(c->Post(("/v1/jobs/" + queued + "/cancel").c_str(), "", "application/json")->status,
            409);

  // A running job (as a consumer would mark it) gets cancel_requested and stays running.
  const auto running = submit(json::object());
  execute("UPDATE jobs SET status = 'running' WHERE id = '" + running + "'");
  r = c->Post(("/v1/jobs/" + running + "/cancel").c_str(), "", "application/json");
  ASSERT_EQ(r->status, 200);
  EXPECT_EQ(json::parse(r->body)["status"], "running");
  EXPECT_EQ(json::parse(r->body)["cancel_requested"], true);

  // `curl -X POST .../cancel` sends no Content-Length at all: an empty body (RFC 9112 6.3),
  // not a malformed request.
  const auto bare = submit(json::object());
  const auto answer = raw_http(producer_->port(), "POST /v1/jobs/" + bare +
                                                      "/cancel HTTP/1.1\r\nHost: x\r\n"
                                                      "Connection: close\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
  EXPECT_NE(answer.find("\"cancelled\""), std::string::npos) << answer;
}

TEST_F(ProducerApi, ListFiltersAndKeysetPaginationStableWhileInserting) {
  start_producer();
  auto c = api();
  for (int i = 0; i < 30; ++i) {
    post_json(*c, "/v1/jobs",
              {{"type", i % 3 == 0 ? "a.job" : "b.job"},
               {"payload", {{"i", i}}},
               {"metadata", {{"tenant", i % 2 == 0 ? "even" : "odd"}}}});
  }
  auto list = [&](const std::string& query) { return json::parse(c->Get(query.c_str())->body); };
  EXPECT_EQ(list("/v1/jobs?type=a.job&limit=500")["jobs"].size(), 10u);
  EXPECT_EQ(list("/v1/jobs?metadata.tenant=even&limit=500")["jobs"].size(), 15u);
  EXPECT_EQ(list("/v1/jobs?type=a.job&metadata.tenant=even&limit=500")["jobs"].size(), 5u);
  EXPECT_EQ(list("/v1/jobs?status=queued&limit=500")["jobs"].size(), 30u);
  EXPECT_EQ(list("/v1/jobs?status=succeeded")["jobs"].size(), 0u);
  EXPECT_EQ(list("/v1/jobs?created_before=2000-01-01T00:00:00Z")["jobs"].size(), 0u);

  // Walk pages of 7 while new jobs keep arriving: every original job is seen exactly once,
  // newest first, and none of the new ones (they are newer than the first page).
  std::vector<std::string> seen;
  std::string cursor;
  int added = 0;
  do {
    auto page = list("/v1/jobs?limit=7" + (cursor.empty() ? "" : "&cursor=" + cursor));
    for (const auto& job : page["jobs"]) seen.push_back(job["id"]);
    post_json(*c, "/v1/jobs", {{"type", "late"}, {"payload", json::object()}});
    ++added;
    cursor = page["next_cursor"].is_null() ? "" : page["next_cursor"].get<std::string>();
  } while (!cursor.empty());
  ASSERT_EQ(seen.size(), 30u);
  std::set<std::string> unique(seen.begin(), seen.end());
  EXPECT_EQ(unique.size(), 30u);
  const auto ordered = query_json(
      "SELECT id::text FROM jobs WHERE type <> 'late' ORDER BY created_at DESC, id DESC");
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], ordered[i]["id"]) << i;
  EXPECT_EQ(added, 5);
}

// Debian's httplib listens with a backlog of 5 and leaves Nagle on; the producer fixes both
// (producer_app.cpp). With Nagle, each response waits for the client's delayed ACK (~40 ms).
TEST_F(ProducerApi, ApiSocketHasABacklogAndNoNagleDelay) {
  start_producer();
  auto ss = run_command("/usr/bin/ss", {"-Hltn", "sport = :" + std::to_string(producer_->port())});
  std::istringstream columns(ss.out);
  std::string state, recv_q, send_q;
  columns >> state >> recv_q >> send_q;
  EXPECT_EQ(send_q, "1024") << ss.out;  // a listening socket's Send-Q is its backlog

  auto c = api();
  c->set_keep_alive(true);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 50; ++i) ASSERT_EQ(c->Get("/healthz")->status, 200);
  // ~2 s with the delayed-ACK stall, milliseconds without.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
}

TEST_F(ProducerApi, ReadyzTellsTheTruthAndShutdownIsClean) {
  start_producer();
  auto c = api();
  EXPECT_TRUE(
      wait_until([&] { return c->Get("/readyz")->status == 200; }, std::chrono::seconds(10)));
  const auto ready = json::parse(c->Get("/readyz")->body);
  EXPECT_EQ(ready["database"], "up");
  EXPECT_EQ(ready["broker"], "up");
  EXPECT_EQ(producer_->stop(), 0);
  EXPECT_NE(producer_->process().log().find("producer stopped"), std::string::npos);
}

}  // namespace
}  // namespace warren::test
