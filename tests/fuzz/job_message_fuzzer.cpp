// Fuzz target: the AMQP message decoders of the consumer, from a delivery (body, properties and
// headers) to a job or poison: decode_job_message (shared/job_message.h, what every work-queue
// delivery goes through) and decode_dead_letter (consumer/dead_letter_decoder.h, what the
// dead-letter recorder makes of a message on warren.dead-letters, the one reader of x-death).
// Anyone who can publish to the broker controls every byte of a delivery, so neither may crash
// or trip a sanitizer, and what they let through goes on into Postgres and into the handlers.
//
// Input: a delivery written as text, like a mail: header lines, an empty line, the body (all the
// remaining bytes). An input without an empty line is all body; one starting with a newline has
// no headers.
//   NAME=VALUE      one header (a field-table entry); NAME starting with ':' is a property
//                   instead: :redelivered (b), :exchange :routing_key :type :message_id
//                   :content_type :app_id (s), :timestamp :delivery_mode (i)
//   VALUE           i<int64>  f<double>  b0 b1  T<seconds>  V (void)  s<text>
//                   [v,v,...] (array)  {key=v,...} (table)
// In names and texts %XX is the byte 0xXX; a text ends at the end of its line, inside [] and {}
// also at ',', ']' or '}'. A line that does not parse is skipped. E.g.
//   x-warren-attempt=i3
//   x-death=[{count=i1,reason=srejected,queue=swarren.q.default,time=T1763892000}]
//
//   {"id":"0193a1b2-0000-7000-8000-000000000001","type":"noop",...}
//
// Checked beyond "no crash" (the decoded fields must be what the consumer can use safely):
//   - decode_job_message: a job or a poison reason, never both or neither. A job has a canonical
//     UUID id, type and queue of the API's syntax, a payload that is a JSON object (strict JSON
//     text), max_attempts 1..1000000, a timeout_ms the consumer can add to a steady_clock time
//     (it converts milliseconds to nanoseconds), a backoff within retry_policy.h's ranges, and
//     the attempt and traceparent of its headers. Decoding is deterministic.
//   - decode_dead_letter: everything the dead_letters row stores is text Postgres accepts
//     (valid UTF-8, no NUL, within its length), every name and text in the headers JSON is too
//     (jsonb), dead_lettered_at is an RFC 3339 time, the reason is one of MESSAGING.md's
//     (the table's CHECK: a row that breaks it can never be written, not even in minimal form),
//     payload or raw body (never both; poison keeps its raw bytes), and only a job can fail a job.
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "consumer/dead_letter_decoder.h"
#include "fuzz_check.h"
#include "fuzz_oracles.h"
#include "shared/amqp/field_table.h"
#include "shared/amqp/message.h"
#include "shared/job_message.h"
#include "shared/job_request.h"
#include "shared/retry_policy.h"
#include "shared/strict_json.h"
#include "shared/time_format.h"
#include "shared/uuid.h"

namespace {

using nlohmann::json;
using warren::amqp::FieldArray;
using warren::amqp::FieldTable;
using warren::amqp::FieldValue;

constexpr int kMaxNesting = 16;

// ---- The delivery text format (see the top of the file) ------------------------------------

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool is_stop(char c, bool nested, bool key) {
  return c == '\n' || (nested && (c == ',' || c == ']' || c == '}')) || (key && c == '=');
}

// Text up to the next stop character (not consumed), %XX decoded.
std::string read_text(std::string_view& in, bool nested, bool key) {
  std::string out;
  while (!in.empty() && !is_stop(in[0], nested, key)) {
    if (in[0] == '%' && in.size() >= 3 && hex_digit(in[1]) >= 0 && hex_digit(in[2]) >= 0) {
      out += static_cast<char>(hex_digit(in[1]) * 16 + hex_digit(in[2]));
      in.remove_prefix(3);
    } else {
      out += in[0];
      in.remove_prefix(1);
    }
  }
  return out;
}

template <class T>
std::optional<T> read_number(std::string_view& in, bool nested) {
  std::size_t end = 0;
  while (end < in.size() && !is_stop(in[end], nested, false)) ++end;
  T value{};
  const auto [ptr, ec] = std::from_chars(in.data(), in.data() + end, value);
  if (ec != std::errc() || ptr != in.data() + end) return std::nullopt;
  in.remove_prefix(end);
  return value;
}

bool consume(std::string_view& in, char c) {
  if (in.empty() || in[0] != c) return false;
  in.remove_prefix(1);
  return true;
}

std::optional<FieldValue> read_value(std::string_view& in, int depth, bool nested) {
  if (in.empty()) return std::nullopt;
  const char kind = in[0];
  in.remove_prefix(1);
  switch (kind) {
    case 'i':
      if (auto v = read_number<std::int64_t>(in, nested)) return FieldValue(*v);
      return std::nullopt;
    case 'f':
      if (auto v = read_number<double>(in, nested)) return FieldValue(*v);
      return std::nullopt;
    case 'T':
      if (auto v = read_number<std::uint64_t>(in, nested)) {
        return FieldValue(warren::amqp::Timestamp{*v});
      }
      return std::nullopt;
    case 'b':
      if (consume(in, '0')) return FieldValue(false);
      if (consume(in, '1')) return FieldValue(true);
      return std::nullopt;
    case 'V':
      return FieldValue();
    case 's':
      return FieldValue(read_text(in, nested, false));
    case '[': {
      if (depth >= kMaxNesting) return std::nullopt;
      FieldArray array;
      if (consume(in, ']')) return FieldValue(std::move(array));
      while (true) {
        auto element = read_value(in, depth + 1, true);
        if (!element) return std::nullopt;
        array.push_back(std::move(*element));
        if (consume(in, ']')) return FieldValue(std::move(array));
        if (!consume(in, ',')) return std::nullopt;
      }
    }
    case '{': {
      if (depth >= kMaxNesting) return std::nullopt;
      FieldTable table;
      if (consume(in, '}')) return FieldValue(std::move(table));
      while (true) {
        std::string key = read_text(in, true, true);
        if (!consume(in, '=')) return std::nullopt;
        auto element = read_value(in, depth + 1, true);
        if (!element) return std::nullopt;
        table.set(std::move(key), std::move(*element));
        if (consume(in, '}')) return FieldValue(std::move(table));
        if (!consume(in, ',')) return std::nullopt;
      }
    }
    default:
      return std::nullopt;
  }
}

void set_property(warren::amqp::Delivery& d, std::string_view name, const FieldValue& value) {
  if (const auto* text = value.get_if<std::string>()) {
    if (name == "exchange") d.exchange = *text;
    if (name == "routing_key") d.routing_key = *text;
    if (name == "type") d.type = *text;
    if (name == "message_id") d.message_id = *text;
    if (name == "content_type") d.content_type = *text;
    if (name == "app_id") d.app_id = *text;
  } else if (const auto* number = value.get_if<std::int64_t>()) {
    if (name == "timestamp") d.timestamp = *number;
    if (name == "delivery_mode") d.delivery_mode = static_cast<std::uint8_t>(*number);
  } else if (const auto* flag = value.get_if<bool>()) {
    if (name == "redelivered") d.redelivered = *flag;
  }
}

warren::amqp::Delivery read_delivery(std::string_view input) {
  warren::amqp::Delivery delivery;
  delivery.delivery_tag = 1;
  std::string_view head;
  if (!input.empty() && input[0] == '\n') {
    delivery.body = std::string(input.substr(1));
    return delivery;
  }
  if (const auto blank = input.find("\n\n"); blank != std::string_view::npos) {
    head = input.substr(0, blank + 1);
    delivery.body = std::string(input.substr(blank + 2));
  } else {
    delivery.body = std::string(input);
  }
  while (!head.empty()) {
    const auto line_end = head.find('\n');
    std::string_view line = head.substr(0, line_end);
    head.remove_prefix(line_end == std::string_view::npos ? head.size() : line_end + 1);
    std::string name = read_text(line, false, true);
    if (!consume(line, '=')) continue;
    auto value = read_value(line, 0, false);
    if (!value || !line.empty()) continue;
    if (!name.empty() && name[0] == ':') {
      set_property(delivery, std::string_view(name).substr(1), *value);
    } else {
      delivery.headers.set(std::move(name), std::move(*value));
    }
  }
  return delivery;
}

// ---- Invariants ----------------------------------------------------------------------------

using warren::fuzz::is_name;

bool same_job(const warren::JobMessage& a, const warren::JobMessage& b) {
  return a.id == b.id && a.type == b.type && a.queue == b.queue &&
         a.payload_json == b.payload_json && a.max_attempts == b.max_attempts &&
         a.timeout_ms == b.timeout_ms && a.created_at == b.created_at && a.backoff == b.backoff &&
         a.attempt == b.attempt && a.traceparent == b.traceparent;
}

const warren::Backoff kDefaultBackoff{};

void check_job_message(const warren::amqp::Delivery& delivery, const warren::DecodedJob& decoded) {
  FUZZ_CHECK(decoded.job.has_value() == decoded.poison_reason.empty(),
             "a job or a poison reason, never both or neither");
  if (!decoded.job) return;
  const warren::JobMessage& job = *decoded.job;
  FUZZ_CHECK(warren::is_canonical_uuid(job.id), "id is a canonical UUID");
  FUZZ_CHECK(is_name(job.type, "._-"), "type has the API's syntax");
  FUZZ_CHECK(is_name(job.queue, "_-"), "queue has the API's syntax");
  const auto payload = warren::parse_strict_json(job.payload_json);
  FUZZ_CHECK(payload.value && payload.value->is_object(), "payload_json is a JSON object");
  FUZZ_CHECK(job.max_attempts >= 1 && job.max_attempts <= 1000000, "max_attempts 1..1000000");
  if (job.timeout_ms) {
    // The consumer computes `started + milliseconds(timeout_ms)` on a nanosecond steady_clock
    // (consumer/processor.cpp): the conversion to nanoseconds must not overflow.
    constexpr auto kMaxConvertible =
        std::numeric_limits<std::chrono::steady_clock::duration::rep>::max() / 1'000'000;
    FUZZ_CHECK(*job.timeout_ms >= 1 && *job.timeout_ms <= kMaxConvertible,
               "timeout_ms is positive and convertible to steady_clock's nanoseconds");
  }
  FUZZ_CHECK(!warren::validate(job.backoff), "backoff within retry_policy.h's ranges");
  const auto attempt = delivery.headers.get_int("x-warren-attempt");
  FUZZ_CHECK(job.attempt == static_cast<int>(attempt.value_or(1)), "attempt from the header");
  FUZZ_CHECK(job.traceparent == delivery.headers.get_string("traceparent").value_or(""),
             "traceparent from the header");
}

// Every string and key of `value` is text jsonb takes: valid UTF-8 without NUL ("\u0000").
bool jsonb_can_store(const json& value) {
  if (value.is_string()) return warren::is_clean_text(value.get_ref<const std::string&>());
  if (value.is_array()) {
    for (const auto& item : value) {
      if (!jsonb_can_store(item)) return false;
    }
  }
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      if (!warren::is_clean_text(key) || !jsonb_can_store(item)) return false;
    }
  }
  return true;
}

bool is_postgres_text(std::string_view text, std::size_t max_bytes) {
  return warren::is_clean_text(text) && text.size() <= max_bytes;
}

void check_dead_letter(const warren::amqp::Delivery& delivery, const warren::DecodedJob& decoded,
                       const warren::consumer::DeadLetterRow& row) {
  const bool is_job = decoded.job.has_value();
  FUZZ_CHECK(warren::is_canonical_uuid(row.id), "dead letter id is a UUID");
  FUZZ_CHECK(!row.message_key.empty(), "dead letter has a message key");
  FUZZ_CHECK(row.job_id.empty() || warren::is_canonical_uuid(row.job_id), "job_id is a UUID");
  FUZZ_CHECK(is_job == !row.job_id.empty(), "job_id exactly when the body is a job");
  FUZZ_CHECK(is_postgres_text(row.type, 64), "type is clean text");
  FUZZ_CHECK(is_postgres_text(row.queue, 64), "queue is clean text");
  FUZZ_CHECK(is_postgres_text(row.reason, 64), "reason is clean text");
  // dead_letters.reason has a CHECK for exactly these: any other value can never be written.
  FUZZ_CHECK(row.reason == "max_attempts" || row.reason == "permanent_failure" ||
                 row.reason == "delivery_limit" || row.reason == "poison" ||
                 row.reason == "expired",
             "the reason is one the dead_letters table accepts");
  FUZZ_CHECK(is_postgres_text(row.error_type, 4096), "error_type is clean text");
  FUZZ_CHECK(is_postgres_text(row.error_message, 4096), "error_message is clean text");
  FUZZ_CHECK(is_postgres_text(row.exchange, 255), "exchange is clean text");
  FUZZ_CHECK(is_postgres_text(row.routing_key, 255), "routing_key is clean text");
  FUZZ_CHECK(warren::parse_rfc3339(row.dead_lettered_at).has_value(),
             "dead_lettered_at is an RFC 3339 time");
  FUZZ_CHECK(row.headers.is_object(), "headers are a JSON object");
  FUZZ_CHECK(jsonb_can_store(row.headers), "header names and texts are valid UTF-8 without NUL");
  FUZZ_CHECK(row.payload_json.has_value() != row.raw_body.has_value(), "payload xor raw body");
  if (row.raw_body) FUZZ_CHECK(*row.raw_body == delivery.body, "raw body is the exact body");
  if (row.payload_json) {
    FUZZ_CHECK(is_job && row.reason != "poison", "only a job keeps its payload");
    FUZZ_CHECK(row.payload_json->find("\\u0000") == std::string::npos, "payload holds no NUL");
  }
  FUZZ_CHECK(!row.fails_job || is_job, "only a job message can fail a job");
  FUZZ_CHECK(row.redelivered == delivery.redelivered, "redelivered flag kept");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const warren::amqp::Delivery delivery = read_delivery(input);

  const auto decoded = warren::decode_job_message(delivery, kDefaultBackoff);
  check_job_message(delivery, decoded);
  const auto again = warren::decode_job_message(delivery, kDefaultBackoff);
  FUZZ_CHECK(again.poison_reason == decoded.poison_reason, "decoding is deterministic");
  FUZZ_CHECK(!decoded.job || same_job(*decoded.job, *again.job), "decoding is deterministic");

  static const auto now = *warren::parse_rfc3339("2026-11-23T10:15:30.123Z");
  const auto row = warren::consumer::decode_dead_letter(delivery, "warren", kDefaultBackoff, now);
  check_dead_letter(delivery, decoded, row);
  return 0;
}
