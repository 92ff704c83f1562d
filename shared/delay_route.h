// Routing keys and names of the delay infrastructure (MESSAGING.md, "Delay infrastructure").
//
// RabbitMQ here has no delayed-message plugin, and a per-message TTL only expires at the head of
// a queue, so Warren delays messages by binary decomposition, the broker doing all the work:
//   - There are 28 levels, L = 27..0. Level L is a topic exchange plus a quorum queue of the same
//     name, `<prefix>.delay.LL`, whose x-message-ttl is 2^L s and whose dead-letter exchange is
//     level L-1's exchange (level 0's is `<prefix>.delivery`).
//   - A message delayed D seconds is published to level 27's exchange with the routing key
//     `b27.b26.….b0.<queue>`, the 28 bits of D, most significant first.
//   - Level L's exchange routes a key whose bit L is 1 into its queue, where the message waits
//     2^L s and then dead-letters (key unchanged) into level L-1; a key whose bit L is 0 goes on
//     to level L-1 at once. The waits add up to sum(2^L for bits set) = D.
//   - `<prefix>.delivery` routes the key, by its last word, to the work queue `<prefix>.q.<queue>`.
// Every message in one level queue has the same TTL, so expiry order is queue order and nothing
// blocks behind a longer delay. Resolution is one second (delays round up), the maximum is
// 2^28-1 s (about 8.5 years; RabbitMQ accepts TTLs up to 10 years).
//
// This file only computes strings and numbers; declaring the topology and publishing belong to
// the AMQP code, which uses these functions so producer, consumer and tests agree on every name.

#ifndef WARREN_SHARED_DELAY_ROUTE_H_
#define WARREN_SHARED_DELAY_ROUTE_H_

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace warren {

// Levels are numbered 0..kDelayLevels-1; a message enters at kTopDelayLevel.
inline constexpr int kDelayLevels = 28;
inline constexpr int kTopDelayLevel = kDelayLevels - 1;
inline constexpr uint32_t kMaxDelaySeconds = (uint32_t{1} << kDelayLevels) - 1;  // 268435455
// The default of WARREN_AMQP_PREFIX; every name below takes the configured prefix.
inline constexpr std::string_view kDefaultAmqpPrefix = "warren";

// The whole seconds to delay for `delay`: rounded up (a job never runs early), 0 for zero or
// negative delays, clamped to kMaxDelaySeconds.
int64_t delay_seconds_for(std::chrono::milliseconds delay);

// `b27.b26.….b0.<queue>`. Throws std::invalid_argument when delay_seconds > kMaxDelaySeconds,
// when queue is empty or contains '.', or when the key would exceed AMQP's 255-byte limit:
// each of those would misroute or be refused by the broker, and is a caller's bug.
std::string encode_delay_routing_key(uint32_t delay_seconds, std::string_view queue);

struct DelayRoute {
  uint32_t delay_seconds = 0;
  std::string queue;

  friend bool operator==(const DelayRoute&, const DelayRoute&) = default;
};

// The inverse of encode_delay_routing_key; nullopt unless the key is exactly 28 words of "0" or
// "1" followed by one non-empty word (the queue, which cannot contain '.'), at most 255 bytes
// in all (AMQP's limit, which encode enforces too).
std::optional<DelayRoute> decode_delay_routing_key(std::string_view key);

// `<prefix>.delay.LL`, LL = 00..27. Throws std::out_of_range for another level.
std::string delay_exchange_name(std::string_view prefix, int level);
// The level's queue has the same name as its exchange (MESSAGING.md's topology table).
std::string delay_queue_name(std::string_view prefix, int level);
// `<prefix>.delivery`: where messages come out of level 0.
std::string delivery_exchange_name(std::string_view prefix);

// The x-message-ttl of level L's queue: 2^L * 1000 ms. 64-bit because levels 22 and up exceed
// 32 bits (level 27: 134217728000 ms); declare it as a signed 64-bit table value.
// Throws std::out_of_range for a level outside 0..27.
int64_t delay_level_ttl_ms(int level);

// What level L's exchange needs to be bound to (topic patterns; bit L is word 27-L of the key):
//   queue `delay_queue_name(prefix, L)` <- exchange L with to_queue_pattern  ("*."×(27-L) "1.#")
//   exchange next_exchange              <- exchange L with to_next_pattern   ("*."×(27-L) "0.#")
// next_exchange is level L-1's exchange, or the delivery exchange for level 0; it is also the
// x-dead-letter-exchange of level L's queue (no x-dead-letter-routing-key: the key is kept).
struct DelayLevelBindings {
  std::string to_queue_pattern;
  std::string to_next_pattern;
  std::string next_exchange;
};

// Throws std::out_of_range for a level outside 0..27.
DelayLevelBindings delay_level_bindings(std::string_view prefix, int level);

// `#.<queue>`: binds work queue `<prefix>.q.<queue>` to the delivery exchange so a delayed key
// reaches the queue named by its last word. Throws std::invalid_argument for an empty or dotted
// queue name (the pattern would match the wrong keys).
std::string delivery_binding_pattern(std::string_view queue);

}  // namespace warren

#endif  // WARREN_SHARED_DELAY_ROUTE_H_
