// Fuzz target: the delay routing-key codec (shared/delay_route.h) and the routing it drives.
// A wrong key does not crash anything: it silently delivers a job at the wrong time or to the
// wrong queue. So this target checks the codec's properties and, for every key it makes or
// accepts, routes the key through the delay topology the way RabbitMQ's topic exchanges would.
//
// Each input is used three ways:
//   1. as a routing key for decode_delay_routing_key. An accepted key has a delay within
//      kMaxDelaySeconds and a non-empty queue without '.', and encodes back to exactly the same
//      key (decode is the inverse of encode, so it accepts nothing encode cannot produce).
//   2. as (delay seconds: the first 4 bytes, little-endian; queue: the rest) for
//      encode_delay_routing_key. It throws std::invalid_argument exactly in the documented
//      cases (delay above the maximum, empty or dotted queue, key above AMQP's 255 bytes) and
//      nothing else; otherwise the key is 56 bytes of bits plus the queue and decodes back to
//      the same (delay, queue).
//   3. as a millisecond delay (the first 8 bytes) for delay_seconds_for: 0 for zero or negative,
//      else the ceiling in seconds, clamped to kMaxDelaySeconds.
// Routing check, for every valid key: starting at level 27, each level's exchange must send the
// key to exactly one of its two bindings (into its queue, or on to the next exchange, which must
// be level L-1's or, after level 0, the delivery exchange); the queue waits (2^L s, the level's
// TTL) must add up to the delay, and the delivery exchange's binding for the key's queue (and
// no other queue's) must match the key.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "shared/delay_route.h"

namespace {

constexpr std::size_t kMaxRoutingKeyBytes = 255;
constexpr std::string_view kPrefix = "warren";

std::vector<std::string_view> words(std::string_view text) {
  std::vector<std::string_view> out;
  while (true) {
    const auto dot = text.find('.');
    out.push_back(text.substr(0, dot));
    if (dot == std::string_view::npos) return out;
    text.remove_prefix(dot + 1);
  }
}

// AMQP topic matching: '*' is exactly one word, '#' zero or more.
bool topic_match(const std::vector<std::string_view>& pattern, std::size_t p,
                 const std::vector<std::string_view>& key, std::size_t k) {
  if (p == pattern.size()) return k == key.size();
  if (pattern[p] == "#") {
    for (std::size_t skip = k; skip <= key.size(); ++skip) {
      if (topic_match(pattern, p + 1, key, skip)) return true;
    }
    return false;
  }
  if (k == key.size()) return false;
  return (pattern[p] == "*" || pattern[p] == key[k]) && topic_match(pattern, p + 1, key, k + 1);
}

bool topic_match(std::string_view pattern, std::string_view key) {
  return topic_match(words(pattern), 0, words(key), 0);
}

// What the broker does with `key` published to level 27's exchange.
void check_routing(std::string_view key, const warren::DelayRoute& route) {
  std::uint64_t waited_seconds = 0;
  for (int level = warren::kTopDelayLevel; level >= 0; --level) {
    const auto bindings = warren::delay_level_bindings(kPrefix, level);
    const bool to_queue = topic_match(bindings.to_queue_pattern, key);
    const bool to_next = topic_match(bindings.to_next_pattern, key);
    FUZZ_CHECK(to_queue != to_next, "each level routes a key exactly one way");
    const std::string expected_next = level == 0 ? warren::delivery_exchange_name(kPrefix)
                                                 : warren::delay_exchange_name(kPrefix, level - 1);
    FUZZ_CHECK(bindings.next_exchange == expected_next, "levels chain down to delivery");
    FUZZ_CHECK(warren::delay_level_ttl_ms(level) == (std::int64_t{1} << level) * 1000,
               "level L waits 2^L s");
    if (to_queue) waited_seconds += std::uint64_t{1} << level;
  }
  FUZZ_CHECK(waited_seconds == route.delay_seconds, "the waits add up to the delay");
  FUZZ_CHECK(topic_match(warren::delivery_binding_pattern(route.queue), key),
             "the delivery exchange routes the key to its queue");
  const std::string other = route.queue == "other" ? "another" : "other";
  FUZZ_CHECK(!topic_match(warren::delivery_binding_pattern(other), key), "and to no other queue");
}

void check_decode(std::string_view key) {
  const auto route = warren::decode_delay_routing_key(key);
  if (!route) return;
  FUZZ_CHECK(route->delay_seconds <= warren::kMaxDelaySeconds, "delay within the maximum");
  FUZZ_CHECK(!route->queue.empty() && route->queue.find('.') == std::string::npos,
             "queue is one non-empty word");
  std::string encoded;
  try {
    encoded = warren::encode_delay_routing_key(route->delay_seconds, route->queue);
  } catch (const std::invalid_argument&) {
    FUZZ_CHECK(false, "a decoded key encodes again (decode accepts only what encode makes)");
  }
  FUZZ_CHECK(encoded == key, "encode(decode(key)) == key");
  check_routing(key, *route);
}

void check_encode(std::uint32_t delay, std::string_view queue) {
  const bool refused = delay > warren::kMaxDelaySeconds || queue.empty() ||
                       queue.find('.') != std::string_view::npos ||
                       2 * warren::kDelayLevels + queue.size() > kMaxRoutingKeyBytes;
  std::optional<std::string> key;
  try {
    key = warren::encode_delay_routing_key(delay, queue);
  } catch (const std::invalid_argument&) {
    FUZZ_CHECK(refused, "encode refuses only the documented cases");
    return;
  }
  FUZZ_CHECK(!refused, "encode refuses every documented case");
  FUZZ_CHECK(key->size() == 2 * warren::kDelayLevels + queue.size(), "56 bytes of bits + queue");
  FUZZ_CHECK(key->size() <= kMaxRoutingKeyBytes, "key fits AMQP's short string");
  const auto route = warren::decode_delay_routing_key(*key);
  FUZZ_CHECK(route && route->delay_seconds == delay && route->queue == queue,
             "decode(encode(delay, queue)) == (delay, queue)");
  check_routing(*key, *route);
}

void check_delay_seconds(std::int64_t ms) {
  const std::int64_t seconds = warren::delay_seconds_for(std::chrono::milliseconds(ms));
  if (ms <= 0) {
    FUZZ_CHECK(seconds == 0, "no delay for zero or negative");
    return;
  }
  FUZZ_CHECK(seconds >= 1 && seconds <= warren::kMaxDelaySeconds, "1..max seconds");
  if (seconds < warren::kMaxDelaySeconds) {
    // Ceiling: never early, less than a second late (no overflow: ms < max * 1000 here).
    FUZZ_CHECK(seconds * 1000 >= ms && (seconds - 1) * 1000 < ms, "rounded up to seconds");
  } else {
    FUZZ_CHECK(ms > (std::int64_t{warren::kMaxDelaySeconds} - 1) * 1000, "clamped only above");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  check_decode(input);

  if (size >= 4) {
    std::uint32_t delay = 0;
    for (int i = 3; i >= 0; --i) delay = (delay << 8) | data[i];
    check_encode(delay, input.substr(4));
  }
  if (size >= 8) {
    std::uint64_t bits = 0;
    for (int i = 7; i >= 0; --i) bits = (bits << 8) | data[i];
    std::int64_t ms = 0;
    std::memcpy(&ms, &bits, sizeof ms);
    check_delay_seconds(ms);
  }
  return 0;
}
