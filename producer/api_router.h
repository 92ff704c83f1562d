// The HTTP front door of the producer: a table of routes, and what every route shares. For
// each request it assigns the request id (X-Request-Id, echoed when the client sent one),
// checks the bearer token's scope, checks the content type of bodies, answers 405 with Allow
// for a known path with the wrong method, turns every error into problem+json, records metrics
// under the route's pattern, and logs one line.
//
// Handlers stay small: they read the request, call the store or the batcher, and either write
// JSON or throw ProblemError.
#pragma once

#include <httplib.h>

#include <functional>
#include <optional>
#include <regex>
#include <string>
#include <vector>

#include "producer/api_tokens.h"
#include "producer/producer_metrics.h"

namespace warren {

// How far past WARREN_MAX_BODY_BYTES httplib still reads a Content-Length body (producer_app.cpp
// sets its payload limit to the sum): a body a little too large is read whole and refused with a
// 413 the client sees on a clean connection; a longer one is refused from its Content-Length,
// unread (the pre-routing hook of ApiRouter::install), and the connection closed.
inline constexpr std::size_t kBodyReadSlack = 64 * 1024;

// The longest request path a route regex is run on (the query string is not part of it). The
// longest real path is about 80 bytes; libstdc++'s std::regex recurses once or more per
// character, and an 8000-byte path (httplib's own limit is 8 KiB) overflowed a thread's stack
// under ASan, and would without it on threads with smaller stacks. Longer paths are 414.
inline constexpr std::size_t kMaxPathBytes = 2048;

struct RequestContext {
  const httplib::Request& request;
  httplib::Response& response;
  std::string request_id;
  Caller caller;

  void json(int status, const nlohmann::json& body);
};

struct Route {
  std::string method;          // GET, POST
  std::string pattern;         // httplib regex, e.g. R"(/v1/jobs/([^/]+))"
  std::string label;           // for metrics and logs, e.g. "GET /v1/jobs/{id}"
  std::optional<Scope> scope;  // nullopt: no token needed (health, metrics)
  std::function<void(RequestContext&)> handler;
};

class ApiRouter {
 public:
  ApiRouter(const ApiAuthenticator& auth, ProducerMetrics& metrics, std::size_t max_body_bytes);

  void add(Route route);

  const std::vector<Route>& routes() const { return routes_; }

  // Registers every route on the server, plus 405 answers and the problem+json error handler.
  void install(httplib::Server& server);

 private:
  void dispatch(const Route& route, const httplib::Request& request, httplib::Response& response);
  std::string label_for(const httplib::Request& request) const;
  void record(const std::string& label, const httplib::Request& request,
              const httplib::Response& response, double seconds);

  const ApiAuthenticator& auth_;
  ProducerMetrics& metrics_;
  std::size_t max_body_bytes_;
  std::vector<Route> routes_;
  std::vector<std::pair<std::regex, std::string>>
      labels_;  // pattern -> label, for unrouted answers
};

// The request id to use: the client's X-Request-Id when it is sane, else a new UUID.
std::string request_id_for(const httplib::Request& request);

// Throws ProblemError(415) unless the request says its body is JSON.
void require_json_content_type(const httplib::Request& request);

}  // namespace warren
