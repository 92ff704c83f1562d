// Fuzz target: the job request validator, from raw HTTP body bytes to a job or a problem, the way
// the producer's POST /v1/jobs and POST /v1/jobs/batch do it (producer/jobs_api.cpp):
// parse_strict_json(body), then validate_job_request(json, config, prefix, Idempotency-Key).
// This is the main door of untrusted bytes into Warren: nothing here may crash, hang or trip a
// sanitizer, and what it accepts must be what API.md promises, because it is committed to
// Postgres and published to RabbitMQ as is.
//
// Input: the body, optionally preceded by one line "Idempotency-Key: <value>\n" (the header the
// API passes as header_key; the bytes after "Idempotency-Key:" and one optional space, up to the
// first newline).
//
// Checked beyond "no crash":
//   - strict JSON: a refusal has a reason; an accepted document prints and parses back (strictly)
//     to the same value.
//   - the verdict is well-formed: a job or errors, never both or neither; 400s win over 422s
//     (no 422 when there is a 400); every error names a field and says something; the problem
//     require_valid() throws has the right status and prints as valid UTF-8 JSON.
//   - an accepted job is within every limit of API.md (type and queue syntax, configured queue
//     and type, max_attempts, timeout_ms, delay_ms, run_at range, not both delay_ms and run_at,
//     backoff ranges, idempotency key, metadata limits, no NUL anywhere Postgres would refuse it)
//     and scheduled_for() agrees with its delay_ms/run_at.
//   - round trip: the accepted job written back as a request body (every field explicit) is
//     accepted again as exactly the same job with the same fingerprint.
//   - batches ({"jobs":[...]}): every error of job i names a field under "jobs[i]."
// Two configurations are used, one accepting any job type and one with WARREN_JOB_TYPES set, so
// the 422 paths run too.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "fuzz_oracles.h"
#include "shared/config.h"
#include "shared/job_request.h"
#include "shared/problem.h"
#include "shared/strict_json.h"
#include "shared/time_format.h"

namespace {

using nlohmann::json;
using std::chrono::system_clock;

constexpr std::string_view kHeaderLine = "Idempotency-Key:";
constexpr std::size_t kMaxBatchJobs = 1000;  // jobs_api.cpp refuses larger batches first

system_clock::time_point fixed_now() {
  // A fixed "now" (with a sub-millisecond part) keeps every run deterministic: run_at limits are
  // relative to it.
  static const auto now = *warren::parse_rfc3339("2026-11-23T10:15:30.123456789Z");
  return now;
}

const warren::Config& any_type_config() {
  static const warren::Config config = [] {
    warren::Config c;
    c.queues = {"default", "critical", "bulk-exports"};
    return c;
  }();
  return config;
}

const warren::Config& typed_config() {
  static const warren::Config config = [] {
    warren::Config c;
    c.queues = {"default"};
    c.job_types = {"noop", "fail", "email.send"};
    c.default_max_attempts = 3;
    return c;
  }();
  return config;
}

bool has_nul(std::string_view text) {
  return text.find('\0') != std::string_view::npos;
}

// Written another way than the validator's json_has_nul (one walk over the flattened leaves,
// whose JSON-pointer paths carry every key), so the oracle does not share its implementation.
bool json_has_nul(const json& value) {
  const json leaves = value.flatten();  // named: items() of a temporary would dangle
  for (const auto& [path, leaf] : leaves.items()) {
    if (has_nul(path) || (leaf.is_string() && has_nul(leaf.get_ref<const std::string&>()))) {
      return true;
    }
  }
  return false;
}

using warren::fuzz::is_name;

// RFC 3339 with all nine fraction digits, so a time survives the round trip exactly
// (format_rfc3339_ms keeps milliseconds only).
std::string format_rfc3339_ns(system_clock::time_point t) {
  std::string text = warren::format_rfc3339_ms(t);  // "...:SS.mmmZ"
  const auto sub_ms = std::chrono::duration_cast<std::chrono::nanoseconds>(
      t - std::chrono::floor<std::chrono::milliseconds>(t));
  char digits[8];
  std::snprintf(digits, sizeof digits, "%06lld", static_cast<long long>(sub_ms.count()));
  text.insert(text.size() - 1, digits);
  return text;
}

// The job as a client would send it, every field explicit.
json to_request_body(const warren::JobRequest& job) {
  json body = {{"type", job.type},
               {"payload", job.payload},
               {"queue", job.queue},
               {"max_attempts", job.max_attempts},
               {"metadata", job.metadata}};
  if (job.timeout_ms) body["timeout_ms"] = *job.timeout_ms;
  if (job.delay_ms) body["delay_ms"] = *job.delay_ms;
  if (job.run_at) body["run_at"] = format_rfc3339_ns(*job.run_at);
  if (job.backoff) {
    body["backoff"] = {{"initial_ms", job.backoff->initial_ms},
                       {"factor", job.backoff->factor},
                       {"max_ms", job.backoff->max_ms}};
  }
  if (job.idempotency_key) body["idempotency_key"] = *job.idempotency_key;
  return body;
}

bool same_job(const warren::JobRequest& a, const warren::JobRequest& b) {
  return a.type == b.type && a.payload == b.payload && a.queue == b.queue &&
         a.max_attempts == b.max_attempts && a.timeout_ms == b.timeout_ms &&
         a.delay_ms == b.delay_ms && a.run_at == b.run_at && a.backoff == b.backoff &&
         a.idempotency_key == b.idempotency_key && a.metadata == b.metadata;
}

void check_accepted(const warren::JobRequest& job, const warren::Config& config) {
  const auto now = fixed_now();
  FUZZ_CHECK(is_name(job.type, "._-"), "accepted type matches ^[a-z0-9][a-z0-9._-]{0,63}$");
  FUZZ_CHECK(is_name(job.queue, "_-"), "accepted queue matches ^[a-z0-9][a-z0-9_-]{0,63}$");
  FUZZ_CHECK(config.accepts_queue(job.queue), "accepted queue is configured");
  FUZZ_CHECK(config.accepts_type(job.type), "accepted type is configured");
  FUZZ_CHECK(job.payload.is_object(), "payload is an object");
  FUZZ_CHECK(!json_has_nul(job.payload), "payload has no NUL (jsonb cannot hold it)");
  FUZZ_CHECK(job.max_attempts >= 1 && job.max_attempts <= 100, "max_attempts in 1..100");
  FUZZ_CHECK(!job.timeout_ms || (*job.timeout_ms >= 1 && *job.timeout_ms <= 86400000),
             "timeout_ms in 1..86400000");
  FUZZ_CHECK(!job.delay_ms || (*job.delay_ms >= 0 && *job.delay_ms <= (int64_t{1} << 31)),
             "delay_ms in 0..2^31");
  FUZZ_CHECK(!(job.delay_ms && job.run_at), "not both delay_ms and run_at");
  if (job.run_at) {
    const auto ahead = std::chrono::floor<std::chrono::seconds>(*job.run_at) -
                       std::chrono::floor<std::chrono::seconds>(now);
    FUZZ_CHECK(ahead <= std::chrono::seconds((int64_t{1} << 28) - 1),
               "run_at at most 2^28-1 s ahead");
  }
  FUZZ_CHECK(!job.backoff || !warren::validate(*job.backoff), "backoff within its ranges");
  if (job.idempotency_key) {
    FUZZ_CHECK(!job.idempotency_key->empty() && job.idempotency_key->size() <= 255 &&
                   !has_nul(*job.idempotency_key),
               "idempotency key is 1..255 bytes without NUL");
  }
  FUZZ_CHECK(job.metadata.size() <= 32, "at most 32 metadata keys");
  for (const auto& [key, value] : job.metadata) {
    FUZZ_CHECK(!key.empty() && key.size() <= 64 && !has_nul(key), "metadata key 1..64, no NUL");
    FUZZ_CHECK(value.size() <= 1024 && !has_nul(value), "metadata value <= 1024, no NUL");
  }

  const auto scheduled = job.scheduled_for(now);
  if (job.run_at && *job.run_at > now) {
    FUZZ_CHECK(scheduled == job.run_at, "a future run_at is when the job is scheduled");
  } else if (job.delay_ms && *job.delay_ms > 0) {
    FUZZ_CHECK(scheduled == now + std::chrono::milliseconds(*job.delay_ms),
               "a positive delay_ms schedules the job that much later");
  } else {
    FUZZ_CHECK(!scheduled, "no delay and no future run_at: queued at once");
  }
  const std::string fingerprint = job.fingerprint();
  FUZZ_CHECK(fingerprint.size() == 64, "fingerprint is a SHA-256 in hex");
}

// What the API answers for a refused job: must be a well-formed problem.
void check_refused(warren::JobValidation validation) {
  const bool bad_request = !validation.bad_request.empty();
  try {
    warren::require_valid(std::move(validation));
    FUZZ_CHECK(false, "require_valid throws for a refused job");
  } catch (const warren::ProblemError& error) {
    const auto& problem = error.problem();
    FUZZ_CHECK(problem.status == (bad_request ? 400 : 422), "400 for bad requests, else 422");
    FUZZ_CHECK(!problem.errors.empty() && !problem.detail.empty(), "problem explains itself");
    // Strict dump: throws on invalid UTF-8 (the API would print U+FFFD instead).
    try {
      (void)problem.to_json().dump();
    } catch (const json::exception&) {
      FUZZ_CHECK(false, "problem JSON is valid UTF-8");
    }
  }
}

// Field names of one job's errors: `prefix` + field, or the bare job name ("jobs[3]", "body").
// The field after the prefix is empty only for the job's own empty key ({"": 1} is reported as
// the unknown field "").
void check_errors(const json& job, const warren::JobValidation& v, const std::string& prefix) {
  const std::string object_name = prefix.empty() ? "body" : prefix.substr(0, prefix.size() - 1);
  const bool has_empty_key = job.is_object() && job.contains("");
  for (const auto* list : {&v.bad_request, &v.unprocessable}) {
    for (const auto& error : *list) {
      FUZZ_CHECK(!error.message.empty(), "every error says what is wrong");
      FUZZ_CHECK(error.field != prefix || has_empty_key, "every error names its field");
      const bool under_prefix = error.field.compare(0, prefix.size(), prefix) == 0;
      FUZZ_CHECK(under_prefix || error.field == object_name || error.field == "Idempotency-Key",
                 "error field names the job's own field");
    }
  }
}

void check_one(const json& body, const warren::Config& config,
               const std::optional<std::string>& header_key) {
  auto validation = warren::validate_job_request(body, config, "", header_key, fixed_now());
  const bool refused = !validation.bad_request.empty() || !validation.unprocessable.empty();
  FUZZ_CHECK(validation.job.has_value() != refused, "either a job or errors, never both");
  FUZZ_CHECK(validation.bad_request.empty() || validation.unprocessable.empty(),
             "400s win: no 422 alongside a 400");
  check_errors(body, validation, "");
  if (refused) {
    check_refused(std::move(validation));
    return;
  }
  const warren::JobRequest& job = *validation.job;
  check_accepted(job, config);

  // Round trip through the request body: the same job again.
  const std::string text = to_request_body(job).dump();
  auto reparsed = warren::parse_strict_json(text);
  FUZZ_CHECK(reparsed.value.has_value(), "a job's own request body is strict JSON");
  auto again = warren::validate_job_request(*reparsed.value, config, "", std::nullopt, fixed_now());
  FUZZ_CHECK(again.job.has_value(), "a job's own request body is accepted");
  FUZZ_CHECK(same_job(job, *again.job), "round trip gives the same job");
  FUZZ_CHECK(job.fingerprint() == again.job->fingerprint(), "round trip keeps the fingerprint");
}

void check_batch(const json& body, const warren::Config& config) {
  if (!body.is_object()) return;
  auto jobs = body.find("jobs");
  if (jobs == body.end() || !jobs->is_array() || jobs->size() > kMaxBatchJobs) return;
  for (std::size_t i = 0; i < jobs->size(); ++i) {
    const std::string prefix = "jobs[" + std::to_string(i) + "].";
    auto v = warren::validate_job_request((*jobs)[i], config, prefix, std::nullopt, fixed_now());
    FUZZ_CHECK(v.job.has_value() == (v.bad_request.empty() && v.unprocessable.empty()),
               "batch item: either a job or errors");
    check_errors((*jobs)[i], v, prefix);
    for (const auto& error : v.bad_request) {
      FUZZ_CHECK(error.field != "Idempotency-Key", "no header error without a header");
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::optional<std::string> header_key;
  if (input.substr(0, kHeaderLine.size()) == kHeaderLine) {
    const auto end = input.find('\n');
    if (end == std::string_view::npos) return 0;
    std::string_view value = input.substr(kHeaderLine.size(), end - kHeaderLine.size());
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    header_key = std::string(value);
    input.remove_prefix(end + 1);
  }

  const auto parsed = warren::parse_strict_json(input);
  if (!parsed.value) {
    FUZZ_CHECK(!parsed.error.empty(), "a refused body has a reason");
    return 0;
  }
  FUZZ_CHECK(parsed.error.empty(), "an accepted body has no error");
  const json& body = *parsed.value;
  // Strings of an accepted document are valid UTF-8, so the strict dump cannot throw, and what it
  // prints is accepted again as the same value (same depth, no duplicate keys).
  const auto reparsed = warren::parse_strict_json(body.dump());
  FUZZ_CHECK(reparsed.value && *reparsed.value == body, "strict JSON round trip");

  for (const auto* config : {&any_type_config(), &typed_config()}) {
    check_one(body, *config, header_key);
    check_batch(body, *config);
  }
  return 0;
}
