// See handler_registry.h. The built-in handlers are here because they are tiny and exist for
// tests, demos and benchmarks; real handlers live in the deployment's own code.
#include "consumer/handler_registry.h"

#include <regex>
#include <stdexcept>

namespace warren::consumer {
namespace {

// noop: succeeds at once (benchmarks).
HandlerResult noop(JobContext&) {
  return HandlerResult::success();
}

// sleep {"ms": N}: sleeps cooperatively, so timeouts and cancellation stop it.
HandlerResult sleep(JobContext& job) {
  const auto ms = job.payload.value("ms", int64_t{0});
  if (ms < 0) return HandlerResult::permanent("invalid_payload", "ms must not be negative");
  if (!job.sleep_for(std::chrono::milliseconds(ms))) {
    return HandlerResult::retry("interrupted", "sleep was interrupted");
  }
  return HandlerResult::success({{"slept_ms", ms}});
}

// fail {"times": N, "permanent": false, "message": "..."}: fails its first N attempts (every
// attempt when N is absent), then succeeds.
HandlerResult fail(JobContext& job) {
  const auto message = job.payload.value("message", std::string("failed on purpose"));
  const bool permanent = job.payload.value("permanent", false);
  const auto times = job.payload.find("times");
  const bool fails_now = times == job.payload.end() || !times->is_number_integer() ||
                         job.attempt <= times->get<int64_t>();
  if (!fails_now) return HandlerResult::success({{"failed_attempts", job.attempt - 1}});
  if (permanent) return HandlerResult::permanent("fail_permanent", message);
  return HandlerResult::retry("fail", message);
}

}  // namespace

void HandlerRegistry::add(const std::string& type, JobHandler handler) {
  static const std::regex valid("^[a-z0-9][a-z0-9._-]{0,63}$");
  if (!std::regex_match(type, valid)) throw std::invalid_argument("bad job type name: " + type);
  if (!handlers_.emplace(type, std::move(handler)).second) {
    throw std::invalid_argument("a handler for " + type + " is already registered");
  }
}

const JobHandler* HandlerRegistry::find(const std::string& type) const {
  auto it = handlers_.find(type);
  return it == handlers_.end() ? nullptr : &it->second;
}

std::vector<std::string> HandlerRegistry::types() const {
  std::vector<std::string> out;
  for (const auto& [type, handler] : handlers_) out.push_back(type);
  return out;
}

void add_builtin_handlers(HandlerRegistry& registry) {
  registry.add("noop", noop);
  registry.add("sleep", sleep);
  registry.add("fail", fail);
}

}  // namespace warren::consumer
