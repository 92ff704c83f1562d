// See job_message.h.
#include "shared/job_message.h"

#include <nlohmann/json.hpp>

#include "shared/delay_route.h"
#include "shared/topology.h"

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

}  // namespace warren
