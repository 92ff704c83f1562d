// UUID v7 generation and canonical-form checks; see uuid.h for the layout and ordering rules.

#include "shared/uuid.h"

#include <openssl/rand.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <stdexcept>

namespace warren {
namespace {

constexpr uint64_t kRandBBits = 62;
constexpr uint64_t kRandBLimit = uint64_t{1} << kRandBBits;
constexpr uint64_t kRandALimit = uint64_t{1} << 12;
constexpr int64_t kMaxTimestampMs = (int64_t{1} << 48) - 1;

uint64_t read_big_endian(const uint8_t* bytes, int count) {
  uint64_t value = 0;
  for (int i = 0; i < count; ++i) value = (value << 8) | bytes[i];
  return value;
}

bool is_lower_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

}  // namespace

UuidBytes UuidV7Generator::next(int64_t unix_ms, const std::array<uint8_t, 10>& random) {
  const int64_t now = std::clamp<int64_t>(unix_ms, 0, kMaxTimestampMs);
  const bool same_or_slightly_earlier =
      started_ && now <= last_ms_ && last_ms_ - now <= kMaxClockRegressionMs;

  bool fresh = !same_or_slightly_earlier;
  if (same_or_slightly_earlier) {
    // Stay on the last timestamp and step the 74-bit counter up by 1..2^32: a random step
    // rather than +1 so the next id cannot simply be derived from the previous one.
    rand_b_ += read_big_endian(random.data(), 4) + 1;
    if (rand_b_ >= kRandBLimit) {
      rand_b_ -= kRandBLimit;
      if (++rand_a_ == kRandALimit) {
        // After ~2^42 ids in one millisecond: borrow the next millisecond rather than wrap.
        last_ms_ = std::min(last_ms_ + 1, kMaxTimestampMs);
        fresh = true;
      }
    }
  } else {
    last_ms_ = now;
  }
  if (fresh) {
    rand_a_ = read_big_endian(random.data(), 2) & (kRandALimit - 1);
    rand_b_ = read_big_endian(random.data() + 2, 8) & (kRandBLimit - 1);
  }
  started_ = true;

  UuidBytes out{};
  const auto ms = static_cast<uint64_t>(last_ms_);
  for (int i = 0; i < 6; ++i) out[i] = static_cast<uint8_t>(ms >> (40 - 8 * i));
  out[6] = static_cast<uint8_t>(0x70 | (rand_a_ >> 8));  // Version 7.
  out[7] = static_cast<uint8_t>(rand_a_);
  out[8] = static_cast<uint8_t>(0x80 | (rand_b_ >> 56));  // Variant 10.
  for (int i = 9; i < 16; ++i) out[i] = static_cast<uint8_t>(rand_b_ >> (8 * (15 - i)));
  return out;
}

std::string format_uuid(const UuidBytes& bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  text.reserve(36);
  for (size_t i = 0; i < bytes.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text += '-';
    text += kHex[bytes[i] >> 4];
    text += kHex[bytes[i] & 0x0F];
  }
  return text;
}

std::string new_uuid_v7() {
  std::array<uint8_t, 10> random;
  // Drawn outside the lock: it is the slow part, and each call needs its own bytes anyway.
  if (RAND_bytes(random.data(), static_cast<int>(random.size())) != 1) {
    throw std::runtime_error("RAND_bytes failed: no random bytes for a UUID");
  }
  // A function-local static is built on first use, so ids can be made during static
  // initialisation of other files too.
  static std::mutex mutex;
  static UuidV7Generator generator;
  UuidBytes bytes;
  {
    const std::lock_guard lock(mutex);
    // The clock is read under the lock so the timestamps the generator sees never go backwards
    // merely because two threads were scheduled out of order.
    const auto now = std::chrono::system_clock::now().time_since_epoch();
    bytes =
        generator.next(std::chrono::duration_cast<std::chrono::milliseconds>(now).count(), random);
  }
  return format_uuid(bytes);
}

bool is_canonical_uuid(std::string_view text) {
  if (text.size() != 36) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool dash_here = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash_here ? text[i] != '-' : !is_lower_hex(text[i])) return false;
  }
  return true;
}

}  // namespace warren
