// Routing-key codec and names of the delay infrastructure; see delay_route.h for the design.

#include "shared/delay_route.h"

#include <cstdio>
#include <stdexcept>

namespace warren {
namespace {

// AMQP 0-9-1 routing keys are short strings; the broker refuses longer ones with a channel
// error, which would take the publishing channel down with it.
constexpr size_t kMaxRoutingKeyBytes = 255;
// 28 one-character words, each followed by a dot.
constexpr size_t kBitsPrefixBytes = 2 * kDelayLevels;

bool valid_queue_word(std::string_view queue) {
  return !queue.empty() && queue.find('.') == std::string_view::npos;
}

void check_level(int level) {
  if (level < 0 || level >= kDelayLevels) {
    throw std::out_of_range("delay level must be 0.." + std::to_string(kTopDelayLevel) + ", got " +
                            std::to_string(level));
  }
}

// The pattern selecting keys whose bit `level` equals `bit`: the bits come most significant
// first, so bit L is preceded by 27-L words.
std::string bit_pattern(int level, char bit) {
  std::string pattern;
  pattern.reserve(2 * (kTopDelayLevel - level) + 3);
  for (int i = 0; i < kTopDelayLevel - level; ++i) pattern += "*.";
  pattern += bit;
  pattern += ".#";
  return pattern;
}

}  // namespace

int64_t delay_seconds_for(std::chrono::milliseconds delay) {
  const int64_t ms = delay.count();
  if (ms <= 0) return 0;
  // (ms - 1) / 1000 + 1 is the ceiling without the overflow of (ms + 999) near INT64_MAX.
  const int64_t seconds = (ms - 1) / 1000 + 1;
  return seconds > kMaxDelaySeconds ? int64_t{kMaxDelaySeconds} : seconds;
}

std::string encode_delay_routing_key(uint32_t delay_seconds, std::string_view queue) {
  if (delay_seconds > kMaxDelaySeconds) {
    throw std::invalid_argument("delay of " + std::to_string(delay_seconds) +
                                " s exceeds the maximum of " + std::to_string(kMaxDelaySeconds));
  }
  if (!valid_queue_word(queue)) {
    throw std::invalid_argument("queue name must be non-empty and contain no '.': '" +
                                std::string(queue) + "'");
  }
  if (kBitsPrefixBytes + queue.size() > kMaxRoutingKeyBytes) {
    throw std::invalid_argument("queue name too long for a delay routing key");
  }
  std::string key;
  key.reserve(kBitsPrefixBytes + queue.size());
  for (int bit = kTopDelayLevel; bit >= 0; --bit) {
    key += ((delay_seconds >> bit) & 1U) ? '1' : '0';
    key += '.';
  }
  key += queue;
  return key;
}

std::optional<DelayRoute> decode_delay_routing_key(std::string_view key) {
  // Longer than AMQP allows: encode_delay_routing_key never makes such a key (it throws), so
  // accepting it would break encode(decode(key)) == key (found by tests/fuzz/delay_route_fuzzer).
  if (key.size() <= kBitsPrefixBytes || key.size() > kMaxRoutingKeyBytes) return std::nullopt;
  uint32_t delay = 0;
  for (int i = 0; i < kDelayLevels; ++i) {
    const char bit = key[2 * i];
    if ((bit != '0' && bit != '1') || key[2 * i + 1] != '.') return std::nullopt;
    delay = (delay << 1) | static_cast<uint32_t>(bit - '0');
  }
  const std::string_view queue = key.substr(kBitsPrefixBytes);
  // A 29th bit or any extra word shows up here as a dot inside the queue part.
  if (!valid_queue_word(queue)) return std::nullopt;
  return DelayRoute{delay, std::string(queue)};
}

std::string delay_exchange_name(std::string_view prefix, int level) {
  check_level(level);
  char digits[3];
  std::snprintf(digits, sizeof digits, "%02d", level);
  std::string name(prefix);
  name += ".delay.";
  name += digits;
  return name;
}

std::string delay_queue_name(std::string_view prefix, int level) {
  return delay_exchange_name(prefix, level);
}

std::string delivery_exchange_name(std::string_view prefix) {
  std::string name(prefix);
  name += ".delivery";
  return name;
}

int64_t delay_level_ttl_ms(int level) {
  check_level(level);
  return (int64_t{1} << level) * 1000;
}

DelayLevelBindings delay_level_bindings(std::string_view prefix, int level) {
  check_level(level);
  return DelayLevelBindings{
      .to_queue_pattern = bit_pattern(level, '1'),
      .to_next_pattern = bit_pattern(level, '0'),
      .next_exchange =
          level == 0 ? delivery_exchange_name(prefix) : delay_exchange_name(prefix, level - 1),
  };
}

std::string delivery_binding_pattern(std::string_view queue) {
  if (!valid_queue_word(queue)) {
    throw std::invalid_argument("queue name must be non-empty and contain no '.': '" +
                                std::string(queue) + "'");
  }
  std::string pattern = "#.";
  pattern += queue;
  return pattern;
}

}  // namespace warren
