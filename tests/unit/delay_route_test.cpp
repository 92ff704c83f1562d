// Tests of the delay infrastructure's routing-key codec and topology (shared/delay_route.h),
// including a simulation that routes keys through the bindings the way RabbitMQ would.

#include "shared/delay_route.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace warren {
namespace {

using std::chrono::milliseconds;

// --- Rounding of delays to seconds --------------------------------------------------------------

TEST(DelaySecondsFor, RoundsUpToWholeSeconds) {
  EXPECT_EQ(delay_seconds_for(milliseconds(1)), 1);
  EXPECT_EQ(delay_seconds_for(milliseconds(999)), 1);
  EXPECT_EQ(delay_seconds_for(milliseconds(1000)), 1);
  EXPECT_EQ(delay_seconds_for(milliseconds(1001)), 2);
  EXPECT_EQ(delay_seconds_for(milliseconds(2000)), 2);
  EXPECT_EQ(delay_seconds_for(milliseconds(5500)), 6);
}

TEST(DelaySecondsFor, ZeroAndNegativeAreZero) {
  EXPECT_EQ(delay_seconds_for(milliseconds(0)), 0);
  EXPECT_EQ(delay_seconds_for(milliseconds(-1)), 0);
  EXPECT_EQ(delay_seconds_for(milliseconds(-5000)), 0);
  EXPECT_EQ(delay_seconds_for(milliseconds::min()), 0);
}

TEST(DelaySecondsFor, ClampsToMaximum) {
  const int64_t max_ms = int64_t{kMaxDelaySeconds} * 1000;
  EXPECT_EQ(delay_seconds_for(milliseconds(max_ms)), kMaxDelaySeconds);
  EXPECT_EQ(delay_seconds_for(milliseconds(max_ms - 999)), kMaxDelaySeconds);
  EXPECT_EQ(delay_seconds_for(milliseconds(max_ms - 1000)), kMaxDelaySeconds - 1);
  EXPECT_EQ(delay_seconds_for(milliseconds(max_ms + 1)), kMaxDelaySeconds);
  EXPECT_EQ(delay_seconds_for(milliseconds::max()), kMaxDelaySeconds);
  // The API's largest delay_ms (2^31) is well within range.
  EXPECT_EQ(delay_seconds_for(milliseconds(int64_t{1} << 31)), 2147484);
}

TEST(DelayRouteConstants, MatchTheSpec) {
  EXPECT_EQ(kDelayLevels, 28);
  EXPECT_EQ(kTopDelayLevel, 27);
  EXPECT_EQ(kMaxDelaySeconds, 268435455U);
  EXPECT_EQ(kDefaultAmqpPrefix, "warren");
}

// --- Encoding and decoding ----------------------------------------------------------------------

TEST(DelayRoutingKey, EncodesBitsMostSignificantFirst) {
  EXPECT_EQ(encode_delay_routing_key(0, "default"),
            "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.default");
  EXPECT_EQ(encode_delay_routing_key(1, "q"),
            "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.q");
  EXPECT_EQ(encode_delay_routing_key(5, "q"),
            "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.1.q");
  EXPECT_EQ(encode_delay_routing_key(uint32_t{1} << 27, "q"),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.q");
  EXPECT_EQ(encode_delay_routing_key(kMaxDelaySeconds, "emails"),
            "1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.1.emails");
}

TEST(DelayRoutingKey, ZeroAndMaximumRoundTrip) {
  for (uint32_t d : {uint32_t{0}, kMaxDelaySeconds}) {
    const auto route = decode_delay_routing_key(encode_delay_routing_key(d, "default"));
    ASSERT_TRUE(route.has_value()) << d;
    EXPECT_EQ(route->delay_seconds, d);
    EXPECT_EQ(route->queue, "default");
  }
}

TEST(DelayRoutingKey, EverySingleBitRoundTrips) {
  for (int bit = 0; bit < kDelayLevels; ++bit) {
    const uint32_t d = uint32_t{1} << bit;
    const std::string key = encode_delay_routing_key(d, "default");
    // Bit L is word 27-L of the key.
    EXPECT_EQ(key[2 * (kTopDelayLevel - bit)], '1') << key;
    EXPECT_EQ(std::count(key.begin(), key.end(), '1'), 1) << key;
    EXPECT_EQ(decode_delay_routing_key(key), (DelayRoute{d, "default"})) << key;
  }
}

TEST(DelayRoutingKey, RandomValuesRoundTrip) {
  std::mt19937 rng(20261123);
  std::uniform_int_distribution<uint32_t> delays(0, kMaxDelaySeconds);
  for (int i = 0; i < 100000; ++i) {
    const uint32_t d = delays(rng);
    const std::string key = encode_delay_routing_key(d, "work-q_1");
    ASSERT_EQ(key.size(), 56U + 8U);
    const auto route = decode_delay_routing_key(key);
    ASSERT_TRUE(route.has_value()) << key;
    ASSERT_EQ(route->delay_seconds, d) << key;
    ASSERT_EQ(route->queue, "work-q_1");
  }
}

TEST(DelayRoutingKey, EncodeRejectsWhatCannotBeRouted) {
  EXPECT_THROW(encode_delay_routing_key(kMaxDelaySeconds + 1, "q"), std::invalid_argument);
  EXPECT_THROW(encode_delay_routing_key(UINT32_MAX, "q"), std::invalid_argument);
  EXPECT_THROW(encode_delay_routing_key(1, ""), std::invalid_argument);
  EXPECT_THROW(encode_delay_routing_key(1, "a.b"), std::invalid_argument);
  EXPECT_THROW(encode_delay_routing_key(1, "."), std::invalid_argument);
  // 56 bytes of bits + 199 = 255 is the longest key AMQP allows.
  EXPECT_NO_THROW(encode_delay_routing_key(1, std::string(199, 'q')));
  EXPECT_THROW(encode_delay_routing_key(1, std::string(200, 'q')), std::invalid_argument);
}

TEST(DelayRoutingKey, DecodeRejectsMalformedKeys) {
  const std::string bits27 = "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.";
  const std::string bits28 = "0." + bits27;
  const std::string bits29 = "0." + bits28;
  ASSERT_TRUE(decode_delay_routing_key(bits28 + "q").has_value());

  const std::vector<std::string> bad = {
      "",
      "q",
      bits27 + "q",                                                   // 27 bits
      bits29 + "q",                                                   // 29 bits
      bits28,                                                         // empty queue
      bits28.substr(0, bits28.size() - 1),                            // no queue, no dot
      bits28 + "q.",                                                  // trailing dot
      bits28 + "a.b",                                                 // dotted queue
      bits28 + ".q",                                                  // empty word
      "2." + bits27 + "q",                                            // digit 2
      "x." + bits27 + "q",                                            // letter
      "00." + bits27.substr(0, bits27.size() - 2) + "q",              // two-char word
      "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0",      // bits, no queue
      "0,0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.q",  // wrong separator
      "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0..q",   // double dot
      " 0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.q",   // leading space
  };
  for (const auto& key : bad) {
    EXPECT_FALSE(decode_delay_routing_key(key).has_value()) << "'" << key << "'";
  }
}

// Found by tests/fuzz/delay_route_fuzzer: decode accepted keys longer than AMQP's 255 bytes,
// which encode refuses, so encode(decode(key)) threw instead of giving the key back.
TEST(DelayRoutingKey, DecodeAcceptsOnlyWhatEncodeCanMake) {
  const std::string longest = encode_delay_routing_key(5, std::string(199, 'q'));
  ASSERT_EQ(longest.size(), 255u);
  EXPECT_EQ(decode_delay_routing_key(longest), (DelayRoute{5, std::string(199, 'q')}));
  EXPECT_FALSE(decode_delay_routing_key(longest + "q").has_value());
}

// --- Names --------------------------------------------------------------------------------------

TEST(DelayNames, FollowTheTopologyTable) {
  EXPECT_EQ(delay_exchange_name("warren", 0), "warren.delay.00");
  EXPECT_EQ(delay_exchange_name("warren", 7), "warren.delay.07");
  EXPECT_EQ(delay_exchange_name("warren", 27), "warren.delay.27");
  EXPECT_EQ(delay_queue_name("warren", 13), "warren.delay.13");
  EXPECT_EQ(delay_exchange_name("staging.w", 3), "staging.w.delay.03");
  EXPECT_EQ(delivery_exchange_name("warren"), "warren.delivery");
  EXPECT_EQ(delivery_exchange_name(kDefaultAmqpPrefix), "warren.delivery");
  EXPECT_EQ(delivery_binding_pattern("default"), "#.default");
}

TEST(DelayNames, RejectBadArguments) {
  EXPECT_THROW(delay_exchange_name("warren", -1), std::out_of_range);
  EXPECT_THROW(delay_exchange_name("warren", 28), std::out_of_range);
  EXPECT_THROW(delay_level_ttl_ms(28), std::out_of_range);
  EXPECT_THROW(delay_level_bindings("warren", -1), std::out_of_range);
  EXPECT_THROW(delivery_binding_pattern(""), std::invalid_argument);
  EXPECT_THROW(delivery_binding_pattern("a.b"), std::invalid_argument);
}

TEST(DelayLevels, TtlIsTwoToTheLevelSeconds) {
  EXPECT_EQ(delay_level_ttl_ms(0), 1000);
  EXPECT_EQ(delay_level_ttl_ms(1), 2000);
  EXPECT_EQ(delay_level_ttl_ms(10), 1024000);
  EXPECT_EQ(delay_level_ttl_ms(27), 134217728000);
  int64_t total = 0;
  for (int level = 0; level < kDelayLevels; ++level) total += delay_level_ttl_ms(level);
  EXPECT_EQ(total, int64_t{kMaxDelaySeconds} * 1000);
  // RabbitMQ refuses TTLs above 10 years.
  EXPECT_LE(delay_level_ttl_ms(27), 315360000000);
}

TEST(DelayLevels, BindingPatterns) {
  const auto top = delay_level_bindings("warren", 27);
  EXPECT_EQ(top.to_queue_pattern, "1.#");
  EXPECT_EQ(top.to_next_pattern, "0.#");
  EXPECT_EQ(top.next_exchange, "warren.delay.26");

  const auto l25 = delay_level_bindings("warren", 25);
  EXPECT_EQ(l25.to_queue_pattern, "*.*.1.#");
  EXPECT_EQ(l25.to_next_pattern, "*.*.0.#");
  EXPECT_EQ(l25.next_exchange, "warren.delay.24");

  const auto bottom = delay_level_bindings("warren", 0);
  std::string stars;
  for (int i = 0; i < 27; ++i) stars += "*.";
  EXPECT_EQ(bottom.to_queue_pattern, stars + "1.#");
  EXPECT_EQ(bottom.to_next_pattern, stars + "0.#");
  EXPECT_EQ(bottom.next_exchange, "warren.delivery");

  EXPECT_EQ(delay_level_bindings("acme", 0).next_exchange, "acme.delivery");
}

// --- Simulation of the broker -------------------------------------------------------------------

std::vector<std::string_view> split_words(std::string_view s) {
  std::vector<std::string_view> words;
  size_t start = 0;
  while (true) {
    const size_t dot = s.find('.', start);
    words.push_back(s.substr(start, dot == std::string_view::npos ? dot : dot - start));
    if (dot == std::string_view::npos) return words;
    start = dot + 1;
  }
}

// AMQP topic matching: words are dot-separated, '*' matches exactly one word, '#' zero or more.
bool topic_match(const std::vector<std::string_view>& pattern, size_t p,
                 const std::vector<std::string_view>& key, size_t k) {
  if (p == pattern.size()) return k == key.size();
  if (pattern[p] == "#") {
    for (size_t skip = k; skip <= key.size(); ++skip) {
      if (topic_match(pattern, p + 1, key, skip)) return true;
    }
    return false;
  }
  if (k == key.size()) return false;
  if (pattern[p] != "*" && pattern[p] != key[k]) return false;
  return topic_match(pattern, p + 1, key, k + 1);
}

bool topic_match(std::string_view pattern, std::string_view key) {
  return topic_match(split_words(pattern), 0, split_words(key), 0);
}

TEST(DelayTopicMatcher, BehavesLikeRabbitMq) {
  EXPECT_TRUE(topic_match("#", "a.b.c"));
  EXPECT_TRUE(topic_match("a.#", "a"));
  EXPECT_TRUE(topic_match("#.c", "a.b.c"));
  EXPECT_TRUE(topic_match("*.b.#", "a.b.c.d"));
  EXPECT_FALSE(topic_match("*.b.#", "b.c"));
  EXPECT_FALSE(topic_match("*", "a.b"));
  EXPECT_FALSE(topic_match("#.c", "a.b.cc"));
}

// Where the simulated broker took a message, and how long it held it.
struct Trace {
  std::string exit_exchange;
  int64_t waited_ms = 0;
  std::set<int> queues_entered;
};

// Routes `key` from level 27's exchange using only the names and patterns delay_route.h
// produces, as the broker would: each exchange must route the key to exactly one destination;
// a level queue holds the message for its TTL and dead-letters it to its next exchange.
Trace simulate(std::string_view prefix, const std::string& key) {
  struct Level {
    int level;
    DelayLevelBindings bindings;
  };
  std::map<std::string, Level> exchanges;
  for (int level = 0; level < kDelayLevels; ++level) {
    exchanges.emplace(delay_exchange_name(prefix, level),
                      Level{level, delay_level_bindings(prefix, level)});
  }
  Trace trace;
  std::string exchange = delay_exchange_name(prefix, kTopDelayLevel);
  for (int hops = 0; hops <= kDelayLevels; ++hops) {
    const auto it = exchanges.find(exchange);
    if (it == exchanges.end()) break;
    const Level& here = it->second;
    const bool to_queue = topic_match(here.bindings.to_queue_pattern, key);
    const bool to_next = topic_match(here.bindings.to_next_pattern, key);
    EXPECT_NE(to_queue, to_next) << "level " << here.level << " must route " << key << " once";
    if (to_queue) {
      trace.queues_entered.insert(here.level);
      trace.waited_ms += delay_level_ttl_ms(here.level);
    }
    exchange = here.bindings.next_exchange;  // Dead-lettered from the queue, or bound onward.
  }
  trace.exit_exchange = exchange;
  return trace;
}

TEST(DelaySimulation, RandomDelaysTakeExactlyTheirDuration) {
  std::mt19937 rng(42);
  std::uniform_int_distribution<uint32_t> delays(0, kMaxDelaySeconds);
  std::vector<uint32_t> cases = {0, 1, 2, 3, 60, 3600, 86400, kMaxDelaySeconds};
  for (int i = 0; i < 2000; ++i) cases.push_back(delays(rng));

  for (uint32_t d : cases) {
    const std::string key = encode_delay_routing_key(d, "default");
    const Trace trace = simulate("warren", key);
    EXPECT_EQ(trace.exit_exchange, "warren.delivery") << d;
    EXPECT_EQ(trace.waited_ms, int64_t{d} * 1000) << d;
    for (int level = 0; level < kDelayLevels; ++level) {
      EXPECT_EQ(trace.queues_entered.count(level) == 1, ((d >> level) & 1U) == 1U) << d;
    }
    // Out of the delivery exchange, only the job's own work queue takes the message.
    EXPECT_TRUE(topic_match(delivery_binding_pattern("default"), key)) << key;
    EXPECT_FALSE(topic_match(delivery_binding_pattern("other"), key)) << key;
    EXPECT_FALSE(topic_match(delivery_binding_pattern("fault"), key)) << key;
  }
}

TEST(DelaySimulation, WorksWithAnotherPrefix) {
  const Trace trace = simulate("staging.warren", encode_delay_routing_key(1234567, "emails"));
  EXPECT_EQ(trace.exit_exchange, "staging.warren.delivery");
  EXPECT_EQ(trace.waited_ms, 1234567000);
}

TEST(DelaySimulation, MillisecondsToArrival) {
  // From a requested delay in ms to the time the broker holds the message.
  for (int64_t ms : {1, 999, 1000, 1001, 5000, 15000, 3600000}) {
    const auto seconds = static_cast<uint32_t>(delay_seconds_for(milliseconds(ms)));
    const Trace trace = simulate("warren", encode_delay_routing_key(seconds, "default"));
    EXPECT_GE(trace.waited_ms, ms);
    EXPECT_LT(trace.waited_ms, ms + 1000);
  }
}

}  // namespace
}  // namespace warren
