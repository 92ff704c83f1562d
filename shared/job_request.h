// A job as a client asks for it (API.md "POST /v1/jobs"), and the validator that turns an
// untrusted JSON object into one. Used by the producer's submit routes and by
// `warrenctl submit`, so both accept and refuse exactly the same jobs.
//
// Two kinds of refusal: a malformed request (400: wrong type, out of range, unknown field) and
// a well-formed one this deployment does not take (422: queue not in WARREN_QUEUES, type not in
// WARREN_JOB_TYPES). 400s win: a request is judged on its shape first.
#pragma once

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "shared/problem.h"
#include "shared/retry_policy.h"

namespace warren {

struct Config;

struct JobRequest {
  std::string type;
  nlohmann::json payload;  // an object
  std::string queue = "default";
  int max_attempts = 5;
  std::optional<int64_t> timeout_ms;
  std::optional<int64_t> delay_ms;
  std::optional<std::chrono::system_clock::time_point> run_at;
  std::optional<Backoff> backoff;
  std::optional<std::string> idempotency_key;
  std::map<std::string, std::string> metadata;

  // When the job should first run, if later than now; nullopt means "at once".
  std::optional<std::chrono::system_clock::time_point> scheduled_for(
      std::chrono::system_clock::time_point now) const;

  // SHA-256 (hex) of the request as validated, without the idempotency key: two requests with
  // the same key are "the same request" when this matches (key order and spacing do not count).
  std::string fingerprint() const;
};

struct JobValidation {
  std::optional<JobRequest> job;
  std::vector<FieldError> bad_request;    // 400
  std::vector<FieldError> unprocessable;  // 422
};

// `field_prefix` is "" for a single job and "jobs[3]." inside a batch, so errors name the
// field the client must fix. `header_key` is the Idempotency-Key header, if any.
JobValidation validate_job_request(
    const nlohmann::json& body, const Config& config, const std::string& field_prefix = "",
    const std::optional<std::string>& header_key = std::nullopt,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

// True for well-formed UTF-8 without NUL: text Postgres can store and JSON can carry.
bool is_clean_text(std::string_view text);

// True when a string or key anywhere in `value` holds NUL ("\u0000"), which jsonb cannot store.
bool json_has_nul(const nlohmann::json& value);

// Throws ProblemError (400 before 422) when the validation refused the job.
JobRequest require_valid(JobValidation validation);

}  // namespace warren
