// Abuse and security tests (issue 5), black box against a running producer: every documented
// route without a token, with a wrong one and with one lacking the scope; bodies and request
// heads built to break parsers, limits and memory (empty, one byte too large, 100 MB streamed,
// nested, not UTF-8, NUL, duplicate keys, overflowing numbers, huge strings, wrong content
// types, chunked, headers that never end); clients that send their headers a byte a second; and
// 100k bad requests with the producer's RSS measured before and after. Whatever is sent, the
// answer is the status API.md's table gives, as problem+json, never a 5xx, and the producer
// neither crashes nor grows.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "support/sanitizers.h"
#include "support/test_stack.h"

namespace warren::test {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMiB = 1024 * 1024;
constexpr std::size_t kDefaultMaxBody = kMiB;  // WARREN_MAX_BODY_BYTES's default (RUNNING.md)
// The producer's read timeout (producer_app.cpp, set_read_timeout): how long a request's line
// and headers may take to arrive.
constexpr auto kHeaderTimeout = 10s;
constexpr const char* kSomeId = "0193a1b2-0000-7000-8000-000000000001";

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// A field of /proc/<pid>/status in KiB: VmRSS (resident now) or VmHWM (the peak).
long proc_status_kib(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stol(line.substr(field.size() + 1));
  }
  return -1;
}

// Growth of the producer's memory, in KiB, checked against `limit_kib` in the plain build only:
// ASan's quarantine keeps freed memory resident by design (and TSan's shadow memory grows with
// it), so there RSS says nothing about buffering or leaks; LeakSanitizer checks the producer for
// leaks when it exits instead.
void expect_memory_grew_less_than(long grown_kib, long limit_kib, const std::string& what) {
  if (test::kSanitized) {
    std::printf("[ metrics  ] %s: not checked under the %s sanitizer\n", what.c_str(),
                test::kSanitizer);
    return;
  }
  EXPECT_LT(grown_kib, limit_kib) << what;
}

// An answer read off a raw socket.
struct RawResponse {
  int status = 0;
  std::string head, body;

  std::string header(const std::string& name) const {
    const std::regex re("\r\n" + name + ":[ \t]*([^\r]*)", std::regex::icase);
    std::smatch match;
    return std::regex_search(head, match, re) ? match[1].str() : "";
  }
};

RawResponse parse_response(const std::string& text) {
  RawResponse response;
  const auto end = text.find("\r\n\r\n");
  if (text.rfind("HTTP/1.1 ", 0) != 0 || end == std::string::npos) return response;
  response.status = std::atoi(text.c_str() + 9);
  response.head = text.substr(0, end + 2);
  response.body = text.substr(end + 4);
  return response;
}

// A TCP connection to the producer, for what HTTP client libraries will not send: chunked and
// endless bodies, heads that never end, bytes one at a time. Closed when destroyed.
class RawSocket {
 public:
  explicit RawSocket(int port) : fd_(::socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(fd_);
      fd_ = -1;
      closed_ = true;
    }
  }
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  int fd() const { return fd_; }
  bool closed() const { return closed_; }
  const std::string& received() const { return received_; }

  // Sends what the socket takes without blocking; returns how much, or -1 once the server
  // closed or reset the connection.
  ssize_t send_some(std::string_view data) {
    if (closed_) return -1;
    const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return n;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
  }

  // Sends all of `data` unless the server stops taking it (closed, or nothing taken for 5 s).
  bool send_all(std::string_view data) {
    auto last_progress = Clock::now();
    while (!data.empty()) {
      const ssize_t n = send_some(data);
      if (n < 0) return false;
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
        last_progress = Clock::now();
      } else if (Clock::now() - last_progress > 5s) {
        return false;
      } else {
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, 50);
      }
    }
    return true;
  }

  // Waits up to `wait` for bytes and keeps them; false once the server closed (EOF or reset).
  bool receive(std::chrono::milliseconds wait) {
    if (closed_) return false;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return true;
    char buffer[64 * 1024];
    const ssize_t n = ::recv(fd_, buffer, sizeof(buffer), 0);
    if (n <= 0) {
      closed_ = true;
      return false;
    }
    received_.append(buffer, static_cast<std::size_t>(n));
    return true;
  }

  // True once a whole answer (head and Content-Length body) has arrived.
  bool has_response() const {
    const auto response = parse_response(received_);
    if (response.status == 0) return false;
    const auto length = response.header("Content-Length");
    return response.body.size() >= (length.empty() ? 0u : std::stoul(length));
  }

  // Reads until the server closes the connection or `timeout` passes.
  const std::string& read_until_closed(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline && receive(50ms)) {
    }
    return received_;
  }

 private:
  int fd_;
  bool closed_ = false;
  std::string received_;
};

// Sends `request` whole and returns what the server answers until it closes or 10 s pass.
RawResponse raw_exchange(int port, const std::string& request) {
  RawSocket socket(port);
  socket.send_all(request);
  return parse_response(socket.read_until_closed(10s));
}

// What happened to a request whose body (or head) went on and on.
struct Flood {
  RawResponse response;
  std::size_t sent = 0;  // bytes of the flood the server took before answering or closing
  bool closed = false;   // the server closed the connection
  bool sent_everything = false;
  double seconds = 0;
};

// Sends `head`, then up to `flood_bytes` of `unit` repeated (framed as chunks when `chunked`),
// reading all along: stops when the server has answered and closed, or it took everything.
Flood flood(int port, const std::string& head, std::size_t flood_bytes, const std::string& unit,
            bool chunked = false) {
  Flood result;
  const auto start = Clock::now();
  RawSocket socket(port);
  if (!socket.send_all(head)) return result;
  std::string piece;
  if (chunked) {
    std::ostringstream size;
    size << std::hex << unit.size();
    piece = size.str() + "\r\n" + unit + "\r\n";
  } else {
    piece = unit;
  }
  std::size_t offset = 0;  // into piece
  auto deadline = start + 60s;
  bool sending = true;
  while (Clock::now() < deadline) {
    pollfd p{socket.fd(), static_cast<short>(POLLIN | (sending ? POLLOUT : 0)), 0};
    ::poll(&p, 1, 100);
    if ((p.revents & (POLLIN | POLLHUP | POLLERR)) && !socket.receive(0ms)) break;
    if (sending && (p.revents & POLLOUT)) {
      const ssize_t n = socket.send_some(std::string_view(piece).substr(offset));
      if (n < 0) {
        sending = false;
      } else {
        offset += static_cast<std::size_t>(n);
        result.sent += static_cast<std::size_t>(n);
        if (offset == piece.size()) offset = 0;
        if (result.sent >= flood_bytes && offset == 0) {
          if (chunked) socket.send_all("0\r\n\r\n");
          sending = false;
          result.sent_everything = true;
          deadline = std::min(deadline, Clock::now() + 15s);  // for an answer
        }
      }
    }
    // An answer while the flood goes on: give the server a moment to close, then stop.
    if (socket.has_response()) {
      socket.read_until_closed(2s);
      break;
    }
    if (!sending && !socket.receive(100ms)) break;
  }
  result.response = parse_response(socket.received());
  result.closed = socket.closed();
  result.seconds = seconds_since(start);
  return result;
}

// The problem+json checks every refusal gets.
void expect_problem_body(int status, const std::string& content_type, const std::string& body,
                         int expected) {
  EXPECT_EQ(status, expected) << body.substr(0, 600);
  EXPECT_EQ(content_type, "application/problem+json") << "status " << status;
  const auto problem = json::parse(body, nullptr, false);
  ASSERT_TRUE(problem.is_object()) << body.substr(0, 600);
  EXPECT_EQ(problem["status"], expected) << body.substr(0, 600);
  EXPECT_TRUE(problem["type"].is_string() &&
              problem["type"].get<std::string>().rfind("https://warren.dev/problems/", 0) == 0)
      << body.substr(0, 600);
  EXPECT_TRUE(problem["title"].is_string());
}

void expect_problem(const httplib::Result& r, int expected) {
  ASSERT_TRUE(r) << "expected " << expected << ", got " << httplib::to_string(r.error());
  expect_problem_body(r->status, r->get_header_value("Content-Type"), r->body, expected);
  EXPECT_FALSE(r->get_header_value("X-Request-Id").empty());
}

void expect_problem(const RawResponse& r, int expected) {
  ASSERT_NE(r.status, 0) << "no answer";
  expect_problem_body(r.status, r.header("Content-Type"), r.body, expected);
}

// One operation of producer/openapi.json, with a concrete path to call.
struct DocumentedRoute {
  std::string method;       // GET, POST
  std::string path;         // as documented: /v1/jobs/{id}
  std::string target;       // with valid-looking ids: /v1/jobs/0193a1b2-...
  bool token_free = false;  // documented with `security: []`
  std::string scope;        // "(scope read)" in the summary; empty when not said

  std::string label() const { return method + " " + path; }
};

// Every operation of the repository's OpenAPI document (the one the producer serves), so a new
// route is covered here the day it is documented.
std::vector<DocumentedRoute> documented_routes() {
  std::ifstream file(std::string(WARREN_SOURCE_DIR) + "/producer/openapi.json");
  const auto document = json::parse(file);
  const bool secured_by_default = document.contains("security") && !document["security"].empty();
  std::vector<DocumentedRoute> routes;
  for (const auto& [path, operations] : document["paths"].items()) {
    for (const auto& [method, operation] : operations.items()) {
      if (method == "parameters") continue;
      DocumentedRoute route;
      route.method = method;
      std::transform(route.method.begin(), route.method.end(), route.method.begin(), ::toupper);
      route.path = path;
      route.target = std::regex_replace(path, std::regex(R"(\{[^}]+\})"), kSomeId);
      route.token_free =
          operation.contains("security") ? operation["security"].empty() : !secured_by_default;
      std::smatch scope;
      const std::string summary = operation.value("summary", "");
      if (std::regex_search(summary, scope, std::regex(R"(\(scope (submit|read|admin)\))"))) {
        route.scope = scope[1].str();
      }
      routes.push_back(route);
    }
  }
  return routes;
}

// `depth` arrays inside each other around `inner`.
std::string nested(int depth, const std::string& inner = "1") {
  return std::string(static_cast<std::size_t>(depth), '[') + inner +
         std::string(static_cast<std::size_t>(depth), ']');
}

class Abuse : public IntegrationTest {
 protected:
  // One token per scope set: the one lacking a scope is the one holding the others.
  std::string admin_ = "abuse-admin-" + random_suffix() + random_suffix();
  std::string submitter_ = "abuse-submit-" + random_suffix() + random_suffix();
  std::string reader_ = "abuse-read-" + random_suffix() + random_suffix();
  std::string submitter_reader_ = "abuse-both-" + random_suffix() + random_suffix();

  RunningProducer& start_secured_producer(std::map<std::string, std::string> extra = {}) {
    const std::string tokens = test_env("WARREN_TEST_STACK_DIR") + "/tokens-" + prefix_;
    std::ofstream(tokens) << "admin " << admin_ << " admin\n"
                          << "submitter " << submitter_ << " submit\n"
                          << "reader " << reader_ << " read\n"
                          << "both " << submitter_reader_ << " submit,read\n";
    extra["WARREN_API_TOKENS_FILE"] = tokens;
    // Refusals are logged at info; debug would add a line for every good request too.
    if (!extra.count("WARREN_LOG_LEVEL")) extra["WARREN_LOG_LEVEL"] = "info";
    return start_producer(extra);
  }

  std::unique_ptr<httplib::Client> client(const std::string& token) const {
    auto c = api();
    if (!token.empty()) c->set_bearer_token_auth(token.c_str());
    return c;
  }

  // A valid token that lacks `scope` (it holds every other one).
  const std::string& token_without(const std::string& scope) const {
    if (scope == "submit") return reader_;
    if (scope == "read") return submitter_;
    return submitter_reader_;
  }

  const std::string& token_with(const std::string& scope) const {
    if (scope == "submit") return submitter_;
    if (scope == "read") return reader_;
    return admin_;
  }

  pid_t producer_pid() { return producer_->process().pid(); }
  long rss_kib() { return proc_status_kib(producer_pid(), "VmRSS"); }
  long peak_rss_kib() { return proc_status_kib(producer_pid(), "VmHWM"); }

  // The producer still runs, serves, and never answered a 5xx (its own request counter).
  void expect_alive_without_server_errors() {
    ASSERT_TRUE(producer_->process().running()) << "the producer died; log:\n"
                                                << producer_->process().log();
    auto metrics = api()->Get("/metrics");
    ASSERT_TRUE(metrics) << "the producer no longer answers";
    ASSERT_EQ(metrics->status, 200);
    std::istringstream lines(metrics->body);
    for (std::string line; std::getline(lines, line);) {
      // (/readyz says 503 until the producer is ready, which the tests wait for: the truth.)
      if (line.rfind("warren_http_requests_total{", 0) == 0 &&
          line.rfind("warren_http_requests_total{route=\"GET /readyz\",status=\"503\"}", 0) != 0) {
        EXPECT_EQ(line.find("status=\"5"), std::string::npos) << line;
      }
    }
    EXPECT_EQ(producer_->process().log().find("internal error"), std::string::npos);
  }

  httplib::Result send(const DocumentedRoute& route, const httplib::Headers& headers,
                       const std::string& body) {
    auto c = api();
    if (route.method == "GET") return c->Get(route.target.c_str(), headers);
    return c->Post(route.target.c_str(), headers, body, "application/json");
  }
};

// API.md "Authentication": every route needs a token with its scope, except /healthz, /readyz
// and /metrics. Refusals come before the body is looked at: an invalid body still gets 401/403.
TEST_F(Abuse, EveryDocumentedRouteRefusesMissingWrongAndUnderScopedTokens) {
  start_secured_producer();
  ASSERT_TRUE(wait_until(
      [&] {
        auto r = api()->Get("/readyz");
        return r && r->status == 200;
      },
      20s));
  // API.md: /healthz, /readyz and /metrics never need a token; /openapi.json is listed with no
  // scope either: an API description is public, fetched by tools before they hold a token.
  const std::set<std::string> token_free_by_contract = {"GET /healthz", "GET /readyz",
                                                        "GET /metrics", "GET /openapi.json"};
  const auto routes = documented_routes();
  ASSERT_GE(routes.size(), 20u) << "producer/openapi.json was not read as expected";
  std::set<std::string> seen;
  for (const auto& route : routes) {
    SCOPED_TRACE(route.label() + " (" + route.target + ")");
    seen.insert(route.label());
    if (token_free_by_contract.count(route.label())) {
      EXPECT_TRUE(route.token_free) << "documented as needing a token";
      auto r = send(route, {}, "");
      ASSERT_TRUE(r);
      EXPECT_EQ(r->status, 200) << r->body;
      continue;
    }
    EXPECT_FALSE(route.token_free)
        << "documented without a token, but API.md lets only /healthz, /readyz, /metrics and "
           "/openapi.json go without one";
    ASSERT_FALSE(route.scope.empty()) << "the summary must say which scope the route needs";

    const std::string garbage = "{\"not json";
    auto expect_unauthorized = [&](const httplib::Headers& headers, const std::string& why) {
      SCOPED_TRACE(why);
      auto r = send(route, headers, garbage);
      expect_problem(r, 401);
      if (r) {
        EXPECT_EQ(r->get_header_value("WWW-Authenticate").rfind("Bearer", 0), 0u);
      }
    };
    expect_unauthorized({}, "no Authorization header");
    expect_unauthorized({{"Authorization", "Bearer wrong-" + random_suffix() + random_suffix()}},
                        "unknown token");
    expect_unauthorized({{"Authorization", "Bearer " + admin_ + "x"}}, "a valid token plus one");
    expect_unauthorized({{"Authorization", "Bearer " + admin_.substr(1)}},
                        "a valid token less one");
    expect_unauthorized({{"Authorization", "Bearer"}}, "the scheme alone");
    expect_unauthorized({{"Authorization", "Basic " + admin_}}, "another scheme");
    expect_unauthorized({{"Authorization", admin_}}, "no scheme");
    expect_unauthorized({{"Authorization", "Bearer " + std::string(4000, 'x')}}, "4 KB");
    expect_unauthorized({{"Authorization", std::string("Bearer \xff\xfe\x01")}}, "binary");

    auto under_scoped =
        send(route, {{"Authorization", "Bearer " + token_without(route.scope)}}, garbage);
    expect_problem(under_scoped, 403);
    if (under_scoped) {
      EXPECT_NE(under_scoped->body.find(route.scope), std::string::npos) << under_scoped->body;
    }

    // And the right token gets past the door (whatever the route then says about the id/body).
    auto allowed = send(route, {{"Authorization", "Bearer " + token_with(route.scope)}}, "{}");
    ASSERT_TRUE(allowed);
    EXPECT_NE(allowed->status, 401) << allowed->body;
    EXPECT_NE(allowed->status, 403) << allowed->body;
    EXPECT_LT(allowed->status, 500) << allowed->body;
  }
  for (const auto& route : token_free_by_contract) EXPECT_TRUE(seen.count(route)) << route;
  expect_alive_without_server_errors();
}

// API.md "Errors" for bodies, on every route that takes one in bulk: each case gets its exact
// status as problem+json, and none a 5xx.
TEST_F(Abuse, MalformedBodiesGetTheStatusOfTheErrorTable) {
  start_secured_producer();
  auto c = client(admin_);
  const std::string huge(512 * 1024, 'a');  // huge, but well under the 1 MiB limit
  struct Case {
    std::string name, body;
    int status;
    std::string content_type = "application/json";
  };
  // Cases that mean the same on every body route.
  auto common_cases = [&] {
    std::vector<Case> cases = {
        {"empty", "", 400},
        {"whitespace", " \r\n\t ", 400},
        {"not JSON", "{\"type\":", 400},
        {"trailing garbage", "{} {}", 400},
        {"a JSON comment", "/* x */ {}", 400},
        {"null", "null", 400},
        {"an array", "[]", 400},
        {"a string", "\"x\"", 400},
        {"nested 65 deep", nested(65), 400},
        {"nested 65 deep in an object", "{\"x\":" + nested(64) + "}", 400},
        {"nested 200000 deep", nested(200000), 400},
        {"unclosed 500000 deep", std::string(500000, '['), 400},
        {"invalid UTF-8", "{\"x\":\"\xff\xfe\"}", 400},
        {"overlong UTF-8", "{\"x\":\"\xc0\xaf\"}", 400},
        {"UTF-8 surrogate", "{\"x\":\"\xed\xa0\x80\"}", 400},
        {"escaped lone surrogate", "{\"x\":\"\\ud800\"}", 400},
        {"a raw NUL in a string", std::string("{\"x\":\"a\0b\"}", 11), 400},
        {"a raw NUL outside", std::string("{}\0", 3), 400},
        {"duplicate keys", "{\"x\":1,\"x\":1}", 400},
        {"1e400", "{\"x\":1e400}", 400},
        {"-1e400", "{\"x\":-1e400}", 400},
        {"NaN", "{\"x\":NaN}", 400},
        {"Infinity", "{\"x\":Infinity}", 400},
        {"1 byte over the limit", std::string(kDefaultMaxBody + 1, ' '), 413},
        {"64 KiB over the limit", std::string(kDefaultMaxBody + 64 * 1024, ' '), 413},
        {"text/plain", "{}", 415, "text/plain"},
        {"no content type", "{}", 415, ""},
        {"a small form", "a=1&b=2", 415, "application/x-www-form-urlencoded"},
        {"a 64 KiB form", "a=" + std::string(64 * 1024, 'b'), 415,
         "application/x-www-form-urlencoded"},
        {"multipart", "--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n{}\r\n--x--\r\n",
         415, "multipart/form-data; boundary=x"},
        {"multipart without a boundary", "{}", 415, "multipart/form-data"},
        {"application/jsonp", "{}", 415, "application/jsonp"},
        {"application/json-patch+json", "[]", 415, "application/json-patch+json"},
        {"JSON's type as a parameter", "{}", 415, "text/plain; type=application/json"},
    };
    return cases;
  };
  const auto valid_job = [](const json& extra) {
    json job = {{"type", "noop"}, {"payload", json::object()}};
    if (extra.is_object()) job.update(extra);
    return job;
  };
  // POST /v1/jobs: its own fields, each overflowing or huge.
  std::vector<Case> job_cases = {
      {"max_attempts 2^64", R"({"type":"noop","payload":{},"max_attempts":18446744073709551616})",
       400},
      {"max_attempts 2^64-1", R"({"type":"noop","payload":{},"max_attempts":18446744073709551615})",
       400},
      {"max_attempts 2^63", R"({"type":"noop","payload":{},"max_attempts":9223372036854775808})",
       400},
      {"max_attempts -2^63-1",
       R"({"type":"noop","payload":{},"max_attempts":-9223372036854775809})", 400},
      {"max_attempts 1e2", R"({"type":"noop","payload":{},"max_attempts":1e2})", 400},
      {"max_attempts 400 digits",
       R"({"type":"noop","payload":{},"max_attempts":)" + std::string(400, '9') + "}", 400},
      {"timeout_ms 2^64", R"({"type":"noop","payload":{},"timeout_ms":18446744073709551616})", 400},
      {"delay_ms 2^63", R"({"type":"noop","payload":{},"delay_ms":9223372036854775808})", 400},
      {"delay_ms -1", R"({"type":"noop","payload":{},"delay_ms":-1})", 400},
      {"backoff factor 1e308",
       R"({"type":"noop","payload":{},"backoff":{"initial_ms":1000,"factor":1e308,"max_ms":2000}})",
       400},
      {"backoff initial_ms 2^64",
       R"({"type":"noop","payload":{},"backoff":{"initial_ms":18446744073709551615,"factor":2,"max_ms":2}})",
       400},
      {"run_at year 99999", R"({"type":"noop","payload":{},"run_at":"99999-01-01T00:00:00Z"})",
       400},
      {"run_at year 0", R"({"type":"noop","payload":{},"run_at":"0000-01-01T00:00:00Z"})", 400},
      {"duplicate nested keys", R"({"type":"noop","payload":{"a":{"b":1,"b":2}}})", 400},
      {"escaped NUL in the payload", R"({"type":"noop","payload":{"x":"a\u0000b"}})", 400},
      {"escaped NUL in a payload key", R"({"type":"noop","payload":{"\u0000":1}})", 400},
      {"escaped NUL in metadata", R"({"type":"noop","payload":{},"metadata":{"k":"\u0000"}})", 400},
      {"escaped NUL in the key", R"({"type":"noop","payload":{},"idempotency_key":"\u0000"})", 400},
      {"payload nested 64 deep (the limit)",
       valid_job({{"payload", json::parse("{\"x\":" + nested(62) + "}")}}).dump(), 202},
      {"exactly the limit",
       [&] {
         auto job = valid_job({{"payload", {{"x", ""}}}});
         job["payload"]["x"] = std::string(kDefaultMaxBody - job.dump().size(), 'a');
         return job.dump();
       }(),
       202},
      {"a huge payload string", valid_job({{"payload", {{"x", huge}}}}).dump(), 202},
      {"a huge payload key", valid_job({{"payload", {{huge, 1}}}}).dump(), 202},
      {"a huge type", valid_job({{"type", huge}}).dump(), 400},
      {"a huge queue", valid_job({{"queue", huge}}).dump(), 400},
      {"a huge idempotency_key", valid_job({{"idempotency_key", huge}}).dump(), 400},
      {"a huge run_at", valid_job({{"run_at", huge}}).dump(), 400},
      {"a huge metadata value", valid_job({{"metadata", {{"k", huge}}}}).dump(), 400},
      {"a huge metadata key", valid_job({{"metadata", {{huge, "v"}}}}).dump(), 400},
      {"huge metadata",
       valid_job({{"metadata",
                   [&] {
                     json m;
                     for (int i = 0; i < 20000; ++i) m["k" + std::to_string(i)] = "v";
                     return m;
                   }()}})
           .dump(),
       400},
      {"a huge backoff", valid_job({{"backoff", {{"initial_ms", huge}}}}).dump(), 400},
      {"a huge unknown field", valid_job({{huge, 1}}).dump(), 400},
      {"a huge max_attempts", valid_job({{"max_attempts", huge}}).dump(), 400},
      {"a huge timeout_ms", valid_job({{"timeout_ms", huge}}).dump(), 400},
      {"a huge delay_ms", valid_job({{"delay_ms", huge}}).dump(), 400},
      {"an unknown queue", valid_job({{"queue", "nowhere"}}).dump(), 422},
      {"JSON with a charset and upper case", valid_job({}).dump(), 202,
       "Application/JSON ; charset=UTF-8"},
  };
  // POST /v1/jobs/batch: the same inside jobs[0], plus the batch's own shape.
  std::vector<Case> batch_cases = {
      {"jobs not an array", R"({"jobs":{}})", 400},
      {"no jobs", R"({"jobs":[]})", 400},
      {"1001 jobs", json{{"jobs", std::vector<json>(1001, valid_job({}))}}.dump(), 400},
      {"duplicate jobs key", R"({"jobs":[],"jobs":[]})", 400},
      {"a job with max_attempts 2^64",
       R"({"jobs":[{"type":"noop","payload":{},"max_attempts":18446744073709551616}]})", 400},
      {"a job with an escaped NUL", R"({"jobs":[{"type":"noop","payload":{"x":"\u0000"}}]})", 400},
      {"a job with a huge type", json{{"jobs", {valid_job({{"type", huge}})}}}.dump(), 400},
      {"a job with a huge idempotency_key",
       json{{"jobs", {valid_job({{"idempotency_key", huge}})}}}.dump(), 400},
      {"a job with a huge metadata value",
       json{{"jobs", {valid_job({{"metadata", {{"k", huge}}}})}}}.dump(), 400},
      {"a job with a huge unknown field", json{{"jobs", {valid_job({{huge, 1}})}}}.dump(), 400},
      {"a job that is a huge string", json{{"jobs", {huge}}}.dump(), 400},
      {"a huge unknown field", json{{"jobs", {valid_job({})}}, {huge, 1}}.dump(), 400},
      {"a job with a huge payload",
       json{{"jobs", {valid_job({{"payload", {{"x", huge}}}})}}}.dump(), 202},
  };
  // POST /v1/dead-letters/requeue and /discard (bulk): ids or filters.
  std::vector<Case> bulk_cases = {
      {"limit 2^64", R"({"limit":18446744073709551616})", 400},
      {"limit 2^64-1", R"({"limit":18446744073709551615})", 400},
      {"limit -1", R"({"limit":-1})", 400},
      {"limit 1e400", R"({"limit":1e400})", 400},
      {"an escaped NUL in q", R"({"q":"a\u0000b"})", 400},
      {"an escaped NUL in comment", R"({"comment":"a\u0000b"})", 400},
      {"an escaped NUL in an id", R"({"ids":["\u0000"]})", 400},
      {"ids and a filter", json{{"ids", {kSomeId}}, {"queue", "default"}}.dump(), 400},
      {"10001 ids", json{{"ids", std::vector<std::string>(10001, kSomeId)}}.dump(), 400},
      {"a huge id", json{{"ids", {huge}}}.dump(), 400},
      {"a huge type", json{{"type", huge}}.dump(), 400},
      {"a huge queue", json{{"queue", huge}}.dump(), 400},
      {"a huge reason", json{{"reason", huge}}.dump(), 400},
      {"a huge error_type", json{{"error_type", huge}}.dump(), 400},
      {"a huge q", json{{"q", huge}}.dump(), 400},
      {"a huge since", json{{"since", huge}}.dump(), 400},
      {"a huge until", json{{"until", huge}}.dump(), 400},
      {"a huge state", json{{"state", huge}}.dump(), 400},
      {"a huge comment", json{{"comment", huge}}.dump(), 400},
      {"a huge limit", json{{"limit", huge}}.dump(), 400},
      {"a huge unknown field", json{{huge, 1}}.dump(), 400},
      {"unknown ids", json{{"ids", {kSomeId}}}.dump(), 202},
  };
  const std::vector<std::pair<std::string, std::vector<Case>>> routes = {
      {"/v1/jobs", job_cases},
      {"/v1/jobs/batch", batch_cases},
      {"/v1/dead-letters/requeue", bulk_cases},
      {"/v1/dead-letters/discard", bulk_cases},
  };
  for (const auto& [path, specific] : routes) {
    auto cases = common_cases();
    cases.insert(cases.end(), specific.begin(), specific.end());
    for (const auto& test_case : cases) {
      SCOPED_TRACE("POST " + path + ": " + test_case.name);
      httplib::Headers headers;
      if (!test_case.content_type.empty()) headers.emplace("Content-Type", test_case.content_type);
      // (httplib adds a Content-Type of its own unless given an empty one: passing the header
      // ourselves keeps "no content type" possible.)
      auto r = c->Post(path.c_str(), headers, test_case.body, "");
      if (test_case.status < 300) {
        ASSERT_TRUE(r) << httplib::to_string(r.error());
        EXPECT_EQ(r->status, test_case.status) << r->body.substr(0, 600);
      } else {
        expect_problem(r, test_case.status);
      }
    }
  }

  // A POST with no body at all (no Content-Length): an empty body (RFC 9112 6.3), 400.
  expect_problem(raw_exchange(producer_->port(),
                              "POST /v1/jobs HTTP/1.1\r\nHost: x\r\n"
                              "Authorization: Bearer " +
                                  admin_ +
                                  "\r\nContent-Type: application/json\r\n"
                                  "Connection: close\r\n\r\n"),
                 400);

  // A dead letter's own requeue: a replacement payload Postgres cannot store is bad input.
  const std::string job_id = json::parse(post_json(*c, "/v1/jobs", valid_job({}))->body)["id"];
  const std::string letter = "0193a1b2-0000-7000-8000-0000000000aa";
  execute("UPDATE jobs SET status = 'failed', attempts = 5, finished_at = now() WHERE id = '" +
          job_id + "'");
  execute(
      "INSERT INTO dead_letters (id, message_key, job_id, type, queue, reason, dead_lettered_at) "
      "VALUES ('" +
      letter + "', 'abuse', '" + job_id + "', 'noop', 'default', 'max_attempts', now())");
  const std::string requeue = "/v1/dead-letters/" + letter + "/requeue";
  for (const auto& [name, body, status] : std::vector<std::tuple<std::string, std::string, int>>{
           {"an escaped NUL in the payload", R"({"payload":{"x":"a\u0000b"}})", 400},
           {"an escaped NUL in a payload key", R"({"payload":{"\u0000":1}})", 400},
           {"max_attempts 2^64", R"({"max_attempts":18446744073709551616})", 400},
           {"max_attempts 2^63", R"({"max_attempts":9223372036854775808})", 400},
           {"a huge reason", json{{"reason", huge}}.dump(), 400},
           {"duplicate keys", R"({"reason":"a","reason":"b"})", 400},
           {"nested 65 deep", "{\"payload\":{\"x\":" + nested(63) + "}}", 400},
           {"invalid UTF-8", "{\"reason\":\"\xff\"}", 400},
       }) {
    SCOPED_TRACE("POST " + requeue + ": " + name);
    expect_problem(c->Post(requeue.c_str(), body, "application/json"), status);
  }
  EXPECT_EQ(query_value("SELECT state FROM dead_letters WHERE id = '" + letter + "'"), "dead");
  auto requeued = c->Post(requeue.c_str(), R"({"payload":{"x":"fixed"}})", "application/json");
  ASSERT_TRUE(requeued);
  EXPECT_EQ(requeued->status, 200) << requeued->body;
  expect_alive_without_server_errors();
}

// Framing a body the size limit cannot see, or a head that is not HTTP: refused from the head,
// the body left unread, and the connection closed (anything after it would be parsed as the
// next request).
TEST_F(Abuse, BodyFramingTricksAreRefusedAndTheConnectionClosed) {
  start_secured_producer();
  const int port = producer_->port();
  const std::string head = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin_ +
                           "\r\nContent-Type: application/json\r\n";
  const std::string job = R"({"type":"noop","payload":{}})";
  // A second request hidden where the first one's body would be: it must never run.
  const std::string smuggled =
      "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin_ +
      "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(job.size()) +
      "\r\n\r\n" + job;
  struct Case {
    std::string name, headers;
    int status;
  };
  const std::vector<Case> cases = {
      {"chunked (README: 411)", "Transfer-Encoding: chunked\r\n", 411},
      {"chunked with a Content-Length", "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", 411},
      {"a Transfer-Encoding httplib does not know", "Transfer-Encoding: gzip, chunked\r\n", 411},
      {"gzip", "Content-Encoding: gzip\r\nContent-Length: 10\r\n", 415},
      {"a Content-Length that is not a number", "Content-Length: abc\r\n", 400},
      {"a negative Content-Length", "Content-Length: -1\r\n", 400},
      {"a Content-Length with a suffix", "Content-Length: 0x10\r\n", 400},
      {"two different Content-Lengths", "Content-Length: 0\r\nContent-Length: 10\r\n", 400},
      {"a Content-Length beyond 2^64", "Content-Length: 99999999999999999999999\r\n", 413},
      {"a Content-Length of 100 MB", "Content-Length: 104857600\r\n", 413},
  };
  for (const auto& test_case : cases) {
    SCOPED_TRACE(test_case.name);
    RawSocket socket(port);
    socket.send_all(head + test_case.headers + "\r\n");
    // The answer comes from the head alone, at once.
    const auto deadline = Clock::now() + 5s;
    while (!socket.has_response() && Clock::now() < deadline && socket.receive(50ms)) {
    }
    EXPECT_TRUE(socket.has_response()) << "no answer without the body";
    // Then the bytes where its body would be: another request, which must never run.
    socket.send_all(smuggled);
    const auto answer = socket.read_until_closed(3s);
    EXPECT_TRUE(socket.closed()) << "the connection stayed open";
    const auto response = parse_response(answer);
    expect_problem(response, test_case.status);
    EXPECT_EQ(answer.find("HTTP/1.1", 1), std::string::npos)
        << "more than one answer: the body was read as a request\n"
        << answer;
  }
  EXPECT_EQ(query_int("SELECT count(*) FROM jobs"), 0) << "a smuggled request ran";
  expect_alive_without_server_errors();
}

// 100 MB streamed at the producer, with a Content-Length and chunked: it answers from the head
// and closes, without reading (let alone keeping) the 100 MB.
TEST_F(Abuse, HundredMegabyteBodiesAreRefusedWithoutBeingRead) {
  start_secured_producer();
  const int port = producer_->port();
  const std::size_t flood_bytes = 100 * kMiB;
  const std::string unit(64 * 1024, 'a');
  const std::string head = "POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + admin_ +
                           "\r\nContent-Type: application/json\r\n";
  const long rss_before = rss_kib(), peak_before = peak_rss_kib();
  ASSERT_GT(rss_before, 0);
  for (const bool chunked : {false, true}) {
    SCOPED_TRACE(chunked ? "chunked" : "Content-Length");
    const auto result =
        flood(port,
              head + (chunked ? "Transfer-Encoding: chunked\r\n\r\n"
                              : "Content-Length: " + std::to_string(flood_bytes) + "\r\n\r\n"),
              flood_bytes, unit, chunked);
    std::printf("[ metrics  ] 100 MB %s: answered %d after %.2f s, %.1f MiB sent\n",
                chunked ? "chunked" : "with Content-Length", result.response.status, result.seconds,
                static_cast<double>(result.sent) / kMiB);
    expect_problem(result.response, chunked ? 411 : 413);
    EXPECT_TRUE(result.closed) << "the connection stayed open";
    EXPECT_FALSE(result.sent_everything) << "the producer read all 100 MB";
    EXPECT_LT(result.sent, 32 * kMiB) << "the producer read the body instead of refusing it";
  }
  const long rss_after = rss_kib(), peak_after = peak_rss_kib();
  std::printf("[ metrics  ] producer RSS %ld -> %ld KiB, peak %ld -> %ld KiB\n", rss_before,
              rss_after, peak_before, peak_after);
  expect_memory_grew_less_than(peak_after - peak_before, 16 * 1024,
                               "peak RSS (the producer must not buffer the body)");
  expect_memory_grew_less_than(rss_after - rss_before, 16 * 1024, "RSS");
  // Still serving, the same connection limits for everyone.
  auto ok = post_json(*client(admin_), "/v1/jobs", {{"type", "noop"}, {"payload", json::object()}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 202);
  expect_alive_without_server_errors();
}

// Request heads that never end (a line without a newline, headers without a blank line, or
// simply too many of them) are refused once they pass the head limits, not kept in memory.
TEST_F(Abuse, EndlessRequestHeadsAreRefusedWithoutBeingBuffered) {
  start_secured_producer();
  const int port = producer_->port();
  const long rss_before = rss_kib(), peak_before = peak_rss_kib();
  const std::size_t flood_bytes = 64 * kMiB;
  const std::string unit(64 * 1024, 'a');
  struct Case {
    std::string name, head, unit;
    int status;
  };
  const std::vector<Case> cases = {
      {"an endless request line", "GET /v1/jobs?x=", unit, 414},
      {"an endless header line", "GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Long: ", unit, 431},
      {"endless headers", "GET /v1/jobs HTTP/1.1\r\nHost: x\r\n",
       [] {
         std::string many;
         while (many.size() < 64 * 1024) many += "X-Many: " + std::to_string(many.size()) + "\r\n";
         return many;
       }(),
       431},
  };
  for (const auto& test_case : cases) {
    SCOPED_TRACE(test_case.name);
    const auto result = flood(port, test_case.head, flood_bytes, test_case.unit);
    std::printf("[ metrics  ] %s: answered %d after %.2f s, %.1f MiB sent\n",
                test_case.name.c_str(), result.response.status, result.seconds,
                static_cast<double>(result.sent) / kMiB);
    expect_problem(result.response, test_case.status);
    EXPECT_TRUE(result.closed);
    EXPECT_LT(result.sent, 16 * kMiB) << "the producer kept reading the head";
  }
  // A little over the limits, sent whole: the same answers.
  std::string hundred_headers = "GET /healthz HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 200; ++i) hundred_headers += "X-H" + std::to_string(i) + ": v\r\n";
  expect_problem(raw_exchange(port, hundred_headers + "\r\n"), 431);
  expect_problem(raw_exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                        std::string(70 * 1024, 'b') + "\r\n\r\n"),
                 431);
  // httplib's own limits answer in the same shape.
  expect_problem(raw_exchange(port, "GET /v1/jobs?x=" + std::string(9000, 'a') +
                                        " HTTP/1.1\r\nHost: x\r\n\r\n"),
                 414);
  expect_problem(raw_exchange(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " +
                                        std::string(9000, 'b') + "\r\n\r\n"),
                 400);
  expect_problem(raw_exchange(port, "NONSENSE\r\n\r\n"), 400);
  expect_problem(raw_exchange(port, "GET /healthz HTTP/9.9\r\n\r\n"), 400);
  // Long paths went through every route's regex, and libstdc++'s regex recurses per character:
  // 8000 bytes overflowed a thread's stack under ASan. Up to 2 KiB they still reach the routes.
  auto c = client(admin_);
  for (const std::size_t length : {std::size_t{2000}, std::size_t{8000}}) {
    SCOPED_TRACE("an id of " + std::to_string(length) + " bytes");
    const int status = length > 2048 ? 414 : 404;
    const std::string long_id(length, 'a');
    expect_problem(c->Get(("/v1/jobs/" + long_id).c_str()), status);
    expect_problem(c->Get(("/v1/dead-letters/" + long_id + "/x").c_str()), status);
    expect_problem(c->Post(("/v1/jobs/" + long_id + "/cancel").c_str(), "", "application/json"),
                   status);
    expect_problem(c->Get(("/" + std::string(length, '/')).c_str()), status);
  }

  const long rss_after = rss_kib(), peak_after = peak_rss_kib();
  std::printf("[ metrics  ] producer RSS %ld -> %ld KiB, peak %ld -> %ld KiB\n", rss_before,
              rss_after, peak_before, peak_after);
  expect_memory_grew_less_than(peak_after - peak_before, 16 * 1024,
                               "peak RSS (the producer must not buffer a head)");
  expect_alive_without_server_errors();
}

// Slowloris: clients sending their head a byte a second. The producer keeps serving everyone
// else promptly, and drops each slow client once its head has taken the read timeout (10 s).
TEST_F(Abuse, SlowHeadersAreDroppedAfterTheReadTimeoutWhileOthersAreServed) {
  start_secured_producer();
  const int port = producer_->port();
  constexpr int kSlowClients = 8;
  std::vector<std::unique_ptr<RawSocket>> slow;
  std::vector<double> dropped_after(kSlowClients, -1);
  const auto start = Clock::now();
  for (int i = 0; i < kSlowClients; ++i) {
    slow.push_back(std::make_unique<RawSocket>(port));
    ASSERT_TRUE(slow.back()->send_all("POST /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  }
  std::atomic<bool> done{false};
  std::thread trickler([&] {
    auto next = Clock::now();
    while (!done) {
      bool all_dropped = true;
      for (int i = 0; i < kSlowClients; ++i) {
        if (dropped_after[i] >= 0) continue;
        auto& socket = *slow[i];
        if (!socket.receive(0ms) || socket.has_response() || socket.send_some("a") < 0) {
          dropped_after[i] = seconds_since(start);
          socket.read_until_closed(1s);
        } else {
          all_dropped = false;
        }
      }
      if (all_dropped || seconds_since(start) > 25) break;
      next += 1s;
      while (!done && Clock::now() < next) std::this_thread::sleep_for(20ms);
    }
  });
  // Meanwhile, other clients (new connections each time) get answers at once.
  double slowest = 0;
  int answered = 0;
  while (seconds_since(start) < std::chrono::duration<double>(kHeaderTimeout).count() - 1) {
    const auto sent = Clock::now();
    auto c = client(reader_);
    auto r = c->Get("/v1/jobs?limit=1");
    ASSERT_TRUE(r) << httplib::to_string(r.error());
    EXPECT_EQ(r->status, 200);
    slowest = std::max(slowest, seconds_since(sent));
    ++answered;
    std::this_thread::sleep_for(200ms);
  }
  trickler.join();
  done = true;
  std::printf("[ metrics  ] %d requests during the slowloris, slowest %.0f ms\n", answered,
              slowest * 1000);
  EXPECT_LT(slowest, 1.0) << "normal requests waited behind the slow clients";
  for (int i = 0; i < kSlowClients; ++i) {
    SCOPED_TRACE("slow client " + std::to_string(i));
    std::printf("[ metrics  ] slow client %d dropped after %.1f s\n", i, dropped_after[i]);
    ASSERT_GE(dropped_after[i], 0) << "never dropped";
    EXPECT_GE(dropped_after[i], 9.0) << "dropped before the read timeout";
    EXPECT_LE(dropped_after[i], 13.0) << "kept well past the read timeout";
    expect_problem(parse_response(slow[i]->received()), 408);
  }
  expect_alive_without_server_errors();
}

// The limit that remains (guarded_http_server.h): a connection holds one of the
// WARREN_HTTP_THREADS pool threads while its head arrives, so as many slow clients as threads
// hold up the others, but only until the read timeout drops them, not for as long as they like.
TEST_F(Abuse, SlowClientsHoldingEveryThreadDelayOthersOnlyUntilTheReadTimeout) {
  constexpr int kThreads = 4;
  start_secured_producer({{"WARREN_HTTP_THREADS", std::to_string(kThreads)}});
  const int port = producer_->port();
  std::vector<std::unique_ptr<RawSocket>> slow;
  const auto start = Clock::now();
  for (int i = 0; i < kThreads; ++i) {
    slow.push_back(std::make_unique<RawSocket>(port));
    ASSERT_TRUE(slow.back()->send_all("GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  }
  std::atomic<bool> done{false};
  std::thread trickler([&] {
    while (!done && seconds_since(start) < 30) {
      for (auto& socket : slow) socket->send_some("a");
      std::this_thread::sleep_for(1s);
    }
  });
  std::this_thread::sleep_for(1s);
  auto c = client(reader_);
  c->set_read_timeout(30);
  const auto sent = Clock::now();
  auto r = c->Get("/v1/jobs?limit=1");
  const double waited = seconds_since(sent);
  done = true;
  trickler.join();
  std::printf("[ metrics  ] with every thread held by a slow client, a request waited %.1f s\n",
              waited);
  ASSERT_TRUE(r) << httplib::to_string(r.error());
  EXPECT_EQ(r->status, 200);
  EXPECT_LT(seconds_since(start), std::chrono::duration<double>(kHeaderTimeout).count() + 3)
      << "the slow clients were kept past the read timeout";
  expect_alive_without_server_errors();
}

// 100k bad requests over keep-alive connections: every one answered with its status, never a
// 5xx, and the producer's memory flat (RSS after a warm-up, then after the 100k).
TEST_F(Abuse, HundredThousandBadRequestsLeaveMemoryFlat) {
  // The smallest body limit, so the 413s stay cheap to send.
  start_secured_producer({{"WARREN_MAX_BODY_BYTES", "1024"}});
  struct Bad {
    std::string method, path, token, content_type, body;
    int status;
  };
  const std::string job = R"({"type":"noop","payload":{}})";
  // @@ in a path, token or body is replaced per request: nothing is the same twice.
  const std::vector<Bad> mix = {
      {"POST", "/v1/jobs", "", "application/json", job, 401},
      {"GET", "/v1/jobs", "wrong-@@", "", "", 401},
      {"GET", "/v1/dead-letters", submitter_, "", "", 403},
      {"POST", "/v1/dead-letters/requeue", submitter_reader_, "application/json", "{}", 403},
      {"POST", "/v1/jobs", admin_, "application/json", "{\"type\":", 400},
      {"POST", "/v1/jobs", admin_, "application/json", R"({"type":"noop","type":"noop"})", 400},
      {"POST", "/v1/jobs", admin_, "application/json", nested(65), 400},
      {"POST", "/v1/jobs", admin_, "application/json", "{\"type\":\"\xff\"}", 400},
      {"POST", "/v1/jobs", admin_, "application/json",
       R"({"type":"noop","payload":{},"max_attempts":18446744073709551616})", 400},
      {"POST", "/v1/jobs", admin_, "text/plain", job, 415},
      {"POST", "/v1/jobs", admin_, "application/json", std::string(1500, ' '), 413},
      {"POST", "/v1/jobs", admin_, "application/json",
       R"({"type":"noop","payload":{},"queue":"q@@"})", 422},
      {"GET", "/v1/nothing/@@", admin_, "", "", 404},
      {"GET", "/v1/jobs/0193a1b2-0000-7000-8000-@@", admin_, "", "", 404},
      {"DELETE", "/v1/jobs", admin_, "", "", 405},
      {"GET", "/v1/jobs?limit=0&x=@@", admin_, "", "", 400},
      {"POST", "/v1/jobs/batch", admin_, "application/json", R"({"jobs":[]})", 400},
      {"POST", "/v1/dead-letters/discard", admin_, "application/json", R"({"ids":["@@"]})", 400},
  };
  std::atomic<long> sequence{0}, transport_errors{0}, server_errors{0}, wrong_status{0};
  std::mutex first_wrong_mutex;
  std::string first_wrong;
  auto run = [&](int threads, long per_thread) {
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
      workers.emplace_back([&] {
        auto c = api();
        c->set_keep_alive(true);
        c->set_tcp_nodelay(true);  // else Nagle and delayed ACKs cost each POST 40 ms
        for (long i = 0; i < per_thread; ++i) {
          const long n = sequence++;
          const auto& bad = mix[static_cast<std::size_t>(n) % mix.size()];
          char unique[17];
          std::snprintf(unique, sizeof(unique), "%012lx", n);
          auto fill = [&](std::string text) {
            if (auto at = text.find("@@"); at != std::string::npos) text.replace(at, 2, unique);
            return text;
          };
          httplib::Headers headers{{"X-Request-Id", std::string("abuse-") + unique}};
          if (!bad.token.empty()) headers.emplace("Authorization", "Bearer " + fill(bad.token));
          const std::string path = fill(bad.path);
          httplib::Result r =
              bad.method == "GET" ? c->Get(path.c_str(), headers)
              : bad.method == "POST"
                  ? c->Post(path.c_str(), headers, fill(bad.body), bad.content_type.c_str())
                  : c->Delete(path.c_str(), headers);
          if (!r) {
            ++transport_errors;
            continue;
          }
          if (r->status >= 500) ++server_errors;
          if (r->status != bad.status) {
            if (++wrong_status == 1) {
              std::lock_guard<std::mutex> lock(first_wrong_mutex);
              first_wrong = bad.method + " " + path + " -> " + std::to_string(r->status) + " " +
                            r->body.substr(0, 300);
            }
          }
        }
      });
    }
    for (auto& worker : workers) worker.join();
  };
  constexpr int kThreads = 4;
  run(kThreads, 2500);  // warm-up: the allocator's arenas, the pool threads, the metrics series
  const long rss_before = rss_kib();
  const auto start = Clock::now();
  constexpr long kRequests = 100000;
  run(kThreads, kRequests / kThreads);
  const double seconds = seconds_since(start);
  const long rss_after = rss_kib();
  std::printf(
      "[ metrics  ] %ld bad requests in %.1f s (%.0f req/s); producer RSS %ld -> %ld KiB "
      "(%+ld KiB)\n",
      kRequests, seconds, kRequests / seconds, rss_before, rss_after, rss_after - rss_before);
  EXPECT_EQ(transport_errors, 0);
  EXPECT_EQ(server_errors, 0);
  EXPECT_EQ(wrong_status, 0) << "first: " << first_wrong;
  expect_memory_grew_less_than(rss_after - rss_before, 8 * 1024,
                               "RSS after 100k bad requests (must stay flat)");
  auto ok = post_json(*client(submitter_), "/v1/jobs", json::parse(job));
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 202) << ok->body;
  expect_alive_without_server_errors();
}

}  // namespace
}  // namespace warren::test
