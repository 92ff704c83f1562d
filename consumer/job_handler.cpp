// See job_handler.h.
#include "consumer/job_handler.h"

#include <cxxabi.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <typeinfo>

namespace warren::consumer {
namespace {

// "std::runtime_error", not "St13runtime_error": the error type users see in attempts.
std::string demangled(const std::type_info& type) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> name(
      abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
  return status == 0 && name ? std::string(name.get()) : std::string(type.name());
}

}  // namespace

log::Fields JobLogger::merged(const log::Fields& fields) const {
  log::Fields all = job_fields_;
  if (fields.is_object()) all.update(fields);
  return all;
}
void JobLogger::info(std::string_view m, const log::Fields& f) const {
  log::info(m, merged(f));
}
void JobLogger::warn(std::string_view m, const log::Fields& f) const {
  log::warn(m, merged(f));
}
void JobLogger::error(std::string_view m, const log::Fields& f) const {
  log::error(m, merged(f));
}

bool JobContext::sleep_for(std::chrono::milliseconds duration) const {
  std::mutex mutex;
  std::condition_variable_any wake;
  std::unique_lock lock(mutex);
  // Nothing ever notifies `wake`: the wait ends at the timeout or when the stop token fires.
  wake.wait_for(lock, stop, duration, [] { return false; });
  return !stop.stop_requested();
}

HandlerResult HandlerResult::success(nlohmann::json result) {
  HandlerResult r;
  r.kind = Kind::kSuccess;
  r.result = std::move(result);
  return r;
}

HandlerResult HandlerResult::retry(std::string type, std::string message,
                                   std::optional<std::chrono::milliseconds> retry_in) {
  HandlerResult r;
  r.kind = Kind::kRetry;
  r.error = {std::move(type), std::move(message)};
  r.retry_in = retry_in;
  return r;
}

HandlerResult HandlerResult::permanent(std::string type, std::string message) {
  HandlerResult r;
  r.kind = Kind::kPermanent;
  r.error = {std::move(type), std::move(message)};
  return r;
}

HandlerResult run_handler(const JobHandler& handler, JobContext& context) {
  try {
    return handler(context);
  } catch (const std::exception& error) {
    return HandlerResult::retry(demangled(typeid(error)), error.what());
  } catch (...) {
    return HandlerResult::retry("unknown_exception", "the handler threw a non-std exception");
  }
}

}  // namespace warren::consumer
