// See api_router.h.
#include "producer/api_router.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <set>

#include "shared/db/connection_pool.h"
#include "shared/logging.h"
#include "shared/uuid.h"

namespace warren {
namespace {

// The methods whose requests httplib reads a body for.
bool expects_body(const std::string& method) {
  return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

// httplib runs one request start to finish on one thread, from the pre-routing hook to the
// logger hook; this per-thread slot carries the start time between the two.
thread_local std::optional<std::chrono::steady_clock::time_point> request_started;

void write_problem(httplib::Response& response, const Problem& problem) {
  response.status = problem.status;
  for (const auto& [name, value] : problem.headers) response.set_header(name, value);
  // Details can quote client input (an id, a parser message): never throw on bad UTF-8 here.
  response.set_content(
      problem.to_json().dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
      "application/problem+json");
}

// Problems for answers httplib produced itself, before any route ran.
std::optional<Problem> problem_for_status(int status, std::size_t max_body_bytes) {
  switch (status) {
    case 400:
      return validation_problem("the request could not be parsed as HTTP");
    case 404:
      return not_found_problem("no such route");
    case 413:
      return payload_too_large_problem(max_body_bytes);
    case 414: {
      // (Keeps httplib's status: write_problem answers with the problem's.)
      auto problem = validation_problem("the request URI is too long");
      problem.status = 414;
      problem.slug = "uri-too-long";
      problem.title = "Request URI too long";
      return problem;
    }
    case 416:
      return validation_problem("range not satisfiable");
    default:
      return std::nullopt;
  }
}

// The request's media type, lower case, without parameters: "application/json" for
// "Application/JSON; charset=utf-8".
std::string media_type(const httplib::Request& request) {
  std::string type = request.get_header_value("Content-Type");
  std::transform(type.begin(), type.end(), type.begin(), ::tolower);
  type = type.substr(0, type.find(';'));
  type.erase(type.find_last_not_of(" \t") + 1);
  return type;
}

// Answers from the request's head, leaving its body unread: the connection must close, else the
// unread body would be parsed as the next request (GuardedHttpServer honours the header).
httplib::Server::HandlerResponse refuse_unread(httplib::Response& res, const Problem& problem) {
  write_problem(res, problem);
  res.set_header("Connection", "close");
  return httplib::Server::HandlerResponse::Handled;
}

bool is_sane_request_id(const std::string& id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':';
  });
}

}  // namespace

void RequestContext::json(int status, const nlohmann::json& body) {
  response.status = status;
  response.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace),
                       "application/json; charset=utf-8");
}

std::string request_id_for(const httplib::Request& request) {
  auto id = request.get_header_value("X-Request-Id");
  return is_sane_request_id(id) ? id : new_uuid_v7();
}

void require_json_content_type(const httplib::Request& request) {
  if (media_type(request) != "application/json") {
    throw ProblemError(unsupported_media_type_problem());
  }
}

ApiRouter::ApiRouter(const ApiAuthenticator& auth, ProducerMetrics& metrics,
                     std::size_t max_body_bytes)
    : auth_(auth), metrics_(metrics), max_body_bytes_(max_body_bytes) {}

void ApiRouter::add(Route route) {
  labels_.emplace_back(std::regex(route.pattern), route.label.substr(route.label.find(' ') + 1));
  routes_.push_back(std::move(route));
}

void ApiRouter::install(httplib::Server& server) {
  std::map<std::string, std::set<std::string>> methods_by_pattern;
  for (const auto& route : routes_) methods_by_pattern[route.pattern].insert(route.method);

  // A known path with another method: 405 naming the allowed ones (httplib alone says 404).
  // httplib takes the first matching pattern, so refusals for literal paths (/v1/jobs/batch)
  // go before the routes whose captures would also match them (/v1/jobs/{id}).
  auto add_refusals = [&](bool literal) {
    for (const auto& [pattern, methods] : methods_by_pattern) {
      if ((pattern.find('(') == std::string::npos) != literal) continue;
      std::string allow;
      for (const auto& m : methods) allow += (allow.empty() ? "" : ", ") + m;
      auto refuse = [allow](const httplib::Request&, httplib::Response& res) {
        write_problem(res, method_not_allowed_problem(allow));
      };
      if (!methods.count("GET")) server.Get(pattern, refuse);
      if (!methods.count("POST")) server.Post(pattern, refuse);
      server.Put(pattern, refuse);
      server.Patch(pattern, refuse);
      server.Delete(pattern, refuse);
      server.Options(pattern, refuse);
    }
  };
  add_refusals(true);
  for (const auto& route : routes_) {
    auto call = [this, &route](const httplib::Request& req, httplib::Response& res) {
      dispatch(route, req, res);
    };
    if (route.method == "GET") server.Get(route.pattern, call);
    if (route.method == "POST") server.Post(route.pattern, call);
  }
  add_refusals(false);

  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    request_started = std::chrono::steady_clock::now();
    res.set_header("X-Request-Id", request_id_for(req));
    if (req.path.size() > kMaxPathBytes) {
      return refuse_unread(res, *problem_for_status(414, max_body_bytes_));
    }
    // httplib 0.11 enforces the body limit only on Content-Length bodies: a chunked body is read
    // whole whatever its size, and a compressed one is inflated without limit. Refuse both
    // before the body is read (and close the connection: the unread body is still on it).
    if (req.has_header("Transfer-Encoding")) return refuse_unread(res, length_required_problem());
    // Content-Length says where this request ends and the next one begins: it must be one plain
    // decimal number. httplib 0.11 reads it with strtoull and takes the first of several, so
    // "abc" or "0x10" meant an empty body and the body's bytes parsed as another request, and
    // "-1" a body read until the connection closed.
    if (const auto lengths = req.get_header_value_count("Content-Length"); lengths > 0) {
      const std::string length = req.get_header_value("Content-Length");
      bool valid = !length.empty() && std::all_of(length.begin(), length.end(),
                                                  [](unsigned char c) { return std::isdigit(c); });
      for (std::size_t i = 1; i < lengths; ++i) {
        valid = valid && req.get_header_value("Content-Length", i) == length;
      }
      if (!valid) {
        return refuse_unread(
            res, validation_problem("Content-Length must be one decimal number of bytes"));
      }
      // A body far beyond the limit is refused from its length. httplib 0.11 would first read
      // (and discard) all of it, however large, or until the client stops: 100 MB read to say
      // 413, and a thread held for as long as the client cares to send.
      if (length.size() > 18 || std::stoull(length) > max_body_bytes_ + kBodyReadSlack) {
        return refuse_unread(res, payload_too_large_problem(max_body_bytes_));
      }
    }
    // RFC 9112 6.3: a request with neither Content-Length nor Transfer-Encoding has an empty
    // body; `curl -X POST .../cancel` sends exactly that. httplib 0.11 instead tries to read a
    // body until the connection closes and answers 400. The request is httplib's own mutable
    // object, handed to this hook before the body is read: saying the length out loud is the
    // one change that makes httplib read it right.
    if (expects_body(req.method) && !req.has_header("Content-Length")) {
      const_cast<httplib::Request&>(req).set_header("Content-Length", "0");
    }
    const auto encoding = req.get_header_value("Content-Encoding");
    if (!encoding.empty() && encoding != "identity") {
      auto problem = unsupported_media_type_problem();
      problem.detail = "Content-Encoding " + encoding + " is not accepted; send the body as is";
      return refuse_unread(res, problem);
    }
    // httplib parses form bodies itself, before any route (one over 8 KiB was answered 413, a
    // multipart one without a boundary 400, a multipart body left request.body empty); no route
    // takes either.
    if (expects_body(req.method)) {
      const auto type = media_type(req);
      if (type.rfind("application/x-www-form-urlencoded", 0) == 0 ||
          type.rfind("multipart/form-data", 0) == 0) {
        return refuse_unread(res, unsupported_media_type_problem());
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  // An exception that escaped a handler (a bug): a logged 500 in the usual shape, instead of
  // httplib's default, which would put the exception's text in a response header.
  server.set_exception_handler(
      [](const httplib::Request& req, httplib::Response& res, std::exception_ptr error) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(error);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        const auto request_id = res.get_header_value("X-Request-Id");
        log::error("request failed with an internal error",
                   {{"request_id", request_id}, {"path", req.path}, {"error", what}});
        write_problem(res, internal_problem(request_id));
      });

  // Answers httplib makes on its own (404, 413, unparsable requests) get the problem+json
  // shape too; answers our handlers wrote already have a body and are left alone.
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        if (!res.has_header("X-Request-Id")) res.set_header("X-Request-Id", request_id_for(req));
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        if (auto problem = problem_for_status(res.status, max_body_bytes_)) {
          write_problem(res, *problem);
          return httplib::Server::HandlerResponse::Handled;
        }
        return httplib::Server::HandlerResponse::Unhandled;
      }));

  server.set_logger([this](const httplib::Request& req, const httplib::Response& res) {
    double seconds = 0;
    if (request_started) {
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - *request_started)
                    .count();
      request_started.reset();
    }
    record(label_for(req), req, res, seconds);
  });
}

void ApiRouter::dispatch(const Route& route, const httplib::Request& request,
                         httplib::Response& response) {
  RequestContext context{request, response, response.get_header_value("X-Request-Id"), {}};
  try {
    // httplib reads bodies up to kBodyReadSlack past the limit (producer_app.cpp), so a body
    // slightly too large is refused here, on a connection that is still in a clean state.
    if (request.body.size() > max_body_bytes_)
      throw ProblemError(payload_too_large_problem(max_body_bytes_));
    if (route.scope) {
      context.caller = auth_.authenticate(request.get_header_value("Authorization"), *route.scope);
    }
    route.handler(context);
  } catch (const ProblemError& error) {
    write_problem(response, error.problem());
  } catch (const db::DatabaseUnavailable& error) {
    log::warn("database unavailable",
              {{"request_id", context.request_id}, {"error", error.what()}});
    write_problem(response, database_unavailable_problem());
  } catch (const std::exception& error) {
    log::error(
        "request failed with an internal error",
        {{"request_id", context.request_id}, {"route", route.label}, {"error", error.what()}});
    write_problem(response, internal_problem(context.request_id));
  }
}

std::string ApiRouter::label_for(const httplib::Request& request) const {
  // Methods and paths are attacker-controlled: only known ones become label values.
  static const std::set<std::string> known_methods{"GET",   "HEAD",   "POST",   "PUT",
                                                   "PATCH", "DELETE", "OPTIONS"};
  const std::string method = known_methods.count(request.method) ? request.method : "OTHER";
  if (request.path.size() > kMaxPathBytes) return method + " unmatched";  // no regex on it
  for (const auto& [pattern, path] : labels_) {
    if (std::regex_match(request.path, pattern)) return method + " " + path;
  }
  return method + " unmatched";
}

void ApiRouter::record(const std::string& label, const httplib::Request& request,
                       const httplib::Response& response, double seconds) {
  metrics_.http_requests.with({label, std::to_string(response.status)}).inc();
  metrics_.http_duration.with({label}).observe(seconds);
  const log::Fields fields = {{"request_id", response.get_header_value("X-Request-Id")},
                              {"method", request.method},
                              {"route", label},
                              {"status", response.status},
                              {"duration_ms", static_cast<int64_t>(seconds * 1000)},
                              {"remote", request.remote_addr}};
  // Successful requests are logged at debug: at thousands of submissions a second an access
  // log at info would cost more than the work. Refusals and failures are always visible.
  if (response.status >= 500) {
    log::error("request answered", fields);
  } else if (response.status >= 400) {
    log::info("request answered", fields);
  } else {
    log::debug("request answered", fields);
  }
}

}  // namespace warren
