// See job_message.h.
#include "shared/job_message.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <regex>

#include "shared/delay_route.h"
#include "shared/strict_json.h"
#include "shared/topology.h"
#include "shared/uuid.h"

namespace warren {

std::string encode_job_body(const JobMessage& job) {
  // The payload is spliced in as stored (Postgres' canonical jsonb text) instead of being parsed
  // and printed again: it is already valid JSON, and this is the hot path of the relay.
  nlohmann::json head = {{"id", job.id},
                         {"type", job.type},
                         {"queue", job.queue},
                         {"max_attempts", job.max_attempts},
                         {"timeout_ms", job.timeout_ms ? nlohmann::json(*job.timeout_ms) : nullptr},
                         {"created_at", job.created_at},
                         {"backoff",
                          {{"initial_ms", job.backoff.initial_ms},
                           {"factor", job.backoff.factor},
                           {"max_ms", job.backoff.max_ms}}}};
  std::string body = head.dump();
  body.pop_back();  // drop the closing brace, append the payload member, close again
  body += ",\"payload\":";
  body += job.payload_json;
  body += '}';
  return body;
}

amqp::OutgoingMessage make_job_message(const JobMessage& job, const std::string& prefix,
                                       std::chrono::milliseconds delay,
                                       std::chrono::system_clock::time_point now) {
  amqp::OutgoingMessage message;
  const auto delay_seconds = static_cast<uint32_t>(delay_seconds_for(delay));
  if (delay_seconds == 0) {
    message.exchange = TopologyNames{prefix}.jobs_exchange();
    message.routing_key = job.queue;
  } else {
    message.exchange = delay_exchange_name(prefix, kTopDelayLevel);
    message.routing_key = encode_delay_routing_key(delay_seconds, job.queue);
  }
  message.body = encode_job_body(job);
  message.content_type = "application/json";
  message.message_id = job.id;
  message.type = job.type;
  message.app_id = "warren";
  message.timestamp =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()).count();
  message.delivery_mode = amqp::kPersistent;
  message.mandatory = true;
  message.headers.set("x-warren-attempt", static_cast<std::int64_t>(job.attempt));
  message.headers.set("x-warren-max-attempts", static_cast<std::int64_t>(job.max_attempts));
  message.headers.set("x-warren-queue", job.queue);
  if (!job.traceparent.empty()) message.headers.set("traceparent", job.traceparent);
  return message;
}

namespace {

// The largest timeout_ms a decoded job has: INT32_MAX ms (about 24.8 days), the jobs table's
// int column. The API's own limit is lower (86400000).
constexpr int64_t kMaxMessageTimeoutMs = 2147483647;

DecodedJob poison(std::string reason) {
  return DecodedJob{std::nullopt, std::move(reason)};
}

DecodedJob decode_fields(const amqp::Delivery& delivery, const Backoff& default_backoff) {
  static const std::regex type_re("^[a-z0-9][a-z0-9._-]{0,63}$");
  static const std::regex queue_re("^[a-z0-9][a-z0-9_-]{0,63}$");
  auto parsed = parse_strict_json(delivery.body);
  if (!parsed.value) return poison("body is not JSON: " + parsed.error);
  const auto& body = *parsed.value;
  if (!body.is_object()) return poison("body is not a JSON object");
  auto text = [&](const char* key) -> std::optional<std::string> {
    auto it = body.find(key);
    if (it == body.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  JobMessage job;
  auto id = text("id");
  if (!id || !is_canonical_uuid(*id)) return poison("missing or malformed id");
  job.id = *id;
  auto type = text("type");
  if (!type || !std::regex_match(*type, type_re)) return poison("missing or malformed type");
  job.type = *type;
  auto queue = text("queue");
  if (!queue || !std::regex_match(*queue, queue_re)) return poison("missing or malformed queue");
  job.queue = *queue;
  auto payload = body.find("payload");
  if (payload == body.end() || !payload->is_object()) return poison("payload is not an object");
  job.payload_json = payload->dump();
  auto attempts = body.find("max_attempts");
  if (attempts == body.end() || !attempts->is_number_integer() || attempts->get<int64_t>() < 1 ||
      attempts->get<int64_t>() > 1000000) {
    return poison("missing or malformed max_attempts");
  }
  job.max_attempts = attempts->get<int>();
  if (auto timeout = body.find("timeout_ms"); timeout != body.end() && !timeout->is_null()) {
    if (!timeout->is_number_integer() || timeout->get<int64_t>() < 1) {
      return poison("malformed timeout_ms");
    }
    // Clamped to what jobs.timeout_ms (an int) holds, as the attempt store clamps the row: the
    // consumer adds the timeout to a nanosecond steady_clock time, and a larger value (up to
    // INT64_MAX ms) overflowed that conversion (found by tests/fuzz/job_message_fuzzer).
    job.timeout_ms = std::min<int64_t>(timeout->get<int64_t>(), kMaxMessageTimeoutMs);
  }
  job.created_at = text("created_at").value_or("");
  job.backoff = default_backoff;
  if (auto backoff = body.find("backoff"); backoff != body.end() && backoff->is_object()) {
    // initial_ms and max_ms must be JSON integers (as encode_job_body writes them): value<int64_t>
    // converts a float with a cast, undefined behaviour for one out of int64 range such as 1e30
    // (found by tests/fuzz/job_message_fuzzer).
    for (const char* key : {"initial_ms", "max_ms"}) {
      if (auto it = backoff->find(key); it != backoff->end() && !it->is_number_integer()) {
        return poison("malformed backoff");
      }
    }
    job.backoff.initial_ms = backoff->value("initial_ms", job.backoff.initial_ms);
    job.backoff.factor = backoff->value("factor", job.backoff.factor);
    job.backoff.max_ms = backoff->value("max_ms", job.backoff.max_ms);
    if (validate(job.backoff)) return poison("malformed backoff");
  }
  // The header is informational (the claim in Postgres decides the attempt number).
  job.attempt = static_cast<int>(delivery.headers.get_int("x-warren-attempt").value_or(1));
  job.traceparent = delivery.headers.get_string("traceparent").value_or("");
  return DecodedJob{std::move(job), ""};
}

}  // namespace

DecodedJob decode_job_message(const amqp::Delivery& delivery, const Backoff& default_backoff) {
  try {
    return decode_fields(delivery, default_backoff);
  } catch (const nlohmann::json::exception& error) {
    // A field of the wrong JSON type deep inside (e.g. backoff.factor as a string).
    return poison(std::string("malformed field: ") + error.what());
  }
}

}  // namespace warren
