// Structured logging for every Warren binary: one JSON object a line (WARREN_LOG_FORMAT=json,
// the default, what log shippers want) or `time level message key=value` for people at a
// terminal. Callers pass the ids that matter (job_id, request_id, trace_id) as fields, so a
// job can be followed across producer and consumer logs with one grep.
//
// Built on spdlog (thread-safe sinks, levels); this file only formats the line.
// Never pass secrets as fields: tokens and URLs with passwords go through redact_url first.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace warren {
struct Config;
}

namespace warren::log {

using Fields = nlohmann::json;  // an object: {"job_id": "...", "request_id": "..."}

enum class Level { kTrace, kDebug, kInfo, kWarn, kError, kCritical };

// Sets level and format for the process; `component` (producer, consumer, warrenctl) is written
// on every line. Before init, lines go to stderr at info level in JSON.
void init(const Config& config, std::string component);

bool enabled(Level level);
void write(Level level, std::string_view message, const Fields& fields = Fields::object());

inline void trace(std::string_view m, const Fields& f = Fields::object()) {
  write(Level::kTrace, m, f);
}
inline void debug(std::string_view m, const Fields& f = Fields::object()) {
  write(Level::kDebug, m, f);
}
inline void info(std::string_view m, const Fields& f = Fields::object()) {
  write(Level::kInfo, m, f);
}
inline void warn(std::string_view m, const Fields& f = Fields::object()) {
  write(Level::kWarn, m, f);
}
inline void error(std::string_view m, const Fields& f = Fields::object()) {
  write(Level::kError, m, f);
}
inline void critical(std::string_view m, const Fields& f = Fields::object()) {
  write(Level::kCritical, m, f);
}

// The line as it would be written (exposed for tests).
std::string format_line(Level level, std::string_view message, const Fields& fields, bool json);

}  // namespace warren::log
