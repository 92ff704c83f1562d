// RFC 9457 problem details: the one shape of every 4xx/5xx answer (API.md "Errors").
// A Problem is a value layers return or throw (ProblemError); only the HTTP layer turns it
// into a response, so validation and storage code stay free of HTTP.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace warren {

struct FieldError {
  std::string field;  // "max_attempts", "jobs[3].type", "metadata.tenant"
  std::string message;
};

struct Problem {
  int status = 500;
  std::string slug;  // last word of the type URI: validation, not-found, conflict...
  std::string title;
  std::string detail;
  std::vector<FieldError> errors;
  std::vector<std::pair<std::string, std::string>> headers;  // WWW-Authenticate, Allow, ...

  nlohmann::json to_json() const;
};

// The standard problems, so every route answers the same title for the same case.
Problem validation_problem(std::string detail, std::vector<FieldError> errors = {});
Problem unauthorized_problem(std::string detail);
Problem forbidden_problem(std::string detail);
Problem not_found_problem(std::string detail);
Problem method_not_allowed_problem(const std::string& allow);
Problem conflict_problem(std::string detail, std::vector<FieldError> errors = {});
Problem payload_too_large_problem(std::size_t limit);
Problem length_required_problem();
Problem unsupported_media_type_problem();
Problem unprocessable_problem(std::string detail, std::vector<FieldError> errors = {});
Problem database_unavailable_problem();
Problem internal_problem(const std::string& request_id);

// Thrown by handlers to answer with a problem; caught by the HTTP layer.
class ProblemError : public std::runtime_error {
 public:
  explicit ProblemError(Problem problem)
      : std::runtime_error(problem.detail), problem_(std::move(problem)) {}
  const Problem& problem() const { return problem_; }

 private:
  Problem problem_;
};

}  // namespace warren
