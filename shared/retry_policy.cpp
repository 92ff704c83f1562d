// The retry schedule; see retry_policy.h for the formula and the default table.

#include "shared/retry_policy.h"

#include <algorithm>
#include <cmath>

namespace warren {

std::optional<std::string> validate(const Backoff& backoff) {
  if (backoff.initial_ms < kMinBackoffInitialMs || backoff.initial_ms > kMaxBackoffInitialMs) {
    return "backoff.initial_ms must be between " + std::to_string(kMinBackoffInitialMs) + " and " +
           std::to_string(kMaxBackoffInitialMs);
  }
  // Written so that NaN fails too: every comparison with NaN is false.
  if (!std::isfinite(backoff.factor) ||
      !(backoff.factor >= kMinBackoffFactor && backoff.factor <= kMaxBackoffFactor)) {
    return "backoff.factor must be a finite number between 1 and 100";
  }
  if (backoff.max_ms < backoff.initial_ms || backoff.max_ms > kMaxBackoffMaxMs) {
    return "backoff.max_ms must be between initial_ms (" + std::to_string(backoff.initial_ms) +
           ") and " + std::to_string(kMaxBackoffMaxMs);
  }
  return std::nullopt;
}

int64_t base_delay_ms(const Backoff& backoff, int attempt) {
  const int exponent = std::max(attempt, 1) - 1;
  const int64_t cap = std::max<int64_t>(backoff.max_ms, 0);
  // factor^99 overflows every integer type but not long double (up to ~1e4932); an infinite or
  // NaN product (unvalidated input) fails the comparison and takes the cap.
  const long double delay = static_cast<long double>(backoff.initial_ms) *
                            std::pow(static_cast<long double>(backoff.factor), exponent);
  if (!(delay < static_cast<long double>(cap))) return cap;
  if (!(delay > 0)) return 0;
  // delay < cap <= INT64_MAX here, so the conversion cannot overflow.
  return std::llround(delay);
}

int64_t jittered_delay_ms(const Backoff& backoff, int attempt) {
  thread_local std::mt19937_64 rng{[] {
    std::random_device device;
    return (uint64_t{device()} << 32) | device();
  }()};
  return jittered_delay_ms(backoff, attempt, rng);
}

}  // namespace warren
