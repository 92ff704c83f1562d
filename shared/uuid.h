// UUID version 7 ids (RFC 9562) for jobs, attempts, dead letters and operations, and the check
// of the canonical text form API.md requires ("Ids are UUIDs (v4 or v7) in lower case").
//
// Version 7 puts the Unix time in milliseconds in the first 48 bits, so ids sort by creation
// time: Postgres b-tree indexes on them stay append-mostly and "newest first" lists can page by
// id. Layout: 48 bits unix_ts_ms | 4 bits version (0111) | 12 bits rand_a | 2 bits variant (10)
// | 62 bits rand_b.
//
// Hand-written because Debian 12's libuuid (util-linux 2.38) has no v7 (uuid_generate_time_v7
// arrived in 2.41), and the format is a few lines. Randomness comes from OpenSSL's RAND_bytes
// (a CSPRNG, fork-safe).
//
// Ordering inside one millisecond uses RFC 9562 section 6.2, method 2 ("monotonic random"): the
// 74 bits rand_a|rand_b are treated as one counter, fresh random at each new millisecond and
// increased by a random 1..2^32 for each further id in the same millisecond. So every id made by
// one process is greater than the ones it made before, also across threads (one shared state
// behind a mutex) and across small steps back of the wall clock (see UuidV7Generator).
// The price: ids made in the same millisecond share their high counter bits, so an id's bits
// are not independent randomness. Ids are names, not secrets or tokens; for random material
// call RAND_bytes directly.

#ifndef WARREN_SHARED_UUID_H_
#define WARREN_SHARED_UUID_H_

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace warren {

// A new UUID v7 in canonical lower-case text, e.g. "0193a4b2-7c1d-7e2f-8a3b-4c5d6e7f8091".
// Thread-safe: the clock and counter state is shared by the process behind a mutex (held for a
// few arithmetic operations; the random bytes are drawn before taking it). Throws
// std::runtime_error if OpenSSL cannot produce random bytes (it then has no entropy source).
std::string new_uuid_v7();

// True for 36 characters: lower-case hex digits with dashes at offsets 8, 13, 18 and 23.
// Any version and variant (v4 ids from elsewhere are accepted too); upper-case, braces, "urn:"
// and missing dashes are rejected so an id has exactly one spelling.
bool is_canonical_uuid(std::string_view text);

using UuidBytes = std::array<uint8_t, 16>;

// "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" in lower case.
std::string format_uuid(const UuidBytes& bytes);

// The deterministic core of new_uuid_v7, with the clock and the randomness passed in so tests
// can drive it. Not thread-safe by itself: new_uuid_v7 guards one instance with a mutex.
class UuidV7Generator {
 public:
  // How far the wall clock may step back (NTP slew, VM migration) while ids keep the previous
  // timestamp and stay ordered. A larger jump is taken as a real clock change: ids follow the
  // clock again rather than carrying a timestamp that is wrong for minutes or hours.
  static constexpr int64_t kMaxClockRegressionMs = 10'000;

  // The next id for wall-clock time `unix_ms`; `random` must be fresh random bytes for each
  // call. Within a millisecond (or a clock step back of up to kMaxClockRegressionMs) the result
  // is greater than the previous one; if the 74-bit counter would overflow, the timestamp is
  // moved one millisecond ahead instead. Times before 1970 count as 0.
  UuidBytes next(int64_t unix_ms, const std::array<uint8_t, 10>& random);

 private:
  bool started_ = false;
  int64_t last_ms_ = 0;
  uint64_t rand_a_ = 0;  // The counter's high 12 bits.
  uint64_t rand_b_ = 0;  // Its low 62 bits.
};

}  // namespace warren

#endif  // WARREN_SHARED_UUID_H_
