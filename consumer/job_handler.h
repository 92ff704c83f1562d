// The C++ interface of a job handler: what Warren's consumer calls to run one attempt of a job
// of a given type. Handlers are registered by type name at start (handler_registry.h).
//
// A handler gets the job (id, type, attempt, payload, deadline, a stop token, a logger bound to
// the job) and returns one of three results:
//   success (optional JSON result)  -> the job is `succeeded`
//   retry (error, optional delay)   -> attempt `failed`, retried with backoff (or that delay)
//   permanent (error)               -> no more attempts: the job is `failed` and dead-lettered
// An exception is a retryable error whose type is the exception's type (run_handler()).
//
// C++ cannot kill a thread: when the attempt times out or the job is cancelled, the stop token
// fires and the handler is expected to return soon. Use context.sleep_for() instead of
// std::this_thread::sleep_for, and check context.stop_requested() in long loops.
//
// Example, a complete handler for type "email.send":
//
//   HandlerResult send_email(JobContext& job) {
//     const auto& to = job.payload.at("to").get_ref<const std::string&>();
//     if (to.find('@') == std::string::npos) {
//       return HandlerResult::permanent("invalid_address", "no @ in " + to);
//     }
//     auto status = smtp_send(to, job.payload.value("subject", ""));
//     if (status == 421) return HandlerResult::retry("smtp_421", "server busy", 30s);
//     job.log.info("sent", {{"to", to}});
//     return HandlerResult::success({{"smtp_status", status}});
//   }
//   registry.add("email.send", send_email);
#pragma once

#include <chrono>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <stop_token>
#include <string>

#include "shared/logging.h"

namespace warren::consumer {

// Log lines of a handler carry the job's id, type, attempt and trace id.
class JobLogger {
 public:
  explicit JobLogger(log::Fields job_fields) : job_fields_(std::move(job_fields)) {}
  void info(std::string_view message, const log::Fields& fields = log::Fields::object()) const;
  void warn(std::string_view message, const log::Fields& fields = log::Fields::object()) const;
  void error(std::string_view message, const log::Fields& fields = log::Fields::object()) const;

 private:
  log::Fields merged(const log::Fields& fields) const;
  log::Fields job_fields_;
};

struct JobContext {
  std::string id;
  std::string type;
  std::string queue;
  int attempt = 1;
  int max_attempts = 1;
  const nlohmann::json& payload;
  std::chrono::steady_clock::time_point deadline;  // time_point::max() without a timeout
  std::stop_token stop;                            // fires on timeout, cancel, shutdown
  JobLogger log;

  bool stop_requested() const { return stop.stop_requested(); }

  // Sleeps `duration`, waking early when the stop token fires; false when it did.
  bool sleep_for(std::chrono::milliseconds duration) const;
};

struct HandlerError {
  std::string type;     // short machine-readable kind: "http_503", "timeout", "invalid_address"
  std::string message;  // for people
};

struct HandlerResult {
  enum class Kind { kSuccess, kRetry, kPermanent };

  Kind kind = Kind::kSuccess;
  nlohmann::json result;                              // kSuccess
  HandlerError error;                                 // kRetry, kPermanent
  std::optional<std::chrono::milliseconds> retry_in;  // kRetry: wins over the backoff

  static HandlerResult success(nlohmann::json result = nullptr);
  static HandlerResult retry(std::string type, std::string message,
                             std::optional<std::chrono::milliseconds> retry_in = std::nullopt);
  static HandlerResult permanent(std::string type, std::string message);
};

using JobHandler = std::function<HandlerResult(JobContext&)>;

// Runs `handler`, turning an exception into a retryable error named after its type.
HandlerResult run_handler(const JobHandler& handler, JobContext& context);

}  // namespace warren::consumer
