// Tests of the retry schedule (shared/retry_policy.h): the default numbers, the cap, jitter
// bounds, and validation of a job's "backoff" object.

#include "shared/retry_policy.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <set>

namespace warren {
namespace {

TEST(RetryBaseDelay, DefaultSchedule) {
  const Backoff defaults;
  EXPECT_EQ(defaults.initial_ms, 5000);
  EXPECT_EQ(defaults.factor, 3.0);
  EXPECT_EQ(defaults.max_ms, 3600000);

  EXPECT_EQ(base_delay_ms(defaults, 1), 5000);
  EXPECT_EQ(base_delay_ms(defaults, 2), 15000);
  EXPECT_EQ(base_delay_ms(defaults, 3), 45000);
  EXPECT_EQ(base_delay_ms(defaults, 4), 135000);
  EXPECT_EQ(base_delay_ms(defaults, 5), 405000);
  EXPECT_EQ(base_delay_ms(defaults, 6), 1215000);
  EXPECT_EQ(base_delay_ms(defaults, 7), 3600000);  // 3645000 capped
  EXPECT_EQ(base_delay_ms(defaults, 8), 3600000);
  EXPECT_EQ(base_delay_ms(defaults, 50), 3600000);
}

TEST(RetryBaseDelay, TotalsQuotedInTheHeaderTable) {
  const Backoff defaults;
  int64_t total = 0;
  for (int attempt = 1; attempt <= 4; ++attempt) total += base_delay_ms(defaults, attempt);
  EXPECT_EQ(total, 200000);  // 3 min 20 s
  for (int attempt = 5; attempt <= 6; ++attempt) total += base_delay_ms(defaults, attempt);
  EXPECT_EQ(total, 1820000);  // 30 min 20 s
}

TEST(RetryBaseDelay, CapApplies) {
  const Backoff b{.initial_ms = 1000, .factor = 2, .max_ms = 10000};
  EXPECT_EQ(base_delay_ms(b, 1), 1000);
  EXPECT_EQ(base_delay_ms(b, 4), 8000);
  EXPECT_EQ(base_delay_ms(b, 5), 10000);  // 16000 capped
  EXPECT_EQ(base_delay_ms(b, 100), 10000);
  // A cap equal to the initial delay gives a constant schedule.
  const Backoff flat{.initial_ms = 7000, .factor = 10, .max_ms = 7000};
  EXPECT_EQ(base_delay_ms(flat, 1), 7000);
  EXPECT_EQ(base_delay_ms(flat, 9), 7000);
}

TEST(RetryBaseDelay, FactorOneIsConstant) {
  const Backoff b{.initial_ms = 2500, .factor = 1, .max_ms = 3600000};
  for (int attempt = 1; attempt <= 100; ++attempt) EXPECT_EQ(base_delay_ms(b, attempt), 2500);
}

TEST(RetryBaseDelay, FractionalFactor) {
  const Backoff b{.initial_ms = 1000, .factor = 1.5, .max_ms = 3600000};
  EXPECT_EQ(base_delay_ms(b, 2), 1500);
  EXPECT_EQ(base_delay_ms(b, 3), 2250);
  EXPECT_EQ(base_delay_ms(b, 4), 3375);
  EXPECT_EQ(base_delay_ms(b, 5), 5063);  // 5062.5 rounded
}

TEST(RetryBaseDelay, AttemptBelowOneCountsAsOne) {
  const Backoff defaults;
  EXPECT_EQ(base_delay_ms(defaults, 0), 5000);
  EXPECT_EQ(base_delay_ms(defaults, -3), 5000);
  EXPECT_EQ(base_delay_ms(defaults, std::numeric_limits<int>::min()), 5000);
}

TEST(RetryBaseDelay, LargeAttemptsDoNotOverflow) {
  const Backoff widest{
      .initial_ms = kMaxBackoffInitialMs, .factor = kMaxBackoffFactor, .max_ms = kMaxBackoffMaxMs};
  ASSERT_FALSE(validate(widest).has_value());
  EXPECT_EQ(base_delay_ms(widest, 100), kMaxBackoffMaxMs);
  EXPECT_EQ(base_delay_ms(widest, std::numeric_limits<int>::max()), kMaxBackoffMaxMs);
  EXPECT_EQ(base_delay_ms(Backoff{}, 100), 3600000);

  // Even unvalidated values stay within [0, max_ms].
  const int64_t i64max = std::numeric_limits<int64_t>::max();
  EXPECT_EQ(base_delay_ms(Backoff{.initial_ms = i64max, .factor = 1e300, .max_ms = i64max}, 100),
            i64max);
  EXPECT_EQ(base_delay_ms(Backoff{.initial_ms = 5000, .factor = 3, .max_ms = i64max}, 100), i64max);
  EXPECT_EQ(base_delay_ms(Backoff{.initial_ms = 5000,
                                  .factor = std::numeric_limits<double>::infinity(),
                                  .max_ms = 1000},
                          3),
            1000);
  EXPECT_EQ(base_delay_ms(Backoff{.initial_ms = 5000,
                                  .factor = std::numeric_limits<double>::quiet_NaN(),
                                  .max_ms = 1000},
                          3),
            1000);
  EXPECT_EQ(base_delay_ms(Backoff{.initial_ms = -5, .factor = 3, .max_ms = 1000}, 2), 0);
  EXPECT_EQ(base_delay_ms(Backoff{.initial_ms = 5, .factor = 3, .max_ms = -1000}, 2), 0);
}

TEST(RetryJitter, StaysWithinHalfAndFullDelayAndVaries) {
  std::mt19937_64 rng(7);
  const Backoff defaults;
  for (int attempt : {1, 2, 4, 7, 100}) {
    const int64_t d = base_delay_ms(defaults, attempt);
    std::set<int64_t> seen;
    int64_t lowest = d;
    int64_t highest = 0;
    for (int i = 0; i < 10000; ++i) {
      const int64_t wait = jittered_delay_ms(defaults, attempt, rng);
      ASSERT_GE(2 * wait, d) << "attempt " << attempt;
      ASSERT_LE(wait, d) << "attempt " << attempt;
      seen.insert(wait);
      lowest = std::min(lowest, wait);
      highest = std::max(highest, wait);
    }
    EXPECT_GT(seen.size(), 1000U) << "attempt " << attempt;
    // 10k uniform draws come close to both ends of the range.
    EXPECT_LT(lowest, d / 2 + d / 100) << "attempt " << attempt;
    EXPECT_GT(highest, d - d / 100) << "attempt " << attempt;
  }
}

TEST(RetryJitter, MeanIsThreeQuartersOfTheDelay) {
  std::mt19937 rng(123);
  const Backoff defaults;
  double sum = 0;
  constexpr int kDraws = 10000;
  for (int i = 0; i < kDraws; ++i) sum += static_cast<double>(jittered_delay_ms(defaults, 3, rng));
  EXPECT_NEAR(sum / kDraws, 0.75 * 45000, 0.01 * 45000);
}

TEST(RetryJitter, FixedSeedIsReproducible) {
  std::mt19937_64 a(99);
  std::mt19937_64 b(99);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(jittered_delay_ms(Backoff{}, 5, a), jittered_delay_ms(Backoff{}, 5, b));
  }
}

TEST(RetryJitter, SmallDelaysIncludeBothEnds) {
  std::mt19937 rng(1);
  EXPECT_EQ(equal_jitter_ms(0, rng), 0);
  EXPECT_EQ(equal_jitter_ms(-10, rng), 0);
  EXPECT_EQ(equal_jitter_ms(1, rng), 1);
  std::set<int64_t> seen;
  for (int i = 0; i < 1000; ++i) seen.insert(equal_jitter_ms(5, rng));
  EXPECT_EQ(seen, (std::set<int64_t>{3, 4, 5}));  // [2.5, 5] in whole ms
  seen.clear();
  for (int i = 0; i < 1000; ++i) seen.insert(equal_jitter_ms(4, rng));
  EXPECT_EQ(seen, (std::set<int64_t>{2, 3, 4}));
}

TEST(RetryJitter, DefaultSourceStaysInRange) {
  const Backoff defaults;
  std::set<int64_t> seen;
  for (int i = 0; i < 1000; ++i) {
    const int64_t wait = jittered_delay_ms(defaults, 2);
    ASSERT_GE(wait, 7500);
    ASSERT_LE(wait, 15000);
    seen.insert(wait);
  }
  EXPECT_GT(seen.size(), 100U);
}

TEST(BackoffValidate, AcceptsSaneValues) {
  EXPECT_EQ(validate(Backoff{}), std::nullopt);
  EXPECT_EQ(validate(Backoff{.initial_ms = 1, .factor = 1, .max_ms = 1}), std::nullopt);
  EXPECT_EQ(validate(Backoff{.initial_ms = 86400000, .factor = 100, .max_ms = 2147483647}),
            std::nullopt);
  EXPECT_EQ(validate(Backoff{.initial_ms = 250, .factor = 1.5, .max_ms = 60000}), std::nullopt);
}

TEST(BackoffValidate, RejectsOutOfRangeValues) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  struct Case {
    Backoff backoff;
    const char* field;
  };
  const Case cases[] = {
      {{.initial_ms = 0, .factor = 3, .max_ms = 3600000}, "backoff.initial_ms"},
      {{.initial_ms = -1, .factor = 3, .max_ms = 3600000}, "backoff.initial_ms"},
      {{.initial_ms = 86400001, .factor = 3, .max_ms = 100000000}, "backoff.initial_ms"},
      {{.initial_ms = 5000, .factor = 0.99, .max_ms = 3600000}, "backoff.factor"},
      {{.initial_ms = 5000, .factor = 0, .max_ms = 3600000}, "backoff.factor"},
      {{.initial_ms = 5000, .factor = -2, .max_ms = 3600000}, "backoff.factor"},
      {{.initial_ms = 5000, .factor = 100.5, .max_ms = 3600000}, "backoff.factor"},
      {{.initial_ms = 5000, .factor = inf, .max_ms = 3600000}, "backoff.factor"},
      {{.initial_ms = 5000, .factor = nan, .max_ms = 3600000}, "backoff.factor"},
      {{.initial_ms = 5000, .factor = 3, .max_ms = 4999}, "backoff.max_ms"},
      {{.initial_ms = 5000, .factor = 3, .max_ms = 0}, "backoff.max_ms"},
      {{.initial_ms = 5000, .factor = 3, .max_ms = 2147483648}, "backoff.max_ms"},
  };
  for (const auto& c : cases) {
    const auto error = validate(c.backoff);
    ASSERT_TRUE(error.has_value()) << c.field;
    EXPECT_EQ(error->rfind(c.field, 0), 0U) << *error;
  }
  EXPECT_EQ(*validate(Backoff{.initial_ms = 0, .factor = 3, .max_ms = 1}),
            "backoff.initial_ms must be between 1 and 86400000");
  EXPECT_EQ(*validate(Backoff{.initial_ms = 5000, .factor = 3, .max_ms = 10}),
            "backoff.max_ms must be between initial_ms (5000) and 2147483647");
}

}  // namespace
}  // namespace warren
