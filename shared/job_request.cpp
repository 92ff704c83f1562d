// See job_request.h. Each field has one small check; all errors of a request are reported
// together so a client fixes everything in one round.
#include "shared/job_request.h"

#include <cmath>
#include <regex>

#include "shared/config.h"
#include "shared/encoding.h"
#include "shared/time_format.h"

namespace warren {
namespace {

using nlohmann::json;

constexpr int64_t kMaxTimeoutMs = 86400000;
constexpr int64_t kMaxDelayMs = int64_t{1} << 31;
// run_at may be at most the delay infrastructure's range ahead (2^28 s, about 8.5 years).
constexpr auto kMaxRunAhead = std::chrono::seconds((int64_t{1} << 28) - 1);
constexpr std::size_t kMaxMetadataKeys = 32;
constexpr std::size_t kMaxMetadataValue = 1024;

const std::regex& type_re() {
  static const std::regex re("^[a-z0-9][a-z0-9._-]{0,63}$");
  return re;
}
const std::regex& queue_re() {
  static const std::regex re("^[a-z0-9][a-z0-9_-]{0,63}$");
  return re;
}

class Checker {
 public:
  Checker(const json& body, std::string prefix, JobValidation& out)
      : body_(body), prefix_(std::move(prefix)), out_(out) {}

  void bad(const std::string& field, std::string message) {
    out_.bad_request.push_back({prefix_ + field, std::move(message)});
  }
  void unprocessable(const std::string& field, std::string message) {
    out_.unprocessable.push_back({prefix_ + field, std::move(message)});
  }
  const json* field(const char* name) const {
    auto it = body_.find(name);
    return it == body_.end() || it->is_null() ? nullptr : &*it;
  }

  // An integer in [min, max]; JSON numbers like 5.0 are refused: a count is not a float.
  std::optional<int64_t> integer(const char* name, int64_t min, int64_t max) {
    const json* v = field(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_number_integer()) {
      bad(name,
          "must be an integer between " + std::to_string(min) + " and " + std::to_string(max));
      return std::nullopt;
    }
    // JSON text parses non-negative numbers as unsigned: check both bounds in both cases.
    const bool out_of_range =
        v->is_number_unsigned()
            ? (v->get<uint64_t>() > static_cast<uint64_t>(max) || v->get<int64_t>() < min)
            : (v->get<int64_t>() < min || v->get<int64_t>() > max);
    if (out_of_range) {
      bad(name, "must be between " + std::to_string(min) + " and " + std::to_string(max));
      return std::nullopt;
    }
    return v->get<int64_t>();
  }

  std::optional<std::string> string(const char* name) {
    const json* v = field(name);
    if (v == nullptr) return std::nullopt;
    if (!v->is_string()) {
      bad(name, "must be a string");
      return std::nullopt;
    }
    return v->get<std::string>();
  }

 private:
  const json& body_;
  std::string prefix_;
  JobValidation& out_;
};

// Postgres text and jsonb cannot hold NUL ("\u0000"), and a header is raw bytes that may not be
// UTF-8: such values are refused here, before they can fail a commit shared with others.
bool has_nul(std::string_view text) {
  return text.find('\0') != std::string_view::npos;
}

const std::vector<std::string>& known_fields() {
  static const std::vector<std::string> fields{
      "type",     "payload", "queue",   "max_attempts",    "timeout_ms",
      "delay_ms", "run_at",  "backoff", "idempotency_key", "metadata"};
  return fields;
}

std::optional<Backoff> check_backoff(const json& value, Checker& check) {
  if (!value.is_object()) {
    check.bad("backoff", "must be an object with initial_ms, factor, max_ms");
    return std::nullopt;
  }
  Backoff backoff;
  for (const auto& [key, v] : value.items()) {
    if (key == "initial_ms" || key == "max_ms") {
      if (!v.is_number_integer() || v.get<int64_t>() < 1 ||
          (v.is_number_unsigned() && v.get<uint64_t>() > 2147483647u)) {
        check.bad("backoff." + key, "must be an integer between 1 and 2147483647");
        return std::nullopt;
      }
      (key == "initial_ms" ? backoff.initial_ms : backoff.max_ms) = v.get<int64_t>();
    } else if (key == "factor") {
      if (!v.is_number()) {
        check.bad("backoff.factor", "must be a number");
        return std::nullopt;
      }
      backoff.factor = v.get<double>();
    } else {
      check.bad("backoff." + key, "is not a known field (initial_ms, factor, max_ms)");
      return std::nullopt;
    }
  }
  if (auto problem = validate(backoff)) {
    // validate() says "backoff.<field> <what is wrong>": split it into field and message.
    const auto space = problem->find(' ');
    check.bad(problem->substr(0, space), problem->substr(space + 1));
    return std::nullopt;
  }
  return backoff;
}

void check_metadata(const json& value, Checker& check, JobRequest& job) {
  if (!value.is_object()) {
    check.bad("metadata", "must be an object of string values");
    return;
  }
  if (value.size() > kMaxMetadataKeys) {
    check.bad("metadata", "must have at most " + std::to_string(kMaxMetadataKeys) + " keys");
    return;
  }
  for (const auto& [key, v] : value.items()) {
    if (key.empty() || key.size() > 64 || has_nul(key)) {
      check.bad("metadata", "keys must be 1..64 characters, without NUL");
    } else if (!v.is_string()) {
      check.bad("metadata." + key, "must be a string");
    } else if (has_nul(v.get_ref<const std::string&>())) {
      check.bad("metadata." + key, "must not contain NUL characters");
    } else if (v.get_ref<const std::string&>().size() > kMaxMetadataValue) {
      check.bad("metadata." + key, "must be at most 1024 bytes");
    } else {
      job.metadata[key] = v.get<std::string>();
    }
  }
}

}  // namespace

bool json_has_nul(const json& value) {
  if (value.is_string()) return has_nul(value.get_ref<const std::string&>());
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      if (has_nul(key) || json_has_nul(item)) return true;
    }
  }
  if (value.is_array()) {
    for (const auto& item : value) {
      if (json_has_nul(item)) return true;
    }
  }
  return false;
}

bool is_clean_text(std::string_view text) {
  // Well-formed UTF-8 per RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF.
  std::size_t i = 0;
  while (i < text.size()) {
    const auto lead = static_cast<unsigned char>(text[i]);
    if (lead == 0) return false;
    std::size_t length;
    uint32_t code;
    if (lead < 0x80) {
      length = 1, code = lead;
    } else if ((lead & 0xE0) == 0xC0) {
      length = 2, code = lead & 0x1F;
    } else if ((lead & 0xF0) == 0xE0) {
      length = 3, code = lead & 0x0F;
    } else if ((lead & 0xF8) == 0xF0) {
      length = 4, code = lead & 0x07;
    } else {
      return false;
    }
    if (i + length > text.size()) return false;
    for (std::size_t k = 1; k < length; ++k) {
      const auto next = static_cast<unsigned char>(text[i + k]);
      if ((next & 0xC0) != 0x80) return false;
      code = (code << 6) | (next & 0x3F);
    }
    static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < kSmallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) {
      return false;
    }
    i += length;
  }
  return true;
}

std::optional<std::chrono::system_clock::time_point> JobRequest::scheduled_for(
    std::chrono::system_clock::time_point now) const {
  if (run_at) {
    if (*run_at <= now) return std::nullopt;  // already due: queued at once
    return *run_at;
  }
  if (delay_ms && *delay_ms > 0) return now + std::chrono::milliseconds(*delay_ms);
  return std::nullopt;
}

std::string JobRequest::fingerprint() const {
  // nlohmann objects are ordered maps, so dump() is canonical for equal values.
  json canonical = {{"type", type},
                    {"payload", payload},
                    {"queue", queue},
                    {"max_attempts", max_attempts},
                    {"metadata", metadata}};
  if (timeout_ms) canonical["timeout_ms"] = *timeout_ms;
  if (delay_ms) canonical["delay_ms"] = *delay_ms;
  if (run_at) canonical["run_at"] = format_rfc3339_ms(*run_at);
  if (backoff) {
    canonical["backoff"] = {{"initial_ms", backoff->initial_ms},
                            {"factor", backoff->factor},
                            {"max_ms", backoff->max_ms}};
  }
  return sha256_hex(canonical.dump());
}

JobValidation validate_job_request(const json& body, const Config& config,
                                   const std::string& field_prefix,
                                   const std::optional<std::string>& header_key,
                                   std::chrono::system_clock::time_point now) {
  JobValidation out;
  std::string object_name =
      field_prefix.empty() ? "" : field_prefix.substr(0, field_prefix.size() - 1);
  if (!body.is_object()) {
    out.bad_request.push_back(
        {object_name.empty() ? "body" : object_name, "must be a JSON object"});
    return out;
  }
  Checker check(body, field_prefix, out);
  JobRequest job;
  job.max_attempts = config.default_max_attempts;

  for (const auto& [key, value] : body.items()) {
    if (std::find(known_fields().begin(), known_fields().end(), key) == known_fields().end()) {
      check.bad(key, "is not a known field");
    }
  }

  if (auto type = check.string("type")) {
    if (!std::regex_match(*type, type_re())) {
      check.bad("type", "must match ^[a-z0-9][a-z0-9._-]{0,63}$");
    } else {
      job.type = *type;
    }
  } else if (check.field("type") == nullptr) {
    check.bad("type", "is required");
  }

  if (const json* payload = check.field("payload")) {
    if (!payload->is_object()) {
      check.bad("payload", "must be a JSON object");
    } else if (json_has_nul(*payload)) {
      check.bad("payload", "must not contain NUL characters (\\u0000)");
    } else {
      job.payload = *payload;
    }
  } else {
    check.bad("payload", "is required");
  }

  if (auto queue = check.string("queue")) {
    if (!std::regex_match(*queue, queue_re())) {
      check.bad("queue", "must match ^[a-z0-9][a-z0-9_-]{0,63}$");
    } else {
      job.queue = *queue;
    }
  }
  if (auto attempts = check.integer("max_attempts", 1, 100))
    job.max_attempts = static_cast<int>(*attempts);
  job.timeout_ms = check.integer("timeout_ms", 1, kMaxTimeoutMs);
  job.delay_ms = check.integer("delay_ms", 0, kMaxDelayMs);

  if (auto run_at = check.string("run_at")) {
    auto parsed = parse_rfc3339(*run_at);
    if (!parsed) {
      check.bad("run_at", "must be an RFC 3339 time, e.g. 2026-11-23T10:15:30.123Z");
    } else if (std::chrono::floor<std::chrono::seconds>(*parsed).time_since_epoch() -
                   std::chrono::floor<std::chrono::seconds>(now).time_since_epoch() >
               kMaxRunAhead) {  // in seconds: nanosecond differences overflow for old dates
      check.bad("run_at", "must be at most 2^28-1 seconds (about 8.5 years) ahead");
    } else {
      job.run_at = *parsed;
    }
  }
  if (check.field("delay_ms") != nullptr && check.field("run_at") != nullptr) {
    check.bad("run_at", "give delay_ms or run_at, not both");
  }
  if (const json* backoff = check.field("backoff")) job.backoff = check_backoff(*backoff, check);

  if (auto key = check.string("idempotency_key")) {
    if (key->empty() || key->size() > 255 || has_nul(*key)) {
      check.bad("idempotency_key", "must be 1..255 characters, without NUL");
    } else {
      job.idempotency_key = *key;
    }
  }
  if (header_key) {
    if (header_key->empty() || header_key->size() > 255 || !is_clean_text(*header_key)) {
      out.bad_request.push_back(
          {"Idempotency-Key", "header must be 1..255 characters of UTF-8 text without NUL"});
    } else if (job.idempotency_key && *job.idempotency_key != *header_key) {
      check.bad("idempotency_key", "differs from the Idempotency-Key header");
    } else {
      job.idempotency_key = header_key;
    }
  }
  if (const json* metadata = check.field("metadata")) check_metadata(*metadata, check, job);

  if (!out.bad_request.empty()) return out;
  if (!config.accepts_queue(job.queue)) {
    check.unprocessable("queue", "queue '" + job.queue + "' is not configured (WARREN_QUEUES)");
  }
  if (!config.accepts_type(job.type)) {
    check.unprocessable("type", "job type '" + job.type + "' is not accepted (WARREN_JOB_TYPES)");
  }
  if (out.unprocessable.empty()) out.job = std::move(job);
  return out;
}

JobRequest require_valid(JobValidation validation) {
  if (!validation.bad_request.empty()) {
    std::string detail =
        validation.bad_request.front().field + " " + validation.bad_request.front().message;
    throw ProblemError(validation_problem(detail, std::move(validation.bad_request)));
  }
  if (!validation.unprocessable.empty()) {
    std::string detail = validation.unprocessable.front().message;
    throw ProblemError(unprocessable_problem(detail, std::move(validation.unprocessable)));
  }
  return std::move(*validation.job);
}

}  // namespace warren
