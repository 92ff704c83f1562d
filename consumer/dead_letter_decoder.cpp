// See dead_letter_decoder.h.
#include "consumer/dead_letter_decoder.h"

#include "consumer/attempt_rules.h"
#include "consumer/attempt_store.h"
#include "shared/encoding.h"
#include "shared/job_message.h"
#include "shared/time_format.h"
#include "shared/uuid.h"

namespace warren::consumer {
namespace {

using nlohmann::json;

// The first x-death entry: the broker's most recent dead-lettering of this message.
const amqp::FieldTable* latest_death(const amqp::FieldTable& headers) {
  const auto* deaths = headers.find("x-death");
  if (deaths == nullptr) return nullptr;
  const auto* list = deaths->get_if<amqp::FieldArray>();
  if (list == nullptr || list->empty()) return nullptr;
  return list->front().get_if<amqp::FieldTable>();
}

std::string death_text(const amqp::FieldTable* death, std::string_view key) {
  return death ? death->get_string(key).value_or("") : "";
}

// Quorum queues count deliveries in x-delivery-count and rewrite it on every redelivery, from
// the work queue and again from the dead-letter queue: it cannot be part of a stable key.
constexpr char kDeliveryCountHeader[] = "x-delivery-count";

std::string content_key(const amqp::Delivery& delivery) {
  amqp::FieldTable headers = delivery.headers;
  headers.erase(kDeliveryCountHeader);
  json stable = {{"message_id", delivery.message_id},
                 {"type", delivery.type},
                 {"timestamp", delivery.timestamp},
                 {"body", sha256_hex(delivery.body)},
                 {"headers", headers}};
  return "sha256:" + sha256_hex(stable.dump(-1, ' ', false, json::error_handler_t::replace));
}

// Where the job's queue name can be read, best first: the body, Warren's header, the queue the
// broker took it from (warren.q.<name>).
std::string queue_of(const std::optional<JobMessage>& job, const amqp::FieldTable& headers,
                     const amqp::FieldTable* death, const std::string& amqp_prefix) {
  if (job) return job->queue;
  if (auto queue = headers.get_string("x-warren-queue")) return clean_text(*queue, 64);
  const std::string work_queue_prefix = amqp_prefix + ".q.";
  const std::string from = death_text(death, "queue");
  if (from.rfind(work_queue_prefix, 0) == 0)
    return clean_text(from.substr(work_queue_prefix.size()), 64);
  return "";
}

// jsonb refuses the NUL character (\u0000) anywhere in a document.
bool jsonb_can_hold(const std::string& json_text) {
  return json_text.find("\\u0000") == std::string::npos;
}

std::string failed_at(const amqp::FieldTable& headers, const amqp::FieldTable* death,
                      std::chrono::system_clock::time_point now) {
  if (auto text = headers.get_string("x-warren-failed-at")) {
    if (auto t = parse_rfc3339(*text)) return format_rfc3339_ms(*t);
  }
  if (death != nullptr) {
    if (const auto* time = death->find("time"); time && time->is<amqp::Timestamp>()) {
      // Whoever publishes to the dead-letter exchange can write any 64-bit x-death time, and
      // converting more seconds than system_clock's nanoseconds hold (about year 2262)
      // overflowed (undefined behaviour, found by tests/fuzz/job_message_fuzzer): such a time
      // is ignored like a missing one.
      constexpr auto kMaxClock = std::chrono::system_clock::duration::max();
      constexpr auto kMaxSeconds = static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::seconds>(kMaxClock).count());
      const std::uint64_t seconds = time->as<amqp::Timestamp>().seconds;
      if (seconds <= kMaxSeconds) {
        return format_rfc3339_ms(std::chrono::system_clock::time_point(
            std::chrono::seconds(static_cast<std::int64_t>(seconds))));
      }
    }
  }
  return format_rfc3339_ms(now);
}

// A dead letter the consumer published: every field is in its headers.
void read_consumer_fields(DeadLetterRow& row, const amqp::FieldTable& headers) {
  // A consumer writes only these two; any other value (a forged or garbled header) breaks the
  // CHECK on dead_letters.reason, and as that row cannot be written even in its minimal form,
  // the recorder would hold its batch forever (found by tests/fuzz/job_message_fuzzer).
  const auto reason = headers.get_string("x-warren-reason");
  row.reason = reason == "permanent_failure" ? "permanent_failure" : "max_attempts";
  row.error_type = clean_text(headers.get_string("x-warren-error-type").value_or(""));
  row.error_message = clean_text(headers.get_string("x-warren-error-message").value_or(""));
  if (auto attempts = headers.get_int("x-warren-attempt"))
    row.attempts = static_cast<int>(*attempts);
}

// A message the broker dead-lettered: the reason is the broker's, the explanation ours.
void read_broker_fields(DeadLetterRow& row, const amqp::FieldTable* death, bool is_job,
                        const std::string& poison_reason, const amqp::FieldTable& headers) {
  const std::string broker_reason = death_text(death, "reason");
  const std::string from = death_text(death, "queue");
  if (broker_reason == "delivery_limit") {
    row.reason = "delivery_limit";
    row.error_type = "delivery_limit";
    std::string count;
    if (auto deliveries = headers.get_int(kDeliveryCountHeader)) {
      count = " after " + std::to_string(*deliveries) + " deliveries";
    }
    row.error_message = "the broker dead-lettered the message from " + from + count +
                        " without an ack (WARREN_DELIVERY_LIMIT): a consumer crashed or lost "
                        "its connection on every attempt";
    row.fails_job = is_job;
  } else if (broker_reason == "expired" || broker_reason == "maxlen") {
    // maxlen cannot happen with reject-publish queues; should a policy change that, a message
    // dropped for length is, like an expired one, a job that never got to run.
    row.reason = "expired";
    row.error_type = broker_reason;
    row.error_message = broker_reason == "expired"
                            ? "the message expired in " + from + " before a consumer took it"
                            : "the message was dropped from " + from + " by its length limit";
    row.fails_job = is_job;
  } else {
    row.reason = "poison";
    row.error_type = "poison";
    if (!is_job) {
      row.error_message = "not a job message: " + poison_reason;
    } else if (broker_reason == "rejected") {
      row.error_message =
          "a consumer rejected the message although it decodes as a job (the database refused "
          "to store it); see that consumer's log";
    } else {
      row.error_message = "published to the dead-letter exchange directly";
    }
  }
  // Every branch, not only poison's: the delivery-limit and expiry messages quote the x-death
  // queue, which a publisher can fill with NUL or invalid UTF-8 (found by
  // tests/fuzz/job_message_fuzzer); the database then refused the batch.
  row.error_message = clean_text(row.error_message);
}

}  // namespace

DeadLetterRow decode_dead_letter(const amqp::Delivery& delivery, const std::string& amqp_prefix,
                                 const Backoff& default_backoff,
                                 std::chrono::system_clock::time_point now) {
  const auto decoded = decode_job_message(delivery, default_backoff);
  const auto& job = decoded.job;
  const amqp::FieldTable* death = latest_death(delivery.headers);

  DeadLetterRow row;
  row.redelivered = delivery.redelivered;
  row.exchange = clean_text(delivery.exchange, 255);
  row.routing_key = clean_text(delivery.routing_key, 255);
  row.headers = delivery.headers;
  scrub_text(row.headers);
  row.dead_lettered_at = failed_at(delivery.headers, death, now);
  if (job) {
    row.job_id = job->id;
    row.type = job->type;
  } else {
    row.type = clean_text(delivery.type, 64);
  }
  row.queue = queue_of(job, delivery.headers, death, amqp_prefix);

  const auto consumer_id = delivery.headers.get_string(kDeadLetterIdHeader);
  const auto consumer_attempts = delivery.headers.get_int("x-warren-attempt");
  if (job && consumer_id && is_canonical_uuid(*consumer_id) && consumer_attempts) {
    row.written_by_consumer = true;
    row.id = *consumer_id;
    row.message_key = job->id + "/" + std::to_string(*consumer_attempts);
    read_consumer_fields(row, delivery.headers);
  } else {
    row.id = new_uuid_v7();
    row.message_key = content_key(delivery);
    read_broker_fields(row, death, job.has_value(), decoded.poison_reason, delivery.headers);
  }

  if (job && row.reason != "poison" && jsonb_can_hold(job->payload_json)) {
    row.payload_json = job->payload_json;
  } else {
    row.raw_body = delivery.body;
  }
  return row;
}

std::string distinct_message_key(const DeadLetterRow& row) {
  return row.message_key + "/" + row.id;
}

}  // namespace warren::consumer
