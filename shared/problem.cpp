// See problem.h. The type URIs live under https://warren.dev/problems/ as API.md shows.
#include "shared/problem.h"

namespace warren {
namespace {

Problem make(int status, std::string slug, std::string title, std::string detail,
             std::vector<FieldError> errors = {}) {
  Problem p;
  p.status = status;
  p.slug = std::move(slug);
  p.title = std::move(title);
  p.detail = std::move(detail);
  p.errors = std::move(errors);
  return p;
}

}  // namespace

nlohmann::json Problem::to_json() const {
  nlohmann::json out = {{"type", "https://warren.dev/problems/" + slug},
                        {"title", title},
                        {"status", status},
                        {"detail", detail}};
  if (!errors.empty()) {
    out["errors"] = nlohmann::json::array();
    for (const auto& e : errors)
      out["errors"].push_back({{"field", e.field}, {"message", e.message}});
  }
  return out;
}

Problem validation_problem(std::string detail, std::vector<FieldError> errors) {
  return make(400, "validation", "Request body is invalid", std::move(detail), std::move(errors));
}

Problem unauthorized_problem(std::string detail) {
  auto p = make(401, "unauthorized", "Authentication required", std::move(detail));
  p.headers.emplace_back("WWW-Authenticate", "Bearer realm=\"warren\"");
  return p;
}

Problem forbidden_problem(std::string detail) {
  return make(403, "forbidden", "Token lacks the required scope", std::move(detail));
}

Problem not_found_problem(std::string detail) {
  return make(404, "not-found", "Not found", std::move(detail));
}

Problem method_not_allowed_problem(const std::string& allow) {
  auto p = make(405, "method-not-allowed", "Method not allowed", "this route accepts " + allow);
  p.headers.emplace_back("Allow", allow);
  return p;
}

Problem conflict_problem(std::string detail, std::vector<FieldError> errors) {
  return make(409, "conflict", "Conflict with the current state", std::move(detail),
              std::move(errors));
}

Problem payload_too_large_problem(std::size_t limit) {
  return make(413, "payload-too-large", "Request body is too large",
              "the body is larger than " + std::to_string(limit) + " bytes");
}

Problem length_required_problem() {
  return make(411, "length-required", "Length required",
              "send the body with Content-Length (chunked transfer encoding is not accepted)");
}

Problem unsupported_media_type_problem() {
  return make(415, "unsupported-media-type", "Unsupported media type",
              "send the body as Content-Type: application/json");
}

Problem unprocessable_problem(std::string detail, std::vector<FieldError> errors) {
  return make(422, "unprocessable", "Request cannot be processed by this deployment",
              std::move(detail), std::move(errors));
}

Problem database_unavailable_problem() {
  auto p = make(503, "unavailable", "Database unavailable",
                "the job store cannot be reached; nothing was accepted, retry later");
  p.headers.emplace_back("Retry-After", "2");
  return p;
}

Problem internal_problem(const std::string& request_id) {
  return make(500, "internal", "Internal server error",
              "an unexpected error was logged with request id " + request_id);
}

}  // namespace warren
