// See logging.h. The whole line is formatted here and handed to spdlog as a preformatted
// message (pattern "%v"), because spdlog's pattern language cannot escape JSON.
#include "shared/logging.h"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <mutex>

#include "shared/config.h"
#include "shared/time_format.h"

namespace warren::log {
namespace {

struct LogState {
  std::shared_ptr<spdlog::logger> logger;
  std::string component = "warren";
  bool json = true;
};

// Written once by init() in main() before any other thread starts, then only read.
LogState& state() {
  static LogState s = [] {
    LogState fresh;
    fresh.logger = spdlog::stderr_logger_mt("warren");
    fresh.logger->set_pattern("%v");
    fresh.logger->set_level(spdlog::level::info);
    return fresh;
  }();
  return s;
}

spdlog::level::level_enum to_spdlog(Level level) {
  switch (level) {
    case Level::kTrace:
      return spdlog::level::trace;
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kCritical:
      return spdlog::level::critical;
  }
  return spdlog::level::info;
}

const char* level_name(Level level) {
  switch (level) {
    case Level::kTrace:
      return "trace";
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
    case Level::kCritical:
      return "critical";
  }
  return "info";
}

}  // namespace

void init(const Config& config, std::string component) {
  auto& s = state();
  s.component = std::move(component);
  s.json = config.log_format == "json";
  s.logger->set_level(spdlog::level::from_str(config.log_level));
  // Errors are flushed at once so the last words of a crashing process reach the log.
  s.logger->flush_on(spdlog::level::warn);
}

bool enabled(Level level) {
  return state().logger->should_log(to_spdlog(level));
}

std::string format_line(Level level, std::string_view message, const Fields& fields, bool json) {
  const std::string time = format_rfc3339_ms(std::chrono::system_clock::now());
  if (json) {
    nlohmann::json line = {{"time", time},
                           {"level", level_name(level)},
                           {"component", state().component},
                           {"msg", message}};
    if (fields.is_object()) {
      for (const auto& [key, value] : fields.items()) line[key] = value;
    }
    // Replace invalid UTF-8 instead of throwing: a log line must never take the process down.
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string line = time + " " + level_name(level) + " " + std::string(message);
  if (fields.is_object()) {
    for (const auto& [key, value] : fields.items()) {
      line += " " + key + "=" +
              (value.is_string()
                   ? value.get<std::string>()
                   : value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    }
  }
  return line;
}

void write(Level level, std::string_view message, const Fields& fields) {
  auto& s = state();
  if (!s.logger->should_log(to_spdlog(level))) return;
  s.logger->log(to_spdlog(level), "{}", format_line(level, message, fields, s.json));
}

}  // namespace warren::log
