// The message that carries a job through RabbitMQ (MESSAGING.md "Messages"): self-contained
// (the consumer needs no database read to run it), persistent, with Warren's x-warren-* headers
// and the W3C traceparent. Where it is published depends on when it must arrive: at once to
// the jobs exchange, later through the delay infrastructure (delay_route.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "shared/amqp/message.h"
#include "shared/retry_policy.h"

namespace warren {

struct JobMessage {
  std::string id;
  std::string type;
  std::string queue;
  std::string payload_json;  // the payload object as JSON text (kept as stored, not re-parsed)
  int max_attempts = 5;
  std::optional<int64_t> timeout_ms;
  std::string created_at;  // RFC 3339
  Backoff backoff;         // the job's own, or the deployment's default
  int attempt = 1;         // the attempt this delivery is expected to start
  std::string traceparent;
};

// What a consumer makes of a delivery: the job, or why the message is poison (MESSAGING.md:
// body not JSON, missing id, not a job). Poison is rejected without requeue and dead-lettered
// by the broker; the reason is logged.
struct DecodedJob {
  std::optional<JobMessage> job;
  std::string poison_reason;  // set when job is empty
};

DecodedJob decode_job_message(const amqp::Delivery& delivery, const Backoff& default_backoff);

// The body: {"id","type","queue","payload","max_attempts","timeout_ms","created_at","backoff"}.
std::string encode_job_body(const JobMessage& job);

// A mandatory, persistent message for the job, routed to arrive after `delay` (rounded up to
// whole seconds; under one second goes straight to the jobs exchange).
amqp::OutgoingMessage make_job_message(
    const JobMessage& job, const std::string& prefix, std::chrono::milliseconds delay,
    std::chrono::system_clock::time_point now = std::chrono::system_clock::now());

}  // namespace warren
