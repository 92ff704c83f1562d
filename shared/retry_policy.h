// The retry schedule of MESSAGING.md ("Retry delay"): how long a job waits after a failed attempt
// before the next one. The consumer calls jittered_delay_ms() when an attempt fails and a retry
// remains, unless the handler asked for a specific delay (that wins); the producer validates a
// job's "backoff" object with validate() (400 on error). The result then goes through
// delay_seconds_for() and the delay infrastructure (delay_route.h).
//
// The schedule, exponential with a cap and "equal jitter":
//   d(n)  = min(max_ms, initial_ms * factor^(n-1))   for the attempt n >= 1 that just failed
//   wait  = uniform in [d/2, d]
// Half of the delay is kept so retries never bunch up near zero; the random half spreads out
// the retries of many jobs that failed together (e.g. when a downstream service came back).
//
// With the defaults (initial 5 s, factor 3, cap 1 h):
//   attempt that failed | d            | actual wait                | latest total wait so far
//   --------------------+--------------+----------------------------+-------------------------
//   1                   | 5 s          | 2.5 s – 5 s                | 5 s
//   2                   | 15 s         | 7.5 s – 15 s               | 20 s
//   3                   | 45 s         | 22.5 s – 45 s              | 1 min 5 s
//   4                   | 2 min 15 s   | 1 min 7.5 s – 2 min 15 s   | 3 min 20 s
//   5                   | 6 min 45 s   | 3 min 22.5 s – 6 min 45 s  | 10 min 5 s
//   6                   | 20 min 15 s  | 10 min 7.5 s – 20 min 15 s | 30 min 20 s
//   7 and later         | 1 h (capped) | 30 min – 1 h               | + 1 h each
// So a job with the default max_attempts of 5 spends at most 3 min 20 s waiting for its 4
// retries (plus the attempts' own run time) before it is dead-lettered, and no job with the
// default backoff ever waits more than an hour between two attempts.

#ifndef WARREN_SHARED_RETRY_POLICY_H_
#define WARREN_SHARED_RETRY_POLICY_H_

#include <concepts>
#include <cstdint>
#include <optional>
#include <random>
#include <string>

namespace warren {

// Accepted ranges, checked by validate():
//   initial_ms  1 .. 86400000 (1 day): the first retry waits at most a day.
//   factor      1 .. 100, finite (1 = constant delay): larger factors reach the cap at once.
//   max_ms      initial_ms .. 2147483647 (about 24.8 days, int32 max, the order of the API's
//               delay_ms limit; far below the delay infrastructure's 8.5 years).
inline constexpr int64_t kMinBackoffInitialMs = 1;
inline constexpr int64_t kMaxBackoffInitialMs = 86'400'000;
inline constexpr double kMinBackoffFactor = 1.0;
inline constexpr double kMaxBackoffFactor = 100.0;
inline constexpr int64_t kMaxBackoffMaxMs = 2'147'483'647;

struct Backoff {
  int64_t initial_ms = 5000;
  double factor = 3;
  int64_t max_ms = 3'600'000;

  friend bool operator==(const Backoff&, const Backoff&) = default;
};

// nullopt when `backoff` is within the ranges above, else a message naming the first bad field
// as the API does, e.g. "backoff.factor must be a finite number between 1 and 100".
std::optional<std::string> validate(const Backoff& backoff);

// d(n) of the table above, in ms. `attempt` below 1 counts as 1. Computed in long double and
// clamped before converting, so it never overflows, whatever the attempt (the API allows up to
// 100) and even for a Backoff that was never validated; the result is in [0, max(max_ms, 0)].
int64_t base_delay_ms(const Backoff& backoff, int attempt);

// Equal jitter: uniform in [ceil(d/2), d] (inclusive), 0 when d <= 0.
template <std::uniform_random_bit_generator Rng>
int64_t equal_jitter_ms(int64_t delay_ms, Rng& rng) {
  if (delay_ms <= 0) return 0;
  std::uniform_int_distribution<int64_t> wait(delay_ms - delay_ms / 2, delay_ms);
  return wait(rng);
}

// The wait before the retry of `attempt` with a caller's random source (tests fix its seed).
template <std::uniform_random_bit_generator Rng>
int64_t jittered_delay_ms(const Backoff& backoff, int attempt, Rng& rng) {
  return equal_jitter_ms(base_delay_ms(backoff, attempt), rng);
}

// The same with a per-thread std::mt19937_64 seeded from std::random_device: jitter needs to
// differ between consumers, not to be unpredictable, and thread_local state needs no lock.
int64_t jittered_delay_ms(const Backoff& backoff, int attempt);

}  // namespace warren

#endif  // WARREN_SHARED_RETRY_POLICY_H_
